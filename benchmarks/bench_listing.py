"""A downstream incremental run through the PEP 691 JSON listing of a 750,000-project master.

The fake upstream has no XML-RPC (as our mirror behind nginx, or any static
mirror): a client learns what changed from the root listing with each
project's ``_last-serial``. Seeds a mirror as if a full sync to serial S had
run (as ``bench_incremental_root.py`` does), lets ours make one untimed no-op
run (as a cron run before it would: it records the root index's marks, a
one-time cost a seeded mirror has not paid), then times, with 30 ms latency
per request:

- ``changed``: 10 projects changed upstream (8 new releases, a new project,
  a removed one): the listing is read in full (200);
- ``unchanged``: nothing changed since: we ask with the ETag we kept and get
  a 304; bandersnatch 8.2 reads the whole listing again;
- ``unchanged, no validators`` (ours only): ``listing-state`` deleted first,
  so the unchanged listing is read in full: what the 304 saves.

::

    venv/bin/python benchmarks/bench_listing.py [--projects 750000] [--no-peer]

Prints, per client and phase: exit status, wall time, peak RSS, upstream
requests, upstream body bytes and the listing's status. The peer (bandersnatch
8.2.0 from PyPI) is installed as ``bench_clients.py`` does; if it cannot be,
ours is reported alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from bench_clients import (  # noqa: E402
    DEFAULT_PEER_VENV,
    PEER_VERSION,
    Client,
    PeerUnavailable,
    child_env,
    ensure_peer_venv,
    our_client,
    peer_client,
)
from bench_incremental_root import seed_mirror  # noqa: E402
from support.fakepypi import Upstream  # noqa: E402


@dataclass
class Figure:
    client: str
    phase: str
    exit: int
    time: str  # "/usr/bin/time" line: wall and peak RSS
    requests: int
    body_bytes: int
    listing: str  # status(es) of GET /simple/

    def row(self) -> str:
        return (f"{self.client:<20} {self.phase:<27} exit {self.exit}  {self.time:<32} "
                f"{self.requests:>4} req {self.body_bytes / 1e6:>8.2f} MB  listing {self.listing}")


def seed_peer(directory: Path, names: list[str], serial: int) -> None:
    """What a finished bandersnatch 8.x full sync to ``serial`` leaves: status, generation, a
    ``web/simple/<project>/`` directory per project (8.x lists them to rebuild its root index)."""
    simple = directory / "web" / "simple"
    simple.mkdir(parents=True)
    for name in names:
        os.mkdir(simple / name)
    (directory / "generation").write_text("5")
    (directory / "status").write_text(str(serial))


def run_phase(upstream: Upstream, client: Client, config: Path, phase: str) -> Figure:
    upstream.reset_requests()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e s wall, %M KB peak RSS", *client.command(config)],
        env=child_env(client.extra_env), capture_output=True, text=True, check=False,
    )
    requests, body = upstream.traffic_total()
    listing = ",".join(str(r.status) for r in upstream.requests if r.path == "/simple/") or "-"
    time_line = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "?"
    return Figure(client.label, phase, result.returncode, time_line, requests, body, listing)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=750_000)
    parser.add_argument("--latency", type=float, default=0.030)
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument("--peer-python", help="a Python >= 3.12 for the peer's venv")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        peer: Client | None = None
        if not args.no_peer:
            try:
                venv = ensure_peer_venv(DEFAULT_PEER_VENV, args.peer_python, work / "peer-install.log")
                peer = peer_client(venv)
            except PeerUnavailable as why:
                print(f"bandersnatch {PEER_VERSION} is not available, ours alone: {why}")
        ours = our_client(sys.executable)

        upstream = Upstream()
        upstream.without_xmlrpc("404")
        upstream.add_bulk_projects(args.projects)
        for i in range(5):
            upstream.add_wheel(f"wproj-{i}", "1.0")
        upstream.start()
        try:
            listed = upstream.list_packages_with_serial()
            seeded = sorted(listed.items())
            configs: dict[str, Path] = {}
            for client in (ours, peer):
                if client is None:
                    continue
                root = work / client.key
                root.mkdir()
                configs[client.key] = client.write_config(root, upstream.url, 3, 30)
                if client is ours:
                    seed_mirror(root / "mirror", seeded, upstream.serial)
                    # One untimed no-op run first, as the cron run before it (bench_incremental_root.py
                    # does the same): it records the root index's marks, which a seeded mirror lacks; a
                    # mirror pays them once, on its first run after an upgrade, not on every run.
                    warm_up = run_phase(upstream, client, configs[client.key], "warm-up")
                    if warm_up.exit:
                        print(f"the untimed warm-up run failed: exit {warm_up.exit}")
                        return warm_up.exit
                else:
                    seed_peer(root / "mirror", [n for n, _ in seeded], upstream.serial)

            for i in range(8):
                upstream.add_wheel(f"wproj-{i % 5}", f"2.{i}")
            upstream.add_wheel("brand-new", "1.0")
            upstream.remove_project(next(iter(upstream.bulk_names())))
            upstream.latency = args.latency
            clients = [c for c in (ours, peer) if c is not None]
            figures = [run_phase(upstream, c, configs[c.key], "changed") for c in clients]
            figures += [run_phase(upstream, c, configs[c.key], "unchanged") for c in clients]
            (work / "ours" / "mirror" / "listing-state").unlink(missing_ok=True)
            figures.append(run_phase(upstream, ours, configs["ours"], "unchanged, no validators"))
        finally:
            upstream.stop()
        print(f"{args.projects:,} bulk projects + 6 with files, {args.latency * 1000:g} ms latency, "
              "master without XML-RPC")
        for figure in figures:
            print(figure.row())
        return max(f.exit for f in figures)


if __name__ == "__main__":
    sys.exit(main())
