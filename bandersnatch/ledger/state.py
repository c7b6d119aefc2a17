"""The mirror's bookkeeping files: ``state``, ``todo`` (+ its progress journal) and ``generation``.

- ``state``: the serial the mirror has caught up to; projects listed in ``todo`` aside.
- ``todo``: the target serial on the first line, then one ``name serial`` per line:
  every project still owed to the mirror (an interrupted run's work, or failures).
- ``todo.journal``: projects finished since ``todo`` was written, appended one line at a
  time, so progress costs the same per project whether the list holds ten or 750,000
  entries.  Its first line repeats the todo's target; a journal for another todo is ignored.
- ``failures``: written with ``todo`` at the end of every run, one ``name serial time error``
  line per project still owed because it failed, then ``end <count>``.  ``state`` has moved
  past those projects' changes, so when ``todo`` is found damaged this record is what keeps
  them owed; without a whole record a damaged ``todo`` means a full sync, never "up to date".
  A run that stopped early leaves ``state`` where it was: what never started is still in
  the changelog since then.
- ``generation``: the on-disk format; anything we do not understand resets the state.
- ``root-index``: the mark of each root index file as the last run wrote it (``rootindex.Mark``),
  so that lines lost from the middle of one are noticed without reading it.
- ``adopting``: present from the run that finds a bandersnatch 8 mirror (generation 5) until
  that mirror's leftovers are cleaned and its work list, ghosts included, is in ``todo``.
- ``upstream-serial``: which master the mirror follows, the serial that master last reported
  for itself and when it was asked (see ``serialcheck``).  Missing (a mirror written by an older
  version) or damaged, it is asked again.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ..errors import StorageError, shown
from ..formats.serial import MAX_SERIAL, is_serial
from ..names import normalize
from ..store.atomic import atomic_write, open_new_text, staged

logger = logging.getLogger(__name__)

GENERATION = "bandersnatch2-1"
ROOT_MARKS = "root-index"  # the root index files' marks (rootindex.Mark)
# bandersnatch 4 and later keep the same web/ layout and a ``status`` file we can adopt.
ADOPTABLE_GENERATIONS = frozenset({"5"})


@dataclass
class Todo:
    """Work owed to the mirror: normalized name -> (name as upstream spells it, serial)."""

    target: int
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, name: str, serial: int) -> None:
        key = normalize(name)
        old = self.pending.get(key)
        if old is None or old[1] < serial:
            self.pending[key] = (name, serial)


@dataclass(frozen=True)
class Failure:
    """A project a run could not sync: it stays owed, and ``failures`` says why and when."""

    name: str
    serial: int
    error: str  # one line
    when: str  # UTC, ISO 8601 to the second

    @classmethod
    def now(cls, name: str, serial: int, error: str) -> Failure:
        return cls(name, serial, _one_line(error), datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


_ERROR_CHARS = 300


def _one_line(text: str) -> str:
    """``text`` without line breaks or control characters (escaped), cut to a few hundred characters."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return line if len(line) <= _ERROR_CHARS else line[:_ERROR_CHARS - 3] + "..."


def render_failures(failures: Iterable[Failure]) -> bytes:
    lines = [f"{f.name} {f.serial} {f.when} {f.error}\n" for f in failures]
    return "".join([*lines, f"end {len(lines)}\n"]).encode("utf-8")


def parse_failures(data: bytes) -> list[Failure] | None:
    """The records of a ``failures`` file; None unless it is whole (every line, and its count at the end)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) < 2 or lines[-1] != "" or lines[-2] != f"end {len(lines) - 2}":
        return None
    failures = []
    for line in lines[:-2]:
        name, serial, when, error = (line.split(" ", 3) + ["", "", ""])[:4]
        if not name or not _is_uint(serial) or not when:
            return None
        failures.append(Failure(name, int(serial), error, when))
    return failures


@dataclass(frozen=True)
class UpstreamRecord:
    """The master the mirror follows, the serial it last reported for itself, and when it was asked."""

    master: str
    serial: int
    checked: str  # UTC, ISO 8601 to the second

    def render(self) -> bytes:
        return json.dumps({"master": self.master, "serial": self.serial, "checked": self.checked},
                          sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> UpstreamRecord | None:
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        master, serial, checked = doc.get("master"), doc.get("serial"), doc.get("checked")
        if not isinstance(master, str) or not is_serial(serial) or not isinstance(checked, str):
            return None
        return cls(master, serial, checked)

    def checked_at(self) -> datetime | None:
        try:
            return datetime.strptime(self.checked, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None


_MAX_Q = 2**64 - 1


def name_hash(key: str) -> int:
    """64-bit digest of a normalized name: 8 bytes per project in a sorted array instead of a str."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "big")


