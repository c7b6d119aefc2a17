"""``bandersnatch status``: how current the mirror is, from its bookkeeping files alone.

``gather`` reads a handful of small files (``state``, ``todo`` and its journal,
``failures``, ``last-run``, ``counts``) and asks the upstream one question
(``changelog_last_serial``, or the root listing's own serial when the mirror
follows the listing) unless offline.  It takes no lock, writes nothing under
the mirror directory and never walks the tree, so it answers at once and
safely while ``mirror`` runs.  The renderers are pure: a ``Status`` in,
text, JSON or Prometheus' text exposition format out.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config.filters import FilterConfig
from ..config.holdback import describe
from ..config.settings import Config
from ..errors import BandersnatchError
from ..formats.layout import PAGE_HTML
from ..ledger import holdback, lastrun
from ..ledger.counts import Counts, read_counts
from ..ledger.lastrun import LastRun
from ..ledger.state import Failure, StateFiles
from ..progress import human_bytes
from ..runtime import published_dir
from ..selection.holdback import when
from ..store.atomic import replace_outside

logger = logging.getLogger(__name__)

EXIT_HEALTHY = 0
EXIT_NEEDS_ATTENTION = 1


@dataclass(frozen=True)
class Filters:
    """The filters in force, as far as an operator needs them to read the counts."""

    enabled: tuple[str, ...] = ()
    allowlist: int = 0  # entries of [allowlist] packages
    requirements: int = 0  # requirement lines read from [allowlist] requirements files
    with_dependencies: bool = False
    blocklist: int = 0

    @classmethod
    def of(cls, cfg: FilterConfig) -> Filters:
        return cls(tuple(sorted(cfg.enabled)), len(cfg.allowlist), len(cfg.requirements),
                   cfg.with_dependencies, len(cfg.blocklist))


@dataclass(frozen=True)
class HoldBackStatus:
    """The cooling-off window: its length, and what it holds now (held files are not owed)."""

    seconds: float  # 0: turned off, the ledger still naming files the next run takes
    files: int
    projects: int
    next_matures: float | None  # Unix time

    @classmethod
    def of(cls, seconds: float, entries: Mapping[str, holdback.Held]) -> HoldBackStatus | None:
        if not seconds and not entries:
            return None
        return cls(seconds, holdback.held_files(entries), len(entries), holdback.next_maturity(entries))

    def line(self) -> str:
        window = f"hold-back {describe(self.seconds)}" if self.seconds else "hold-back off"
        if not self.files or self.next_matures is None:
            return f"none ({window})"
        return (f"{self.files} new file(s) of {self.projects} project(s) ({window}); the next arrives "
                f"with the first run after {when(self.next_matures)}")


@dataclass(frozen=True)
class Status:
    """Everything ``bandersnatch status`` reports, gathered at ``now``."""

    now: str  # UTC, ISO 8601 to the second
    directory: str
    master: str
    serial: int | None  # what the mirror has caught up to (projects in todo aside)
    upstream_serial: int | None  # None: offline, or the upstream could not be asked
    upstream_error: str | None  # why it could not be asked
    pending_projects: int  # todo entries its journal does not record as done
    failures: tuple[Failure, ...]  # owed because they failed, with their last error
    last_run: LastRun | None
    last_success: str | None  # when the last complete run ended
    counts: Counts | None
    filters: Filters = field(default_factory=Filters)
    run_unfinished: bool = False  # a run is going on now, or one was killed or interrupted
    todo_damaged: bool = False
    published_missing: str | None = None  # why clients find no mirror although the state says synced
    journal: str | None = None  # the todo.journal on disk now (lastrun.journal_id)
    hold_back: HoldBackStatus | None = None  # None: no cooling-off window and nothing held

    @property
    def interrupted(self) -> bool:
        """The unfinished run is the last one, stopped by Ctrl-C or SIGTERM: its journal is still the same."""
        return self.run_unfinished and self.last_run is not None and self.last_run.interrupted \
            and self.last_run.journal is not None and self.last_run.journal == self.journal

    @property
    def lag(self) -> int | None:
        """Serials the mirror is behind upstream; None when unknown, or when it is ahead."""
        if self.serial is None or self.upstream_serial is None or self.ahead:
            return None
        return self.upstream_serial - self.serial

    @property
    def ahead(self) -> int:
        """Serials the mirror is above upstream's own (another master, or upstream went back)."""
        if self.serial is None or self.upstream_serial is None:
            return 0
        return max(0, self.serial - self.upstream_serial)

    @property
    def problems(self) -> list[str]:
        """Why the mirror is not current, one phrase each; empty when it is."""
        found = []
        if self.published_missing is not None:
            found.append(self.published_missing)
        if self.serial is None or self.last_success is None:
            found.append("no run has completed yet")
        if self.ahead:
            found.append(f"the mirror's serial is {self.ahead} above upstream's (the next mirror run "
                         "lists upstream again)")
        if self.todo_damaged:
            found.append("todo is damaged (the next run repairs it)")
        if self.pending_projects:
            found.append(f"{self.pending_projects} project(s) owed")
        if self.failures:
            found.append(f"{len(self.failures)} project(s) failed")
        if self.last_run is not None and self.last_run.interrupted:
            found.append(f"the last run was interrupted (exit code {self.last_run.exit_code})")
        elif self.last_run is not None and self.last_run.exit_code != 0:
            found.append(f"the last run ended with exit code {self.last_run.exit_code}")
        return found

    @property
    def exit_code(self) -> int:
        return EXIT_NEEDS_ATTENTION if self.problems else EXIT_HEALTHY


