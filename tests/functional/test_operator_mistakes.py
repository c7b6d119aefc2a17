"""Operator mistakes get one clear line and the right exit code, and harm nothing on disk.

Exit codes: 0 complete, 1 incomplete, 2 configuration, 3 lock held.  The
read-only and mount cases use real mounts (tmpfs, bind); they are skipped
with the reason where mounting is not permitted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import (
    MirrorChecker,
    MirrorSetup,
    assert_mirror_matches,
    pending_work,
    remount,
    temp_files,
    tmpfs,
    tree_snapshot,
    write_config,
)


def corpus(upstream: Upstream, projects: int = 6) -> None:
    for i in range(projects):
        upstream.add_file(f"op{i}", f"op{i}-1.0.tar.gz", f"op{i}".encode() * 400)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR: " in line or line.startswith("ERROR")]


def on_tmpfs(tmp_path: Path, upstream: Upstream, disk: Path) -> MirrorSetup:
    setup = write_config(tmp_path, upstream.url, directory=str(disk / "mirror"))
    return MirrorSetup(disk / "mirror", setup.config)


# ---------------------------------------------------------------- read-only filesystems


def test_a_mirror_on_a_read_only_filesystem_is_a_config_error_and_is_left_alone(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    with tmpfs(tmp_path / "disk", "16m") as disk:
        mirror = on_tmpfs(tmp_path, upstream, disk)
        assert mirror.run() == 0
        upstream.add_file("op1", "op1-2.0.tar.gz", b"two" * 300)
        before = tree_snapshot(disk)
        remount(disk, "ro")
        result = run_cli(mirror.config, "mirror")
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert str(mirror.root) in line and "read-only filesystem" in line and "[mirror] directory" in line
        remount(disk, "rw")
        assert tree_snapshot(disk) == before
        assert mirror.run() == 0
        assert_mirror_matches(upstream, mirror.web)


def test_a_mirror_to_be_created_below_a_read_only_filesystem_is_a_config_error(
    tmp_path: Path, upstream: Upstream
) -> None:
    with tmpfs(tmp_path / "disk", "1m", "ro") as disk:
        mirror = on_tmpfs(tmp_path, upstream, disk)
        result = run_cli(mirror.config, "mirror")
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert "cannot be created" in line and "read-only filesystem" in line
        assert list(disk.iterdir()) == []


def test_a_read_only_web_directory_stops_the_run_and_loses_nothing(
    tmp_path: Path, upstream: Upstream
) -> None:
    """The directory is writable but web/ is a read-only bind mount of itself (same filesystem)."""
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_file("op2", "op2-2.0.tar.gz", b"two" * 300)
    upstream.add_file("new-project", "new_project-1.0.tar.gz", b"new" * 300)
    web = mirror.web
    bound = subprocess.run(["mount", "--bind", str(web), str(web)], capture_output=True, text=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root and mount rights): {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(web)], check=True)
        before = tree_snapshot(web)
        result = run_cli(mirror.config, "mirror")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert "stopped early (cannot write" in last and "Read-only file system" in last, last
        assert last.endswith("stay in todo for the next run")
        assert tree_snapshot(web) == before
    finally:
        subprocess.run(["umount", str(web)], check=False)
    assert set(pending_work(mirror.root)) == {"op2", "new-project"}
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_web_on_another_filesystem_is_refused_before_anything_is_written(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    mirror.web.mkdir(parents=True)
    with tmpfs(mirror.web, "4m"):
        result = run_cli(mirror.config, "mirror")
        assert result.returncode == 1
        (line,) = error_lines(result.stderr)
        assert "is on another filesystem" in line and "Traceback" not in result.stderr
        assert sorted(p.name for p in mirror.web.iterdir()) == ["packages", "simple"]
        assert not any(mirror.web.rglob("*.*"))
    assert not (mirror.root / "state").exists()


# ---------------------------------------------------------------- configuration


def test_a_config_path_that_is_a_directory_is_one_line_exit_2_and_the_directory_is_untouched(
    tmp_path: Path,
) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "keep").write_text("operator's file\n")
    before = tree_snapshot(tmp_path)
    result = run_cli(conf_dir, "mirror")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(conf_dir) in line and "is a directory" in line
    assert tree_snapshot(tmp_path) == before


# ---------------------------------------------------------------- concurrent runs


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_two_mirror_runs_at_once_the_second_exits_3_at_once_and_the_first_completes(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream, 30)
    upstream.hold_pages = threading.Event()  # the first run waits on its pages until the second is done
    mirror = write_config(tmp_path, upstream.url, workers="2")
    checker = MirrorChecker(mirror.web)
    checker.start()
    first = mirror.run_subprocess()
    try:
        wait_for(mirror.root / "todo.journal", first)
        started = time.monotonic()
        second = run_cli(mirror.config, "mirror")
        assert second.returncode == 3, second.stderr
        assert time.monotonic() - started < 10  # it never waits for the lock
        (line,) = second.stderr.strip().splitlines()
        assert "holds" in line and str(mirror.root / ".lock") in line
        assert first.poll() is None  # it really was mid-run
        upstream.hold_pages.set()
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        problems = checker.stop()
    assert problems == []
    assert_mirror_matches(upstream, mirror.web)
    assert temp_files(mirror.root) == []


ACCESS_LINE = ('127.0.0.1 - - [{day}/Nov/2026:10:{minute:02d}:00 +0000] "GET /packages/{path} HTTP/1.1" '
               '200 1200 "-" "pip/24.0 {{\\"installer\\":{{\\"name\\":\\"pip\\"}}}}"\n')


def test_update_stats_beside_a_running_mirror_both_succeed_and_nothing_is_harmed(
    tmp_path: Path, upstream: Upstream
) -> None:
    try:
        from bandersnatch.stats.command import update_stats  # noqa: F401
    except ImportError:
        pytest.skip("bandersnatch.stats.command.update_stats does not exist yet")
    corpus(upstream, 20)
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [f for s in upstream.all_current() for f in s.files or ()]
    (logs / "access.log").write_text("".join(
        ACCESS_LINE.format(day=20 + i % 3, minute=i, path=f.path.removeprefix("/packages/"))
        for i, f in enumerate(files)))
    mirror = write_config(tmp_path, upstream.url, workers="2")
    with mirror.config.open("a") as conf:
        conf.write(f"[statistics]\naccess-log-pattern = {logs}/access.log*\n")
    assert mirror.run() == 0
    upstream.add_file("op3", "op3-2.0.tar.gz", b"two" * 300)
    for i in range(20, 40):
        upstream.add_file(f"later{i}", f"later{i}-1.0.tar.gz", b"later" * 300)
    upstream.hold_pages = threading.Event()  # the sync waits on its pages until update-stats is done
    sync = mirror.run_subprocess()
    try:
        wait_for(mirror.root / "todo.journal", sync)
        stats = run_cli(mirror.config, "update-stats")
        assert stats.returncode == 0, stats.stderr
        assert "Traceback" not in stats.stderr and not error_lines(stats.stderr)
        assert f"counted {len(files)} downloads" in stats.stderr
        assert sync.poll() is None  # the mirror was running all along
        upstream.hold_pages.set()
        _, err = sync.communicate(timeout=120)
        assert sync.returncode == 0, err
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
    assert (mirror.web / "local-stats").is_dir()
    assert_mirror_matches(upstream, mirror.web)
    # And a second update-stats while one holds its lock gets exit 3 and one line.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import filelock, sys, time; l = filelock.FileLock(sys.argv[1]); "
         "l.acquire(); print('held', flush=True); time.sleep(60)", str(mirror.root / ".stats.lock")],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        blocked = run_cli(mirror.config, "update-stats")
        assert blocked.returncode == 3
        (line,) = blocked.stderr.strip().splitlines()
        assert "update-stats" in line and "Traceback" not in blocked.stderr
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- symbolic links inside the mirror directory


def outside_with_canary(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "canary").write_bytes(b"keep me")
    (outside / "sub" / "canary").write_bytes(b"keep me too")
    return outside


def link_elsewhere(path: Path, outside: Path) -> Path:
    """Move the real directory ``path`` into ``outside`` and leave a link to it in its place."""
    moved = outside / path.name
    path.rename(moved)
    path.symlink_to(moved, target_is_directory=True)
    return moved


def undo_link(path: Path, moved: Path) -> None:
    path.unlink()
    moved.rename(path)


@pytest.mark.parametrize("change", ["write", "delete"])
@pytest.mark.parametrize("where", ["packages", "simple"])
def test_a_symlink_inside_web_is_never_followed_and_the_run_stops_with_one_line(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, where: str, change: str
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    entry = upstream.files("op1")[0]
    if where == "packages":  # web/packages/<ab>: op1's file is written and deleted below it
        link = mirror.web.joinpath(*entry.path.split("/")[1:3])
    else:  # web/simple/op1: op1's pages are written and deleted there
        link = mirror.web / "simple" / "op1"
    outside = outside_with_canary(tmp_path)
    moved = link_elsewhere(link, outside)
    if change == "write":
        for victim in moved.rglob("*"):
            if victim.is_file():
                victim.unlink()  # gone: the mirror fetches the file, or writes the pages, again
        upstream.touch("op1")
    elif where == "packages":
        upstream.remove_file("op1", entry.filename)
    else:
        upstream.remove_project("op1")
    before = tree_snapshot(outside)
    assert mirror.run() == 2  # a link below web/ is the operator's to fix, for every command
    assert tree_snapshot(outside) == before
    assert "Traceback" not in caplog.text
    # One line naming it: the run stops there.
    named = [e for e in error_lines_of(caplog) if f"{link} is a symbolic link" in e]
    assert len(named) == 1 and "put what it points to in its place" in named[0], error_lines_of(caplog)
    undo_link(link, moved)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def error_lines_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("where", ["tmp/mirror", "tmp", "web/simple", "web/packages", "intents"])
def test_a_symlinked_directory_of_the_mirror_stops_the_run_at_once_and_is_left_alone(
    tmp_path: Path, upstream: Upstream, where: str
) -> None:
    """tmp/mirror is emptied on every run: through a link, that emptied another directory."""
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_file("op2", "op2-2.0.tar.gz", b"two" * 300)
    upstream.remove_project("op3")
    path = mirror.root / where
    path.mkdir(parents=True, exist_ok=True)
    outside = outside_with_canary(tmp_path)
    for entry in path.iterdir():
        entry.rename(outside / entry.name)
    path.rmdir()
    path.symlink_to(outside, target_is_directory=True)
    before = tree_snapshot(outside)
    result = run_cli(mirror.config, "mirror")
    # Below web/ a link is the operator's to fix, for every command (exit 2); elsewhere the run
    # stops incomplete.
    assert result.returncode == (2 if where.startswith("web/") else 1), result.stderr
    assert tree_snapshot(outside) == before
    assert "Traceback" not in result.stderr
    assert any(f"{path} is a symbolic link" in line for line in error_lines(result.stderr)), result.stderr
    path.unlink()
    path.mkdir()
    for entry in outside.iterdir():
        if entry.name not in ("canary", "sub"):
            entry.rename(path / entry.name)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_a_symlinked_journal_is_not_written_through(tmp_path: Path, upstream: Upstream) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_file("op2", "op2-2.0.tar.gz", b"two" * 300)
    outside = outside_with_canary(tmp_path)
    (mirror.root / "todo.journal").symlink_to(outside / "canary")
    result = run_cli(mirror.config, "mirror")
    assert result.returncode == 1, result.stderr
    assert (outside / "canary").read_bytes() == b"keep me"
    lines = error_lines(result.stderr)
    assert any("todo.journal is a symbolic link" in line for line in lines), result.stderr
    (mirror.root / "todo.journal").unlink()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


@pytest.mark.parametrize("linked", ["directory", "web"])
def test_a_mirror_directory_or_web_that_is_itself_a_symlink_keeps_working(
    tmp_path: Path, upstream: Upstream, linked: str
) -> None:
    """The admin's own links (/srv/pypi -> /data/pypi) are not inside the tree: they are followed."""
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    real = tmp_path / "data" / linked
    real.mkdir(parents=True)
    if linked == "directory":
        mirror.root.symlink_to(real, target_is_directory=True)
    else:
        mirror.root.mkdir()
        mirror.web.symlink_to(real, target_is_directory=True)
    assert mirror.run() == 0
    upstream.add_file("op2", "op2-2.0.tar.gz", b"two" * 300)
    upstream.remove_project("op3")
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert any(real.rglob("op2-2.0.tar.gz"))


