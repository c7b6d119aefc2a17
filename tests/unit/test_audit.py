"""``verify --upstream``'s pure diff: upstream's (name, serial) against the mirror's root index entries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from bandersnatch.config.plugins import BlocklistProject
from bandersnatch.ledger import excluded as excluded_ledger
from bandersnatch.ledger.excluded import ExclusionLedger, Recorded
from bandersnatch.selection.policy import Exclusion
from bandersnatch.verify.audit import GONE, Behind, Extra, Missing, Pending, diff

UPSTREAM = [("Alpha", 10), ("beta", 20), ("Gamma_X", 30)]


def _ours(*entries: tuple[str, int | None]) -> Callable[[], Iterable[tuple[str, int | None]]]:
    return lambda: list(entries)


def _keep_all(key: str, name: str | None) -> Exclusion | None:
    return None


def _blocking(*keys: str) -> Callable[[str, str | None], Exclusion | None]:
    def excluded(key: str, name: str | None) -> Exclusion | None:
        return Exclusion(BlocklistProject, "in the blocklist") if key in keys else None
    return excluded


def test_a_mirror_equal_to_upstream_differs_in_nothing() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("beta", 20), ("gamma-x", 30)), 30, _keep_all)
    assert not audit.differs
    assert (audit.upstream_projects, audit.mirror_projects) == (3, 3)
    assert audit.pending == []


def test_a_project_upstream_has_at_or_below_the_last_sync_and_the_mirror_lacks_is_missing() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("gamma-x", 30)), 30, _keep_all)
    assert audit.missing == [Missing("beta", 20)] and audit.differs


def test_an_older_recorded_serial_is_behind_only_when_the_last_sync_covers_upstream_s() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", 9), ("beta", 19), ("gamma-x", 29)), 20, _keep_all)
    assert audit.behind == [Behind("alpha", 9, 10), Behind("beta", 19, 20)]
    assert audit.pending == [Pending("gamma-x", 29, 30)]  # changed after serial 20: the next run's


def test_changes_after_the_last_sync_are_pending_not_wrong() -> None:
    audit = diff([*UPSTREAM, ("new-one", 41)], _ours(("alpha", 10), ("beta", 20), ("gamma-x", 30)), 35,
                 _keep_all)
    assert audit.pending == [Pending("new-one", None, 41)]
    assert not audit.differs


def test_a_project_upstream_no_longer_lists_is_extra() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("beta", 20), ("gamma-x", 30), ("old", 5)), 30, _keep_all)
    assert audit.extra == [Extra("old", GONE)]


def test_filters_drop_what_they_exclude_and_make_it_extra_when_the_mirror_keeps_it() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("beta", 20)), 30, _blocking("beta", "gamma-x"))
    assert audit.missing == []  # gamma-x is not wanted
    assert audit.extra == [Extra("beta", "not selected: blocklist_project: in the blocklist")]


def test_a_mirror_never_synced_has_nothing_pending() -> None:
    audit = diff(UPSTREAM, _ours(), None, _keep_all)
    assert [m.name for m in audit.missing] == ["alpha", "beta", "gamma-x"] and audit.pending == []


def test_an_entry_without_a_recorded_serial_is_counted_not_compared() -> None:
    audit = diff(UPSTREAM, _ours(("alpha", None), ("beta", 20), ("gamma-x", 30)), 30, _keep_all)
    assert not audit.differs and audit.unserialed == 1


def test_a_name_upstream_spells_otherwise_is_the_same_project() -> None:
    audit = diff([("Zope.Interface", 7)], _ours(("zope-interface", 7)), 7, _keep_all)
    assert not audit.differs and audit.extra == []


def test_a_project_the_run_recorded_as_excluded_by_its_page_is_excluded_not_missing() -> None:
    recorded = {"beta": Recorded(20, "size_project_metadata")}
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("gamma-x", 30)), 30, _keep_all, recorded)
    assert audit.missing == [] and not audit.differs and audit.excluded == 1


def test_a_recorded_exclusion_older_than_upstream_s_change_is_not_trusted() -> None:
    recorded = {"beta": Recorded(15, "size_project_metadata")}  # judged before upstream's change 20
    audit = diff(UPSTREAM, _ours(("alpha", 10), ("gamma-x", 30)), 30, _keep_all, recorded)
    assert audit.missing == [Missing("beta", 20)] and audit.excluded == 0


def test_the_exclusion_ledger_keeps_what_the_run_notes_and_a_full_run_creates_it(tmp_path: Path) -> None:
    staging = tmp_path / ".staging"
    staging.mkdir()
    assert excluded_ledger.read(tmp_path) is None  # an older mirror: unknown
    ledger = ExclusionLedger(tmp_path, staging)
    ledger.note("beta", 20, "size_project_metadata")
    ledger.flush(complete=False)
    assert excluded_ledger.read(tmp_path) is None  # an incremental run does not know the rest
    ledger.flush(complete=True)
    assert excluded_ledger.read(tmp_path) == {"beta": Recorded(20, "size_project_metadata")}
    again = ExclusionLedger(tmp_path, staging)
    again.forget("beta")  # included again
    again.note("gamma-x", 30, "regex_project_metadata")
    again.flush(complete=False)  # known now: each run keeps it up to date
    assert excluded_ledger.read(tmp_path) == {"gamma-x": Recorded(30, "regex_project_metadata")}
    again.forget("gamma-x")
    again.flush(complete=False)
    assert excluded_ledger.read(tmp_path) == {}  # empty, still known
