"""Big files at link speed: ours, bandersnatch 8.2.0 and curl fetching the same large files from nginx.

A seeded corpus of large files (``--files``, sizes from ``--min-mib`` to ``--max-mib``, one
file per project, so both clients fetch ``workers`` files at once) is written under
``--workdir`` (default ``/work/bench-big``) and served by a real nginx
(``tests/support/nginx_server.py``) from its static root; nginx passes every other
request (XML-RPC, ``/simple/``, ``/pypi/<p>/json``) to the fake PyPI, whose pages list
the files (``Upstream.add_external_file``).  Two phases, each with its own nginx:

1. **uncapped**: our wall against ``curl --parallel --parallel-max <workers>`` fetching the
   same URLs to disk (no hashing, no fsync);
2. **capped**: nginx ``limit_rate`` (``--rate-mib`` MiB/s per connection): the aggregate
   throughput while every worker had a file to fetch (from the first file's start to
   the end of the file after which fewer than ``workers`` remain: the last files' tail
   is left out), against ``workers x rate``; and CPU seconds per GB.

Each client runs ``--runs`` times per phase (medians shown), into an empty directory
each time; wall, user+sys CPU and peak RSS come from ``os.wait4`` through
``bench_spawn.py`` (the whole process tree: a child's rusage includes what it reaped).
The corpus is deleted at the end (``--keep`` keeps it)::

    venv/bin/python benchmarks/bench_bigfiles.py                         # 8 x 50-150 MiB, ~2 min
    venv/bin/python benchmarks/bench_bigfiles.py --files 20 --min-mib 100 --max-mib 500
    venv/bin/python benchmarks/bench_bigfiles.py --baseline ../main     # also ours as of another checkout
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import bench_clients as clients  # noqa: E402
from support.fakepypi import Upstream  # noqa: E402
from support.nginx_server import run_nginx_site  # noqa: E402

MIB = 1 << 20
BLOCK = 4 * MIB  # a file is one seeded random block repeated: cheap to write, incompressible enough


@dataclass(frozen=True)
class BigFile:
    project: str
    filename: str
    size: int
    sha256: str
    path: str  # URL path, as the pages link it


@dataclass
class Run:
    """One measured client run and, when nginx logged it, its transfers."""

    client: str
    wall: float
    cpu: float
    rss_mib: float
    ok: bool
    transfers: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, bytes)


# ------------------------------------------------------------------ corpus


def write_corpus(static: Path, args: argparse.Namespace) -> list[tuple[str, str, int, str, Path]]:
    """The files under ``static/tmp``: (project, filename, size, sha256, where), hashed as written."""
    rng = random.Random(args.seed)
    staging = static / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(args.files):
        size = rng.randint(args.min_mib * MIB, args.max_mib * MIB)
        block = rng.randbytes(BLOCK)
        where = staging / f"{i:03d}"
        digest = hashlib.sha256()
        with where.open("wb") as f:
            left = size
            while left:
                piece = block[: min(left, BLOCK)]
                f.write(piece)
                digest.update(piece)
                left -= len(piece)
        made.append((f"big-{i:03d}", f"big_{i:03d}-1.0.tar.gz", size, digest.hexdigest(), where))
    return made


def publish_corpus(upstream: Upstream, static: Path, args: argparse.Namespace) -> list[BigFile]:
    """Write the corpus, list each file on the fake, move it where nginx serves that URL path."""
    files = []
    for project, filename, size, sha256, where in write_corpus(static, args):
        entry = upstream.add_external_file(project, filename, size=size, sha256=sha256, version="1.0")
        target = static / entry.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        where.rename(target)
        files.append(BigFile(project, filename, size, sha256, entry.path))
    return files


# ------------------------------------------------------------------ nginx


def site(port: int, static: Path, fake: str, log: Path, rate: int) -> str:
    """Files from disk (``limit_rate`` per connection when ``rate``); every other path from the fake."""
    limit = f"limit_rate {rate};" if rate else ""
    return (
        "log_format bigfiles '$msec $request_time $status $body_bytes_sent $request_uri';\n"
        f"server {{\n    listen 127.0.0.1:{port};\n    access_log {log} bigfiles;\n"
        f"    location /packages/ {{ root {static}; sendfile on; tcp_nopush on; {limit} }}\n"
        f"    location / {{ proxy_pass {fake}; proxy_http_version 1.1; proxy_set_header Host $http_host; }}\n"
        "}\n"
    )


@contextmanager
def nginx_in_front(upstream: Upstream, fake_url: str, static: Path, workdir: Path,
                   rate: int) -> Iterator[str]:
    """nginx for one phase; the fake's pages link files at nginx's URL while it runs."""
    log = workdir / "files.log"
    with run_nginx_site(lambda port: site(port, static, fake_url, log, rate), workdir) as nginx:
        upstream.url = nginx.url
        try:
            yield nginx.url
        finally:
            upstream.url = fake_url


def transfers_since(log: Path, offset: int) -> tuple[list[tuple[float, float, int]], int]:
    """(start, end, bytes) of each file answer nginx logged after ``offset``; the new offset."""
    if not log.exists():
        return [], offset
    with log.open("rb") as f:
        f.seek(offset)
        data = f.read()
    found = []
    for line in data.decode().splitlines():
        end, took, status, sent, uri = line.split(" ", 4)
        if uri.startswith("/packages/") and status in ("200", "206"):
            found.append((float(end) - float(took), float(end), int(sent)))
    return found, offset + len(data)


def busy_throughput(transfers: list[tuple[float, float, int]], workers: int) -> float | None:
    """Bytes per second while ``workers`` files were being fetched: before the tail starts.

    The window runs from the first transfer's start to the end of the transfer after which
    fewer than ``workers`` remain; a transfer straddling its end counts pro rata (nginx's
    ``limit_rate`` keeps each connection's rate even).
    """
    if len(transfers) < workers:
        return None
    t0 = min(start for start, _, _ in transfers)
    t1 = sorted(end for _, end, _ in transfers)[len(transfers) - workers]
    if t1 <= t0:
        return None
    inside = 0.0
    for start, end, sent in transfers:
        overlap = max(0.0, min(end, t1) - max(start, t0))
        inside += sent * overlap / (end - start) if end > start else sent * (start <= t1)
    return inside / (t1 - t0)


# ------------------------------------------------------------------ clients


def curl_command(files: list[BigFile], url: str, target: Path, workers: int) -> list[str]:
    command = [shutil.which("curl") or "curl", "--silent", "--show-error", "--fail", "--parallel",
               "--parallel-max", str(workers), "--create-dirs"]
    for i, f in enumerate(files):
        command += ["-o", str(target / f"{i:03d}"), url + f.path]
    return command


def run_client(name: str, spawner: clients.Spawner, client: clients.Client | None, files: list[BigFile],
               url: str, root: Path, workers: int) -> clients.ChildResult:
    """One run into the empty ``root``; curl when ``client`` is None."""
    root.mkdir(parents=True)
    log = root.parent / f"{name}.log"
    if client is None:
        return spawner.run(curl_command(files, url, root / "files", workers), env=clients.child_env(),
                           log=log, timeout=3600)
    config = client.write_config(root, url, workers, timeout=60)
    return client.run(spawner, config, log, timeout=3600)


def complete(name: str, root: Path, files: list[BigFile]) -> bool:
    """Every file there with its size (ours and the peer verified sha256 themselves; curl did not)."""
    if name == "curl":
        there = sorted((root / "files").iterdir()) if (root / "files").is_dir() else []
        return [p.stat().st_size for p in there] == [f.size for f in files]
    web = root / "mirror" / "web"
    return all((web / f.path.lstrip("/")).is_file() and (web / f.path.lstrip("/")).stat().st_size == f.size
               for f in files)


def phase(label: str, rate: int, args: argparse.Namespace, spawner: clients.Spawner, upstream: Upstream,
          fake_url: str, files: list[BigFile], runners: dict[str, clients.Client | None]) -> list[Run]:
    workdir = args.workdir / f"nginx-{label}"
    runs: list[Run] = []
    with nginx_in_front(upstream, fake_url, args.workdir / "static", workdir, rate) as url:
        offset = 0
        for n in range(args.runs):
            for name, client in runners.items():
                root = args.workdir / "runs" / f"{label}-{name}-{n}"
                result = run_client(name, spawner, client, files, url, root, args.workers)
                transfers, offset = transfers_since(workdir / "files.log", offset)
                ok = result.exit_code == 0 and complete(name, root, files)
                runs.append(Run(name, result.wall, result.cpu, result.maxrss_mb, ok, transfers))
                if not ok:
                    print(f"  {label} {name}: exit {result.exit_code}, mirror incomplete:\n"
                          f"{clients.tail(root.parent / f'{name}.log')}", file=sys.stderr)
                shutil.rmtree(root)  # the disk holds one copy at a time
    return runs


# ------------------------------------------------------------------ report


def report(label: str, rate: int, runs: list[Run], files: list[BigFile], workers: int) -> dict[str, object]:
    gb = sum(f.size for f in files) / 1e9
    print(f"\n{label}: {len(files)} files, {gb:.2f} GB, {workers} workers"
          + (f", limit_rate {rate / MIB:g} MiB/s per connection" if rate else ", no rate limit"))
    print(f"  {'client':<8} {'wall s':>8} {'CPU s':>7} {'CPU s/GB':>9} {'RSS MiB':>8} {'MB/s busy':>10}"
          f" {'of cap':>7}  runs ok")
    table: dict[str, object] = {}
    for name in dict.fromkeys(r.client for r in runs):
        mine = [r for r in runs if r.client == name]
        wall = statistics.median(r.wall for r in mine)
        cpu = statistics.median(r.cpu for r in mine)
        rss = statistics.median(r.rss_mib for r in mine)
        rates = [t for r in mine if (t := busy_throughput(r.transfers, workers)) is not None]
        busy = statistics.median(rates) if rates else None
        share = busy / (workers * rate) if busy is not None and rate else None
        shown_busy = "" if busy is None else f"{busy / 1e6:.1f}"
        shown_share = "" if share is None else f"{share:.1%}"
        print(f"  {name:<8} {wall:8.2f} {cpu:7.2f} {cpu / gb:9.2f} {rss:8.1f} {shown_busy:>10}"
              f" {shown_share:>7}"
              f"  {sum(r.ok for r in mine)}/{len(mine)}  walls {', '.join(f'{r.wall:.2f}' for r in mine)}")
        table[name] = {"wall": wall, "cpu": cpu, "cpu_per_gb": cpu / gb, "rss_mib": rss,
                       "busy_bytes_per_s": busy, "of_cap": share, "walls": [r.wall for r in mine],
                       "cpus": [r.cpu for r in mine],
                       "ok": all(r.ok for r in mine)}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--min-mib", type=int, default=50)
    parser.add_argument("--max-mib", type=int, default=150)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rate-mib", type=float, default=50.0, help="limit_rate per connection (capped)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each client per phase (medians shown)")
    parser.add_argument("--phases", default="uncapped,capped")
    parser.add_argument("--workdir", type=Path, default=Path("/work/bench-big"))
    parser.add_argument("--python", default=sys.executable, help="Python for our client")
    parser.add_argument("--baseline", type=Path, help="also run ours from this checkout (before/after)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--no-curl", action="store_true")
    parser.add_argument("--peer-venv", type=Path, default=clients.DEFAULT_PEER_VENV)
    parser.add_argument("--peer-python", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the corpus and nginx's logs")
    parser.add_argument("--json", type=Path, help="write every figure there too")
    args = parser.parse_args()
    if args.workdir.exists():
        sys.exit(f"{args.workdir} exists: remove it or pass another --workdir")
    spawner = clients.Spawner()  # first, while this process is small: see bench_spawn.py
    args.workdir.mkdir(parents=True)
    runners: dict[str, clients.Client | None] = {} if args.no_curl else {"curl": None}
    runners["ours"] = clients.our_client(args.python)
    if args.baseline:
        runners["baseline"] = clients.Client("ours", "baseline", [args.python, "-m", "bandersnatch"],
                                             {"PYTHONPATH": str(args.baseline.resolve())})
    if not args.no_peer:
        venv = clients.ensure_peer_venv(args.peer_venv, args.peer_python, args.workdir / "peer-install.log")
        runners["peer"] = clients.peer_client(venv)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    figures: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        with Upstream() as upstream:
            fake_url = upstream.url
            started = time.monotonic()
            files = publish_corpus(upstream, args.workdir / "static", args)
            print(f"corpus: {len(files)} files, {sum(f.size for f in files) / 1e9:.2f} GB, "
                  f"written in {time.monotonic() - started:.1f} s")
            for label in args.phases.split(","):
                rate = int(args.rate_mib * MIB) if label == "capped" else 0
                runs = phase(label, rate, args, spawner, upstream, fake_url, files, runners)
                figures[label] = report(label, rate, runs, files, args.workers)
                print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        spawner.close()
        if args.keep:
            print(f"kept: {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