# ---------------------------------------------------------------- guards: lost content


def project_dirs(web: Path) -> list[str]:
    return sorted(p.name for p in (web / "simple").iterdir() if p.is_dir())


def test_web_removed_with_the_state_kept_is_rebuilt_not_reported_current(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    shutil.rmtree(mirror.web)
    result = run_cli(mirror.config, "mirror")
    assert result.returncode == 0, result.stderr
    assert "Mirror is up to date" not in result.stderr
    assert "full sync" in result.stderr
    assert_mirror_matches(upstream, mirror.web)


def test_simple_pages_removed_with_the_state_kept_are_rebuilt_without_downloading_files(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    shutil.rmtree(mirror.web / "simple")
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/packages/") == 0  # the files on disk were checked, not fetched


def test_project_pages_gone_under_a_whole_root_index_make_the_run_rebuild_them(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    for name in project_dirs(mirror.web):
        shutil.rmtree(mirror.web / "simple" / name)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_a_mirror_that_is_current_and_whole_costs_no_listing(tmp_path: Path, upstream: Upstream) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.reset_requests()
    assert mirror.run() == 0
    assert upstream.count_requests("/simple/") == 0
    assert upstream.count_requests("/pypi", "POST") == 1  # the changelog only


# ---------------------------------------------------------------- guards: mass removal


def test_a_master_whose_pages_all_404_removes_nothing_past_the_limit_and_says_how_to_allow_it(
    tmp_path: Path, upstream: Upstream
) -> None:
    """The issue's reproduction: XML-RPC answers, every page 404s, then ``--force-check``."""
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, max_removals="2", max_removals_percent="5")
    assert mirror.run() == 0
    before = tree_snapshot(mirror.web)
    upstream.fail("/simple/", 404, times=None)
    result = run_cli(mirror.config, "mirror", "--force-check")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "6 project(s)" in last and "--allow-mass-removal" in last, last
    assert "bandersnatch mirror --allow-mass-removal" in last
    assert tree_snapshot(mirror.web) == before
    # The master is fixed: the held-back projects are synced again, nothing was lost.
    upstream.clear_faults()
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/packages/") == 0


def test_mass_removal_goes_ahead_once_allowed(tmp_path: Path, upstream: Upstream) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, max_removals="2", max_removals_percent="5")
    assert mirror.run() == 0
    for i in range(4):
        upstream.remove_project(f"op{i}")
    assert mirror.run() == 1
    assert sorted(project_dirs(mirror.web)) == [f"op{i}" for i in range(6)]
    assert mirror.run() == 1  # still held back: the projects stay owed
    assert mirror.run("--allow-mass-removal") == 0
    assert project_dirs(mirror.web) == ["op4", "op5"]
    assert_mirror_matches(upstream, mirror.web)


def test_removals_within_the_limit_need_no_permission(tmp_path: Path, upstream: Upstream) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, max_removals="2", max_removals_percent="5")
    assert mirror.run() == 0
    upstream.remove_project("op0")
    upstream.remove_project("op1")
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


