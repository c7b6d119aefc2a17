"""``bandersnatch update-stats``: the disk side of the statistics.

One run, under ``<directory>/.stats.lock`` (never the mirror's own
``.lock``: a sync may run at the same time, and we only read its pages):

1. finish what a killed run committed but did not publish (``pending``);
2. read every log the ``access-log-pattern`` glob matches, each from where
   the state says it was counted to;
3. at a checkpoint — the end of the run, or earlier when the counts in memory
   grow large — add the new counts to each touched day's file, stage those
   files, commit the state that covers them, then keep a copy of each in
   ``<directory>/stats-days/`` and move them into ``web/local-stats/days/``;
4. redraw ``index.html`` and ``summary.json``.

The copies in ``stats-days/`` are the history: ``web/`` is what clients are
served, and an operator may delete it whole (the next mirror run syncs it
again).  Each run puts back, with one line, every day file missing from
``web/local-stats/days/``; a day file found only there (an older version, or
another tool) gets its copy.

Because the state file is written atomically after the staged day files and
before they are published, a crash at any point either loses nothing (the
offsets did not move) or leaves a commit the next run completes: every log
line is counted exactly once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import filelock

from ..errors import ConfigError, LockHeld, StorageError
from ..store.atomic import atomic_write, clear_staging, fsync_dir, move_staged, staging_dir
from ..store.filesystem import FilesystemStore
from ..store.protocol import Store
from .aggregate import Tally, merge_counts
from .dayfile import decode_day, encode_day
from .errors import MirrorMissing, StatsStateError
from .index import ProjectIndex
from .logfiles import (
    MARK_LINES,
    PREFIX_LIMIT,
    READ_ERRORS,
    OpenLog,
    Resume,
    compare,
    digest,
    find_logs,
    head_of,
    line_marks,
    marks_agree,
    read_chunk,
    read_lines,
)
from .render import render_html, render_json
from .state import LogEntry, StatsState, dump_state, format_time, is_day, load_state, prune_logs
from .summary import CHART_DAYS, TABLE_DAYS, build_summary, day_range, digest_counts, prune_digests

logger = logging.getLogger(__name__)

STATE_NAME = "stats-state.json"
KEPT_NAME = "stats-days"  # below the mirror directory: the day files, outside web/
LOCK_NAME = ".stats.lock"
# Counts held in memory before a checkpoint writes them out: bounds memory on
# a first run over months of logs.  About 200 bytes each.
CHECKPOINT_KEYS = 500_000
# A log no file has held for this long is forgotten (see state.prune_logs).
FORGET_LOGS_AFTER_DAYS = 90
# Day totals kept for the summary; the tables only need TABLE_DAYS of detail.
KEEP_DIGEST_DAYS = 400


class StatsConfig(Protocol):
    """The part of the configuration update-stats uses."""

    @property
    def directory(self) -> Path: ...

    @property
    def hash_index(self) -> bool: ...

    @property
    def access_log_pattern(self) -> str: ...

    @property
    def path(self) -> Path: ...


@dataclass(frozen=True)
class StatsSummary:
    """What one run did, for the CLI and for tests.

    ``files_skipped`` counts logs that could not be opened or read to their
    end (each is also logged with the reason); ``lines_read`` only counts
    lines not read by earlier runs.
    """

    files_read: int
    files_skipped: int
    lines_read: int
    downloads: int
    malformed: int
    days_updated: tuple[str, ...]


OUTPUT_KEY = "local-stats"  # the store's prefix (below web/) of everything update-stats publishes


@dataclass(frozen=True)
class StatsPaths:
    """Where update-stats reads and writes below the mirror directory."""

    directory: Path
    web: str = "web"  # with an object store, the local record of what it publishes (recordedstore)

    @property
    def simple(self) -> Path:
        return self.directory / self.web / "simple"

    @property
    def output(self) -> Path:
        return self.directory / self.web / OUTPUT_KEY

    @property
    def days(self) -> Path:
        return self.output / "days"

    @property
    def state(self) -> Path:
        return self.directory / STATE_NAME

    @property
    def lock(self) -> Path:
        return self.directory / LOCK_NAME

    @property
    def staging(self) -> Path:
        return staging_dir(self.directory, "stats")

    @property
    def pending(self) -> Path:
        return self.staging / "pending"

    def day_file(self, day: str) -> Path:
        return self.days / f"{day}.bz2"

    @property
    def kept(self) -> Path:
        return self.directory / KEPT_NAME

    def kept_file(self, day: str) -> Path:
        return self.kept / f"{day}.bz2"


def update_stats(config: StatsConfig, *, now: datetime | None = None, store: Store | None = None,
                 record: str | None = None) -> StatsSummary:
    """Count the new lines of the access logs into ``web/local-stats/``.

    ``now`` (UTC) is when the run happens, for the summary's windows; tests
    pass it, everyone else leaves it out.  ``store``: where to publish (default
    ``web/`` itself), with ``record`` the directory (below the mirror's) where
    the pages are read and the day files kept (``web``, or an object store's
    local record); a store whose objects are not those files gets a copy of each
    day file (see ``StatsRun``).  Raises MirrorMissing,
    LockHeld, ConfigError, StatsStateError or StorageError with a message to act on.
    """
    paths = StatsPaths(Path(config.directory), record or "web")
    if paths.directory.exists() and not paths.directory.is_dir():
        raise MirrorMissing(f"mirror directory {paths.directory} is not a directory")
    if not paths.directory.is_dir():
        raise MirrorMissing(
            f"mirror directory {paths.directory} does not exist; run `bandersnatch mirror` first"
        )
    pattern = config.access_log_pattern
    if not pattern:
        raise ConfigError(
            str(config.path),
            "statistics",
            "access-log-pattern",
            "is empty; set it to a glob of the access logs",
        )
    if not os.path.isabs(os.path.expanduser(pattern)):
        pattern = str(Path(config.path).parent / pattern)
    lock = filelock.FileLock(str(paths.lock), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockHeld(
            f"another `bandersnatch update-stats` is running ({paths.lock} is locked); "
            "let it finish, this run would count nothing it does not"
        ) from None
    except OSError as exc:
        raise StorageError(f"cannot create the lock file {paths.lock}: {exc.strerror or exc}") from exc
    try:
        run = StatsRun(paths, config.hash_index, now or datetime.now(timezone.utc), store)
        return run.run(os.path.expanduser(pattern))
    finally:
        lock.release()


class StatsRun:
    """One update-stats run; holds the state and the counts between checkpoints."""

    def __init__(self, paths: StatsPaths, hash_index: bool, now: datetime,
                 store: Store | None = None) -> None:
        self.paths = paths
        # Where the summary is published.  The day files are still moved into local-stats/days
        # by path: their staged copies are this run's two-phase commit (see ``publish``); a store
        # whose objects are not those files (an object store) gets each a copy after (``remote``).
        self.store: Store = store or FilesystemStore(paths.directory / paths.web, paths.staging)
        self.remote = self.store.local_path(OUTPUT_KEY) != paths.output
        self.now = now
        self.seen = format_time(now)
        self.index = ProjectIndex(paths.simple, hash_index)
        self.tally = Tally(self.index.project_for)
        self.files_read = 0
        self.files_skipped = 0
        self.updated: set[str] = set()
        self.state = self.load_state()

    # -- state ------------------------------------------------------------

    def load_state(self) -> StatsState:
        """The committed state; an error rather than a guess when it is missing but needed."""
        path = self.paths.state
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            for days in (self.paths.kept, self.paths.days):
                existing = _day_names(days)
                if existing:
                    raise StatsStateError(
                        f"{path} is missing but {days} holds {len(existing)} day files: without it "
                        "update-stats cannot tell which log lines those already include, and counting the "
                        f"logs again would count them twice. Restore {path} from a backup, or move "
                        f"{self.paths.kept} and {self.paths.days} aside to count the logs still present "
                        "afresh"
                    ) from None
            return StatsState()
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            return load_state(data)
        except ValueError as exc:
            raise StatsStateError(
                f"{path} is damaged ({exc}); it records which log lines were already counted. Restore "
                f"it from a backup, or move it and {self.paths.days} aside to count the logs still present "
                "afresh"
            ) from None

    def write_state(self) -> None:
        atomic_write(self.paths.state, dump_state(self.state), self.paths.staging)

    def recover(self) -> None:
        """Publish the day files a killed run committed (the state already counts them)."""
        if not self.state.pending:
            return
        logger.info("finishing the previous run: publishing %d staged day files", len(self.state.pending))
        self.publish()

    def publish(self) -> None:
        """Keep and move the staged day files of ``state.pending`` into place, then commit that."""
        for day in self.state.pending:
            staged_day = self.paths.pending / f"{day}.bz2"
            with contextlib.suppress(FileNotFoundError):  # gone: kept, then moved, before a run stopped
                atomic_write(self.paths.kept_file(day), staged_day.read_bytes(), self.paths.staging)
            # False: published before the previous run stopped.
            move_staged(staged_day, self.paths.day_file(day), self.paths.staging)
        fsync_dir(self.paths.days)
        if self.remote:  # still pending until the bucket has them: a killed run's recover sends them again
            for day in self.state.pending:
                self.store.publish_page(f"{OUTPUT_KEY}/days/{day}.bz2", self.paths.day_file(day).read_bytes())
        self.state.pending = []
        self.write_state()

    # -- the run ----------------------------------------------------------

    def restore(self) -> None:
        """Put back the day files missing from ``web/`` (deleted with it), and keep those not kept yet."""
        kept, published = _day_names(self.paths.kept), _day_names(self.paths.days)
        missing = sorted(kept - published)
        for day in missing:
            data = self.paths.kept_file(day).read_bytes()
            atomic_write(self.paths.day_file(day), data, self.paths.staging)
            if self.remote:
                self.store.publish_page(f"{OUTPUT_KEY}/days/{day}.bz2", data)
        if missing:
            logger.warning("put back %d day file(s) of the download statistics missing from %s (deleted with "
                           "web/?) from the copies in %s", len(missing), self.paths.days, self.paths.kept)
        unkept = sorted(published - kept)
        for day in unkept:  # written before copies were kept (an older version), or by another tool
            atomic_write(self.paths.kept_file(day), self.paths.day_file(day).read_bytes(), self.paths.staging)
        if unkept:
            logger.info("kept a copy of %d day file(s) of the download statistics in %s, outside web/",
                        len(unkept), self.paths.kept)

    def run(self, pattern: str) -> StatsSummary:
        self.recover()
        self.restore()
        clear_staging(self.paths.staging)
        logs = find_logs(pattern)
        if not logs:
            logger.warning("access-log-pattern %s matches no files; nothing to count", pattern)
        for path in logs:
            self.read_log(path)
        self.checkpoint()
        self.refresh_digests()
        prune_digests(self.state.days, self.now.date(), KEEP_DIGEST_DAYS, TABLE_DAYS)
        forgotten = prune_logs(self.state, self.now, FORGET_LOGS_AFTER_DAYS)
        if forgotten:
            logger.info("forgot %d logs no file has held for %d days", forgotten, FORGET_LOGS_AFTER_DAYS)
        self.write_state()
        self.render()
        summary = StatsSummary(
            files_read=self.files_read,
            files_skipped=self.files_skipped,
            lines_read=self.tally.lines,
            downloads=self.tally.downloads,
            malformed=self.tally.malformed,
            days_updated=tuple(sorted(self.updated)),
        )
        logger.info(
            "update-stats: read %d files (%d skipped), %d lines, counted %d downloads, "
            "skipped %d malformed lines; updated %d days",
            summary.files_read,
            summary.files_skipped,
            summary.lines_read,
            summary.downloads,
            summary.malformed,
            len(summary.days_updated),
        )
        return summary

    def read_log(self, path: Path) -> None:
        """Count the lines of ``path`` not counted before; a bad file is logged and skipped."""
        try:
            log = OpenLog(path)
        except FileNotFoundError:
            logger.info(
                "%s went away before it could be read (rotated?); its lines count under its new name", path
            )
            return
        except OSError as exc:
            logger.warning("skipping %s: cannot open it: %s", path, exc.strerror or exc)
            self.files_skipped += 1
            return
        with log:
            stream = log.stream
            try:
                prefix, error = read_chunk(stream, PREFIX_LIMIT)
                head = head_of(prefix, whole=log.compressed and error is None and len(prefix) < PREFIX_LIMIT)
                if head is None:
                    if error is not None:
                        raise error
                    logger.debug("%s has no complete first line yet; nothing to count", path)
                    return
                marks = line_marks(prefix)
                found = self.resume(stream, head, marks, log.seal, path)
            except READ_ERRORS as exc:
                logger.warning("skipping %s: cannot read it: %s", path, exc)
                self.files_skipped += 1
                return
            self.files_read += 1
            if found is None:
                return
            entry, recent = found
            entry.name = str(path)
            entry.seen = self.seen
            finished = self.consume(stream, entry, recent, log.compressed, path)
            if finished and log.compressed:
                entry.sealed = log.seal
            if len(entry.marks) < MARK_LINES:
                entry.marks = line_marks(prefix[: entry.offset])

    def resume(
        self, stream: io.BufferedIOBase, head: str, marks: list[str], seal: str, path: Path
    ) -> tuple[LogEntry, bytes] | None:
        """The state entry ``stream`` continues (positioned after its counted part), or None to skip it."""
        entries = self.state.entries_for(head)
        for entry in entries:
            if seal and entry.sealed == seal:
                logger.debug("%s was read to its end before", path)
                entry.seen = self.seen
                return None
        shorter: LogEntry | None = None
        for entry in entries:
            if not marks_agree(entry.marks, marks):
                continue
            verdict, recent = compare(stream, entry.offset, entry.tail)
            if verdict is Resume.SAME:
                return entry, recent
            if verdict is Resume.SHORTER and shorter is None:
                shorter = entry
        if shorter is not None:
            # Same first line, ends before what we counted: a partial copy
            # (gzip still writing, or truncated).  Its lines were counted.
            logger.debug("%s is a shorter copy of %s, already counted", path, shorter.name)
            shorter.seen = self.seen
            return None
        if entries:
            logger.info(
                "%s starts like %s but differs from it; counting it as another log", path, entries[0].name
            )
        entry = LogEntry(head=head)
        self.state.logs.append(entry)
        stream.seek(0)
        return entry, b""

    def consume(
        self, stream: io.BufferedIOBase, entry: LogEntry, before: bytes, compressed: bool, path: Path
    ) -> bool:
        """Feed the rest of ``stream`` to the tally, moving ``entry`` along; True when read to its end."""
        try:
            for lines, end, recent in read_lines(stream, entry.offset, before, finished=compressed):
                self.tally.feed(lines)
                entry.offset = end
                entry.tail = digest(recent)
                entry.lines += len(lines)
                if self.tally.keys >= CHECKPOINT_KEYS:
                    self.checkpoint()
        except READ_ERRORS as exc:
            logger.warning(
                "%s: stopped reading after %d bytes of content (%s); the complete lines before were counted",
                path,
                entry.offset,
                exc,
            )
            self.files_skipped += 1
            return False
        return True

    # -- writing ----------------------------------------------------------

    def load_day(self, day: str) -> dict[tuple[str, str, str], int]:
        """The counts already in ``day``'s file (none when it does not exist yet); the kept copy first."""
        path = self.paths.kept_file(day)
        if not path.is_file():
            path = self.paths.day_file(day)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            return decode_day(data)
        except ValueError as exc:
            raise StatsStateError(
                f"{path} cannot be read as a day file ({exc}); new counts for {day} cannot be added to it. "
                "Move it aside and run again: that day then starts from the lines not yet counted"
            ) from None

    def checkpoint(self) -> None:
        """Write the counts in memory to their day files, exactly once (see module docstring)."""
        fresh = self.tally.drain()
        days = sorted(day for day in fresh if is_day(day))
        if not days:
            return
        for day in days:
            merged = self.load_day(day)
            merged = merge_counts(merged, fresh.pop(day)) if merged else fresh.pop(day)
            atomic_write(self.paths.pending / f"{day}.bz2", encode_day(merged), self.paths.staging)
            self.state.days[day] = digest_counts(merged)
        self.state.pending = days
        self.write_state()
        self.publish()
        self.updated.update(days)

    def refresh_digests(self) -> None:
        """Digest the day files the summary needs but the state has no digest of (older tools, lost cache)."""
        tables = set(day_range(self.now.date(), TABLE_DAYS))
        for day in day_range(self.now.date(), CHART_DAYS):
            digest_ = self.state.days.get(day)
            if digest_ is not None and (digest_.projects is not None or day not in tables):
                continue
            path = self.paths.day_file(day)
            if not path.is_file():
                continue
            try:
                self.state.days[day] = digest_counts(decode_day(path.read_bytes()))
            except (OSError, ValueError) as exc:
                logger.warning("leaving %s out of the summary: %s", path, exc)

    def render(self) -> None:
        summary = build_summary(self.state.days, self.now)
        self.store.publish_page(f"{OUTPUT_KEY}/summary.json", render_json(summary))
        self.store.publish_page(f"{OUTPUT_KEY}/index.html", render_html(summary))


def _day_names(directory: Path) -> set[str]:
    """The days whose file ``directory`` holds (none when it does not exist)."""
    try:
        with os.scandir(directory) as entries:
            return {e.name[:-4] for e in entries if e.name.endswith(".bz2") and is_day(e.name[:-4])
                    and e.is_file(follow_symlinks=False)}
    except (FileNotFoundError, NotADirectoryError):
        return set()
