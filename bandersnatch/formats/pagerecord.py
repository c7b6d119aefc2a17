"""Our JSON project page as a record: the one module that writes it and reads it back.

The page is PEP 691 (``simple.render_project_json`` draws it), plus what only we
put there: ``meta._last-serial`` (the serial it was written under) and, per
file, ``_on-disk`` (PEP 691 reserves ``_`` keys for private use): the stamp the
file had when we verified it, so the next sync trusts it without hashing it
again.  Whoever reads that back (the project sync, the root index, verify,
update-stats) asks this module, as pypi-simple's ``ProjectPage`` owns every
way its format is read.  Pure: bytes in, records out; records in, bytes out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .simple import ProjectPage, render_project_json

ON_DISK = "_on-disk"  # a file's private key for what we stat-check
# Under ON_DISK, a file's stamp (store.ObjectStat) is kept as "mtime-ns" when it is a filesystem's
# modification time (an int) and as "etag" when it is an object store's ETag (a str); the
# metadata's likewise with a "metadata-" prefix, beside its "metadata-size".
_MTIME, _ETAG, _METADATA = "mtime-ns", "etag", "metadata-"
_METADATA_SIZE = "metadata-size"

HEAD_BYTES = 4096  # bytes of a page that nearly always hold its meta: we write it first
_HEAD_SERIAL = re.compile(rb'\A\{"meta":\{[^{}]*"_last-serial":([0-9]+)[,}]')


@dataclass(frozen=True)
class Stored:
    """A file as verified in the store: its sha256, and the size and stamp it had then."""

    sha256: str
    size: int | None
    stamp: int | str | None  # None: recorded before stamps were (the size alone is checked, once)


@dataclass(frozen=True)
class Known:
    """What our own published page says about a file: verified facts, no need to hash again."""

    sha256: str
    size: int | None
    metadata_sha256: str | None
    stamp: int | str | None = None
    metadata_size: int | None = None
    metadata_stamp: int | str | None = None
    provenance: bool = False  # our page links a provenance copy beside the file

    @property
    def file(self) -> Stored:
        return Stored(self.sha256, self.size, self.stamp)

    @property
    def metadata(self) -> Stored | None:
        if self.metadata_sha256 is None:
            return None
        return Stored(self.metadata_sha256, self.metadata_size, self.metadata_stamp)


@dataclass(frozen=True)
class OnDisk:
    """A file's ``_on-disk`` entry as written, each value None when absent or of the wrong type."""

    mtime_ns: int | None = None
    etag: str | None = None
    metadata_size: int | None = None
    metadata_mtime_ns: int | None = None
    metadata_etag: str | None = None

    @classmethod
    def from_entry(cls, entry: object) -> OnDisk:
        """The ``_on-disk`` of one ``files[]`` entry of our page (all None: there is none)."""
        value = entry.get(ON_DISK) if isinstance(entry, dict) else None
        if not isinstance(value, dict):
            return cls()
        return cls(_int_or_none(value.get(_MTIME)), _str_or_none(value.get(_ETAG)),
                   _int_or_none(value.get(_METADATA_SIZE)), _int_or_none(value.get(_METADATA + _MTIME)),
                   _str_or_none(value.get(_METADATA + _ETAG)))

    @property
    def stamp(self) -> int | str | None:
        return self.mtime_ns if self.mtime_ns is not None else self.etag

    @property
    def metadata_stamp(self) -> int | str | None:
        return self.metadata_mtime_ns if self.metadata_mtime_ns is not None else self.metadata_etag


def on_disk(stamp: int | str | None, metadata: Stored | None) -> dict[str, int | str] | None:
    """The ``_on-disk`` entry to write for a file verified with ``stamp`` (None: nothing to write)."""
    entry: dict[str, int | str] = {}
    if stamp is not None:
        _put_stamp(entry, "", stamp)
    if metadata is not None and metadata.size is not None and metadata.stamp is not None:
        entry[_METADATA_SIZE] = metadata.size
        _put_stamp(entry, _METADATA, metadata.stamp)
    return entry or None


def to_bytes(page: ProjectPage, serial: int | None) -> bytes:
    """Our JSON page of ``page`` (its files carry their ``on_disk``), written under ``serial``."""
    return render_project_json(page, serial)


def from_bytes(data: bytes | None) -> dict[str, Known]:
    """href -> Known, from the bytes of our JSON page (None or damaged: empty)."""
    if data is None:
        return {}
    try:
        files = json.loads(data)["files"]
    except (ValueError, KeyError, TypeError):
        return {}
    known = {}
    for entry in files:
        try:
            known[entry["url"]] = _known(entry)
        except (KeyError, TypeError, AttributeError):
            continue
    return known


def _known(entry: Any) -> Known:
    metadata = entry.get("core-metadata")
    stamps = OnDisk.from_entry(entry)
    return Known(
        sha256=entry["hashes"]["sha256"],
        size=entry.get("size"),
        metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
        stamp=stamps.stamp,
        metadata_size=stamps.metadata_size,
        metadata_stamp=stamps.metadata_stamp,
        provenance=isinstance(entry.get("provenance"), str),
    )


def filenames_from_bytes(data: bytes) -> frozenset[str]:
    """The ``files[].filename`` values of a PEP 691 JSON project page.

    Raises ValueError when ``data`` is not such a page.
    """
    document = json.loads(data)
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise ValueError("not a PEP 691 project page: no files list")
    names = set()
    for entry in document["files"]:
        if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
            names.add(entry["filename"])
    return frozenset(names)


def serial_from_head(head: bytes) -> int | None:
    """The ``_last-serial`` of our page from its first HEAD_BYTES; None when they do not tell."""
    found = _HEAD_SERIAL.match(head)
    return int(found.group(1)) if found is not None else None


def serial_from_bytes(data: bytes) -> int:
    """The ``_last-serial`` of a whole page; 0 when it has none.  ValueError when it is no JSON."""
    doc = json.loads(data)
    meta = doc.get("meta") if isinstance(doc, dict) else None
    serial = meta.get("_last-serial") if isinstance(meta, Mapping) else None
    return serial if isinstance(serial, int) and not isinstance(serial, bool) and serial >= 0 else 0


def _put_stamp(entry: dict[str, int | str], prefix: str, stamp: int | str) -> None:
    entry[prefix + (_MTIME if isinstance(stamp, int) else _ETAG)] = stamp


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
