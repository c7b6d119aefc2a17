"""Finding and reading access logs, compressed or not, from where we left off.

A log is identified by a hash of its first line (see
:mod:`bandersnatch.stats.state`), read through gzip/bzip2/xz when its first
bytes say so (logrotate's ``compressext`` may be anything), and consumed in
whole lines only: a line still being written at the end of ``access.log``
stays for the next run.  A compressed file is finished, so a last line
without its newline is complete there and is counted at a clean end of the
stream — but not when the stream is cut short (a truncated ``.gz``, or one
gzip is still writing), where that line is half a line.
"""

from __future__ import annotations

import bz2
import enum
import glob
import gzip
import hashlib
import io
import lzma
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

HEAD_LIMIT = 4096  # a first line longer than this is identified by its first bytes
PREFIX_LIMIT = 1 << 16  # read at open: the head and the line marks come from it
MARK_LINES = 16  # first lines remembered (as short hashes) per log
TAIL_LENGTH = 1024  # bytes before the counted offset that must match to resume
CHUNK_SIZE = 1 << 20  # decompressed bytes handed to the counting loop at once
MAX_LINE = 1 << 16  # a longer "line" (garbage without newlines) is cut here

# What reading a damaged or vanishing log can raise (gzip.BadGzipFile is an OSError).
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, lzma.LZMAError)

