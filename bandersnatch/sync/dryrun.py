"""``bandersnatch mirror --dry-run``: what a run would ask, fetch, delete and exclude, with nothing changed.

It asks upstream what a run would (the listing or the changelog, as the feed
decides, then the pages of the projects the run would sync) and compares each
page, through the operator's filters, with our own JSON page: what that records
is on the mirror.  It takes no lock and writes nothing under the mirror
directory: the state, todo and journal are read as a running run leaves them
(a plan made beside a run is a plan of what the next run would do), the
master spools in a directory outside the mirror, the listing's validators are
read but not saved, and with ``with-dependencies`` the closure grows from
``deps/`` as recorded plus ``.metadata`` read into memory (``UnwrittenRecords``).
No distribution file is downloaded.  ``runtime.dry_run`` builds one.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from ..config.plugins import AllowlistProject, FilterPlugin, ProjectRequirements
from ..config.settings import Config
from ..config.values import ReleaseFiles
from ..errors import NotFound, UnsafePath, UpstreamError, UpstreamUnreachable, shown
from ..formats import pagerecord
from ..formats.layout import PAGE_JSON, UrlPolicy, file_href, file_segments
from ..formats.serial import MAX_SERIAL
from ..formats.simple import DistFile, ProjectPage
from ..ledger.state import DoneSet, StateFiles
from ..names import is_valid_project_name, normalize
from ..publish.budget import FileRemovalLimit, RemovalLimit
from ..selection.closure import DependencyTracker
from ..selection.policy import Exclusion, Selection
from ..selection.records import MirroredFile, UnwrittenRecords
from ..store.atomic import confined
from ..store.protocol import Store
from ..upstream.feeds import ChangeFeed
from ..upstream.master import Master
from .dryplan import (
    Change,
    DryRunPlan,
    ExcludedCount,
    ExcludedProject,
    Failed,
    LimitCheck,
    PlannedFile,
    ProjectPlan,
    excluded_parts,
    is_complement,
    limit_check,
)
from .package import METADATA_SUFFIX, Known, Layout, project_metadata
from .plan import FullSyncReason, full_sync_reason, pages_fingerprint
from .rootindex import RootIndex

logger = logging.getLogger(__name__)

Work = dict[str, tuple[str, int]]  # key -> (name as upstream spells it, serial to ask the page at)


@dataclass(frozen=True)
class Limits:
    """The removal limits of ``publish/budget.py`` (None: ``--allow-mass-removal``) and the mirror's size."""

    projects: RemovalLimit | None
    files: FileRemovalLimit | None
    project_count: Callable[[], int]
    file_count: Callable[[], int]


@dataclass(frozen=True)
class _Pending:
    """An earlier run's ``todo``, read without repairing it."""

    target: int
    entries: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _Result:
    """One project's page, judged: what the run would do, or why it is not mirrored."""

    plan: ProjectPlan | None = None
    excluded: Exclusion | None = None
    requires: tuple[str, ...] | None = None
    failed: str | None = None


def _needs_fetch(old: Known | None, f: DistFile) -> bool:
    """Our page does not record the file, or records other bytes than upstream's page names."""
    return old is None or ("sha256" in f.hashes and old.sha256 != f.hashes["sha256"])


def _href_name(href: str) -> str:
    return unquote(href.rsplit("/", 1)[-1])


