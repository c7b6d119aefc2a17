"""One ``bandersnatch mirror`` run: lock, plan from state/todo/changelog, sync on a pool, wrap up.

The order of writes is what keeps the mirror whole across crashes:
project pages appear only after their files, the root index names a project
only after its page exists and stops naming it before its page goes, and
``state`` advances only after ``todo`` records everything still owed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import filelock

from .config import Config
from .errors import BandersnatchError, LockHeld, StorageError
from .layout import UrlPolicy, root_href
from .master import Master
from .names import is_valid_project_name
from .package import PAGE_HTML, PAGE_JSON, Layout, Outcome, ProjectSync
from .progress import Progress
from .simple import render_root_html, render_root_json, root_names
from .state import StateFiles, Todo
from .storage import atomic_write, clear_staging

logger = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did; its exit code says whether the mirror is complete."""

    target: int | None = None
    synced: int = 0
    removed: int = 0
    files: int = 0
    bytes: int = 0
    failed: dict[str, tuple[str, int]] = field(default_factory=dict)
    stopped_early: bool = False
    stop_reason: str | None = None  # the error that stopped the run early, for its last line
    refused: int = 0  # project names upstream sent that cannot be mirrored

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.stopped_early or self.refused else 0


def _has_pages(page_dir: Path) -> bool:
    """Both pages of a project are there: the root index may name it (a killed run may leave one)."""
    return (page_dir / PAGE_JSON).is_file() and (page_dir / PAGE_HTML).is_file()