_MAGIC: list[tuple[bytes, str]] = [(b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz")]


def find_logs(pattern: str) -> list[Path]:
    """Regular files matching the glob ``pattern``, oldest modification first."""
    found: list[tuple[float, str]] = []
    for name in glob.glob(pattern):
        try:
            info = os.stat(name)
        except OSError:
            continue
        if os.path.isfile(name):
            found.append((info.st_mtime, name))
    return [Path(name) for _mtime, name in sorted(found)]


def compression_of(magic: bytes) -> str | None:
    """``gzip``, ``bzip2`` or ``xz`` when ``magic`` (a file's first bytes) says so, else None."""
    for prefix, kind in _MAGIC:
        if magic.startswith(prefix):
            return kind
    return None


class OpenLog:
    """A log opened for reading: its decompressed ``stream`` and what it is.

    ``seal`` (``size:mtime_ns``, from the open descriptor so a rename in
    between cannot mix up two files) tells a finished compressed log that is
    unchanged since it was read to its end; plain logs have none.
    """

    def __init__(self, path: Path) -> None:
        self.raw = open(path, "rb")  # noqa: SIM115 (closed by close()/__exit__)
        try:
            kind = compression_of(self.raw.read(8))
            self.raw.seek(0)
            info = os.fstat(self.raw.fileno())
            self.stream: io.BufferedIOBase
            if kind == "gzip":
                self.stream = gzip.GzipFile(fileobj=self.raw, mode="rb")
            elif kind == "bzip2":
                self.stream = bz2.BZ2File(self.raw, "rb")
            elif kind == "xz":
                self.stream = lzma.LZMAFile(self.raw, "rb")  # noqa: SIM115
            else:
                self.stream = self.raw
        except BaseException:
            self.raw.close()
            raise
        self.compressed = kind is not None
        self.seal = f"{info.st_size}:{info.st_mtime_ns}" if self.compressed else ""

    def close(self) -> None:
        self.stream.close()
        self.raw.close()

    def __enter__(self) -> OpenLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def digest(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def head_of(prefix: bytes, whole: bool) -> str | None:
    """The identity of a log whose content starts with ``prefix``.

    The hash of its first line, or of its first :data:`HEAD_LIMIT` bytes when
    no newline comes that early (binary garbage).  ``whole`` says ``prefix``
    is the complete content of a finished (compressed) file.  None while the
    first line is still being written: nothing can be counted yet anyway.
    """
    newline = prefix.find(b"\n", 0, HEAD_LIMIT)
    if newline >= 0:
        return digest(prefix[: newline + 1])
    if len(prefix) >= HEAD_LIMIT:
        return digest(prefix[:HEAD_LIMIT])
    if whole and prefix:
        return digest(prefix)
    return None


def line_marks(prefix: bytes) -> list[str]:
    """Short hashes of the first :data:`MARK_LINES` complete lines of ``prefix``.

    Two files with the same first line are copies of one log only if these
    agree as far as both go; checked before trusting that a shorter file
    is a partial copy of a log already counted.
    """
    marks: list[str] = []
    start = 0
    while len(marks) < MARK_LINES:
        end = prefix.find(b"\n", start)
        if end < 0:
            break
        marks.append(hashlib.sha256(prefix[start : end + 1]).hexdigest()[:16])
        start = end + 1
    return marks


def marks_agree(known: list[str], found: list[str]) -> bool:
    """True when two lists of line marks agree as far as both go."""
    return all(a == b for a, b in zip(known, found, strict=False))


class Resume(enum.Enum):
    """How a file compares with a log already counted up to ``offset``."""

    SAME = "same"
    SHORTER = "shorter"
    DIFFERENT = "different"


def compare(stream: io.BufferedIOBase, offset: int, tail: str) -> tuple[Resume, bytes]:
    """Check whether ``stream`` is the log whose bytes before ``offset`` hash to ``tail``.

    Returns the verdict and the bytes that were hashed.  On SAME the stream is
    left at ``offset`` and those bytes seed :func:`read_lines`.  SHORTER means
    the content ends before ``offset`` (a copy gzip is still writing, a
    truncated archive): given the same first line it is a prefix of what was
    counted already.
    """
    if offset == 0:
        stream.seek(0)
        return Resume.SAME, b""
    start = max(0, offset - TAIL_LENGTH)
    try:
        stream.seek(start)
        window = stream.read(offset - start)
    except EOFError:
        return Resume.SHORTER, b""
    if len(window) < offset - start:
        return Resume.SHORTER, b""
    return (Resume.SAME if digest(window) == tail else Resume.DIFFERENT), window


def read_chunk(stream: io.BufferedIOBase, limit: int = 0) -> tuple[bytes, BaseException | None]:
    """Up to ``limit`` (default :data:`CHUNK_SIZE`) bytes, and the read error that cut them short, if any.

    Reads in small steps (``read1``) so that a damaged or unfinished
    compressed file gives up everything before the damage rather than
    losing the whole chunk the error interrupted.
    """
    limit = limit or CHUNK_SIZE
    parts: list[bytes] = []
    size = 0
    try:
        while size < limit:
            part = stream.read1(limit - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
    except READ_ERRORS as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def read_lines(
    stream: io.BufferedIOBase, offset: int, recent: bytes, finished: bool
) -> Iterator[tuple[list[bytes], int, bytes]]:
    """Yield ``(lines, end, recent)`` for each chunk of complete lines after ``offset``.

    ``lines`` are without their newlines, ``end`` is the offset just past the
    last of them and ``recent`` the (up to) :data:`TAIL_LENGTH` bytes before
    ``end``, to be hashed as the new ``tail``.  ``stream`` must be positioned
    at ``offset`` and ``recent`` hold the bytes before it (from
    :func:`compare`).  A line longer than :data:`MAX_LINE` is cut there so
    memory stays bounded.  With ``finished``, a last line without a newline is
    yielded at a clean end of the stream.  A read error is raised after the
    complete lines before it have been yielded.
    """
    pending = b""
    position = offset
    while True:
        chunk, error = read_chunk(stream)
        if chunk:
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            if not lines and len(pending) > MAX_LINE:
                lines, pending = [pending], b""
            if lines:
                consumed = len(data) - len(pending)
                position += consumed
                recent = (recent + data[max(0, consumed - TAIL_LENGTH) : consumed])[-TAIL_LENGTH:]
                yield lines, position, recent
        if error is not None:
            raise error
        if not chunk:
            break
    if finished and pending:
        position += len(pending)
        recent = (recent + pending[-TAIL_LENGTH:])[-TAIL_LENGTH:]
        yield [pending], position, recent
