"""``bandersnatch verify``: read speed against ``sha256sum``, and peak memory on a large synthetic mirror.

Run from the repository root with the project's venv::

    venv/bin/python benchmarks/bench_verify.py                    # both parts, defaults (~3 min)
    venv/bin/python benchmarks/bench_verify.py --speed-mb 4096    # more data for the speed part
    venv/bin/python benchmarks/bench_verify.py --projects 750000 --files 10000000   # the PyPI case

Speed: ``--speed-mb`` of 8 MiB files of random bytes in a seeded mirror, hashed
by ``bandersnatch verify`` (its reader threads: ``workers``), by one
``sha256sum`` over the same files, and by ``sha256sum`` on as many parallel
processes as verify has readers (``xargs -P``).  Each is run once to warm the
page cache, then timed: the figures compare hashing and reading from memory,
not the disk (dropping the cache needs root; pass ``--drop-caches`` to drop it
before each timed run instead, as root).

Scale: ``--projects`` projects with ``--files`` small files between them,
written straight to disk as a synced mirror would have them (pages with their
``_on-disk`` records, files, the root index); then one full ``verify`` in a
child process, whose peak RSS (its own ``VmHWM``) and time are reported.  Nothing
is fetched: upstream is asked only about directories the root index does not
name, and there are none.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bandersnatch.formats.layout import file_href  # noqa: E402
from bandersnatch.formats.simple import DistFile, ProjectPage, render_project_html, render_project_json  # noqa: E402
from bandersnatch.sync.rootindex import RootIndex  # noqa: E402

MiB = 1024 * 1024


def write_config(root: Path, workers: int) -> Path:
    config = root / "bandersnatch.conf"
    config.write_text(f"[mirror]\ndirectory = {root / 'mirror'}\nmaster = http://127.0.0.1:9\n"
                      f"allow-non-https = true\nworkers = {workers}\n")
    return config


def seed_mirror(root: Path, projects: int, files: int, size: int | None, seed: int = 1) -> list[Path]:
    """A synced-looking mirror in ``root/mirror``: ``files`` spread over ``projects``; returns the files."""
    rng = random.Random(seed)
    web = root / "mirror" / "web"
    simple, packages = web / "simple", web / "packages"
    simple.mkdir(parents=True)
    written: list[Path] = []
    per = [files // projects + (1 if i < files % projects else 0) for i in range(projects)]
    for p, count in enumerate(per):
        key = f"project-{p:07d}"
        entries = []
        for i in range(count):
            filename = f"{key.replace('-', '_')}-{i}.tar.gz"
            data = rng.randbytes(size) if size else f"{key} {i}\n".encode()
            digest = hashlib.sha256(data).hexdigest()
            segments = [digest[:2], digest[2:4], digest[4:], filename]
            path = packages.joinpath(*segments)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
            entries.append(DistFile(filename, file_href(segments, False), {"sha256": digest}, size=len(data),
                                    on_disk={"mtime-ns": path.stat().st_mtime_ns}))
        page = ProjectPage(key, tuple(entries))
        (simple / key).mkdir()
        (simple / key / "index.v1_json").write_bytes(render_project_json(page, 1))
        (simple / key / "index.html").write_bytes(render_project_html(page, 1))
    RootIndex(simple, root / "mirror" / "tmp" / "seed", False).update(None, set(), 1)
    (root / "mirror" / "state").write_text("1\n")
    return written


def drop_caches(enabled: bool) -> None:
    if enabled:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(argv: list[str], *, drop: bool, stdin: bytes | None = None) -> float:
    """Seconds of one run of ``argv``, after a warm-up run (or a cache drop)."""
    if drop:
        drop_caches(True)
    else:
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{argv[:3]} failed: {done.stderr.decode()[-400:]}")
    return seconds


def speed(args: argparse.Namespace, work: Path) -> dict[str, object]:
    files = seed_mirror(work, max(1, args.speed_mb // 256), args.speed_mb // 8, 8 * MiB)
    total = sum(p.stat().st_size for p in files) / MiB
    config = write_config(work, args.workers)
    verify = [sys.executable, "-m", "bandersnatch", "-q", "-c", str(config), "verify"]
    listing = b"\0".join(str(p).encode() for p in files)
    results: dict[str, object] = {"files": len(files), "mb": round(total), "workers": args.workers,
                                  "cache": "dropped before each run" if args.drop_caches
                                  else "warm (one run first)"}
    for label, argv, stdin in (
        ("bandersnatch verify", verify, None),
        ("sha256sum (1 process)", ["xargs", "-0", "sha256sum"], listing),
        (f"sha256sum (xargs -P {args.workers})",
         ["xargs", "-0", "-P", str(args.workers), "-n", "8", "sha256sum"], listing),
    ):
        seconds = timed(argv, drop=args.drop_caches, stdin=stdin)
        results[label] = f"{total / seconds:.0f} MB/s ({seconds:.2f} s)"
        print(f"{label:32} {results[label]}", flush=True)
    return results


def scale(args: argparse.Namespace, work: Path) -> dict[str, object]:
    started = time.perf_counter()
    seed_mirror(work, args.projects, args.files, None)
    seeded = time.perf_counter() - started
    config = write_config(work, args.workers)
    # The child reports its own high-water mark after exec: ru_maxrss of a child started by
    # vfork also counts the parent's pages (this process, holding the seeded mirror's records).
    hwm = work / "vmhwm"
    wrapper = ("import atexit, sys\n"
               "from bandersnatch import cli\n"
               "def hwm():\n"
               f"    open({str(hwm)!r}, 'w').write([l for l in open('/proc/self/status') "
               "if l.startswith('VmHWM')][0])\n"
               "atexit.register(hwm)\n"
               "sys.exit(cli.main(sys.argv[1:]))\n")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, "-q", "-c", str(config), "verify", "--json"],
                          capture_output=True, check=False)
    seconds = time.perf_counter() - started
    rss = int(hwm.read_text().split()[1])  # KiB
    doc = json.loads(done.stdout)
    results = {"projects": args.projects, "files": args.files, "seed_seconds": round(seeded),
               "verify_seconds": round(seconds, 1), "peak_rss_mb": round(rss / 1024, 1),
               "problems": len(doc["problems"]), "counts": doc["counts"]}
    print(json.dumps(results), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed-mb", type=int, default=1024, help="data for the speed part (0: skip it)")
    parser.add_argument("--projects", type=int, default=20_000, help="projects for the scale part (0: skip)")
    parser.add_argument("--files", type=int, default=200_000, help="files for the scale part")
    parser.add_argument("--workers", type=int, default=3, help="verify's readers (workers)")
    parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before timed runs")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the mirrors")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-verify-", dir=args.dir))
    figures: dict[str, object] = {}
    try:
        if args.speed_mb:
            figures["speed"] = speed(args, base / "speed")
            shutil.rmtree(base / "speed")
        if args.projects:
            figures["scale"] = scale(args, base / "scale")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