# ------------------------------------------------------------ gathering (reads; the only I/O here)


def gather(cfg: Config, upstream_serial: Callable[[], int] | None) -> Status:
    """The status of ``cfg``'s mirror; ``upstream_serial`` None: offline (no request at all)."""
    directory = cfg.directory
    state = StateFiles(directory, directory / "tmp" / "status")  # only read: nothing is staged
    serial = state.read_serial()
    if serial is None:
        serial = _adoptable_serial(state)
    asked, error = None, None
    if upstream_serial is not None:
        try:
            asked = upstream_serial()
        except BandersnatchError as exc:
            error = str(exc)
            logger.warning("Could not ask %s for its serial: %s", cfg.master, exc)
    pending = state.count_pending()
    run = lastrun.read(directory)
    return Status(
        now=lastrun.utc_now(), directory=str(directory), master=cfg.master, serial=serial,
        upstream_serial=asked, upstream_error=error, pending_projects=pending or 0,
        failures=tuple(state.read_failures() or ()), last_run=run,
        last_success=run.last_success if run else lastrun.read_last_modified(directory / "web"),
        counts=read_counts(directory), filters=Filters.of(cfg.filters),
        run_unfinished=state.journal_path.exists(), todo_damaged=pending is None,
        published_missing=published_missing(cfg, serial), journal=lastrun.journal_id(state.journal_path),
        hold_back=HoldBackStatus.of(cfg.hold_back.seconds, holdback.read(directory)),
    )


def published_missing(cfg: Config, serial: int | None) -> str | None:
    """Why clients find no mirror although ``state`` says one was synced (``web/`` deleted); None if fine.

    Two stats, no walk: the tree the mirror publishes (on S3, its local record) and its root index.
    ``status`` and ``verify`` say it alike; the next ``mirror`` run notices it too and syncs again.
    """
    if serial is None:
        return None  # no sync has completed: nothing was promised yet
    web = published_dir(cfg)
    for path in (web / "simple", web / "simple" / PAGE_HTML):
        if not path.exists():
            return (f"{path} is missing although {cfg.directory / 'state'} says the mirror is at serial "
                    f"{serial} (deleted?); the next mirror run syncs it again")
    return None


