"""Per project, the ``Requires-Dist`` of its mirrored files: ``<directory>/deps/<project>.json``.

This module owns that format.  A record is written by the project's own sync,
before the run journals the project as done, so a killed run never loses a
dependency: the next run recomputes the closure from the records and syncs
whatever it reaches that has no pages yet.  Each file's requirements are
kept with its sha256, so a re-sync reads the metadata of new files only.

Where requirements come from (issue #9): a wheel's core metadata (the PEP 658
``.metadata`` file beside it when the mirror has one, which was verified
against the page's hash, else ``*.dist-info/METADATA`` read from the wheel on
disk); for a release with only an sdist, its ``PKG-INFO`` when that declares
them.  Anything else contributes nothing, at debug level.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from .deps import requires_dist, sdist_pkg_info, sdist_requires_dist, wheel_metadata
from .dists import file_version
from .errors import shown
from .names import is_valid_project_name
from .storage import atomic_write, remove_file

logger = logging.getLogger(__name__)

METADATA_LIMIT = 16 * 1024 * 1024
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")


@dataclass(frozen=True)
class MirroredFile:
    """A file our page links, verified in the store.

    ``core`` is its core metadata (a wheel's ``METADATA``, an sdist's ``PKG-INFO``)
    as read from the download before it was published, when ``core_read``; else
    it is read from ``metadata`` or ``path`` on disk (a filesystem store), or,
    with neither (an object store), nothing is known of the file's requirements.
    """

    filename: str
    sha256: str
    path: Path | None  # None: not on a local disk
    metadata: Path | None  # the PEP 658 file beside it, when the mirror keeps one on disk
    core: bytes | None = None
    core_read: bool = False


class DependencyRecords:
    """The ``deps/`` directory; safe to use from the project worker threads."""

    def __init__(self, directory: Path, staging: Path) -> None:
        self.directory = directory
        self.staging = staging
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ...] | None] = {}
        self.changed = False  # some record changed in this process

    def _path(self, key: str) -> Path:
        if not is_valid_project_name(key):
            raise ValueError(f"not a project key: {key!r}")
        return self.directory / f"{key}.json"

    def _load(self, key: str) -> dict[str, Any] | None:
        try:
            doc = json.loads(self._path(key).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def requirements(self, key: str) -> tuple[str, ...] | None:
        """The union of the project's requirement lines; None when it was never synced here."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        doc = self._load(key)
        result: tuple[str, ...] | None = None
        if doc is not None and not doc.get("missing"):
            result = _union(_files_of(doc).values())
        with self._lock:
            self._cache[key] = result
        return result

    def is_missing(self, key: str) -> bool:
        """True when the last sync found no such project upstream, or a filter excluded it from its page.

        Either way it stays off the mirror until the changelog names it again.
        """
        doc = self._load(key)
        return bool(doc is not None and doc.get("missing"))

    def absent_because(self, key: str) -> str | None:
        """Why a wanted project is off the mirror (``is_missing``); None when it is not recorded so."""
        doc = self._load(key)
        if doc is None or not doc.get("missing"):
            return None
        excluded = doc.get("excluded")
        return f"excluded: {excluded}" if isinstance(excluded, str) else "upstream has none"

    def update(self, key: str, files: Iterable[MirroredFile]) -> tuple[str, ...]:
        """Record the requirements of ``files`` (the project's whole mirrored set); returns their union."""
        old = self._load(key)
        known = _files_of(old) if old is not None else {}
        known_sha = _shas_of(old) if old is not None else {}
        files = list(files)
        with_wheels = {file_version(f.filename, key) for f in files if f.filename.endswith(".whl")}
        entries: dict[str, dict[str, Any]] = {}
        for f in files:
            if known_sha.get(f.filename) == f.sha256:
                requires = known[f.filename]
            else:
                requires = self._read(key, f, with_wheels)
            entries[f.filename] = {"sha256": f.sha256, "requires": list(requires) if requires is not None
                                   else None}
        doc: dict[str, Any] = {"project": key, "files": entries}
        if doc != old:
            self._write(key, doc)
        result = _union(_files_of(doc).values())
        with self._lock:
            self._cache[key] = result
        return result

    def mark_missing(self, key: str, excluded: str | None = None) -> None:
        """Upstream has no such project (or ``excluded`` says which filter keeps it off): remember
        it, so no-op runs do not ask again."""
        doc: dict[str, Any] = {"project": key, "missing": True}
        if excluded is not None:
            doc["excluded"] = excluded
        if self._load(key) != doc:
            self._write(key, doc)
        with self._lock:
            self._cache[key] = None

    def forget(self, key: str) -> None:
        if remove_file(self._path(key), self.staging):
            self.changed = True
        with self._lock:
            self._cache.pop(key, None)

    def _write(self, key: str, doc: dict[str, Any]) -> None:
        atomic_write(self._path(key), json.dumps(doc, sort_keys=True).encode(), self.staging)
        self.changed = True

    @staticmethod
    def _read(key: str, f: MirroredFile, with_wheels: set[Version | None]) -> tuple[str, ...] | None:
        name = f.filename
        if name.endswith(".whl"):
            data = f.core
            if not f.core_read and f.metadata is not None:
                try:
                    with f.metadata.open("rb") as fh:
                        data = fh.read(METADATA_LIMIT + 1)
                except OSError:
                    data = None
                if data is not None and len(data) > METADATA_LIMIT:
                    data = None
            if data is None and not f.core_read and f.path is not None:
                data = wheel_metadata(f.path, METADATA_LIMIT)
            if data is None:
                logger.debug("%s: %s has no readable core metadata; no dependencies known", key, shown(name))
                return None
            return requires_dist(data)
        if name.lower().endswith(SDIST_SUFFIXES) and file_version(name, key) not in with_wheels:
            info = f.core if f.core_read else sdist_pkg_info(f.path, METADATA_LIMIT) if f.path else None
            declared = sdist_requires_dist(info) if info is not None else None
            if declared is None:
                logger.debug("%s: %s does not declare its dependencies; none known", key, shown(name))
            return declared
        return None


def _files_of(doc: dict[str, Any]) -> dict[str, tuple[str, ...] | None]:
    files = doc.get("files")
    out: dict[str, tuple[str, ...] | None] = {}
    if not isinstance(files, dict):
        return out
    for filename, entry in files.items():
        requires = entry.get("requires") if isinstance(entry, dict) else None
        if isinstance(requires, list) and all(isinstance(r, str) for r in requires):
            out[filename] = tuple(str(r) for r in requires)
        else:
            out[filename] = None
    return out


def _shas_of(doc: dict[str, Any]) -> dict[str, str]:
    files = doc.get("files")
    if not isinstance(files, dict):
        return {}
    return {name: e["sha256"] for name, e in files.items()
            if isinstance(e, dict) and isinstance(e.get("sha256"), str)}


def _union(lists: Iterable[tuple[str, ...] | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for requires in lists:
        for line in requires or ():
            seen.setdefault(line.strip(), None)
    return tuple(seen)
