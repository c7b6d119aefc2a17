"""``bandersnatch verify --upstream``: the mirror's projects against upstream's list, in one request."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, write_config

from bandersnatch import cli


def _audit(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["-c", str(mirror.config), "verify", "--upstream", *args])
    return code, capsys.readouterr().out


def test_a_complete_mirror_equals_upstream_in_one_request(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    upstream.reset_requests()
    code, out = _audit(synced, capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["equal"] and doc["upstream"]["projects"] == doc["mirror"]["projects"] == 4
    assert doc["upstream"]["source"] == "PEP 691 root listing"
    assert (doc["missing"], doc["extra"], doc["behind"], doc["pending"]) == ([], [], [], [])
    assert len(upstream.requests) == 1 and upstream.count_requests("/simple/", "GET") == 1


def test_a_deleted_project_directory_is_missing_and_exit_1(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    shutil.rmtree(synced.web / "simple" / "beta")  # the root index still names it
    code, out = _audit(synced, capsys)
    assert code == 1
    assert out.splitlines() == [f"missing: beta (upstream serial {upstream.project_serial('beta')})"]
    summary = caplog.records[-1]
    assert summary.levelname == "ERROR" and "1 missing, 0 extra, 0 behind, 0 pending" in summary.getMessage()


def test_an_upstream_change_after_the_last_sync_is_pending_and_exit_0(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    upstream.add_wheel("beta", "0.6")
    upstream.add_project("brand-new")
    code, out = _audit(synced, capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert [(p["name"], p["upstream_serial"]) for p in doc["pending"]] == [
        ("beta", upstream.project_serial("beta")), ("brand-new", upstream.project_serial("brand-new"))]
    assert doc["missing"] == doc["behind"] == doc["extra"] == []


def test_a_master_without_a_json_listing_is_asked_its_xmlrpc_list_once(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    upstream.json_api = False
    upstream.reset_requests()
    code, out = _audit(synced, capsys, "--json")
    assert code == 0 and json.loads(out)["upstream"]["source"] == "XML-RPC list_packages_with_serial"
    assert upstream.count_requests("/pypi", "POST") == 1


@pytest.mark.parametrize("option", ["--fast", "--hash", "--allow-mass-removal", "--repair"])
def test_verify_upstream_with_a_file_reading_or_repair_option_is_a_usage_error(
        tmp_path: Path, option: str) -> None:
    with pytest.raises(SystemExit) as stopped:  # refused before the configuration is read
        cli.main(["-c", str(tmp_path / "none.conf"), "verify", "--upstream", option])
    assert stopped.value.code == 2


def test_projects_excluded_on_their_page_are_excluded_not_missing(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    mirror = write_config(tmp_path, upstream.url, sections=(
        "[plugins]\nenabled =\n    versions_count_project_metadata\n\n"
        "[versions_count_project_metadata]\nmin_versions = 2\n"))
    assert mirror.run() == 0
    code, out = _audit(mirror, capsys, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["missing"] == [] and doc["upstream"]["excluded"] >= 1
    # A mirror older than the record: today's answer, and one line saying why.
    (mirror.root / "excluded").unlink()
    code, out = _audit(mirror, capsys, "--json")
    assert code == 1 and len(json.loads(out)["missing"]) == doc["upstream"]["excluded"]
    said = [r for r in caplog.records if "no record of the projects the filters excluded" in r.getMessage()]
    assert len(said) == 1


def test_an_unreachable_master_is_not_asked_again_over_xmlrpc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    # No back-off between tries (the jitter factor becomes 0).
    monkeypatch.setattr("bandersnatch.upstream.transport.random.uniform", lambda low, high: 0.0)
    mirror = write_config(tmp_path, "http://127.0.0.1:9", timeout="1")  # api-method auto
    mirror.root.mkdir()
    code, _ = _audit(mirror, capsys)
    assert code == 1
    assert "127.0.0.1:9: connection refused" in caplog.text
    assert "list_packages_with_serial" not in caplog.text  # the listing got no answer: no second wait


def test_json_gets_a_document_with_the_error_when_upstream_cannot_be_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("bandersnatch.upstream.transport.random.uniform", lambda low, high: 0.0)
    mirror = write_config(tmp_path, "http://127.0.0.1:9", timeout="1")
    mirror.root.mkdir()
    code, out = _audit(mirror, capsys, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["equal"] is False and "127.0.0.1:9: connection refused" in doc["error"]
