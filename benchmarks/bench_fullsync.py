"""CPU per project of a PyPI-sized full sync, and the no-op run after it (ours only).

The fake PyPI lists ``--projects`` projects (750,000 by default, ``--file-projects``
of them with two small files each) and answers at 0 ms latency, so the run is
bound by the client's own CPU; then a second run finds nothing to do::

    venv/bin/python benchmarks/bench_fullsync.py                   # ~23 min on 2 cores
    venv/bin/python benchmarks/bench_fullsync.py --projects 30000  # ~1 min

Prints, per run: exit code, wall, user and system CPU, CPU per project, peak
RSS (measured through ``bench_spawn.py``, so the benchmark's own memory is not
counted) and upstream requests.  ``bench_mirror.py --scale`` runs the same
full sync among its other scale phases and against the peer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

import bench_clients as clients  # noqa: E402
import bench_corpus as corpus  # noqa: E402
from support.fakepypi import Upstream  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--projects", type=int, default=750_000, help="projects the upstream lists")
    p.add_argument("--file-projects", type=int, default=None,
                   help="projects with files (default: 2,000 per 750,000)")
    p.add_argument("--workers", type=int, default=3, help="the client's workers")
    p.add_argument("--python", default=sys.executable, help="Python that runs our client")
    p.add_argument("--workdir", type=Path, default=None, help="the mirror (default: a new temp dir, removed)")
    args = p.parse_args()
    file_projects = args.file_projects
    if file_projects is None:
        file_projects = max(1, args.projects * 2000 // 750_000)

    spawner = clients.Spawner(args.python)  # before the corpus: see bench_spawn's docstring
    upstream = Upstream()
    info = corpus.build_scale_corpus(upstream, corpus.ScaleSpec(projects=args.projects,
                                                                file_projects=file_projects))
    print(f"upstream: {args.projects:,} projects, {file_projects:,} with files; "
          f"built in {info.seconds:.1f} s")
    upstream.record_requests = False
    url = upstream.start()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-fullsync-"))
    root.mkdir(parents=True, exist_ok=True)
    ours = clients.our_client(args.python)
    config = ours.write_config(root, url, args.workers, timeout=30)
    status = 0
    try:
        for phase in ("full", "no-op"):
            before = upstream.traffic_total()[0]
            result = ours.run(spawner, config, root / f"{phase}.log", timeout=4 * 3600)
            requests = upstream.traffic_total()[0] - before
            per_project = result.cpu / args.projects * 1000
            print(f"{phase:6} exit {result.exit_code}  wall {result.wall:8.1f} s  "
                  f"user {result.cpu_user:7.1f} s  sys {result.cpu_sys:7.1f} s  "
                  f"CPU/project {per_project:.3f} ms  "
                  f"peak RSS {result.maxrss_mb:6.1f} MiB  requests {requests:,}", flush=True)
            status = status or result.exit_code
    finally:
        upstream.stop()
        spawner.close()
        print(f"peak RSS floor (the launcher) {spawner.floor_mb:.1f} MiB")
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"the mirror is kept in {root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
