"""One ``bandersnatch mirror`` run: lock, plan from state/todo/changelog, sync on a pool, wrap up.

The order of writes is what keeps the mirror whole across crashes:
project pages appear only after their files, the root index names a project
only after its page exists and stops naming it before its page goes, and
``state`` advances only after ``todo`` records everything still owed.
"""

from __future__ import annotations

import itertools
import logging
import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path
from queue import SimpleQueue

import filelock

from ..config.settings import Config
from ..errors import (
    BandersnatchError,
    LinkInMirror,
    LockHeld,
    RemovalsHeldBack,
    StorageError,
    StoreUnreachable,
    UpstreamUnreachable,
)
from ..formats.layout import PAGE_JSON, has_pages_in
from ..ledger import lastrun
from ..ledger.counts import NONE, Tally, Totals
from ..ledger.state import Failure, NameSet, StateFiles, Todo, name_hash
from ..names import is_valid_project_name, normalize
from ..progress import Progress, human_bytes
from ..runtime import Runtime
from ..selection.closure import DependencyTracker
from ..selection.policy import Selection
from ..selection.records import DependencyRecords
from ..store.atomic import clear_staging, make_dirs, make_readable_dirs
from ..upstream.feeds import feed_for
from ..upstream.master import Master
from . import adopt
from .guards import check_layout, explained, permission_problem
from .package import Outcome, page_keys, page_totals
from .serialcheck import SerialCheck

logger = logging.getLogger(__name__)

# Up to this many synced projects per run are patched into the root index; more (a full
# sync) and the index is rebuilt from the project directories (and their pages' serials) instead.
ROOT_MERGE_LIMIT = 50_000


@dataclass
class RunReport:
    """What a run did; its exit code says whether the mirror is complete."""

    target: int | None = None
    synced: int = 0
    removed: int = 0
    files: int = 0
    bytes: int = 0
    failed: dict[str, Failure] = field(default_factory=dict)
    stopped_early: bool = False
    stop_reason: str | None = None  # the error that stopped the run early, for its last line
    refused: int = 0  # project names upstream sent that cannot be mirrored
    unselected: int = 0  # projects taken off the mirror because the filters no longer select them
    unverified: int = 0  # files downloaded with no hash we could check
    held_back: str | None = None  # why removals past the limit were not made (they stay owed)
    deleted_files: int = 0  # files taken off the mirror (upstream deleted them, or their project)
    deleted_bytes: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.stopped_early or self.refused or self.held_back else 0


