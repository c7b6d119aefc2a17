"""An object store with a local record of its pages: the mirror's store when ``storage-backend = s3``.

The mirror reads back only what it published under ``simple/``: a project's
JSON page is its record of what is verified (``package.read_known``), both
pages say whether the root index may name a project, and the root index is
patched in place (``rootindex``), which needs a file.  Reading those back from
the bucket would cost a GET per changed project and could not patch at all;
so every object under ``simple/`` is also kept, byte for byte, as a file below
``<directory>/s3-pages/`` (the "record"), and every read of such a key is
answered from there.  The bucket is never listed, and a run reads nothing from
it: a project's sync costs HEADs of the files it keeps and PUTs of what changed.
The price is local disk: the pages and root index of the whole mirror (the
files themselves are not recorded).  Measured on SeaweedFS
(``test_requests_to_the_store_per_project_for_a_full_sync_and_a_no_op``): a
new project costs one PUT per object and no other request; a changed one a
HEAD per kept file and PUTs of what changed; a no-op run one HEAD of the
bucket and the PUT of ``last-modified``.  Reading pages back instead would
add a GET per changed project and leave the root index no file to patch.

Order, so that the record never claims more than the bucket holds where that
matters: an object goes to the bucket first and into the record after (the
root index is rebuilt from the record's pages, so a page the record lists is
a page clients can read); a delete goes to the bucket first and leaves the
record after (a killed removal leaves the record naming the page, and the next
run removes it again rather than forgetting a page still served).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .atomic import write_all
from .filesystem import FilesystemStore
from .protocol import ObjectStat, Reader, Store, Upload
from .s3settings import S3Settings

RECORD_DIR = "s3-pages"  # below the mirror directory, in place of web/
RECORDED = ("simple/",)  # what the mirror reads back; everything else goes to the remote store only
_CHUNK = 1 << 20


def recorded(key: str) -> bool:
    return key.startswith(RECORDED)


class _RecordedUpload:
    """A file staged into the record; ``commit()`` sends it to the remote store, then keeps it locally."""

    def __init__(self, key: str, local: Upload, remote: Store) -> None:
        self.key = key
        self.file = local.file
        self._local = local
        self._remote = remote

    def commit(self) -> ObjectStat:
        self.file.flush()
        fd = self.file.fileno()  # the root index writes through the descriptor: read it the same way
        size = os.fstat(fd).st_size

        def chunks() -> Iterator[bytes]:
            offset = 0
            while offset < size:
                chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
                if not chunk:
                    return
                offset += len(chunk)
                yield chunk

        self._remote.publish_page(self.key, chunks())
        # The record's stat, as ``stat`` and ``delete`` give it for this key afterwards.
        return self._local.commit()


class RecordedStore:
    """``remote`` (an S3Store) for what clients read, with ``record`` keeping the keys under ``simple/``.

    Its reads of a recorded key (``read``, ``open_read``, ``stat``, ``iterate``) are
    answered from the record, and so are the stats ``publish_page``, ``commit`` and
    ``delete`` give for one: they say what this store published, not what the bucket
    holds now (``clients_store`` answers that).
    """

    def __init__(self, remote: Store, record: FilesystemStore) -> None:
        self.remote = remote
        self.record = record

    def description(self) -> str:
        return self.remote.description()

    # ------------------------------------------------------------ capabilities

    def local_path(self, key: str) -> Path | None:
        """The remote's answer: a recorded page is a copy of the object, not the object clients read."""
        return self.remote.local_path(key)

    def remote_url(self) -> str | None:
        return self.remote.remote_url()

    def clients_store(self) -> Store:
        """The store behind the record: the bucket, asked directly (verify must see what clients see)."""
        return self.remote.clients_store()

    # ------------------------------------------------------------ store.Store

    @contextlib.contextmanager
    def upload(self, key: str) -> Iterator[Upload]:
        if not recorded(key):
            with self.remote.upload(key) as up:
                yield up
            return
        with self.record.upload(key) as local:
            yield _RecordedUpload(key, local, self.remote)

    def publish_page(self, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        if not recorded(key):
            return self.remote.publish_page(key, data)
        with self.upload(key) as up:
            write_all(up.file, data)
            return up.commit()

    def read(self, key: str) -> bytes | None:
        return self.record.read(key) if recorded(key) else self.remote.read(key)

    def open_read(self, key: str) -> Reader | None:
        return self.record.open_read(key) if recorded(key) else self.remote.open_read(key)

    def stat(self, key: str) -> ObjectStat | None:
        """For a recorded key, the record's stat (a filesystem stamp): no request."""
        return self.record.stat(key) if recorded(key) else self.remote.stat(key)

    def delete(self, key: str) -> ObjectStat | None:
        gone = self.remote.delete(key)
        if recorded(key):
            gone = self.record.delete(key) or gone
        return gone

    def iterate(self, prefix: str) -> Iterator[str]:
        # ``simple`` and ``simple/`` alike are the record's; ``""`` (the whole store) is the remote's.
        directory = prefix.removesuffix("/")
        return self.record.iterate(prefix) if recorded(f"{directory}/") else self.remote.iterate(prefix)


def open_s3(settings: S3Settings, directory: Path, staging: Path, workers: int,
            timeout: float) -> RecordedStore:
    """The bucket of ``[s3]``, recorded below ``directory``; asks the bucket once (StoreRefused,
    StoreUnreachable).  boto3 is imported here only: it is the optional extra [s3]."""
    from .s3 import S3Store

    remote = S3Store.from_settings(settings, staging, workers, timeout)
    return RecordedStore(remote, FilesystemStore(directory / RECORD_DIR, staging))
