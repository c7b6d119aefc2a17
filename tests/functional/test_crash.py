"""Crashes: a run killed at any moment never shows a reader a broken mirror, and loses nothing.

``bandersnatch mirror`` runs as a subprocess and is SIGKILLed at seeded random
moments of full and incremental syncs while the corpus keeps changing (new
projects and releases, removed files and projects, yanks).  All along, a
checker thread reads ``web/`` the way pip does (:class:`mirrortools.WebReader`).
A final run must then make the mirror equal to the upstream.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from support.fakepypi import Upstream, normalize
from support.mirrortools import (
    MirrorChecker,
    MirrorSetup,
    assert_mirror_matches,
    pending_work,
    temp_files,
    write_config,
)

from bandersnatch.errors import StorageError
from bandersnatch.store.atomic import atomic_write as real_write
from bandersnatch.store.filesystem import FilesystemStore
from bandersnatch.store.protocol import ObjectStat
from bandersnatch.sync import package

MIN_KILLS = 22
MAX_ITERATIONS = 45


class ChangingCorpus:
    """Seeded random changes to the fake upstream, PyPI-like: releases, removals, yanks."""

    def __init__(self, upstream: Upstream, rng: random.Random) -> None:
        self.upstream = upstream
        self.rng = rng
        self.projects: list[str] = []
        self.counter = 0

    def _new_version(self) -> str:
        self.counter += 1
        return f"{self.counter}.0"

    def add_release(self, project: str | None = None) -> None:
        project = project or self.rng.choice(self.projects)
        version = self._new_version()
        key = normalize(project)
        self.upstream.add_file(project, f"{key}-{version}.tar.gz", self._bytes())
        if self.rng.random() < 0.5:
            metadata = f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()
            self.upstream.add_file(project, f"{key.replace('-', '_')}-{version}-py3-none-any.whl",
                                   self._bytes(), metadata=metadata)

    def _bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(500, 9000))

    def new_project(self) -> None:
        self.counter += 1
        name = f"crash-{self.counter:03d}"
        self.projects.append(name)
        self.add_release(name)

    def remove_file(self) -> None:
        candidates = [p for p in self.projects if len(self.upstream.files(p)) > 1]
        if candidates:
            project = self.rng.choice(candidates)
            self.upstream.remove_file(project, self.rng.choice(self.upstream.files(project)).filename)

    def remove_project(self) -> None:
        if len(self.projects) > 8:
            project = self.rng.choice(self.projects)
            self.projects.remove(project)
            self.upstream.remove_project(project)

    def toggle_yank(self) -> None:
        project = self.rng.choice(self.projects)
        entry = self.rng.choice(self.upstream.files(project))
        if entry.yanked:
            self.upstream.unyank(project, entry.filename)
        else:
            self.upstream.yank(project, entry.filename, reason=self.rng.choice(["", "broken <b>build</b>"]))

    def change(self) -> None:
        actions = [(self.add_release, 3), (self.new_project, 2), (self.remove_file, 2),
                   (self.remove_project, 1), (self.toggle_yank, 2)]
        for _ in range(self.rng.randint(1, 4)):
            self.rng.choices([a for a, _ in actions], weights=[w for _, w in actions])[0]()


def expected_requests(mirror: MirrorSetup, upstream: Upstream) -> int:
    """About how many requests the next run makes: its pending projects, a page and a file each."""
    pending = set(pending_work(mirror.root))
    try:
        serial = int((mirror.root / "state").read_text())
    except FileNotFoundError:
        return 2 + 3 * len(upstream.all_current())
    pending |= {normalize(row.name) for row in upstream.changelog if row.serial > serial}
    return 2 + 2 * len(pending)


def kill_at_random_moment(proc: subprocess.Popen[bytes], upstream: Upstream, rng: random.Random,
                          expected: int) -> bool:
    """SIGKILL once the fake has answered a random number of this run's requests, plus a random pause.

    The pause lands kills between requests too: during hashing, fsyncs, renames
    and deletions.  Returns False when the run ended by itself first.
    """
    target = rng.randint(1, max(2, expected))
    deadline = time.monotonic() + 60
    while proc.poll() is None and upstream.count_requests() < target and time.monotonic() < deadline:
        time.sleep(0.0005)
    time.sleep(rng.uniform(0, 0.03))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


# More seeds for a soak run: BANDERSNATCH_CRASH_SEEDS=1,2,3,4 pytest tests/functional/test_crash.py
# Odd seeds run a flat simple index, even seeds hash-index = true.
SEEDS = [int(s) for s in os.environ.get("BANDERSNATCH_CRASH_SEEDS", "7,2024").split(",")]


def assert_counts_match_pages(root: Path, hash_index: bool) -> None:
    """The totals ``mirror`` keeps for ``status`` equal what the JSON pages on disk link, kills or not."""
    from bandersnatch.ledger.counts import Totals, read_counts

    found = Totals()
    for page in (root / "web" / "simple").glob("*/*/index.v1_json" if hash_index else "*/index.v1_json"):
        files = json.loads(page.read_bytes())["files"]
        found += Totals(1, len(files), sum(f["size"] for f in files))
    counts = read_counts(root)
    assert counts is not None and counts.totals == found


@pytest.mark.slow  # about 15 s per seed
@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_moments_never_breaks_the_mirror_for_readers(
    tmp_path: Path, upstream: Upstream, seed: int
) -> None:
    rng = random.Random(seed)
    corpus = ChangingCorpus(upstream, rng)
    for _ in range(18):
        corpus.new_project()
    for _ in range(10):
        corpus.add_release()
    hash_index = seed % 2 == 0
    mirror = write_config(tmp_path, upstream.url, workers="3", hash_index=str(hash_index).lower())
    checker = MirrorChecker(mirror.web, hash_index=hash_index)
    checker.start()
    kills = completed = iterations = 0
    try:
        while kills < MIN_KILLS and iterations < MAX_ITERATIONS:
            if iterations:
                corpus.change()
            iterations += 1
            upstream.latency = rng.choice([0.005, 0.01, 0.02])
            expected = expected_requests(mirror, upstream)
            upstream.reset_requests()
            extra = ("--force-check",) if iterations > 1 and rng.random() < 0.15 else ()
            proc = mirror.run_subprocess(*extra)
            if kill_at_random_moment(proc, upstream, rng, expected):
                kills += 1
            else:
                completed += 1
                _, err = proc.communicate(timeout=60)
                assert proc.returncode in (0, 1), err.decode(errors="replace")
                assert b"Traceback" not in err, err.decode(errors="replace")
            assert checker.problems == [], checker.problems[:5]
        upstream.latency = 0.0
        assert mirror.run() == 0
    finally:
        problems = checker.stop()
    assert problems == [], problems[:5]
    assert kills >= 20, f"only {kills} kills landed mid-run ({completed} runs completed first)"
    assert_mirror_matches(upstream, mirror.web, hash_index)
    assert temp_files(mirror.root) == []
    assert not (mirror.root / "todo").exists()
    assert_counts_match_pages(mirror.root, hash_index)
    assert checker.sweeps > 20 and checker.reader.files_checked > 100
    print(f"\ncrash seed {seed} (hash-index {hash_index}): {kills} kills survived, {completed} runs "
          f"completed, {iterations} runs, {checker.sweeps} checker sweeps, "
          f"{checker.reader.pages_read} pages and {checker.reader.files_checked} links checked")


def test_sigterm_mid_run_stops_with_one_line_exit_130_and_loses_nothing(
    tmp_path: Path, upstream: Upstream
) -> None:
    for i in range(30):
        upstream.add_file(f"term{i:02d}", f"term{i:02d}-1.0.tar.gz", os.urandom(2000))
    upstream.latency = 0.03
    mirror = write_config(tmp_path, upstream.url, workers="2")
    proc = mirror.run_subprocess()
    deadline = time.monotonic() + 30
    while upstream.count_requests("/packages/") < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    last_line = err.decode().strip().splitlines()[-1]
    assert last_line.endswith("interrupted; progress is saved, run again to finish")
    assert pending_work(mirror.root)  # what is owed is on disk
    upstream.latency = 0.0
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)



GONE_METADATA = b"Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n"


def _upload_gone(upstream: Upstream) -> None:
    upstream.add_file("gone", "gone-1.0.tar.gz", os.urandom(1000))
    upstream.add_file("gone", "gone-1.0-py3-none-any.whl", os.urandom(1100), metadata=GONE_METADATA)


def _stop_removal_between_its_files(mirror: MirrorSetup, upstream: Upstream,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """gone's removal stops (as a kill would) after its pages and its first file went, before the next."""
    _upload_gone(upstream)
    assert mirror.run() == 0
    upstream.remove_project("gone")
    deleted: list[str] = []
    real_delete = FilesystemStore.delete

    def delete_then_stop(store: FilesystemStore, key: str) -> bool:
        if key.startswith("packages/") and deleted:
            raise StorageError(f"cannot delete {key}: injected stop")
        gone = real_delete(store, key)
        if gone and key.startswith("packages/"):
            deleted.append(key)
        return gone

    with monkeypatch.context() as patch:
        patch.setattr(FilesystemStore, "delete", delete_then_stop)
        assert mirror.run() == 1
    assert deleted and not (mirror.web / "simple" / "gone").exists()


