"""What bounds a download: its bytes, its duration, an interrupt, and an upstream that went away.

Files are stored exactly as the upstream sent them (never content-decoded),
a file whose size the index does not give is cut off at ``max-file-size``,
``global-timeout`` bounds a whole request however slowly its bytes trickle,
SIGTERM abandons downloads in flight at once, and an upstream that stops
answering ends the run with one line instead of failing project by project.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakepypi import SIMPLE_JSON, Upstream, blob_path
from support.mirrortools import assert_mirror_matches, pending_work, temp_files, write_config

from bandersnatch.errors import UpstreamError, UpstreamUnreachable
from bandersnatch.formats.layout import UrlPolicy
from bandersnatch.store import atomic as storage
from bandersnatch.upstream.master import Master

CHUNK = 1 << 16


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def staged_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size every staged temporary file had when it was committed or thrown away."""
    sizes: list[int] = []

    class Recording(storage.StagedFile):
        def commit(self) -> None:
            with contextlib.suppress(ValueError):
                sizes.append(self.file.tell())
            super().commit()

        def discard(self) -> None:
            with contextlib.suppress(ValueError):  # already closed by commit
                sizes.append(self.file.tell())
            super().discard()

    monkeypatch.setattr(storage, "StagedFile", Recording)
    return sizes


def unsized_page(upstream: Upstream, name: str, path: str) -> None:
    """``name``'s page lists one file at ``path`` without a size (as HTML pages and some JSON do)."""
    upstream.add_project(name)
    filename = path.rsplit("/", 1)[-1]
    entry = {"filename": filename, "url": upstream.url + path, "hashes": {"sha256": "0" * 64}}
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": [entry]}).encode()
    upstream.raw_page(name, body, SIMPLE_JSON, upstream.project_serial(name))


def gzip_of_zeros(mebibytes: int) -> bytes:
    return gzip.compress(b"\0" * (mebibytes << 20), compresslevel=9)


# ---------------------------------------------------------------- bytes: max-file-size, never decoded


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked-endless", "content-length-32M"])
def test_an_unsized_file_is_cut_off_at_max_file_size_and_the_rest_syncs(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, staged_sizes: list[int],
    chunked: bool,
) -> None:
    upstream.add_file("good", "good-1.0.tar.gz", b"good bytes" * 100)
    path = "/packages/aa/endless-1.0.tar.gz"
    unsized_page(upstream, "endless", path)
    # 32 MiB against a cap of 1 MiB; chunked, only the bytes received tell.
    upstream.raw_path(path, b"x" * CHUNK, repeat=512, chunked=chunked)
    mirror = write_config(tmp_path, upstream.url, max_file_size="1M")
    assert mirror.run() == 1
    assert max(staged_sizes) <= (1 << 20) + CHUNK, staged_sizes
    lines = [line for line in errors(caplog) if "endless" in line]
    assert len(lines) == 1 and "max-file-size" in lines[0], errors(caplog)
    assert not (mirror.web / "packages" / "aa").exists()
    assert temp_files(mirror.root) == []
    assert (mirror.web / "simple" / "good" / "index.html").is_file()
    assert set(pending_work(mirror.root)) == {"endless"}


@pytest.mark.parametrize("json_api", [True, False], ids=["sized", "unsized-html"])
def test_a_gzip_encoded_file_is_stored_as_sent_and_never_decoded(
    tmp_path: Path, upstream: Upstream, staged_sizes: list[int], json_api: bool
) -> None:
    # A .tar.gz served with Content-Encoding: gzip (a common server misconfiguration) is the
    # file itself; decoding it would store 64 MiB of zeros, a gzip bomb, instead of the file.
    bomb = gzip_of_zeros(64)
    upstream.json_api = json_api
    upstream.add_file("gz", "gz-1.0.tar.gz", bomb)
    upstream.raw_path(blob_path(bomb, "gz-1.0.tar.gz"), bomb,
                      headers={"Content-Type": "application/x-tar", "Content-Encoding": "gzip"})
    mirror = write_config(tmp_path, upstream.url, max_file_size="1M")
    assert mirror.run() == 0
    assert max(staged_sizes) <= len(bomb) < 1 << 20
    assert_mirror_matches(upstream, mirror.web)
    stored = next((mirror.web / "packages").rglob("gz-1.0.tar.gz")).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(bomb).hexdigest()


# ---------------------------------------------------------------- time: global-timeout