def test_filters_that_would_drop_most_of_the_mirror_are_held_back_until_allowed(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, max_removals="2", max_removals_percent="5")
    assert mirror.run() == 0
    with mirror.config.open("a") as conf:
        conf.write("[plugins]\nenabled = allowlist_project\n[allowlist]\npackages = op0\n")
    files = tree_snapshot(mirror.web / "packages")
    result = run_cli(mirror.config, "mirror")
    assert result.returncode == 1, result.stderr
    assert "--allow-mass-removal" in result.stderr.strip().splitlines()[-1]
    assert project_dirs(mirror.web) == [f"op{i}" for i in range(6)]  # op0's pages were rewritten, no more
    assert tree_snapshot(mirror.web / "packages") == files
    assert mirror.run("--allow-mass-removal") == 0
    assert project_dirs(mirror.web) == ["op0"]


# ---------------------------------------------------------------- guards: hash-index switched


@pytest.mark.parametrize("record", [True, False], ids=["recorded", "inferred"])
@pytest.mark.parametrize("first", [False, True], ids=["flat-to-hashed", "hashed-to-flat"])
def test_switching_hash_index_on_an_existing_mirror_is_refused_with_the_steps(
    tmp_path: Path, upstream: Upstream, first: bool, record: bool
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url, hash_index=str(first).lower())
    assert mirror.run() == 0
    if not record:
        (mirror.root / "simple-layout").unlink()  # a mirror from before the record existed
    write_config(tmp_path, upstream.url, hash_index=str(not first).lower())
    upstream.add_file("op1", "op1-2.0.tar.gz", b"two" * 300)
    before = tree_snapshot(mirror.root)
    result = run_cli(mirror.config, "mirror")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "hash-index" in line and str(mirror.web / "simple") in line and "Traceback" not in line
    assert f"hash-index = {str(first).lower()}" in line  # the way back
    after = tree_snapshot(mirror.root)
    # last-run records the refusal (exit 2) for bandersnatch status; nothing else may change.
    assert {k: v for k, v in after.items() if k not in ("simple-layout", "last-run")} == {
        k: v for k, v in before.items() if k not in ("simple-layout", "last-run")}
    assert json.loads((mirror.root / "last-run").read_text())["exit_code"] == 2


