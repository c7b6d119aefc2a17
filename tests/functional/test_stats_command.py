"""update-stats end to end: logrotate, exactly-once, bad input, locks, pages."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import filelock
import pytest

from bandersnatch.errors import BandersnatchError, ConfigError, LockHeld, StorageError
from bandersnatch.stats import command, logfiles
from bandersnatch.stats.command import StatsRun, StatsSummary, update_stats
from bandersnatch.stats.dayfile import decode_day, encode_day
from bandersnatch.stats.errors import MirrorMissing, StatsStateError
from bandersnatch.stats.index import page_path
from bandersnatch.store.atomic import atomic_write

NOW = datetime(2024, 10, 12, 12, 0, tzinfo=timezone.utc)
DAY_A = "2024-10-10"
DAY_B = "2024-10-11"
# In -0700 these are on DAY_A and on DAY_B (UTC) respectively.
TS_A = "10/Oct/2024:09:{:02d}:00 -0700"
TS_B = "10/Oct/2024:18:{:02d}:00 -0700"

WHL = "requests-2.32.3-py3-none-any.whl"
SDIST = "requests-2.32.3.tar.gz"
JINJA = "jinja2-time-0.2.0.tar.gz"
ZOPE = "zope.interface-6.0.tar.gz"
BETA = "pkg-2-beta-1.tar.gz"  # project "pkg", version "2-beta-1": only the index can tell
PROJECTS = {"requests": [WHL, SDIST], "jinja2-time": [JINJA], "zope-interface": [ZOPE], "pkg": [BETA]}


def hit(ts: str, filename: str = WHL, agent: str = "pip/24.2", status: int = 200, minute: int = 0) -> str:
    """One access log line (with its newline) for a request of ``filename``."""
    stamp = ts.format(minute)
    path = f"/packages/ab/cd/0123456789abcdef/{filename}"
    return f'203.0.113.9 - - [{stamp}] "GET {path} HTTP/1.1" {status} 1234 "-" "{agent}"\n'


class Mirror:
    """A mirror directory with a small index, a log directory and the config."""

    def __init__(self, root: Path, hash_index: bool = False) -> None:
        self.directory = root / "mirror"
        self.logs = root / "logs"
        self.logs.mkdir()
        simple = self.directory / "web" / "simple"
        for project, files in PROJECTS.items():
            path = page_path(simple, project, hash_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            up = "../../../" if hash_index else "../../"
            page = {"name": project, "files": [{"filename": f, "url": f"{up}packages/ab/{f}"} for f in files]}
            path.write_text(json.dumps(page))
        self.config = SimpleNamespace(
            directory=self.directory,
            hash_index=hash_index,
            access_log_pattern=str(self.logs / "access.log*"),
            path=root / "bandersnatch.conf",
        )

    def log(self, name: str = "access.log") -> Path:
        return self.logs / name

    def append(self, text: str, name: str = "access.log") -> None:
        with open(self.log(name), "a", encoding="utf-8") as handle:
            handle.write(text)

    def run(self) -> StatsSummary:
        return update_stats(self.config, now=NOW)

    def day(self, day: str) -> dict[tuple[str, str, str], int]:
        path = self.directory / "web" / "local-stats" / "days" / f"{day}.bz2"
        return decode_day(path.read_bytes()) if path.exists() else {}

    def totals(self) -> dict[str, int]:
        days = self.directory / "web" / "local-stats" / "days"
        return {p.name[:-4]: sum(decode_day(p.read_bytes()).values()) for p in sorted(days.glob("*.bz2"))}

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.directory / "stats-state.json").read_text())
        return data

    def rotate(self, compress_previous: bool = True) -> None:
        """logrotate with delaycompress: .1 becomes .2.gz, the live log becomes .1, a new one starts."""
        first = self.log("access.log.1")
        if first.exists():
            if compress_previous:
                self.log("access.log.2.gz").write_bytes(gzip.compress(first.read_bytes()))
                first.unlink()
            else:
                first.rename(self.log("access.log.2"))
        self.log("access.log").rename(first)
        self.log("access.log").touch()


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    return Mirror(tmp_path)


# -- exactly once through logrotate ---------------------------------------------


def test_hourly_runs_through_append_rotate_compress_and_delete_count_every_line_once(mirror: Mirror) -> None:
    # Hour 1: three downloads, a page view, and a line nginx is still writing.
    partial = hit(TS_A, minute=10)
    mirror.append(
        hit(TS_A, WHL, minute=1)
        + hit(TS_A, SDIST, minute=2)
        + hit(TS_A, JINJA, agent="uv/0.5.1", minute=3)
        + hit(TS_A, minute=4).replace("/packages/ab/cd/0123456789abcdef/" + WHL, "/simple/requests/")
        + partial[:50]
    )
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (4, 3)
    assert mirror.totals() == {DAY_A: 3}

    # Hour 2: the half line is finished, one more arrives.
    mirror.append(partial[50:] + hit(TS_A, ZOPE, minute=20))
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (2, 2)
    assert mirror.totals() == {DAY_A: 5}

    # Hour 3: rotated; nginx writes one more line to the renamed file before
    # it reopens, then the new log gets two lines of the next UTC day.
    mirror.rotate()
    mirror.append(hit(TS_A, WHL, minute=30), name="access.log.1")
    mirror.append(hit(TS_B, WHL, minute=1) + hit(TS_B, SDIST, minute=2))
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (3, 3)
    assert mirror.totals() == {DAY_A: 6, DAY_B: 2}

    # Hour 4: rotated again; the old .1 is compressed to .2.gz.
    mirror.rotate()
    mirror.append(hit(TS_B, JINJA, minute=3))
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (1, 1)
    assert mirror.totals() == {DAY_A: 6, DAY_B: 3}
    assert sorted(p.name for p in mirror.logs.iterdir()) == ["access.log", "access.log.1", "access.log.2.gz"]

    # Hour 5: the compressed log holding all of DAY_A is deleted.
    mirror.log("access.log.2.gz").unlink()
    mirror.append(hit(TS_B, WHL, agent="curl/8.4.0", minute=4) + hit(TS_B, WHL, agent="curl/8.4.0", minute=5))
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (2, 2)
    assert mirror.totals() == {DAY_A: 6, DAY_B: 5}

    # Hour 6: nothing new.
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads) == (0, 0)

    assert mirror.day(DAY_A) == {
        ("requests", WHL, "pip/24.2"): 3,
        ("requests", SDIST, "pip/24.2"): 1,
        ("jinja2-time", JINJA, "uv/0.5.1"): 1,
        ("zope-interface", ZOPE, "pip/24.2"): 1,
    }
    assert mirror.day(DAY_B) == {
        ("requests", WHL, "pip/24.2"): 1,
        ("requests", SDIST, "pip/24.2"): 1,
        ("jinja2-time", JINJA, "pip/24.2"): 1,
        ("requests", WHL, "curl/8.4.0"): 2,
    }


def test_a_compressed_log_read_to_its_end_is_not_decompressed_again(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.log("access.log.2.gz").write_bytes(gzip.compress(hit(TS_A).encode() * 5))
    assert mirror.run().downloads == 5

    def no_compare(*args: object) -> object:
        raise AssertionError("a sealed log was decompressed again")

    monkeypatch.setattr(command, "compare", no_compare)
    assert mirror.run().lines_read == 0
    assert mirror.totals() == {DAY_A: 5}


def test_a_gzip_still_being_written_is_not_counted_twice(mirror: Mirror) -> None:
    content = "".join(hit(TS_A, minute=m % 60) for m in range(3000)).encode()
    mirror.log("access.log.2").write_bytes(content)
    compressed = gzip.compress(content)
    mirror.log("access.log.2.gz").write_bytes(compressed[: len(compressed) // 2])
    mirror.run()
    assert mirror.totals() == {DAY_A: 3000}
    # gzip finishes and removes the plain copy.
    mirror.log("access.log.2.gz").write_bytes(compressed)
    mirror.log("access.log.2").unlink()
    mirror.run()
    assert mirror.totals() == {DAY_A: 3000}


def test_a_truncated_gzip_read_first_is_completed_by_its_plain_copy(mirror: Mirror) -> None:
    content = "".join(hit(TS_A, minute=m % 60) for m in range(3000)).encode()
    compressed = gzip.compress(content)
    mirror.log("access.log.2.gz").write_bytes(compressed[: len(compressed) // 2])
    summary = mirror.run()
    assert summary.files_skipped == 1
    partial = mirror.totals()[DAY_A]
    assert 0 < partial < 3000
    mirror.log("access.log.2").write_bytes(content)
    mirror.run()
    assert mirror.totals() == {DAY_A: 3000}


def test_copytruncate_copies_are_counted_once(mirror: Mirror) -> None:
    mirror.append(hit(TS_A, minute=1) + hit(TS_A, minute=2) + hit(TS_A, minute=3))
    mirror.run()
    # logrotate copytruncate: first the copy (both files identical) ...
    shutil.copyfile(mirror.log("access.log"), mirror.log("access.log.1"))
    mirror.run()
    assert mirror.totals() == {DAY_A: 3}
    # ... then the truncation, and new lines.
    mirror.log("access.log").write_text(hit(TS_B, minute=1) + hit(TS_B, minute=2))
    mirror.run()
    assert mirror.totals() == {DAY_A: 3, DAY_B: 2}
    mirror.log("access.log.2.gz").write_bytes(gzip.compress(mirror.log("access.log.1").read_bytes()))
    mirror.log("access.log.1").unlink()
    mirror.run()
    assert mirror.totals() == {DAY_A: 3, DAY_B: 2}


def test_logs_that_only_share_their_first_line_are_both_counted(mirror: Mirror) -> None:
    first = hit(TS_A, minute=1)
    mirror.log("access.log.1").write_text(
        first + hit(TS_A, minute=2) + hit(TS_A, minute=3) + hit(TS_A, minute=4)
    )
    mirror.log("access.log").write_text(first + hit(TS_B, minute=5))
    mirror.run()
    assert mirror.totals() == {DAY_A: 5, DAY_B: 1}
    mirror.run()
    assert mirror.totals() == {DAY_A: 5, DAY_B: 1}


def test_a_log_truncated_and_rewritten_is_read_from_its_start(mirror: Mirror) -> None:
    mirror.append(hit(TS_A, minute=1) + hit(TS_A, minute=2))
    mirror.run()
    mirror.log("access.log").write_text(hit(TS_B, minute=1))
    mirror.run()
    assert mirror.totals() == {DAY_A: 2, DAY_B: 1}


def test_a_half_written_last_line_is_counted_once_complete(mirror: Mirror) -> None:
    line = hit(TS_A, minute=1)
    for cut in (10, 40, len(line) - 1):
        mirror.log("access.log").write_text(line[:cut])
        assert mirror.run().downloads == 0
    mirror.log("access.log").write_text(line)
    assert mirror.run().downloads == 1
    assert mirror.run().downloads == 0
    assert mirror.totals() == {DAY_A: 1}


def test_utc_days_with_mixed_offsets(mirror: Mirror) -> None:
    mirror.append(
        hit("10/Oct/2024:23:30:00 -0700")  # 2024-10-11 06:30 UTC
        + hit("11/Oct/2024:01:00:00 +0200")  # 2024-10-10 23:00 UTC
        + hit("10/Oct/2024:05:30:00 +0545")  # 2024-10-09 23:45 UTC
        + hit("10/Oct/2024:00:00:00 +0000")
        + hit("09/Oct/2024:23:59:59 -0000")
    )
    mirror.run()
    assert mirror.totals() == {"2024-10-09": 2, "2024-10-10": 2, "2024-10-11": 1}


def test_checkpoints_mid_file_give_the_same_counts(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command, "CHECKPOINT_KEYS", 1)
    mirror.append(
        "".join(hit(TS_A if m % 2 else TS_B, [WHL, SDIST, JINJA][m % 3], minute=m) for m in range(60))
    )
    summary = mirror.run()
    assert summary.downloads == 60
    assert mirror.totals() == {DAY_A: 30, DAY_B: 30}
    assert mirror.run().downloads == 0
    assert mirror.totals() == {DAY_A: 30, DAY_B: 30}


@pytest.mark.parametrize("hash_index", [False, True])
def test_the_mirror_index_attributes_files_in_either_layout(tmp_path: Path, hash_index: bool) -> None:
    mirror = Mirror(tmp_path, hash_index=hash_index)
    mirror.append(hit(TS_A, ZOPE) + hit(TS_A, BETA) + hit(TS_A, "unknown_project-1.0-py3-none-any.whl"))
    mirror.run()
    assert set(mirror.day(DAY_A)) == {
        ("zope-interface", ZOPE, "pip/24.2"),
        ("pkg", BETA, "pip/24.2"),
        ("unknown-project", "unknown_project-1.0-py3-none-any.whl", "pip/24.2"),  # from its name
    }


def test_without_its_page_a_file_is_attributed_by_its_name(tmp_path: Path) -> None:
    mirror = Mirror(tmp_path, hash_index=False)
    mirror.config.hash_index = True  # pages are not where this layout looks
    mirror.append(hit(TS_A, BETA))
    mirror.run()
    assert set(mirror.day(DAY_A)) == {("pkg-2-beta", BETA, "pip/24.2")}


# -- crashes ----------------------------------------------------------------------


def test_a_crash_before_the_state_commit_loses_nothing(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.append(hit(TS_A) * 3)

    def crash(self: StatsRun) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(StatsRun, "write_state", crash)
        with pytest.raises(KeyboardInterrupt):
            mirror.run()
    mirror.run()
    assert mirror.totals() == {DAY_A: 3}


def test_a_crash_between_commit_and_publish_is_finished_by_the_next_run(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.append(hit(TS_A) * 3)
    mirror.run()
    mirror.append(hit(TS_A) * 2)

    def crash(self: StatsRun) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(StatsRun, "publish", crash)
        with pytest.raises(KeyboardInterrupt):
            mirror.run()
    assert mirror.state()["pending"] == [DAY_A]
    assert mirror.totals() == {DAY_A: 3}
    summary = mirror.run()
    assert summary.downloads == 0
    assert mirror.totals() == {DAY_A: 5}
    assert mirror.state()["pending"] == []


# -- bad input --------------------------------------------------------------------


def test_malformed_lines_and_binary_garbage_are_skipped_and_reported(
    mirror: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    mirror.log("access.log").write_bytes(
        hit(TS_A).encode()
        + b"\x00\x01\x02 not a log line\n"
        + b"\xff\xfe\xfd" * 100
        + b"\n"
        + b'203.0.113.9 - - [garbage] "GET\n'
        + hit(TS_A).encode()
    )
    mirror.log("access.log.9").write_bytes(bytes(b for b in range(256) if b != 10) * 50)  # no newline at all
    with caplog.at_level(logging.INFO, logger="bandersnatch.stats"):
        summary = mirror.run()
    assert (summary.downloads, summary.malformed) == (2, 3)
    closing = caplog.records[-1].getMessage()
    assert "2 downloads" in closing and "3 malformed" in closing and "lines" in closing
    assert mirror.totals() == {DAY_A: 2}


def test_a_truncated_gzip_is_counted_up_to_the_damage(
    mirror: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    content = "".join(hit(TS_A, minute=m % 60) for m in range(2000)).encode()
    compressed = gzip.compress(content)
    mirror.log("access.log.2.gz").write_bytes(compressed[: len(compressed) * 2 // 3])
    mirror.append(hit(TS_B))
    with caplog.at_level(logging.WARNING, logger="bandersnatch.stats"):
        summary = mirror.run()
    assert summary.files_skipped == 1
    assert "access.log.2.gz" in caplog.text and "stopped reading" in caplog.text
    assert 0 < mirror.totals()[DAY_A] < 2000
    assert mirror.totals()[DAY_B] == 1


def test_a_small_truncated_gzip_still_gives_its_complete_lines(mirror: Mirror) -> None:
    content = "".join(hit(TS_A, agent=f"pip/{n}.{n * 7919 % 1000}", minute=n % 60) for n in range(100))
    compressed = gzip.compress(content.encode())
    mirror.log("access.log.2.gz").write_bytes(compressed[: len(compressed) * 2 // 3])
    summary = mirror.run()
    assert summary.files_skipped == 1
    assert 0 < mirror.totals()[DAY_A] < 100


def test_a_corrupt_compressed_file_is_skipped(mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    mirror.log("access.log.3.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 100)
    mirror.log("access.log.4.bz2").write_bytes(b"BZh9" + b"\xff" * 100)
    mirror.append(hit(TS_A))
    with caplog.at_level(logging.WARNING, logger="bandersnatch.stats"):
        summary = mirror.run()
    assert summary.files_skipped == 2
    assert mirror.totals() == {DAY_A: 1}


def test_an_unreadable_file_is_skipped_with_a_warning(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mirror.append(hit(TS_A))
    mirror.log("access.log.1").write_text(hit(TS_A))
    real_open = open

    def guarded_open(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith("access.log.1"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(logfiles, "open", guarded_open, raising=False)
    with caplog.at_level(logging.WARNING, logger="bandersnatch.stats"):
        summary = mirror.run()
    assert summary.files_skipped == 1
    assert "access.log.1" in caplog.text and "Permission denied" in caplog.text
    assert mirror.totals() == {DAY_A: 1}


def test_a_log_without_downloads_writes_no_day_but_the_pages(mirror: Mirror) -> None:
    mirror.append(
        '203.0.113.9 - - [10/Oct/2024:09:04:00 -0700] "GET /simple/ HTTP/1.1" 200 9 "-" "pip/24.2"\n'
    )
    summary = mirror.run()
    assert (summary.lines_read, summary.downloads, summary.days_updated) == (1, 0, ())
    assert mirror.totals() == {}
    assert (mirror.directory / "web" / "local-stats" / "index.html").exists()


def test_a_pattern_matching_nothing_is_reported(mirror: Mirror, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bandersnatch.stats"):
        summary = mirror.run()
    assert summary == StatsSummary(0, 0, 0, 0, 0, ())
    assert "matches no files" in caplog.text
    assert json.loads((mirror.directory / "web" / "local-stats" / "summary.json").read_text())["days"]


def test_a_missing_mirror_directory_is_a_clear_error(tmp_path: Path) -> None:
    config = SimpleNamespace(
        directory=tmp_path / "nope", hash_index=False, access_log_pattern="/x/*", path=tmp_path / "c"
    )
    with pytest.raises(MirrorMissing, match=r"does not exist; run `bandersnatch mirror` first"):
        update_stats(config)
    assert issubclass(MirrorMissing, BandersnatchError)


def test_a_mirror_directory_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    config = SimpleNamespace(
        directory=tmp_path / "file", hash_index=False, access_log_pattern="/x/*", path=tmp_path / "c"
    )
    with pytest.raises(MirrorMissing, match="is not a directory"):
        update_stats(config)


def test_an_empty_pattern_is_a_config_error(mirror: Mirror) -> None:
    mirror.config.access_log_pattern = ""
    with pytest.raises(ConfigError, match="access-log-pattern"):
        mirror.run()


def test_a_damaged_state_file_stops_the_run(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    (mirror.directory / "stats-state.json").write_text("{broken")
    with pytest.raises(StatsStateError, match="stats-state.json is damaged"):
        mirror.run()
    assert mirror.totals() == {DAY_A: 1}


def test_a_lost_state_file_with_day_files_stops_the_run(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    (mirror.directory / "stats-state.json").unlink()
    with pytest.raises(StatsStateError, match="count them twice"):
        mirror.run()
    assert mirror.totals() == {DAY_A: 1}


def test_a_damaged_day_file_stops_the_run_without_losing_counts(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    day_file = mirror.directory / "stats-days" / f"{DAY_A}.bz2"  # the history, kept outside web/
    day_file.write_bytes(b"garbage")
    mirror.append(hit(TS_A))
    with pytest.raises(StatsStateError, match="Move it aside"):
        mirror.run()
    day_file.unlink()
    (mirror.directory / "web" / "local-stats" / "days" / f"{DAY_A}.bz2").unlink()
    mirror.run()
    assert mirror.totals() == {DAY_A: 1}  # only the line not counted before


def test_a_damaged_published_day_file_is_replaced_from_the_kept_copy(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    (mirror.directory / "web" / "local-stats" / "days" / f"{DAY_A}.bz2").write_bytes(b"garbage")
    mirror.append(hit(TS_A))
    mirror.run()
    assert mirror.totals() == {DAY_A: 2}


def test_existing_day_files_are_added_to_not_replaced(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    # Something (an older tool, an operator) already has counts for DAY_B.
    days = mirror.directory / "web" / "local-stats" / "days"
    (days / f"{DAY_B}.bz2").write_bytes(encode_day({("requests", WHL, "pip/1.0"): 7}))
    mirror.append(hit(TS_B))
    mirror.run()
    assert mirror.day(DAY_B) == {("requests", WHL, "pip/1.0"): 7, ("requests", WHL, "pip/24.2"): 1}


# -- locks and a concurrent mirror ------------------------------------------------


def test_a_second_update_stats_at_once_gets_lock_held(mirror: Mirror) -> None:
    mirror.directory.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, filelock\n"
            "lock = filelock.FileLock(sys.argv[1], timeout=0)\n"
            "lock.acquire()\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(mirror.directory / ".stats.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match="update-stats"):
            mirror.run()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    mirror.run()  # released: runs again


def test_a_mirror_writing_pages_under_its_own_lock_neither_blocks_nor_is_disturbed(mirror: Mirror) -> None:
    mirror.append("".join(hit(TS_A, [WHL, SDIST, JINJA, ZOPE][m % 4], minute=m % 60) for m in range(400)))
    simple = mirror.directory / "web" / "simple"
    staging = mirror.directory / "tmp" / "mirror"
    stop = threading.Event()
    written = 0

    def mirror_sync() -> None:
        nonlocal written
        with filelock.FileLock(str(mirror.directory / ".lock"), timeout=0):
            while not stop.is_set():
                for project, files in PROJECTS.items():
                    page = {
                        "name": project,
                        "files": [{"filename": f, "url": f"../../packages/{f}"} for f in files],
                    }
                    atomic_write(page_path(simple, project, False), json.dumps(page).encode(), staging)
                    written += 1

    writer = threading.Thread(target=mirror_sync)
    writer.start()
    try:
        for _ in range(3):
            mirror.run()
            mirror.append(hit(TS_B))
    finally:
        stop.set()
        writer.join(timeout=10)
    assert written > 0
    assert mirror.totals() == {DAY_A: 400, DAY_B: 2}
    projects = {key[0] for key in mirror.day(DAY_A)}
    assert projects == {"requests", "jinja2-time", "zope-interface"}
    for project in PROJECTS:
        json.loads(page_path(simple, project, False).read_text())  # intact
    assert (mirror.directory / "tmp" / "mirror").is_dir()


# -- the pages ----------------------------------------------------------------------


def test_pages_show_recent_days_top_projects_and_clients(mirror: Mirror) -> None:
    mirror.append(
        hit(TS_A) * 3 + hit(TS_A, JINJA, agent="uv/0.5.1") + hit(TS_B, ZOPE, agent="Mozilla/5.0 (X11)")
    )
    mirror.run()
    output = mirror.directory / "web" / "local-stats"
    summary = json.loads((output / "summary.json").read_text())
    assert summary["generated"] == "2024-10-12T12:00:00Z"
    per_day = {d["date"]: d["downloads"] for d in summary["days"]}
    assert per_day[DAY_A] == 4 and per_day[DAY_B] == 1 and per_day["2024-10-12"] == 0
    assert summary["top_projects"][0] == {"project": "requests", "downloads": 3}
    assert {c["client"] for c in summary["top_clients"]} == {"pip/24.2", "uv/0.5.1", "browser"}
    page = (output / "index.html").read_text()
    assert "<svg" in page and "requests" in page and "uv/0.5.1" in page
    assert "<script" not in page


def test_state_file_records_logs_by_content(mirror: Mirror) -> None:
    mirror.append(hit(TS_A) * 2)
    mirror.run()
    state = mirror.state()
    assert state["version"] == 1
    (entry,) = state["logs"]
    assert entry["offset"] == mirror.log().stat().st_size
    assert entry["lines"] == 2
    assert entry["name"] == str(mirror.log())
    assert len(entry["marks"]) == 2


@pytest.mark.parametrize("where", ["web/local-stats", "web/local-stats/days", "tmp/stats", "stats-days"])
def test_a_symlinked_stats_directory_is_never_written_through(
    mirror: Mirror, tmp_path: Path, where: str
) -> None:
    """update-stats writes below web/local-stats/ and stages in tmp/stats/: a link there is refused."""
    mirror.append(hit(TS_A) * 2)
    mirror.run()
    mirror.append(hit(TS_B))
    path = mirror.directory / where
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_bytes(b"keep me")
    for entry in path.iterdir() if path.is_dir() else ():
        entry.rename(outside / entry.name)
    if path.is_dir():
        path.rmdir()
    path.symlink_to(outside, target_is_directory=True)
    def contents() -> dict[str, bytes]:
        return {str(p.relative_to(outside)): p.read_bytes() for p in outside.rglob("*") if p.is_file()}

    before = contents()
    with pytest.raises(StorageError, match=f"{path} is a symbolic link"):
        mirror.run()
    assert contents() == before


# -- the history survives web/ (issue 18, case 21) -----------------------------------


def test_deleting_web_loses_no_statistics_history_and_the_next_run_says_it_put_it_back(
    mirror: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    mirror.append(hit(TS_A) * 3 + hit(TS_B))
    mirror.run()
    before = {DAY_A: mirror.day(DAY_A), DAY_B: mirror.day(DAY_B)}
    summary = (mirror.directory / "web" / "local-stats" / "summary.json").read_bytes()
    shutil.rmtree(mirror.directory / "web")  # the operator's rm -rf web/ (the next mirror run syncs pages)
    mirror.append(hit(TS_B, minute=1))
    caplog.clear()
    mirror.run()
    assert mirror.day(DAY_A) == before[DAY_A]  # nothing lost
    assert sum(mirror.day(DAY_B).values()) == sum(before[DAY_B].values()) + 1  # and added to
    said = [r.getMessage() for r in caplog.records if "put back" in r.getMessage()]
    assert len(said) == 1 and "2 day file(s)" in said[0]
    assert json.loads((mirror.directory / "web" / "local-stats" / "summary.json").read_bytes())["days"] \
        != json.loads(summary)["days"]  # redrawn, with the new line
    caplog.clear()
    mirror.run()
    assert "put back" not in caplog.text  # once only


def test_day_files_written_before_copies_were_kept_get_their_copy_and_survive_web(
    mirror: Mirror, caplog: pytest.LogCaptureFixture
) -> None:
    mirror.append(hit(TS_A) * 2)
    mirror.run()
    shutil.rmtree(mirror.directory / "stats-days")  # as an older version left the mirror
    caplog.set_level(logging.INFO)
    caplog.clear()
    mirror.run()
    assert "kept a copy of 1 day file(s)" in caplog.text
    shutil.rmtree(mirror.directory / "web")
    mirror.run()
    assert mirror.totals() == {DAY_A: 2}


def test_a_lost_state_file_with_only_kept_day_files_still_stops_the_run(mirror: Mirror) -> None:
    mirror.append(hit(TS_A))
    mirror.run()
    shutil.rmtree(mirror.directory / "web")
    (mirror.directory / "stats-state.json").unlink()
    with pytest.raises(StatsStateError, match="count them twice"):
        mirror.run()
