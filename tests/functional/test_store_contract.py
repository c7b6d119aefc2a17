"""The contract of ``store.Store`` (see ``bandersnatch/store/protocol.py``), held by every store.

Each test takes the ``store`` fixture, parametrized over the stores there
are: the filesystem (``web/``), S3 (a fresh key prefix in the session's real
SeaweedFS bucket; skipped without ``weed`` or boto3), the recorded store an S3
mirror runs on (that bucket, its pages recorded below the mirror directory),
and the gate every publisher writes through over the two a mirror runs on.  What only one
store does is tested in ``test_fsstore.py`` and ``test_s3store.py``.

The recorded store answers the reads of the keys under ``simple/`` from its
record; the protocol says so (a store may answer from a local copy of what it
published, ``clients_store()`` asks as clients would), and
``test_a_store_answering_from_its_copy_sees_what_it_published`` holds it to that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bandersnatch.errors import UnsafePath
from bandersnatch.publish.gate import Gate
from bandersnatch.store.filesystem import FilesystemStore
from bandersnatch.store.protocol import BINARY, HTML, JSON, SIMPLE_JSON, TEXT, Store, content_type
from bandersnatch.store.recorded import RECORD_DIR, RecordedStore


def _staging(tmp_path: Path) -> Path:
    """Where a store stages uploads: the filesystem store's place in a mirror directory, for both."""
    return tmp_path / "tmp" / "mirror"


def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return FilesystemStore(tmp_path / "web", _staging(tmp_path))


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    pytest.importorskip("bandersnatch.store.s3")  # boto3 is the optional extra [s3]
    from support.s3tools import make_s3_store

    return make_s3_store(request.getfixturevalue("seaweed"), _staging(tmp_path))


