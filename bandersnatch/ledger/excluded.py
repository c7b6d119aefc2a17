"""``excluded``: the projects a run left off the mirror once it had seen their page or JSON metadata.

One line per project, ``<name> <serial> <plugin>``: upstream's serial the run judged, and the
filter that excluded it (size and version-count limits, the metadata plugins).  Filters that
judge a name alone need no record: ``verify --upstream`` asks them again.  Page-judged ones
cannot be asked without every project's page, so the run keeps their verdicts here, and
``verify --upstream`` counts such a project as excluded, not missing, while upstream has not
changed it since.

The file is created only by a full run that finished (an incremental run sees only the
projects that changed, so the rest would stay unknown); once it exists every run keeps it up
to date and writes it anew, atomically, at its end.  No file: an older mirror, verdicts unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..names import is_valid_project_name
from ..store.atomic import atomic_write

logger = logging.getLogger(__name__)

LEDGER = "excluded"


@dataclass(frozen=True)
class Recorded:
    """A project's page-judged exclusion: upstream's serial when judged, and the plugin's name."""

    serial: int
    plugin: str


def read(directory: Path) -> dict[str, Recorded] | None:
    """The ledger under ``directory``; None when there is none (no full run has recorded it yet)."""
    try:
        text = (directory / LEDGER).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    out: dict[str, Recorded] = {}
    bad = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not is_valid_project_name(parts[0]) or not parts[1].isdigit():
            bad += 1
            continue
        out[parts[0]] = Recorded(int(parts[1]), parts[2])
    if bad:
        logger.warning("%s: ignoring %d damaged line(s); verify --upstream may call those projects missing "
                       "until upstream next changes them", directory / LEDGER, bad)
    return out


class ExclusionLedger:
    """The run's copy: read once, noted per project by the run's thread, written back at the end."""

    def __init__(self, directory: Path, staging: Path) -> None:
        self.path = directory / LEDGER
        self.staging = staging
        found = read(directory)
        self.known = found is not None
        self._entries = found or {}
        self._dirty = False

    def note(self, key: str, serial: int, plugin: str) -> None:
        """``key`` was excluded by ``plugin`` once its page at ``serial`` was seen."""
        now = Recorded(serial, plugin)
        if self._entries.get(key) != now:
            self._entries[key] = now
            self._dirty = True

    def forget(self, key: str) -> None:
        """``key`` is on the mirror again, gone upstream, or excluded by its name."""
        if self._entries.pop(key, None) is not None:
            self._dirty = True

    def flush(self, *, complete: bool) -> None:
        """Write the ledger: when it exists and changed, or when this run saw every project
        (``complete``: a full run that finished), which makes it known."""
        if not (self.known and self._dirty or complete):
            return
        atomic_write(self.path, b"".join(self._lines()), self.staging)
        self.known, self._dirty = True, False

    def _lines(self) -> Iterator[bytes]:
        for key in sorted(self._entries):
            recorded = self._entries[key]
            yield f"{key} {recorded.serial} {recorded.plugin}\n".encode()
