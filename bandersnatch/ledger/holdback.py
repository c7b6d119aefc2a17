"""``hold-back``: the projects with files the cooling-off window withholds, and when the first matures.

One line per project, ``<name> <unix time> <files>``: the earliest moment one of its held files
leaves the window, and how many are held.  A run schedules every project whose moment has come
(no upstream change is needed for a held file to arrive) and writes the file anew, atomically,
when it is done and every half minute while it runs, so a killed run loses little of it.  A
line lost all the same only delays that project's files until upstream next changes it.
``status`` reads it to say how many files are held and when the next arrives.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..names import is_valid_project_name
from ..store.atomic import atomic_write, remove_file

logger = logging.getLogger(__name__)

LEDGER = "hold-back"
FLUSH_SECONDS = 30.0


@dataclass(frozen=True)
class Held:
    """One project's withheld files: when the first matures (Unix time), and how many there are."""

    matures: float
    files: int


def read(directory: Path) -> dict[str, Held]:
    """The ledger under ``directory`` (empty when there is none); damaged lines are skipped."""
    try:
        text = (directory / LEDGER).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[str, Held] = {}
    bad = 0
    for line in text.splitlines():
        parsed = _parse(line)
        if parsed is None:
            bad += 1
            continue
        out[parsed[0]] = parsed[1]
    if bad:
        logger.warning("%s: ignoring %d damaged line(s); their projects' held files arrive when upstream "
                       "next changes them", directory / LEDGER, bad)
    return out


def _parse(line: str) -> tuple[str, Held] | None:
    parts = line.split()
    if len(parts) != 3 or not is_valid_project_name(parts[0]) or not parts[2].isdigit():
        return None
    try:
        matures = float(parts[1])
    except ValueError:
        return None
    return parts[0], Held(matures, int(parts[2]))


def next_maturity(entries: Mapping[str, Held]) -> float | None:
    return min((h.matures for h in entries.values()), default=None)


def held_files(entries: Mapping[str, Held]) -> int:
    return sum(h.files for h in entries.values())


class HoldLedger:
    """The run's copy of the ledger: read once, noted per project by the run's thread, written back."""

    def __init__(self, directory: Path, staging: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = directory / LEDGER
        self.staging = staging
        self._entries = read(directory)
        self._dirty = False
        self._clock = clock
        self._flushed = clock()

    @property
    def entries(self) -> Mapping[str, Held]:
        return self._entries

    def due(self, now: float) -> list[str]:
        """The projects with a held file that has left the window by ``now``."""
        return sorted(key for key, held in self._entries.items() if held.matures <= now)

    def note(self, key: str, files: int, matures: float | None) -> None:
        """What the window holds of ``key`` after its sync (none: it leaves the ledger)."""
        now = Held(matures, files) if files and matures is not None else None
        if self._entries.get(key) == now:
            return
        if now is None:
            del self._entries[key]
        else:
            self._entries[key] = now
        self._dirty = True
        if self._clock() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def clear(self) -> None:
        """Forget every project (the window is off: the run that notices renders every page again)."""
        if self._entries:
            self._entries = {}
            self._dirty = True

    def flush(self) -> None:
        """Write the ledger if it changed (an empty one is removed)."""
        if not self._dirty:
            return
        if self._entries:
            atomic_write(self.path, b"".join(self._lines()), self.staging)
        else:
            remove_file(self.path, self.staging)
        self._dirty = False
        self._flushed = self._clock()

    def _lines(self) -> Iterator[bytes]:
        for key in sorted(self._entries):
            held = self._entries[key]
            # Rounded up: a project is never due a moment before its file leaves the window.
            yield f"{key} {math.ceil(held.matures)} {held.files}\n".encode()
