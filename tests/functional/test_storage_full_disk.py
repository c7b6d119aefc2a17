"""Specification of the storage layer on a full disk: a real tiny tmpfs, mounted by a subprocess."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bandersnatch.errors import StorageError
from bandersnatch.store.atomic import atomic_write, staged


@pytest.fixture
def tiny_tmpfs() -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount permission); skipped when it cannot be had."""
    mountpoint = Path("/tmp") / f"bandersnatch-tmpfs-{uuid.uuid4().hex}"
    mountpoint.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
            capture_output=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {exc}")
    if result.returncode != 0:
        mountpoint.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=10, check=False)
        with contextlib.suppress(OSError):
            mountpoint.rmdir()


def test_full_disk_raises_storage_error_and_keeps_old_content(tiny_tmpfs: Path) -> None:
    staging = tiny_tmpfs / "tmp"
    target = tiny_tmpfs / "web" / "big"
    atomic_write(target, b"old", staging)
    with pytest.raises(StorageError):
        atomic_write(target, b"x" * (1 << 20), staging)
    assert target.read_bytes() == b"old"
    assert list(staging.iterdir()) == []


def test_full_disk_while_streaming_into_staged_file_raises_storage_error(tiny_tmpfs: Path) -> None:
    staging = tiny_tmpfs / "tmp"
    target = tiny_tmpfs / "x.whl"
    with pytest.raises(StorageError), staged(target, staging) as st:
        for _ in range(64):
            st.file.write(b"y" * 8192)
        st.commit()
    assert not target.exists()
    assert list(staging.iterdir()) == []
