"""The cooling-off window ([mirror] hold-back) in whole runs against the fake PyPI.

The mirror's clock is the ``now`` a test gives ``Mirror``: moving it three days takes no time.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.fakepypi import Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, write_config

from bandersnatch.config.settings import load
from bandersnatch.ledger.holdback import LEDGER
from bandersnatch.sync.mirror import Mirror
from bandersnatch.verify.status import gather

HOUR = 3600.0


class Clock:
    """The mirror's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def uploaded(clock: Clock, hours_ago: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(clock.now - hours_ago * HOUR, datetime.timezone.utc)


def run(mirror: MirrorSetup, clock: Clock) -> int:
    return Mirror(load(mirror.config), now=clock).run().exit_code


def json_page(mirror: MirrorSetup, project: str) -> dict[str, Any]:
    return json.loads((page_dir(mirror.web, project) / "index.v1_json").read_bytes())  # type: ignore[no-any-return]


def root_serials(mirror: MirrorSetup) -> dict[str, int]:
    root = json.loads((mirror.web / "simple" / "index.v1_json").read_bytes())
    return {p["name"]: p["_last-serial"] for p in root["projects"]}


def test_a_new_file_is_held_then_arrives_on_a_no_change_run_with_last_serial_moved(
        tmp_path: Path, upstream: Upstream) -> None:
    clock = Clock()
    upstream.add_wheel("fresh", "1.0", upload_time=uploaded(clock, 200))
    new = upstream.add_wheel("fresh", "2.0", upload_time=uploaded(clock, 1))
    fresh_serial = upstream.project_serial("fresh")
    upstream.add_wheel("later", "1.0", upload_time=uploaded(clock, 300))  # upstream moves on past fresh
    mirror = write_config(tmp_path, upstream.url, hold_back="72h", json="true")

    report = Mirror(load(mirror.config), now=clock).run()
    assert report.exit_code == 0  # held files are the operator's choice, not an incomplete mirror
    page = json_page(mirror, "fresh")
    assert [f["filename"] for f in page["files"]] == ["fresh-1.0-py3-none-any.whl"]
    assert page["versions"] == ["1.0"] and page["meta"]["_last-serial"] == fresh_serial
    assert "fresh-2.0" not in (page_dir(mirror.web, "fresh") / "index.html").read_text()
    api = json.loads((mirror.web / "pypi" / "fresh" / "json").read_bytes())
    assert list(api["releases"]) == ["1.0"] and api["info"]["version"] == "1.0"
    assert upstream.count_requests(new.path) == 0
    assert (mirror.root / LEDGER).exists()
    status = gather(load(mirror.config), None).hold_back
    assert status is not None and status.files == 1
    assert status.next_matures is not None and abs(status.next_matures - (clock.now + 71 * HOUR)) < 2
    assert report.held_until == status.next_matures  # the run's summary and status name the same second

    clock.now += 72 * HOUR  # nothing changes upstream: the window alone releases the file
    upstream.reset_requests()
    assert run(mirror, clock) == 0
    assert_mirror_matches(upstream, mirror.web)
    serial = int((mirror.root / "state").read_text())
    assert serial > fresh_serial
    assert json_page(mirror, "fresh")["meta"]["_last-serial"] == serial
    assert root_serials(mirror)["fresh"] == serial  # downstream mirrors see the project change
    api = json.loads((mirror.web / "pypi" / "fresh" / "json").read_bytes())
    assert api["info"]["version"] == "2.0" and api["last_serial"] == serial
    assert root_serials(mirror)["later"] == upstream.project_serial("later")
    assert upstream.count_requests("/simple/") == 1  # fresh's page alone
    assert upstream.count_requests(new.path) == 1
    assert not (mirror.root / LEDGER).exists()


def test_exempt_projects_skip_the_window_and_a_yank_applies_at_once(tmp_path: Path,
                                                                   upstream: Upstream) -> None:
    clock = Clock()
    upstream.add_wheel("urgent", "1.0", upload_time=uploaded(clock, 1))
    old = upstream.add_wheel("steady", "1.0", upload_time=uploaded(clock, 500))
    upstream.add_wheel("steady", "2.0", upload_time=uploaded(clock, 1))
    mirror = write_config(tmp_path, upstream.url, hold_back="3d", sections="[hold-back]\nexempt = Urgent\n")
    assert run(mirror, clock) == 0
    assert [f["filename"] for f in json_page(mirror, "urgent")["files"]] == ["urgent-1.0-py3-none-any.whl"]

    upstream.yank("steady", old.filename, "broken")
    assert run(mirror, clock) == 0
    files = json_page(mirror, "steady")["files"]
    assert [(f["filename"], f["yanked"]) for f in files] == [("steady-1.0-py3-none-any.whl", "broken")]


def test_turning_hold_back_on_and_off_reconciles_like_a_filter_change(tmp_path: Path,
                                                                    upstream: Upstream) -> None:
    clock = Clock()
    upstream.add_wheel("fresh", "1.0", upload_time=uploaded(clock, 200))
    new = upstream.add_wheel("fresh", "2.0", upload_time=uploaded(clock, 1))
    mirror = write_config(tmp_path, upstream.url)
    assert run(mirror, clock) == 0
    on_disk = mirror.web / new.path.lstrip("/")
    assert on_disk.exists()

    mirror = write_config(tmp_path, upstream.url, hold_back="72h")
    assert run(mirror, clock) == 0
    assert json_page(mirror, "fresh")["versions"] == ["1.0"] and not on_disk.exists()

    mirror = write_config(tmp_path, upstream.url, hold_back="0")
    assert run(mirror, clock) == 0
    assert_mirror_matches(upstream, mirror.web)
    assert not (mirror.root / LEDGER).exists()


def test_a_hold_back_that_does_not_parse_is_exit_2_naming_option_and_file(
        tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = write_config(tmp_path, upstream.url, hold_back="three days")
    assert mirror.run() == 2
    err = capsys.readouterr().err
    assert "hold-back" in err and str(mirror.config) in err and "three days" in err
    assert upstream.count_requests() == 0
