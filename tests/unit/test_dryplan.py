"""The dry run's records and renderings (``sync/dryplan.py``), its pure deciding parts (``sync/dryrun.py``)
and the dependency records it keeps in memory (``selection/records.UnwrittenRecords``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import Version

from bandersnatch import cli
from bandersnatch.config.plugins import BlocklistProject, FilterPlugin, LatestRelease, PrereleaseRelease
from bandersnatch.publish.budget import FileRemovalLimit, RemovalLimit
from bandersnatch.selection.policy import Exclusion, FilePlan
from bandersnatch.selection.records import MirroredFile, UnwrittenRecords
from bandersnatch.sync.dryplan import (
    Change,
    DryRunPlan,
    ExcludedCount,
    ExcludedFile,
    ExcludedProject,
    PlannedFile,
    ProjectPlan,
    excluded_parts,
    limit_check,
    render_json,
    render_text,
    to_json,
)


class HoldBack(FilterPlugin):
    """What another part (a cooling-off window) adds: its own plugin type, its own reason, no new record."""

    name = "hold_back"


HELD = "uploaded 2026-12-07T10:00:00Z, matures 2026-12-10T10:00:00Z"


def plan() -> DryRunPlan:
    held = Exclusion(HoldBack, HELD)
    return DryRunPlan(
        "https://pypi.org", "/srv/pypi", 100, 120, None,
        (ProjectPlan("alpha", Change.UPDATE, fetch=(PlannedFile("alpha-2.0.tar.gz", None),
                                                    PlannedFile("alpha-2.0-py3-none-any.whl", 1000)),
                     delete=(PlannedFile("alpha-1.0rc1-py3-none-any.whl", 500),),
                     files=(ExcludedFile("alpha-2.1-py3-none-any.whl", held),)),
         ProjectPlan("evil", Change.REMOVE, delete=(PlannedFile("evil-1.0.tar.gz", 20),),
                     removed_by=Exclusion(BlocklistProject, "listed in [blocklist] packages")),
         ProjectPlan("beta", Change.UNCHANGED)),
        excluded=(ExcludedProject("gamma", Exclusion(BlocklistProject, "listed in [blocklist] packages")),),
        counted=(ExcludedCount(Exclusion(BlocklistProject, "not in the allowlist"), 749_950),),
        limits=(limit_check("projects", 1, RemovalLimit(0, 0), lambda: 3),
                limit_check("files", 1, FileRemovalLimit(1000, 5), lambda: 10)),
    )


def test_totals_count_known_bytes_and_files_of_unknown_size_apart() -> None:
    t = plan().totals
    assert (t.projects_to_add, t.projects_to_update, t.projects_to_remove) == (0, 1, 1)
    assert (t.files_to_fetch, t.bytes_to_fetch, t.files_of_unknown_size) == (2, 1000, 1)
    assert (t.files_to_delete, t.bytes_to_free) == (2, 520)


def test_the_text_names_every_change_every_exclusion_with_its_plugin_and_the_limits() -> None:
    text = render_text(plan())
    assert "Changes since serial 100 up to serial 120" in text
    assert "update alpha: fetch 2 file(s), 1000 B (1 of unknown size); delete 1 file(s), 500 B" in text
    assert "  excluded file alpha-2.1-py3-none-any.whl: hold_back: uploaded" in text
    assert "remove evil (blocklist_project: listed in [blocklist] packages): delete 1 file(s)" in text
    assert "1 project(s) asked and unchanged" in text
    assert "excluded project gamma: blocklist_project: " in text
    assert "excluded 749950 project(s): " in text
    assert "projects: 1 of the 3 on the mirror: REFUSE (max-removals = 0, max-removals-percent = 0)" in text
    assert "files: 1: pass (max-file-removals = 1000" in text


def test_the_json_document_has_the_shape_the_readme_gives() -> None:
    doc = json.loads(render_json(plan()))
    assert doc == to_json(plan())
    assert set(doc) == {"format", "master", "directory", "since", "target", "full_sync", "projects",
                        "excluded_projects", "excluded_counts", "failed", "notes", "totals", "limits"}
    alpha = doc["projects"][0]
    assert alpha["excluded_files"] == [{"filename": "alpha-2.1-py3-none-any.whl", "plugin": "hold_back",
                                        "reason": HELD}]
    assert alpha["fetch"][0] == {"filename": "alpha-2.0.tar.gz", "size": None}
    assert doc["projects"][1]["removed_by"] == {"plugin": "blocklist_project",
                                                "reason": "listed in [blocklist] packages"}
    assert doc["limits"]["projects"]["verdict"] == "refuse" and doc["limits"]["files"]["verdict"] == "pass"
    assert doc["excluded_counts"][0]["count"] == 749_950


def test_files_of_a_release_excluded_whole_are_listed_under_it_and_others_one_by_one() -> None:
    pre = Exclusion(PrereleaseRelease, "pre-release")
    old = Exclusion(LatestRelease, "older than the newest 1")
    win = Exclusion(HoldBack, "held")
    chosen = FilePlan((), (), dropped=(("a-3.0rc1-py3-none-any.whl", pre), ("a-3.0rc1.tar.gz", pre),
                                       ("a-1.0.tar.gz", old), ("a-2.0-py3-none-any.whl", win)),
                      releases=((Version("1.0"), old), (Version("3.0rc1"), pre)))
    releases, files = excluded_parts("a", chosen)
    assert [(r.version, r.exclusion, r.files) for r in releases] == [
        ("1.0", old, ("a-1.0.tar.gz",)), ("3.0rc1", pre, ("a-3.0rc1-py3-none-any.whl", "a-3.0rc1.tar.gz"))]
    assert files == (ExcludedFile("a-2.0-py3-none-any.whl", win),)


def test_a_limit_asks_the_mirrors_size_only_past_its_count_as_the_budget_does() -> None:
    def never() -> int:
        raise AssertionError("the mirror's size was asked")

    assert limit_check("projects", 5, RemovalLimit(10, 5), never).verdict == "pass"
    assert limit_check("projects", 50, None, never).verdict == "unlimited"
    passed = limit_check("files", 20, FileRemovalLimit(10, 5), lambda: 1000)
    assert (passed.verdict, passed.mirror_size) == ("pass", 1000)  # 2 % of the mirror
    refused = limit_check("files", 60, FileRemovalLimit(10, 5), lambda: 1000)
    assert refused.verdict == "refuse" and refused.refused is not None and "60 file(s)" in refused.refused


def test_unwritten_records_grow_in_memory_and_never_write(tmp_path: Path) -> None:
    deps = tmp_path / "deps"
    records = UnwrittenRecords(deps, tmp_path / "tmp" / "mirror")
    core = b"Metadata-Version: 2.1\nName: app\nVersion: 1.0\nRequires-Dist: lib>=1\n"
    requires = records.update("app", [MirroredFile("app-1.0-py3-none-any.whl", "0" * 64, None, None, core,
                                                   True)])
    assert requires == ("lib>=1",) and records.requirements("app") == ("lib>=1",)
    records.mark_missing("ghost")
    assert records.is_missing("ghost")
    records.forget("app")
    assert records.requirements("app") is None
    assert not tmp_path.joinpath("deps").exists() and not tmp_path.joinpath("tmp").exists()


@pytest.mark.parametrize("held", [Change.ADD, Change.UPDATE, Change.REMOVE, Change.UNCHANGED])
def test_every_change_renders_in_both_forms(held: Change) -> None:
    one = DryRunPlan("m", "d", None, 1, "first run", (ProjectPlan("p", held),))
    assert to_json(one)["projects"][0]["change"] == held.value
    assert "Full sync (first run) up to serial 1" in render_text(one)


def test_json_without_dry_run_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["-c", "/nonexistent.conf", "mirror", "--json"])
    assert stopped.value.code == 2 and "--json goes with --dry-run" in capsys.readouterr().err
