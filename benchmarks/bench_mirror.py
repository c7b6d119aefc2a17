"""Mirror benchmark: this checkout's client against bandersnatch 8.2.0, on a local fake PyPI.

Run from the repository root with a Python that has the project's requirements
(``requests``, ``lxml``, ``filelock``), e.g. the project's venv::

    venv/bin/python benchmarks/bench_mirror.py                 # default: ~2.5 min on 2 cores
    venv/bin/python benchmarks/bench_mirror.py --json out.json # also write every figure as JSON
    venv/bin/python benchmarks/bench_mirror.py --scale         # 750,000-project listing: ~35 min

Default mode builds a seeded corpus (300 projects, ~2,500 files of 2 KiB to
1 MiB), serves it from ``tests/support/fakepypi.py`` on 127.0.0.1 with 30 ms added to
every request, and runs three phases with each client, each client from its
own empty directory: a full sync, an incremental sync after 10 projects
changed (new releases, a new project, removed files, a removed project,
yanks) and a no-op sync.  Both clients see the same upstream state in every
phase (they run one after the other between the same changes).  Then the same
three phases again on a small-files corpus from a fresh upstream: 150
projects, ~1,150 files of about 10 KB, ~45 % of them real wheels that
advertise PEP 658 core metadata, 4 workers (``--small-*`` options; ``--corpus``
picks one corpus).

The peer is installed on first use into ``benchmarks/.peer-venv`` (Python >=
3.12 from pyenv or PATH, pip with no machine configuration, from PyPI); no
benchmark traffic leaves 127.0.0.1.  ``--no-peer`` runs ours alone.

Scale mode (ours, and the peer for the incremental and no-op phases)::

    full sync of --scale-projects (750,000; all but --scale-file-projects without files),
    then the same 10-project change (ours vs peer, the peer's state seeded as if it had
    done that full sync), a no-op, and an incremental sync driven by --scale-events
    (100,000) changelog events over --scale-event-projects (10,000) projects.

See benchmarks/README.rst for how to read the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import bench_clients as clients  # noqa: E402
import bench_corpus as corpus  # noqa: E402
from support.fakepypi import Upstream, normalize  # noqa: E402

MiB = 1024 * 1024


# ------------------------------------------------------------------ results


@dataclass
class Run:
    """One client's run of one phase."""

    client: str
    exit_code: int
    wall: float
    cpu: float
    cpu_user: float
    cpu_sys: float
    maxrss_mb: float
    requests: int
    bytes: int
    by_kind: dict[str, list[int]]
    in_flight: float  # summed request service time / wall: how many requests were open on average
    repeated: int  # requests for a path this run had already asked for (-1: not recorded)
    in_sync: str
    timed_out: bool
    log: str
    timeline: Timeline | None = None
    metadata_files: int = -1  # .metadata files under web/packages after the run (-1: not checked)
    metadata_in_sync: str = "not checked"  # against the .metadata files the upstream advertises, by sha256


@dataclass
class Timeline:
    """Where a run's wall time went, from the upstream's request log."""

    before_first: float  # process start -> first request received
    after_last: float  # last response written -> process exit
    all_busy: float  # share of [first request, last response] with >= workers requests open
    none_open: float  # share of it with no request open at all


@dataclass
class Phase:
    """One step of the benchmark, run by one or both clients on the same upstream state."""

    name: str
    title: str
    latency: float
    bandwidth: float | None
    workers: int
    runs: dict[str, Run] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    corpus: str = "default"
    loadavg: str = ""  # when the phase started: other work on a shared machine shows here

    def bound(self, key: str = "ours") -> float | None:
        """requests × latency ÷ workers (+ bytes ÷ bandwidth when throttled), from that client's traffic."""
        run = self.runs.get(key)
        if run is None:
            return None
        seconds = run.requests * self.latency / self.workers
        return seconds + (run.bytes / self.bandwidth if self.bandwidth else 0.0)

    def per_connection_bound(self, key: str = "ours") -> float | None:
        """(requests × latency + bytes ÷ bandwidth) ÷ workers: the ideal when bandwidth is per connection."""
        run = self.runs.get(key)
        if run is None or not self.bandwidth:
            return None
        return (run.requests * self.latency + run.bytes / self.bandwidth) / self.workers


@dataclass
class Report:
    mode: str
    settings: dict[str, Any]
    corpus: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)
    peer_problem: str | None = None
    corpora: dict[str, dict[str, Any]] = field(default_factory=dict)  # by Phase.corpus; "default" = corpus