@pytest.mark.parametrize(
    ("pages", "expected"),
    [
        (["requests/index.html"], "flat"),  # bandersnatch 8, HTML pages only
        (["a/index.html", "a/index.v1_json"], "flat"),  # a one-letter project, flat
        (["r/requests/index.html"], "hash-index"),
        (["r/requests/"], None),  # a killed run's directory without pages
        ([], None),
    ],
)
def test_the_layout_of_a_mirror_without_a_record_is_inferred_from_its_first_pages(
    tmp_path: Path, pages: list[str], expected: str | None
) -> None:
    from bandersnatch.sync.guards import infer_layout

    simple = tmp_path / "simple"
    simple.mkdir()
    (simple / "index.html").write_text("root")
    for page in pages:
        (simple / page).parent.mkdir(parents=True, exist_ok=True)
        if not page.endswith("/"):
            (simple / page).write_text("page")
    assert infer_layout(simple) == expected


def test_hash_index_may_change_while_the_mirror_has_no_project_pages(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    shutil.rmtree(mirror.web / "simple")  # the documented way to switch
    write_config(tmp_path, upstream.url, hash_index="true")
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web, hash_index=True)
    assert upstream.count_requests("/packages/") == 0


# ---------------------------------------------------------------- guards: permissions


def immutable(path: Path) -> None:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make {path} immutable here: {done.stderr.strip()}")


