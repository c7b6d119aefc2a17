"""The terminal status line: present on a TTY, absent under cron, never garbling log lines."""

from __future__ import annotations

import io
import logging

import pytest

from bandersnatch.progress import ERASE, Progress, StatusStream, human_bytes, status_text


def test_status_text_shows_counts_rate_and_eta() -> None:
    text = status_text(done=25, total=100, files=40, nbytes=10 * 1024 * 1024, elapsed=10.0)
    assert text == "25/100 projects, 40 files, 10.0 MB, 1.0 MB/s, ETA 0m30s"


def test_status_text_has_no_eta_when_done() -> None:
    assert "ETA" not in status_text(done=5, total=5, files=0, nbytes=0, elapsed=1.0)


def test_human_bytes_units() -> None:
    assert [human_bytes(n) for n in (0, 1023, 1024, 5 * 1024**3)] == ["0 B", "1023 B", "1.0 KB", "5.0 GB"]


def test_log_lines_erase_and_redraw_the_status_line() -> None:
    out = io.StringIO()
    stream = StatusStream(out, min_interval=0)
    stream.show("1/2 projects")
    stream.write("INFO: something happened\n")
    assert out.getvalue() == f"{ERASE}1/2 projects{ERASE}INFO: something happened\n1/2 projects"
    stream.clear()
    assert out.getvalue().endswith(ERASE)


def test_progress_without_a_terminal_writes_nothing() -> None:
    progress = Progress(None)
    progress.start(3)
    progress.advance(files=2, nbytes=10)
    progress.finish()
    assert (progress.done, progress.files, progress.bytes) == (1, 2, 10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_a_long_run_logs_a_progress_line_every_few_minutes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under cron there is no status line: an INFO line every interval tells how far a long run is."""
    clock = FakeClock()
    progress = Progress(None, log_every=300.0, clock=clock)
    progress.start(1000)
    with caplog.at_level(logging.INFO, logger="bandersnatch.progress"):
        for _ in range(10):
            clock.now += 20  # 200 s: no line yet
            progress.advance(files=1, nbytes=1024 * 1024)
        assert caplog.messages == []
        clock.now += 100  # 300 s since the start
        progress.advance(files=1, nbytes=1024 * 1024)
        clock.now += 60
        progress.advance()  # within the next interval: no second line
    (line,) = caplog.messages
    assert line.startswith("Progress: 11/1000 projects, 11 files, 11.0 MB")
    assert "/s" in line and "ETA 7h29m" in line


def test_on_a_terminal_no_progress_lines_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    progress = Progress(StatusStream(io.StringIO()), log_every=1.0, clock=clock)
    progress.start(10)
    with caplog.at_level(logging.INFO, logger="bandersnatch.progress"):
        for _ in range(5):
            clock.now += 10
            progress.advance()
    assert caplog.messages == []


def test_the_default_progress_interval_is_a_few_minutes() -> None:
    assert 60 <= Progress(None).log_every <= 600
