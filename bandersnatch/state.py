"""The mirror's bookkeeping files: ``state``, ``todo`` (+ its progress journal) and ``generation``.

- ``state``: the serial the mirror has caught up to; projects listed in ``todo`` aside.
- ``todo``: the target serial on the first line, then one ``name serial`` per line:
  every project still owed to the mirror (an interrupted run's work, or failures).
- ``todo.journal``: projects finished since ``todo`` was written, appended one line at a
  time, so progress costs the same per project whether the list holds ten or 750,000
  entries.  Its first line repeats the todo's target; a journal for another todo is ignored.
- ``generation``: the on-disk format; anything we do not understand resets the state.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import StorageError
from .names import normalize
from .storage import atomic_write

logger = logging.getLogger(__name__)

GENERATION = "bandersnatch2-1"
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


def _is_uint(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` then refuses."""
    return text.isascii() and text.isdigit()


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class StateFiles:
    """Reads and writes the bookkeeping files of one mirror directory."""

    def __init__(self, directory: Path, staging: Path) -> None:
        self.directory = directory
        self.staging = staging
        self.state_path = directory / "state"
        self.todo_path = directory / "todo"
        self.journal_path = directory / "todo.journal"
        self.generation_path = directory / "generation"
        self.status_path = directory / "status"
        self._journal: TextIO | None = None
        # Projects the journal read by read_todo() says an interrupted run finished.
        self.journaled: set[str] = set()

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
            self._adopt_status()
        elif self.state_path.exists() or self.todo_path.exists():
            logger.warning(
                "Mirror format generation %s is not %s: resetting the state for a full sync "
                "(files already on disk are verified, not downloaded again)", found or "missing", GENERATION
            )
            self._remove(self.state_path, self.todo_path, self.journal_path)
        atomic_write(self.generation_path, (GENERATION + "\n").encode(), self.staging)

    def _adopt_status(self) -> None:
        serial = _read_int(self.status_path)
        if serial is None or self.state_path.exists():
            return
        self.write_serial(serial)
        self.status_path.rename(self.directory / "status.adopted")
        logger.info("Adopted serial %d from bandersnatch's status file (renamed to status.adopted)", serial)

    # -------------------------------------------------------- state

    def read_serial(self) -> int | None:
        serial = _read_int(self.state_path)
        if serial is None and self.state_path.exists():
            logger.warning("Ignoring unreadable %s: a full sync follows", self.state_path)
        return serial

    def write_serial(self, serial: int) -> None:
        atomic_write(self.state_path, f"{serial}\n".encode(), self.staging)

    # -------------------------------------------------------- todo

    def read_todo(self) -> Todo | None:
        """The pending work of an earlier run, minus what its journal says is done; None if none."""
        try:
            lines = self.todo_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._discard_todo(f"unreadable ({exc})")
            return None
        if not lines or not _is_uint(lines[0].strip()):
            self._discard_todo("empty or without a target serial on its first line")
            return None
        todo = Todo(int(lines[0]))
        for number, line in enumerate(lines[1:], start=2):
            name, _, serial_text = line.strip().rpartition(" ")
            if not name or not _is_uint(serial_text):
                self._discard_todo(f"line {number} is not 'name serial'")
                return None
            todo.add(name, int(serial_text))
        for key, done_serial in self._journal_entries(todo.target):
            self.journaled.add(key)
            if key in todo.pending and todo.pending[key][1] <= done_serial:
                del todo.pending[key]
        return todo

    def _discard_todo(self, why: str) -> None:
        logger.warning("Removing corrupt %s (%s); falling back to the state file", self.todo_path, why)
        self._remove(self.todo_path, self.journal_path)

    def _journal_entries(self, target: int) -> Iterable[tuple[str, int]]:
        try:
            with self.journal_path.open(encoding="utf-8", errors="replace") as f:
                header = f.readline()
                if header.strip() != f"target {target}":
                    return []
                entries = []
                for line in f:
                    if not line.endswith("\n"):
                        break  # the last line of a killed run may be half-written
                    name, _, serial = line.strip().rpartition(" ")
                    if name and _is_uint(serial):
                        entries.append((normalize(name), int(serial)))
                return entries
        except FileNotFoundError:
            return []

    def begin(self, todo: Todo) -> None:
        """Persist the whole work list once, then start a fresh journal for it."""
        body = "".join(f"{name} {serial}\n" for name, serial in todo.pending.values())
        atomic_write(self.todo_path, f"{todo.target}\n{body}".encode(), self.staging)
        try:
            self._journal = self.journal_path.open("w", encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"cannot write {self.journal_path}: {exc.strerror or exc}") from exc
        self._append(f"target {todo.target}\n")

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

    def finish(self, target: int, failed: Mapping[str, tuple[str, int]]) -> None:
        """Close the run: todo keeps only what failed, state takes the target serial.

        Order matters for a crash at any point: the new todo first (still naming
        everything owed), then the state, then the journal.
        """
        self.close()
        if failed:
            body = "".join(f"{name} {serial}\n" for name, serial in failed.values())
            atomic_write(self.todo_path, f"{target}\n{body}".encode(), self.staging)
        else:
            self._remove(self.todo_path)
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
