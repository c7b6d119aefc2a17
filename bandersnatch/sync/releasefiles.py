"""What a project's pages link when ``mirror`` downloads no distribution file.

``release-files = false`` (bandersnatch 8's index-only mirror): the pages link
upstream's files, at ``root_uri`` when one is set; nothing goes below
``web/packages/``.  ``release-files = on-demand``: the pages link our
``/packages/`` as always, and the web server fetches a file from upstream the
first time a client asks for it and keeps it there (README: the nginx block).
Either way the page's hashes are upstream's, which ``verify`` checks kept files
against.

With dependency filters, the closure still needs each file's requirements: they
are read from its PEP 658 ``.metadata``, fetched into memory and checked against
the page's hash, never from the distribution file (which is not downloaded).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ..config.values import ReleaseFiles
from ..errors import NotFound, shown
from ..formats.layout import upstream_link
from ..formats.simple import DistFile
from ..publish.owners import METADATA_SUFFIX
from ..selection.records import DependencyRecords, MirroredFile
from ..upstream.master import Master

logger = logging.getLogger(__name__)


def linked_record(f: DistFile, href: str, segments: Sequence[str], mode: ReleaseFiles,
                  root_uri: str | None) -> DistFile:
    """Our record of upstream's file ``f`` on a page whose files ``mirror`` does not download.

    ``href``: our usual link below ``/packages/`` (on-demand); ``segments``: the file's
    path below ``/packages/`` upstream.  The hashes, size and metadata are upstream's
    word.  On-demand links no provenance: upstream serves it from another path
    (``/integrity/``), which the web server's fetch below ``/packages/`` cannot reach.
    """
    if mode is ReleaseFiles.FALSE:
        return replace(f, url=upstream_link(f.url, segments, root_uri), on_disk=None)
    return replace(f, url=href, provenance=None, on_disk=None)


def metadata_sha256(f: DistFile) -> str | None:
    """The sha256 of the PEP 658 metadata ``f``'s page advertises (None: none, or no sha256)."""
    return f.core_metadata.get("sha256") if isinstance(f.core_metadata, Mapping) else None


def mirrored(f: DistFile, core: bytes | None = None, read: bool = False) -> MirroredFile:
    """``f`` for the dependency records: never on disk; ``core`` is its metadata when ``read`` now."""
    return MirroredFile(f.filename, f.hashes.get("sha256", ""), None, None, core, read, metadata_sha256(f))


class MetadataReader:
    """Reads the requirements of files that are not downloaded, from their ``.metadata``."""

    def __init__(self, master: Master, records: DependencyRecords, pool: ThreadPoolExecutor) -> None:
        self.master = master
        self.records = records
        self.pool = pool

    def read(self, key: str, files: Sequence[DistFile]) -> dict[str, bytes | None]:
        """filename -> the core metadata read now (None: it has none to read); files whose record
        still stands (same bytes, same metadata) are left out: nothing is fetched for them."""
        standing = self.records.standing(key, (mirrored(f) for f in files))
        stale = [f for f in files if f.filename not in standing]
        return dict(zip((f.filename for f in stale), self.pool.map(self._fetch, stale), strict=True))

    def _fetch(self, f: DistFile) -> bytes | None:
        if not f.core_metadata:
            return None  # pip would read the file itself; the mirror never downloads it
        expected = dict(f.core_metadata) if isinstance(f.core_metadata, Mapping) else {}
        sink = io.BytesIO()
        try:
            self.master.download(f.url + METADATA_SUFFIX, sink, expected, None,
                                 cap=self.master.max_page_bytes)
        except NotFound:
            logger.warning("%s: advertised metadata is missing upstream; its dependencies are not known",
                           shown(f.filename))
            return None
        return sink.getvalue()
