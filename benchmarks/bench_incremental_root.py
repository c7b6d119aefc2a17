"""Incremental sync against a 750,000-project mirror, without doing the full sync first.

Seeds a mirror directory as if a full sync had run (state, generation, a
750,000-name root index with each project's serial, and the pages of its first
and last project, which every run checks are there), then lets 10 changes
happen upstream (8 new releases, a new project, a removed project: the root
index must be rewritten) and times ``bandersnatch mirror`` with 30 ms of
latency per request::

    venv/bin/python benchmarks/bench_incremental_root.py [--projects 750000]

Prints wall time, peak RSS (``/usr/bin/time``) and upstream requests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from support.fakepypi import Upstream  # noqa: E402

from bandersnatch.formats.simple import (  # noqa: E402
    ProjectPage,
    iter_root_html,
    iter_root_json,
    render_project_html,
    render_project_json,
)
from bandersnatch.ledger.state import GENERATION  # noqa: E402
from bandersnatch.store.atomic import atomic_write  # noqa: E402


def seed_mirror(directory: Path, projects: list[tuple[str, int]], serial: int) -> None:
    staging = directory / "tmp" / "mirror"
    (directory / "web" / "simple").mkdir(parents=True)
    staging.mkdir(parents=True)
    root = directory / "web" / "simple"
    atomic_write(root / "index.v1_json", iter_root_json(projects, serial), staging)
    atomic_write(root / "index.html", iter_root_html(((n, n + "/") for n, _ in projects), serial), staging)
    # Every run checks that the root index's first and last projects have pages (content lost?).
    for name, last_serial in {projects[0], projects[-1]} if projects else ():
        page = ProjectPage(name, ())
        (root / name).mkdir()
        atomic_write(root / name / "index.v1_json", render_project_json(page, last_serial), staging)
        atomic_write(root / name / "index.html", render_project_html(page, last_serial), staging)
    (directory / "generation").write_text(GENERATION + "\n")
    (directory / "state").write_text(f"{serial}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=750_000)
    parser.add_argument("--latency", type=float, default=0.030)
    args = parser.parse_args()
    upstream = Upstream()
    upstream.add_bulk_projects(args.projects)
    for i in range(5):
        upstream.add_wheel(f"wproj-{i}", "1.0")
    upstream.latency = args.latency
    upstream.start()
    try:
        with tempfile.TemporaryDirectory() as work:
            directory = Path(work) / "mirror"
            listed = upstream.list_packages_with_serial()
            seed_mirror(directory, [(n, listed[n]) for n in sorted(upstream.bulk_names())], upstream.serial)
            config = Path(work) / "bandersnatch.conf"
            config.write_text(f"[mirror]\ndirectory = {directory}\nmaster = {upstream.url}\n"
                              "allow-non-https = true\ndownload-hosts =\nworkers = 3\n")
            # One untimed no-op run first, as the cron job before it: it records the root index's
            # marks and upstream's serial, which a seeded mirror lacks (a mirror's first run after
            # an upgrade reads its root index whole once to mark it; that is not the phase timed here).
            subprocess.run([sys.executable, "-m", "bandersnatch", "-q", "-c", str(config), "mirror"],
                           cwd=HERE.parent, capture_output=True, check=True)
            for i in range(8):
                upstream.add_wheel(f"wproj-{i % 5}", f"2.{i}")
            upstream.add_wheel("brand-new", "1.0")
            upstream.remove_project(next(iter(upstream.bulk_names())))
            upstream.reset_requests()
            result = subprocess.run(
                ["/usr/bin/time", "-f", "%e s wall, %M KB peak RSS", sys.executable, "-m", "bandersnatch",
                 "-q", "-c", str(config), "mirror"],
                cwd=HERE.parent, capture_output=True, text=True, check=False,
            )
            print(f"exit {result.returncode}; {result.stderr.strip().splitlines()[-1]}; "
                  f"{len(upstream.requests)} upstream requests")
            return result.returncode
    finally:
        upstream.stop()


if __name__ == "__main__":
    sys.exit(main())