def test_a_file_trickling_past_global_timeout_fails_alone_in_bounded_time(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.add_file("good", "good-1.0.tar.gz", b"good bytes" * 100)
    upstream.add_file("slowpoke", "slowpoke-1.0.tar.gz", b"s" * 400)
    entry = upstream.get_file("slowpoke", "slowpoke-1.0.tar.gz")
    upstream.trickle(entry.path, 40)  # 10 s for the file, a byte every 25 ms: no read ever times out
    mirror = write_config(tmp_path, upstream.url, timeout="5", global_timeout="1")
    started = time.monotonic()
    assert mirror.run() == 1
    assert time.monotonic() - started < 4
    lines = [line for line in errors(caplog) if "slowpoke" in line]
    assert len(lines) == 1 and "global-timeout" in lines[0], errors(caplog)
    assert upstream.count_requests(entry.path) == 1  # not retried: it would only take as long again
    assert temp_files(mirror.root) == []
    assert set(pending_work(mirror.root)) == {"slowpoke"}
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- interrupts


@pytest.mark.parametrize("rate", [1.0, 0.05], ids=["1-byte-per-s", "stalled-20s-per-byte"])
def test_sigterm_abandons_a_trickling_download_within_seconds(
    tmp_path: Path, upstream: Upstream, rate: float
) -> None:
    upstream.add_file("good", "good-1.0.tar.gz", b"good bytes" * 100)
    upstream.add_file("slowpoke", "slowpoke-1.0.tar.gz", b"s" * 100)
    entry = upstream.get_file("slowpoke", "slowpoke-1.0.tar.gz")
    upstream.trickle(entry.path, rate)
    # The per-read timeout is longer than the wait between bytes: only cancellation can end it.
    mirror = write_config(tmp_path, upstream.url, timeout="30")
    proc = mirror.run_subprocess()
    deadline = time.monotonic() + 30
    while upstream.count_requests(entry.path) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the first byte(s) are in the staged file
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < 3, f"exit came {took:.1f}s after SIGTERM"
    assert b"Traceback" not in err
    last_line = err.decode().strip().splitlines()[-1]
    assert last_line.endswith("interrupted; progress is saved, run again to finish")
    assert not list((mirror.web / "packages").rglob("slowpoke-*"))
    assert temp_files(mirror.root) == []
    assert "slowpoke" in pending_work(mirror.root)
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- an upstream that goes away


@contextlib.contextmanager
def stopped_after(upstream: Upstream, pages: int) -> Iterator[None]:
    """Stop the upstream (connections refused) once it has answered ``pages`` project pages."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if upstream.count_requests("/simple/") >= pages:
                upstream.stop()
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def test_an_upstream_that_goes_away_mid_run_stops_it_with_one_line_and_loses_nothing(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"p{i:03d}" for i in range(100)]
    for name in names:
        upstream.add_file(name, f"{name}-1.0.tar.gz", name.encode() * 50)
    upstream.latency = 0.005
    mirror = write_config(tmp_path, upstream.url)
    started = time.monotonic()
    with stopped_after(upstream, 5):
        assert mirror.run() == 1
    assert time.monotonic() - started < 10
    lines = errors(caplog)
    assert len(lines) <= 3, lines
    assert len([line for line in lines if "unreachable" in line and "synced" not in line]) == 1, lines
    owed = set(pending_work(mirror.root))
    synced = {p.name for p in (mirror.web / "simple").iterdir() if p.is_dir()}
    assert owed | synced >= set(names) and len(owed) > 50
    upstream.start()  # back, on another port
    upstream.latency = 0.0
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the jittered back-off sleeps (the jitter factor becomes 0)."""
    monkeypatch.setattr("bandersnatch.upstream.transport.random.uniform", lambda low, high: 0.0)


def test_an_upstream_that_accepts_and_never_answers_stops_the_run_with_one_line_and_loses_nothing(
    tmp_path: Path, upstream: Upstream, no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"p{i:03d}" for i in range(60)]
    for name in names:
        upstream.add_file(name, f"{name}-1.0.tar.gz", name.encode() * 50)
    upstream.slow("/simple/", 10.0, times=None)  # XML-RPC answers; every page waits far past timeout
    mirror = write_config(tmp_path, upstream.url, timeout="1")
    assert mirror.run() == 1
    # Stopped after max(10, attempts x workers) = 10 timeouts in a row, plus what was in flight
    # then: not every project tried 3 times (180 requests).
    asked = upstream.count_requests("/simple/")
    assert 10 <= asked <= 10 + 3, asked
    lines = errors(caplog)
    [stop] = [line for line in lines if "unreachable" in line and "synced" not in line]
    assert "10 requests in a row got no answer" in stop and "timed out (no answer within 1 s)" in stop
    # Before it, at most the 3 projects whose own 3 tries ran out (9 timeouts) say so themselves.
    before = [line for line in lines if "unreachable" not in line]
    assert len(before) <= 3 and all("timed out" in line for line in before), lines
    assert set(pending_work(mirror.root)) == set(names)
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_one_project_whose_page_never_comes_fails_alone_among_healthy_ones(
    tmp_path: Path, upstream: Upstream, no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"p{i:03d}" for i in range(20)]
    for name in names:
        upstream.add_file(name, f"{name}-1.0.tar.gz", name.encode() * 50)
    upstream.slow("/simple/p007/", 10.0, times=None)
    mirror = write_config(tmp_path, upstream.url, timeout="1")
    assert mirror.run() == 1
    assert upstream.count_requests("/simple/p007/") == 3  # its own retries, no more
    assert not [line for line in errors(caplog) if "unreachable" in line]
    assert set(pending_work(mirror.root)) == {"p007"}
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


@pytest.mark.parametrize("silence", ["reset", "never-answered"])
def test_only_answerless_requests_in_a_row_make_the_upstream_unreachable(
    upstream: Upstream, tmp_path: Path, silence: str
) -> None:
    master = Master(upstream.url, timeout=5, workers=1, max_page_bytes=1 << 20, attempts=1,
                    policy=UrlPolicy.for_master(upstream.url, (), True), spool_dir=tmp_path)
    assert master.transport.unreachable_after == 10

    def serial_after_resets(resets: int) -> None:
        if silence == "reset":
            upstream.reset("/pypi", times=resets)
        else:  # connected, then no answer within the timeout (a read timeout)
            upstream.slow("/pypi", 2.0, times=resets)
            master.transport.timeout = 0.1  # only while nothing answers: the answers below get 5 s
        for _ in range(resets):
            with pytest.raises(UpstreamError) as failed:
                master.changelog_last_serial()
            assert not isinstance(failed.value, UpstreamUnreachable)
        master.transport.timeout = 5

    serial_after_resets(9)
    upstream.fail("/pypi", 503, times=1)  # an error status is still an answer: the count starts again
    with pytest.raises(UpstreamError):
        master.changelog_last_serial()
    serial_after_resets(9)
    assert master.changelog_last_serial() == upstream.serial
    serial_after_resets(9)
    upstream.reset("/pypi", times=1)  # a reset after nine read timeouts: the tenth in a row
    with pytest.raises(UpstreamUnreachable, match="unreachable: 10 requests in a row got no answer"):
        master.changelog_last_serial()
    sent = upstream.count_requests()
    with pytest.raises(UpstreamUnreachable):  # from now on, without asking
        master.changelog_last_serial()
    assert upstream.count_requests() == sent
    master.close()


@pytest.mark.parametrize("honour_range", [True, False])
def test_a_download_cut_off_part_way_resumes_from_the_staged_bytes(
    tmp_path: Path, upstream: Upstream, honour_range: bool
) -> None:
    content = bytes(range(256)) * (4 * 4096)  # 4 MiB
    upstream.add_file("big", "big-1.0.tar.gz", content, version="1.0")
    upstream.honour_range = honour_range
    upstream.truncate("big-1.0.tar.gz", keep=0.9)  # the connection drops after 90%
    mirror = write_config(tmp_path, upstream.url)
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    sent = sum(r.sent for r in upstream.requests if r.path.endswith("big-1.0.tar.gz"))
    refetched = sent - len(content)
    if honour_range:
        # One Range request for the last 10%: nothing fetched twice, the sha256 still whole.
        assert refetched == 0
        assert [k for k, _ in upstream.fault_log] == ["truncate", "range"]
    else:
        # A server that ignores Range gets a clean restart: the 90% are fetched again.
        assert refetched == int(len(content) * 0.9)


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "chunked"])
def test_a_metadata_file_is_capped_like_a_page_not_like_a_file(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, staged_sizes: list[int],
    chunked: bool,
) -> None:
    # A .metadata is a few KB of text: max-file-size (GBs) is no bound for it, max-page-size is.
    upstream.add_file("good", "good-1.0.tar.gz", b"good bytes" * 100)
    upstream.add_file("fat", "fat-1.0.tar.gz", b"fat bytes" * 100, metadata=b"Metadata-Version: 2.1\n")
    upstream.raw_path(upstream.get_file("fat", "fat-1.0.tar.gz").metadata_path, b"x" * CHUNK, repeat=64,
                      chunked=chunked)  # 4 MiB against a page cap of 256 KiB
    mirror = write_config(tmp_path, upstream.url, max_page_size="256K")
    assert mirror.run() == 1
    assert max(staged_sizes) <= (256 << 10) + CHUNK, staged_sizes
    lines = [line for line in errors(caplog) if "fat" in line]
    assert len(lines) == 1 and "max-page-size" in lines[0], errors(caplog)
    assert not (mirror.web / "simple" / "fat").exists()
    assert (mirror.web / "simple" / "good" / "index.html").is_file()
    assert set(pending_work(mirror.root)) == {"fat"}
