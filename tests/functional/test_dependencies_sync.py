"""``[allowlist] with-dependencies``: the allowlist plus the closure of ``Requires-Dist``.

The mirrored set is closed over every mirrored release (not only the latest),
with extras followed only where asked for, markers evaluated for every target
environment the mirror serves, PEP 503 names everywhere, and cycles closing.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import pytest
from support import distbuild
from support.fakepypi import Upstream
from support.mirrortools import MirrorSetup, page_dir, write_config
from test_filters_sync import mirrored, plugins

from bandersnatch.config.settings import load
from bandersnatch.selection.closure import DependencyTracker
from bandersnatch.selection.policy import Selection
from bandersnatch.selection.records import DependencyRecords, MirroredFile


def with_deps(*roots: str, extra: str = "", enabled: tuple[str, ...] = ("allowlist_project",),
              **sections: str) -> str:
    body = "packages =\n" + "".join(f"    {r}\n" for r in roots) + "with-dependencies = true\n" + extra
    return plugins(*enabled, allowlist=body, **sections)


@pytest.fixture
def graph(upstream: Upstream) -> Upstream:
    """A dependency graph with every case the closure must handle.

    dep-root 1.0 -> Mid, ghost (not upstream), colorama on win32, py2only below Python 3,
                    fancy-dep[x] only for the extra "fancy", pypy-only on PyPy
    dep-root 2.0 -> mid>=1, dep-leaf
    mid 1.0 (sdist only, PKG-INFO declares it) -> Dep.Cycle_A
    dep-cycle-a -> dep_cycle_b -> dep-cycle-a (a cycle)
    fancy-dep -> x-leaf only for its extra "x"
    dep-leaf 2.0 and 3.0; unrelated, never selected
    """
    upstream.add_wheel("dep-root", "1.0", with_metadata=True, requires=(
        "Mid", "ghost>=1", 'colorama; sys_platform == "win32"', 'py2only; python_version < "3"',
        'fancy-dep[x]; extra == "fancy"', 'pypy-only; implementation_name == "pypy"'))
    upstream.add_wheel("dep-root", "2.0", with_metadata=True, requires=("mid>=1", "dep-leaf"))
    upstream.add_sdist("mid", "1.0", requires=("Dep.Cycle_A",))
    upstream.add_wheel("dep-cycle-a", "1.0", requires=("dep_cycle_b",))
    upstream.add_wheel("dep-cycle-b", "1.0", requires=("DEP-CYCLE-A",))
    upstream.add_wheel("fancy-dep", "1.0", requires=('x-leaf; extra == "x"',))
    for name in ("colorama", "py2only", "x-leaf", "unrelated", "pypy-only"):
        upstream.add_wheel(name, "1.0")
    upstream.add_wheel("dep-leaf", "2.0")
    upstream.add_wheel("dep-leaf", "3.0")
    return upstream


BASE = {"dep-root", "mid", "dep-cycle-a", "dep-cycle-b", "dep-leaf", "colorama", "py2only"}


def test_closure_follows_every_release_markers_for_every_target_and_cycles(
    tmp_path: Path, graph: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    # colorama (win32) and py2only (Python 2.7) hold in some target environment; PyPy never does;
    # fancy-dep needs the extra nobody asked for; ghost is not upstream: one warning, exit 0.
    assert set(mirrored(mirror)) == BASE
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ghost" in warnings[0] and "dep-root" in warnings[0]
    assert graph.count_requests("/simple/unrelated/") == 0


def test_extras_join_only_where_asked_and_transitively(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root[fancy]"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE | {"fancy-dep", "x-leaf"}


def test_platform_and_python_exclusions_prune_marker_dependencies(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps(
        "dep-root", enabled=("allowlist_project", "exclude_platform"),
        blocklist="platforms =\n    windows\n    py2"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE - {"colorama", "py2only"}


def test_release_filters_apply_before_the_closure(tmp_path: Path, graph: Upstream) -> None:
    # Only dep-root 1.0 is mirrored, so 2.0's dependency dep-leaf never joins.
    mirror = write_config(tmp_path, graph.url, sections=with_deps(
        "dep-root<2", enabled=("allowlist_project", "allowlist_release")))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE - {"dep-leaf"}


def test_a_blocklisted_release_or_project_is_not_mirrored_even_when_required(tmp_path: Path,
                                                                            graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps(
        "dep-root", enabled=("allowlist_project", "blocklist_project", "blocklist_release"),
        blocklist="packages =\n    dep-leaf==3.0\n    dep-cycle-b"))
    assert mirror.run() == 0
    result = mirrored(mirror)
    assert set(result) == BASE - {"dep-cycle-b"}
    assert result["dep-leaf"] == ["dep_leaf-2.0-py3-none-any.whl"]


def test_why_each_project_is_on_the_mirror_is_kept_in_selected_txt(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    lines = (mirror.root / "selected.txt").read_text().splitlines()
    assert "dep-root <- allowlist" in lines
    assert "dep-leaf <- dep-root: dep-leaf" in lines
    assert "dep-cycle-a <- mid: Dep.Cycle_A" in lines
    # ghost is required by dep-root 1.0 but upstream has no such project: not "on this mirror".
    assert "ghost <- dep-root: ghost>=1 (wanted, upstream has none)" in lines


def test_a_dependency_added_upstream_joins_in_the_same_incremental_run(tmp_path: Path,
                                                                       graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    graph.add_wheel("new-dep", "1.0")
    graph.add_wheel("dep-root", "3.0", requires=("new-dep",))
    graph.add_wheel("unrelated", "2.0")
    graph.reset_requests()
    assert mirror.run() == 0
    assert "new-dep" in mirrored(mirror)
    assert graph.count_requests("/simple/unrelated/") == 0
    # The no-op run after it: one changelog request, no page, well under a second.
    graph.reset_requests()
    started = time.monotonic()
    assert mirror.run() == 0
    assert graph.count_requests() <= 2
    assert time.monotonic() - started < 1.0


def test_shrinking_the_allowlist_removes_what_only_it_needed(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root", "unrelated"))
    assert mirror.run() == 0
    assert "unrelated" in mirrored(mirror)
    mirror.config.write_text(mirror.config.read_text().replace("    unrelated\n", ""))
    graph.reset_requests()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE
    assert not any(p.name.startswith("unrelated-") for p in (mirror.web / "packages").rglob("*"))
    assert graph.count_requests("/packages/") == 0


def test_a_dependency_dropped_upstream_leaves_once_no_mirrored_release_needs_it(tmp_path: Path,
                                                                               graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    graph.remove_file("dep-root", "dep_root-2.0-py3-none-any.whl")
    assert mirror.run() == 0
    assert "dep-leaf" not in mirrored(mirror)


def test_a_killed_run_loses_no_dependency(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"), workers="1")
    graph.slow("/simple/dep-cycle-b/", 5.0, times=None)
    proc = mirror.run_subprocess()
    deadline = time.monotonic() + 30
    while graph.count_requests("/simple/dep-cycle-b/") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    graph.clear_faults()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE


def test_the_first_sync_asks_only_for_selected_pages(tmp_path: Path, graph: Upstream) -> None:
    graph.add_bulk_projects(2000)
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    pages = graph.count_requests("/simple/")
    files = graph.count_requests("/packages/")
    assert pages == len(BASE) + 2  # + ghost: a 404 is asked twice (a stale 404 must not delete)
    # One request per file; a wheel's .metadata comes out of the wheel itself (it matches the page).
    on_disk = [p for p in (mirror.web / "packages").rglob("*") if p.is_file() and p.suffix != ".metadata"]
    assert files == len(on_disk)
    assert json.loads((page_dir(mirror.web, "dep-root") / "index.v1_json").read_bytes())["versions"] == [
        "1.0", "2.0"]


def test_a_missing_dependency_is_not_asked_for_again_on_a_no_op_run(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    graph.reset_requests()
    assert mirror.run() == 0
    assert graph.count_requests("/simple/ghost/") == 0
    # When it appears upstream, the changelog brings it.
    graph.add_wheel("ghost", "1.0")
    assert mirror.run() == 0
    assert "ghost" in mirrored(mirror)


def test_config_names_and_requirements_use_pep503_names(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("DEP_Root"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE
    assert isinstance(mirror, MirrorSetup)


def test_a_malformed_requires_dist_upstream_is_logged_once_and_skipped(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.add_wheel("root", "1.0", with_metadata=True, requires=("good-dep", "bad dep ;; ==="))
    upstream.add_wheel("good-dep", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    with caplog.at_level(logging.WARNING):
        assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"root", "good-dep"}
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1 and "root" in lines[0] and "bad dep" in lines[0]


def test_metadata_whose_hash_does_not_match_the_page_is_never_used(tmp_path: Path,
                                                                   upstream: Upstream) -> None:
    # The page's metadata differs from the wheel's own (so it must come from upstream) and names
    # another dependency; upstream then serves it corrupted: it must not be used.
    name, data, own = distbuild.make_wheel("root", "1.0", requires=("dep",))
    served = own.replace(b"Requires-Dist: dep", b"Requires-Dist: dep\nRequires-Dist: other")
    upstream.add_file("root", name, data, version="1.0", metadata=served)
    upstream.add_wheel("dep", "1.0")
    upstream.add_wheel("other", "1.0")
    upstream.corrupt("root", name + ".metadata")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    assert mirror.run() == 1  # root fails (hash mismatch) and stays owed
    assert not (mirror.root / "deps" / "root.json").exists()
    assert "other" not in (mirror.root / "selected.txt").read_text()
    upstream.clear_faults()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"root", "dep", "other"}


def test_a_dependency_already_on_the_mirror_without_a_record_is_synced_so_its_own_dependencies_join(
        tmp_path: Path, graph: Upstream) -> None:
    # An unfiltered mirror switched to with-dependencies: mid and the rest have pages but no
    # deps/ record, so only a sync of mid tells the closure that mid needs dep-cycle-a.
    mirror = write_config(tmp_path, graph.url)
    assert mirror.run() == 0
    mirror.config.write_text(mirror.config.read_text() + with_deps("dep-root"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE
    graph.reset_requests()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE
    assert graph.count_requests("/simple/") == 0


def test_a_root_that_fails_while_dependencies_are_first_recorded_does_not_prune_them(
        tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url)
    assert mirror.run() == 0
    mirror.config.write_text(mirror.config.read_text() + with_deps("dep-root"))
    graph.fail("/simple/dep-root/", 500, times=None)
    assert mirror.run() == 1
    # Nothing says yet what dep-root needs: what it may need stays until it is known.
    assert set(mirrored(mirror)) >= BASE
    graph.clear_faults()
    graph.reset_requests()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == BASE
    assert graph.count_requests("/packages/") == 0


def test_a_root_removed_upstream_takes_what_only_it_needed_with_it(tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root", "dep-leaf"))
    assert mirror.run() == 0
    graph.remove_project("dep-root")
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"dep-leaf"}
    assert not (mirror.root / "deps" / "mid.json").exists()
    graph.add_wheel("dep-root", "4.0", requires=("mid",))  # and back it comes
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"dep-root", "mid", "dep-cycle-a", "dep-cycle-b", "dep-leaf"}


class _CountingRecords(DependencyRecords):
    """Records held in memory, counting how often the tracker reads one."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp / "deps", tmp)
        self.known: dict[str, tuple[str, ...]] = {}
        self.reads = 0

    def requirements(self, key: str) -> tuple[str, ...] | None:
        self.reads += 1
        return self.known.get(key)