def acquire_lock(directory: Path) -> filelock.BaseFileLock:
    """The mirror's run lock; the kernel drops it when a process dies, so a crash never blocks."""
    lock = filelock.FileLock(str(directory / ".lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise LockHeld(
            f"another bandersnatch mirror run holds {directory / '.lock'}; this run stops without changes"
        ) from None
    return lock


class Mirror:
    """Brings ``<directory>/web`` up to date with the master."""

    def __init__(self, config: Config, *, force_check: bool = False, master: Master | None = None,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or Progress(None)
        self.force_check = force_check
        self.directory = config.directory
        self.staging = self.directory / "tmp" / "mirror"
        self.layout = Layout(self.directory / "web", self.staging, config.hash_index)
        self.policy = UrlPolicy.for_master(config.master, config.download_hosts, config.allow_non_https)
        self.master = master or Master(
            config.master, timeout=config.timeout, workers=config.workers,
            max_page_bytes=config.max_page_bytes, policy=self.policy,
        )
        self.state = StateFiles(self.directory, self.staging)
        self.refused: set[str] = set()
        self.projects = ProjectSync(
            self.master, self.layout, self.policy,
            workers=config.workers, delete_packages=config.delete_packages, force_check=force_check,
        )

    def run(self) -> RunReport:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the mirror directory {self.directory}: {exc.strerror}"
            ) from exc
        lock = acquire_lock(self.directory)
        try:
            self._prepare_directories()
            self.state.check_generation()
            return self._sync()
        finally:
            self.state.close()
            self.projects.close()
            self.master.close()
            lock.release()

    def _prepare_directories(self) -> None:
        left = clear_staging(self.staging)
        if left:
            logger.info("Removed %d temporary file(s) left by an interrupted run", left)
        for path in (self.staging, self.layout.simple, self.layout.packages):
            path.mkdir(parents=True, exist_ok=True)
        if self.staging.stat().st_dev != self.layout.web.stat().st_dev:
            raise StorageError(
                f"{self.layout.web} is on another filesystem than {self.directory}: files are staged in "
                f"{self.staging} and renamed into place, so both must share one filesystem"
            )

    # ------------------------------------------------------------ planning

    def _plan(self) -> Todo | None:
        """The work of this run, or None when the mirror is already current."""
        serial = self.state.read_serial()
        todo = self.state.read_todo()
        if serial is None and todo is None or self.force_check:
            return self._plan_full(todo)
        since = max(serial or 0, todo.target if todo else 0)
        changes = self.master.changelog_since_serial(since)
        work = Todo(max([since, *(s for _, s in changes)]), self._carried(todo))
        for name, change_serial in changes:
            if self._acceptable(name):
                work.add(name, change_serial)
        if todo:
            logger.info("Resuming %d pending project(s) from %s", len(todo.pending), self.state.todo_path)
        if not work.pending and todo is None and work.target == serial:
            return None
        logger.info("Syncing %d project(s) changed since serial %d, up to serial %d",
                    len(work.pending), since, work.target)
        return work

    def _plan_full(self, todo: Todo | None) -> Todo:
        listing = self.master.list_packages_with_serial()
        target = max(listing.values(), default=0) or self.master.changelog_last_serial()
        work = Todo(max(target, todo.target if todo else 0), self._carried(todo))
        for name, serial in listing.items():
            if self._acceptable(name):
                work.add(name, serial)
        # Projects we still serve but upstream no longer lists: ask for them, they will 404.
        for key in self._root_names() - set(work.pending):
            work.add(key, 0)
        logger.info("Full sync of %d project(s) up to serial %d", len(work.pending), work.target)
        return work

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

    def _carried(self, todo: Todo | None) -> dict[str, tuple[str, int]]:
        """The pending work of an earlier run that this run takes over."""
        if todo is None:
            return {}
        return {key: item for key, item in todo.pending.items() if self._acceptable(item[0])}

    # ------------------------------------------------------------ the run

    def _sync(self) -> RunReport:
        started = time.monotonic()
        work = self._plan()
        report = RunReport(refused=len(self.refused))
        if work is None:
            logger.info("Mirror is up to date")
            self._write_last_modified()
            return report
        report.target = work.target
        # A killed run may have finished new projects without naming them in the root index yet;
        # name them before begin() starts a new journal and so forgets them.
        if finished := self._finished_earlier():
            self._update_root(finished, set(), work.target)
        self.state.begin(work)
        self.progress.start(len(work.pending))
        try:
            synced, removed, remaining = self._run_pool(work, report)
        finally:
            self.progress.finish()
        report.failed.update(remaining)
        self._update_root(synced, {o.key for o in removed}, work.target)
        for outcome in removed:
            self.projects.remove_project(outcome.name)
            self.state.done(outcome.name, outcome.serial)
            report.removed += 1
        self.state.finish(work.target, report.failed)
        if not report.exit_code:
            self._write_last_modified()
        self._log_summary(report, time.monotonic() - started)
        return report

    def _run_pool(
        self, work: Todo, report: RunReport
    ) -> tuple[set[str], list[Outcome], dict[str, tuple[str, int]]]:
        """Sync every pending project; returns synced keys, removals, and what was never started."""
        # Twice `workers` project threads: while some wait for their files on the download
        # pool, others fetch the next pages. Master's slots still cap requests at `workers`.
        threads = 2 * self.config.workers
        items: Iterator[tuple[str, tuple[str, int]]] = iter(list(work.pending.items()))
        synced: set[str] = set()
        removed: list[Outcome] = []
        inflight: dict[Future[Outcome], tuple[str, str, int]] = {}
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sync") as pool:
            try:
                while True:
                    while not report.stopped_early and len(inflight) < threads * 2:
                        item = next(items, None)
                        if item is None:
                            break
                        key, (name, serial) = item
                        inflight[pool.submit(self.projects.sync, name, serial)] = (key, name, serial)
                    if not inflight:
                        break
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        key, name, serial = inflight.pop(future)
                        outcome = self._collect(future, key, name, serial, report, synced, removed)
                        if outcome:
                            self.progress.advance(outcome.files, outcome.bytes)
                        else:
                            self.progress.advance()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return synced, removed, dict(items)

    def _collect(self, future: Future[Outcome], key: str, name: str, serial: int, report: RunReport,
                 synced: set[str], removed: list[Outcome]) -> Outcome | None:
        try:
            outcome = future.result()
        except BandersnatchError as exc:
            logger.error("%s: %s; left in todo for the next run", key, exc)
            report.failed[key] = (name, serial)
            if isinstance(exc, StorageError) or self.config.stop_on_error:
                report.stopped_early = True
                report.stop_reason = report.stop_reason or str(exc)
            return None
        except Exception:
            logger.exception("%s: unexpected error (a bug: please report it); left in todo", key)
            report.failed[key] = (name, serial)
            report.stopped_early |= self.config.stop_on_error
            return None
        if outcome.removed:
            removed.append(outcome)
            return outcome
        synced.add(outcome.key)
        report.synced += 1
        report.files += outcome.files
        report.bytes += outcome.bytes
        self.state.done(name, serial)
        return outcome

    # ------------------------------------------------------------ root index and wrap-up

    def _root_names(self) -> set[str]:
        root_json = self.layout.simple / PAGE_JSON
        try:
            return set(root_names(root_json.read_bytes()))
        except FileNotFoundError:
            return self._scan_project_dirs()
        except (ValueError, KeyError, TypeError):
            logger.warning("%s is unreadable; rebuilding it from the project directories", root_json)
            return self._scan_project_dirs()

    def _scan_project_dirs(self) -> set[str]:
        """Only when the root index is missing: the projects whose pages are both on disk."""
        simple = self.layout.simple
        if not simple.is_dir():
            return set()
        dirs = (p for d in simple.iterdir() if d.is_dir() for p in d.iterdir()) if self.config.hash_index \
            else simple.iterdir()
        return {d.name for d in dirs if _has_pages(d)}

    def _finished_earlier(self) -> set[str]:
        """Projects the journal of an interrupted run records as synced (their pages exist)."""
        return {key for key in self.state.journaled if _has_pages(self.layout.page_dir(key))}

    def _update_root(self, added: set[str], removed: set[str], serial: int) -> None:
        """Rewrite the root index only when the set of projects changed.

        HTML first: ``before`` is read from the JSON index, so a run killed between
        the two writes leaves a JSON index the next run still finds out of date.
        """
        root_exists = (self.layout.simple / PAGE_JSON).is_file()
        before = self._root_names()
        after = (before | added) - removed
        if after == before and root_exists and (self.layout.simple / PAGE_HTML).is_file():
            return
        projects = [(name, root_href(name, self.config.hash_index)) for name in sorted(after)]
        atomic_write(self.layout.simple / PAGE_HTML, render_root_html(projects, serial), self.staging)
        atomic_write(self.layout.simple / PAGE_JSON, render_root_json(projects, serial), self.staging)
        logger.info("Root index: %d project(s)", len(after))

    def _write_last_modified(self) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        atomic_write(self.layout.web / "last-modified", f"{stamp}\n".encode(), self.staging)

    @staticmethod
    def _log_summary(report: RunReport, seconds: float) -> None:
        summary = (f"{report.synced} project(s) synced, {report.removed} removed, {report.files} file(s) "
                   f"({report.bytes} bytes) downloaded in {seconds:.1f}s; serial {report.target}")
        if report.stop_reason:
            summary += f"; stopped early ({report.stop_reason})"
        if report.failed:
            logger.error("%s; %d project(s) FAILED and stay in todo for the next run", summary,
                         len(report.failed))
        elif report.refused:
            logger.error("%s; %d project name(s) refused", summary, report.refused)
        else:
            logger.info("%s; mirror complete", summary)
