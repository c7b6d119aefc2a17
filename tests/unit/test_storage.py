"""Specification of the storage layer: confined paths, atomic writes, staging hygiene, pruning."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bandersnatch.errors import LinkInMirror, StorageError, UnsafePath
from bandersnatch.formats.segment import check_segment
from bandersnatch.store import atomic as storage
from bandersnatch.store.atomic import (
    atomic_write,
    clear_staging,
    confined,
    move_staged,
    open_new_text,
    prune_empty_dirs,
    remove_file,
    staged,
)

# ---------------------------------------------------------------- confined


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([], id="empty"),
        pytest.param([".."], id="dotdot"),
        pytest.param(["a", "..", "..", "b"], id="dotdot-inside"),
        pytest.param(["."], id="dot"),
        pytest.param([""], id="empty-segment"),
        pytest.param(["a/../../b"], id="slash-inside-segment"),
        pytest.param(["/etc/passwd"], id="absolute"),
        pytest.param(["a\\..\\b"], id="backslash"),
        pytest.param(["a\0b"], id="nul"),
        pytest.param(["a\nb"], id="newline"),
        pytest.param(["\x1f"], id="control"),
        pytest.param(["x" * 256], id="too-long"),
        pytest.param(["é" * 128], id="too-long-in-utf8"),
        pytest.param(["\udcff"], id="lone-surrogate"),
    ],
)
def test_confined_refuses_anything_that_could_escape(tmp_path: Path, parts: list[str]) -> None:
    with pytest.raises(UnsafePath):
        confined(tmp_path, parts)


@pytest.mark.parametrize(
    "parts",
    [["a"], ["ab", "cd", "x-1.0.tar.gz"], ["..a"], ["a.."], ["...."], ["x" * 255], ["café"], ["a b", "c#d"]],
)
def test_confined_joins_safe_segments_below_base(tmp_path: Path, parts: list[str]) -> None:
    path = confined(tmp_path, parts)
    assert path == tmp_path.joinpath(*parts)
    assert tmp_path in path.parents


def test_check_segment_returns_the_segment_unchanged() -> None:
    assert check_segment("x-1.0.tar.gz") == "x-1.0.tar.gz"


# ---------------------------------------------------------------- atomic_write / staged


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    return tmp_path / "tmp" / "owner"


def test_atomic_write_creates_file_and_parents(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "web" / "simple" / "x" / "index.html"
    atomic_write(target, b"hello", staging)
    assert target.read_bytes() == b"hello"
    assert list(staging.iterdir()) == []


def test_atomic_write_replaces_content_and_leaves_no_temp_file(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old content that is longer")
    atomic_write(target, b"new", staging)
    assert target.read_bytes() == b"new"
    assert list(staging.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", "tmp"]


def test_atomic_write_renames_so_open_readers_keep_old_bytes(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "page"
    target.write_bytes(b"old")
    with target.open("rb") as reader:
        atomic_write(target, b"new", staging)
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new"


def test_written_files_are_world_readable(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"x", staging)
    assert target.stat().st_mode & 0o777 == 0o644


def test_exception_inside_staged_block_leaves_target_untouched_and_staging_empty(
    tmp_path: Path, staging: Path
) -> None:
    target = tmp_path / "x.tar.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="download failed"), staged(target, staging) as st:
        st.file.write(b"partial new bytes")
        raise RuntimeError("download failed")
    assert target.read_bytes() == b"old"
    assert list(staging.iterdir()) == []


def test_oserror_inside_staged_block_becomes_storage_error(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "x"
    with pytest.raises(StorageError), staged(target, staging):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists()
    assert list(staging.iterdir()) == []


def test_staged_block_without_commit_discards(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "x"
    with staged(target, staging) as st:
        st.file.write(b"never committed")
    assert not target.exists()
    assert list(staging.iterdir()) == []


def test_staged_temp_file_lives_in_staging_until_commit(tmp_path: Path, staging: Path) -> None:
    target = tmp_path / "x"
    with staged(target, staging) as st:
        st.file.write(b"data")
        assert st.temp.parent == staging
        assert not target.exists()
        st.commit()
        assert target.read_bytes() == b"data"
    assert list(staging.iterdir()) == []


def test_a_staging_directory_that_is_a_file_raises_storage_error(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.write_bytes(b"")
    with pytest.raises(StorageError, match="it is a file, not a directory"):
        atomic_write(tmp_path / "out" / "file", b"data", staging)


@pytest.mark.parametrize("where", ["target-parent-is-a-file", "target-is-a-dir"])
def test_a_target_path_taken_by_the_other_kind_is_that_files_failure_not_the_disks(
    tmp_path: Path, where: str
) -> None:
    """Two upstream URLs need one path as a file and as a directory: UnsafePath, failing one project."""
    staging = tmp_path / "staging"
    target = tmp_path / "out" / "file"
    if where == "target-parent-is-a-file":
        target.parent.write_bytes(b"")
        message = f"cannot store {target}: {target.parent} is a file, not a directory"
    else:
        (target / "inside").mkdir(parents=True)
        message = f"cannot store {target}: it is a directory, not a file"
    with pytest.raises(UnsafePath) as raised:
        atomic_write(target, b"data", staging)
    assert str(raised.value) == message
    assert not isinstance(raised.value, StorageError)
    assert list(staging.iterdir()) == []
    assert (target / "inside").is_dir() if where == "target-is-a-dir" else target.parent.read_bytes() == b""


# ---------------------------------------------------------------- clear_staging


def test_clear_staging_removes_leftovers_of_a_killed_run(tmp_path: Path) -> None:
    staging = tmp_path / "tmp" / "owner"
    staging.mkdir(parents=True)
    (staging / "stage-abc").write_bytes(b"half a file")
    (staging / "stage-def").write_bytes(b"")
    nested = staging / "leftover-dir" / "deeper"
    nested.mkdir(parents=True)
    (nested / "f").write_bytes(b"x")
    outside = tmp_path / "keep-me"
    outside.write_bytes(b"x")
    (staging / "link").symlink_to(outside)
    assert clear_staging(staging) == 4
    assert list(staging.iterdir()) == []
    assert outside.read_bytes() == b"x"


def test_clear_staging_of_missing_dir_is_zero(tmp_path: Path) -> None:
    assert clear_staging(tmp_path / "nope") == 0


def test_clear_staging_does_not_follow_a_symlinked_directory(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_bytes(b"x")
    (staging / "dirlink").symlink_to(precious, target_is_directory=True)
    clear_staging(staging)
    assert (precious / "data").read_bytes() == b"x"
    assert list(staging.iterdir()) == []


# ---------------------------------------------------------------- remove_file / prune_empty_dirs


def test_remove_file_reports_whether_it_removed(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    assert remove_file(f, tmp_path / "tmp" / "owner") is True
    assert remove_file(f, tmp_path / "tmp" / "owner") is False


def test_prune_empty_dirs_removes_empty_chain_but_never_stop(tmp_path: Path) -> None:
    stop = tmp_path / "packages"
    leaf = stop / "ab" / "cd" / "digest"
    leaf.mkdir(parents=True)
    prune_empty_dirs(leaf, stop, tmp_path / "tmp" / "owner")
    assert stop.is_dir()
    assert list(stop.iterdir()) == []


def test_prune_empty_dirs_stops_at_first_non_empty_dir(tmp_path: Path) -> None:
    stop = tmp_path / "packages"
    leaf = stop / "ab" / "cd" / "digest"
    leaf.mkdir(parents=True)
    (stop / "ab" / "sibling.whl").write_bytes(b"x")
    prune_empty_dirs(leaf, stop, tmp_path / "tmp" / "owner")
    assert not (stop / "ab" / "cd").exists()
    assert (stop / "ab" / "sibling.whl").is_file()


def test_prune_empty_dirs_leaves_non_empty_start_alone(tmp_path: Path) -> None:
    stop = tmp_path / "packages"
    start = stop / "ab"
    start.mkdir(parents=True)
    (start / "f").write_bytes(b"x")
    prune_empty_dirs(start, stop, tmp_path / "tmp" / "owner")
    assert (start / "f").is_file()


@pytest.mark.parametrize("start_rel", [".", "..", "../../elsewhere"])
def test_prune_empty_dirs_never_touches_stop_or_outside_it(tmp_path: Path, start_rel: str) -> None:
    stop = tmp_path / "web" / "packages"
    stop.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    start = (stop / start_rel).resolve() if start_rel != "." else stop
    prune_empty_dirs(start, stop, tmp_path / "tmp" / "owner")
    assert stop.is_dir()
    assert (tmp_path / "elsewhere").is_dir()
    assert os.path.isdir(tmp_path / "web")


# ---------------------------------------------------------------- symbolic links inside the mirror directory


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the mirror with a file in it: no write or delete may reach it."""
    path = tmp_path / "outside"
    (path / "cd").mkdir(parents=True)
    (path / "cd" / "x.whl").write_bytes(b"outside")
    return path


