"""The mirror's totals (``counts`` + ``counts.journal``): exact across kills, never counted twice."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bandersnatch.ledger.counts import NONE, Tally, Totals, read_counts


class Pages:
    """Stands in for the project pages on disk: what each project links now."""

    def __init__(self) -> None:
        self.now: dict[str, Totals] = {}
        self.measured: list[str] = []

    def measure(self, key: str) -> Totals:
        self.measured.append(key)
        return self.now.get(key, NONE)

    def listing(self) -> list[str]:
        return sorted(self.now)

    def write(self, tally: Tally, key: str, after: Totals) -> None:
        """What ProjectSync does around a page write: journal first, then the page, then the delta."""
        before = self.now.get(key, NONE)
        tally.before(key, before)
        self.now[key] = after
        tally.changed(before, after)


def tally_for(tmp_path: Path, pages: Pages) -> Tally:
    return Tally(tmp_path, tmp_path / "tmp" / "t", pages.measure, pages.listing)


def total(pages: Pages) -> Totals:
    result = NONE
    for t in pages.now.values():
        result += t
    return result


def test_a_missing_record_is_rebuilt_from_every_page_once(tmp_path: Path) -> None:
    pages = Pages()
    pages.now = {"a": Totals(1, 2, 30), "b": Totals(1, 0, 0)}
    tally = tally_for(tmp_path, pages)
    tally.open()
    tally.close()
    counts = read_counts(tmp_path)
    assert counts is not None and counts.totals == Totals(2, 2, 30)
    pages.measured.clear()
    again = tally_for(tmp_path, pages)
    again.open()
    again.close()
    assert pages.measured == []  # with a record, no page is read
    assert not (tmp_path / "counts.journal").exists()


def test_a_run_adds_what_each_page_write_changed(tmp_path: Path) -> None:
    pages = Pages()
    pages.now = {"a": Totals(1, 2, 30)}
    tally_for(tmp_path, pages).open()  # record: 1 project; the journal is left as if killed at once
    tally = tally_for(tmp_path, pages)
    tally.open()
    pages.write(tally, "a", Totals(1, 3, 45))
    pages.write(tally, "b", Totals(1, 1, 5))
    pages.write(tally, "a", NONE)  # removed later in the same run
    tally.close()
    counts = read_counts(tmp_path)
    assert counts is not None and counts.totals == total(pages) == Totals(1, 1, 5)


def test_a_killed_run_is_counted_from_its_journal_by_the_next(tmp_path: Path) -> None:
    pages = Pages()
    pages.now = {"a": Totals(1, 2, 30), "b": Totals(1, 1, 1)}
    first = tally_for(tmp_path, pages)
    first.open()
    first.close()
    killed = tally_for(tmp_path, pages)
    killed.open()
    pages.write(killed, "a", Totals(1, 5, 50))
    pages.write(killed, "c", Totals(1, 1, 7))
    pages.write(killed, "a", Totals(1, 6, 60))  # a second write: the first line's "before" counts
    with (tmp_path / "counts.journal").open("a") as f:
        f.write("b 1 1")  # killed while writing this line: b's page was not touched
    # SIGKILL: no close()
    pages.measured.clear()
    nxt = tally_for(tmp_path, pages)
    nxt.open()
    assert sorted(pages.measured) == ["a", "c"]  # only the pages the killed run changed
    nxt.close()
    counts = read_counts(tmp_path)
    assert counts is not None and counts.totals == total(pages) == Totals(3, 8, 68)


def test_a_journal_already_folded_is_not_counted_twice(tmp_path: Path) -> None:
    pages = Pages()
    tally = tally_for(tmp_path, pages)
    tally.open()
    pages.write(tally, "a", Totals(1, 2, 20))
    journal = (tmp_path / "counts.journal").read_bytes()
    tally.close()
    # Killed after counts was written, before its journal was removed.
    (tmp_path / "counts.journal").write_bytes(journal)
    nxt = tally_for(tmp_path, pages)
    nxt.open()
    nxt.close()
    counts = read_counts(tmp_path)
    assert counts is not None and counts.totals == Totals(1, 2, 20)


@pytest.mark.parametrize("content", [b"", b"{", b'{"projects": -1, "files": 0, "bytes": 0}', b"[]"])
def test_a_damaged_record_is_counted_again_with_a_warning(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    pages = Pages()
    pages.now = {"a": Totals(1, 2, 30)}
    (tmp_path / "counts").write_bytes(content)
    assert read_counts(tmp_path) is None
    tally = tally_for(tmp_path, pages)
    with caplog.at_level(logging.WARNING, logger="bandersnatch.ledger.counts"):
        tally.open()
    tally.close()
    assert "damaged" in caplog.text
    counts = read_counts(tmp_path)
    assert counts is not None and counts.totals == Totals(1, 2, 30)


def test_a_symlinked_counts_journal_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_text("precious\n")
    (tmp_path / "counts.journal").symlink_to(outside)
    tally = tally_for(tmp_path, Pages())
    tally.open()  # the link itself is removed (never followed) and a journal of our own started
    Pages().write(tally, "a", Totals(1, 1, 1))
    tally.close()
    assert outside.read_text() == "precious\n"
    assert not (tmp_path / "counts.journal").exists()