class NameSet:
    """A compact, read-only set of normalized names: a sorted array of their 64-bit digests.

    750,000 projects fit in 6 MB; a digest collision costs at most one needless request.
    """

    def __init__(self, digests: Iterable[int]) -> None:
        self._digests = array("Q", sorted(digests))

    def __len__(self) -> int:
        return len(self._digests)

    def repeated(self) -> set[int]:
        """Digests that were given more than once (names that normalize alike)."""
        d = self._digests
        return {d[i] for i in range(1, len(d)) if d[i] == d[i - 1]}

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        digest = name_hash(key)
        i = bisect.bisect_left(self._digests, digest)
        return i < len(self._digests) and self._digests[i] == digest


class DoneSet:
    """Which projects a journal records as done, and at what serial, in 16 bytes per project.

    A sorted array of 64-bit name digests beside their serials: 750,000 entries
    take 12 MB instead of a dict of strings; a digest collision costs at most
    one project synced on the next run instead of this one.
    """

    def __init__(self, entries: Iterable[tuple[str, int]]) -> None:
        packed = sorted((name_hash(key) << 64) | min(serial, _MAX_Q) for key, serial in entries)
        self._digests = array("Q")
        self._serials = array("Q")
        for value in packed:  # sorted by digest then serial: the last of a run is the highest
            digest, serial = value >> 64, value & 0xFFFFFFFFFFFFFFFF
            if self._digests and self._digests[-1] == digest:
                self._serials[-1] = serial
            else:
                self._digests.append(digest)
                self._serials.append(serial)

    def __len__(self) -> int:
        return len(self._digests)

    def covers(self, key: str, serial: int) -> bool:
        """True when the journal has ``key`` done at ``serial`` or later."""
        digest = name_hash(key)
        i = bisect.bisect_left(self._digests, digest)
        found = i < len(self._digests) and self._digests[i] == digest
        return found and self._serials[i] >= min(serial, _MAX_Q)

    def get(self, key: str) -> int | None:
        """The serial recorded for ``key``, or None."""
        digest = name_hash(key)
        i = bisect.bisect_left(self._digests, digest)
        return self._serials[i] if i < len(self._digests) and self._digests[i] == digest else None


@dataclass
class PendingFile:
    """The ``todo`` on disk, validated, read again lazily: the work list never sits in memory."""

    path: Path
    target: int
    count: int
    done: DoneSet
    highest: int = 0  # the highest serial an entry names (done or not)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        """``(name, serial)`` of every entry its journal does not record as done."""
        with self.path.open(encoding="utf-8") as f:
            f.readline()
            for line in f:
                name, _, serial = line.strip().rpartition(" ")
                if not self.done.covers(normalize(name), int(serial)):
                    yield name, int(serial)


