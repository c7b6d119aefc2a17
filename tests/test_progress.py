"""The terminal status line: present on a TTY, absent under cron, never garbling log lines."""

from __future__ import annotations

import io

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
