"""Faults delay the mirror but never corrupt it or lose a change.

Server errors, resets, timeouts, short bodies, stale pages, bad hashes and
redirects off the upstream, one at a time and then all at once, and a disk
that fills up.  ``tests/functional/test_mirror_failures.py`` has the older cases (stale
page retried, bad file hash, truncated file, stop-on-error, lock); they are
not repeated here.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.fakepypi import Upstream, normalize
from support.mirrortools import (
    MirrorSetup,
    WebReader,
    assert_mirror_matches,
    pending_work,
    remount,
    temp_files,
    tmpfs,
    write_config,
)

from bandersnatch.formats.layout import UrlPolicy
from bandersnatch.ledger.state import StateFiles
from bandersnatch.upstream.master import Master


def small_corpus(upstream: Upstream, projects: int = 4, seed: int = 0) -> None:
    rng = random.Random(seed)
    for i in range(projects):
        name = f"proj{i}"
        upstream.add_file(name, f"{name}-1.0.tar.gz", rng.randbytes(3000))
        upstream.add_file(name, f"{name}-1.0-py3-none-any.whl", rng.randbytes(2000),
                          metadata=f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode())


def file_path(upstream: Upstream, project: str, filename: str) -> str:
    return upstream.get_file(project, filename).path


def request_starts(upstream: Upstream, prefix: str, method: str | None = None) -> list[float]:
    return [r.started for r in upstream.requests
            if r.path.startswith(prefix) and (method is None or r.method == method)]


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def todo_names(root: Path) -> set[str]:
    return set(pending_work(root))


@pytest.fixture
def mirror(tmp_path: Path, upstream: Upstream) -> MirrorSetup:
    small_corpus(upstream)
    return write_config(tmp_path, upstream.url)


# ---------------------------------------------------------------- back-off (Master alone)


def _master(**kwargs: Any) -> Master:
    return Master("http://127.0.0.1:9", timeout=1, workers=1, max_page_bytes=1 << 20,
                  policy=UrlPolicy.for_master("http://127.0.0.1:9", (), True),
                  spool_dir=Path("/nonexistent"), **kwargs)  # these never ask XML-RPC


def test_backoff_is_exponential_with_jitter_and_retry_after_wins() -> None:
    slept: list[float] = []
    m = _master(backoff=0.5, sleep=slept.append)
    for attempt in range(4):
        slept.clear()
        for _ in range(200):
            m.transport.sleep_before_retry(attempt, None)
        base = 0.5 * 2**attempt
        assert base * 0.5 <= min(slept) and max(slept) <= base * 1.5
        assert len(set(slept)) > 150  # jitter: clients that failed together do not retry together
        assert base * 0.9 < sum(slept) / len(slept) < base * 1.1
    slept.clear()
    m.transport.sleep_before_retry(0, 1.0)
    m.transport.sleep_before_retry(2, 7.0)
    m.transport.sleep_before_retry(1, 86400.0)  # an absurd Retry-After is capped
    assert slept == [1.0, 7.0, 60.0]
    m.close()


# ---------------------------------------------------------------- 5xx and 429


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_status_on_a_page_is_retried_after_a_backoff(
    mirror: MirrorSetup, upstream: Upstream, status: int
) -> None:
    upstream.fail("/simple/proj1/", status, times=1)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    first, second = request_starts(upstream, "/simple/proj1/")
    assert second - first >= 0.5 * 0.5  # the shortest first back-off: 0.5 s halved by jitter
    assert upstream.fault_log == [(f"fail {status}", "/simple/proj1/")]


@pytest.mark.parametrize("target", ["file", "metadata", "xmlrpc"])
def test_server_error_on_a_file_its_metadata_or_xmlrpc_is_retried(
    mirror: MirrorSetup, upstream: Upstream, target: str
) -> None:
    path = {
        "file": file_path(upstream, "proj2", "proj2-1.0.tar.gz"),
        "metadata": file_path(upstream, "proj2", "proj2-1.0-py3-none-any.whl") + ".metadata",
        "xmlrpc": "/pypi",
    }[target]
    upstream.fail(path, 503, times=2)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    starts = request_starts(upstream, path)
    # XML-RPC: the listing's three tries, then upstream's own serial once (a full sync confirms it).
    assert len(starts) == (4 if target == "xmlrpc" else 3)
    assert starts[2] - starts[1] >= 1.0 * 0.5  # the second back-off is twice the first


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(mirror: MirrorSetup, upstream: Upstream, status: int) -> None:
    upstream.fail("/simple/proj0/", status, times=1, retry_after=1)
    assert mirror.run() == 0
    first, second = request_starts(upstream, "/simple/proj0/")
    assert 1.0 <= second - first < 2.5
    assert_mirror_matches(upstream, mirror.web)


def test_errors_that_outlast_the_retries_leave_the_project_in_todo_while_others_sync(
    mirror: MirrorSetup, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.fail("/simple/proj3/", 429, times=None, retry_after=0)
    assert mirror.run() == 1
    assert todo_names(mirror.root) == {"proj3"}
    assert len(request_starts(upstream, "/simple/proj3/")) == 3
    assert [line for line in error_lines(caplog) if line.startswith("proj3")] == [
        "proj3: page proj3: HTTP 429 (gave up after 3 tries); left in todo for the next run"]
    assert not (mirror.web / "simple" / "proj3").exists()
    assert (mirror.web / "simple" / "proj2" / "index.html").is_file()
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- resets and timeouts


@pytest.mark.parametrize("target", ["page", "file", "xmlrpc"])
def test_connection_reset_is_retried(mirror: MirrorSetup, upstream: Upstream, target: str) -> None:
    path = {"page": "/simple/proj0/", "file": file_path(upstream, "proj0", "proj0-1.0.tar.gz"),
            "xmlrpc": "/pypi"}[target]
    upstream.reset(path, times=2)
    assert mirror.run() == 0
    assert [kind for kind, _ in upstream.fault_log] == ["reset", "reset"]
    assert_mirror_matches(upstream, mirror.web)


def test_a_request_slower_than_the_timeout_is_retried(tmp_path: Path, upstream: Upstream) -> None:
    small_corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, timeout="0.5")
    path = file_path(upstream, "proj1", "proj1-1.0.tar.gz")
    upstream.slow(path, 1.5, times=1)
    upstream.slow("/simple/proj2/", 1.5, times=1)
    assert mirror.run() == 0
    assert len(request_starts(upstream, path)) == 2
    assert_mirror_matches(upstream, mirror.web)
    assert temp_files(mirror.root) == []


def test_a_path_that_always_times_out_fails_alone_and_in_bounded_time(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    small_corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, timeout="0.3")
    path = file_path(upstream, "proj1", "proj1-1.0.tar.gz")
    upstream.slow(path, 1.0, times=None)
    assert mirror.run() == 1
    assert todo_names(mirror.root) == {"proj1"}
    assert "timed out (no answer within" in " ".join(error_lines(caplog))
    assert not list(mirror.web.rglob("proj1-1.0.tar.gz"))
    assert temp_files(mirror.root) == []
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- bodies cut short


@pytest.mark.parametrize("target", ["page", "xmlrpc", "metadata"])
def test_a_body_cut_short_is_detected_by_its_length_and_retried(
    mirror: MirrorSetup, upstream: Upstream, target: str
) -> None:
    path = {"page": "/simple/proj3/", "xmlrpc": "/pypi",
            "metadata": file_path(upstream, "proj3", "proj3-1.0-py3-none-any.whl") + ".metadata"}[target]
    upstream.cut(path, times=2)
    assert mirror.run() == 0
    # A file's retries resume with Range requests ("range"); the cuts are what this test counts.
    assert [kind for kind, _ in upstream.fault_log if kind != "range"] == ["cut", "cut"]
    assert_mirror_matches(upstream, mirror.web)


def test_a_short_file_with_a_matching_content_length_is_caught_by_the_advertised_size(
    mirror: MirrorSetup, upstream: Upstream
) -> None:
    upstream.shorten("proj0-1.0.tar.gz", times=2)  # the JSON page says its size
    assert mirror.run() == 0
    assert len(request_starts(upstream, file_path(upstream, "proj0", "proj0-1.0.tar.gz"))) == 3
    assert_mirror_matches(upstream, mirror.web)


def test_a_short_file_from_an_html_only_upstream_is_caught_by_its_hash(
    mirror: MirrorSetup, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.json_api = False  # no PEP 700 size: only the #sha256= fragment can tell
    upstream.shorten("proj0-1.0.tar.gz", times=1)
    assert mirror.run() == 1
    assert any("does not match the advertised" in line for line in error_lines(caplog))
    assert not list(mirror.web.rglob("proj0-1.0.tar.gz"))
    assert temp_files(mirror.root) == []
    assert todo_names(mirror.root) == {"proj0"}
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- stale pages and bad hashes


def test_a_stale_404_for_a_project_just_created_does_not_lose_it(
    mirror: MirrorSetup, upstream: Upstream
) -> None:
    assert mirror.run() == 0
    upstream.add_project("brand-new")  # the CDN still has the 404 from before it existed
    upstream.stale("brand-new", times=1)
    assert mirror.run() == 0
    pages = [r.path for r in upstream.requests if r.path.startswith("/simple/brand-new/")]
    assert len(pages) == 2 and "?" in pages[1]
    assert_mirror_matches(upstream, mirror.web)


def test_a_page_several_changes_behind_is_not_mirrored(mirror: MirrorSetup, upstream: Upstream) -> None:
    assert mirror.run() == 0
    old_serial = upstream.serial
    upstream.add_file("proj0", "proj0-2.0.tar.gz", b"two" * 500)
    upstream.remove_file("proj0", "proj0-1.0.tar.gz")
    upstream.stale("proj0", times=2, at_serial=old_serial)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_metadata_that_differs_from_its_advertised_hash_is_refused(
    mirror: MirrorSetup, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.corrupt("proj2", "proj2-1.0-py3-none-any.whl.metadata", times=1)
    assert mirror.run() == 1
    assert not list(mirror.web.rglob("proj2-1.0-py3-none-any.whl.metadata"))
    assert not (mirror.web / "simple" / "proj2").exists()
    assert todo_names(mirror.root) == {"proj2"}
    assert any(line.startswith("proj2:") and "sha256" in line for line in error_lines(caplog))
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- redirects


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every host name looked up; anything but 127.0.0.1 is refused here, so no query leaves."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise OSError(f"test refuses to resolve {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield looked_up


def test_a_redirect_within_the_upstream_is_followed_and_still_verified(
    mirror: MirrorSetup, upstream: Upstream
) -> None:
    entry = upstream.get_file("proj0", "proj0-1.0.tar.gz")
    upstream.raw_path("/elsewhere/proj0.tar.gz", entry.content)
    upstream.redirect(entry.path, "/elsewhere/proj0.tar.gz")
    upstream.redirect("/simple/proj1/", "/simple/proj1")  # the fake then sends it back: a loop
    assert mirror.run() == 1
    assert upstream.count_requests("/elsewhere/") == 1
    assert list(mirror.web.rglob("proj0-1.0.tar.gz"))
    # A redirect to other bytes on the same host is followed, and the hash refuses them.
    other = upstream.get_file("proj1", "proj1-1.0.tar.gz")
    upstream.clear_faults()
    upstream.redirect(other.path, entry.path)
    assert mirror.run() == 1
    assert not list(mirror.web.rglob("proj1-1.0.tar.gz"))
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


@pytest.mark.parametrize("where", ["page", "file", "xmlrpc"])
@pytest.mark.parametrize("location", [
    "http://127.0.0.1:{other_port}/x",  # another port is another host
    "http://evil.invalid/packages/x",
    "https://evil.invalid/packages/x",
    "file:///etc/passwd",
    "ftp://127.0.0.1:{port}/packages/x",
    "//evil.invalid/packages/x",  # scheme-relative
    "http://user:pw@127.0.0.1:{port}/packages/x",
    "http://[::1/broken",
])
def test_a_redirect_off_the_upstream_is_refused_before_any_connection(
    mirror: MirrorSetup, upstream: Upstream, no_dns: list[str], caplog: pytest.LogCaptureFixture,
    where: str, location: str,
) -> None:
    with Upstream() as other:
        port = upstream.url.rsplit(":", 1)[1]
        target = location.format(other_port=other.url.rsplit(":", 1)[1], port=port)
        path = {"page": "/simple/proj1/", "file": file_path(upstream, "proj1", "proj1-1.0.tar.gz"),
                "xmlrpc": "/pypi"}[where]
        upstream.redirect(path, target)
        if where == "xmlrpc":  # in auto mode a refused redirect means "no XML-RPC": test_changes.py
            write_config(mirror.root.parent, upstream.url, api_method="xmlrpc")
        assert mirror.run() == 1
        assert other.requests == []
    assert set(no_dns) <= {"127.0.0.1"}
    # requests itself chokes on a malformed Location: that is one clear line too.
    refusals = [line for line in error_lines(caplog) if "refusing redirect" in line
                or "unusable request or answer: ValueError" in line]
    assert len(refusals) == 1, error_lines(caplog)
    assert "pw@" not in caplog.text
    if where != "xmlrpc":
        assert todo_names(mirror.root) == {"proj1"}
        assert (mirror.web / "simple" / "proj0" / "index.html").is_file()
    assert not list(mirror.web.rglob("proj1-1.0.tar.gz"))
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_a_redirect_loop_ends_with_one_line(
    mirror: MirrorSetup, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.redirect("/simple/proj1/", "/simple/proj1")  # the fake answers that with /simple/proj1/
    assert mirror.run() == 1
    assert [line for line in error_lines(caplog) if line.startswith("proj1:")] == [
        f"proj1: {upstream.url}/simple/proj1/: too many redirects; left in todo for the next run"]


# ---------------------------------------------------------------- all at once: the acceptance test


def _random_corpus(upstream: Upstream, rng: random.Random) -> None:
    """~40 projects, ~100 files: sdists, wheels with PEP 658 metadata, a few yanked."""
    for i in range(40):
        name = rng.choice(["lib", "py", "tool", "Data"]) + f"_{i:02d}" + rng.choice(["", ".x", "-core"])
        for v in range(rng.choice([1, 2, 2, 3, 4])):
            version = f"{v}.{rng.randint(0, 9)}"
            key = normalize(name)
            if rng.random() < 0.6:
                upstream.add_file(name, f"{key}-{version}.tar.gz", rng.randbytes(rng.randint(100, 6000)))
            else:
                meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
                upstream.add_file(name, f"{key.replace('-', '_')}-{version}-py3-none-any.whl",
                                  rng.randbytes(rng.randint(100, 6000)), metadata=meta)
        if rng.random() < 0.15:
            upstream.yank(name, rng.choice(upstream.files(name)).filename, reason="bad release")


def _change_corpus(upstream: Upstream, rng: random.Random) -> None:
    names = sorted({normalize(s.name) for s in upstream.all_current()})
    for name in rng.sample(names, 6):
        upstream.add_file(name, f"{name}-9.{rng.randint(0, 99)}.zip", rng.randbytes(1000))
    for name in rng.sample(names, 3):
        files = upstream.files(name)
        upstream.remove_file(name, files[0].filename)
    upstream.remove_project(rng.choice(names))
    for name in rng.sample(names, 2):
        files = upstream.files(name) if upstream.snapshot(name).exists else ()
        if files:
            upstream.yank(name, files[-1].filename)


def _converge(mirror: MirrorSetup, upstream: Upstream, max_runs: int = 3) -> int:
    """Run until complete; every exit code must say truthfully whether the mirror is complete."""
    for run in range(1, max_runs + 1):
        code = mirror.run()
        try:
            assert_mirror_matches(upstream, mirror.web)
            matches = True
        except AssertionError:
            matches = False
        complete = matches and not pending_work(mirror.root) and not (mirror.root / "todo").exists()
        assert code == (0 if complete else 1), f"run {run} exited {code}, mirror complete: {complete}"
        assert WebReader(mirror.web).sweep() == []
        assert temp_files(mirror.root) == []
        if code == 0:
            return run
    raise AssertionError(f"the mirror did not converge in {max_runs} runs")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_faults_at_once_converge_in_at_most_three_runs(
    tmp_path: Path, upstream: Upstream, seed: int
) -> None:
    rng = random.Random(seed)
    _random_corpus(upstream, rng)
    files = sum(len(s.files or ()) for s in upstream.all_current())
    assert len(upstream.all_current()) == 40 and 80 <= files <= 130
    mirror = write_config(tmp_path, upstream.url)
    upstream.set_random_faults(seed, error_rate=0.05, truncate_rate=0.02, stale_rate=0.05)
    full_runs = _converge(mirror, upstream)
    faults = len(upstream.fault_log)
    _change_corpus(upstream, rng)
    upstream.reset_requests()
    incremental_runs = _converge(mirror, upstream)
    faults += len(upstream.fault_log)
    assert faults > 0
    print(f"\nrandom faults seed {seed}: {faults} faults injected; full sync converged in {full_runs} "
          f"run(s), incremental in {incremental_runs}")


# ---------------------------------------------------------------- a disk that fills up


def test_a_full_disk_stops_the_run_cleanly_and_the_next_run_completes(
    tmp_path: Path, upstream: Upstream
) -> None:
    rng = random.Random(5)
    for i in range(24):
        for v in range(2):
            upstream.add_file(f"big{i:02d}", f"big{i:02d}-{v}.0.tar.gz", rng.randbytes(100_000))
    sha256s = {f.sha256 for s in upstream.all_current() for f in s.files or ()}
    with tmpfs(tmp_path / "disk", "2m") as disk:
        setup = write_config(tmp_path, upstream.url, directory=str(disk / "mirror"))
        mirror = MirrorSetup(disk / "mirror", setup.config)
        proc = mirror.run_subprocess()
        _, err = proc.communicate(timeout=120)
        lines = err.decode().strip().splitlines()
        assert proc.returncode == 1, err
        assert "Traceback" not in err.decode()
        # The last line says what stopped the run and that nothing is lost. The disk may fill during a
        # project (the run stops early, the rest stays in todo) or while the run writes its bookkeeping
        # at the end (todo, the root index: the earlier ones stay as they were).
        assert "cannot write" in lines[-1] and "No space left on device" in lines[-1], lines[-3:]
        assert ("stay in todo for the next run" in lines[-1]
                or "once that is fixed, the next run finishes it" in lines[-1]), lines[-3:]
        # Nothing half-written is visible, and every file there is complete.
        assert WebReader(mirror.web).sweep() == []
        for path in (mirror.web / "packages").rglob("*.tar.gz"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() in sha256s
        # Nothing is lost: every project not (correctly) mirrored yet is still owed.
        owed = set(pending_work(mirror.root))
        for snapshot in upstream.all_current():
            key = normalize(snapshot.name)
            page = mirror.web / "simple" / key / "index.v1_json"
            if not page.is_file() or len(list((mirror.web / "packages").rglob(f"{key}-*"))) < 2:
                assert key in owed
        remount(disk, "size=64m")
        assert mirror.run() == 0
        assert_mirror_matches(upstream, mirror.web)
        assert temp_files(mirror.root) == []


class _FullDiskFile:
    """Stands in for the journal once the disk is full: every write fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def close(self) -> None:
        pass


