"""The filesystem store: the mirror published as the files of ``web/`` (see ``store``).

Every write, delete and read goes through ``storage``: a key's segments are
checked and joined below ``web/`` by ``storage.confined``, an object appears by
the rename of a complete, fsynced file staged in the mirror's staging
directory, and no link below the mirror directory is followed: a link met on
the way is reported (``LinkInMirror``), never read through or deleted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .atomic import (
    StagedFile,
    confined,
    open_regular,
    prune_empty_dirs,
    remove_file,
    staged,
    stat_regular,
    walk_files,
    write_all,
)
from .protocol import ObjectStat


class _Upload:
    """One staged file becoming the object ``key`` (``store.Upload``)."""

    def __init__(self, key: str, staged_file: StagedFile) -> None:
        self.key = key
        self._staged = staged_file
        self.file: BinaryIO = staged_file.file

    def commit(self) -> ObjectStat:
        return _commit(self._staged)


def _commit(staged_file: StagedFile) -> ObjectStat:
    # Taken from the staged file itself: a rename keeps size and mtime, and no other
    # writer replacing the object just after can slip its stamp into our record.
    staged_file.file.flush()
    info = os.fstat(staged_file.file.fileno())
    staged_file.commit()
    return ObjectStat(info.st_size, info.st_mtime_ns)


class FilesystemStore:
    """The objects are the files below ``web``; temporary files are staged in ``staging``.

    ``staging`` is ``<directory>/tmp/<owner>`` and ``web`` lies below ``<directory>``
    (``storage`` finds the mirror directory from the staging directory).
    """

    def __init__(self, web: Path, staging: Path) -> None:
        self.web = web
        self.staging = staging

    def description(self) -> str:
        return str(self.web)

    def path(self, key: str) -> Path:
        """Where the object ``key`` lives; UnsafePath for a key that is not a confined relative path.

        A filesystem capability (the root index patches files in place, the diff-file
        lists paths): code that only publishes and reads objects does not call it.
        """
        return confined(self.web, key.split("/"))

    def local_path(self, key: str) -> Path:
        """The file below ``web/`` is the object (``store.Store``'s capability): always a path."""
        return self.path(key)

    def remote_url(self) -> None:
        """The objects are files, listed by their paths."""
        return None

    def clients_store(self) -> FilesystemStore:
        return self

    @contextlib.contextmanager
    def upload(self, key: str) -> Iterator[_Upload]:
        path = self.path(key)
        with staged(path, self.staging) as st:
            yield _Upload(key, st)

    def publish_page(self, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        # staged() itself, not upload(): one generator context manager less per page.
        with staged(self.path(key), self.staging) as st:
            write_all(st.file, data)
            return _commit(st)

    def read(self, key: str) -> bytes | None:
        f = open_regular(self.path(key), self.staging)
        if f is None:
            return None
        with f:
            return f.read()

    def open_read(self, key: str) -> BinaryIO | None:
        return open_regular(self.path(key), self.staging)

    def stat(self, key: str) -> ObjectStat | None:
        info = stat_regular(self.path(key), self.staging)
        return None if info is None else ObjectStat(info.st_size, info.st_mtime_ns)

    def delete(self, key: str) -> ObjectStat | None:
        """Remove ``key``, then the directories left empty up to its first segment (``packages/``).

        They are pruned even when the object was already gone: a delete killed
        between the two may have left them.
        """
        path = self.path(key)
        was = self.stat(key)
        removed = remove_file(path, self.staging)
        top = key.split("/", 1)[0]
        prune_empty_dirs(path.parent, self.web / top, self.staging)
        if not removed:
            return None
        return was or ObjectStat(0, 0)  # replaced between the stat and the unlink: it was there

    def iterate(self, prefix: str) -> Iterator[str]:
        """Every key below the directory ``prefix``, from a walk that follows no link."""
        directory = prefix.removesuffix("/")
        top = self.path(directory) if directory else self.web
        base = f"{directory}/" if directory else ""
        for segments in walk_files(top, self.staging):
            yield base + "/".join(segments)