# ------------------------------------------------------------------ the bench


class Bench:
    """The upstream, the clients and their directories; runs phases and records them."""

    def __init__(self, args: argparse.Namespace, workdir: Path, spawner: clients.Spawner,
                 workers: int | None = None) -> None:
        self.args = args
        self.workdir = workdir
        self.spawner = spawner
        self.workers = args.workers if workers is None else workers
        self.upstream = Upstream()
        self.clients: list[clients.Client] = [clients.our_client(args.python)]
        self.configs: dict[str, Path] = {}
        self.peer_problem: str | None = None

    def start(self) -> None:
        self.upstream.start()
        if not self.args.no_peer:
            self._add_peer()
        for client in self.clients:
            root = self.workdir / client.key
            root.mkdir(parents=True, exist_ok=True)
            self.configs[client.key] = client.write_config(
                root, self.upstream.url, self.workers, self.args.client_timeout)

    def _add_peer(self) -> None:
        log = self.workdir / "peer-install.log"
        try:
            venv = clients.ensure_peer_venv(self.args.peer_venv, self.args.peer_python, log)
        except clients.PeerUnavailable as exc:
            self.peer_problem = str(exc)
            print(f"!! peer unavailable, reporting ours only: {exc}", file=sys.stderr)
            return
        self.clients.append(clients.peer_client(venv))

    def stop(self) -> None:
        self.upstream.stop()

    def mirror_dir(self, key: str) -> Path:
        return self.workdir / key / "mirror"

    def has_peer(self) -> bool:
        return any(c.key == "peer" for c in self.clients)

    def expected(self) -> tuple[set[str], set[str], dict[str, str]]:
        """(file paths below /packages/, normalized project names, .metadata path -> sha256) served now."""
        files: set[str] = set()
        pages: set[str] = set()
        metadata: dict[str, str] = {}
        for snapshot in self.upstream.all_current():
            pages.add(normalize(snapshot.name))
            for entry in snapshot.files or ():
                files.add(entry.path[len("/packages/"):])
                if entry.metadata_sha256:
                    metadata[entry.path[len("/packages/"):] + ".metadata"] = entry.metadata_sha256
        return files, pages, metadata

    def run_phase(self, phase: Phase, keys: tuple[str, ...] = ("ours", "peer"), check: bool = True) -> Phase:
        expected = self.expected() if check else None
        phase.loadavg = loadavg()
        for client in self.clients:
            if client.key in keys:
                phase.runs[client.key] = self._run_one(client, phase, expected)
        self.upstream.latency, self.upstream.bandwidth = 0.0, None
        return phase

    def _run_one(self, client: clients.Client, phase: Phase,
                 expected: tuple[set[str], set[str], dict[str, str]] | None) -> Run:
        upstream = self.upstream
        upstream.latency, upstream.bandwidth = phase.latency, phase.bandwidth
        upstream.reset_requests()
        log = self.workdir / f"{client.key}-{phase.name}.log"
        print(f".. {phase.title}: {client.label}", file=sys.stderr, flush=True)
        settle()
        result = client.run(self.spawner, self.configs[client.key], log, self.args.phase_timeout)
        time.sleep(0.05)  # let the server's threads finish their bookkeeping
        requests, sent = upstream.traffic_total()
        by_kind = {k: list(v) for k, v in sorted(upstream.traffic.items())}
        repeated = _repeated(upstream) if upstream.record_requests else -1
        timeline = _timeline(upstream, result, phase.workers) if upstream.record_requests else None
        in_sync, metadata_in_sync, metadata_files = "not checked", "not checked", -1
        if expected is not None:
            files, pages, metadata = expected
            check = clients.check_mirror(files, pages, self.mirror_dir(client.key) / "web", metadata)
            in_sync = check.describe()
            if check.metadata is not None:
                metadata_in_sync, metadata_files = check.metadata.describe(), check.metadata.on_disk
        if result.exit_code != 0:
            print(f"!! {client.label} exited {result.exit_code} in {phase.name}; log tail:\n"
                  f"{clients.tail(log)}", file=sys.stderr)
        return Run(client.key, result.exit_code, result.wall, result.cpu, result.cpu_user, result.cpu_sys,
                   result.maxrss_mb, requests, sent, by_kind,
                   upstream.busy_seconds / result.wall if result.wall else 0.0, repeated, in_sync,
                   result.timed_out, str(log), timeline, metadata_files, metadata_in_sync)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def settle() -> None:
    """Start every measured run on a quiet machine: earlier writes flushed, no garbage pending here."""
    os.sync()
    gc.collect()


