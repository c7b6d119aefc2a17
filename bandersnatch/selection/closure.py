"""The dependency-closed allowlist during one run: which projects it reaches, and which are owed.

The closure is built from the allowlist and the per-project records of
``depstore``, extended in place when a project's record grows and built again
when one shrinks; the run asks it whether a name is selected, and syncs what
it newly reaches in the same run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import shown
from ..store.atomic import atomic_write
from .policy import Selection
from .records import DependencyRecords
from .requirements import Closure, Need

logger = logging.getLogger(__name__)


class DependencyTracker:
    """The set of projects the allowlist reaches through ``Requires-Dist``."""

    def __init__(self, selection: Selection, records: DependencyRecords) -> None:
        self.selection = selection
        self.records = records
        self.environments = selection.environments()
        self._lock = threading.Lock()
        self.reached: dict[str, Need] = {}
        self._bad: set[tuple[str, str]] = set()
        self._closure: Closure
        self.recompute()

    def _admits(self, key: str) -> bool:
        return self.selection.blocks(key) is None

    def recompute(self) -> set[str]:
        """Close the allowlist again from the records; returns the keys reached now that were not before."""
        built = Closure(self.selection.roots, self.records.requirements, self.environments, self._admits,
                        self._malformed)
        with self._lock:
            new = set(built.needs) - set(self.reached)
            self._closure = built
            self.reached = built.needs
        return new

    def synced(self, key: str, requires: tuple[str, ...]) -> set[str]:
        """A project's requirements as just recorded: the keys the closure newly reaches.

        Requirements that only grew extend the closure in place (a first sync of thousands
        of projects stays linear); one that lost a line closes the allowlist again.
        """
        with self._lock:
            before = self._closure.lines(key)
            if before is not None and set(before) == set(requires):
                return set()
            grown = self._closure.grow(key)
        return self.recompute() if grown is None else set(grown)

    def _malformed(self, key: str, line: str) -> None:
        # Records keep only checked lines (depstore warns once, when a file is read): a bad one
        # here is from a record written before that, and was warned about when it was written.
        if (key, line) not in self._bad:
            self._bad.add((key, line))
            logger.debug("%s: skipping malformed Requires-Dist %s", key, shown(line, 200))

    def admits(self, key: str) -> bool:
        with self._lock:
            return key in self.reached

    def why(self, key: str) -> str:
        with self._lock:
            need = self.reached.get(key)
        if need is None:
            return "not selected"
        if need.parent is None:
            return "allowlist"
        return f"{need.parent} requires {shown(need.requirement)!r}"

    def owed(self, has_pages: Callable[[str], bool]) -> list[str]:
        """Reached projects to sync: see ``needs_sync``."""
        with self._lock:
            keys = sorted(self.reached)
        return [k for k in keys if self.needs_sync(k, has_pages)]

    def needs_sync(self, key: str, has_pages: Callable[[str], bool]) -> bool:
        """A reached project the mirror does not hold, or holds with no record of its requirements.

        Without a record (a mirror that ran without with-dependencies, a lost
        ``deps/`` file) the closure cannot see past the project: only a sync says
        what it needs.  Projects upstream was found to lack are not asked for again.
        """
        if has_pages(key) and self.records.requirements(key) is not None:
            return False
        return not self.records.is_missing(key)

    def write_report(self, path: Path, staging: Path) -> None:
        """``selected.txt``: every selected project and the requirement that pulled it in."""
        with self._lock:
            needs = sorted(self.reached.values(), key=lambda n: n.key)
        lines = ["# project [extras] <- why it is wanted; (wanted, ...) marks one the mirror does not hold "
                 "(written by bandersnatch mirror)\n"]
        for need in needs:
            extras = f"[{','.join(sorted(need.extras))}]" if need.extras else ""
            why = "allowlist" if need.parent is None else f"{need.parent}: {shown(need.requirement)}"
            absent = self.records.absent_because(need.key)
            if absent is not None:  # reached, but not on the mirror: do not list it as held
                why += f" (wanted, {absent})"
            lines.append(f"{need.key}{extras} <- {why}\n")
        atomic_write(path, "".join(lines).encode(), staging)
