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

from ..errors import shown
from ..formats.dists import file_version
from ..names import is_valid_project_name
from ..store.atomic import atomic_write, remove_file
from .requirements import (
    MAX_REQUIREMENTS,
    checked_requirements,
    requires_dist,
    sdist_pkg_info,
    sdist_requires_dist,
    wheel_metadata,
)

logger = logging.getLogger(__name__)

METADATA_LIMIT = 16 * 1024 * 1024
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
# A file's record: "sha256", "requires" (its well-formed lines; null: unknown), and these when they apply.
METADATA_SHA256 = "metadata-sha256"  # the PEP 658 metadata the requirements were read from
FORMAT = 2  # a document's "format": 2 keeps only checked lines (before: every line, unchecked)
MALFORMED = "malformed"  # how many lines were skipped (reported when read, not on every run)


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
    metadata_sha256: str | None = None  # of the PEP 658 metadata our page advertises (pip reads that)


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

    def standing(self, key: str, files: Iterable[MirroredFile]) -> frozenset[str]:
        """The names among ``files`` whose record still says what they require (``update`` would not
        read them): a mirror that downloads no file fetches their metadata only when it changed."""
        doc = self._load(key)
        if doc is None or doc.get("format") != FORMAT:
            return frozenset()
        known = _entries_of(doc)
        return frozenset(f.filename for f in files
                         if f.filename in known and _reusable(known[f.filename], f, False))

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
        """Record the requirements of ``files`` (the project's whole mirrored set); returns their union.

        A file whose bytes and served metadata are those recorded is not read again, so what
        was wrong with its requirements is reported once, when they are first read.
        """
        old = self._load(key)
        known = _entries_of(old) if old is not None else {}
        legacy = old is not None and old.get("format") != FORMAT
        files = list(files)
        with_wheels = {file_version(f.filename, key) for f in files if f.filename.endswith(".whl")}
        entries: dict[str, dict[str, Any]] = {}
        for f in files:
            entry = known.get(f.filename)
            if entry is None or not _reusable(entry, f, legacy):
                entry = self._entry(key, f, with_wheels)
            elif legacy:  # its lines were kept unchecked: checked once now, and kept in this format
                entry = self._checked_entry(key, f, entry["requires"])
            entries[f.filename] = entry
        doc: dict[str, Any] = {"format": FORMAT, "project": key, "files": entries}
        if doc != old:
            self._write(key, doc)
        result = _union(_files_of(doc).values())
        with self._lock:
            self._cache[key] = result
        return result

    def _entry(self, key: str, f: MirroredFile, with_wheels: set[Version | None]) -> dict[str, Any]:
        """A file's record, from its core metadata read now; skipped lines are warned about here, once."""
        return self._checked_entry(key, f, self._read(key, f, with_wheels))

    @staticmethod
    def _checked_entry(key: str, f: MirroredFile, read: Iterable[str] | None) -> dict[str, Any]:
        checked = checked_requirements(read) if read is not None else None
        entry: dict[str, Any] = {"sha256": f.sha256, "requires": list(checked.lines) if checked else None}
        if f.metadata_sha256 is not None:
            entry[METADATA_SHA256] = f.metadata_sha256
        if checked is not None and checked.skipped:
            entry[MALFORMED] = checked.skipped
            logger.warning("%s: %s: skipping %d malformed Requires-Dist line(s)%s, first: %s", key,
                           shown(f.filename), checked.skipped,
                           f" (only the first {MAX_REQUIREMENTS} are read)" if checked.unread else "",
                           shown(checked.first_skipped or "", 200))
        return entry

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
        wheel = name.endswith(".whl")
        sdist = name.lower().endswith(SDIST_SUFFIXES) and file_version(name, key) not in with_wheels
        if not wheel and not sdist:
            return None
        # What pip reads: the PEP 658 file when our page advertises one, else the file's own.
        data = f.core if f.core_read else _read_capped(f.metadata) if f.metadata is not None else None
        if data is None and not f.core_read and f.path is not None:
            data = wheel_metadata(f.path, METADATA_LIMIT) if wheel else sdist_pkg_info(f.path, METADATA_LIMIT)
        if wheel:
            if data is None:
                logger.debug("%s: %s has no readable core metadata; no dependencies known", key, shown(name))
                return None
            return requires_dist(data)
        declared = sdist_requires_dist(data) if data is not None else None
        if declared is None:
            logger.debug("%s: %s does not declare its dependencies; none known", key, shown(name))
        return declared


def _read_capped(path: Path) -> bytes | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(METADATA_LIMIT + 1)
    except OSError:
        return None
    return data if len(data) <= METADATA_LIMIT else None


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


def _entries_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """filename -> entry, for the entries in the shape ``update`` writes (others are read again)."""
    files = doc.get("files")
    if not isinstance(files, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, entry in files.items():
        requires = entry.get("requires") if isinstance(entry, dict) else None
        lines_ok = requires is None or (isinstance(requires, list)
                                        and all(isinstance(r, str) for r in requires))
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and lines_ok:
            out[name] = entry
    return out


def _reusable(entry: dict[str, Any], f: MirroredFile, legacy: bool) -> bool:
    """The record still says what ``f`` requires: same bytes, and read from the metadata pip reads.

    A ``legacy`` record (written before the metadata's hash was kept) stands while the file
    has no metadata or nothing could be read instead (an object store keeps no copy to read back).
    """
    if entry["sha256"] != f.sha256:
        return False
    if not legacy:
        return bool(entry.get(METADATA_SHA256) == f.metadata_sha256)
    return f.metadata_sha256 is None or (not f.core_read and f.path is None and f.metadata is None)


def _union(lists: Iterable[tuple[str, ...] | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for requires in lists:
        for line in requires or ():
            seen.setdefault(line.strip(), None)
    return tuple(seen)


class UnwrittenRecords(DependencyRecords):
    """``deps/`` as read, with what a run would write kept in memory instead (``mirror --dry-run``).

    The closure a dry run plans must grow from the requirements of projects it
    only previews; the same reading and merging code serves it, nothing reaches disk.
    """

    def __init__(self, directory: Path, staging: Path) -> None:
        super().__init__(directory, staging)
        self._overlay: dict[str, dict[str, Any] | None] = {}  # None: forgotten

    def _load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key in self._overlay:
                return self._overlay[key]
        return super()._load(key)

    def _write(self, key: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._overlay[key] = doc

    def forget(self, key: str) -> None:
        with self._lock:
            self._overlay[key] = None
            self._cache.pop(key, None)
