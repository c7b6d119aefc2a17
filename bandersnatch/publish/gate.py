"""The one gate through which every change to the published tree goes.

``Gate`` wraps the run's store (``store.Store``: the filesystem's ``web/`` or an
object store) and is the store every publisher is given: the mirror's project
syncs, their JSON API copies, the root index, ``last-modified``, ``verify
--repair``, ``update-stats``.  What must hold on every path is kept here once:

* the run's removal budget (``RemovalBudget``): projects (``max-removals``,
  ``max-removals-percent``) and files (``max-file-removals``,
  ``max-file-removals-percent``).  A caller reserves before it acts, so a
  change past the limits is held back whole, with nothing deleted, and stays
  owed until ``--allow-mass-removal``;
* the symlink rule: a filesystem store follows and deletes no link below
  ``web/`` (``storage``) and reports it as ``LinkInMirror`` (exit 2, naming it);
* the record of what the run published and deleted, for ``diff-file``
  (``difffile.Changes``): a change is listed by the gate that made it, so no
  publisher can forget to;
* the place where an ownership check of a key sits (``_may_change``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import RemovalsHeldBack
from ..store.protocol import ObjectStat, Reader, Store, Upload
from .budget import ALLOW_MASS_REMOVAL, FileRemovalLimit, RemovalLimit
from .difffile import Changes


class RemovalBudget:
    """What one run may take off the mirror; safe from many threads.

    ``project_count`` and ``file_count`` say how big the mirror is; each is asked
    at most once, and only when a reservation is past the limit's count.
    ``None`` limits (``--allow-mass-removal``) allow everything.
    """

    def __init__(self, projects: RemovalLimit | None, files: FileRemovalLimit | None, *,
                 project_count: Callable[[], int], file_count: Callable[[], int],
                 command: str = ALLOW_MASS_REMOVAL) -> None:
        self.projects = projects
        self.files = files
        self.command = command
        self._project_count = project_count
        self._file_count = file_count
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.projects_taken = 0
        self.files_taken = 0
        self.held_back: str | None = None  # the first refusal, for the run's last line

    @classmethod
    def unlimited(cls) -> RemovalBudget:
        return cls(None, None, project_count=lambda: 0, file_count=lambda: 0)

    def take_projects(self, count: int) -> bool:
        """Reserve ``count`` more project removals; False (noting why) when past both project limits."""
        with self._lock:
            wanted = self.projects_taken + count
            limit = self.projects
            if count and limit is not None and wanted > limit.projects:
                size = self._size("projects", self._project_count)
                if limit.exceeded(wanted, size):
                    self.held_back = self.held_back or limit.message(wanted, size, self.command)
                    return False
            self.projects_taken = wanted
            return True

    def take_files(self, count: int) -> None:
        """Reserve ``count`` more file deletions; RemovalsHeldBack when past both file limits."""
        with self._lock:
            wanted = self.files_taken + count
            limit = self.files
            if count and limit is not None and wanted > limit.files:
                size = self._size("files", self._file_count)
                if limit.exceeded(wanted, size):
                    message = limit.message(wanted, size, self.command)
                    self.held_back = self.held_back or message
                    raise RemovalsHeldBack(message)
            self.files_taken = wanted

    def _size(self, what: str, count: Callable[[], int]) -> int:
        if what not in self._sizes:
            self._sizes[what] = count()
        return self._sizes[what]


class _GatedUpload:
    """An upload whose ``commit`` goes through the gate."""

    def __init__(self, gate: Gate, inner: Upload) -> None:
        self._gate = gate
        self._inner = inner
        self.key = inner.key
        self.file = inner.file

    def commit(self) -> ObjectStat:
        self._gate._may_change(self.key)
        stat = self._inner.commit()
        self._gate.changes.written_key(self.key)
        return stat


class Gate:
    """``store`` behind the run's promises (see the module docstring); a ``store.Store`` itself."""

    def __init__(self, store: Store, budget: RemovalBudget | None = None,
                 changes: Changes | None = None) -> None:
        self.inner = store
        self.budget = budget or RemovalBudget.unlimited()
        self.changes = changes or Changes(None)  # what this run wrote and deleted, for diff-file

    # ------------------------------------------------------------ capabilities

    # The store's own capabilities (``store.protocol``), asked through the gate: only reads.

    def local_path(self, key: str) -> Path | None:
        """Where ``key`` lies on a filesystem store (hashed in place, read for its METADATA); else None."""
        return self.inner.local_path(key)

    def remote_url(self) -> str | None:
        return self.inner.remote_url()

    def clients_store(self) -> Store:
        """The store clients read, asked directly: the bucket behind an S3 mirror's local record
        (which answers for pages without asking it; verify must see the bucket), else the store.
        Not gated: a check reads it, nothing writes through it."""
        return self.inner.clients_store()

    def reserve_files(self, count: int) -> None:
        """Before a change that deletes ``count`` files is published: RemovalsHeldBack past the limits."""
        self.budget.take_files(count)

    def reserve_projects(self, count: int) -> bool:
        """Before ``count`` projects are taken off: False past the limits (nothing may be removed)."""
        return self.budget.take_projects(count)

    def _may_change(self, key: str) -> None:
        """Every write and delete asks here first.

        The place for a check that concerns one key, whoever asks: today the
        store itself refuses unsafe keys and links (``storage``); an ownership
        check of a file's sidecars (``owners``) belongs here too.
        """

    # ------------------------------------------------------------ store.Store

    def description(self) -> str:
        return self.inner.description()

    @contextlib.contextmanager
    def upload(self, key: str) -> Iterator[Upload]:
        with self.inner.upload(key) as up:
            yield _GatedUpload(self, up)

    def publish_page(self, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        self._may_change(key)
        stat = self.inner.publish_page(key, data)
        self.changes.written_key(key)
        return stat

    def read(self, key: str) -> bytes | None:
        return self.inner.read(key)

    def open_read(self, key: str) -> Reader | None:
        return self.inner.open_read(key)

    def stat(self, key: str) -> ObjectStat | None:
        return self.inner.stat(key)

    def delete(self, key: str) -> ObjectStat | None:
        self._may_change(key)
        gone = self.inner.delete(key)
        if gone is not None:
            self.changes.deleted_key(key)
        return gone

    def iterate(self, prefix: str) -> Iterator[str]:
        return self.inner.iterate(prefix)
