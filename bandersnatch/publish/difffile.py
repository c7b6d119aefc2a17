"""bandersnatch's ``diff-file``: the list of files a run wrote, for copying only the changes downstream.

As in bandersnatch 8, the list holds one absolute path per line, every file
under ``web/`` the run created or replaced, so ``rsync --files-from=LIST /
DEST/`` carries the run's changes to an offline mirror.  A directory given
as ``diff-file`` holds the list as ``mirrored-files``; with
``diff-append-epoch`` the name gets ``-<seconds since 1970>`` at the run's
start.  Beyond 8.x, the files the run deleted go to ``LIST.deleted`` (rsync
would fail on a listed path that is gone, so they are not mixed in).

Paths are appended to a spool file in the mirror directory as the run goes,
never held in memory (a first sync writes millions of files), and the spool
is only removed once the list is published: a killed run's paths are carried
into the next run's list, so downstream never misses a file.  When the list
is published each spooled path is sorted by what is on disk then: written if
it exists, deleted if not.

With ``storage-backend = s3`` the list holds ``s3://<bucket>/<prefix>/<key>`` URLs
instead of paths (what ``aws s3 cp``, ``rclone`` or ``s5cmd`` take), and each is
sorted by a HEAD of the object when the list is published.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..config.compat import DIFF_FILE_IN_DIRECTORY
from ..errors import StorageError
from ..store.atomic import open_appending, publish_file, remove_file

logger = logging.getLogger(__name__)

SPOOL_NAME = "diff-file.pending"
DELETED_SUFFIX = ".deleted"


class Changes:
    """Records the paths a run writes and deletes; does nothing when no diff-file is configured."""

    def __init__(self, spool: Path | None, staging: Path | None = None, web: Path | None = None, *,
                 remote: tuple[str, Callable[[str], bool]] | None = None) -> None:
        """``staging``: the run's staging directory, required with a ``spool`` (see ``storage``).

        ``web``: the filesystem store's directory, where the store's keys are listed as paths.
        ``remote``: for an object store instead, the URL keys are listed below (``s3://bucket``)
        and whether a key is there now.
        """
        self.remote = remote
        assert spool is None or staging is not None, "the spool is written through storage"
        self.spool = spool
        self.staging = staging
        self.web = web
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None

    def written(self, path: Path) -> None:
        self._note(path)

    def deleted(self, path: Path) -> None:
        self._note(path)

    def written_key(self, key: str) -> None:
        """The store's object ``key`` was published: listed as its path below ``web``."""
        if self.spool is not None:
            self._note(self._path(key))

    def deleted_key(self, key: str) -> None:
        if self.spool is not None:
            self._note(self._path(key))

    def _path(self, key: str) -> Path | str:
        if self.remote is not None:
            return f"{self.remote[0]}/{key}"
        assert self.web is not None, "a spool listing the store's objects needs web"
        return self.web / key

    def _exists(self, listed: str) -> bool:
        if self.remote is not None:
            base, present = self.remote
            return listed.startswith(base + "/") and present(listed[len(base) + 1:])
        return os.path.lexists(listed)

    def _note(self, path: Path | str) -> None:
        if self.spool is None:
            return
        line = f"{path}\n".encode("utf-8", "surrogateescape")
        with self._lock:
            try:
                if self._file is None:
                    assert self.staging is not None
                    self._file = _open_spool(self.spool, self.staging)
                self._file.write(line)
                self._file.flush()  # in the kernel's hands: a killed process loses nothing
            except OSError as exc:
                raise StorageError(f"cannot write {self.spool}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def publish(self, diff_file: Path, append_epoch: bool, started: float, staging: Path) -> Path | None:
        """Write the list (and its ``.deleted`` companion) from the spool, then drop the spool."""
        if self.spool is None:
            return None
        self.close()
        target = diff_file / DIFF_FILE_IN_DIRECTORY if diff_file.is_dir() else diff_file
        deleted = target.with_name(target.name + DELETED_SUFFIX)
        if append_epoch:
            stamp = f"-{int(started)}"
            target, deleted = target.with_name(target.name + stamp), deleted.with_name(deleted.name + stamp)
        written_count = deleted_count = 0
        # One pass, each path asked once (a HEAD per object on S3): the written ones go straight
        # into the list, the deleted ones wait in a temporary file for theirs.
        with tempfile.TemporaryFile(dir=staging) as gone:
            def present() -> Iterator[bytes]:
                nonlocal written_count, deleted_count
                for path in _spooled(self.spool):
                    line = os.fsencode(path) + b"\n"
                    if self._exists(path):
                        written_count += 1
                        yield line
                    else:
                        deleted_count += 1
                        gone.write(line)

            publish_file(target, present(), staging)
            gone.seek(0)
            publish_file(deleted, iter(lambda: gone.read(1 << 20), b""), staging)
        remove_file(self.spool, staging)
        logger.info("Listed %d written file(s) in %s and %d deleted in %s", written_count, target,
                    deleted_count, deleted)
        return target


def _open_spool(spool: Path, staging: Path) -> BinaryIO:
    """The spool opened for appending, without the cut-short last line a killed run may have left."""
    raw = open_appending(spool, staging)
    try:
        size = raw.seek(0, os.SEEK_END)
        if size:
            raw.seek(max(0, size - 65536))
            tail = raw.read()
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n")
                raw.truncate(size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))
    except BaseException:
        raw.close()
        raise
    return raw


def _spooled(spool: Path | None) -> Iterator[str]:
    """The spool's paths, each once in a row (a page rewritten twice in a run is listed once)."""
    if spool is None:
        return
    try:
        file = spool.open("r", encoding="utf-8", errors="surrogateescape", newline="\n")
    except FileNotFoundError:
        return
    with file:
        last = None
        for line in file:
            if not line.endswith("\n"):
                continue  # the last line of a killed run, cut short
            path = line[:-1]
            if path and path != last:
                yield path
            last = path