def test_a_first_sync_closes_the_allowlist_in_work_linear_in_its_size(tmp_path: Path) -> None:
    # p0000 -> p0001 -> ... : every synced project brings the next.  Closing the whole
    # allowlist again after each one read every record so far: n^2/2 reads, and minutes
    # of the main thread for a few thousand projects.
    count = 400
    names = [f"p{i:04d}" for i in range(count)]
    config = load(write_config(tmp_path, "http://127.0.0.1:9/", sections=with_deps(names[0])).config)
    records = _CountingRecords(tmp_path)
    tracker = DependencyTracker(Selection(config.filters), records)
    synced = [names[0]]
    for key in synced:
        index = int(key[1:])
        records.known[key] = (f'{names[index + 1]}>=1; python_version >= "3"',) if index + 1 < count else ()
        synced.extend(sorted(tracker.synced(key, records.known[key])))
    assert synced == names
    assert tracker.owed(lambda key: True) == []
    assert records.reads <= 4 * count
    # Requirements that shrink still close exactly.
    records.known[names[10]] = ()
    assert tracker.synced(names[10], ()) == set()
    assert not tracker.admits(names[11]) and tracker.admits(names[10])


def test_a_dependency_a_project_filter_excludes_is_not_asked_for_again_on_a_no_op_run(
        tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps(
        "dep-root", enabled=("allowlist_project", "versions_count_project_metadata"),
        versions_count_project_metadata="min_versions = 2"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"dep-root", "dep-leaf"}  # the rest have one version
    graph.reset_requests()
    assert mirror.run() == 0
    assert graph.count_requests("/simple/") == 0
    graph.add_wheel("mid", "2.0")  # a second version: the changelog brings it
    assert mirror.run() == 0
    assert "mid" in mirrored(mirror)


def test_a_dependency_joining_in_an_incremental_run_is_asked_at_its_changelog_serial(
        tmp_path: Path, graph: Upstream) -> None:
    mirror = write_config(tmp_path, graph.url, sections=with_deps("dep-root"))
    assert mirror.run() == 0
    graph.add_wheel("new-dep", "1.0")
    before = graph.serial
    graph.add_wheel("new-dep", "2.0")
    graph.add_wheel("dep-root", "3.0", requires=("new-dep",))
    graph.stale("new-dep", times=1, at_serial=before)  # a CDN lagging behind new-dep 2.0
    assert mirror.run() == 0
    assert mirrored(mirror)["new-dep"] == ["new_dep-1.0-py3-none-any.whl", "new_dep-2.0-py3-none-any.whl"]


@pytest.mark.parametrize("bad", ["x" * 201, "a" * 300 + ">=1", "x" * 199 + "._y[extra]; os_name != 'nt'"])
def test_a_requirement_whose_name_no_project_can_have_is_skipped_with_one_warning(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    # PEP 508 allows any length; a project name is at most 200 characters, so no project matches.
    upstream.add_wheel("root", "1.0", with_metadata=True, requires=("good-dep", bad))
    upstream.add_wheel("good-dep", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    with caplog.at_level(logging.WARNING):
        assert mirror.run() == 0
        assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"root", "good-dep"}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "root" in lines[0] and "Requires-Dist" in lines[0], lines


def test_malformed_requirements_are_recorded_once_and_not_read_again_on_a_no_op_run(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [f"bad dep {i} ;; ===" for i in range(30_000)]
    upstream.add_wheel("root", "1.0", with_metadata=True, requires=("good-dep", *bad))
    upstream.add_wheel("good-dep", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    with caplog.at_level(logging.WARNING):
        assert mirror.run() == 0
    # One line for the file, with the count: not one per line.
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1 and "30000" in lines[0].replace(",", ""), lines
    record = json.loads((mirror.root / "deps" / "root.json").read_bytes())
    (entry,) = record["files"].values()
    assert entry["requires"] == ["good-dep"] and entry["malformed"] == 30_000
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert mirror.run() == 0
    assert not [r for r in caplog.records if "malformed" in r.getMessage()]
    assert set(mirrored(mirror)) == {"root", "good-dep"}


WHEEL = "root-1.0-py3-none-any.whl"


def test_a_record_is_read_again_when_the_metadata_pip_reads_changes(tmp_path: Path) -> None:
    records = DependencyRecords(tmp_path / "deps", tmp_path)
    first = MirroredFile(WHEEL, "a" * 64, None, None, b"Requires-Dist: dep-one\n", True, "1" * 64)
    assert records.update("root", [first]) == ("dep-one",)
    # Same wheel, other advertised metadata (a hostile index may swap it): pip now reads that.
    second = MirroredFile(WHEEL, "a" * 64, None, None, b"Requires-Dist: dep-two\n", True, "2" * 64)
    assert records.update("root", [second]) == ("dep-two",)
    # The page stops advertising any: pip reads the wheel's own METADATA.
    third = MirroredFile(WHEEL, "a" * 64, None, None, b"Requires-Dist: dep-own\n", True, None)
    assert records.update("root", [third]) == ("dep-own",)


def test_a_record_from_before_lines_were_checked_is_cleaned_once_without_reading_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "deps").mkdir()
    legacy = {"project": "root", "files": {WHEEL: {"sha256": "a" * 64, "requires": ["good", "bad ;; ==="]}}}
    (tmp_path / "deps" / "root.json").write_text(json.dumps(legacy))
    records = DependencyRecords(tmp_path / "deps", tmp_path)
    kept = MirroredFile(WHEEL, "a" * 64, None, None)  # on an object store: nothing to read again
    with caplog.at_level(logging.WARNING):
        assert records.update("root", [kept]) == ("good",)
        assert records.update("root", [kept]) == ("good",)
    assert len([r for r in caplog.records if "malformed" in r.getMessage()]) == 1
    doc = json.loads((tmp_path / "deps" / "root.json").read_bytes())
    assert doc["files"][WHEEL] == {"sha256": "a" * 64, "requires": ["good"], "malformed": 1}


def test_advertised_metadata_upstream_cannot_serve_leaves_the_wheels_own_to_follow(
        tmp_path: Path, upstream: Upstream) -> None:
    # PEP 714: our page then advertises none, so pip reads the wheel's METADATA: so do we.
    name, data, own = distbuild.make_wheel("root", "1.0", requires=("dep-wheel",))
    upstream.add_file("root", name, data, version="1.0",
                      metadata=own.replace(b"Requires-Dist: dep-wheel", b"Requires-Dist: dep-meta"))
    upstream.raw_path(upstream.get_file("root", name).metadata_path, b"gone", status=404)
    upstream.add_wheel("dep-wheel", "1.0")
    upstream.add_wheel("dep-meta", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"root", "dep-wheel"}
    page = json.loads((page_dir(mirror.web, "root") / "index.v1_json").read_bytes())
    assert page["files"][0]["core-metadata"] is False