def acquire_lock(directory: Path) -> filelock.BaseFileLock:
    """The mirror's run lock; the kernel drops it when a process dies, so a crash never blocks."""
    lock = filelock.FileLock(str(directory / ".lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise LockHeld(
            f"another bandersnatch mirror run holds {directory / '.lock'}; this run stops without changes"
        ) from None
    except PermissionError as exc:  # e.g. a .lock left by a run as another user
        raise permission_problem(exc, directory) from None
    return lock


class Mirror:
    """Brings ``<directory>/web`` up to date with the master."""

    def __init__(self, config: Config, *, force_check: bool = False, master: Master | None = None,
                 progress: Progress | None = None, allow_mass_removal: bool = False) -> None:
        self.config = config
        self.progress = progress or Progress(None)
        self.force_check = force_check
        self.directory = config.directory
        # Store (behind the gate, which owns the removal budget), master, root index and diff-file
        # record: built in one place for every command.
        run = Runtime.create(config, master=master, allow_mass_removal=allow_mass_removal)
        self.staging, self.layout, self.store = run.staging, run.layout, run.store
        self.changes, self.root, self.policy, self.master = run.changes, run.root, run.policy, run.master
        self.state = StateFiles(self.directory, self.staging)
        # What changed upstream; planning never asks the master by protocol.
        self.feed = feed_for(config.api_method, self.master, self.root.entries, self.directory, self.staging)
        self.refused: set[str] = set()
        # Projects this run synced, with their pages' serials, for the root index; None: too many to merge.
        self._synced: dict[str, int] | None = {}
        self._repeated: set[int] = set()  # digests of listed names that normalize alike
        self.selection = Selection(config.filters)
        self.records = (DependencyRecords(self.directory / "deps", self.staging)
                        if self.selection.with_dependencies else None)
        self.tracker: DependencyTracker | None = None  # built once the run holds the lock
        # Dependencies reached during the run, synced after the work list; each project once.
        self._extra: deque[tuple[str, int]] = deque()
        self._started: set[str] = set()
        self._unselected: dict[str, int] = {}  # unselected projects in this run's changelog: highest serial
        self._store_down: StoreUnreachable | None = None  # the store stopped answering (first error)
        self._report: RunReport | None = None  # this run's, as far as it got: an interrupted run records it
        self.tally = Tally(self.directory, self.staging, self._page_totals,
                           lambda: page_keys(self.store, config.hash_index))
        self.projects = run.project_sync(force_check=force_check, selection=self.selection,
                                         records=self.records, tally=self.tally, json_api=True)

    def run(self) -> RunReport:
        try:
            make_readable_dirs(self.directory)  # the web server must reach web/ through it
        except OSError as exc:
            raise StorageError(
                f"cannot create the mirror directory {self.directory}: {exc.strerror}"
            ) from exc
        lock = acquire_lock(self.directory)
        run_started, report, code = lastrun.utc_now(), None, lastrun.EXIT_INCOMPLETE
        try:
            self._prepare_directories()
            check_layout(self.directory, self.layout.simple, self.config.hash_index, self.config.path,
                         self.staging)
            self.state.check_generation()
            self.tally.open()
            started = time.time()
            if self.state.adopting():
                adopt.remove_leftovers(self.layout.web, self.config.hash_index, self.config.cleanup,
                                       self.staging, self.changes)
            report = self._sync()
            code = report.exit_code
            if self.config.diff_file is not None:
                self.changes.publish(self.config.diff_file, self.config.diff_append_epoch, started,
                                     self.staging)
            return report
        except PermissionError as exc:  # whichever file: its path, its owner, the fix; not a traceback
            raise permission_problem(exc, self.directory) from None
        except StorageError as exc:
            raise explained(exc, self.directory) from exc.__cause__
        except BaseException as exc:
            code = lastrun.exit_code_for(exc)
            raise
        finally:
            self.changes.close()
            self.state.close()  # the journal is whole before last-run names it
            self._record_run(run_started, report or self._report, code)
            self.projects.close()
            self.master.close()
            lock.release()

    def _prepare_directories(self) -> None:
        left = clear_staging(self.staging)
        if left:
            logger.info("Removed %d temporary file(s) left by an interrupted run", left)
        for path in (self.staging, self.layout.simple, self.layout.packages):
            make_dirs(path, self.staging)
        if self.staging.stat().st_dev != self.layout.web.stat().st_dev:
            raise StorageError(
                f"{self.layout.web} is on another filesystem than {self.directory}: files are staged in "
                f"{self.staging} and renamed into place, so both must share one filesystem"
            )

    # ------------------------------------------------------------ planning

    def _plan(self) -> tuple[int, int] | None:
        """Write this run's work list as ``todo``: ``(target serial, count)``, or None when current.

        The list streams from upstream to disk and the run reads it back lazily,
        so a 750,000-project sync keeps memory flat.
        """
        if self.records is not None:
            self.tracker = DependencyTracker(self.selection, self.records)
        if self.state.journal_path.exists():
            # A killed run may have written pages the root index does not name yet:
            # this run ends by rebuilding the root index from the project directories.
            self._synced = None
        pending = self.state.open_todo()  # first: recovering a corrupt todo may void the state
        serial = self.state.read_serial()
        fingerprint = self._pages_fingerprint()
        reconcile = serial is not None and self.state.read_selection() != fingerprint
        if reconcile:
            logger.info("The filters or core-metadata changed since the last run: reconciling the mirror "
                        "with them")
            self.state.set_prune_pending(True)
        if pending is not None:
            logger.info("Resuming the pending projects of %s", self.state.todo_path)
        lost = serial is not None and not self.force_check and self._content_lost()
        if lost:
            self.tally.recount()  # the counts followed pages that are gone
        adopting = self.state.adopting()
        check = SerialCheck(self.state, self.feed, self.master.url)
        if (serial is None and pending is None or self.force_check or reconcile or self.state.damaged or lost
                or adopting and self.config.json):  # every project's JSON copy is written anew
            plan = self._plan_full(pending, adopting, check)
            self.state.write_selection(fingerprint)  # todo now holds what the new filters owe
            self.state.adopted()
            return plan
        since = max(serial or 0, pending.target if pending else 0)
        changes = self._changes_since(since)
        upstream = check.confirm(max([since, pending.highest if pending else 0,
                                      *(s for _, s in changes.pending.values())]))
        if upstream is not None and upstream < since and check.still_ahead(since):
            self._warn_ahead(since, check)
            plan = self._plan_full(pending, adopting, check)
            self.state.adopted()
            return plan
        changes.pending = {key: (name, check.ceiling(s, name)) for key, (name, s) in changes.pending.items()}
        if self.tracker is not None:
            for key in self.tracker.owed(self._has_pages):
                changes.add(key, 0)  # reached by the closure but not on the mirror yet
        last = self.feed.last_serial()
        target = max([since, last if upstream is None else min(last, upstream),
                      *(s for _, s in changes.pending.values())])
        if not changes.pending and pending is None and target == serial and not adopting:
            check.report()
            return None
        work = self._merged(pending or (), changes, check)
        if adopting:
            work = itertools.chain(work, self._adoption_work())
        target, count = self.state.begin_stream(lambda: target, work)
        check.report()
        self.state.adopted()
        if target > since:
            logger.info("Syncing %d project(s) changed since serial %d, up to serial %d", count, since,
                        target)
        else:
            logger.info("Syncing %d project(s) still owed at serial %d (nothing new upstream)", count,
                        target)
        return target, count

    def _changes_since(self, since: int) -> Todo:
        """What upstream changed after ``since`` that this mirror selects."""
        changes = Todo(since)
        for name, change_serial in self.feed.changed_since(since):
            if not self._acceptable(name):
                continue
            if self._selected(name):
                changes.add(name, change_serial)
            elif self.tracker is not None:  # may join during the run: then asked at this serial
                key = normalize(name)
                self._unselected[key] = max(self._unselected.get(key, 0), change_serial)
        return changes

    def _warn_ahead(self, since: int, check: SerialCheck) -> None:
        previous = check.previous
        if previous is None:
            why = "no record of what it said before: another master, or a serial it never reached"
        elif previous.master != check.master:
            why = f"the master was {previous.master}"
        elif previous.serial >= since:
            why = f"upstream's serial went back from {previous.serial}"
        else:
            why = "an earlier run took a serial upstream never reached"
        logger.warning(
            "The mirror is at serial %d but %s says its last serial is %s (%s): listing upstream again for "
            "a full sync that takes its serial (files already on disk are checked, not downloaded again)",
            since, check.master, check.upstream, why)

    def _pages_fingerprint(self) -> str | None:
        """What decides what every page lists: the filters, and core-metadata when it is off.

        A change makes the next run render every page again.  With core-metadata on (the
        default) it is the filters' fingerprint alone, so a mirror's record from before stays valid.
        """
        filters = self.config.filters.fingerprint() if self.selection.active else None
        return filters if self.config.core_metadata else f"{filters or 'unfiltered'}+no-core-metadata"

    def _content_lost(self) -> bool:
        """True, with a warning, when pages are gone that the state says the mirror has.

        Cheap enough for every run: the root index's ends name two projects whose
        pages must exist (a whole index naming none, as filters selecting nothing
        leave it, asks for none); without a whole index, ``simple/`` must hold some pages.
        A deleted ``web/`` or ``web/simple/`` then means a full sync, not "up to date".
        """
        ends = self.root.end_names()
        if ends is not None:
            missing = [key for key in ends if not self._has_pages(key)]
            if not missing:
                return False
            why = f"the root index names {missing[0]} but its pages are missing"
        elif self.root.any_pages() is False:
            why = f"{self.layout.simple} holds no project pages"
        else:
            return False
        logger.warning("%s although %s says the mirror is current: content was lost; a full sync "
                       "follows (files still on disk are checked, not downloaded again)", why,
                       self.state.state_path)
        return True

    def _merged(self, pending: Iterable[tuple[str, int]], changes: Todo,
                check: SerialCheck) -> Iterator[tuple[str, int]]:
        """Earlier pending work, each project once at its highest serial, then the new changes."""
        fresh = dict(changes.pending)
        for name, serial in check.ceiled(pending):
            if not self._acceptable(name) or not self._selected(name):
                continue
            change = fresh.pop(normalize(name), None)
            yield change if change is not None and change[1] > serial else (name, serial)
        yield from fresh.values()

    def _adoption_work(self) -> Iterator[tuple[str, int]]:
        """An adopted 8.x mirror's projects upstream no longer lists, or without both our pages.

        Upstream is listed once for this: the first go through the work list removes
        the first (their pages answer 404) and writes the pages of the others.
        """
        listed: array[int] = array("Q")
        for name, _ in self.feed.all_projects():
            if is_valid_project_name(name):
                listed.append(name_hash(normalize(name)))
        known = NameSet(listed)
        del listed[:]
        ghosts = 0
        for page_dir in adopt.project_dirs(self.layout.simple, self.config.hash_index):
            key = page_dir.name
            if not is_valid_project_name(key) or normalize(key) != key or not self._selected(key):
                continue
            if key not in known:
                ghosts += 1
                yield key, 0
            elif not has_pages_in(page_dir):
                yield key, 0
        if ghosts:
            logger.info("Adopting a bandersnatch 8 mirror: %d project(s) on it are no longer listed "
                        "upstream and will be removed", ghosts)

    def _plan_full(self, pending: Iterable[tuple[str, int]] | None, adopting: bool,
                   check: SerialCheck) -> tuple[int, int]:
        highest, named = 0, ""
        listed: array[int] = array("Q")

        def entries() -> Iterator[tuple[str, int]]:
            nonlocal highest, named
            for name, serial in self.feed.all_projects():
                if self._acceptable(name):
                    if serial > highest:
                        highest, named = serial, name
                    if self._selected(name):
                        listed.append(name_hash(normalize(name)))
                        yield name, serial
            # Projects we still serve but upstream no longer lists: ask for them, they will 404.
            # Besides the root index's names: what an earlier run still owed (a removal stopped
            # after the root index let go of the project, before its pages), and projects whose
            # sync or removal stopped between its files (their intents file names what is left).
            known = NameSet(listed)
            del listed[:]
            self._repeated = known.repeated()
            unlisted: set[str] = set()
            owed = (normalize(name) for name, _ in pending or ())
            # An 8.x mirror being adopted may have projects with one page only: its directories count.
            on_mirror = (d.name for d in adopt.project_dirs(self.layout.simple, self.config.hash_index)) \
                if adopting else self.root.names()
            for key in chain(on_mirror, owed, self.projects.interrupted()):
                if key not in known and key not in unlisted and is_valid_project_name(key) \
                        and normalize(key) == key and self._selected(key):
                    unlisted.add(key)
                    yield key, 0
            if self.tracker is not None:
                for key in self.tracker.owed(self._has_pages):
                    if key not in known and key not in unlisted:
                        yield key, 0

        def target() -> int:
            listed = highest or self.feed.last_serial()
            upstream = check.confirm(listed)
            # Above upstream's own serial: a lie, never taken (the entry itself is asked at it once,
            # and the next run's plan asks that project as upstream has it now).
            if upstream is None or listed <= upstream:
                return listed
            return check.ceiling(listed, named) or upstream

        target_serial, count = self.state.begin_stream(target, entries())
        check.report()
        logger.info("Full sync of %d project(s) up to serial %d", count, target_serial)
        return target_serial, count

    def _acceptable(self, name: str) -> bool:
        """False, with one error line, for a name that cannot be a project (path tricks, junk).

        Such a name is never put in ``todo``: it could not be mirrored on any later
        run either, and a line break in it would corrupt the file.
        """
        if is_valid_project_name(name):
            return True
        if name not in self.refused:
            self.refused.add(name)
            logger.error("refusing project name %r from upstream: not a valid project name", name[:100])
        return False

    def _selected(self, name: str) -> bool:
        """Whether the operator's filters select this project (unselected: silent, debug only)."""
        if not self.selection.active:
            return True
        key = normalize(name)
        if self.tracker is not None:
            if self.tracker.admits(key):
                return True
            logger.debug("%s: not selected (not reached from the allowlist)", key)
            return False
        why = self.selection.project(key, name)
        if why is not None:
            logger.debug("%s: not selected (%s)", key, why)
        return why is None

    def _has_pages(self, key: str) -> bool:
        try:
            return self.projects.has_pages(key)
        except BandersnatchError:
            return False

    # ------------------------------------------------------------ the run

    def _sync(self) -> RunReport:
        started = time.monotonic()
        plan = self._plan()
        report = self._report = RunReport(refused=len(self.refused))
        if plan is None:
            serial = self.state.read_serial()
            if self.selection.active and self.state.prune_pending() and serial is not None:
                self._take_off([], serial, report)  # a killed run's prune, finished now
            else:
                self.root.update({}, set(), serial)  # still whole, at this serial? (its ends only)
            if report.held_back:
                logger.error("%s", report.held_back)
                return report
            logger.info("Mirror is up to date")
            self._write_last_modified()
            return report
        target, count = plan
        report.target = target
        if self.tracker is not None:
            self.state.set_prune_pending(True)  # what the closure drops is pruned at the end
        self.progress.start(count)
        try:
            removed, remaining = self._run_pool(report)
        finally:
            self.progress.finish()
        if self._store_down is not None:
            # Nothing more can be published: stop as a killed run does.  todo and the journal keep
            # what is owed, and the next run rebuilds the root index from the pages it recorded.
            raise self._store_down
        held = self._take_off(removed, target, report)
        self.state.finish(target, report.failed, itertools.chain(held, remaining))
        if not report.exit_code:
            self._write_last_modified()
        report.deleted_files, report.deleted_bytes = self.projects.deleted_files, self.projects.deleted_bytes
        self._log_summary(report, time.monotonic() - started)
        if report.held_back:
            logger.error("%s", report.held_back)  # the last line: what to do
        return report

    def _take_off(self, removed: list[Outcome], target: int, report: RunReport) -> list[tuple[str, int]]:
        """Remove what upstream removed and what the filters no longer select: root index first.

        Past the removal limit nothing is removed: the removed projects are
        returned to stay owed, and a pending prune stays pending.
        """
        self._forget_requirements(removed)
        pruning = (self.selection.active and self.state.prune_pending() and not report.stopped_early
                   and not self._closure_unknown(report))
        unselected = self._unselected_on_mirror({o.key for o in removed}) if pruning else []
        gone = {o.key for o in removed} | set(unselected)
        # A run that stopped early having changed nothing leaves the root index's serial alone too.
        unchanged = report.stopped_early and self._synced == {} and not gone
        serial = (self.state.read_serial() or target) if unchanged else target
        if self._past_limit(len(removed) + len(unselected), report):
            self.root.update(self._synced, set(), serial)
            return [(o.name, o.serial) for o in removed]
        self.root.update(self._synced, gone, serial)
        for outcome in removed:
            why = f"not selected: {outcome.excluded}" if outcome.excluded else "gone upstream"
            self.projects.remove_project(outcome.name, why)
            self.state.done(outcome.name, outcome.serial)
            report.removed += 1
        for key in unselected:
            self.projects.remove_project(key, "no longer selected by the filters")
            if self.records is not None:
                self.records.forget(key)
            report.unselected += 1
        if pruning:
            self.state.set_prune_pending(False)
        if self.tracker is not None:
            self.tracker.write_report(self.directory / "selected.txt", self.staging)
        return []

    def _past_limit(self, removals: int, report: RunReport) -> bool:
        """True, noting why in the report, when ``removals`` is past the gate's budget of project removals."""
        if self.store.reserve_projects(removals):
            return False
        report.held_back = self.store.budget.held_back
        return True

    def _forget_requirements(self, removed: list[Outcome]) -> None:
        """What projects leaving the mirror required no longer holds anything on it."""
        if self.records is None or self.tracker is None or not removed:
            return
        for outcome in removed:  # as for a dependency upstream lacks or a filter excludes
            self.records.mark_missing(outcome.key, str(outcome.excluded) if outcome.excluded else None)
        self.tracker.recompute()

    def _closure_unknown(self, report: RunReport) -> bool:
        """A failed project the closure reaches has no record: what it needs is unknown, so nothing is pruned.

        The prune stays pending for the run that syncs it.
        """
        if self.tracker is None or self.records is None:
            return False
        tracker, records = self.tracker, self.records
        unknown = sorted(k for k in report.failed if tracker.admits(k) and records.requirements(k) is None)
        if unknown:
            logger.info("Projects the filters no longer select stay until the requirements of %s are known",
                        ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else ""))
        return bool(unknown)

    def _run_pool(self, report: RunReport) -> tuple[list[Outcome], Iterator[tuple[str, int]]]:
        """Sync every project in ``todo``; returns removals and the entries never started."""
        # Twice `workers` project threads: while some wait for their files on the download
        # pool, others fetch the next pages. Master's slots still cap requests at `workers`.
        threads = 2 * self.config.workers
        items = self._once_each(self.state.pending())
        removed: list[Outcome] = []
        inflight: dict[Future[Outcome], tuple[str, str, int]] = {}
        # Each future puts itself here when done. concurrent.futures.wait(FIRST_COMPLETED) would
        # lock and unlock every future in flight once per finished project: at 0 ms latency that
        # cost about 100,000 instructions per project (callgrind, 1,000-project full sync).
        finished: SimpleQueue[Future[Outcome]] = SimpleQueue()
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sync") as pool:
            try:
                while True:
                    while not report.stopped_early and len(inflight) < threads * 2:
                        item = next(items, None)
                        if item is None and self._extra:
                            item = self._extra.popleft()
                        if item is None:
                            break
                        name, serial = item
                        if self.tracker is not None:
                            if normalize(name) in self._started:
                                continue  # a dependency reached earlier in this run, then listed again
                            self._started.add(normalize(name))
                        future = pool.submit(self.projects.sync, name, serial)
                        inflight[future] = (normalize(name), name, serial)
                        future.add_done_callback(finished.put)
                    if not inflight:
                        break
                    future = finished.get()
                    key, name, serial = inflight.pop(future)
                    outcome = self._collect(future, key, name, serial, report, removed)
                    if outcome:
                        self.progress.advance(outcome.files, outcome.bytes)
                    else:
                        self.progress.advance()
            except BaseException:
                # Interrupted: abandon the downloads in flight first, so that waiting for the
                # threads takes a moment, not as long as the slowest file would trickle.
                self.master.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return removed, items

    def _once_each(self, entries: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        """Entries, but a listing's names that normalize alike only the first time."""
        seen: set[int] = set()
        for name, serial in entries:
            if self._repeated:
                digest = name_hash(normalize(name))
                if digest in self._repeated:
                    if digest in seen:
                        continue
                    seen.add(digest)
            yield name, serial

    def _collect(self, future: Future[Outcome], key: str, name: str, serial: int, report: RunReport,
                 removed: list[Outcome]) -> Outcome | None:
        try:
            outcome = future.result()
        except LinkInMirror:
            raise  # the operator's to fix (exit 2): nothing more is synced past a link
        except RemovalsHeldBack as exc:
            # Held back whole, its pages and files as they were; owed until --allow-mass-removal.
            report.failed[key] = Failure.now(name, serial, str(exc))
            report.held_back = report.held_back or str(exc)
            logger.info("%s: held back: its sync would delete files past the removal limits", key)
            return None
        except StoreUnreachable as exc:
            # Every project in flight ends the same way; the run stops as a killed one would (below).
            report.failed[key] = Failure.now(name, serial, str(exc))
            report.stopped_early = True
            self._store_down = self._store_down or exc
            return None
        except UpstreamUnreachable as exc:
            # Not this project's fault, and every project in flight ends the same way: one line.
            report.failed[key] = Failure.now(name, serial, str(exc))
            if report.stop_reason != str(exc):
                logger.error("%s; the pending projects stay in todo for the next run", exc)
            report.stopped_early = True
            report.stop_reason = str(exc)
            return None
        except BandersnatchError as exc:
            if isinstance(exc, StorageError):
                exc = explained(exc, self.directory)
            logger.error("%s: %s; left in todo for the next run", key, exc)
            report.failed[key] = Failure.now(name, serial, str(exc))
            if isinstance(exc, StorageError) or self.config.stop_on_error:
                report.stopped_early = True
                report.stop_reason = report.stop_reason or str(exc)
            return None
        except Exception as exc:
            logger.exception("%s: unexpected error (a bug: please report it); left in todo", key)
            report.failed[key] = Failure.now(name, serial, f"unexpected error: {exc!r}")
            report.stopped_early |= self.config.stop_on_error
            return None
        if outcome.removed or outcome.excluded:
            self._collect_gone(outcome, removed)
            return outcome
        self._note_synced(outcome.key, outcome.last_serial if outcome.last_serial is not None else serial)
        report.synced += 1
        report.files += outcome.files
        report.bytes += outcome.bytes
        if self.tracker is not None and outcome.requires is not None:
            self._follow_dependencies(outcome.key, outcome.requires)
        report.unverified += outcome.unverified
        self.state.done(name, serial)
        return outcome

    def _collect_gone(self, outcome: Outcome, removed: list[Outcome]) -> None:
        """A project upstream does not have, or that a filter excludes once its page is seen."""
        if self.projects.on_mirror(outcome.key):
            # Pages, or files an intents file names (a sync or removal stopped between its files
            # leaves no page): taken off the mirror after the pool, root index first.
            removed.append(outcome)
            return
        if outcome.excluded:
            logger.debug("%s: not selected (%s)", outcome.key, outcome.excluded)
            if self.records is not None and self.tracker is not None and self.tracker.admits(outcome.key):
                self.records.mark_missing(outcome.key, excluded=str(outcome.excluded))
        elif self.tracker is not None and self.tracker.admits(outcome.key):
            logger.warning("%s: upstream has no such project (%s); it stays off the mirror",
                           outcome.key, self.tracker.why(outcome.key))
            if self.records is not None:
                self.records.mark_missing(outcome.key)
        self.state.done(outcome.name, outcome.serial)

    def _follow_dependencies(self, key: str, requires: tuple[str, ...]) -> None:
        """Sync, in this run, what the project's requirements newly bring into the closure."""
        assert self.tracker is not None
        for new in sorted(self.tracker.synced(key, requires)):
            if new not in self._started and self.tracker.needs_sync(new, self._has_pages):
                if self._has_pages(new):
                    logger.debug("%s: on the mirror without a record of its requirements: synced again", new)
                else:
                    logger.info("%s: joins the mirror (%s)", new, self.tracker.why(new))
                self._extra.append((new, self._unselected.get(new, 0)))

    def _unselected_on_mirror(self, already: set[str]) -> list[str]:
        """Projects the root index names that the filters no longer select."""
        return [key for key in self.root.names() if key not in already and not self._selected(key)]

    # ------------------------------------------------------------ root index and wrap-up

    def _note_synced(self, key: str, serial: int) -> None:
        """Remember a project the root index must list at this serial; past a limit, rebuild it from disk."""
        if self._synced is None:
            return
        self._synced[key] = serial
        if len(self._synced) > ROOT_MERGE_LIMIT:
            self._synced = None

    def _page_totals(self, key: str) -> Totals:
        try:
            return page_totals(self.store, self.layout.page_key(key, PAGE_JSON))
        except BandersnatchError:
            return NONE

    def _record_run(self, started: str, report: RunReport | None, code: int) -> None:
        """Fold the run into ``counts`` and say in ``last-run`` how it ended (for ``bandersnatch status``)."""
        try:
            self.tally.close()
            previous = lastrun.read(self.directory)
            ended = lastrun.utc_now()
            success = ended if code == 0 else previous.last_success if previous \
                else lastrun.parse_last_modified(self.store.read(lastrun.LAST_MODIFIED))
            r = report or RunReport()
            interrupted = code == lastrun.EXIT_INTERRUPTED
            lastrun.write(self.directory, lastrun.LastRun(
                started, ended, code, self.state.read_serial(), r.synced, r.removed + r.unselected,
                r.files, r.bytes, len(r.failed),
                "interrupted (Ctrl-C or SIGTERM); the next run resumes it" if interrupted else r.stop_reason,
                success, lastrun.journal_id(self.state.journal_path) if interrupted else None), self.staging)
        except BandersnatchError as exc:
            logger.warning("Could not record this run for bandersnatch status: %s", exc)

    def _write_last_modified(self) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.store.publish_page(lastrun.LAST_MODIFIED, f"{stamp}\n".encode())

    @staticmethod
    def _log_summary(report: RunReport, seconds: float) -> None:
        removed = report.removed + report.unselected
        summary = (f"{report.synced} project(s) synced, {removed} removed, {report.files} file(s) "
                   f"({human_bytes(report.bytes)}) downloaded")
        if report.deleted_files:
            summary += f", {report.deleted_files} file(s) ({human_bytes(report.deleted_bytes)}) deleted"
        summary += f" in {seconds:.1f}s; serial {report.target}"
        if report.unverified:
            summary += f"; {report.unverified} file(s) with no usable hash mirrored unverified"
        if report.stop_reason:
            summary += f"; stopped early ({report.stop_reason})"
        if report.failed:
            logger.error("%s; %d project(s) FAILED and stay in todo for the next run", summary,
                         len(report.failed))
        elif report.refused:
            logger.error("%s; %d project name(s) refused", summary, report.refused)
        elif report.held_back:
            logger.warning("%s; removals held back", summary)
        else:
            logger.info("%s; mirror complete", summary)
