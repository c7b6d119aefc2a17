"""``verify --upstream``'s pure diff: upstream's (name, serial) against the mirror's root index entries."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bandersnatch.config.plugins import BlocklistProject
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