def _repeated(upstream: Upstream) -> int:
    """GET requests for a path (query ignored) already asked for in the same run."""
    counts = Counter(r.path.split("?")[0] for r in upstream.requests if r.method == "GET")
    return sum(n - 1 for n in counts.values() if n > 1)


def _timeline(upstream: Upstream, result: clients.ChildResult, workers: int) -> Timeline | None:
    records = [r for r in upstream.requests if r.finished]
    if not records:
        return None
    first = min(r.started for r in records)
    last = max(r.finished for r in records)
    events = sorted([(r.started, 1) for r in records] + [(r.finished, -1) for r in records])
    open_now, at, full, empty = 0, first, 0.0, 0.0
    for moment, step in events:
        full += (moment - at) if open_now >= workers else 0.0
        empty += (moment - at) if open_now == 0 else 0.0
        open_now, at = open_now + step, moment
    span = (last - first) or 1.0
    return Timeline(first - result.started, result.ended - last, full / span, empty / span)


# ------------------------------------------------------------------ default mode


def run_corpora(bench: Bench, args: argparse.Namespace) -> Report:
    """Default mode: the default corpus, then the small-files corpus on its own upstream (``--corpus``)."""
    report = Report("default", _settings(args, bench), {})
    if args.corpus != "small":
        run_default(bench, args, report)
        bench.stop()
    if args.corpus != "default":
        small = Bench(args, bench.workdir / "small", bench.spawner, workers=args.small_workers)
        try:
            run_small(small, args, report)
        finally:
            small.stop()
    return report


def run_default(bench: Bench, args: argparse.Namespace, report: Report) -> None:
    spec = corpus.CorpusSpec(projects=args.projects, files_per_project=args.files_per_project,
                             min_size=args.min_size, median_size=args.median_size, max_size=args.max_size,
                             seed=args.seed, real_wheels=not args.no_default_metadata)
    info = corpus.build_corpus(bench.upstream, spec)
    report.corpus = report.corpora["default"] = _corpus_summary(info, spec)
    bench.start()
    report.peer_problem = bench.peer_problem
    report.phases.append(bench.run_phase(_phase(args, "full", f"full sync ({info.files} files)")))
    changes = corpus.apply_changes(bench.upstream, info, spec)
    incremental = _phase(args, "incremental", "incremental sync (10 changed projects)")
    incremental.notes = [f"{c.kind}: {c.project} ({c.detail})" for c in changes]
    report.phases.append(bench.run_phase(incremental))
    report.phases.append(bench.run_phase(_phase(args, "noop", "no-op sync")))


def run_small(bench: Bench, args: argparse.Namespace, report: Report) -> None:
    """The small-files corpus on its own upstream, the same three phases, added to ``report``."""
    spec = corpus.small_wheels_spec(args.small_projects, args.small_files_per_project, args.small_size,
                                    args.seed)
    info = corpus.build_corpus(bench.upstream, spec)
    summary = _corpus_summary(info, spec)
    summary["metadata_files"] = info.metadata_files
    report.corpora["small"] = summary
    if not report.corpus:
        report.corpus = summary
    bench.start()
    report.peer_problem = report.peer_problem or bench.peer_problem
    latency, workers = args.small_latency, bench.workers

    def small(name: str, title: str) -> Phase:
        return Phase(f"small-{name}", f"small files: {title}", latency, args.bandwidth, workers,
                     corpus="small")

    report.phases.append(bench.run_phase(small(
        "full", f"full sync ({info.files:,} files, {info.metadata_files} with core metadata)")))
    changes = corpus.apply_changes(bench.upstream, info, spec)
    incremental = small("incremental", "incremental sync (10 changed projects)")
    incremental.notes = [f"{c.kind}: {c.project} ({c.detail})" for c in changes]
    report.phases.append(bench.run_phase(incremental))
    report.phases.append(bench.run_phase(small("noop", "no-op sync")))


def _phase(args: argparse.Namespace, name: str, title: str, latency: float | None = None) -> Phase:
    return Phase(name, title, args.latency if latency is None else latency, args.bandwidth, args.workers)


def _corpus_summary(info: corpus.CorpusInfo, spec: Any) -> dict[str, Any]:
    return {"spec": dataclasses.asdict(spec), "projects": len(info.projects), "files": info.files,
            "bytes": info.bytes, "serial": info.serial, "build_seconds": round(info.seconds, 2)}