def _is_uint(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` then refuses."""
    return text.isascii() and text.isdigit()


def _beyond(text: str) -> bool:
    """Digits of a number above ``MAX_SERIAL``: written by a version that did not bound serials."""
    return len(text) > len(str(MAX_SERIAL)) or int(text) > MAX_SERIAL


def _read_digits(path: Path) -> str | None:
    """The file's one number as text (it may be too large for a serial); None when it holds none."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text if _is_uint(text) else None


class StateFiles:
    """Reads and writes the bookkeeping files of one mirror directory."""

    def __init__(self, directory: Path, staging: Path) -> None:
        self.directory = directory
        self.staging = staging
        self.state_path = directory / "state"
        self.todo_path = directory / "todo"
        self.journal_path = directory / "todo.journal"
        self.generation_path = directory / "generation"
        self.failures_path = directory / "failures"
        self.status_path = directory / "status"
        self.selection_path = directory / "selection"
        self.prune_path = directory / "prune-pending"
        self.adopting_path = directory / "adopting"
        self.upstream_path = directory / "upstream-serial"
        self.root_marks_path = directory / ROOT_MARKS
        self._journal: TextIO | None = None
        # Set when state or todo held a serial upstream's XML-RPC cannot carry: the changes since
        # then cannot be asked for, so only a full listing is safe.
        self.damaged = False

    # -------------------------------------------------------- generation

    def check_generation(self) -> None:
        """Reset the state when the on-disk format is missing or foreign; adopt a bandersnatch ``status``."""
        try:
            found: str | None = self.generation_path.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            found = None
        if found == GENERATION:
            return
        if found in ADOPTABLE_GENERATIONS:
            # First: a run killed from here on still finishes the adoption (see ``adopt``).
            atomic_write(self.adopting_path, b"a bandersnatch 8 mirror is being adopted\n", self.staging)
            self._adopt_status()
        elif self.state_path.exists() or self.todo_path.exists():
            what = (f"has no {self.generation_path.name} file (it records the format of the state)"
                    if not found else
                    f"was written in another format ({self.generation_path.name} says {shown(found, 40)!r}, "
                    f"this version writes {GENERATION!r})")
            logger.warning(
                "%s %s: resetting the state for a full sync (files already on disk are reused: trusted "
                "while their size and mtime match our pages' record, hashed when not)", self.directory, what
            )
            self._remove(self.state_path, self.todo_path, self.journal_path, self.failures_path)
        atomic_write(self.generation_path, (GENERATION + "\n").encode(), self.staging)

    def _adopt_status(self) -> None:
        digits = _read_digits(self.status_path)
        if digits is None or _beyond(digits) or self.state_path.exists():
            return
        serial = int(digits)
        self.write_serial(serial)
        self.status_path.rename(self.directory / "status.adopted")
        logger.info("Adopted serial %d from bandersnatch's status file (renamed to status.adopted)", serial)

    def adopting(self) -> bool:
        """True until the adoption of a bandersnatch 8 mirror is done (its leftovers, its ghosts)."""
        return self.adopting_path.exists()

    def adopted(self) -> None:
        self._remove(self.adopting_path)

    # -------------------------------------------------------- state

    def read_serial(self) -> int | None:
        digits = _read_digits(self.state_path)
        if digits is None:
            if self.state_path.exists():
                logger.warning("Ignoring unreadable %s: a full sync follows", self.state_path)
            return None
        if _beyond(digits):
            self._note_damage(f"{self.state_path} holds serial {shown(digits, 30)}")
            return None
        return int(digits)

    def _note_damage(self, what: str) -> None:
        self.damaged = True
        logger.warning("%s, beyond the largest serial %d upstream can be asked about: ignoring it; "
                       "a full listing follows", what, MAX_SERIAL)

    def write_serial(self, serial: int) -> None:
        atomic_write(self.state_path, f"{serial}\n".encode(), self.staging)

    # -------------------------------------------------------- upstream

    def read_upstream(self) -> UpstreamRecord | None:
        """What the master last reported for itself; None when never asked (or the record is damaged)."""
        try:
            return UpstreamRecord.parse(self.upstream_path.read_bytes())
        except FileNotFoundError:
            return None

    def write_upstream(self, record: UpstreamRecord) -> None:
        atomic_write(self.upstream_path, record.render(), self.staging)

    # -------------------------------------------------------- selection

    def read_selection(self) -> str | None:
        """The fingerprint of the filters the mirror was last reconciled with (None: never filtered)."""
        try:
            text = self.selection_path.read_text(encoding="ascii", errors="replace").strip()
        except FileNotFoundError:
            return None
        return text or None

    def write_selection(self, fingerprint: str | None) -> None:
        if fingerprint is None:
            self._remove(self.selection_path)
        else:
            atomic_write(self.selection_path, f"{fingerprint}\n".encode(), self.staging)

    def prune_pending(self) -> bool:
        """True when a run must still take unselected projects off the mirror."""
        return self.prune_path.exists()

    def set_prune_pending(self, pending: bool) -> None:
        if pending:
            atomic_write(self.prune_path, b"projects no longer selected may still be on the mirror\n",
                         self.staging)
        else:
            self._remove(self.prune_path)

    # -------------------------------------------------------- todo

    def open_todo(self) -> PendingFile | None:
        """The pending work of an earlier run (validated in one streaming pass); None if none."""
        try:
            with self.todo_path.open(encoding="utf-8") as f:
                header = f.readline().strip()
                if not _is_uint(header):
                    return self._recover_todo("empty or without a target serial on its first line")
                if _beyond(header):
                    self._damaged_todo(header)
                    return None
                count = highest = 0
                for number, line in enumerate(f, start=2):
                    name, _, serial_text = line.strip().rpartition(" ")
                    if not name or not _is_uint(serial_text):
                        return self._recover_todo(f"line {number} is not 'name serial'")
                    if _beyond(serial_text):
                        self._damaged_todo(serial_text)
                        return None
                    count += 1
                    highest = max(highest, int(serial_text))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            return self._recover_todo(f"unreadable ({exc})")
        target = int(header)
        return PendingFile(self.todo_path, target, count, DoneSet(self.journaled(target)), highest)

    def count_pending(self) -> int | None:
        """How many ``todo`` entries its journal does not record as done; read-only, never repairs.

        Without a journal (between runs) it is a count of lines; with one (a run going on,
        or killed) the journal's names are held as 16-byte digests and ``todo`` streams past
        them.  0 when there is no ``todo``; None when it is unreadable (the next run repairs it).
        """
        try:
            with self.todo_path.open("rb") as f:
                header = f.readline().decode("ascii", errors="replace").strip()
                if not _is_uint(header):
                    return None
                if not self.journal_path.exists():
                    return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
                done = DoneSet(self.journaled(int(header)))
                count = 0
                for line in f:
                    name, _, serial = line.decode("utf-8", errors="replace").strip().rpartition(" ")
                    if not name or not _is_uint(serial):
                        return None
                    count += not done.covers(normalize(name), int(serial))
                return count
        except FileNotFoundError:
            return 0
        except OSError:
            return None

    def _damaged_todo(self, serial_text: str) -> None:
        """Drop a todo naming a serial we cannot ask about; the full listing that follows owes it all."""
        self._note_damage(f"{self.todo_path} holds serial {shown(serial_text, 30)}")
        self._remove(self.todo_path, self.journal_path)

    def _recover_todo(self, why: str) -> PendingFile | None:
        """Replace a corrupt ``todo`` by what is known to be owed without it.

        ``state`` covers every change up to it but the projects that failed:
        ``failures`` names those.  Without a whole ``failures`` nothing does, so
        ``state`` goes too and the run is a full sync.
        """
        self._remove(self.todo_path, self.journal_path)
        serial = self.read_serial()
        failures = self.read_failures()
        if serial is None:
            logger.warning("Removing corrupt %s (%s); without a state file a full sync follows",
                           self.todo_path, why)
            return None
        if failures is None:
            logger.warning(
                "Removing corrupt %s (%s); %s is missing or damaged, so nothing says which projects are "
                "still owed: removing %s too, a full sync follows", self.todo_path, why,
                self.failures_path, self.state_path)
            self._remove(self.state_path)
            return None
        logger.warning("Removing corrupt %s (%s); the %d project(s) %s names stay owed, with the changes "
                       "since serial %d", self.todo_path, why, len(failures), self.failures_path, serial)
        if not failures:
            return None
        self.write_todo(lambda: serial, ((f.name, f.serial) for f in failures))
        return self.open_todo()

    # -------------------------------------------------------- failures

    def read_failures(self) -> list[Failure] | None:
        """The projects the last finished run left owed because they failed; None when missing or damaged."""
        try:
            return parse_failures(self.failures_path.read_bytes())
        except FileNotFoundError:
            return None

    def write_failures(self, failures: Iterable[Failure]) -> None:
        atomic_write(self.failures_path, render_failures(failures), self.staging)

    def journaled(self, target: int) -> Iterator[tuple[str, int]]:
        """``(normalized name, serial)`` the journal of the todo for ``target`` records as done."""
        try:
            with self.journal_path.open(encoding="utf-8", errors="replace") as f:
                if f.readline().strip() != f"target {target}":
                    return
                for line in f:
                    if not line.endswith("\n"):
                        return  # the last line of a killed run may be half-written
                    name, _, serial = line.strip().rpartition(" ")
                    if name and _is_uint(serial):
                        yield normalize(name), int(serial)
        except FileNotFoundError:
            return

    def begin(self, todo: Todo) -> None:
        """Persist an in-memory work list, then start a fresh journal for it."""
        self.begin_stream(lambda: todo.target, todo.pending.values())

    def begin_stream(self, target: Callable[[], int], entries: Iterable[tuple[str, int]]) -> tuple[int, int]:
        """Write ``entries`` as the new ``todo`` without holding them, then start its journal.

        ``target`` is asked once ``entries`` is consumed (a listing's highest serial
        is known only at its end).  Returns the target and the number of entries.
        """
        count = self.write_todo(target, entries)
        final = _read_int_line(self.todo_path)
        self._journal = open_new_text(self.journal_path, self.staging)
        self._append(f"target {final}\n")
        return final, count

    def pending(self) -> Iterator[tuple[str, int]]:
        """The entries of the ``todo`` that ``begin_stream`` wrote, read lazily."""
        with self.todo_path.open(encoding="utf-8") as f:
            f.readline()
            for line in f:
                name, _, serial = line.strip().rpartition(" ")
                yield name, int(serial)

    def write_todo(self, target: Callable[[], int], entries: Iterable[tuple[str, int]]) -> int:
        """Atomically replace ``todo`` (header last known, so the body is staged first); returns count."""
        count = 0
        with staged(self.staging / "todo.body", self.staging) as body:
            out = body.file
            for name, serial in entries:
                out.write(f"{name} {serial}\n".encode())
                count += 1
            out.flush()
            with staged(self.todo_path, self.staging) as todo:
                todo.file.write(f"{target()}\n".encode())
                out.seek(0)
                with open(body.temp, "rb") as source:
                    while chunk := source.read(1 << 20):
                        todo.file.write(chunk)
                todo.commit()
        return count

    def done(self, name: str, serial: int) -> None:
        """Record one finished project: an append, never a rewrite."""
        self._append(f"{name} {serial}\n")

    def _append(self, line: str) -> None:
        assert self._journal is not None, "begin() first"
        try:
            self._journal.write(line)
            self._journal.flush()
        except OSError as exc:  # a full disk: one clear line, not a traceback
            raise StorageError(f"cannot write {self.journal_path}: {exc.strerror or exc}") from exc

    def finish(self, target: int, failed: Mapping[str, Failure],
               remaining: Iterable[tuple[str, int]] = ()) -> None:
        """Close the run: todo keeps only what failed or never started, ``failures`` what failed.

        ``state`` takes the target unless some work never started: that work is
        then still in the changelog since the old ``state``, should ``todo`` be
        lost.  Failures of earlier runs that this run never reached stay in
        ``failures``.  Order matters for a crash at any point: the new todo first
        (still naming everything owed), then failures, then the state, then the journal.
        """
        self.close()
        earlier = {normalize(f.name): f for f in self.read_failures() or ()}
        owed = _Owed(failed, earlier)
        count = self.write_todo(lambda: target, owed.chain(remaining))
        self.write_failures([*failed.values(), *owed.carried])
        if not count:
            self._remove(self.todo_path)
        if not owed.unstarted:
            self.write_serial(target)
        self._remove(self.journal_path)

    def close(self) -> None:
        if self._journal is not None:
            journal, self._journal = self._journal, None
            with contextlib.suppress(OSError):
                journal.flush()
                os.fsync(journal.fileno())
            with contextlib.suppress(OSError):  # close() flushes again: a full disk fails it again
                journal.close()

    @staticmethod
    def _remove(*paths: Path) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@dataclass
class _Owed:
    """What a finished run still owes: its failures, then the work it never started."""

    failed: Mapping[str, Failure]
    earlier: Mapping[str, Failure]  # the failures record before this run
    unstarted: int = 0
    carried: list[Failure] = field(default_factory=list)  # earlier failures among the unstarted

    def chain(self, remaining: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        yield from ((f.name, f.serial) for f in self.failed.values())
        for name, serial in remaining:
            key = normalize(name)
            if key in self.failed:
                continue
            self.unstarted += 1
            if key in self.earlier:
                self.carried.append(self.earlier[key])
            yield name, serial


def _read_int_line(path: Path) -> int:
    with path.open(encoding="ascii") as f:
        return int(f.readline())
