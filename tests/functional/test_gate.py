"""Every change to the published tree goes through one gate (``bandersnatch.publish.gate``).

The gate keeps the run's removal budget (projects and files) for ``mirror`` and
``verify --repair`` alike, and the symlink rule for every command.  Each test
brings a hostile upstream or a damaged directory against a mirror synced from
the fake PyPI and checks what is left on disk, the exit code and the last line.
"""

from __future__ import annotations

import subprocess
import sys
import xmlrpc.client
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, tree_snapshot, write_config

from bandersnatch.errors import RemovalsHeldBack
from bandersnatch.publish.budget import FileRemovalLimit, RemovalLimit
from bandersnatch.publish.gate import RemovalBudget

PROJECTS = 22


def run_cli(mirror: MirrorSetup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), *args],
                          capture_output=True, text=True, timeout=120)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.strip().splitlines()[-1]


def names(count: int) -> list[str]:
    return [f"p{i:02d}" for i in range(count)]


def synced(tmp_path: Path, upstream: Upstream, projects: int = PROJECTS, files: int = 1,
           **options: str) -> MirrorSetup:
    for name in names(projects):
        for version in range(1, files + 1):
            upstream.add_file(name, f"{name}-{version}.0.tar.gz", f"{name} {version}".encode() * 200)
    mirror = write_config(tmp_path, upstream.url, **options)
    assert mirror.run() == 0
    return mirror


def kept(mirror: MirrorSetup) -> dict[str, tuple[str, int, int]]:
    """Every project page and file, as ``tree_snapshot`` has them; the root index aside (it names only
    projects with both pages, and carries the run's serial)."""
    tree = tree_snapshot(mirror.web)
    return {k: v for k, v in tree.items() if k not in ("simple/index.html", "simple/index.v1_json")}


def files_on_disk(mirror: MirrorSetup) -> set[str]:
    return {p.name for p in mirror.web.joinpath("packages").rglob("*") if p.is_file()}


# ---------------------------------------------------------------- the budget, pure


@pytest.mark.parametrize(("wanted", "files", "allowed"), [
    (10, 60, True),  # not past the count
    (11, 60, False),  # past the count and 5 % of 60
    (11, 1000, True),  # past the count, not past 5 % of 1000
    (51, 1000, False),
])
def test_file_budget_refuses_only_past_both_the_count_and_the_share(
    wanted: int, files: int, allowed: bool
) -> None:
    budget = RemovalBudget(None, FileRemovalLimit(10, 5), project_count=lambda: 0, file_count=lambda: files)
    if allowed:
        budget.take_files(wanted)
        assert budget.held_back is None
    else:
        with pytest.raises(RemovalsHeldBack, match=f"not deleting {wanted} file"):
            budget.take_files(wanted)
        assert budget.held_back is not None and "max-file-removals = 10" in budget.held_back


def test_the_budget_is_the_run_s_sum_and_a_refusal_takes_nothing() -> None:
    asked: list[str] = []
    budget = RemovalBudget(RemovalLimit(3, 5), FileRemovalLimit(10, 5),
                           project_count=lambda: asked.append("projects") or 22,
                           file_count=lambda: asked.append("files") or 60)
    budget.take_files(6)
    with pytest.raises(RemovalsHeldBack):
        budget.take_files(6)  # 12 in all: past both
    budget.take_files(4)  # 10 in all: still within the count
    assert budget.take_projects(3) and not budget.take_projects(1)
    assert (budget.files_taken, budget.projects_taken) == (10, 3)
    assert asked == ["files", "projects"]  # each size asked once, and only past a count
    assert RemovalBudget.unlimited().take_projects(10**6)


# ---------------------------------------------------------------- case 1: verify --repair and the limits


def test_repair_removes_no_project_past_max_removals_when_every_page_is_gone_and_upstream_404s(
    tmp_path: Path, upstream: Upstream
) -> None:
    mirror = synced(tmp_path, upstream, max_removals="3")
    for page in mirror.web.joinpath("simple").glob("*/index.html"):
        page.unlink()
    upstream.fail("/simple/", 404, times=None)  # and upstream answers 404 for every page
    before = kept(mirror)
    result = run_cli(mirror, "verify", "--repair")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = last_line(result)
    assert f"not removing {PROJECTS} project(s)" in last and "max-removals = 3" in last, last
    assert "bandersnatch verify --repair --allow-mass-removal" in last
    assert kept(mirror) == before  # nothing deleted, no page rewritten
    # Upstream answers again: the repair mends every page, nothing was lost.
    upstream.clear_faults()
    assert run_cli(mirror, "verify", "--repair").returncode == 0
    assert_mirror_matches(upstream, mirror.web)


