"""``verify`` on an object store: each linked file asked for by key; never listed, read only when asked.

The pages come from the mirror's local record of them (``recordedstore``);
each file they link is asked for by its key.  Without reading, a HEAD
answers whether the object is there, its size and its ETag, which are
compared with what the page recorded when the mirror verified the file (an
ETag that changed means the object was replaced since: the mirror's next run
would not trust it either).  Reading (``verify --hash``) streams the object
through sha256 in one GET instead, which also gives its size.

Pages are read from the record, but clients read the bucket: each page and
root index object is asked for by a HEAD too (``published``), so one deleted
or cut in the bucket behind the mirror's back is found without reading it.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from ..errors import shown
from ..store.protocol import Reader, Store
from .pagecheck import (
    CHANGED,
    HASH,
    MISSING,
    PAGE_DAMAGED,
    PAGE_MISSING,
    SIZE,
    FileRecord,
    Problem,
    linked_by,
)

_CHUNK = 1 << 20


def sha256_stream(stream: Reader) -> tuple[str, int]:
    """sha256 and length of what ``stream`` yields, read in pieces (memory stays flat)."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def check_object(store: Store, rel: str, records: list[FileRecord], *,
                 read: bool) -> tuple[list[Problem], int]:
    """``packages/<rel>`` in ``store`` against what its pages recorded; the problems and the bytes read."""
    subject = f"packages/{rel}"
    projects, by, shas, problems = linked_by(subject, records)
    sizes = {r.size for r in records if r.size is not None}
    missing = Problem(MISSING, subject, f"linked by {by} but not in the store", projects)
    if read:
        stream = store.open_read(subject)
        if stream is None:
            return [*problems, missing], 0
        with contextlib.closing(stream):
            digest, size = sha256_stream(stream)
        if sizes and size not in sizes:
            problems.append(Problem(SIZE, subject, f"{size} bytes, {min(sizes)} recorded by {by}", projects))
        elif shas and digest not in shas:
            problems.append(Problem(HASH, subject, f"sha256 {digest}, {shas[0]} recorded by {by}", projects))
        return problems, size
    now = store.stat(subject)
    if now is None:
        return [*problems, missing], 0
    if sizes and now.size not in sizes:
        return [*problems, Problem(SIZE, subject, f"{now.size} bytes, {min(sizes)} recorded by {by}",
                                   projects)], 0
    etags = sorted({r.etag for r in records if r.etag is not None})
    if etags and now.stamp not in etags:
        problems.append(Problem(CHANGED, subject, f"ETag {shown(str(now.stamp), 80)}, {etags[0]} recorded "
                                f"when {by} verified it: replaced since (verify --hash reads it)", projects))
    return problems, 0


def published(store: Store, key: str, record: Path) -> tuple[str, str] | None:
    """Why the object at ``key`` is not the record's copy at ``record`` (one HEAD), as a page problem's
    kind and detail; None when it is.

    Sizes are compared, not ETags: an ETag is the MD5 of the bytes only for a single
    unencrypted PUT.  A page missing from the record is the record's check to report.
    """
    try:
        size = record.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return None
    now = store.stat(key)
    if now is None:
        return PAGE_MISSING, "in the mirror's record but not in the bucket"
    if now.size != size:
        return PAGE_DAMAGED, f"{now.size} bytes in the bucket, {size} in the mirror's record"
    return None
