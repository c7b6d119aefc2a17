"""The marks of the root index files (``<directory>/root-index``): what each was when last written.

A mark is the file's identity on disk (inode, size, mtime, ctime) and what it
held (how many project lines, and their digest).  ``rootindex`` checks a mark
against the ``fstat`` of the file it opens anyway, and reads the file whole
only when that differs; see its module docstring.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..formats.layout import PAGE_HTML, PAGE_JSON
from ..store.atomic import atomic_write

DIGEST_MOD = 1 << 64


def line_hash(line: bytes) -> int:
    """A project line's share of its file's digest (the line without its terminator)."""
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Mark:
    """A root file as this mirror last wrote it: its identity on disk and its project lines.

    ``digest`` is the sum of the lines' ``line_hash`` (mod 2**64): a patch adds
    the lines it puts in and subtracts those it takes out, without reading the
    lines it copies; a line lost, repeated or altered changes it.
    """

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int  # the kernel sets it on every change, and nothing can set it back
    count: int
    digest: int

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (
            self.ino, self.size, self.mtime_ns, self.ctime_ns)

    def line(self) -> str:
        return f"{self.ino} {self.size} {self.mtime_ns} {self.ctime_ns} {self.count} {self.digest:016x}"

    @classmethod
    def parse(cls, text: str) -> Mark | None:
        parts = text.split()
        try:
            ino, size, mtime, ctime, count = (int(p) for p in parts[:5])
            return cls(ino, size, mtime, ctime, count, int(parts[5], 16)) if len(parts) == 6 else None
        except (ValueError, IndexError):
            return None


@dataclass(frozen=True)
class Tally:
    """How many project lines a root file holds, and their digest."""

    count: int
    digest: int

    def plus(self, other: Tally) -> Tally:
        return Tally(self.count + other.count, (self.digest + other.digest) % DIGEST_MOD)


def read_marks(path: Path) -> dict[str, Mark]:
    """The marks recorded in ``path``, by page name; those missing or unreadable are left out."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return {}
    marks = {}
    for line in text.splitlines():
        page, _, rest = line.partition(" ")
        mark = Mark.parse(rest)
        if page in (PAGE_HTML, PAGE_JSON) and mark is not None:
            marks[page] = mark
    return marks


def save_marks(path: Path, simple: Path, tallies: Mapping[str, Tally], staging: Path) -> None:
    """Record ``tallies`` (by page name) with each file's identity below ``simple`` now."""
    marks = read_marks(path)
    for page, tally in tallies.items():
        try:
            st = os.stat(simple / page)
        except FileNotFoundError:
            marks.pop(page, None)
            continue
        marks[page] = Mark(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, tally.count, tally.digest)
    text = "".join(f"{page} {mark.line()}\n" for page, mark in sorted(marks.items()))
    atomic_write(path, text.encode("ascii"), staging)
