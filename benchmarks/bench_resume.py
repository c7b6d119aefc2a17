"""Bytes fetched again when a big download is cut off at 90%, with and without Range resumption.

A 200 MB file (``--mib``) on the fake PyPI; the first answer announces the full length and
closes after 90% of it.  With resumption the retry asks ``Range: bytes=N-`` (``If-Range`` the
file's ETag) and gets the last 10% as a 206; a server that ignores ``Range`` makes the retry
start over.  Prints the bytes sent for the file in both cases::

    venv/bin/python benchmarks/bench_resume.py [--mib 200]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from support.fakepypi import Upstream  # noqa: E402
from support.mirrortools import write_config  # noqa: E402


def measure(mib: int, honour_range: bool) -> tuple[int, int, float]:
    content = bytes(range(256)) * (mib * 4096)
    with Upstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        upstream.add_file("big", "big-1.0.tar.gz", content, version="1.0")
        upstream.honour_range = honour_range
        upstream.truncate("big-1.0.tar.gz", keep=0.9)
        mirror = write_config(Path(tmp), upstream.url, timeout="60")
        upstream.reset_requests()
        started = time.monotonic()
        code = mirror.run()
        wall = time.monotonic() - started
        assert code == 0, code
        sent = sum(r.sent for r in upstream.requests if r.path.endswith("big-1.0.tar.gz"))
    return len(content), sent, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for honour in (True, False):
        size, sent, wall = measure(args.mib, honour)
        print(f"{'Range honoured' if honour else 'Range ignored '}: file {size:,} bytes, sent {sent:,}, "
              f"fetched again {sent - size:,} ({(sent - size) / size:.0%}), {wall:.1f} s")


if __name__ == "__main__":
    main()