def contents(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("linked", ["web/packages/ab", "web/packages", "intents"])
def test_no_write_or_delete_goes_through_a_symlinked_directory_inside_the_mirror(
    tmp_path: Path, outside: Path, linked: str
) -> None:
    mirror = tmp_path / "mirror"
    staging = mirror / "tmp" / "mirror"
    link = mirror / linked
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    below = link / "cd" / "x.whl"
    before = contents(outside)
    message = f"{link} is a symbolic link: bandersnatch follows no link inside the mirror directory {mirror}"
    with pytest.raises(StorageError, match=re.escape(message)):
        atomic_write(below, b"mirror", staging)
    with pytest.raises(StorageError, match=re.escape(message)):
        remove_file(below, staging)
    with pytest.raises(StorageError, match=re.escape(message)):
        move_staged(staging / "f", below, staging)
    prune_empty_dirs(link / "cd", link.parent, staging)
    assert contents(outside) == before
    assert list(staging.iterdir()) == []


def test_a_symlink_in_place_of_a_file_is_replaced_or_removed_never_written_through(
    tmp_path: Path, outside: Path
) -> None:
    staging = tmp_path / "tmp" / "owner"
    target = tmp_path / "web" / "page"
    target.parent.mkdir()
    target.symlink_to(outside / "cd" / "x.whl")
    atomic_write(target, b"ours", staging)
    assert not target.is_symlink() and target.read_bytes() == b"ours"
    target.unlink()
    target.symlink_to(outside / "cd" / "x.whl")
    # Below web/ a link is the operator's to fix (pages may be served through it): never deleted.
    with pytest.raises(LinkInMirror, match=f"{target} is a symbolic link"):
        remove_file(target, staging)
    assert target.is_symlink()
    bookkeeping = tmp_path / "journal"  # outside web/, a link in a file's place is removed
    bookkeeping.symlink_to(outside / "cd" / "x.whl")
    assert remove_file(bookkeeping, staging) is True
    assert not bookkeeping.is_symlink()
    assert contents(outside) == {"cd/x.whl": b"outside"}


def test_a_file_opened_for_appending_is_never_a_symlink(tmp_path: Path, outside: Path) -> None:
    staging = tmp_path / "tmp" / "owner"
    journal = tmp_path / "todo.journal"
    journal.symlink_to(outside / "cd" / "x.whl")
    with pytest.raises(StorageError, match=f"{journal} is a symbolic link"):
        open_new_text(journal, staging)
    assert contents(outside) == {"cd/x.whl": b"outside"}
    journal.unlink()
    with open_new_text(journal, staging) as f:
        f.write("target 5\n")
    assert journal.read_text() == "target 5\n"


@pytest.mark.parametrize("linked", ["tmp", "tmp/owner"])
def test_a_symlinked_staging_directory_is_neither_emptied_nor_written(
    tmp_path: Path, outside: Path, linked: str
) -> None:
    staging = tmp_path / "tmp" / "owner"
    (tmp_path / linked).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / linked).symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match=f"{tmp_path / linked} is a symbolic link"):
        clear_staging(staging)
    with pytest.raises(StorageError, match=f"{tmp_path / linked} is a symbolic link"):
        atomic_write(tmp_path / "state", b"1\n", staging)
    assert contents(outside) == {"cd/x.whl": b"outside"}


