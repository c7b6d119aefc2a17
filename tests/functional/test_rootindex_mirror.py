"""Specification of the root index as a mirror run keeps it: repaired when damaged, never read whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import assert_mirror_matches, write_config


def _drop_middle(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join([*lines[:3], *lines[-3:]])


@pytest.mark.parametrize("json_damage", ["lines-lost", "cut"])
def test_mirror_repairs_a_root_index_missing_lines_in_the_middle(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, json_damage: str
) -> None:
    upstream.add_bulk_projects(22)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    html, data = mirror.web / "simple" / "index.html", mirror.web / "simple" / "index.v1_json"
    html.write_bytes(_drop_middle(html.read_bytes()))  # 6 of 22 still served, first and last intact
    old = data.read_bytes()
    data.write_bytes(_drop_middle(old) if json_damage == "lines-lost" else old[:-40])
    caplog.clear()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert [r.getMessage() for r in caplog.records if "rebuilding the root index" in r.getMessage()]
    upstream.reset_requests()
    assert mirror.run() == 0  # repaired for good: a no-op again


def test_a_no_op_mirror_run_stays_one_request_and_never_reads_the_root_index_whole(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.add_bulk_projects(5)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    assert mirror.run() == 0
    monkeypatch.setattr("bandersnatch.sync.rootindex._tally",
                        lambda *a: pytest.fail("read the root index whole"))
    upstream.reset_requests()
    assert mirror.run() == 0
    assert len(upstream.requests) == 1
