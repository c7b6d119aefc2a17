"""How many projects, files and bytes the mirror holds, kept up to date by ``mirror`` without walking it.

- ``counts``: one small JSON record, ``{"projects", "files", "bytes", "journal", "updated"}``,
  replaced atomically at the end of each run.  ``files`` and ``bytes`` are the
  distribution files our JSON pages link (PEP 658 ``.metadata`` files aside); a
  file two pages link counts twice.
- ``counts.journal``: while a run changes pages, one ``name projects files bytes`` line
  per project, appended *before* its JSON page is replaced or removed: what that
  project held before.  Its first line names the run (``run <token>``).

A run adds up what each page write changed in memory and folds the sum into
``counts`` at its end, then drops the journal; the record names the journal it
folded, so a crash between the two never counts a run twice.  A run that was
killed before folding leaves its journal: the next run re-reads the pages of
the projects it names (the first line of each is what that project held before
the killed run) and adds the difference.  So the totals stay exact across
kills; after a power loss the journal may miss its last lines (it is flushed,
not fsynced) and the totals may be off by those projects until ``counts`` is
deleted, which makes the next run count every page once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..errors import StorageError
from ..names import normalize
from ..store.atomic import atomic_write, open_new_text, remove_file

logger = logging.getLogger(__name__)

RECORD = "counts"
JOURNAL = "counts.journal"


@dataclass(frozen=True)
class Totals:
    """What some pages link: projects (pages present), distribution files and their bytes."""

    projects: int = 0
    files: int = 0
    bytes: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.projects + other.projects, self.files + other.files, self.bytes + other.bytes)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.projects - other.projects, self.files - other.files, self.bytes - other.bytes)


NONE = Totals()


@dataclass(frozen=True)
class Counts:
    """The ``counts`` record: the mirror's totals when the last run ended."""

    totals: Totals
    updated: str | None  # UTC, ISO 8601 to the second
    journal: str | None  # the token of the last journal folded in


def parse_record(data: bytes) -> Counts | None:
    """A ``counts`` record, or None when it is not one (damaged: the next run counts again)."""
    try:
        doc = json.loads(data)
        values = [doc["projects"], doc["files"], doc["bytes"]]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return None
    updated, journal = doc.get("updated"), doc.get("journal")
    return Counts(Totals(*values), updated if isinstance(updated, str) else None,
                  journal if isinstance(journal, str) else None)


def render_record(counts: Counts) -> bytes:
    t = counts.totals
    doc = {"projects": t.projects, "files": t.files, "bytes": t.bytes,
           "updated": counts.updated, "journal": counts.journal}
    return (json.dumps(doc, indent=1) + "\n").encode()


def read_counts(directory: Path) -> Counts | None:
    """The record as the last run left it (read-only; None when there is none or it is damaged)."""
    try:
        return parse_record((directory / RECORD).read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Tally:
    """One run's bookkeeping of the totals; ``before`` and ``changed`` are safe from many threads.

    ``measure(key)`` says what a project's pages link now (``NONE`` when it has none).
    """

    def __init__(self, directory: Path, staging: Path, measure: Callable[[str], Totals],
                 listing: Callable[[], Iterable[str]]) -> None:
        self.record_path = directory / RECORD
        self.journal_path = directory / JOURNAL
        self.staging = staging
        self.measure = measure
        self.listing = listing  # every project with pages: only when the record must be rebuilt
        self._lock = threading.Lock()
        self._journal: TextIO | None = None
        self._token = ""
        self._base = NONE
        self._delta = NONE

    def open(self) -> None:
        """Bring ``counts`` up to date with a killed run's journal (or count afresh), start a journal."""
        record = read_counts(self.record_path.parent)
        left = self._journal_token()
        if record is None:
            if self.record_path.exists():
                logger.warning("%s is damaged: counting the projects and files of every page again",
                               self.record_path)
            self._base = self._count_all()
        else:
            self._base = record.totals + self._recover(record.journal)
        if record is None or left is not None:
            self._write(self._base, left)  # names the journal it folds: dropping it may fail now
        self._discard_journal()
        token = uuid.uuid4().hex
        self._journal = open_new_text(self.journal_path, self.staging)
        try:
            self._journal.write(f"run {token}\n")
            self._journal.flush()
        except OSError as exc:
            raise StorageError(f"cannot write {self.journal_path}: {exc.strerror or exc}") from exc
        self._token = token

    def _journal_token(self) -> str | None:
        """The run a journal left on disk belongs to; None when there is none."""
        try:
            with self.journal_path.open(encoding="utf-8", errors="replace") as f:
                header = f.readline()
        except FileNotFoundError:
            return None
        return header[4:].strip() if header.startswith("run ") and header.endswith("\n") else ""

    def recount(self) -> None:
        """Count every page again, before this run writes any: pages went away behind its back."""
        with self._lock:
            self._base, self._delta = self._count_all(), NONE
        # Not folded into this record: the journal, empty so far, recovers a kill from here on.
        self._write(self._base, None)

    def _count_all(self) -> Totals:
        total = NONE
        for key in self.listing():
            total += self.measure(key)
        logger.info("Counted %d project(s), %d file(s), %d bytes on the mirror",
                    total.projects, total.files, total.bytes)
        return total

    def _recover(self, folded: str | None) -> Totals:
        """What a killed run's page writes changed: each project named now minus before (its first line)."""
        try:
            with self.journal_path.open(encoding="utf-8", errors="replace") as f:
                header = f.readline()
                if not header.endswith("\n") or header.strip() == f"run {folded}":
                    return NONE  # already folded in (the run died just after writing counts)
                before: dict[str, Totals] = {}
                for line in f:
                    parts = line.split()
                    if not line.endswith("\n") or len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
                        continue  # a half-written last line: that page was not touched yet
                    before.setdefault(normalize(parts[0]), Totals(*map(int, parts[1:])))
        except FileNotFoundError:
            return NONE
        change = NONE
        for key, old in before.items():
            change += self.measure(key) - old
        if before:
            logger.info("Counted again the %d project(s) an interrupted run changed", len(before))
        return change

    def before(self, key: str, totals: Totals) -> None:
        """Record what ``key``'s pages link, before they are replaced or removed."""
        with self._lock:
            if self._journal is None:
                return
            try:
                self._journal.write(f"{key} {totals.projects} {totals.files} {totals.bytes}\n")
                self._journal.flush()
            except OSError as exc:
                raise StorageError(f"cannot write {self.journal_path}: {exc.strerror or exc}") from exc

    def changed(self, before: Totals, after: Totals) -> None:
        """A project's pages now link ``after`` instead of ``before``."""
        with self._lock:
            self._delta += after - before

    @property
    def totals(self) -> Totals:
        with self._lock:
            return self._base + self._delta

    def close(self) -> None:
        """Fold this run into ``counts`` and drop its journal (a no-op unless ``open`` succeeded)."""
        with self._lock:
            journal, self._journal = self._journal, None
        if journal is None:
            return
        with contextlib.suppress(OSError):
            journal.close()
        self._write(self.totals, self._token)
        self._discard_journal()

    def _write(self, totals: Totals, token: str | None) -> None:
        clamped = Totals(*(max(0, v) for v in (totals.projects, totals.files, totals.bytes)))
        atomic_write(self.record_path, render_record(Counts(clamped, _now(), token)), self.staging)

    def _discard_journal(self) -> None:
        remove_file(self.journal_path, self.staging)
