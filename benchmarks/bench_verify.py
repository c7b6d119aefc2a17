"""``bandersnatch verify``: read speed against ``sha256sum``, and peak memory on a large synthetic mirror.

Run from the repository root with the project's venv::

    venv/bin/python benchmarks/bench_verify.py                    # both parts, defaults (~3 min)
    venv/bin/python benchmarks/bench_verify.py --speed-mb 4096    # more data for the speed part
    venv/bin/python benchmarks/bench_verify.py --speed-mb 0 --projects 750000 \\
        --files 1000000,2000000,5000000 --corpus /work/bench-verify/corpus   # PyPI's projects, growing

Speed: ``--speed-mb`` of 8 MiB files of random bytes in a seeded mirror, hashed
by ``bandersnatch verify`` (its reader threads: ``workers``), by one
``sha256sum`` over the same files, and by ``sha256sum`` on as many parallel
processes as verify has readers (``xargs -P``).  Each is run once to warm the
page cache, then timed: the figures compare hashing and reading from memory,
not the disk (dropping the cache needs root; pass ``--drop-caches`` to drop it
before each timed run instead, as root).

Scale: ``--projects`` projects with ``--files`` tiny files between them,
written straight to disk as a synced mirror would have them (pages with their
``_on-disk`` records, files in PyPI's ``packages/xx/yy/<hash>/<file>`` layout,
the root index) by os calls on ``--jobs`` processes; then ``verify --fast`` and
``verify`` (``--modes``) each in a child process, whose wall, CPU and peak RSS
(its own ``VmHWM``) are reported.  With several sizes the corpus grows to each in
turn (only the new files are written; ``--corpus`` keeps it between runs).  Each
file costs two inodes (its hash directory and itself; ``--per-dir`` shares hash
directories, which PyPI does not).  Nothing is fetched: upstream is asked only
about directories the root index does not name, and there are none.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import resource
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
    """A synced-looking mirror in ``root/mirror``: ``files`` random files of ``size`` bytes; returns them."""
    rng = random.Random(seed)
    web = root / "mirror" / "web"
    simple, packages = web / "simple", web / "packages"
    simple.mkdir(parents=True)
    written: list[Path] = []
    per = spread(files, projects)
    for p, count in enumerate(per):
        key = project_key(p)
        entries = []
        for i in range(count):
            filename = file_name(key, i)
            data = rng.randbytes(size) if size else f"{key} {i}\n".encode()
            digest = hashlib.sha256(data).hexdigest()
            segments = [digest[:2], digest[2:4], digest[4:], filename]
            path = packages.joinpath(*segments)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            written.append(path)
            entries.append(DistFile(filename, file_href(segments, False), {"sha256": digest}, size=len(data),
                                    on_disk={"mtime-ns": path.stat().st_mtime_ns}))
        write_pages(simple, key, entries)
    finish_mirror(root / "mirror")
    return written


def spread(files: int, projects: int) -> list[int]:
    """How many files each project has: as even as it gets (PyPI's skew changes no step's cost per file)."""
    return [files // projects + (1 if i < files % projects else 0) for i in range(projects)]


def project_key(p: int) -> str:
    return f"project-{p:07d}"


def file_name(key: str, i: int) -> str:
    return f"{key.replace('-', '_')}-{i}.tar.gz"


def write_pages(simple: Path, key: str, entries: list[DistFile]) -> None:
    page = ProjectPage(key, tuple(entries))
    (simple / key).mkdir(exist_ok=True)
    (simple / key / "index.v1_json").write_bytes(render_project_json(page, 1))
    (simple / key / "index.html").write_bytes(render_project_html(page, 1))


def finish_mirror(mirror: Path) -> None:
    """The root index from the project directories, and the serial a finished sync leaves."""
    for name in ("index.html", "index.v1_json"):
        (mirror / "web" / "simple" / name).unlink(missing_ok=True)
    RootIndex(mirror / "web" / "simple", mirror / "tmp" / "seed", False).update(None, set(), 1)
    (mirror / "state").write_text("1\n")


# ------------------------------------------------------------------ the scale corpus, built fast


def build_corpus(mirror: Path, projects: int, files: int, per_dir: int, jobs: int) -> float:
    """Tiny files (``<project> <i>\\n``) and their pages, as a synced mirror has them; seconds taken.

    PyPI's layout: ``packages/xx/yy/<rest of the sha256>/<file>``, one hash directory per file
    (``per_dir`` > 1 puts that many of a project's files in the first one's directory, which
    is not PyPI's: it saves inodes).  Idempotent: files already there are kept (stat'ed for
    their mtime), so a corpus grows from 1M to 2M files by writing only the new ones; the
    pages are rewritten.  ``jobs`` processes share the projects.
    """
    started = time.perf_counter()
    packages = mirror / "web" / "packages"
    (mirror / "web" / "simple").mkdir(parents=True, exist_ok=True)
    for a in range(256):
        for b in range(256):
            os.makedirs(packages / f"{a:02x}" / f"{b:02x}", exist_ok=True)
    slices = [(mirror, projects, files, per_dir, j, jobs) for j in range(jobs)]
    if jobs == 1:
        _build_slice(slices[0])
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pool.map(_build_slice, slices)
    finish_mirror(mirror)
    return time.perf_counter() - started


def _build_slice(job: tuple[Path, int, int, int, int, int]) -> None:
    """Projects ``j``, ``j + jobs``, ... of the corpus: by os calls, no Path per file."""
    mirror, projects, files, per_dir, j, jobs = job
    packages = str(mirror / "web" / "packages")
    simple = mirror / "web" / "simple"
    per = spread(files, projects)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for p in range(j, projects, jobs):
        key = project_key(p)
        entries = []
        directory = ""
        for i in range(per[p]):
            filename = file_name(key, i)
            data = f"{key} {i}\n".encode()
            digest = hashlib.sha256(data).hexdigest()
            if i % per_dir == 0:
                segments = [digest[:2], digest[2:4], digest[4:]]
                directory = f"{packages}/{'/'.join(segments)}"
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory)
            path = f"{directory}/{filename}"
            try:
                fd = os.open(path, flags, 0o644)
            except FileExistsError:
                mtime = os.stat(path).st_mtime_ns
            else:
                os.write(fd, data)
                mtime = os.fstat(fd).st_mtime_ns
                os.close(fd)
            entries.append(DistFile(filename, file_href([*segments, filename], False), {"sha256": digest},
                                    size=len(data), on_disk={"mtime-ns": mtime}))
        write_pages(simple, key, entries)


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


def scale(args: argparse.Namespace, work: Path) -> list[dict[str, object]]:
    """The corpus grown to each of ``--files`` in turn, each verified as ``--modes`` say."""
    mirror = work / "mirror"
    config = write_config(work, args.workers)
    results = []
    for files in sorted(args.files):
        seeded = build_corpus(mirror, args.projects, files, args.per_dir, args.jobs)
        print(f"corpus: {args.projects} projects, {files} files, built in {seeded:.0f} s", flush=True)
        for mode in args.modes:
            figures = run_verify(work, config, mode == "fast", args.profile)
            results.append({"projects": args.projects, "files": files, "mode": mode,
                            "per_dir": args.per_dir, "seed_seconds": round(seeded), **figures,
                            "load": os.getloadavg()[0]})
            print(json.dumps(results[-1]), flush=True)
    return results


def run_verify(work: Path, config: Path, fast: bool, profile: Path | None) -> dict[str, object]:
    """One ``verify`` (``--fast``) in a child: wall, CPU, its peak RSS, what it found."""
    # The child reports its own high-water mark after exec: ru_maxrss of a child started by
    # vfork also counts the parent's pages (this process, holding the seeded mirror's records).
    hwm = work / "vmhwm"
    run = "sys.exit(cli.main(sys.argv[1:]))"
    if profile is not None:
        out = profile / f"verify-{'fast' if fast else 'full'}-{time.strftime('%H%M%S')}.prof"
        run = f"import cProfile\ncProfile.run('code = cli.main(sys.argv[1:])', {str(out)!r})\nsys.exit(code)"
    wrapper = ("import atexit, sys\n"
               "from bandersnatch import cli\n"
               "def hwm():\n"
               f"    open({str(hwm)!r}, 'w').write([l for l in open('/proc/self/status') "
               "if l.startswith('VmHWM')][0])\n"
               "atexit.register(hwm)\n" + run + "\n")
    argv = [sys.executable, "-c", wrapper, "-q", "-c", str(config), "verify", "--json",
            *(["--fast"] if fast else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, cwd=HERE.parent)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = int(hwm.read_text().split()[1])  # KiB
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"verify failed: {done.stderr.decode()[-600:]}") from None
    return {"verify_seconds": round(seconds, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "peak_rss_mb": round(rss / 1024, 1), "problems": len(doc["problems"]), "counts": doc["counts"]}


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed-mb", type=int, default=1024, help="data for the speed part (0: skip it)")
    parser.add_argument("--projects", type=int, default=20_000, help="projects for the scale part (0: skip)")
    parser.add_argument("--files", type=_sizes, default=[200_000],
                        help="files for the scale part; several (1000000,2000000): the corpus grows to each")
    parser.add_argument("--modes", type=lambda t: t.split(","), default=["fast", "full"],
                        help="verify runs at each size: fast (--fast), full, or both (default fast,full)")
    parser.add_argument("--per-dir", type=int, default=1,
                        help="files per hash directory (1: PyPI's layout; more saves inodes)")
    parser.add_argument("--jobs", type=int, default=2, help="processes building the scale corpus")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="build the scale corpus here and keep it (grown on the next run), not in --dir")
    parser.add_argument("--profile", type=Path, default=None, help="write each verify's cProfile here")
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
            if args.corpus is not None:
                args.corpus.mkdir(parents=True, exist_ok=True)
            figures["scale"] = scale(args, args.corpus or base / "scale")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
