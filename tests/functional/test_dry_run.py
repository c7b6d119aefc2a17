"""``bandersnatch mirror --dry-run`` against the fake PyPI: it asks what a run would ask, says what the run
would fetch, delete and exclude (and by which plugin), and changes nothing under the mirror directory."""

from __future__ import annotations

import datetime
import json
import stat
import threading
import time
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, write_config
from test_filters_sync import plugins

from bandersnatch import cli

Tree = dict[str, tuple[int, bytes | None, int]]


def tree(root: Path) -> Tree:
    """Every entry below ``root`` and ``root`` itself: its type, bytes (files) and mtime.

    A directory's mtime moves when an entry is created in it, even one removed again: equal trees
    mean nothing was written, not even a temporary file.
    """
    if not root.exists():
        return {}
    out: Tree = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        out[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), data, info.st_mtime_ns)
    return out


def dry_run(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["-c", str(mirror.config), "mirror", "--dry-run", *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("api_method", ["auto", "simple"])
def test_a_first_dry_run_on_an_empty_directory_asks_the_feed_and_the_pages_and_writes_nothing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str],
    api_method: str,
) -> None:
    mirror = write_config(tmp_path, upstream.url, api_method=api_method)
    mirror.root.mkdir()
    before = tree(mirror.root)
    upstream.reset_requests()
    code, out = dry_run(mirror, capsys)
    assert code == 0
    assert tree(mirror.root) == before  # no state, todo, lock, journal, listing-state, web/
    # The feed (changelog or listing), then one page per project: no file, no metadata.
    pages = [r.path for r in upstream.requests if r.path.startswith("/simple/") and r.path != "/simple/"]
    assert sorted(pages) == sorted(f"/simple/{key}/" for key in sample_corpus.projects.values())
    assert upstream.count_requests("/packages/") == 0
    if api_method == "simple":
        assert upstream.count_requests("/simple/", "GET") == len(pages) + 1
    size = sum(f.size for f in sample_corpus.files.values())
    for key in sample_corpus.projects.values():
        assert f"add {key}" in out
    assert f"{len(sample_corpus.files)} file(s) to fetch" in out and f"({size} bytes)" in out
    assert "Full sync (first run: no state and nothing pending)" in out


