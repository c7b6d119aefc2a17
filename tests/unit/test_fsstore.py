"""What only the filesystem store does (the shared contract is in ``test_store_contract.py``):
pruning the directories a delete empties, refusing links, stamping with the mtime."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bandersnatch.errors import StorageError
from bandersnatch.store.filesystem import FilesystemStore


@pytest.fixture
def fs_store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "web", tmp_path / "tmp" / "mirror")



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
    assert fs_store.delete("simple/foo/index.html") is None
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