def test_repair_with_allow_mass_removal_removes_what_upstream_no_longer_has(
    tmp_path: Path, upstream: Upstream
) -> None:
    mirror = synced(tmp_path, upstream, projects=6, max_removals="1")
    for name in names(6)[:4]:
        upstream.remove_project(name)
        page_dir(mirror.web, name).joinpath("index.html").unlink()
    assert run_cli(mirror, "verify", "--repair").returncode == 1
    assert files_on_disk(mirror) == {f"{n}-1.0.tar.gz" for n in names(6)}
    result = run_cli(mirror, "verify", "--repair", "--allow-mass-removal")
    assert result.returncode == 0, result.stderr
    assert files_on_disk(mirror) == {f"{n}-1.0.tar.gz" for n in names(6)[4:]}


def cut_root_index(web: Path, dropped: set[str]) -> None:
    """Drop the lines naming ``dropped`` from both root index files (first and last stay)."""
    for page in ("index.html", "index.v1_json"):
        path = web / "simple" / page
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines
                                if not any(f'"{n}"' in line or f">{n}<" in line for n in dropped)))


def test_repair_removes_no_ghosts_past_the_limit_when_the_root_index_and_the_listing_lose_names(
    tmp_path: Path, upstream: Upstream
) -> None:
    mirror = synced(tmp_path, upstream, max_removals="3")
    everyone = names(PROJECTS)
    middle = set(everyone[3:19])  # 16 names cut from the middle of the root index
    cut_root_index(mirror.web, middle)
    # A listing (hostile, or an upstream mid-incident) naming only the 6 the root index still names.
    listing = {n: upstream.project_serial(n) for n in everyone if n not in middle}
    upstream.raw_rpc("list_packages_with_serial",
                     xmlrpc.client.dumps((listing,), methodresponse=True).encode())
    result = run_cli(mirror, "verify", "--repair")
    assert result.returncode == 1, result.stderr
    assert "ghost: simple/p03: neither the root index nor upstream names it" in result.stdout
    last = last_line(result)
    assert "not removing 16 project(s)" in last and "--allow-mass-removal" in last, last
    assert sorted(d.name for d in mirror.web.joinpath("simple").iterdir() if d.is_dir()) == everyone
    assert files_on_disk(mirror) == {f"{n}-1.0.tar.gz" for n in everyone}
    upstream.clear_faults()  # the listing names them all again: the root index is rebuilt, nothing lost
    assert run_cli(mirror, "verify", "--repair").returncode == 0
    assert_mirror_matches(upstream, mirror.web)


def test_repair_deletes_no_orphans_past_max_file_removals(tmp_path: Path, upstream: Upstream) -> None:
    mirror = synced(tmp_path, upstream, projects=3, max_file_removals="2", max_file_removals_percent="5")
    strays = mirror.web / "packages" / "ab" / "cd"
    strays.mkdir(parents=True)
    for i in range(4):
        (strays / f"stray-{i}.tar.gz").write_bytes(b"left behind")
    result = run_cli(mirror, "verify", "--repair")
    assert result.returncode == 1, result.stderr
    assert "not deleting 4 file(s)" in last_line(result) and "max-file-removals = 2" in last_line(result)
    assert len(list(strays.iterdir())) == 4
    assert run_cli(mirror, "verify", "--repair", "--allow-mass-removal").returncode == 0
    assert not strays.exists()


# ---------------------------------------------------------------- case 2: file deletions have a limit


def quarantine_all(upstream: Upstream, projects: list[str]) -> None:
    for name in projects:
        upstream.set_status(name, "quarantined")


def no_files_at_all(upstream: Upstream, projects: list[str]) -> None:
    for name in projects:  # each page now served with "files": [] at a valid, newer serial
        for entry in upstream.files(name):
            upstream.remove_file(name, entry.filename)