def test_an_incremental_dry_run_asks_the_changelog_and_the_changed_pages_only(
    synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    new = upstream.add_wheel("beta", "0.6")
    upstream.remove_project("zope.interface_x")
    before = tree(synced.root)
    upstream.reset_requests()
    code, text = dry_run(synced, capsys, "--json")
    assert code == 0 and tree(synced.root) == before
    assert upstream.count_requests("/packages/") == 0
    # The changelog (XML-RPC), the two pages; a 404 is asked again past any cache, as the run does.
    assert sorted(r.path.split("?")[0] for r in upstream.requests if r.method == "GET") == [
        "/simple/beta/", "/simple/zope-interface-x/", "/simple/zope-interface-x/"]
    assert upstream.count_requests(method="POST") == 1
    doc = json.loads(text)
    assert doc["full_sync"] is None and doc["since"] < doc["target"] == upstream.serial
    by_name = {p["name"]: p for p in doc["projects"]}
    assert by_name["beta"]["change"] == "update"
    assert by_name["beta"]["fetch"] == [{"filename": new.filename, "size": new.size}]
    gone = by_name["zope-interface-x"]
    assert gone["change"] == "remove" and gone["removed_by"] is None and len(gone["delete"]) == 1


@pytest.fixture
def corpus(upstream: Upstream) -> Upstream:
    for version in ("1.0", "2.0", "3.0rc1"):
        upstream.add_wheel("alpha", version)
    upstream.add_wheel("beta", "0.1")
    upstream.add_wheel("gamma-evil", "1.0")
    return upstream


FILTERED = plugins("blocklist_project", "prerelease_release", blocklist="packages =\n    gamma-evil\n")


def test_a_dry_run_after_a_filter_change_says_what_goes_and_which_plugin_takes_it(
    tmp_path: Path, corpus: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, corpus.url)
    assert mirror.run() == 0
    write_config(tmp_path, corpus.url, sections=FILTERED)
    before = tree(mirror.root)
    code, out = dry_run(mirror, capsys)
    assert code == 0 and tree(mirror.root) == before
    evil = corpus.files("gamma-evil")[0]
    rc = next(f for f in corpus.files("alpha") if f.version == "3.0rc1")
    assert "Full sync (the filters, core-metadata or hold-back changed since the last run)" in out
    assert "remove gamma-evil (blocklist_project: " in out
    assert "update alpha: delete 1 file(s)" in out
    assert "  excluded release 3.0rc1 (1 file(s)): prerelease_release: " in out
    assert "2 file(s) to delete" in out and f"({evil.size + rc.size} bytes) to free" in out
    assert "projects: 1: pass (max-removals = 100" in out

    code, text = dry_run(mirror, capsys, "--json")
    assert code == 0 and tree(mirror.root) == before
    doc = json.loads(text)
    by_name = {p["name"]: p for p in doc["projects"]}
    assert by_name["gamma-evil"]["change"] == "remove"
    assert by_name["gamma-evil"]["removed_by"]["plugin"] == "blocklist_project"
    assert by_name["gamma-evil"]["delete"] == [{"filename": evil.filename, "size": evil.size}]
    assert by_name["alpha"]["change"] == "update"
    assert by_name["alpha"]["delete"] == [{"filename": rc.filename, "size": rc.size}]
    (release,) = by_name["alpha"]["excluded_releases"]
    assert release["version"] == "3.0rc1" and release["plugin"] == "prerelease_release"
    assert release["files"] == [rc.filename]
    assert by_name["beta"]["change"] == "unchanged"
    assert doc["totals"]["files_to_delete"] == 2 and doc["totals"]["bytes_to_free"] == evil.size + rc.size
    assert doc["totals"]["files_to_fetch"] == 0 and doc["totals"]["projects_to_remove"] == 1
    assert doc["limits"]["projects"]["verdict"] == "pass" and doc["limits"]["files"]["verdict"] == "pass"
    assert doc["excluded_projects"] == []  # gamma-evil's removal line names its plugin: once

    # What the plan said is what the run does.
    assert mirror.run() == 0
    assert not page_dir(mirror.web, "gamma-evil").exists()
    kept = {p.name for p in (mirror.web / "packages").rglob("*") if p.is_file()}
    assert evil.filename not in kept and rc.filename not in kept


def test_a_dry_run_says_when_the_removal_limits_would_refuse_and_with_which_numbers(
    tmp_path: Path, corpus: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, corpus.url)
    assert mirror.run() == 0
    write_config(tmp_path, corpus.url, sections=FILTERED, max_removals="0", max_removals_percent="0")
    code, text = dry_run(mirror, capsys, "--json")
    assert code == 0  # the plan was computed: what it says is in the document
    limit = json.loads(text)["limits"]["projects"]
    assert limit["verdict"] == "refuse" and limit["removals"] == 1 and limit["mirror_size"] == 3
    assert "max-removals = 0" in limit["message"]
    code, text = dry_run(mirror, capsys, "--json", "--allow-mass-removal")
    assert json.loads(text)["limits"]["projects"]["verdict"] == "unlimited"
    assert mirror.run() == 1  # as the plan said: held back
    assert page_dir(mirror.web, "gamma-evil").exists()


def test_a_dry_run_while_a_run_holds_the_lock_finishes_and_leaves_the_run_alone(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    upstream.slow("/packages/", 1.0, times=None)  # the run holds the lock while its files trickle in
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(mirror.run()))
    run.start()
    deadline = time.monotonic() + 10
    while not (mirror.root / "todo").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (mirror.root / "todo").exists(), "the run did not get to its work list"
    code, out = dry_run(mirror, capsys)
    upstream.clear_faults()
    run.join(30)
    assert code == 0 and "Dry run of" in out
    assert codes == [0]
    assert_mirror_matches(upstream, mirror.web)


def test_a_dry_run_against_an_unreachable_master_exits_as_a_run_would_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, "http://127.0.0.1:9", timeout="1", global_timeout="5")
    assert dry_run(mirror, capsys)[0] == 1
    assert not mirror.root.exists()
    # No run was begun, so none is "incomplete" with something to finish.
    last = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"][-1]
    assert last.endswith("; nothing was changed") and "run is incomplete" not in last


