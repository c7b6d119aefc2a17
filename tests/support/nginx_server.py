"""Run a real nginx on loopback with the server block README.rst documents.

The block is read out of README.rst, so the documentation and the tested
configuration cannot drift apart.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.rst"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def readme_server_block(title: str = "Serving web/ with nginx") -> str:
    """The literal nginx configuration block (the first ``::`` block) of README's section ``title``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"{title}\n{'=' * len(title)}\n"):]
    start = section.index("::\n\n") + 4
    lines = []
    for line in section[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip() + "\n"


def site_config(web: Path, port: int, hash_index: bool) -> str:
    block = readme_server_block()
    block = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", block)
    block = re.sub(r"root [^;]+;", f"root {web};", block)
    if hash_index:
        block = block.replace("# rewrite ^/simple/", "rewrite ^/simple/")
        block = block.replace("# rewrite ^/pypi/", "rewrite ^/pypi/")
    return block


def on_demand_site_config(web: Path, port: int, upstream: str, temp: Path) -> str:
    """README's server block with its ``/packages/`` location replaced by README's on-demand block,
    as README tells the operator to, fetching from ``upstream`` and staging downloads in ``temp``."""
    block = site_config(web, port, hash_index=False)
    packages = re.search(r"\n    # Files, never a directory.*?\n    }\n", block, re.S)
    assert packages is not None, "README's server block has no /packages/ location"
    fetch = readme_server_block("Files on demand with nginx")
    fetch = re.sub(r"proxy_pass [^;]+;", f"proxy_pass {upstream.rstrip('/')};", fetch)
    fetch = re.sub(r"proxy_temp_path [^;]+;", f"proxy_temp_path {temp};", fetch)
    fetch = "".join(f"    {line}\n" if line else "\n" for line in fetch.splitlines())
    return block[:packages.start()] + "\n" + fetch + block[packages.end():]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Nginx:
    url: str
    access_log: Path
    error_log: Path


@contextmanager
def run_nginx(web: Path, workdir: Path, hash_index: bool = False) -> Iterator[Nginx]:
    with run_nginx_site(lambda port: site_config(web, port, hash_index), workdir) as nginx:
        yield nginx


@contextmanager
def run_nginx_site(site: Callable[[int], str], workdir: Path) -> Iterator[Nginx]:
    """nginx serving the server block ``site(port)`` on 127.0.0.1:port until the block ends."""
    binary = nginx_binary()
    assert binary, "nginx is not installed"
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    access_log, error_log = workdir / "access.log", workdir / "error.log"
    conf = workdir / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {error_log} info;\nevents {{ worker_connections 64; }}\n"
        "http {\n"
        "    default_type application/octet-stream;\n"
        f"    access_log {access_log} combined;\n"
        f"    client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;\n"
        f"    fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi;\n"
        f"    scgi_temp_path {workdir}/scgi;\n"
        + site(port) + "}\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _, err = proc.communicate(timeout=5)
                    raise RuntimeError(f"nginx did not start: {err.decode(errors='replace')}") from None
                time.sleep(0.05)
        yield Nginx(f"http://127.0.0.1:{port}", access_log, error_log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
