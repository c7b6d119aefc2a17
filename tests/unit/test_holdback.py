"""The cooling-off window on its own: its setting, the deciding function, the plan and the ledger."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bandersnatch.config.holdback import HoldBack, parse_window
from bandersnatch.config.settings import Config, parse
from bandersnatch.errors import ConfigError
from bandersnatch.formats.simple import DistFile, ProjectPage
from bandersnatch.ledger.holdback import LEDGER, Held, HoldLedger, read
from bandersnatch.selection.holdback import Timing, Window, decide, upload_epoch
from bandersnatch.selection.policy import Selection
from bandersnatch.verify.status import HoldBackStatus

CONF = Path("/etc/b.conf")
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
HOUR = 3600.0


def config(hold_back: str | None, *sections: str) -> Config:
    option = f"hold-back = {hold_back}\n" if hold_back is not None else ""
    return parse("[mirror]\ndirectory = /srv/pypi\n" + option + "\n" + "\n\n".join(sections) + "\n", CONF)


def selection(hold_back: str | None, *sections: str, now: float = NOW) -> Selection:
    cfg = config(hold_back, *sections)
    return Selection(cfg.filters, Window(cfg.hold_back, lambda: now))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def page(ages: dict[str, float | None], versions: tuple[str, ...] | None = None) -> ProjectPage:
    """A page of ``foo`` whose files were uploaded ``ages[filename]`` hours before NOW (None: no time)."""
    files = tuple(DistFile(filename=f, url=f"https://files.example/{f}", hashes={"sha256": "0" * 64}, size=10,
                           upload_time=None if age is None else iso(NOW - age * HOUR))
                  for f, age in ages.items())
    return ProjectPage(name="foo", files=files, last_serial=1, versions=versions)


# ------------------------------------------------------------ the setting


@pytest.mark.parametrize(("raw", "seconds"), [
    ("72h", 72 * HOUR), ("3d", 3 * 86400.0), ("90m", 5400.0), ("45s", 45.0), ("259200", 259200.0),
    ("1.5d", 1.5 * 86400), ("72H", 72 * HOUR), ("0", 0.0), ("", 0.0), (None, 0.0),
])
def test_a_window_reads_seconds_and_the_s_m_h_d_suffixes(raw: str | None, seconds: float) -> None:
    assert parse_window(raw, "b.conf") == seconds


@pytest.mark.parametrize("raw", ["72 hours", "-1h", "3w", "h", "72h3", "1e3", "400d"])
def test_a_window_that_does_not_parse_names_the_option_and_the_file(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(raw)
    where = (caught.value.path, caught.value.section, caught.value.option)
    assert where == (str(CONF), "mirror", "hold-back")


def test_hold_back_is_off_by_default_and_leaves_the_fingerprint_alone() -> None:
    assert not config(None).hold_back.active
    assert config(None).hold_back.fingerprint() is None and config("0").hold_back.fingerprint() is None


def test_the_window_and_its_exemptions_change_the_fingerprint() -> None:
    prints = {config("72h").hold_back.fingerprint(), config("3d").hold_back.fingerprint(),
              config("48h").hold_back.fingerprint(),
              config("72h", "[hold-back]\nexempt = urgent-fix").hold_back.fingerprint()}
    assert len(prints) == 3  # 72h and 3d are one window
    assert None not in prints


def test_exempt_without_a_window_is_refused_as_ignored() -> None:
    with pytest.raises(ConfigError, match="hold-back is off") as caught:
        config(None, "[hold-back]\nexempt = foo")
    assert (caught.value.section, caught.value.option) == ("hold-back", "exempt")


def test_an_exempt_line_that_is_not_a_requirement_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a requirement") as caught:
        config("72h", "[hold-back]\nexempt = foo >>> 1")
    assert (caught.value.section, caught.value.option) == ("hold-back", "exempt")


# ------------------------------------------------------------ the deciding function


@pytest.mark.parametrize(("text", "epoch"), [
    ("2027-01-15T08:00:00Z", NOW), ("2027-01-15T08:00:00.5Z", NOW + 0.5),
    ("2027-01-15T08:00:00.123456Z", NOW + 0.123456), ("2027-01-15T09:30:00+01:30", NOW),
    ("2027-01-15T08:00:00", NOW), ("2027-01-15 08:00:00z", NOW),
    (None, None), ("", None), ("yesterday", None), ("2027-13-45T08:00:00Z", None),
])
def test_upload_time_is_read_as_pep_700_iso_8601(text: str | None, epoch: float | None) -> None:
    found = upload_epoch(text)
    assert found == pytest.approx(epoch) if epoch is not None else found is None


def test_a_file_is_held_until_the_window_has_passed_since_its_upload() -> None:
    uploaded = iso(NOW - 10 * HOUR)
    held = decide(uploaded, NOW, 72 * HOUR)
    assert held.timing is Timing.HELD and held.matures == pytest.approx(NOW + 62 * HOUR)
    assert decide(uploaded, NOW + 62 * HOUR, 72 * HOUR).timing is Timing.RIPE
    assert decide(None, NOW, 72 * HOUR).timing is Timing.UNTIMED
    assert decide("not a time", NOW, 72 * HOUR).timing is Timing.UNTIMED


# ------------------------------------------------------------ a project's plan


def test_a_new_file_is_held_with_the_hold_back_exclusion_and_its_maturity() -> None:
    plan = selection("72h").plan_files("foo", page({"foo-1.0.tar.gz": 100, "foo-1.0-py3-none-any.whl": 2}))
    assert [f.filename for f in plan.files] == ["foo-1.0.tar.gz"]
    [(filename, why)] = plan.dropped
    assert filename == "foo-1.0-py3-none-any.whl" and why.by is HoldBack and why.plugin == "hold_back"
    assert "held back until" in why.reason
    assert plan.held == 1 and plan.matures == pytest.approx(NOW + 70 * HOUR)


def test_a_release_whose_files_are_all_held_is_not_in_versions() -> None:
    p = page({"foo-1.0.tar.gz": 100, "foo-2.0.tar.gz": 1, "foo-2.0-py3-none-any.whl": 3},
             versions=("0.5", "1.0", "2.0"))
    plan = selection("72h").plan_files("foo", p)
    assert plan.versions == ("0.5", "1.0")  # a release with no files upstream stays, as unfiltered
    assert plan.held == 2 and plan.matures == pytest.approx(NOW + 69 * HOUR)


def test_latest_release_counts_only_releases_not_held() -> None:
    sel = selection("72h", "[plugins]\nenabled = latest_release", "[latest_release]\nkeep = 1")
    plan = sel.plan_files("foo", page({"foo-1.0.tar.gz": 500, "foo-2.0.tar.gz": 200, "foo-3.0.tar.gz": 1}))
    assert [f.filename for f in plan.files] == ["foo-2.0.tar.gz"]
    reasons = dict(plan.dropped)
    assert reasons["foo-3.0.tar.gz"].by is HoldBack and reasons["foo-1.0.tar.gz"].plugin == "latest_release"
    assert plan.versions == ("2.0",)


def test_a_file_a_filter_excludes_is_not_counted_as_held() -> None:
    sel = selection("72h", "[plugins]\nenabled = exclude_platform", "[blocklist]\nplatforms = windows")
    plan = sel.plan_files("foo", page({"foo-1.0-cp311-cp311-win_amd64.whl": 1, "foo-1.0.tar.gz": 100}))
    assert plan.held == 0 and plan.matures is None
    assert [why.plugin for _, why in plan.dropped] == ["exclude_platform"]


@pytest.mark.parametrize(("exempt", "kept"), [
    ("foo", ["foo-1.0.tar.gz", "foo-2.0.tar.gz"]),
    ("Foo >= 2", ["foo-2.0.tar.gz"]),
    ("foo < 2", ["foo-1.0.tar.gz"]),
    ("other", []),
])
def test_exempt_projects_or_releases_skip_the_window(exempt: str, kept: list[str]) -> None:
    sel = selection("72h", f"[hold-back]\nexempt = {exempt}")
    plan = sel.plan_files("foo", page({"foo-1.0.tar.gz": 1, "foo-2.0.tar.gz": 1}))
    assert [f.filename for f in plan.files] == kept


def test_a_file_without_upload_time_is_not_held_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    sel = selection("72h")
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            plan = sel.plan_files("foo", page({"foo-1.0.tar.gz": None, "foo-2.0.tar.gz": None}))
            assert len(plan.files) == 2 and plan.held == 0
    assert caplog.text.count("no upload-time") == 1


def test_without_a_window_nothing_is_held_and_the_page_is_untouched() -> None:
    p = page({"foo-1.0.tar.gz": 0.1}, versions=("1.0",))
    plan = selection(None).plan_files("foo", p)
    assert plan.files == p.files and plan.versions == ("1.0",) and plan.held == 0


# ------------------------------------------------------------ the ledger


def test_the_ledger_remembers_the_earliest_maturity_and_forgets_a_project_with_none(tmp_path: Path) -> None:
    staging = tmp_path / "tmp"
    staging.mkdir()
    ledger = HoldLedger(tmp_path, staging)
    ledger.note("foo", 2, NOW + 10.2)
    ledger.note("bar", 1, NOW + 50)
    assert ledger.due(NOW) == [] and ledger.due(NOW + 11) == ["foo"]
    ledger.flush()
    # Rounded up: never due a moment before its file leaves the window.
    assert read(tmp_path) == {"bar": Held(NOW + 50, 1), "foo": Held(NOW + 11, 2)}
    again = HoldLedger(tmp_path, staging)
    again.note("foo", 0, None)
    again.note("bar", 0, None)
    again.flush()
    assert not (tmp_path / LEDGER).exists()


def test_a_damaged_ledger_line_is_skipped_with_one_warning(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / LEDGER).write_text("foo 1800000000 2\n../etc 1 1\nbar soon 1\nbaz 1800000001\n")
    assert read(tmp_path) == {"foo": Held(NOW, 2)}
    assert "ignoring 3 damaged line(s)" in caplog.text


def test_status_says_how_many_files_are_held_and_when_the_next_arrives() -> None:
    held = HoldBackStatus.of(30 * HOUR, {"foo": Held(NOW, 2), "bar": Held(NOW + 60, 1)})
    assert held is not None
    assert held.line() == ("3 new file(s) of 2 project(s) (hold-back 30h); the next arrives with the first "
                           "run after 2027-01-15T08:00:00Z")
    assert HoldBackStatus.of(0, {}) is None
    assert HoldBackStatus.of(259200, {}) == HoldBackStatus(259200, 0, 0, None)
    assert HoldBackStatus(259200, 0, 0, None).line() == "none (hold-back 3d)"