def test_with_dependencies_a_dry_run_closes_the_allowlist_from_metadata_read_into_memory(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.add_wheel("app", "1.0", with_metadata=True, requires=("lib",))
    upstream.add_wheel("lib", "1.0", with_metadata=True, requires=("leaf",))
    upstream.add_wheel("leaf", "1.0", with_metadata=True)
    upstream.add_wheel("unrelated", "1.0", with_metadata=True)
    body = "packages =\n    app\nwith-dependencies = true\n"
    mirror = write_config(tmp_path, upstream.url, sections=plugins("allowlist_project", allowlist=body))
    mirror.root.mkdir()
    before = tree(mirror.root)
    code, text = dry_run(mirror, capsys, "--json")
    assert code == 0 and tree(mirror.root) == before  # no deps/, no selected.txt
    doc = json.loads(text)
    assert {p["name"]: p["change"] for p in doc["projects"]} == {"app": "add", "lib": "add", "leaf": "add"}
    assert doc["excluded_counts"] == [{"plugin": "allowlist_project", "reason": "not in the allowlist",
                                       "count": 1}]
    fetched = [r.path for r in upstream.requests if r.path.startswith("/packages/")]
    assert fetched and all(path.endswith(".metadata") for path in fetched)
    assert mirror.run() == 0
    assert {p.name for p in (mirror.web / "simple").iterdir() if p.is_dir()} == {"app", "lib", "leaf"}


def test_a_dry_run_lists_the_files_the_cooling_off_window_holds_back_and_by_which_rule(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    upstream.add_wheel("aged", "1.0", upload_time=now - datetime.timedelta(days=10))
    upstream.add_wheel("aged", "2.0", upload_time=now - datetime.timedelta(hours=1))
    mirror = write_config(tmp_path, upstream.url, hold_back="72h")
    mirror.root.mkdir()
    code, out = dry_run(mirror, capsys, "--json")
    assert code == 0
    (project,) = json.loads(out)["projects"]
    assert [f["filename"] for f in project["fetch"]] == ["aged-1.0-py3-none-any.whl"]
    (held,) = project["excluded_releases"]
    assert held["version"] == "2.0" and held["plugin"] == "hold_back"
    assert held["files"] == ["aged-2.0-py3-none-any.whl"] and "held back" in held["reason"]
    assert upstream.count_requests("/packages/") == 0


@pytest.mark.parametrize("mode", ["false", "on-demand"])
def test_a_dry_run_of_a_mirror_that_downloads_no_file_plans_no_fetch(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    mirror = write_config(tmp_path, upstream.url, release_files=mode)
    mirror.root.mkdir()
    code, out = dry_run(mirror, capsys, "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["totals"]["files_to_fetch"] == 0 and plan["totals"]["bytes_to_fetch"] == 0
    assert {p["change"] for p in plan["projects"]} == {"add"}
    assert any(f"release-files = {mode}" in note for note in plan["notes"])
def test_a_dry_run_judges_projects_and_files_with_the_metadata_plugins_as_the_run_does(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str],
) -> None:
    upstream.add_wheel("modern", "1.0")
    upstream.add_sdist("modern", "1.0")
    upstream.add_wheel("legacy", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "regex_project_metadata", "regex_release_file_metadata",
        regex_project_metadata="not-null:info.summary =\n    Test project modern",
        regex_release_file_metadata="release_file.packagetype =\n    bdist_wheel"))
    mirror.root.mkdir()
    code, out = dry_run(mirror, capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    (project,) = doc["projects"]
    assert project["name"] == "modern" and [f["filename"] for f in project["fetch"]] == [
        "modern-1.0-py3-none-any.whl"]
    assert [f["plugin"] for f in project["excluded_files"]] == ["regex_release_file_metadata"]
    assert [(e["name"], e["plugin"]) for e in doc["excluded_projects"]] == [
        ("legacy", "regex_project_metadata")]
    assert upstream.count_requests("/pypi/") == 2 and upstream.count_requests("/packages/") == 0
    assert mirror.run() == 0  # what the plan said is what the run does
    assert {p.name for p in (mirror.web / "simple").iterdir() if p.is_dir()} == {"modern"}


def test_a_dry_run_shows_the_lock_entries_it_skips_every_time(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str],
) -> None:
    upstream.add_wheel("pinned", "1.0")
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "pip"\n\n[[packages]]\nname = "pinned"\nversion = "1.0"\n'
        '[[packages.wheels]]\nname = "pinned-1.0-py3-none-any.whl"\n\n[[packages]]\nname = "mine"\n'
        '[packages.vcs]\ntype = "git"\nurl = "https://example.org/mine.git"\ncommit-id = "0123abc"\n')
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "project_requirements", "project_requirements_pinned",
        allowlist=f"requirements_path = {tmp_path}\nlockfiles = pylock.toml"))
    mirror.root.mkdir()
    for _ in range(2):  # not "once per change" as the run's log: the plan is asked for each time
        code, out = dry_run(mirror, capsys)
        assert code == 0 and "add pinned" in out
        assert "note: " in out and "mine: locked from vcs, not from an index; skipped" in out