def _adoptable_serial(state: StateFiles) -> int | None:
    """A bandersnatch 8 mirror not yet adopted by a run keeps its serial in ``status``."""
    try:
        text = state.status_path.read_text(encoding="ascii", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isascii() and text.isdigit() else None


# ------------------------------------------------------------ rendering (pure)


def _seconds(iso: str) -> float | None:
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _ago(iso: str, now: str) -> str:
    then, current = _seconds(iso), _seconds(now)
    if then is None or current is None:
        return iso
    minutes = max(0, int(current - then) // 60)
    span = (f"{minutes} min" if minutes < 120 else f"{minutes // 60} h" if minutes < 2880
            else f"{minutes // 1440} days")
    return f"{iso} ({span} ago)"


def _filters_line(f: Filters) -> str:
    if not f.enabled:
        return "none: every project upstream is mirrored"
    parts = [", ".join(f.enabled)]
    if f.allowlist or f.requirements:
        parts.append(f"allowlist of {f.allowlist} package(s)"
                     + (f" and {f.requirements} requirement(s)" if f.requirements else ""))
    if f.with_dependencies:
        parts.append("with dependencies")
    if f.blocklist:
        parts.append(f"blocklist of {f.blocklist} package(s)")
    return "; ".join(parts)


def render_text(s: Status) -> str:
    """What an operator reads: one fact per line, problems last."""
    lines = [f"mirror       {s.directory} at serial {s.serial if s.serial is not None else 'none yet'}"]
    if s.upstream_serial is not None:
        where = f"upstream     {s.master} at serial {s.upstream_serial}"
        lines.append(f"{where} (the mirror is {s.ahead} AHEAD of it: another master, or upstream went back)"
                     if s.ahead else f"{where} ({s.lag} behind)" if s.lag is not None else where)
    elif s.upstream_error is not None:
        lines.append(f"upstream     {s.master}: not reachable ({s.upstream_error})")
    else:
        lines.append(f"upstream     {s.master}: not asked (--offline)")
    lines.append("last success " + (_ago(s.last_success, s.now) if s.last_success else "never"))
    if s.last_run is not None:
        r = s.last_run
        did = (f"{r.synced} synced, {r.removed} removed, {r.files} file(s) ({human_bytes(r.bytes)}) "
               f"downloaded, {r.failed} failed")
        lines.append(f"last run     ended {_ago(r.ended, s.now)} with exit code {r.exit_code}: {did}"
                     + (f"; stopped early: {r.stop_reason}" if r.stop_reason else ""))
    if s.interrupted:
        lines.append(" " * 13 + "it was interrupted (Ctrl-C or SIGTERM); the next run resumes where it "
                     "stopped")
    elif s.run_unfinished:
        lines.append(" " * 13 + "a run is going on now, or the last one was killed")
    lines.append(f"pending      {s.pending_projects} project(s) owed")
    lines.append(f"failed       {len(s.failures)} project(s)")
    for f in s.failures:
        lines.append(f"  {f.name} (serial {f.serial}, {f.when}): {f.error}")
    if s.counts is not None:
        c = s.counts.totals
        lines.append(f"content      {c.projects} project(s), {c.files} file(s), {human_bytes(c.bytes)}"
                     + (f" (as of {s.counts.updated})" if s.counts.updated else ""))
    else:
        lines.append("content      not counted yet (the next mirror run counts it)")
    lines.append(f"filters      {_filters_line(s.filters)}")
    if s.hold_back is not None:
        lines.append(f"held back    {s.hold_back.line()}")
    problems = s.problems
    lines.append("state        " + ("current" if not problems else "NOT current: " + "; ".join(problems)))
    return "\n".join(lines) + "\n"


def render_json(s: Status) -> str:
    counts = s.counts.totals if s.counts is not None else None
    doc: dict[str, Any] = {
        "directory": s.directory,
        "master": s.master,
        "serial": s.serial,
        "upstream_serial": s.upstream_serial,
        "upstream_error": s.upstream_error,
        "lag_serials": s.lag,
        "ahead_serials": s.ahead if s.upstream_serial is not None else None,
        "pending_projects": s.pending_projects,
        "failed_projects": [f.name for f in s.failures],
        "failures": [{"name": f.name, "serial": f.serial, "when": f.when, "error": f.error}
                     for f in s.failures],
        "last_success": s.last_success,
        "last_run": _last_run_json(s.last_run),
        "run_unfinished": s.run_unfinished,
        "run_interrupted": s.interrupted,
        "published_missing": s.published_missing,
        "projects": counts.projects if counts else None,
        "files": counts.files if counts else None,
        "bytes": counts.bytes if counts else None,
        "counted_at": s.counts.updated if s.counts else None,
        "filters": {"enabled": list(s.filters.enabled), "allowlist": s.filters.allowlist,
                    "requirements": s.filters.requirements, "with_dependencies": s.filters.with_dependencies,
                    "blocklist": s.filters.blocklist},
        "hold_back": None if s.hold_back is None else {
            "seconds": s.hold_back.seconds, "files": s.hold_back.files, "projects": s.hold_back.projects,
            "next_matures": when(s.hold_back.next_matures) if s.hold_back.next_matures is not None else None},
        "current": not s.problems,
        "problems": s.problems,
        "checked_at": s.now,
    }
    return json.dumps(doc, indent=2) + "\n"


def _last_run_json(run: LastRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {"started": run.started, "ended": run.ended, "exit_code": run.exit_code, "serial": run.serial,
            "synced": run.synced, "removed": run.removed, "files": run.files, "bytes": run.bytes,
            "failed": run.failed, "stop_reason": run.stop_reason}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(s: Status) -> str:
    """Prometheus' text exposition format: gauges labelled with the mirror directory; unknowns left out."""
    counts = s.counts.totals if s.counts is not None else None
    run = s.last_run
    metrics: list[tuple[str, str, float | None]] = [
        ("serial", "PyPI serial the mirror has caught up to.", s.serial),
        ("upstream_serial", "PyPI serial of the upstream when status ran.", s.upstream_serial),
        ("lag_serials", "How many serials the mirror is behind the upstream.", s.lag),
        ("ahead_serials", "How many serials the mirror is above the upstream's own (1 or more: it is not "
         "following it).", s.ahead if s.upstream_serial is not None else None),
        ("pending_projects", "Projects owed to the mirror (todo).", s.pending_projects),
        ("failed_projects", "Projects owed because their last sync failed.", len(s.failures)),
        ("last_success_timestamp_seconds", "When the last complete mirror run ended (Unix time).",
         _seconds(s.last_success) if s.last_success else None),
        ("last_run_end_timestamp_seconds", "When the last mirror run ended (Unix time).",
         _seconds(run.ended) if run else None),
        ("last_run_exit_code", "Exit code of the last mirror run.", run.exit_code if run else None),
        ("projects", "Projects on the mirror.", counts.projects if counts else None),
        ("files", "Distribution files the mirror's pages link.", counts.files if counts else None),
        ("bytes", "Bytes of the distribution files the mirror's pages link.",
         counts.bytes if counts else None),
        ("held_back_files", "New files the cooling-off window (hold-back) withholds for now.",
         s.hold_back.files if s.hold_back else None),
        ("held_back_next_timestamp_seconds", "When the first held-back file leaves the window (Unix time).",
         s.hold_back.next_matures if s.hold_back else None),
        ("current", "1 when nothing is owed or failed and the last run completed, else 0.",
         0 if s.problems else 1),
        ("status_timestamp_seconds", "When bandersnatch status gathered these figures (Unix time).",
         _seconds(s.now)),
    ]
    label = f'{{mirror="{_label(s.directory)}"}}'
    out = []
    for name, help_text, value in metrics:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        metric = f"bandersnatch_{name}"
        number = str(int(value)) if float(value).is_integer() else repr(value)
        out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", f"{metric}{label} {number}"]
    return "\n".join(out) + "\n"


def write_prometheus(path: Path, text: str) -> None:
    """Replace ``path`` atomically: the textfile collector must never read half a file.

    The file is the operator's, outside the mirror: a temporary file in the same
    directory (the rename is atomic there) under a name without ``.prom``, which
    the collector ignores, then a rename over ``path``.
    """
    replace_outside(path, [text.encode("utf-8")])
