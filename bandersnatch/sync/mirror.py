"""One ``bandersnatch mirror`` run: lock, the work list (``plan.Planner``), sync on a pool, wrap up.

The order of writes is what keeps the mirror whole across crashes:
project pages appear only after their files, the root index names a project
only after its page exists and stops naming it before its page goes, and
``state`` advances only after ``todo`` records everything still owed.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
from ..formats.layout import PAGE_JSON
from ..ledger import lastrun
from ..ledger.counts import NONE, Tally, Totals
from ..ledger.excluded import ExclusionLedger
from ..ledger.holdback import HoldLedger, held_files, next_maturity
from ..ledger.state import Failure, StateFiles, name_hash
from ..names import normalize
from ..progress import Progress, human_bytes
from ..runtime import Runtime, build_selection
from ..selection.closure import DependencyTracker
from ..selection.holdback import when
from ..selection.records import DependencyRecords
from ..store.atomic import clear_staging, make_dirs, make_readable_dirs
from ..upstream.feeds import feed_for
from ..upstream.master import Master
from . import adopt
from .guards import check_layout, check_release_files, explained, permission_problem
from .package import Outcome, page_keys, page_totals
from .plan import Planner, Work

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
    held: int = 0  # files the cooling-off window holds back for now (not owed: the operator's choice)
    held_until: float | None = None  # when the first of them leaves the window (Unix time)
    sources: str | None = None  # with a download mirror: how many files each host served

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
                 progress: Progress | None = None, allow_mass_removal: bool = False,
                 now: Callable[[], float] = time.time) -> None:
        """``now``: the clock the cooling-off window is read on (tests move theirs instead of sleeping)."""
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
        self.feed = feed_for(config.api_method, self.master, self.root.mirrored, self.directory, self.staging)
        # Projects this run synced, with their pages' serials, for the root index; None: too many to merge.
        self._synced: dict[str, int] | None = {}
        self.selection = build_selection(config, now)
        self.now = now
        # Which projects have files the cooling-off window withholds, and until when.
        self.holds = HoldLedger(self.directory, self.staging)
        # Which projects the filters excluded on their page or metadata (verify --upstream reads it).
        self.exclusions = ExclusionLedger(self.directory, self.staging)
        self.records = (DependencyRecords(self.directory / "deps", self.staging)
                        if self.selection.with_dependencies else None)
        # Dependencies reached during the run, synced after the work list; each project once.
        self._extra: deque[Work] = deque()
        self._started: set[str] = set()
        self._store_down: StoreUnreachable | None = None  # the store stopped answering (first error)
        self._report: RunReport | None = None  # this run's, as far as it got: an interrupted run records it
        self.tally = Tally(self.directory, self.staging, self._page_totals,
                           lambda: page_keys(self.store, config.hash_index))
        self.projects = run.project_sync(force_check=force_check, selection=self.selection,
                                         records=self.records, tally=self.tally, json_api=True)
        self.planner = Planner(config, self.state, self.feed, self.master.url, self.root, self.layout,
                               self.projects, self.selection, self.records, self.tally,
                               force_check=force_check)

    @property
    def tracker(self) -> DependencyTracker | None:
        """The dependency closure, once planning built it (None without dependency filters)."""
        return self.planner.tracker

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
            # After the generation check, which tells a bandersnatch 8 mirror being adopted.
            check_release_files(self.directory, self.layout.web, self.config.release_files, self.config.path,
                                self.staging, adopting=self.state.adopting())
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
            self._flush_holds()
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

    # ------------------------------------------------------------ the run

    def _sync(self) -> RunReport:
        started = time.monotonic()
        # A killed run may have written pages the root index does not name yet:
        # this run ends by rebuilding the root index from the project directories.
        rebuild_root = self.state.journal_path.exists()
        if self.selection.window is None:
            # Turned off: nothing is held any more, and the fingerprint's change renders every page again.
            self.holds.clear()
        self.planner.matured = self.holds.due(self.now())
        plan = self.planner.plan()
        if rebuild_root:
            self._synced = None
        report = self._report = RunReport(refused=len(self.planner.refused))
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
        target, count = plan.target, plan.count
        report.target = target
        if self.planner.matured:
            logger.info("%d project(s) with files that left the hold-back window since they were held",
                        len(self.planner.matured))
            self.projects.serial_floor = dict.fromkeys(self.planner.matured, target)
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
        self.holds.flush()  # before state moves past the changes that put files in the window
        # A finished full run judged every project: only then is the record whole enough to start.
        self.exclusions.flush(complete=plan.full is not None and not report.stopped_early)
        report.held, report.held_until = held_files(self.holds.entries), next_maturity(self.holds.entries)
        if report.held_until is not None:
            # The ledger keeps the second rounded up (no file arrives early): status names that one too.
            report.held_until = float(math.ceil(report.held_until))
        self.state.finish(target, report.failed, itertools.chain(held, remaining))
        if not report.exit_code:
            self._write_last_modified()
        report.deleted_files, report.deleted_bytes = self.projects.deleted_files, self.projects.deleted_bytes
        if self.master.download_mirror is not None:
            report.sources = self.master.download_mirror.summary()
        self._log_summary(report, time.monotonic() - started)
        if report.held_back:
            logger.error("%s", report.held_back)  # the last line: what to do
        return report

    def _take_off(self, removed: list[Outcome], target: int, report: RunReport) -> list[Work]:
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
            return [Work(o.name, o.serial) for o in removed]
        self.root.update(self._synced, gone, serial)
        for outcome in removed:
            why = f"not selected: {outcome.excluded}" if outcome.excluded else "gone upstream"
            self.projects.remove_project(outcome.name, why)
            self._note_exclusion(outcome)
            self.state.done(outcome.name, outcome.serial)
            report.removed += 1
        for key in unselected:
            self.projects.remove_project(key, "no longer selected by the filters")
            self.holds.note(key, 0, None)
            self.exclusions.forget(key)  # its name excludes it: verify asks the filters again
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
            if self.planner.repeated:
                digest = name_hash(normalize(name))
                if digest in self.planner.repeated:
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
        self.holds.note(outcome.key, outcome.held, outcome.matures)
        self.exclusions.forget(outcome.key)
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
        self.holds.note(outcome.key, 0, None)  # nothing of it waits any more
        if self.projects.on_mirror(outcome.key):
            # Pages, or files an intents file names (a sync or removal stopped between its files
            # leaves no page): taken off the mirror after the pool, root index first.
            removed.append(outcome)
            return
        self._note_exclusion(outcome)
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

    def _note_exclusion(self, outcome: Outcome) -> None:
        """Record a project excluded once its page was seen (or forget one gone upstream)."""
        if outcome.excluded is not None:
            self.exclusions.note(outcome.key, outcome.serial, outcome.excluded.plugin)
        else:
            self.exclusions.forget(outcome.key)

    def _follow_dependencies(self, key: str, requires: tuple[str, ...]) -> None:
        """Sync, in this run, what the project's requirements newly bring into the closure."""
        assert self.tracker is not None
        for new in sorted(self.tracker.synced(key, requires)):
            if new not in self._started and self.tracker.needs_sync(new, self.planner.has_pages):
                if self.planner.has_pages(new):
                    logger.debug("%s: on the mirror without a record of its requirements: synced again", new)
                else:
                    logger.info("%s: joins the mirror (%s)", new, self.tracker.why(new))
                self._extra.append(Work(new, self.planner.unselected.get(new, 0)))

    def _unselected_on_mirror(self, already: set[str]) -> list[str]:
        """Projects the root index names that the filters no longer select."""
        return [key for key in self.root.names() if key not in already and not self.planner.selected(key)]

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

    def _flush_holds(self) -> None:
        """Keep what an interrupted run learnt of held files (a lost note only delays them) and exclusions."""
        try:
            self.holds.flush()
        except (BandersnatchError, OSError) as exc:
            logger.warning("Could not record the held-back files in %s: %s", self.holds.path, exc)
        try:
            self.exclusions.flush(complete=False)  # an existing record keeps what this run judged
        except (BandersnatchError, OSError) as exc:
            logger.warning("Could not record the excluded projects in %s: %s", self.exclusions.path, exc)

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
        if report.sources:
            summary += f" ({report.sources})"
        summary += f" in {seconds:.1f}s; serial {report.target}"
        if report.held and report.held_until is not None:
            summary += (f"; {report.held} new file(s) held back (hold-back), the first until "
                        f"{when(report.held_until)}")
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