def test_a_journal_that_cannot_grow_stops_the_run_with_one_line_and_loses_nothing(
    mirror: MirrorSetup, upstream: Upstream, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_begin = StateFiles.begin_stream

    def begin_stream(self: StateFiles, *args: Any) -> tuple[int, int]:
        started = real_begin(self, *args)
        self._journal.close()  # type: ignore[union-attr]
        self._journal = _FullDiskFile()  # type: ignore[assignment]
        return started

    monkeypatch.setattr(StateFiles, "begin_stream", begin_stream)
    assert mirror.run() == 1
    journal = mirror.root / "todo.journal"
    assert error_lines(caplog)[-1] == (
        f"cannot write {journal}: No space left on device; the run is incomplete: once that is fixed, "
        "the next run finishes it")
    assert "Traceback" not in caplog.text
    assert len(pending_work(mirror.root)) == 4  # nothing journaled: everything still owed
    assert WebReader(mirror.web).sweep() == []
    monkeypatch.undo()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- a damaged root index


def cut_after_lines(path: Path, lines: int) -> None:
    """Keep the first ``lines`` whole lines of ``path``: a cut that lands on a line end."""
    data = path.read_bytes()
    end = 0
    for _ in range(lines):
        end = data.index(b"\n", end) + 1
    path.write_bytes(data[:end])


def root_files(mirror: MirrorSetup) -> tuple[Path, Path]:
    simple = mirror.web / "simple"
    return simple / "index.html", simple / "index.v1_json"


def test_a_root_json_cut_at_a_line_end_is_rebuilt_from_the_directories_not_from_what_it_still_lists(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    small_corpus(upstream, 22)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    cut_after_lines(root_files(mirror)[1], 4)  # the head and three projects: every line parses
    upstream.add_file("newcomer", "newcomer-1.0.tar.gz", b"new" * 300)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert any("index.v1_json" in r.getMessage() and "rebuilding" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("which", ["html", "json"])
@pytest.mark.parametrize("args", [(), ("--force-check",)], ids=["normal", "force-check"])
def test_a_root_file_cut_mid_line_is_repaired_by_the_next_run_even_with_nothing_to_sync(
    tmp_path: Path, upstream: Upstream, which: str, args: tuple[str, ...]
) -> None:
    small_corpus(upstream, 22)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    html, json_index = root_files(mirror)
    damaged = html if which == "html" else json_index
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    assert mirror.run(*args) == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- a damaged todo


def cut_todo_mid_line(root: Path) -> None:
    todo = root / "todo"
    data = todo.read_bytes()
    assert data.count(b"\n") >= 2, data
    todo.write_bytes(data[:data.rindex(b" ")])  # the last line loses its serial: not 'name serial'



def test_a_todo_cut_mid_line_after_a_run_with_failures_still_owes_them(
    mirror: MirrorSetup, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.fail("/simple/proj3/", 429, times=None, retry_after=0)
    upstream.fail("/simple/proj1/", 429, times=None, retry_after=0)
    assert mirror.run() == 1
    cut_todo_mid_line(mirror.root)
    upstream.clear_faults()
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    # The failures record named them: no full listing was needed.
    assert upstream.count_requests("/simple/proj0/") == 0


def test_a_todo_cut_mid_line_without_a_failures_record_is_not_trusted_to_say_nothing_is_owed(
    mirror: MirrorSetup, upstream: Upstream
) -> None:
    upstream.fail("/simple/proj3/", 429, times=None, retry_after=0)
    assert mirror.run() == 1
    cut_todo_mid_line(mirror.root)
    (mirror.root / "failures").unlink(missing_ok=True)
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_a_todo_cut_mid_line_after_a_run_that_stopped_early_still_owes_what_never_started(
    tmp_path: Path, upstream: Upstream
) -> None:
    small_corpus(upstream, 8)
    mirror = write_config(tmp_path, upstream.url, workers="1", stop_on_error="true")
    assert mirror.run() == 0
    for i in range(8):
        upstream.add_file(f"proj{i}", f"proj{i}-2.0.tar.gz", b"two" * 300)
    upstream.fail("/simple/proj0/", 429, times=None, retry_after=0)
    assert mirror.run() == 1
    assert len(pending_work(mirror.root)) > 1  # the failure and what never started
    cut_todo_mid_line(mirror.root)
    upstream.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
