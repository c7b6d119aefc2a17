"""``release-files = on-demand`` through README's nginx block: a file's first request and its second.

The fake PyPI (with ``--latency`` seconds per request, a far upstream) holds the
sample corpus plus one large wheel; an on-demand mirror of it is synced (no file
downloaded), then nginx serves it with the fake PyPI as its ``@fetch`` upstream.
Each round asks nginx for the large wheel twice: the first request goes to
upstream and keeps the file, the second is served from disk.  Printed: the
medians of the first and second request's wall, and the upstream requests each
cost.  There is no peer figure: bandersnatch 8 has no such mode.

    PYTHONPATH=$PWD PATH=$PATH:/usr/sbin python benchmarks/bench_on_demand.py --rounds 5
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

import requests  # noqa: E402
from support.fakepypi import Upstream, populate_sample  # noqa: E402
from support.mirrortools import write_config  # noqa: E402
from support.nginx_server import on_demand_site_config, run_nginx_site  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=20, help="size of the large file")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds upstream adds per request")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-on-demand-"))
    try:
        with Upstream() as upstream:
            populate_sample(upstream)
            upstream.add_file("big", "big-1.0.tar.gz", os.urandom(args.size_mb << 20))
            big = upstream.get_file("big", "big-1.0.tar.gz")
            mirror = write_config(work, upstream.url, release_files="on-demand")
            assert mirror.run() == 0
            upstream.latency = args.latency
            site = functools.partial(on_demand_site_config, mirror.web, upstream=upstream.url,
                                     temp=mirror.root / "tmp" / "nginx-fetch")
            first, second, asked = [], [], []
            with run_nginx_site(site, work / "nginx") as nginx:
                for _ in range(args.rounds):
                    kept = mirror.web / big.path.lstrip("/")
                    kept.unlink(missing_ok=True)
                    before = len(upstream.requests)
                    for walls in (first, second):
                        start = time.monotonic()
                        answer = requests.get(nginx.url + big.path, timeout=300)
                        walls.append(time.monotonic() - start)
                        assert answer.status_code == 200 and len(answer.content) == big.size
                        asked.append(len(upstream.requests) - before)
                        while not kept.exists():  # nginx renames it into place as the answer ends
                            time.sleep(0.01)
            load = os.getloadavg()[0]
            print(f"on-demand, {args.size_mb} MB file, upstream latency {args.latency}s, "
                  f"{args.rounds} rounds, load average {load:.1f}")
            print(f"first request (fetched from upstream, kept): median {statistics.median(first):.3f} s, "
                  f"upstream requests {asked[0::2]}")
            print(f"second request (from disk): median {statistics.median(second):.3f} s, "
                  f"upstream requests {[b - a for a, b in zip(asked[0::2], asked[1::2], strict=True)]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
