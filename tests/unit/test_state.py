"""Specification of the bookkeeping files: ``state``, ``todo`` + ``todo.journal`` and ``generation``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.todo import read_todo

from bandersnatch.ledger.state import GENERATION, Failure, StateFiles, Todo, parse_failures, render_failures


@pytest.fixture
def files(tmp_path: Path) -> Iterator[StateFiles]:
    state = StateFiles(tmp_path, tmp_path / "tmp" / "owner")
    yield state
    state.close()


def todo_of(target: int, *entries: tuple[str, int]) -> Todo:
    todo = Todo(target)
    for name, serial in entries:
        todo.add(name, serial)
    return todo


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------- Todo


def test_todo_add_keys_by_normalized_name_and_keeps_the_highest_serial() -> None:
    todo = todo_of(10, ("Foo.Bar", 5), ("foo_bar", 3), ("FOO-BAR", 7), ("other", 1))
    assert todo.pending == {"foo-bar": ("FOO-BAR", 7), "other": ("other", 1)}


# ---------------------------------------------------------------- state


def test_read_serial_of_missing_state_is_none(files: StateFiles) -> None:
    assert files.read_serial() is None


def test_write_then_read_serial(files: StateFiles) -> None:
    files.write_serial(12345)
    assert files.read_serial() == 12345
    assert files.state_path.read_text() == "12345\n"
    assert list(files.staging.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"abc\n", b"-1\n", b"1.5\n", b"\xff\n", "\u00b2\n".encode()])
def test_unreadable_state_reads_as_none_with_a_warning(
    files: StateFiles, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    files.state_path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.state"):
        assert files.read_serial() is None
    assert "full sync" in caplog.text


# ---------------------------------------------------------------- begin / done


def test_begin_writes_target_on_line_one_then_name_serial_lines(files: StateFiles) -> None:
    files.begin(todo_of(500, ("Django", 480), ("zope.interface", 499)))
    assert lines(files.todo_path) == ["500", "Django 480", "zope.interface 499"]
    assert lines(files.journal_path) == ["target 500"]


def test_begin_with_nothing_pending_writes_only_the_target(files: StateFiles) -> None:
    files.begin(Todo(7))
    assert lines(files.todo_path) == ["7"]


def test_done_appends_to_journal_without_rewriting_todo(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 1), ("b", 2), ("c", 3)))
    before = files.todo_path.stat()
    todo_bytes = files.todo_path.read_bytes()
    files.done("a", 1)
    assert lines(files.journal_path) == ["target 500", "a 1"]
    files.done("c", 3)
    assert lines(files.journal_path) == ["target 500", "a 1", "c 3"]
    after = files.todo_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert files.todo_path.read_bytes() == todo_bytes


def test_done_cost_does_not_grow_with_the_todo(files: StateFiles) -> None:
    big = Todo(1_000_000)
    big.pending = {f"project-{i}": (f"project-{i}", i) for i in range(100_000)}
    files.begin(big)
    todo_stat = files.todo_path.stat()
    size = files.journal_path.stat().st_size
    for i in (0, 50_000, 99_999):
        files.done(f"project-{i}", i)
        line = f"project-{i} {i}\n".encode()
        new_size = files.journal_path.stat().st_size
        assert new_size - size == len(line)
        size = new_size
    assert files.journal_path.read_bytes().endswith(b"project-99999 99999\n")
    after = files.todo_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (todo_stat.st_ino, todo_stat.st_mtime_ns)


# ---------------------------------------------------------------- read_todo after a kill


def test_read_todo_of_missing_todo_is_none(files: StateFiles) -> None:
    assert read_todo(files) is None


def test_read_todo_without_journal_returns_everything(files: StateFiles) -> None:
    files.todo_path.write_text("500\nDjango 480\nzope.interface 499\n")
    todo = read_todo(files)
    assert todo == todo_of(500, ("Django", 480), ("zope.interface", 499))


def test_read_todo_after_kill_subtracts_journaled_projects(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10), ("B.Project", 20), ("c", 30)))
    files.done("a", 10)
    files.done("b-project", 20)  # journal spelling need not match: keys are normalized
    files.close()  # the process dies; its file handle goes with it
    todo = read_todo(StateFiles(files.directory, files.staging))
    assert todo is not None
    assert todo.target == 500
    assert todo.pending == {"c": ("c", 30)}


@pytest.mark.parametrize(
    ("journal_serial", "still_pending"),
    [(19, True), (20, False), (21, False)],
)
def test_journal_entry_counts_only_when_its_serial_reaches_the_todo_serial(
    files: StateFiles, journal_serial: int, still_pending: bool
) -> None:
    files.todo_path.write_text("500\nproj 20\n")
    files.journal_path.write_text(f"target 500\nproj {journal_serial}\n")
    todo = read_todo(files)
    assert todo is not None
    assert ("proj" in todo.pending) is still_pending


def test_half_written_last_journal_line_is_ignored(files: StateFiles) -> None:
    files.todo_path.write_text("500\nfoo 123\nbar 7\n")
    files.journal_path.write_text("target 500\nbar 7\nfoo 12")  # killed while writing "foo 123\n"
    todo = read_todo(files)
    assert todo is not None
    assert todo.pending == {"foo": ("foo", 123)}


@pytest.mark.parametrize("header", ["target 499\n", "target 5000\n", "500\n", "", "garbage\n"])
def test_journal_of_another_todo_is_ignored(files: StateFiles, header: str) -> None:
    files.todo_path.write_text("500\nfoo 1\n")
    files.journal_path.write_text(f"{header}foo 1\n")
    todo = read_todo(files)
    assert todo is not None
    assert todo.pending == {"foo": ("foo", 1)}


@pytest.mark.parametrize(
    "junk",
    ["\n", "foo\n", "foo x\n", " 5\n", "foo \u00b2\n", "\xff\xfe 1\n", "foo -1\n"],
)
def test_junk_journal_lines_are_skipped(files: StateFiles, junk: str) -> None:
    files.todo_path.write_text("500\nfoo 1\nbar 2\n")
    files.journal_path.write_text(f"target 500\n{junk}bar 2\n")
    todo = read_todo(files)
    assert todo is not None
    assert todo.pending == {"foo": ("foo", 1)}


def test_non_utf8_journal_does_not_prevent_reading_todo(files: StateFiles) -> None:
    files.todo_path.write_text("500\nfoo 1\nbar 2\n")
    files.journal_path.write_bytes(b"target 500\n\xff\xfe\xfd 9\nbar 2\n")
    todo = read_todo(files)
    assert todo is not None
    assert todo.pending == {"foo": ("foo", 1)}


# ---------------------------------------------------------------- corrupt todo


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n", id="blank-line"),
        pytest.param(b"abc\nfoo 1\n", id="non-integer-target"),
        pytest.param(b"-5\nfoo 1\n", id="negative-target"),
        pytest.param("\u00b2\nfoo 1\n".encode(), id="superscript-digit-target"),
        pytest.param(b"500\nfoo\n", id="line-without-serial"),
        pytest.param(b"500\nfoo bar\n", id="non-integer-serial"),
        pytest.param(b"500\n 7\n", id="serial-without-name"),
        pytest.param(b"500\nfoo 1\n\nbar 2\n", id="blank-line-inside"),
        pytest.param("500\nfoo \u00b2\n".encode(), id="superscript-digit-serial"),
        pytest.param(b"500\nfoo\xff 1\n", id="non-utf8"),
        pytest.param(b"\xff\xfe5\x00\n\x00", id="utf16-ish"),
    ],
)
def test_corrupt_todo_is_removed_with_a_warning(
    files: StateFiles, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    files.todo_path.write_bytes(content)
    files.journal_path.write_text("target 500\n")
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.state"):
        assert read_todo(files) is None
    assert "corrupt" in caplog.text
    assert not files.todo_path.exists()
    assert not files.journal_path.exists()


# ---------------------------------------------------------------- finish


def failure(name: str, serial: int, error: str = "page: HTTP 429 (gave up after 3 tries)") -> Failure:
    return Failure(name, serial, error, "2026-01-02T03:04:05Z")


def test_finish_with_failures_keeps_exactly_those_in_todo_and_writes_state(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10), ("b", 20), ("c", 30)))
    files.done("a", 10)
    files.finish(500, {"b": failure("b", 20)})
    assert lines(files.todo_path) == ["500", "b 20"]
    assert files.read_serial() == 500
    assert not files.journal_path.exists()
    todo = read_todo(files)
    assert todo is not None
    assert todo.pending == {"b": ("b", 20)}
    assert list(files.staging.iterdir()) == []


def test_finish_without_failures_removes_todo_and_journal(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10)))
    files.done("a", 10)
    files.finish(500, {})
    assert not files.todo_path.exists()
    assert not files.journal_path.exists()
    assert files.read_serial() == 500
    assert read_todo(files) is None


def test_finish_closes_the_journal_so_done_needs_a_new_begin(files: StateFiles) -> None:
    files.begin(Todo(1))
    files.finish(1, {})
    with pytest.raises(AssertionError):
        files.done("a", 1)


def test_begin_after_resume_starts_a_fresh_journal(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 1), ("b", 2)))
    files.done("a", 1)
    files.close()
    resumed = StateFiles(files.directory, files.staging)
    todo = read_todo(resumed)
    assert todo is not None
    resumed.begin(todo)
    assert lines(resumed.todo_path) == ["500", "b 2"]
    assert lines(resumed.journal_path) == ["target 500"]
    resumed.close()


# ---------------------------------------------------------------- failures and a damaged todo


def test_finish_records_each_failure_with_its_serial_time_and_error_then_a_count(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10), ("b", 20), ("c", 30)))
    files.finish(500, {"b": failure("b", 20), "c": failure("c", 30, "cannot write x: disk full")})
    assert lines(files.failures_path) == [
        "b 20 2026-01-02T03:04:05Z page: HTTP 429 (gave up after 3 tries)",
        "c 30 2026-01-02T03:04:05Z cannot write x: disk full",
        "end 2",
    ]
    assert files.read_failures() == [failure("b", 20), failure("c", 30, "cannot write x: disk full")]


def test_finish_without_failures_records_that_there_are_none(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10)))
    files.finish(500, {})
    assert lines(files.failures_path) == ["end 0"]
    assert files.read_failures() == []


def test_a_failure_is_recorded_on_one_line_escaped_and_cut_short() -> None:
    recorded = Failure.now("a", 1, "bad\nline \x1b[2J" + "x" * 1000)
    assert recorded.error.startswith("bad\\nline \\x1b[2J") and len(recorded.error) == 300
    assert recorded.when.endswith("Z") and " " not in recorded.when
    assert parse_failures(render_failures([recorded])) == [recorded]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"a 1 2026-01-02T03:04:05Z err\n", id="no-end-line"),
        pytest.param(b"a 1 2026-01-02T03:04:05Z err\nend 2\n", id="count-differs"),
        pytest.param(b"a 1 2026-01-02T03:04:05Z err\nend 1", id="end-cut-short"),
        pytest.param(b"a 1 2026-01-02T03:04:05Z err\nb 2 2026", id="cut-mid-line"),
        pytest.param(b"a x 2026-01-02T03:04:05Z err\nend 1\n", id="bad-serial"),
        pytest.param(b"a\xff 1 2026-01-02T03:04:05Z err\nend 1\n", id="non-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_failures_record_that_is_not_whole_reads_as_none(files: StateFiles, content: bytes) -> None:
    files.failures_path.write_bytes(content)
    assert files.read_failures() is None


def test_a_corrupt_todo_gives_way_to_the_failures_record_at_the_state_serial(
    files: StateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    files.begin(todo_of(500, ("a", 10), ("b", 20), ("c", 30)))
    files.finish(500, {"b": failure("b", 20), "c": failure("c", 30)})
    files.todo_path.write_bytes(b"500\nb 20\nc")
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.state"):
        todo = read_todo(files)
    assert todo == todo_of(500, ("b", 20), ("c", 30))
    assert "corrupt" in caplog.text and "stay owed" in caplog.text
    assert files.read_serial() == 500


def test_a_corrupt_todo_without_a_whole_failures_record_voids_the_state_for_a_full_sync(
    files: StateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    files.write_serial(500)
    files.todo_path.write_bytes(b"500\nb 20\nc")
    files.failures_path.write_bytes(b"b 20 2026-01-02T03:04:05Z err\n")  # its end is missing
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.state"):
        assert read_todo(files) is None
    assert "full sync" in caplog.text
    assert files.read_serial() is None
    assert not files.todo_path.exists()


def test_a_run_that_stopped_early_leaves_the_state_where_it_was(files: StateFiles) -> None:
    files.write_serial(400)
    files.begin(todo_of(500, ("a", 410), ("b", 420), ("c", 430)))
    files.done("a", 410)
    files.finish(500, {"b": failure("b", 420)}, remaining=[("c", 430)])
    assert files.read_serial() == 400
    assert lines(files.todo_path) == ["500", "b 420", "c 430"]
    assert files.read_failures() == [failure("b", 420)]


def test_earlier_failures_a_run_never_reached_stay_recorded_and_those_it_synced_go(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10), ("b", 20)))
    files.finish(500, {"a": failure("a", 10), "b": failure("b", 20)})
    files.begin(todo_of(600, ("a", 10), ("b", 20), ("n", 550)))
    files.done("a", 10)
    files.finish(600, {"n": failure("n", 550)}, remaining=[("b", 20)])
    assert files.read_failures() == [failure("n", 550), failure("b", 20)]


# ---------------------------------------------------------------- generation


def test_fresh_directory_just_gets_the_generation_file(files: StateFiles) -> None:
    files.check_generation()
    assert files.generation_path.read_text() == GENERATION + "\n"
    assert sorted(p.name for p in files.directory.iterdir() if p.name != "tmp") == ["generation"]


def test_current_generation_changes_nothing(files: StateFiles) -> None:
    files.generation_path.write_text(GENERATION + "\n")
    files.write_serial(42)
    files.todo_path.write_text("50\nfoo 1\n")
    files.check_generation()
    assert files.read_serial() == 42
    assert files.todo_path.exists()


@pytest.mark.parametrize(
    "generation",
    [None, b"", b"bandersnatch2-0\n", b"4\n", b"99\n", b"\xff\xfe\x00garbage"],
    ids=["missing", "empty", "older-ours", "four", "future", "non-utf8"],
)
def test_missing_or_unknown_generation_resets_state_and_todo(
    files: StateFiles, generation: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    if generation is not None:
        files.generation_path.write_bytes(generation)
    files.write_serial(42)
    files.todo_path.write_text("50\nfoo 1\n")
    files.journal_path.write_text("target 50\n")
    files.failures_path.write_text("foo 1 2026-01-02T03:04:05Z err\nend 1\n")
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.state"):
        files.check_generation()
    assert "resetting the state" in caplog.text
    # Says what was found in words ("has no generation file" or what it says), never "missing is not ...".
    assert ("has no generation file" if not generation else "another format") in caplog.text
    assert " is not bandersnatch2-1" not in caplog.text
    assert files.read_serial() is None
    assert not files.todo_path.exists()
    assert not files.journal_path.exists()
    assert not files.failures_path.exists()
    assert files.generation_path.read_text() == GENERATION + "\n"


def test_generation_5_adopts_bandersnatch_status_once(
    files: StateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    files.generation_path.write_text("5\n")
    files.status_path.write_text("18233615\n")
    with caplog.at_level(logging.INFO, logger="bandersnatch.ledger.state"):
        files.check_generation()
    assert "Adopted serial 18233615" in caplog.text
    assert files.read_serial() == 18233615
    assert not files.status_path.exists()
    assert (files.directory / "status.adopted").read_text() == "18233615\n"
    assert files.generation_path.read_text() == GENERATION + "\n"

    # A later run: the generation is ours now, a reappearing status is not adopted again.
    files.write_serial(18300000)
    files.status_path.write_text("1\n")
    caplog.clear()
    files.check_generation()
    assert files.read_serial() == 18300000
    assert files.status_path.exists()
    assert "Adopted" not in caplog.text


def test_generation_5_without_status_just_takes_the_generation(files: StateFiles) -> None:
    files.generation_path.write_text("5\n")
    files.check_generation()
    assert files.read_serial() is None
    assert files.generation_path.read_text() == GENERATION + "\n"


def test_generation_5_with_unreadable_status_adopts_nothing(files: StateFiles) -> None:
    files.generation_path.write_text("5\n")
    files.status_path.write_text("not a serial\n")
    files.check_generation()
    assert files.read_serial() is None
    assert files.status_path.exists()


# ---------------------------------------------------------------- count_pending (bandersnatch status)


def test_count_pending_of_missing_todo_is_zero(files: StateFiles) -> None:
    assert files.count_pending() == 0


def test_count_pending_without_journal_counts_the_entries(files: StateFiles) -> None:
    files.todo_path.write_text("500\nDjango 480\nzope.interface 499\n")
    assert files.count_pending() == 2


def test_count_pending_subtracts_the_journal_like_read_todo(files: StateFiles) -> None:
    files.begin(todo_of(500, ("a", 10), ("B.Project", 20), ("c", 30), ("d", 40)))
    files.done("a", 10)
    files.done("b-project", 20)
    files.done("d", 39)  # an older serial than owed: still pending
    files.close()
    reader = StateFiles(files.directory, files.staging)
    todo = read_todo(reader)
    assert todo is not None
    assert reader.count_pending() == len(todo.pending) == 2


@pytest.mark.parametrize("content", [b"", b"x\nfoo 1\n", b"500\nfoo\n"])
def test_count_pending_of_a_corrupt_todo_is_none_and_repairs_nothing(
    files: StateFiles, content: bytes
) -> None:
    files.todo_path.write_bytes(content)
    files.journal_path.write_text("target 500\n")
    files.write_serial(7)
    assert files.count_pending() is None
    assert files.todo_path.read_bytes() == content
    assert files.journal_path.exists() and files.read_serial() == 7