def mutable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_lock_owned_by_another_user_is_one_line_naming_it_and_the_fix(upstream: Upstream) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two users")
    corpus(upstream)
    base = Path(tempfile.mkdtemp(prefix="bandersnatch-perm-"))
    try:
        base.chmod(0o777)
        mirror = write_config(base, upstream.url)
        mirror.config.chmod(0o644)
        mirror.root.mkdir(mode=0o777)
        mirror.root.chmod(0o777)
        (mirror.root / ".lock").write_text("")  # root's, 0644: nobody else may open it to lock
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = "import packaging, requests, lxml, filelock"
        usable = subprocess.run([*as_nobody, sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=60)
        if usable.returncode != 0:
            pytest.skip(f"user nobody cannot use this Python environment: {usable.stderr.strip()[-200:]}")
        result = subprocess.run([*as_nobody, sys.executable, "-m", "bandersnatch", "-c", str(mirror.config),
                                 "mirror"], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert str(mirror.root / ".lock") in line and "root" in line and "chown" in line, line
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("victim", ["state", "tmp/mirror", "web/simple"])
def test_an_unwritable_state_file_or_directory_is_one_line_naming_the_path(
    tmp_path: Path, upstream: Upstream, victim: str
) -> None:
    corpus(upstream)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_file("op1", "op1-2.0.tar.gz", b"two" * 300)
    upstream.add_file("op9", "op9-1.0.tar.gz", b"new" * 300)
    path = mirror.root / victim
    immutable(path)
    try:
        result = run_cli(mirror.config, "mirror")
    finally:
        mutable(path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert str(path) in last and "Operation not permitted" in last, last
    assert "run again to finish" not in last
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)


# ---------------------------------------------------------------- messages


def test_deleted_files_are_logged_at_info_and_counted_in_a_human_readable_summary(
    tmp_path: Path, upstream: Upstream
) -> None:
    corpus(upstream)
    upstream.add_file("op1", "op1-2.0.tar.gz", b"two" * 1000)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.remove_file("op1", "op1-1.0.tar.gz")
    upstream.remove_project("op2")
    upstream.add_file("op3", "op3-2.0.tar.gz", b"x" * 3 * 1024 * 1024)
    result = run_cli(mirror.config, "mirror")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    deleted = [line for line in lines if " INFO: deleted " in line]
    assert len(deleted) == 2, result.stderr
    assert any(line.endswith("op1-1.0.tar.gz") for line in deleted)
    assert any(line.endswith("op2-1.0.tar.gz") for line in deleted)
    assert any("op3: 1 new file(s), 3.0 MB" in line for line in lines), result.stderr
    summary = lines[-1]
    assert "1 file(s) (3.0 MB) downloaded" in summary and "2 file(s) (2.3 KB) deleted" in summary, summary
    assert "bytes" not in summary
    assert_mirror_matches(upstream, mirror.web)


def test_a_run_under_umask_077_publishes_only_what_the_web_server_can_read(
        tmp_path: Path, upstream: Upstream) -> None:
    """8.x's storage-filesystem-manage-permissions (default true) is always so here, whatever it says."""
    corpus(upstream, 3)
    setup = write_config(tmp_path, upstream.url, storage_filesystem_manage_permissions="false")
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(setup.config), "mirror"],
                            capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(0o077))
    assert result.returncode == 0, result.stderr
    unreadable = [str(p) for p in [setup.root, setup.web, *setup.web.rglob("*")]
                  if p.stat().st_mode & (0o055 if p.is_dir() else 0o044) != (0o055 if p.is_dir() else 0o044)]
    assert unreadable == []


def test_status_and_verify_serve_a_user_who_can_only_read_the_mirror(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Issue 18, case 19: both only read; a read-only filesystem stands for a user without write rights."""
    corpus(upstream)
    with tmpfs(tmp_path / "disk", "16m") as disk:
        mirror = on_tmpfs(tmp_path, upstream, disk)
        assert mirror.run() == 0
        (mirror.web / "simple" / "zz-ghost").mkdir()  # verify asks upstream about it: a spooled listing
        remount(disk, "ro")
        try:
            status = run_cli(mirror.config, "status", "--offline")
            assert status.returncode == 0 and "state        current" in status.stdout, status.stderr
            verify = run_cli(mirror.config, "verify")
            assert verify.returncode == 1, verify.stderr
            assert verify.stdout.startswith("ghost: simple/zz-ghost:")
            assert "verify works in" in verify.stderr and "Traceback" not in verify.stderr
            assert "Cannot ask upstream" not in verify.stderr
            repair = run_cli(mirror.config, "verify", "--repair")  # repairing writes: still refused
            assert repair.returncode == 2 and "not writable" in repair.stderr
        finally:
            remount(disk, "rw")