def _recorded(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return RecordedStore(_s3(request, tmp_path), FilesystemStore(tmp_path / RECORD_DIR, _staging(tmp_path)))


Make = Callable[[pytest.FixtureRequest, Path], Store]


def _gated(make: Make) -> Make:
    return lambda request, tmp_path: Gate(make(request, tmp_path))


BARE: dict[str, Make] = {
    "filesystem": _filesystem, "s3": _s3, "recorded": _recorded}
# The gate over the stores a mirror runs on: the filesystem, and the recorded store of an S3 mirror
# (a gate over a bare S3 store is never built; the bare S3 store keeps the contract above).
STORES = {**BARE, **{f"gate-{name}": _gated(BARE[name]) for name in ("filesystem", "recorded")}}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield STORES[request.param](request, tmp_path)


UNSAFE_KEYS = ["..", "", "/abs", "a//b", "a/../b", "a/./b", "a/", "nul\0here", "simple/\nx",
               "/simple/foo", "simple//foo", "simple/foo/", "../web", "simple/../../etc", "simple/./x",
               "a\\b", "a\0b", "a\nb", "x" * 256]


def test_published_page_reads_back_whole_with_its_stat(store: Store) -> None:
    stat = store.publish_page("simple/foo/index.html", b"<html>foo</html>\n")
    assert store.read("simple/foo/index.html") == b"<html>foo</html>\n"
    assert stat.size == len(b"<html>foo</html>\n")
    assert store.stat("simple/foo/index.html") == stat


def test_page_published_from_chunks_reads_back_joined(store: Store) -> None:
    stat = store.publish_page("pypi/foo/json", iter([b"{", b"", b'"a":', b"1}"]))
    assert store.read("pypi/foo/json") == b'{"a":1}'
    assert stat.size == 7


def test_missing_key_reads_and_stats_as_none(store: Store) -> None:
    assert store.read("simple/nope/index.html") is None
    assert store.stat("simple/nope/index.html") is None
    assert store.read("last-modified") is None


def test_replaced_object_is_seen_whole_with_new_size_and_stamp(store: Store) -> None:
    first = store.publish_page("last-modified", b"2024-01-01T00:00:00Z\n")
    time.sleep(0.02)  # past the filesystem clock's tick, so a new mtime differs
    second = store.publish_page("last-modified", b"2025-06-30T12:00:00Z\nmore\n")
    assert store.read("last-modified") == b"2025-06-30T12:00:00Z\nmore\n"
    assert second.size != first.size
    assert second.stamp != first.stamp
    assert store.stat("last-modified") == second


def test_committed_upload_is_published_under_its_key(store: Store) -> None:
    key = "packages/ab/cd/foo-1.0.tar.gz"
    with store.upload(key) as up:
        assert up.key == key
        up.file.write(b"x" * 1000)
        up.file.write(b"y" * 24)
        assert store.read(key) is None  # nothing visible before commit
        assert store.stat(key) is None
        stat = up.commit()
    assert stat.size == 1024
    assert store.read(key) == b"x" * 1000 + b"y" * 24
    assert store.stat(key) == stat


def test_upload_left_without_commit_leaves_nothing(store: Store, tmp_path: Path) -> None:
    with store.upload("packages/ab/cd/foo-1.0.tar.gz") as up:
        up.file.write(b"half a file")
    assert store.read("packages/ab/cd/foo-1.0.tar.gz") is None
    with pytest.raises(RuntimeError), store.upload("packages/ab/cd/baz-1.0.whl") as up:
        up.file.write(b"download failed")
        raise RuntimeError("hash mismatch")
    assert store.stat("packages/ab/cd/baz-1.0.whl") is None
    assert list(store.iterate("")) == []
    assert list(_staging(tmp_path).iterdir()) == []  # no temporary file left behind


def test_upload_left_by_an_error_leaves_the_old_object(store: Store) -> None:
    store.publish_page("simple/foo/index.html", b"old")
    with pytest.raises(RuntimeError), store.upload("simple/foo/index.html") as up:
        up.file.write(b"new but unfinished")
        raise RuntimeError("killed")
    assert store.read("simple/foo/index.html") == b"old"


def test_open_read_streams_the_object_in_pieces_and_is_none_when_missing(store: Store) -> None:
    data = bytes(range(256)) * 1000
    store.publish_page("packages/ab/foo.whl", data)
    stream = store.open_read("packages/ab/foo.whl")
    assert stream is not None
    try:
        pieces = list(iter(lambda: stream.read(4096), b""))
    finally:
        stream.close()
    assert b"".join(pieces) == data and max(len(p) for p in pieces) <= 4096 and len(pieces) > 1
    assert store.open_read("packages/ab/gone.whl") is None
    assert store.open_read("never/was") is None


def test_delete_says_whether_the_object_was_there_with_its_stat(store: Store) -> None:
    published = store.publish_page("packages/ab/foo.whl", b"wheel")
    assert store.delete("packages/ab/foo.whl") == published  # the size a caller counts, asked once
    assert store.read("packages/ab/foo.whl") is None
    assert store.stat("packages/ab/foo.whl") is None
    assert store.delete("packages/ab/foo.whl") is None
    assert store.delete("packages/never/was.whl") is None
    assert store.delete("never") is None


def test_iterate_lists_every_key_below_the_prefix_only(store: Store) -> None:
    keys = ["simple/foo/index.html", "simple/foo/index.v1_json", "simple/index.html",
            "simple/b/bar/index.html", "simplex/b/index.html", "packages/ab/foo.whl", "pypi/foo/json",
            "last-modified"]
    for key in keys:
        store.publish_page(key, key.encode())
    below_simple = sorted(k for k in keys if k.startswith("simple/"))
    assert sorted(store.iterate("simple/")) == below_simple
    assert sorted(store.iterate("simple")) == below_simple  # a directory, with or without its slash
    assert sorted(store.iterate("simple/foo/")) == ["simple/foo/index.html", "simple/foo/index.v1_json"]
    assert list(store.iterate("simple/fo")) == []  # not a string prefix: simple/fo/ holds nothing
    assert list(store.iterate("last-modified")) == []  # an object is not a directory
    assert sorted(store.iterate("")) == sorted(keys)
    assert list(store.iterate("nothing/")) == []
    store.delete("simple/foo/index.html")
    assert sorted(store.iterate("simple/foo/")) == ["simple/foo/index.v1_json"]


@pytest.mark.slow
def test_iterate_pages_past_a_thousand_keys(store: Store) -> None:
    keys = {f"packages/{i % 7:02x}/f-{i}.whl" for i in range(1100)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.publish_page(key, b""), keys))
    listed = list(store.iterate("packages/"))
    assert len(listed) == 1100 and set(listed) == keys