@pytest.mark.parametrize("empty", [quarantine_all, no_files_at_all], ids=["quarantined", "files-empty"])
def test_a_run_that_would_delete_every_file_holds_the_projects_back_and_deletes_nothing(
    tmp_path: Path, upstream: Upstream, empty: object
) -> None:
    mirror = synced(tmp_path, upstream, projects=30, files=2, max_file_removals="1",
                    max_file_removals_percent="1")
    before = kept(mirror)
    assert callable(empty)
    empty(upstream, names(30))
    result = run_cli(mirror, "mirror")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = last_line(result)
    assert "not deleting 2 file(s) of the 60 on the mirror" in last, last
    assert "max-file-removals = 1" in last and "bandersnatch mirror --allow-mass-removal" in last
    assert kept(mirror) == before  # pages and files as they were
    assert run_cli(mirror, "mirror").returncode == 1  # still owed, still held back
    assert kept(mirror) == before
    assert run_cli(mirror, "mirror", "--allow-mass-removal").returncode == 0
    assert files_on_disk(mirror) == set()
    assert_mirror_matches(upstream, mirror.web)


def test_file_deletions_within_the_limit_need_no_permission(tmp_path: Path, upstream: Upstream) -> None:
    mirror = synced(tmp_path, upstream, projects=3, files=2, max_file_removals="2",
                    max_file_removals_percent="5")
    upstream.remove_file("p00", "p00-1.0.tar.gz")
    upstream.remove_file("p01", "p01-1.0.tar.gz")
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- case 5: a link below web/, every command


def link_elsewhere(path: Path, outside: Path) -> Path:
    """Move the directory ``path`` to ``outside`` and leave a link to it in its place (pages still link
    the files below it, and a web server serves them through it)."""
    outside.mkdir()
    (outside / "canary").write_bytes(b"keep me")
    moved = outside / path.name
    path.rename(moved)
    path.symlink_to(moved, target_is_directory=True)
    return moved


@pytest.mark.parametrize("command", [
    ("verify",), ("verify", "--repair"), ("verify", "--fast"), ("mirror", "--force-check"), ("mirror",),
])
def test_a_link_below_web_packages_is_reported_with_exit_2_and_never_followed_or_deleted(
    tmp_path: Path, upstream: Upstream, command: tuple[str, ...]
) -> None:
    mirror = synced(tmp_path, upstream, projects=3)
    entry = upstream.files("p01")[0]
    link = mirror.web.joinpath(*entry.path.split("/")[1:3])  # web/packages/<xx>
    outside = tmp_path / "outside"
    moved = link_elsewhere(link, outside)
    if command == ("mirror",):
        upstream.add_file("p01", "p01-2.0.tar.gz", b"two" * 300)  # a run that writes beside the link
    before = tree_snapshot(outside)
    web = kept(mirror)
    result = run_cli(mirror, *command)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = last_line(result)
    assert f"{link} is a symbolic link" in last and "put what it points to in its place" in last, last
    assert link.is_symlink() and tree_snapshot(outside) == before
    if command[0] == "verify":
        assert kept(mirror) == web  # nothing changed at all
    else:  # what the run synced before it met the link stays; nothing was deleted
        assert set(web) <= set(kept(mirror))
    # The operator puts the directory back: everything is as upstream has it.
    link.unlink()
    moved.rename(link)
    assert mirror.run() == 0
    assert run_cli(mirror, "verify").returncode == 0
    assert_mirror_matches(upstream, mirror.web)


@pytest.mark.parametrize("command", [("verify",), ("verify", "--repair"), ("mirror", "--force-check")])
@pytest.mark.parametrize("linked", ["simple/p01/index.v1_json", "simple", "packages"])
def test_a_linked_page_or_directory_below_web_is_reported_with_exit_2_and_left_alone(
    tmp_path: Path, upstream: Upstream, command: tuple[str, ...], linked: str
) -> None:
    mirror = synced(tmp_path, upstream, projects=3)
    path = mirror.web / linked
    outside = tmp_path / "outside"
    outside.mkdir()
    path.rename(outside / path.name)
    path.symlink_to(outside / path.name)
    before = tree_snapshot(outside)
    result = run_cli(mirror, *command)
    assert result.returncode == 2, result.stderr
    assert f"{path} is a symbolic link" in last_line(result)
    assert path.is_symlink() and tree_snapshot(outside) == before
