"""The only module that writes the mirror: confined paths and atomic files.

Every file a client can see under ``web/`` appears by ``os.replace`` of a
complete, fsynced temporary file, so a reader sees the old bytes or the new
bytes and never a half-written file.  Temporary files live in a staging
directory of their own (``<directory>/tmp/<owner>/``) on the same filesystem,
so a run can clear what a killed run left behind without walking the tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import StorageError, UnsafePath

MAX_SEGMENT_BYTES = 255


def check_segment(segment: str) -> str:
    """Return ``segment`` when it is a safe single path component, else raise UnsafePath."""
    if segment in ("", ".", ".."):
        raise UnsafePath(f"refusing path component {segment!r}")
    if any(c in segment for c in ("/", "\\", "\0")) or any(ord(c) < 32 for c in segment):
        raise UnsafePath(f"refusing path component {segment[:100]!r}: separator or control character")
    try:
        encoded = segment.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath(f"refusing path component {segment[:100]!r}: not valid UTF-8") from None
    if len(encoded) > MAX_SEGMENT_BYTES:
        raise UnsafePath(f"refusing path component {segment[:40]!r}...: longer than 255 bytes")
    return segment


def confined(base: Path, parts: Sequence[str]) -> Path:
    """Join ``parts`` below ``base``, refusing anything that could leave it."""
    if not parts:
        raise UnsafePath("refusing an empty path")
    path = base
    for part in parts:
        path = path / check_segment(part)
    return path


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class StagedFile:
    """A temporary file that becomes ``target`` on ``commit()`` and vanishes otherwise."""

    def __init__(self, target: Path, staging: Path) -> None:
        self.target = target
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="stage-", dir=staging)
        self.temp = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self.committed = False

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.temp, 0o644)
            self.target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp, self.target)
        except OSError as exc:
            self.discard()
            raise StorageError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
        self.committed = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


@contextlib.contextmanager
def staged(target: Path, staging: Path) -> Iterator[StagedFile]:
    """Context manager: write into ``.file``, call ``.commit()``; anything else discards."""
    try:
        f = StagedFile(target, staging)
    except OSError as exc:
        raise StorageError(f"cannot create a temporary file in {staging}: {exc.strerror or exc}") from exc
    try:
        yield f
    except OSError as exc:
        f.discard()
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        f.discard()
        raise
    if not f.committed:
        f.discard()


def atomic_write(target: Path, data: bytes | Iterable[bytes], staging: Path) -> None:
    """Replace ``target`` with ``data`` (bytes or chunks) atomically: temp in ``staging``, fsync, rename."""
    with staged(target, staging) as f:
        if isinstance(data, bytes):
            f.file.write(data)
        else:
            for chunk in data:
                f.file.write(chunk)
        f.commit()


def clear_staging(staging: Path) -> int:
    """Remove what a killed run left in ``staging``; return how many entries went."""
    if not staging.is_dir():
        return 0
    count = 0
    for entry in staging.iterdir():
        count += 1
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
    return count


def remove_file(path: Path) -> bool:
    """Delete ``path`` if present; prune now-empty parent directories is the caller's job."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def prune_empty_dirs(start: Path, stop: Path) -> None:
    """Remove ``start`` and its parents while they are empty, never ``stop`` or above."""
    path = start
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