def test_an_object_is_a_local_file_or_lies_below_a_url_never_both(store: Store) -> None:
    data = b"wheel bytes"
    store.publish_page("packages/ab/foo.whl", data)
    path = store.local_path("packages/ab/foo.whl")
    url = store.remote_url()
    assert (path is None) != (url is None)  # the diff-file lists a path or ``<url>/<key>``
    if path is not None:
        assert path.read_bytes() == data  # the very file clients are served, hashed where it lies
        assert store.local_path("packages") == path.parent.parent  # a directory of keys, walked on disk
        assert store.local_path("packages/ab/gone.whl") == path.with_name("gone.whl")
    else:
        assert store.local_path("packages") is None
        assert url is not None and "://" in url and not url.endswith("/")


def test_the_clients_store_reads_what_the_store_published(store: Store) -> None:
    page = store.publish_page("simple/foo/index.html", b"<html>foo</html>")
    wheel = store.publish_page("packages/ab/foo.whl", b"wheel")
    clients = store.clients_store()
    assert clients.read("simple/foo/index.html") == b"<html>foo</html>"
    assert clients.read("packages/ab/foo.whl") == b"wheel"
    assert clients.stat("packages/ab/foo.whl") == wheel  # files are never answered from a copy
    assert (clients_page := clients.stat("simple/foo/index.html")) is not None
    assert clients_page.size == page.size
    assert clients.clients_store() is clients


def test_a_store_answering_from_its_copy_sees_what_it_published(store: Store) -> None:
    """A change made behind the store is seen by the clients' store; the store itself sees either it or,
    for a key it answers from its local copy (a recorded store's pages), what it published; its own
    reads agree with each other."""
    key = "simple/foo/index.html"
    store.publish_page(key, b"published")
    store.clients_store().publish_page(key, b"changed behind the store")
    assert store.clients_store().read(key) == b"changed behind the store"
    seen = store.read(key)
    assert seen in (b"published", b"changed behind the store")
    assert (now := store.stat(key)) is not None and now.size == len(seen)
    assert sorted(store.iterate("simple/foo")) == [key]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_an_unsafe_key_is_refused_by_every_call_before_anything_is_sent(store: Store, key: str) -> None:
    with pytest.raises(UnsafePath):
        store.publish_page(key, b"x")
    with pytest.raises(UnsafePath), store.upload(key):
        pass
    with pytest.raises(UnsafePath):
        store.read(key)
    with pytest.raises(UnsafePath):
        store.stat(key)
    with pytest.raises(UnsafePath):
        store.open_read(key)
    with pytest.raises(UnsafePath):
        store.delete(key)
    with pytest.raises(UnsafePath):
        store.local_path(key)
    assert list(store.iterate("")) == []


@pytest.mark.parametrize("prefix", ["../", "a//", "/abs/", "simple/../", "a/./b/"])
def test_unsafe_prefix_is_refused(store: Store, prefix: str) -> None:
    with pytest.raises(UnsafePath):
        list(store.iterate(prefix))


@pytest.mark.parametrize(("key", "expected"), [
    ("simple/index.html", HTML),
    ("simple/foo/index.html", HTML),
    ("simple/foo/index.v1_json", SIMPLE_JSON),
    ("simple/index.v1_json", SIMPLE_JSON),
    ("pypi/foo/json", JSON),
    ("local-stats/summary.json", JSON),
    ("packages/ab/foo-1.0-py3-none-any.whl.provenance", JSON),
    ("packages/ab/foo-1.0-py3-none-any.whl.metadata", TEXT),
    ("last-modified", TEXT),
    ("packages/ab/foo-1.0-py3-none-any.whl", BINARY),
    ("packages/ab/foo-1.0.tar.gz", BINARY),
    ("local-stats/days/2024-01-01.bz2", BINARY),
    ("packages/ab/json.tar.gz", BINARY),
])
def test_content_type_of_each_kind_of_object(key: str, expected: str) -> None:
    assert content_type(key) == expected