class DryRun:
    """Plans one run of one mirror without making it; ``plan`` once, then ``close``."""

    def __init__(self, config: Config, *, master: Master, feed: ChangeFeed, reader: Store, layout: Layout,
                 root: RootIndex, state: StateFiles, selection: Selection, records: UnwrittenRecords | None,
                 policy: UrlPolicy, limits: Limits, force_check: bool) -> None:
        self.config, self.master, self.feed, self.reader = config, master, feed, reader
        self.layout, self.root, self.state, self.selection = layout, root, state, selection
        self.records, self.policy, self.limits, self.force_check = records, policy, limits, force_check
        self.tracker = DependencyTracker(selection, records) if records is not None else None
        self.excluded: dict[str, Exclusion] = {}
        self.counted: dict[tuple[type[FilterPlugin], str], int] = {}
        self.failed: list[Failed] = []
        self.unselected: dict[str, int] = {}  # changelog entries the closure may still reach
        self.refused: set[str] = set()
        self._unread = 0  # new files whose requirements the dry closure cannot see (no .metadata)
        self._unread_lock = threading.Lock()

    def close(self) -> None:
        self.master.close()

    # ------------------------------------------------------------ the plan

    def plan(self) -> DryRunPlan:
        serial = self.state.read_serial()
        pending, damaged = self._pending()
        reconcile = serial is not None and self.state.read_selection() != pages_fingerprint(
            self.config, self.selection)
        reason = full_sync_reason(held for held, holds in (
            (FullSyncReason.FILTERS_CHANGED, reconcile),
            (FullSyncReason.TODO_LOST, damaged or self.state.damaged),
            (FullSyncReason.FIRST_RUN, serial is None and pending is None),
            (FullSyncReason.FORCE_CHECK, self.force_check),
            (FullSyncReason.ADOPTING, self.state.adopting() and self.config.json),
        ) if holds)
        since = max(serial or 0, pending.target if pending else 0)
        work = self._full(pending) if reason is not None else self._changes(since, pending)
        projects = self._plan_projects(work)
        if self.selection.active and (reconcile or self.state.prune_pending()):
            projects.extend(self._unselected_on_mirror({p.name for p in projects}))
        projects.sort(key=lambda p: p.name)
        removed = {p.name for p in projects if p.change is Change.REMOVE}  # their line says why
        notes = self._notes()
        return DryRunPlan(
            self.master.url, str(self.config.directory), serial, self.feed.last_serial(),
            None if reason is None else reason.value, tuple(projects),
            tuple(ExcludedProject(k, e) for k, e in sorted(self.excluded.items()) if k not in removed),
            tuple(ExcludedCount(Exclusion(*why), n) for why, n in self.counted.items() if n),
            tuple(sorted(self.failed, key=lambda f: f.name)), self._limit_checks(projects), notes)

    def _notes(self) -> tuple[str, ...]:
        """What the plan could not know, and the configuration's warnings (lock entries skipped...),
        one line each: the run logs those once per change, a plan is read whole each time."""
        notes = list(self.config.warnings)
        if self.config.release_files is not ReleaseFiles.TRUE:
            notes.append(f"release-files = {self.config.release_files}: "
                         "the run downloads no distribution file")
        if self.state.journal_path.exists():
            notes.append(f"{self.state.journal_path} exists: a run is going on, or was killed; the plan "
                         "includes what it still owes as far as it got")
        if self._unread:
            notes.append(f"{self._unread} new file(s) offer no PEP 658 .metadata: the run reads their "
                         "requirements from the files, the dry run cannot, so its closure may be short")
        return tuple(notes)

    def _pending(self) -> tuple[_Pending | None, bool]:
        """``todo`` as an earlier run left it, minus what its journal records as done; (None, True) when
        damaged (the run would repair it, which a dry run may not)."""
        try:
            lines = self.state.todo_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None, False
        except (OSError, UnicodeDecodeError):
            return None, True
        entries: list[tuple[str, int]] = []
        try:
            target = int(lines[0]) if lines and lines[0].isascii() else -1
            for line in lines[1:]:
                name, _, text = line.strip().rpartition(" ")
                if not name or not text.isascii() or not text.isdigit():
                    return None, True
                entries.append((name, int(text)))
        except ValueError:
            return None, True
        if not 0 <= target <= MAX_SERIAL or any(s > MAX_SERIAL for _, s in entries):
            return None, True
        done = DoneSet(self.state.journaled(target))
        return _Pending(target, tuple(e for e in entries if not done.covers(normalize(e[0]), e[1]))), False

    # ------------------------------------------------------------ the work list

    def _full(self, pending: _Pending | None) -> Work:
        """Every listed project the filters select, then those we serve or owe that upstream no longer lists
        (their pages answer 404: removals)."""
        work: Work = {}
        for name, serial in self.feed.all_projects():
            if self._acceptable(name):
                key = normalize(name)
                if key not in work and self._admitted(key, name):
                    work[key] = (name, serial)
        # Selected and not in the work list: not listed (a listed one that is selected is in it).
        # Asked quietly: a listed one the filters exclude was noted as such above.
        owed = (normalize(name) for name, _ in pending.entries) if pending else ()
        for key in (*self.root.names(), *owed):
            if key not in work and is_valid_project_name(key) and self._why_not(key, key) is None:
                work[key] = (key, 0)
        self._add_owed(work)
        return work

    def _changes(self, since: int, pending: _Pending | None) -> Work:
        """What an earlier run still owes, then what changed upstream after ``since``."""
        work: Work = {}
        changes = self.feed.changed_since(since)
        for name, serial in (*(pending.entries if pending else ()), *changes):
            if not self._acceptable(name):
                continue
            key = normalize(name)
            if not self._admitted(key, name):
                if self.tracker is not None:
                    self.unselected[key] = max(self.unselected.get(key, 0), serial)
                continue
            old = work.get(key)
            if old is None or serial > old[1] or serial == 0:
                work[key] = (name, serial)
        self._add_owed(work)
        return work

    def _acceptable(self, name: str) -> bool:
        """False for a name that cannot be a project: the run refuses it (exit 1), the plan lists it."""
        if is_valid_project_name(name):
            return True
        if name[:100] not in self.refused:
            self.refused.add(name[:100])
            self.failed.append(Failed(name[:100], "refused: not a valid project name"))
        return False

    def _add_owed(self, work: Work) -> None:
        if self.tracker is not None:
            for key in self.tracker.owed(self._has_pages):
                work.setdefault(key, (key, 0))  # reached by the closure but not on the mirror yet

    def _why_not(self, key: str, name: str) -> Exclusion | None:
        """Why the run would not sync the project; None when it would."""
        if not self.selection.active or self.tracker is not None and self.tracker.admits(key):
            return None
        why = self.selection.project(key, name)
        return self._unreached() if why is None and self.tracker is not None else why

    def _admitted(self, key: str, name: str) -> bool:
        """Whether the run would sync the project; when not, its exclusion is noted."""
        why = self._why_not(key, name)
        if why is not None:
            self._exclude(key, why)
        return why is None

    def _unreached(self) -> Exclusion:
        """A project the allowlist's closure does not reach (the closure is the allowlist's own)."""
        plugin = AllowlistProject if self.selection.cfg.uses(AllowlistProject) else ProjectRequirements
        return Exclusion(plugin, "not reached from the allowlist")

    def _exclude(self, key: str, why: Exclusion) -> None:
        if is_complement(why):
            # Keyed by a plain tuple: a listing's 750,000 names pass here, and a dataclass's
            # own __hash__ and __eq__ cost a Python call each.
            self.counted[why.by, why.reason] = self.counted.get((why.by, why.reason), 0) + 1
        else:
            self.excluded[key] = why

    def _unexclude(self, key: str) -> None:
        """A project the closure reached after the listing excluded it."""
        why = self.selection.project(key, key)
        if key in self.excluded:
            del self.excluded[key]
        elif why is not None and is_complement(why) and self.counted.get((why.by, why.reason)):
            self.counted[why.by, why.reason] -= 1

    # ------------------------------------------------------------ the pages

    def _plan_projects(self, work: Work) -> list[ProjectPlan]:
        """Each project's page, ``workers`` at a time; the closure's new reaches join the queue."""
        queue = deque(work.items())
        started = set(work)
        plans: list[ProjectPlan] = []
        workers = self.config.workers
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dry-run") as pool:
            inflight: deque[tuple[str, Future[_Result]]] = deque()
            try:
                while queue or inflight:
                    while queue and len(inflight) < 2 * workers:
                        key, (name, serial) = queue.popleft()
                        inflight.append((key, pool.submit(self._project, key, name, serial)))
                    key, future = inflight.popleft()
                    result = future.result()
                    for new in self._collect(key, result, plans):
                        if new not in started:
                            started.add(new)
                            self._unexclude(new)
                            queue.append((new, (new, self.unselected.get(new, 0))))
            except BaseException:
                self.master.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return plans

    def _collect(self, key: str, result: _Result, plans: list[ProjectPlan]) -> set[str]:
        """Note one project's result; returns the keys the closure newly reaches through it."""
        if result.failed is not None:
            self.failed.append(Failed(key, result.failed))
        if result.plan is not None:
            plans.append(result.plan)
        elif result.excluded is not None:
            self._exclude(key, result.excluded)
        if self.tracker is None or result.requires is None:
            return set()
        return self.tracker.synced(key, result.requires)

    def _project(self, key: str, name: str, serial: int) -> _Result:
        try:
            return self._judge(key, name, serial)
        except UpstreamUnreachable:
            raise
        except (UpstreamError, UnsafePath) as exc:
            return _Result(failed=str(exc))

    def _judge(self, key: str, name: str, serial: int) -> _Result:
        known, on_mirror = self._known(name)
        page = self.master.fetch_page(key, serial)
        if page is None:
            if self.records is not None:
                self.records.mark_missing(key)
            return _Result(self._removal(key, known, None)) if on_mirror else _Result()
        if page.status is not None and page.status.quarantined:
            page = replace(page, files=(), versions=())  # PEP 792: as the run, offer none of its files
        metadata = project_metadata(self.master, self.selection, key)
        excluded = None if metadata is None else self.selection.metadata(key, metadata)
        if excluded is None and self.selection.active:
            excluded = self.selection.project_page(key, page)
        if excluded is not None:
            if self.records is not None:
                self.records.mark_missing(key, str(excluded))
            return _Result(self._removal(key, known, excluded)) if on_mirror else _Result(excluded=excluded)
        return self._files(key, page, known, on_mirror, metadata)

    def _files(self, key: str, page: ProjectPage, known: Mapping[str, Known], on_mirror: bool,
               metadata: Mapping[str, object] | None = None) -> _Result:
        chosen = self.selection.plan_files(key, page, metadata)
        releases, singles = excluded_parts(key, chosen)
        wanted: dict[str, DistFile] = {}
        for f in chosen.files:
            wanted.setdefault(file_href(file_segments(f.url, self.policy), self.config.hash_index), f)
        # release-files = false or on-demand: the run downloads no distribution file; with false
        # its pages link upstream's files, so there are none of ours to delete either.
        mode = self.config.release_files
        fetch = tuple(PlannedFile(f.filename, f.size) for href, f in wanted.items()
                      if _needs_fetch(known.get(href), f)) if mode is ReleaseFiles.TRUE else ()
        ours = self.config.delete_packages and mode is not ReleaseFiles.FALSE
        delete = tuple(PlannedFile(_href_name(h), k.size) for h, k in sorted(known.items())
                       if h not in wanted) if ours else ()
        change = Change.ADD if not on_mirror else Change.UPDATE if fetch or delete else Change.UNCHANGED
        requires = self._requires(key, wanted, known) if self.records is not None else None
        return _Result(ProjectPlan(key, change, fetch, delete, releases, singles), requires=requires)

    def _removal(self, key: str, known: Mapping[str, Known], why: Exclusion | None) -> ProjectPlan:
        files = tuple(PlannedFile(_href_name(h), k.size) for h, k in sorted(known.items()))
        return ProjectPlan(key, Change.REMOVE, delete=files if self.config.delete_packages else (),
                           removed_by=why)

    def _known(self, name: str) -> tuple[dict[str, Known], bool]:
        """What our JSON page records (href -> Known), and whether the project has a page at all."""
        try:
            data = self.reader.read(self.layout.page_key(name, PAGE_JSON))
        except UnsafePath:
            return {}, False
        return pagerecord.from_bytes(data), data is not None

    def _has_pages(self, key: str) -> bool:
        try:
            return self.reader.stat(self.layout.page_key(key, PAGE_JSON)) is not None
        except UnsafePath:
            return False

    # ------------------------------------------------------------ the closure, in memory

    def _requires(self, key: str, wanted: Mapping[str, DistFile],
                  known: Mapping[str, Known]) -> tuple[str, ...]:
        """The project's requirements as the run would record them: files on the mirror are read where
        they lie, new ones from their ``.metadata`` fetched into memory (never their distribution)."""
        assert self.records is not None
        files = []
        for href, f in wanted.items():
            metadata = f.core_metadata
            metadata_sha256 = metadata.get("sha256") if isinstance(metadata, Mapping) else None
            old = known.get(href)
            if old is not None and not _needs_fetch(old, f):
                path = self._on_disk(f)
                side = path.with_name(path.name + METADATA_SUFFIX) if path is not None else None
                files.append(MirroredFile(f.filename, old.sha256, path,
                                          side if side is not None and side.is_file() else None,
                                          metadata_sha256=metadata_sha256))
            else:
                core = self._metadata(f)
                if core is None:
                    with self._unread_lock:
                        self._unread += 1
                files.append(MirroredFile(f.filename, f.hashes.get("sha256", ""), None, None, core, True,
                                          metadata_sha256))
        return self.records.update(key, files)

    def _on_disk(self, f: DistFile) -> Path | None:
        try:
            path = confined(self.layout.packages, file_segments(f.url, self.policy))
        except UnsafePath:
            return None
        return path if path.is_file() else None

    def _metadata(self, f: DistFile) -> bytes | None:
        """The file's PEP 658 metadata, verified, in memory; None when the page offers none."""
        if not f.core_metadata:
            return None
        sink = io.BytesIO()
        hashes = f.core_metadata if isinstance(f.core_metadata, Mapping) else {}
        try:
            self.master.download(f.url + METADATA_SUFFIX, sink, hashes, None, cap=self.config.max_page_bytes)
        except NotFound:
            return None
        except UpstreamError as exc:
            if isinstance(exc, UpstreamUnreachable):
                raise
            logger.debug("%s: metadata not read (%s)", shown(f.filename), exc)
            return None
        return sink.getvalue()

    # ------------------------------------------------------------ removals

    def _unselected_on_mirror(self, planned: set[str]) -> Iterable[ProjectPlan]:
        """Projects the mirror serves that the filters no longer select: the run's prune."""
        for key in self.root.names():
            if key in planned:
                continue
            if self.tracker is not None and self.tracker.admits(key):
                continue
            why = self.selection.project(key, key) or (self._unreached() if self.tracker else None)
            if why is not None:
                yield self._removal(key, self._known(key)[0], why)

    def _limit_checks(self, projects: list[ProjectPlan]) -> tuple[LimitCheck, ...]:
        """What the run's removal budget would say: project removals, and files its syncs would delete."""
        removed = sum(1 for p in projects if p.change is Change.REMOVE)
        deleted = sum(len(p.delete) for p in projects if p.change is Change.UPDATE)
        return (limit_check("projects", removed, self.limits.projects, self.limits.project_count),
                limit_check("files", deleted, self.limits.files, self.limits.file_count))

