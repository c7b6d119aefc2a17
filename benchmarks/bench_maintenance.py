"""What each maintenance action costs: full sync, a rerun after deleting ``state``, ``--force-check``,
``verify`` and ``verify --fast``, on one mirror of the fake PyPI with 30 ms per request::

    venv/bin/python benchmarks/bench_maintenance.py [--projects 100] [--files 4] [--kib 64]

Prints the wall time and the upstream requests of each, in the order an operator would run them.
"""

from __future__ import annotations

import argparse
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from support.fakepypi import Upstream  # noqa: E402
from support.mirrortools import write_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--kib", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(7)
    with Upstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        for p in range(args.projects):
            for v in range(args.files):
                upstream.add_file(f"proj{p:04d}", f"proj{p:04d}-{v}.0.tar.gz", rng.randbytes(args.kib * 1024))
        upstream.latency = 0.030
        mirror = write_config(Path(tmp), upstream.url, workers="3")
        size = args.projects * args.files * args.kib // 1024
        print(f"{args.projects} projects, {args.projects * args.files} files, {size} MiB; 30 ms per request, "
              "3 workers")

        def step(what: str, argv: list[str], before: object = None) -> None:
            upstream.reset_requests()
            started = time.monotonic()
            code = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), *argv],
                                  capture_output=True).returncode
            wall = time.monotonic() - started
            print(f"  {what:<38} {wall:7.2f} s  {upstream.traffic_total()[0]:6d} requests  exit {code}")

        step("full sync", ["mirror"])
        step("no-op run", ["mirror"])
        (mirror.root / "state").unlink()
        step("after deleting state (a full listing)", ["mirror"])
        step("mirror --force-check", ["mirror", "--force-check"])
        step("verify", ["verify"])
        step("verify --fast", ["verify", "--fast"])


if __name__ == "__main__":
    main()
