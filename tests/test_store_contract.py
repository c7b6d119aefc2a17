"""The contract of ``store.Store`` (see ``bandersnatch/store.py``), held by every store.

Each contract test takes the ``store`` fixture, parametrized over the stores
there are; the tests at the end check what only the filesystem store does
(pruning directories, refusing links).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bandersnatch.errors import StorageError, UnsafePath
from bandersnatch.fsstore import FilesystemStore
from bandersnatch.store import BINARY, HTML, JSON, SIMPLE_JSON, TEXT, Store, content_type


def _filesystem(tmp_path: Path) -> Store:
    return FilesystemStore(tmp_path / "web", tmp_path / "tmp" / "mirror")


STORES = {"filesystem": _filesystem}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield STORES[request.param](tmp_path)


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "web", tmp_path / "tmp" / "mirror")


UNSAFE_KEYS = ["..", "", "/abs", "a//b", "a/../b", "a/./b", "a/", "nul\0here", "simple/\nx"]


def test_published_page_reads_back_whole_with_its_stat(store: Store) -> None:
    stat = store.publish_page("simple/foo/index.html", b"<html>foo</html>\n")
    assert store.read("simple/foo/index.html") == b"<html>foo</html>\n"
    assert stat.size == len(b"<html>foo</html>\n")
    assert store.stat("simple/foo/index.html") == stat


def test_page_published_from_chunks_reads_back_joined(store: Store) -> None:
    store.publish_page("pypi/foo/json", iter([b"{", b'"a":', b"1}"]))
    assert store.read("pypi/foo/json") == b'{"a":1}'


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
        stat = up.commit()
    assert stat.size == 1024
    assert store.read(key) == b"x" * 1000 + b"y" * 24
    assert store.stat(key) == stat


def test_upload_left_without_commit_leaves_nothing(store: Store) -> None:
    with store.upload("packages/ab/cd/foo-1.0.tar.gz") as up:
        up.file.write(b"half a file")
    assert store.read("packages/ab/cd/foo-1.0.tar.gz") is None
    assert list(store.iterate("")) == []


def test_upload_left_by_an_error_leaves_the_old_object(store: Store) -> None:
    store.publish_page("simple/foo/index.html", b"old")
    with pytest.raises(RuntimeError), store.upload("simple/foo/index.html") as up:
        up.file.write(b"new but unfinished")
        raise RuntimeError("killed")
    assert store.read("simple/foo/index.html") == b"old"


def test_delete_says_whether_the_object_was_there(store: Store) -> None:
    store.publish_page("packages/ab/foo.whl", b"wheel")
    assert store.delete("packages/ab/foo.whl") is True
    assert store.read("packages/ab/foo.whl") is None
    assert store.stat("packages/ab/foo.whl") is None
    assert store.delete("packages/ab/foo.whl") is False
    assert store.delete("packages/never/was.whl") is False


def test_iterate_lists_every_key_below_the_prefix_only(store: Store) -> None:
    keys = ["simple/foo/index.html", "simple/foo/index.v1_json", "simple/index.html",
            "simple/b/bar/index.html", "packages/ab/foo.whl", "pypi/foo/json", "last-modified"]
    for key in keys:
        store.publish_page(key, key.encode())
    assert sorted(store.iterate("simple/")) == sorted(k for k in keys if k.startswith("simple/"))
    assert sorted(store.iterate("simple/foo/")) == ["simple/foo/index.html", "simple/foo/index.v1_json"]
    assert sorted(store.iterate("simple/fo")) == ["simple/foo/index.html", "simple/foo/index.v1_json"]
    assert sorted(store.iterate("")) == sorted(keys)
    assert list(store.iterate("nothing/")) == []
    store.delete("simple/foo/index.html")
    assert sorted(store.iterate("simple/foo/")) == ["simple/foo/index.v1_json"]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_key_is_refused_by_every_call(store: Store, key: str) -> None:
    with pytest.raises(UnsafePath):
        store.publish_page(key, b"x")
    with pytest.raises(UnsafePath), store.upload(key):
        pass
    with pytest.raises(UnsafePath):
        store.read(key)
    with pytest.raises(UnsafePath):
        store.stat(key)
    with pytest.raises(UnsafePath):
        store.delete(key)
    assert list(store.iterate("")) == []


@pytest.mark.parametrize("prefix", ["../", "a//", "/abs/"])
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


# ---------------------------------------------------------------- the filesystem store only


def test_filesystem_delete_prunes_emptied_directories_up_to_the_top_prefix(fs_store: FilesystemStore) -> None:
    fs_store.publish_page("packages/ab/cd/foo.whl", b"1")
    fs_store.publish_page("packages/ab/cd/foo.whl.metadata", b"2")
    fs_store.delete("packages/ab/cd/foo.whl")
    assert (fs_store.web / "packages" / "ab" / "cd").is_dir()  # the metadata is still there
    fs_store.delete("packages/ab/cd/foo.whl.metadata")
    assert not (fs_store.web / "packages" / "ab").exists()
    assert (fs_store.web / "packages").is_dir()


def test_filesystem_delete_of_a_gone_object_prunes_what_a_killed_delete_left(
        fs_store: FilesystemStore) -> None:
    (fs_store.web / "simple" / "foo").mkdir(parents=True)
    assert fs_store.delete("simple/foo/index.html") is False
    assert not (fs_store.web / "simple" / "foo").exists()
    assert (fs_store.web / "simple").is_dir()


def test_filesystem_publish_through_a_linked_directory_is_refused(fs_store: FilesystemStore,
                                                                  tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fs_store.web / "simple").mkdir(parents=True)
    os.symlink(elsewhere, fs_store.web / "simple" / "foo")
    with pytest.raises(StorageError):
        fs_store.publish_page("simple/foo/index.html", b"x")
    assert list(elsewhere.iterdir()) == []


def test_filesystem_iterate_follows_no_link(fs_store: FilesystemStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_bytes(b"s")
    fs_store.publish_page("simple/foo/index.html", b"x")
    os.symlink(elsewhere, fs_store.web / "simple" / "linked")
    os.symlink(elsewhere / "secret", fs_store.web / "simple" / "foo" / "index.v1_json")
    assert list(fs_store.iterate("simple/")) == ["simple/foo/index.html"]


def test_filesystem_stamp_is_the_mtime_in_nanoseconds(fs_store: FilesystemStore) -> None:
    stat = fs_store.publish_page("simple/foo/index.html", b"page")
    assert stat.stamp == (fs_store.web / "simple" / "foo" / "index.html").stat().st_mtime_ns
    assert list((fs_store.staging).iterdir()) == []  # nothing staged is left behind
