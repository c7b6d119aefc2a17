"""The reasons for a full sync: one chosen when several hold, and said once in the words operators know."""

from __future__ import annotations

import logging

import pytest

from bandersnatch.sync.plan import FullSyncReason, Work, announce, full_sync_reason


def test_no_reason_holding_is_no_full_sync() -> None:
    assert full_sync_reason([]) is None


@pytest.mark.parametrize("reason", list(FullSyncReason))
def test_a_reason_alone_is_the_reason(reason: FullSyncReason) -> None:
    assert full_sync_reason([reason]) is reason


def test_of_several_reasons_the_first_declared_is_the_one_chosen() -> None:
    holding = [FullSyncReason.FORCE_CHECK, FullSyncReason.CONTENT_LOST, FullSyncReason.FILTERS_CHANGED]
    assert full_sync_reason(holding) is FullSyncReason.FILTERS_CHANGED


def test_lost_content_is_one_warning_naming_what_is_gone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bandersnatch.sync.plan"):
        announce(FullSyncReason.CONTENT_LOST, "web/simple holds no project pages although state says so")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(
        logging.WARNING,
        "web/simple holds no project pages although state says so: content was lost; a full sync follows "
        "(files still on disk are checked, not downloaded again)")]


def test_a_reason_with_no_operator_line_of_its_own_is_said_at_debug(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bandersnatch.sync.plan"):
        announce(FullSyncReason.FIRST_RUN)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert FullSyncReason.FIRST_RUN.value in caplog.records[0].getMessage()


def test_work_is_a_name_and_serial_pair() -> None:
    name, serial = Work("Foo", 7)
    assert (name, serial) == ("Foo", 7) and Work("Foo", 7) == ("Foo", 7)
