"""Failures delay the mirror, never corrupt it, and never hold other projects back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import (
    MirrorSetup,
    assert_mirror_matches,
    check_page_links,
    page_dir,
    temp_files,
    write_config,
)

from bandersnatch.errors import StorageError
from bandersnatch.store.filesystem import FilesystemStore
from bandersnatch.store.protocol import ObjectStat


def todo_entries(root: Path) -> dict[str, int]:
    lines = (root / "todo").read_text().splitlines()
    return {name: int(serial) for name, serial in (line.split() for line in lines[1:])}


def test_stale_page_is_retried_with_cache_busting_then_synced(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.stale("Alpha-Lib", times=1)
    upstream.reset_requests()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    pages = [r.path for r in upstream.requests if r.path.startswith("/simple/alpha-lib/")]
    assert len(pages) == 2 and "?" in pages[1]


def test_stale_page_that_stays_stale_is_left_in_todo_while_others_sync(
    upstream: Upstream, synced: MirrorSetup, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.add_wheel("beta", "0.6")
    upstream.stale("Alpha-Lib", times=10)
    assert synced.run() == 1
    assert "1 project(s) FAILED" in caplog.records[-1].getMessage()
    assert list(todo_entries(synced.root)) == ["Alpha-Lib"]
    assert int((synced.root / "state").read_text()) == upstream.serial
    assert list(synced.web.rglob("beta-0.6-py3-none-any.whl"))  # the other change synced
    assert check_page_links(page_dir(synced.web, "alpha-lib") / "index.html") == []
    upstream.clear_faults()
    assert synced.run() == 0
    assert not (synced.root / "todo").exists()
    assert_mirror_matches(upstream, synced.web)


def test_bad_hash_is_rejected_kept_nowhere_and_retried_next_run(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    bad = upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.corrupt("Alpha-Lib", bad.filename)
    assert synced.run() == 1
    assert not list(synced.web.rglob(bad.filename))
    assert temp_files(synced.root) == []
    assert "Alpha-Lib" in todo_entries(synced.root)
    # The next run still fails for alpha-lib but syncs a new change elsewhere.
    upstream.add_wheel("beta", "0.7")
    assert synced.run() == 1
    assert list(synced.web.rglob("beta-0.7-py3-none-any.whl"))
    assert list(todo_entries(synced.root)) == ["Alpha-Lib"]
    upstream.clear_faults()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)


def test_truncated_download_is_retried_and_leaves_no_temp_file(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    new = upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.truncate(new.filename, times=1)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    upstream.truncate(new.filename, times=None)
    upstream.add_wheel("Alpha-Lib", "4.0")
    (mirror.root / "state").write_text("0\n")  # make the next run resync alpha-lib's truncated file
    next(mirror.web.rglob(new.filename)).unlink()
    (page_dir(mirror.web, "alpha-lib") / "index.v1_json").unlink()
    assert mirror.run() == 1
    assert temp_files(mirror.root) == []


def test_corrupt_todo_is_removed_and_the_state_is_used(
    upstream: Upstream, synced: MirrorSetup, caplog: pytest.LogCaptureFixture
) -> None:
    (synced.root / "todo").write_text("this is not a serial\nfoo\n")
    upstream.add_wheel("beta", "0.6")
    assert synced.run() == 0
    assert any("Removing corrupt" in r.getMessage() for r in caplog.records)
    assert_mirror_matches(upstream, synced.web)


@pytest.mark.parametrize("content", ["", "\n", "12\nno-serial-here\n"])
def test_empty_or_malformed_todo_never_blocks_the_mirror(synced: MirrorSetup, content: str) -> None:
    (synced.root / "todo").write_text(content)
    assert synced.run() == 0
    assert not (synced.root / "todo").exists()


def test_stop_on_error_stops_early_and_keeps_the_rest_pending(
    tmp_path: Path, upstream: Upstream
) -> None:
    first = upstream.add_wheel("proj00", "1.0")
    for i in range(1, 20):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.corrupt("proj00", first.filename)  # fails at once: a hash mismatch is not retried
    mirror = write_config(tmp_path, upstream.url, stop_on_error="true", workers="1")
    assert mirror.run() == 1
    pending = todo_entries(mirror.root)
    assert "proj00" in pending and len(pending) > 1
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_second_run_is_refused_while_the_lock_is_held(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    mirror.root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); "
         "l.acquire(); print('held', flush=True); time.sleep(60)", str(mirror.root / ".lock")],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        proc = mirror.run_subprocess()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 3
        assert b"holds" in err and b"Traceback" not in err
        assert not (mirror.web / "simple" / "index.html").exists()
    finally:
        holder.kill()
        holder.wait()
    # A dead holder leaves no lock behind.
    assert mirror.run() == 0


def wait_for_progress(journal: Path, lines: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") > lines:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def test_run_killed_mid_sync_resumes_without_redoing_finished_projects(
    tmp_path: Path, upstream: Upstream
) -> None:
    for i in range(30):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.latency = 0.05
    mirror = write_config(tmp_path, upstream.url, workers="2")
    proc = mirror.run_subprocess()
    wait_for_progress(mirror.root / "todo.journal", 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (mirror.root / "state").exists()
    for page in (mirror.web / "simple").glob("*/index.html"):
        assert check_page_links(page) == []
    done_before = len(list((mirror.web / "simple").glob("*/index.v1_json")))
    upstream.latency = 0.0
    upstream.add_wheel("proj05", "2.0")  # a change that arrives meanwhile is not lost
    upstream.reset_requests()
    assert mirror.run() == 0
    assert upstream.count_requests("/simple/") <= 30 - done_before + 8 + 1
    # The changelog, and upstream's own serial (proj05's change is above the last it reported):
    # no full listing, the todo is resumed.
    assert upstream.count_requests("/pypi", "POST") == 2
    assert_mirror_matches(upstream, mirror.web)
    assert temp_files(mirror.root) == []


def test_page_without_a_serial_is_refused_and_files_are_kept(upstream: Upstream, synced: MirrorSetup) -> None:
    # A proxy's error page served with 200 looks like an empty project; mirroring it would delete files.
    upstream.add_wheel("beta", "0.6")
    upstream.raw_page("beta", b"<html><body>Service temporarily unavailable</body></html>", "text/html", None)
    assert synced.run() == 1
    assert list(synced.web.rglob("beta-0.5.tar.gz"))
    assert "beta" in todo_entries(synced.root)
    upstream.clear_faults()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)


def test_a_project_stopped_between_its_two_page_writes_is_named_by_the_root_index_later(
    upstream: Upstream, synced: MirrorSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk can stop a sync after a project's JSON page and before its HTML page.
    upstream.add_wheel("newcomer", "1.0")

    real_publish = FilesystemStore.publish_page

    def disk_full_for_newcomers_html(store: FilesystemStore, key: str,
                                     data: bytes | Iterable[bytes]) -> ObjectStat:
        if key == "simple/newcomer/index.html":
            raise StorageError(f"cannot write {store.path(key)}: No space left on device")
        return real_publish(store, key, data)

    monkeypatch.setattr(FilesystemStore, "publish_page", disk_full_for_newcomers_html)
    assert synced.run() == 1
    assert (page_dir(synced.web, "newcomer") / "index.v1_json").is_file()
    monkeypatch.setattr(FilesystemStore, "publish_page", real_publish)
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)  # the root index names newcomer
