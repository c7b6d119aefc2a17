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

HEAD_LIMIT = 4096
TAIL_LENGTH = 1024
CHUNK_SIZE = 1 << 20
MAX_LINE = 1 << 16

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


def open_log(path: Path) -> tuple[io.BufferedIOBase, bool]:
    """A stream of ``path``'s decompressed bytes, and whether it was compressed."""
    with open(path, "rb") as probe:
        kind = compression_of(probe.read(8))
    if kind == "gzip":
        return gzip.open(path, "rb"), True
    if kind == "bzip2":
        return bz2.open(path, "rb"), True
    if kind == "xz":
        return lzma.open(path, "rb"), True
    return open(path, "rb"), False


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
    yielded at a clean end of the stream.  Read errors propagate after every
    complete chunk before them has been yielded.
    """
    pending = b""
    position = offset
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        newline = data.rfind(b"\n")
        if newline < 0:
            if len(data) <= MAX_LINE:
                pending = data
                continue
            lines, consumed, pending = [data], data, b""
        else:
            consumed, pending = data[: newline + 1], data[newline + 1 :]
            lines = consumed[:-1].split(b"\n")
        position += len(consumed)
        recent = (recent + consumed[-TAIL_LENGTH:])[-TAIL_LENGTH:]
        yield lines, position, recent
    if finished and pending:
        position += len(pending)
        recent = (recent + pending[-TAIL_LENGTH:])[-TAIL_LENGTH:]
        yield [pending], position, recent