def checkout_version() -> str:
    """``git`` HEAD of this checkout, with ``+dirty`` when bandersnatch/ has uncommitted changes."""
    def git(*words: str) -> str:
        try:
            done = subprocess.run(["git", *words], cwd=clients.REPO, capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "bandersnatch") else "")


def _settings(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    return {"commit": checkout_version(), "workers": args.workers, "latency": args.latency,
            "bandwidth": args.bandwidth,
            "seed": args.seed, "python": platform.python_version(), "ours": args.python,
            "peer": clients.PEER_VERSION, "machine": platform.platform(), "workdir": str(bench.workdir),
            "rss_floor_mib": round(bench.spawner.floor_mb, 1), "loadavg": loadavg()}


# ------------------------------------------------------------------ scale mode


def run_scale(bench: Bench, args: argparse.Namespace) -> Report:
    spec = corpus.ScaleSpec(projects=args.scale_projects, file_projects=args.scale_file_projects,
                            events=args.scale_events, event_projects=args.scale_event_projects,
                            seed=args.seed)
    info = corpus.build_scale_corpus(bench.upstream, spec)
    report = Report("scale", _settings(args, bench), _corpus_summary(info, spec))
    report.corpus["projects"] = spec.projects
    report.corpus["projects_with_files"] = spec.file_projects
    bench.start()
    report.peer_problem = bench.peer_problem
    full = _phase(args, "full", f"full sync ({spec.projects:,} projects)", latency=args.scale_latency)
    bench.upstream.record_requests = False  # keep counters only: one record per request is too big here
    report.phases.append(bench.run_phase(full, keys=("ours",)))
    bench.upstream.record_requests = True
    if bench.has_peer():
        seconds = clients.seed_peer_mirror(bench.mirror_dir("ours"), bench.mirror_dir("peer"),
                                           bench.upstream.serial)
        full.notes.append(f"peer not run (~{spec.projects:,} JSON requests); its mirror was seeded as after "
                          f"this full sync instead ({seconds:.1f} s): status, generation, pages, files")
    changes = corpus.apply_changes(bench.upstream, info, corpus.small_files_spec(args.seed))
    incremental = _phase(args, "incremental", f"incremental sync (10 changed of {spec.projects:,})")
    incremental.notes = [f"{c.kind}: {c.project} ({c.detail})" for c in changes]
    report.phases.append(bench.run_phase(incremental))
    report.phases.append(bench.run_phase(_phase(args, "noop", f"no-op sync ({spec.projects:,})")))
    events, projects, seconds = corpus.apply_event_storm(bench.upstream, spec)
    storm = _phase(args, "events", f"incremental sync ({events:,} events over {projects:,} projects)")
    storm.notes.append(f"events added to the upstream in {seconds:.1f} s")
    report.phases.append(bench.run_phase(storm, keys=("ours",)))
    report.corpus["build_seconds_total"] = round(info.seconds + seconds, 2)
    return report


# ------------------------------------------------------------------ output


def _fmt(value: float | int | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours is None or peer is None or peer == 0:
        return ""
    return f"{ours / peer:.2f}"


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("wall (s)", "wall", ".2f"),
    ("CPU user+sys (s)", "cpu", ".2f"),
    ("peak RSS (MiB)", "maxrss_mb", ".1f"),
    ("requests", "requests", "d"),
    ("  listing (xmlrpc, index)", "kind:xmlrpc+index", "d"),
    ("  pages (simple or json)", "kind:page+json", "d"),
    ("  files", "kind:file", "d"),
    ("  .metadata", "kind:metadata", "d"),
    ("  other (redirects, ...)", "kind:other", "d"),
    ("fetched (MiB)", "mib", ".2f"),
    ("mean requests in flight", "in_flight", ".2f"),
    ("  s before 1st request", "before_first", ".2f"),
    ("  s after last response", "after_last", ".2f"),
    ("  % time all workers busy", "all_busy", ".0f"),
    ("  % time nothing in flight", "none_open", ".0f"),
    ("repeated requests", "repeated", "d"),
    (".metadata files on disk", "metadata_files", "d"),
)


def _value(run: Run | None, attr: str) -> float | int | None:
    if run is None:
        return None
    if attr == "mib":
        return run.bytes / MiB
    if attr == "repeated" and run.repeated < 0:
        return None
    if attr.startswith("kind:"):
        return sum(run.by_kind.get(kind, [0, 0])[0] for kind in attr[len("kind:"):].split("+"))
    if attr == "metadata_files" and run.metadata_files < 0:
        return None
    if attr in ("before_first", "after_last", "all_busy", "none_open"):
        if run.timeline is None:
            return None
        value = float(getattr(run.timeline, attr))
        return value * 100 if attr in ("all_busy", "none_open") else value
    return getattr(run, attr)  # type: ignore[no-any-return]


def format_phase(phase: Phase, peer_label: str) -> list[str]:
    ours, peer = phase.runs.get("ours"), phase.runs.get("peer")
    throttle = f", {phase.bandwidth:,.0f} B/s per connection" if phase.bandwidth else ""
    load = f"; load average {phase.loadavg}" if phase.loadavg else ""
    lines = [f"== {phase.title}; latency {phase.latency * 1000:g} ms{throttle}, "
             f"workers {phase.workers}{load} =="]
    lines.append(f"{'':26}{'ours':>12}{peer_label:>22}{'ours/peer':>11}")
    for label, attr, spec in _ROWS:
        a, b = _value(ours, attr), _value(peer, attr)
        lines.append(f"{label:26}{_fmt(a, spec):>12}{_fmt(b, spec):>22}{_ratio(a, b):>11}")
    lines.append(f"{'exit code':26}{_fmt(_value(ours, 'exit_code'), 'd'):>12}"
                 f"{_fmt(_value(peer, 'exit_code'), 'd'):>22}")
    lines.append(f"{'mirror matches upstream':26}{(ours.in_sync if ours else 'n/a'):>12}  "
                 f"{(peer.in_sync if peer else 'n/a'):>20}")
    lines.append(f"{'.metadata match upstream':26}{(ours.metadata_in_sync if ours else 'n/a'):>12}  "
                 f"{(peer.metadata_in_sync if peer else 'n/a'):>20}")
    lines.extend(_bound_lines(phase))
    for run in (ours, peer):
        if run is not None:
            kinds = ", ".join(f"{k} {n} ({b / MiB:.2f} MiB)" for k, (n, b) in run.by_kind.items())
            lines.append(f"  {run.client} requests: {kinds or 'none'}")
    lines.extend(f"  note: {note}" for note in phase.notes)
    return lines


def _bound_lines(phase: Phase) -> list[str]:
    bound, ours = phase.bound(), phase.runs.get("ours")
    if bound is None or ours is None:
        return []
    term = " + bytes ÷ bandwidth" if phase.bandwidth else ""
    ratio = f"{ours.wall / bound:.2f}" if bound else "n/a"
    lines = [f"{'round-trip bound (s)':26}{bound:>12.2f}   (our requests × latency ÷ workers{term}); "
             f"ours/bound {ratio}"]
    peer, peer_bound = phase.runs.get("peer"), phase.bound("peer")
    if peer is not None and peer_bound:
        lines.append(f"{'peer round-trip bound (s)':26}{peer_bound:>12.2f}   (the peer's requests); "
                     f"peer/its bound {peer.wall / peer_bound:.2f}")
    ideal = phase.per_connection_bound()
    if ideal is not None:
        lines.append(f"{'per-connection ideal (s)':26}{ideal:>12.2f}   ((requests × latency + bytes ÷ "
                     f"bandwidth) ÷ workers); ours/ideal {ours.wall / ideal:.2f}")
    return lines


def _corpus_line(label: str, c: dict[str, Any]) -> str:
    metadata = f" ({c['metadata_files']:,} with core metadata)" if "metadata_files" in c else ""
    return (f"{label}: {c['projects']:,} projects, {c['files']:,} files{metadata}, "
            f"{c['bytes'] / MiB:.1f} MiB, serial {c['serial']:,}; corpus built in {c['build_seconds']} s")


def format_report(report: Report) -> str:
    corpora = report.corpora or {"default": report.corpus}
    lines = [_corpus_line(f"bench_mirror ({report.mode})" if key == "default" else f"{key} files corpus", c)
             for key, c in corpora.items()]
    lines += [f"ours: {report.settings['ours']} (this checkout at {report.settings['commit']}); "
              f"peer: bandersnatch {clients.PEER_VERSION}; "
              f"peak RSS floor (/bin/true via the launcher) {report.settings['rss_floor_mib']} MiB",
              f"load average (1, 5, 15 min) at start {report.settings['loadavg']}"]
    if report.peer_problem:
        lines.append(f"peer NOT run: {report.peer_problem}")
    for phase in report.phases:
        lines.append("")
        lines.extend(format_phase(phase, f"bandersnatch {clients.PEER_VERSION}"))
    return "\n".join(lines)


def report_json(report: Report) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    for phase, raw in zip(report.phases, data["phases"], strict=True):
        raw["round_trip_bound"] = phase.bound()
        raw["per_connection_bound"] = phase.per_connection_bound()
    return data


# ------------------------------------------------------------------ command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--projects", type=int, default=300, help="projects in the default corpus")
    p.add_argument("--files-per-project", type=float, default=8.0,
                   help="mean of the log-normal files-per-project distribution (1 to 80 files)")
    p.add_argument("--min-size", type=int, default=2 * 1024, help="smallest file (bytes)")
    p.add_argument("--median-size", type=int, default=24 * 1024, help="median file size (log-normal)")
    p.add_argument("--max-size", type=int, default=1024 * 1024, help="largest file (bytes)")
    p.add_argument("--seed", type=int, default=20240601, help="seed for names, sizes, bytes and changes")
    p.add_argument("--latency", type=float, default=0.030, help="seconds added to every upstream request")
    p.add_argument("--bandwidth", type=float, default=None,
                   help="bytes/second per response (default: unlimited)")
    p.add_argument("--workers", type=int, default=3, help="workers for both clients")
    p.add_argument("--client-timeout", type=float, default=30, help="the clients' request timeout (s)")
    p.add_argument("--phase-timeout", type=float, default=3600, help="kill a client run after this (s)")
    p.add_argument("--no-default-metadata", action="store_true",
                   help="default corpus of random bytes only, with no wheel metadata (figures before 10.0)")
    p.add_argument("--corpus", choices=("both", "default", "small"), default="both",
                   help="default mode: the default corpus, the small-files corpus, or both in turn")
    p.add_argument("--json", type=Path, default=None, help="also write all figures to this JSON file")
    p.add_argument("--no-peer", action="store_true", help="run our client only")
    p.add_argument("--peer-venv", type=Path, default=clients.DEFAULT_PEER_VENV,
                   help="where bandersnatch 8.2.0 is installed (created when missing)")
    p.add_argument("--peer-python", default=None, help="Python >= 3.12 for the peer's venv (default: search)")
    p.add_argument("--python", default=sys.executable, help="Python that runs our client")
    p.add_argument("--workdir", type=Path, default=None, help="mirrors and logs (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the workdir (mirrors and client logs)")
    small = p.add_argument_group("small-files corpus (default mode, after the default corpus)")
    small.add_argument("--small-projects", type=int, default=150, help="projects")
    small.add_argument("--small-files-per-project", type=float, default=8.0,
                       help="mean files per project (log-normal, 1 to 80)")
    small.add_argument("--small-size", type=int, default=10 * 1024,
                       help="median file size in bytes (sizes from 0.8x to 1.2x)")
    small.add_argument("--small-workers", type=int, default=4, help="workers for both clients")
    small.add_argument("--small-latency", type=float, default=0.030, help="seconds added to every request")
    scale = p.add_argument_group("scale mode")
    scale.add_argument("--scale", action="store_true", help="run the scale benchmark instead")
    scale.add_argument("--scale-projects", type=int, default=750_000, help="projects the upstream lists")
    scale.add_argument("--scale-file-projects", type=int, default=2_000, help="of those, projects with files")
    scale.add_argument("--scale-events", type=int, default=100_000,
                       help="changelog events for the last phase")
    scale.add_argument("--scale-event-projects", type=int, default=10_000, help="projects those events touch")
    scale.add_argument("--scale-latency", type=float, default=0.0,
                       help="latency for the scale full sync (750k requests: 30 ms would take over 2 hours)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spawner = clients.Spawner()  # first, while this process is small: see bench_spawn.py
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, workdir, spawner)
    try:
        report = run_scale(bench, args) if args.scale else run_corpora(bench, args)
        bench.stop()
        publish(report, args)
    finally:
        bench.stop()
        spawner.close()
        if not args.keep:
            print(f".. removing {workdir}", file=sys.stderr, flush=True)
            shutil.rmtree(workdir, ignore_errors=True)
    ours_ok = all(p.runs["ours"].exit_code == 0 for p in report.phases if "ours" in p.runs)
    return 0 if ours_ok else 1


def publish(report: Report, args: argparse.Namespace) -> None:
    """Print the table (and write the JSON) before the possibly slow cleanup."""
    print(format_report(report), flush=True)
    if args.keep:
        print(f"\nmirrors and client logs kept in {report.settings['workdir']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report_json(report), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
