"""Where the mirror is published: the contract between the mirror and what clients read.

Everything a client reads (today's ``web/``: project pages, the root index,
release files and their ``.metadata``/``.provenance``, ``last-modified``,
``pypi/<p>/json``, ``local-stats/``) is an object under a *key*: its path
below ``web/`` with ``/`` between segments (``simple/foo/index.html``,
``packages/ab/cd/ef.../foo-1.0.tar.gz``).  The mirror's bookkeeping (state,
todo, journal, lock, staging, failures, claims, intents, records) is not
published and stays in the local mirror directory.

Two stores keep the contract: the filesystem (``web/`` itself) and an
S3-compatible bucket.  They promise the same things, which the mirror's
crash-safety order relies on:

* an object appears whole or not at all, and a replaced object is seen old
  or new, never mixed (rename on a filesystem; a single PUT or a completed
  multipart upload in S3);
* once ``commit()``/``publish_page()`` returns, the object is durable and
  visible to readers, so the mirror can publish a page linking it next;
* no call follows a key outside the store (each segment passes
  ``storage.check_segment``; a bad key raises ``UnsafePath``).

The interface speaks in the mirror's terms, not a filesystem's: there are no
directories to make or prune (a filesystem store removes directories that a
delete leaves empty, an object store has none).

What only some stores can do is a *capability*: a method every store has,
whose answer may be "no" (``None``), as devpi's storage has ``os_path()``.
Callers branch on the answer, never on the store's class:

* ``local_path(key)``: the local file that *is* the object (hash it where it
  lies, read a wheel's METADATA, walk ``packages/``), or None;
* ``remote_url()``: the URL keys lie below when they are not local files
  (the diff-file lists ``<url>/<key>``), or None;
* ``clients_store()``: the store that answers as clients would, for a store
  that answers some reads from a local copy of what it published.

A store may answer the reads (``read``, ``open_read``, ``stat``, ``iterate``)
of some keys from a local copy of what *it* published (``RecordedStore``: the
keys under ``simple/``).  Everything above holds for what goes through the
store; a change made behind its back, in the bucket, is not seen there.  A
check of what clients are served asks ``clients_store()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# What each kind of object is served as.  An object store sets it on the object; a web
# server in front of a filesystem store decides it by its own configuration (README).
HTML = "text/html; charset=utf-8"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
BINARY = "application/octet-stream"


def content_type(key: str) -> str:
    """The Content-Type clients need for the object at ``key`` (pure)."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(".html"):
        return HTML
    if name.endswith(".v1_json"):
        return SIMPLE_JSON
    if name == "json" or name.endswith(".json") or name.endswith(".provenance"):
        return JSON
    if name.endswith(".metadata") or name == "last-modified":
        return TEXT
    return BINARY


@dataclass(frozen=True)
class ObjectStat:
    """What a store says of one object without reading it.

    ``stamp`` changes whenever the object is replaced: the modification time in
    nanoseconds on a filesystem, the ETag in S3.  The mirror records it beside the
    sha256 it verified, and trusts an object whose size and stamp still match.
    """

    size: int
    stamp: int | str


class Upload(Protocol):
    """One object being written: write into ``file``, then ``commit()`` to publish it.

    ``file`` is a local temporary file (in the mirror's staging directory), so a
    download can stream into it and be hashed before anything is published.
    Leaving the ``with`` block without ``commit()`` discards it.
    """

    key: str
    file: BinaryIO

    def commit(self) -> ObjectStat:
        """Publish the bytes written so far under ``key``, atomically; return its stat."""
        ...


class Reader(Protocol):
    """An object's bytes being read from its start (a file opened "rb", an S3 response body)."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left when negative); ``b""`` at the end."""
        ...

    def close(self) -> None:
        ...


class Store(Protocol):
    """The published side of one mirror."""

    def description(self) -> str:
        """Where the store is, for operators' messages (``/srv/pypi/web``, ``s3://bucket/prefix``)."""
        ...

    def upload(self, key: str) -> AbstractContextManager[Upload]:
        """Stage a new object under ``key``; publish it with ``commit()`` (a verified file, a big page)."""
        ...

    def publish_page(self, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        """Replace ``key`` with ``data`` atomically (a page, ``last-modified``, a stats file)."""
        ...

    def read(self, key: str) -> bytes | None:
        """The whole object, or None when there is none (for the small objects the mirror reads back)."""
        ...

    def open_read(self, key: str) -> Reader | None:
        """The object's bytes as a stream the caller closes, or None when there is none.

        For objects too big to ``read`` whole (verify hashes release files through it); one
        request on an object store, whose failures mid-stream raise StorageError.
        """
        ...

    def stat(self, key: str) -> ObjectStat | None:
        """Size and stamp of ``key``, or None when there is no object there."""
        ...

    def delete(self, key: str) -> ObjectStat | None:
        """Remove ``key``; the stat it had when it was there, else None.  Never an error for a missing key.

        The stat comes with the delete so that a caller counting what it removed asks nothing more.
        """
        ...

    def iterate(self, prefix: str) -> Iterator[str]:
        """Every key below the directory ``prefix``, in no promised order; for repair and verify only.

        ``prefix`` is ``""`` (the whole store) or a key-like directory with or without
        its final ``/`` (``simple/`` and ``simple`` alike; never ``simplex/``, and
        ``simple/fo`` is the directory ``simple/fo/``).  It is checked like a key.
        """
        ...

    # ------------------------------------------------------------ capabilities (may answer "no")

    def local_path(self, key: str) -> Path | None:
        """The local file that is the object ``key`` (what clients are served), or None.

        None on an object store, and on a store whose local files are only a copy of
        the objects (``RecordedStore``).  ``key`` may also name a directory of keys
        (``packages``).  A key that is not safe raises UnsafePath, as in every call.
        """
        ...

    def remote_url(self) -> str | None:
        """The URL keys lie below (``s3://bucket/prefix``) when they are not local files, or None."""
        ...

    def clients_store(self) -> Store:
        """The store answering as clients would: this one, or the store behind a local copy."""
        ...
