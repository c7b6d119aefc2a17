"""The removal budget: how much one run may take off the mirror before it holds the removals back
and asks for ``--allow-mass-removal``. Kept by the gate (publish/gate.py) over any store."""

from __future__ import annotations

from dataclasses import dataclass

ALLOW_MASS_REMOVAL = "bandersnatch mirror --allow-mass-removal"
ALLOW_REPAIR_REMOVAL = "bandersnatch verify --repair --allow-mass-removal"


@dataclass(frozen=True)
class RemovalLimit:
    """How many projects one run may take off the mirror without ``--allow-mass-removal``."""

    projects: int
    percent: float

    def exceeded(self, removals: int, mirror_size: int) -> bool:
        """True when ``removals`` is past both the count and the share of ``mirror_size``."""
        return removals > self.projects and removals * 100 > self.percent * mirror_size

    def message(self, removals: int, mirror_size: int, command: str = ALLOW_MASS_REMOVAL) -> str:
        return (
            f"not removing {removals} project(s) of the {mirror_size} on the mirror: more than "
            f"max-removals = {self.projects} and max-removals-percent = {self.percent:g}; nothing was "
            f"deleted and they stay owed. If upstream really removed them or the filters really drop "
            f"them, run `{command}` once; if not, check [mirror] master and the filters"
        )


@dataclass(frozen=True)
class FileRemovalLimit:
    """How many files one run may delete without ``--allow-mass-removal`` (the same "past both" rule)."""

    files: int
    percent: float

    def exceeded(self, removals: int, mirror_size: int) -> bool:
        return removals > self.files and removals * 100 > self.percent * mirror_size

    def message(self, removals: int, mirror_size: int, command: str = ALLOW_MASS_REMOVAL) -> str:
        return (
            f"not deleting {removals} file(s) of the {mirror_size} on the mirror: more than "
            f"max-file-removals = {self.files} and max-file-removals-percent = {self.percent:g}; the "
            f"projects that would drop them were left as they were and stay owed. If upstream really "
            f"deleted them (or quarantined their projects), run `{command}` once; if not, check "
            f"[mirror] master and the filters"
        )
