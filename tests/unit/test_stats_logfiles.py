"""Reading logs: compression by content, whole lines only, resuming by content."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from pathlib import Path

import pytest

from bandersnatch.stats import logfiles
from bandersnatch.stats.logfiles import (
    HEAD_LIMIT,
    TAIL_LENGTH,
    OpenLog,
    Resume,
    compare,
    digest,
    find_logs,
    head_of,
    read_lines,
)

TEXT = b"".join(b"line %04d of the log\n" % i for i in range(200))


def read_all(data: bytes, offset: int = 0, finished: bool = False) -> tuple[list[bytes], int]:
    stream = io.BytesIO(data)
    stream.seek(offset)
    lines: list[bytes] = []
    end = offset
    for chunk, chunk_end, _recent in read_lines(
        stream, offset, data[max(0, offset - TAIL_LENGTH) : offset], finished
    ):
        lines.extend(chunk)
        end = chunk_end
    return lines, end


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("access.log", lambda d: d),
        ("access.log.2.gz", gzip.compress),
        ("access.log.3.bz2", bz2.compress),
        ("access.log.4.xz", lzma.compress),
        ("access.log.5", gzip.compress),  # logrotate compressext need not say .gz
    ],
)
def test_logs_are_decompressed_by_their_content(tmp_path: Path, name: str, compress: object) -> None:
    path = tmp_path / name
    path.write_bytes(compress(TEXT))  # type: ignore[operator]
    with OpenLog(path) as log:
        assert log.stream.read() == TEXT
        assert log.compressed is (name != "access.log")
        assert bool(log.seal) is log.compressed


def test_find_logs_matches_rotated_files_and_skips_directories(tmp_path: Path) -> None:
    for name in ("access.log", "access.log.1", "access.log.2.gz", "error.log"):
        (tmp_path / name).write_bytes(b"x\n")
    (tmp_path / "access.log.d").mkdir()
    os.utime(tmp_path / "access.log.2.gz", (1, 1))
    found = [p.name for p in find_logs(str(tmp_path / "access.log*"))]
    assert sorted(found) == ["access.log", "access.log.1", "access.log.2.gz"]
    assert found[0] == "access.log.2.gz"  # oldest first
    assert find_logs(str(tmp_path / "nothing*")) == []


def test_head_is_the_first_line() -> None:
    assert head_of(b"first\nsecond\n", whole=False) == digest(b"first\n")
    assert head_of(b"first\nsecond", whole=False) == head_of(b"first\nother\n", whole=False)


def test_no_head_while_the_first_line_is_incomplete() -> None:
    assert head_of(b"", whole=False) is None
    assert head_of(b"half a li", whole=False) is None
    assert head_of(b"half a li", whole=True) == digest(b"half a li")


def test_head_of_garbage_without_newlines_is_its_first_bytes() -> None:
    garbage = bytes(b for b in range(256) if b != 10) * 40
    assert head_of(garbage, whole=False) == digest(garbage[:HEAD_LIMIT])


def test_a_half_written_last_line_waits_for_its_newline() -> None:
    lines, end = read_all(b"one\ntwo\nthr")
    assert lines == [b"one", b"two"]
    assert end == 8
    lines, end = read_all(b"one\ntwo\nthree\n", offset=end)
    assert lines == [b"three"]
    assert end == 14


def test_a_finished_compressed_log_counts_its_last_line_without_newline() -> None:
    lines, end = read_all(b"one\ntwo", finished=True)
    assert lines == [b"one", b"two"]
    assert end == 7


def test_lines_across_chunk_boundaries_are_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfiles, "CHUNK_SIZE", 7)
    lines, end = read_all(TEXT)
    assert b"\n".join(lines) + b"\n" == TEXT
    assert end == len(TEXT)


def test_an_endless_line_is_cut_so_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logfiles, "CHUNK_SIZE", 64)
    monkeypatch.setattr(logfiles, "MAX_LINE", 100)
    lines, end = read_all(b"x" * 1000 + b"\nok\n")
    assert max(len(line) for line in lines) <= 164
    assert lines[-1] == b"ok"
    assert end == 1004


def test_recent_is_the_bytes_before_the_end() -> None:
    stream = io.BytesIO(TEXT)
    *_, (_lines, end, recent) = read_lines(stream, 0, b"", False)
    assert recent == TEXT[end - TAIL_LENGTH : end]


def test_compare_resumes_the_same_log() -> None:
    offset = 2000
    stream = io.BytesIO(TEXT + b"more\n")
    verdict, before = compare(stream, offset, digest(TEXT[offset - TAIL_LENGTH : offset]))
    assert verdict is Resume.SAME
    assert before == TEXT[offset - TAIL_LENGTH : offset]
    assert stream.tell() == offset


def test_compare_tells_a_shorter_copy() -> None:
    tail = digest(TEXT[len(TEXT) - TAIL_LENGTH :])
    assert compare(io.BytesIO(TEXT[:1000]), len(TEXT), tail)[0] is Resume.SHORTER


def test_compare_tells_a_truncated_gzip_as_shorter(tmp_path: Path) -> None:
    path = tmp_path / "access.log.2.gz"
    content = b"".join(b"%d %s\n" % (i, os.urandom(20).hex().encode()) for i in range(5000))
    compressed = gzip.compress(content)
    path.write_bytes(compressed[: len(compressed) // 2])
    with OpenLog(path) as log:
        assert compare(log.stream, len(content), digest(content[-TAIL_LENGTH:]))[0] is Resume.SHORTER


def test_compare_tells_different_content() -> None:
    other = TEXT.replace(b"0090", b"XXXX")
    tail = digest(TEXT[2000 - TAIL_LENGTH : 2000])
    assert compare(io.BytesIO(other), 2000, tail)[0] is Resume.DIFFERENT