@pytest.mark.parametrize("linked", ["mirror", "mirror/web"])
def test_the_mirror_directory_and_its_web_may_be_symlinks_an_admin_made(tmp_path: Path, linked: str) -> None:
    real = tmp_path / "data"
    real.mkdir()
    (tmp_path / linked).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / linked).symlink_to(real, target_is_directory=True)
    staging = tmp_path / "mirror" / "tmp" / "mirror"
    target = tmp_path / "mirror" / "web" / "packages" / "ab" / "x.whl"
    atomic_write(target, b"ours", staging)
    assert target.read_bytes() == b"ours"
    assert remove_file(target, staging) is True
    prune_empty_dirs(target.parent, tmp_path / "mirror" / "web" / "packages", staging)
    assert not target.parent.exists() and (tmp_path / "mirror" / "web" / "packages").is_dir()
    assert clear_staging(staging) == 0


# ---------------------------------------------------------------- a prune racing a write


def _prune_once_at(point: str, packages: Path, staging: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make another thread's prune of ``packages/ab/cd`` land at ``point`` of the next write below it.

    The directories are empty at that moment (the write's file is not there yet), so the
    prune (as a sync deleting another file of ``ab/cd`` runs it) removes them.
    """
    pruned: list[Path] = []
    cd = packages / "ab" / "cd"

    def prune(path: Path) -> None:
        if not pruned:
            pruned.append(path)
            prune_empty_dirs(path, packages, staging)

    if point == "before-its-directory-is-made":
        real_open_child = storage._open_child

        def open_child(fd: int, name: str, path: Path, *args: Any) -> int | None:
            if name == "x":
                prune(cd)
            return real_open_child(fd, name, path, *args)

        monkeypatch.setattr(storage, "_open_child", open_child)
    elif point == "just-after-its-directory-is-made":
        real_mkdir = os.mkdir

        def mkdir(name: Any, *args: Any, **kwargs: Any) -> None:
            real_mkdir(name, *args, **kwargs)
            if name == "x":
                prune(cd / "x")

        monkeypatch.setattr(os, "mkdir", mkdir)
    else:
        real_open_dir = storage._open_dir

        def open_dir(path: Path, staging: Path, *, create: bool, purpose: Path | None = None) -> int | None:
            fd = real_open_dir(path, staging, create=create, purpose=purpose)
            if purpose is not None:
                prune(path)
            return fd

        monkeypatch.setattr(storage, "_open_dir", open_dir)
    return pruned


@pytest.mark.parametrize("point", ["before-its-directory-is-made", "just-after-its-directory-is-made",
                                   "before-the-rename"])
@pytest.mark.parametrize("writer", ["atomic_write", "move_staged"])
def test_a_write_whose_directory_a_concurrent_prune_removes_makes_it_again(
    tmp_path: Path, staging: Path, monkeypatch: pytest.MonkeyPatch, point: str, writer: str
) -> None:
    # Deleting one file prunes its emptied directories while another download commits a file
    # into the same ab/cd bucket; the write used to fail with StorageError, stopping the run.
    packages = tmp_path / "web" / "packages"
    (packages / "ab" / "cd").mkdir(parents=True)  # left empty by the other file's deletion
    target = packages / "ab" / "cd" / "x" / "f-1.0.tar.gz"
    source = staging / "pending" / "f.tar.gz"
    if writer == "move_staged":
        source.parent.mkdir(parents=True)
        source.write_bytes(b"payload")
    pruned = _prune_once_at(point, packages, staging, monkeypatch)
    if writer == "atomic_write":
        atomic_write(target, b"payload", staging)
    else:
        assert move_staged(source, target, staging) is True
    assert pruned, "the prune never ran: the test injects nothing"
    assert target.read_bytes() == b"payload"
    assert [p for p in staging.rglob("*") if p.is_file()] == []