def _stop_removal_before_its_pages(mirror: MirrorSetup, upstream: Upstream,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """gone's removal stops after the root index let go of it, before its intents file and pages."""
    _upload_gone(upstream)
    assert mirror.run() == 0
    upstream.remove_project("gone")

    def write(target: Path, data: bytes, staging: Path) -> None:
        if target.parent.name == "intents":
            raise StorageError(f"cannot write {target}: injected stop")
        real_write(target, data, staging)

    with monkeypatch.context() as patch:
        patch.setattr(package, "atomic_write", write)
        assert mirror.run() == 1
    assert (mirror.web / "simple" / "gone" / "index.html").is_file()


def _stop_first_sync_between_its_files(mirror: MirrorSetup, upstream: Upstream,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """gone's first sync fetches its sdist, then fails on its wheel: no page, one file on disk."""
    _upload_gone(upstream)
    upstream.fail(upstream.get_file("gone", "gone-1.0-py3-none-any.whl").path, 404, times=None)
    assert mirror.run() == 1
    upstream.clear_faults()
    upstream.remove_project("gone")


def _stop_sync_between_its_pages(mirror: MirrorSetup, upstream: Upstream,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """gone's first sync stops after its JSON page, before its HTML page."""
    _upload_gone(upstream)
    real_publish = FilesystemStore.publish_page

    def publish(store: FilesystemStore, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        if key == "simple/gone/index.html":
            raise StorageError(f"cannot write {key}: injected stop")
        return real_publish(store, key, data)

    with monkeypatch.context() as patch:
        patch.setattr(FilesystemStore, "publish_page", publish)
        assert mirror.run() == 1
    upstream.remove_project("gone")


@pytest.mark.parametrize("next_run", [(), ("--force-check",)], ids=["changelog", "force-check"])
@pytest.mark.parametrize("stop", [_stop_removal_between_its_files, _stop_removal_before_its_pages,
                                  _stop_first_sync_between_its_files, _stop_sync_between_its_pages],
                         ids=["removal-between-its-files", "removal-before-its-pages",
                              "first-sync-between-its-files", "sync-between-its-pages"])
def test_a_project_removed_upstream_leaves_nothing_behind_whichever_step_its_last_sync_stopped_at(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch,
    stop: Callable[[MirrorSetup, Upstream, pytest.MonkeyPatch], None], next_run: tuple[str, ...]
) -> None:
    # Found by the SIGKILL test (seed 1): a removal killed between its two files' deletions left no
    # page, so the next run took upstream's 404 for "nothing of it here" and never read the intents
    # file that still named the other file.  A --force-check run also dropped what todo still owed.
    for i in range(3):
        upstream.add_file(f"keep{i}", f"keep{i}-1.0.tar.gz", os.urandom(900))
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    stop(mirror, upstream, monkeypatch)
    assert [p for p in (mirror.web / "packages").rglob("gone*") if p.is_file()]  # what the stop left
    assert mirror.run(*next_run) == 0
    assert_mirror_matches(upstream, mirror.web)
    assert not (mirror.web / "simple" / "gone").exists()
    assert not (mirror.root / "intents" / "gone").exists()
    assert pending_work(mirror.root) == {}
