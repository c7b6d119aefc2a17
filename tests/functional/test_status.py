"""``bandersnatch status``: read-only, no walk, at most one upstream request, against real mirrors."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, pending_work, tree_snapshot, write_config

from bandersnatch import cli
from bandersnatch.ledger.counts import Counts, Totals
from bandersnatch.verify.status import Filters, Status, render_prometheus, render_text


def status(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["-c", str(mirror.config), "status", *args])
    return code, capsys.readouterr().out


def status_json(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out = status(mirror, capsys, "--json", *args)
    return code, json.loads(out)


def on_disk(web: Path) -> tuple[int, int, int]:
    """Projects, files and bytes as the JSON pages on disk say: what status must report without walking."""
    projects = files = size = 0
    for page in (web / "simple").glob("*/index.v1_json"):
        doc = json.loads(page.read_bytes())
        projects += 1
        files += len(doc["files"])
        size += sum(f["size"] for f in doc["files"])
    return projects, files, size


def counted(report: Any) -> tuple[int, int, int]:
    return report["projects"], report["files"], report["bytes"]


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_a_current_mirror_reports_serials_counts_and_filters_exits_0_and_writes_nothing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    before = tree_snapshot(mirror.root)
    upstream.reset_requests()
    code, report = status_json(mirror, capsys)
    assert code == 0
    assert upstream.count_requests() == upstream.count_requests("/pypi", "POST") == 1
    assert tree_snapshot(mirror.root) == before
    assert report["serial"] == report["upstream_serial"] == upstream.changelog_last_serial()
    assert report["lag_serials"] == 0
    assert report["pending_projects"] == 0 and report["failed_projects"] == []
    assert ISO_UTC.match(report["last_success"])
    assert report["last_run"]["exit_code"] == 0 and report["last_run"]["synced"] == 4
    assert counted(report) == on_disk(mirror.web) == (4, 5, sum(f.size for f in sample_corpus.files.values()))
    assert report["filters"]["enabled"] == [] and report["current"] is True
    code, text = status(mirror, capsys)
    assert code == 0
    assert f"at serial {upstream.changelog_last_serial()} (0 behind)" in text
    assert "4 project(s), 5 file(s)" in text and re.search(r"^state +current$", text, re.M)


def test_failed_projects_are_named_with_their_last_error_and_exit_1(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    upstream.fail("/simple/beta/", 500, times=None)
    assert mirror.run() == 1
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 1
    assert report["failed_projects"] == ["beta"]
    assert report["pending_projects"] == 1
    assert "500" in report["failures"][0]["error"]
    assert report["last_success"] is None and report["last_run"]["exit_code"] == 1
    code, text = status(mirror, capsys, "--offline")
    assert code == 1
    assert re.search(r"^  beta \(serial \d+, [0-9TZ:-]+\): .*500", text, re.M)
    upstream.clear_faults()
    assert mirror.run() == 0
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0 and report["failed_projects"] == [] and report["pending_projects"] == 0
    assert counted(report) == on_disk(mirror.web)


def test_offline_status_sends_no_request_at_all(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.reset_requests()
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0
    assert upstream.count_requests() == 0
    assert report["upstream_serial"] is None and report["lag_serials"] is None
    assert report["serial"] == upstream.changelog_last_serial()


def test_an_unreachable_upstream_is_one_line_and_the_local_figures_still_come(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.fail("/pypi", 503, times=None)
    upstream.reset_requests()
    code, report = status_json(mirror, capsys)
    assert upstream.count_requests() == 1  # no retries: status answers now
    assert code == 0  # the mirror itself is current; the lag is for monitoring to judge
    assert report["upstream_serial"] is None and "503" in report["upstream_error"]
    assert report["serial"] is not None and report["pending_projects"] == 0


def test_upstream_changes_since_the_last_run_show_as_lag(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_wheel("beta", "0.6")
    upstream.add_wheel("gamma", "1.0")
    _, report = status_json(mirror, capsys)
    assert report["lag_serials"] == report["upstream_serial"] - report["serial"] > 0


def test_a_mirror_never_run_is_not_current(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 1
    assert report["serial"] is None and report["last_success"] is None and report["last_run"] is None
    assert report["projects"] is None and "no run has completed yet" in report["problems"]
    assert not mirror.root.exists()


def test_filters_in_force_are_reported(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    sections = ("[plugins]\nenabled =\n    allowlist_project\n\n"
                "[allowlist]\npackages =\n    beta\n    zope.interface_x\nwith-dependencies = true\n")
    mirror = write_config(tmp_path, upstream.url, sections=sections)
    assert mirror.run() == 0
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0
    assert report["filters"] == {"enabled": ["allowlist_project"], "allowlist": 2, "requirements": 0,
                                 "with_dependencies": True, "blocklist": 0}
    assert counted(report) == on_disk(mirror.web) and report["projects"] == 3  # alpha-lib as a dependency
    code, text = status(mirror, capsys, "--offline")
    expected = r"^filters +allowlist_project; allowlist of 2 package\(s\); with dependencies$"
    assert re.search(expected, text, re.M)


# ---------------------------------------------------------------- the counts, kept by mirror


def test_counts_follow_added_removed_and_deleted_files_and_projects_exactly(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_wheel("beta", "0.6")
    upstream.remove_file("Alpha-Lib", next(f.filename for f in upstream.files("Alpha-Lib")))
    upstream.remove_project("zope.interface_x")
    upstream.add_project("new-empty")
    assert mirror.run() == 0
    _, report = status_json(mirror, capsys, "--offline")
    assert counted(report) == on_disk(mirror.web) == (4, 4, report["bytes"])
    (mirror.root / "counts").unlink()  # a lost record: the next run counts every page once
    assert mirror.run() == 0
    _, again = status_json(mirror, capsys, "--offline")
    assert counted(again) == counted(report)


def wait_for_journal(journal: Path, lines: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") > lines:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def test_counts_stay_exact_when_a_run_is_killed_between_page_writes(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(30):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.latency = 0.05
    mirror = write_config(tmp_path, upstream.url, workers="2")
    proc = mirror.run_subprocess()
    wait_for_journal(mirror.root / "counts.journal", 8, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 1 and report["run_unfinished"] is True
    assert report["pending_projects"] == len(pending_work(mirror.root)) > 0
    assert report["last_run"] is None  # SIGKILL: nothing recorded; the journal says a run was cut
    upstream.latency = 0.0
    upstream.add_wheel("proj03", "2.0")
    assert mirror.run() == 0
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0 and report["run_unfinished"] is False
    assert counted(report) == on_disk(mirror.web) == (30, 31, report["bytes"])


# ---------------------------------------------------------------- beside a running mirror


@pytest.mark.slow
def test_status_answers_at_once_while_a_mirror_run_holds_the_lock(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    for i in range(6):
        upstream.add_wheel(f"late{i}", "1.0")
    upstream.slow("/simple/late", 0.5, times=None)
    proc = mirror.run_subprocess()
    try:
        wait_for_journal(mirror.root / "todo.journal", 0, proc)
        started = time.monotonic()
        code, report = status_json(mirror, capsys, "--offline")
        assert time.monotonic() - started < 2
        assert proc.poll() is None, "the run must still be going on"
        assert code == 1 and report["run_unfinished"] is True and report["pending_projects"] > 0
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0 and report["pending_projects"] == 0 and counted(report) == on_disk(mirror.web)


def test_status_as_a_subprocess_prints_text_and_exits_1_after_an_interrupted_run(
    tmp_path: Path, upstream: Upstream
) -> None:
    for i in range(20):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.latency = 0.05
    mirror = write_config(tmp_path, upstream.url, workers="1")
    proc = mirror.run_subprocess()
    wait_for_journal(mirror.root / "todo.journal", 3, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), "status",
                             "--offline"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "exit code 130" in result.stdout and "project(s) owed" in result.stdout
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- Prometheus


def parse_exposition(text: str) -> dict[str, tuple[str, str, dict[str, str], float]]:
    """name -> (help, type, labels, value) of a text exposition with one sample per metric."""
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: dict[str, tuple[dict[str, str], float]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, rest = line[7:].partition(" ")
            helps[name] = rest
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        else:
            found = re.fullmatch(r'([a-z_]+)\{mirror="((?:[^"\\]|\\.)*)"\} (\S+)', line)
            assert found, line
            samples[found[1]] = ({"mirror": found[2]}, float(found[3]))
    assert set(helps) == set(types) == set(samples)
    return {name: (helps[name], types[name], *samples[name]) for name in samples}


def test_prometheus_file_is_written_atomically_and_parses_back_to_the_json_figures(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    upstream.fail("/simple/beta/", 500, times=None)
    assert mirror.run() == 1
    textfile = tmp_path / "textfile"
    target = textfile / "bandersnatch.prom"
    textfile.mkdir()
    code, report = status_json(mirror, capsys, "--prometheus", str(target))
    assert code == 1
    assert sorted(p.name for p in textfile.iterdir()) == ["bandersnatch.prom"]  # no temporary file left
    metrics = parse_exposition(target.read_text())
    assert all(kind == "gauge" and help_text for help_text, kind, _, _ in metrics.values())
    assert {labels["mirror"] for _, _, labels, _ in metrics.values()} == {str(mirror.root)}
    value = {name.removeprefix("bandersnatch_"): v for name, (_, _, _, v) in metrics.items()}
    assert value["serial"] == report["serial"] and value["upstream_serial"] == report["upstream_serial"]
    assert value["lag_serials"] == 0
    assert value["pending_projects"] == report["pending_projects"] == 1
    assert value["failed_projects"] == 1 and value["current"] == 0 and value["last_run_exit_code"] == 1
    assert (value["projects"], value["files"], value["bytes"]) == counted(report)
    assert "last_success_timestamp_seconds" not in value  # never succeeded: left out, not a fake 0
    upstream.clear_faults()
    assert mirror.run() == 0
    status_json(mirror, capsys, "--offline", "--prometheus", str(target))
    metrics = parse_exposition(target.read_text())
    value = {name.removeprefix("bandersnatch_"): v for name, (_, _, _, v) in metrics.items()}
    assert abs(value["last_success_timestamp_seconds"] - time.time()) < 60
    assert value["current"] == 1 and "upstream_serial" not in value


def test_an_unwritable_prometheus_path_is_one_line_and_exit_2(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _ = status(mirror, capsys, "--offline", "--prometheus", str(blocker / "x.prom"))
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_prometheus_rendering_escapes_the_label_and_leaves_unknowns_out() -> None:
    s = Status(now="2024-05-01T12:00:00Z", directory='/srv/"py\\pi"', master="https://pypi.org",
               serial=None, upstream_serial=None, upstream_error=None, pending_projects=0, failures=(),
               last_run=None, last_success=None, counts=Counts(Totals(2, 3, 4), None, None),
               filters=Filters())
    text = render_prometheus(s)
    assert 'bandersnatch_projects{mirror="/srv/\\"py\\\\pi\\""} 2\n' in text
    assert "bandersnatch_serial" not in text and "bandersnatch_lag_serials" not in text
    assert "bandersnatch_status_timestamp_seconds" in text
    assert "no run has completed yet" in render_text(s)


def test_counts_are_taken_again_when_a_run_finds_the_pages_were_deleted(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    _, first = status_json(mirror, capsys, "--offline")
    shutil.rmtree(mirror.web)  # behind the mirror's back: the counts cannot follow
    assert mirror.run() == 0  # the run notices the lost content and syncs everything again
    _, report = status_json(mirror, capsys, "--offline")
    assert counted(report) == on_disk(mirror.web) == counted(first)


def test_an_8x_mirror_reports_its_serial_before_adoption_and_is_counted_by_the_adopting_run(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_adopt import make_8x_mirror

    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    make_8x_mirror(mirror, upstream.serial)
    for ours in ("last-run", "counts", "counts.journal"):
        (mirror.root / ours).unlink(missing_ok=True)
    before = tree_snapshot(mirror.root)
    _, report = status_json(mirror, capsys, "--offline")
    assert tree_snapshot(mirror.root) == before
    assert report["serial"] == upstream.serial  # 8.x's status file
    assert report["last_success"] is not None and report["projects"] is None  # web/last-modified; not counted
    assert mirror.run() == 0
    code, report = status_json(mirror, capsys, "--offline")
    assert code == 0 and counted(report) == on_disk(mirror.web)


def test_a_mirror_ahead_of_its_upstream_is_not_called_current_and_exits_1(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    """``master`` pointed at an upstream whose serial is lower, before the next run: not "0 behind"."""
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    (mirror.root / "state").write_text(f"{upstream.serial + 900}\n")
    code, text = status(mirror, capsys)
    assert code == 1
    assert "behind" not in text
    assert f"at serial {upstream.serial} (the mirror is 900 AHEAD of it" in text
    assert "NOT current: the mirror's serial is 900 above upstream's" in text
    code, report = status_json(mirror, capsys)
    assert code == 1 and report["ahead_serials"] == 900 and report["lag_serials"] is None
    assert report["current"] is False


@pytest.mark.parametrize("method", ["simple", "auto"])
def test_a_mirror_following_the_listing_reports_the_listings_serial_in_one_request(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str],
    method: str,
) -> None:
    upstream.without_xmlrpc("404")
    mirror = write_config(tmp_path, upstream.url, api_method=method)
    assert mirror.run() == 0
    assert mirror.run() == 0  # auto: the first incremental run records that it follows the listing
    mirrored = upstream.serial
    upstream.add_wheel("Gamma", "1.0")
    before = tree_snapshot(mirror.root)
    upstream.reset_requests()
    code, report = status_json(mirror, capsys)
    assert [(r.method, r.path) for r in upstream.requests] == [("GET", "/simple/")]
    assert report["upstream_error"] is None
    assert report["upstream_serial"] == upstream.serial
    assert report["lag_serials"] == upstream.serial - mirrored > 0
    assert code == 0 and tree_snapshot(mirror.root) == before
    upstream.reset_requests()
    assert mirror.run() == 0
    _, text = status(mirror, capsys)
    assert [r.status for r in upstream.requests if r.path == "/simple/"][-1] == 304
    assert f"at serial {upstream.serial} (0 behind)" in text


# ---------------------------------------------------------------- issue 18, case 19


def test_a_run_stopped_by_ctrl_c_records_what_it_did_and_status_says_it_was_interrupted(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(20):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.latency = 0.05
    mirror = write_config(tmp_path, upstream.url, workers="1")
    proc = mirror.run_subprocess()
    wait_for_journal(mirror.root / "todo.journal", 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    done = (mirror.root / "todo.journal").read_text().count("\n") - 1  # its first line is the target
    record = json.loads((mirror.root / "last-run").read_bytes())
    assert record["exit_code"] == 130 and record["synced"] == done >= 3
    assert "interrupted" in record["stop_reason"]
    code, text = status(mirror, capsys, "--offline")
    assert code == 1 and "interrupted" in text and "going on now" not in text, text
    assert f"{done} synced" in text
    code, report = status_json(mirror, capsys, "--offline")
    assert report["run_interrupted"] is True
    # Once another run has written to the journal since, nothing says which: a run going on, or killed.
    with (mirror.root / "todo.journal").open("a") as journal:
        journal.write("proj19 1\n")
    code, text = status(mirror, capsys, "--offline")
    assert code == 1 and "going on now, or the last one was killed" in text


def test_status_and_verify_agree_that_a_deleted_web_is_missing_and_the_next_mirror_restores_it(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    shutil.rmtree(mirror.web)
    code, text = status(mirror, capsys, "--offline")
    said = f"{mirror.web / 'simple'} is missing"
    assert code == 1 and said in text and "state        NOT current" in text, text
    for args in ([], ["--repair"]):
        caplog.clear()
        assert cli.main(["-c", str(mirror.config), "verify", *args]) == 1
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and said in errors[0] and "configuration error" not in errors[0], errors
        assert not mirror.web.exists()  # verify --repair leaves the re-sync to mirror
    assert mirror.run() == 0
    assert status(mirror, capsys, "--offline")[0] == 0
