"""``bandersnatch verify [--repair] [--fast] [--json]`` against a real mirror synced from the fake PyPI.

Each test damages the mirror the way disks, operators and killed tools do,
checks that verify names the damage (exit 1, one line each), that
``--repair`` mends it, and that a second verify is clean and the mirror is
again exactly what upstream serves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.fakepypi import SIMPLE_JSON, SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, write_config

from bandersnatch import cli
from bandersnatch.ledger.extsort import read_lines, sort_lines
from bandersnatch.sync.mirror import acquire_lock
from bandersnatch.sync.rootindex import RootIndex
from bandersnatch.verify.pagecheck import sort_key
from bandersnatch.verify.verifier import walk_sorted


@pytest.fixture
def synced(tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus) -> MirrorSetup:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    return mirror


def verify(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = cli.main(["-c", str(mirror.config), "verify", *args])
    return code, capsys.readouterr().out.splitlines()


def file_of(mirror: MirrorSetup, filename: str) -> Path:
    return next(mirror.web.joinpath("packages").rglob(filename))


def assert_repaired(mirror: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str],
                    hash_index: bool = False) -> None:
    code, lines = verify(mirror, capsys, "--repair")
    assert code == 0, lines
    assert verify(mirror, capsys) == (0, [])
    assert_mirror_matches(upstream, mirror.web, hash_index)


def test_a_freshly_synced_mirror_verifies_clean(synced: MirrorSetup,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(synced, capsys) == (0, [])
    assert not (synced.root / "tmp" / "verify").exists()  # nothing left to resume


def test_bit_flip_at_equal_size_is_found_and_fetched_again(
        synced: MirrorSetup, upstream: Upstream, sample_corpus: SampleCorpus,
        capsys: pytest.CaptureFixture[str]) -> None:
    victim = file_of(synced, sample_corpus.files_of("beta")[0].filename)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    code, lines = verify(synced, capsys)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("hash: packages/") and victim.name in lines[0]
    assert "recorded by beta" in lines[0]
    assert_repaired(synced, upstream, capsys)


def test_deleted_file_is_found_and_fetched_again(
        synced: MirrorSetup, upstream: Upstream, sample_corpus: SampleCorpus,
        capsys: pytest.CaptureFixture[str]) -> None:
    victim = file_of(synced, sample_corpus.files_of("Alpha-Lib")[0].filename)
    victim.unlink()
    code, lines = verify(synced, capsys)
    assert code == 1 and lines == [f"missing: packages/{victim.relative_to(synced.web / 'packages')}: "
                                   "linked by alpha-lib but not on disk"]
    assert_repaired(synced, upstream, capsys)


def test_truncated_metadata_is_found_and_fetched_again(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = next(synced.web.joinpath("packages").rglob("*.metadata"))
    metadata.write_bytes(metadata.read_bytes()[:10])
    code, lines = verify(synced, capsys)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("size: packages/") and lines[0].split(": ")[1].endswith(
        ".metadata")
    assert_repaired(synced, upstream, capsys)


def test_orphan_file_is_found_and_deleted(synced: MirrorSetup, upstream: Upstream,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    orphan = synced.web / "packages" / "ab" / "cd" / "stray-1.0.tar.gz"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind")
    code, lines = verify(synced, capsys)
    assert code == 1
    assert lines == ["orphan: packages/ab/cd/stray-1.0.tar.gz: no page links it; deleted by --repair"]
    assert_repaired(synced, upstream, capsys)
    assert not orphan.exists() and not orphan.parent.exists()  # emptied directories go too


def test_directories_that_cannot_be_projects_are_reported_in_name_order_and_left_alone(
        synced: MirrorSetup, capsys: pytest.CaptureFixture[str]) -> None:
    # The listing of web/simple/ streams in scandir's order; the strays are still reported sorted.
    for name in ("Zeta_Upper", "Bad.Name", "mixed-Case"):
        (synced.web / "simple" / name).mkdir()
    code, lines = verify(synced, capsys)
    assert code == 1
    assert lines == [f"stray: simple/{name}: not a normalized project name; left alone"
                     for name in ("Bad.Name", "Zeta_Upper", "mixed-Case")]
    assert all((synced.web / "simple" / name).is_dir() for name in ("Zeta_Upper", "Bad.Name", "mixed-Case"))


def test_unlinked_file_an_interrupted_sync_recorded_is_neither_reported_nor_deleted(
        synced: MirrorSetup, capsys: pytest.CaptureFixture[str]) -> None:
    # A killed sync of beta downloaded this file before its page could link it: beta's next sync
    # decides, not verify.
    pending = synced.web / "packages" / "zz" / "beta-9.0.tar.gz"
    pending.parent.mkdir(parents=True)
    pending.write_bytes(b"in flight")
    (synced.root / "intents").mkdir(exist_ok=True)
    (synced.root / "intents" / "beta").write_text("../../packages/zz/beta-9.0.tar.gz\n")
    assert verify(synced, capsys) == (0, [])
    assert verify(synced, capsys, "--repair")[0] == 0
    assert pending.exists()


def test_ghost_project_is_removed_without_deleting_files_another_page_links(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    # A project directory upstream does not list and the root index does not name, whose pages
    # link beta's files (restored from an old backup, say).
    ghost = synced.web / "simple" / "ghost-project"
    shutil.copytree(page_dir(synced.web, "beta"), ghost)
    code, lines = verify(synced, capsys)
    assert code == 1
    assert lines == ["ghost: simple/ghost-project: neither the root index nor upstream names it"]
    assert_repaired(synced, upstream, capsys)
    assert not ghost.exists()  # and assert_repaired proved beta's files are all still there


def test_damaged_page_is_found_and_written_again(synced: MirrorSetup, upstream: Upstream,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    page = page_dir(synced.web, "Alpha-Lib") / "index.v1_json"
    page.write_bytes(page.read_bytes()[:40])
    code, lines = verify(synced, capsys)
    assert code == 1
    assert lines[0].startswith("page-damaged: simple/alpha-lib/index.v1_json: malformed JSON page")
    assert all(not line.startswith("orphan") for line in lines)  # its files are not orphans
    assert_repaired(synced, upstream, capsys)


def test_pages_that_disagree_are_found_and_written_again(synced: MirrorSetup, upstream: Upstream,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    page = page_dir(synced.web, "beta") / "index.html"
    lines_kept = [line for line in page.read_text().splitlines(keepends=True) if ".tar.gz" not in line]
    page.write_text("".join(lines_kept))
    code, lines = verify(synced, capsys)
    assert code == 1 and lines == [
        "pages-disagree: simple/beta: 2 file(s) in index.v1_json, 1 in index.html"]
    assert_repaired(synced, upstream, capsys)


def test_root_index_missing_a_project_is_found_and_rebuilt(synced: MirrorSetup, upstream: Upstream,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = RootIndex(synced.web / "simple", synced.root / "tmp" / "x", False)
    root.update({}, {"beta"}, upstream.serial)
    code, lines = verify(synced, capsys)
    assert code == 1 and lines == [
        "root-missing: beta: has both pages but the root index does not name it"]
    assert_repaired(synced, upstream, capsys)


def test_cut_root_index_and_a_project_named_without_pages_are_found_and_rebuilt(
        synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    html = synced.web / "simple" / "index.html"
    html.write_bytes(html.read_bytes()[:-30])
    shutil.rmtree(page_dir(synced.web, "empty-project"))
    code, lines = verify(synced, capsys)
    assert code == 1
    assert lines == ["root-damaged: simple/index.html: cut short; rebuilt from the project directories by "
                     "--repair",
                     "root-extra: empty-project: named by simple/index.v1_json but has no pages"]
    assert_repaired(synced, upstream, capsys)


def test_hash_index_mirror_verifies_and_repairs_in_its_layout(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus,
        capsys: pytest.CaptureFixture[str]) -> None:
    mirror = write_config(tmp_path, upstream.url, hash_index="true")
    assert mirror.run() == 0
    assert verify(mirror, capsys) == (0, [])
    page = page_dir(mirror.web, "beta", hash_index=True) / "index.v1_json"
    page.unlink()
    code, lines = verify(mirror, capsys)
    assert code == 1 and lines[0] == "page-missing: simple/b/beta/index.v1_json: missing"
    assert_repaired(mirror, upstream, capsys, hash_index=True)


def test_fast_trusts_size_and_mtime_and_hashes_only_what_changed(
        synced: MirrorSetup, sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]) -> None:
    victim = file_of(synced, sample_corpus.files_of("beta")[0].filename)
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: a silent bit flip
    assert verify(synced, capsys, "--fast") == (0, [])
    assert verify(synced, capsys)[0] == 1  # only reading the bytes finds it
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    code, lines = verify(synced, capsys, "--fast")
    assert code == 1 and lines[0].startswith("hash: ")  # changed since verified: --fast reads it


def test_json_output_names_each_problem(synced: MirrorSetup, sample_corpus: SampleCorpus,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    victim = file_of(synced, sample_corpus.files_of("beta")[0].filename)
    victim.unlink()
    code, out = verify(synced, capsys, "--json")
    doc = json.loads("\n".join(out))
    assert code == 1 and doc["clean"] is False and doc["repair"] is None
    assert [(p["kind"], p["projects"]) for p in doc["problems"]] == [("missing", ["beta"])]
    assert doc["counts"]["projects"] == 4 and doc["counts"]["files"] == 6


def test_repair_waits_for_no_mirror_run_it_refuses_while_one_holds_the_lock(
        synced: MirrorSetup, capsys: pytest.CaptureFixture[str]) -> None:
    lock = acquire_lock(synced.root)
    try:
        assert verify(synced, capsys, "--repair")[0] == cli.EXIT_LOCKED
        assert verify(synced, capsys) == (0, [])  # plain verify only reads: it takes no lock
    finally:
        lock.release()


_SLOW_VERIFY = """
import sys, time
import bandersnatch.verify.verifier as v
from bandersnatch import cli
real = v.sha256_file
def slow(path):
    time.sleep(0.2)
    return real(path)
v.sha256_file = slow
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_killed_verify_resumes_where_it_stopped(tmp_path: Path, upstream: Upstream,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for version in range(60):
        upstream.add_sdist("many", f"1.{version}")
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    victim = next(mirror.web.joinpath("packages").rglob("many-1.59.tar.gz"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")  # found only if the resumed part is read
    checkpoint = mirror.root / "tmp" / "verify" / "checkpoint"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_VERIFY, "-c", str(mirror.config), "verify"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                state = json.loads(checkpoint.read_bytes())
            except (OSError, ValueError):
                state = {}
            if state.get("phase") == "files" and state.get("counts", {}).get("files", 0) >= 10:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the verify never got to hashing")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done_before = json.loads(checkpoint.read_bytes())["counts"]["hashed"]
    assert 10 <= done_before < 60
    code, out = verify(mirror, capsys, "--json")
    doc = json.loads("\n".join(out))
    assert code == 1 and doc["resumed_from"] is not None
    assert [p["kind"] for p in doc["problems"]] == ["hash"]
    assert doc["counts"]["hashed"] == 60  # each file hashed once across both runs
    assert not checkpoint.exists()


# ------------------------------------------------------------------ the building blocks


def test_external_sort_merges_sorted_runs_in_code_point_order(tmp_path: Path) -> None:
    words = [f"{(i * 7919) % 1000:04d}-{i}\n" for i in range(1000)] + ["\x01\n", "é\n"]
    (tmp_path / "in").write_text("".join(words))
    assert sort_lines(tmp_path / "in", tmp_path / "out", tmp_path / "runs", run_lines=37) == len(words)
    assert list(read_lines(tmp_path / "out")) == sorted(w[:-1] for w in words)
    assert not list((tmp_path / "runs").iterdir())


def test_external_sort_cuts_runs_by_the_memory_their_lines_take(tmp_path: Path) -> None:
    long, short = "z" * 900 + "\n", "a\n"
    (tmp_path / "in").write_text(long * 3 + short * 3)
    # ~1 KB per long line as held: the long lines fill the first 2 KB run, the short ones a second
    assert sort_lines(tmp_path / "in", tmp_path / "out", tmp_path / "runs", run_bytes=2000) == 6
    assert list(read_lines(tmp_path / "out")) == ["a"] * 3 + ["z" * 900] * 3
    assert not list((tmp_path / "runs").iterdir())


def test_sorted_walk_follows_the_order_of_path_sort_keys(tmp_path: Path) -> None:
    rels = ["a/x", "a-b", "a0", "a/b/c", "ab/c", "b", "a/b-1"]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    walked = [key for key, _ in walk_sorted(tmp_path)]
    assert walked == sorted(sort_key(r) for r in rels)
    after = sort_key("a/b/c")
    assert [key for key, _ in walk_sorted(tmp_path, after)] == [k for k in walked if k > after]


# ---------------------------------------------------------------- what is published beside a file


def test_provenance_two_pages_link_is_checked_not_called_an_orphan_and_repair_fetches_it_again(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus,
        capsys: pytest.CaptureFixture[str]) -> None:
    wheel = "alpha_lib-2.0-py3-none-any.whl"
    upstream.add_provenance("Alpha-Lib", wheel)
    entry = upstream.get_file("Alpha-Lib", wheel)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.add_project("sharer")  # links alpha's wheel and its provenance, as a renamed project's page may
    body = json.dumps({"meta": {"api-version": "1.3"}, "name": "sharer", "files": [
        {"filename": wheel, "url": upstream.file_url(entry), "hashes": {"sha256": entry.sha256},
         "provenance": upstream.url + entry.provenance_path}]}).encode()
    upstream.raw_page("sharer", body, SIMPLE_JSON, upstream.serial)
    assert mirror.run() == 0
    provenance = file_of(mirror, wheel + ".provenance")
    assert verify(mirror, capsys) == (0, [])
    code, lines = verify(mirror, capsys, "--repair")
    assert (code, lines) == (0, [])
    assert provenance.read_bytes() == entry.provenance  # both pages link it: never deleted

    provenance.unlink()
    code, lines = verify(mirror, capsys)
    rel = provenance.relative_to(mirror.web / "packages")
    assert code == 1 and lines == [f"missing: packages/{rel}: linked by alpha-lib, sharer but not on disk"]
    code, lines = verify(mirror, capsys, "--repair")
    assert code == 0, lines
    assert provenance.read_bytes() == entry.provenance
    assert verify(mirror, capsys) == (0, [])


def test_a_sidecar_no_page_links_is_still_an_orphan_even_beside_a_linked_file(
        synced: MirrorSetup, upstream: Upstream, sample_corpus: SampleCorpus,
        capsys: pytest.CaptureFixture[str]) -> None:
    linked = file_of(synced, sample_corpus.files_of("beta")[0].filename)  # its page links no provenance
    beside = linked.with_name(linked.name + ".provenance")
    beside.write_bytes(b"{}")
    lone = synced.web / "packages" / "ab" / "cd" / "stray-1.0.tar.gz.metadata"
    lone.parent.mkdir(parents=True)
    lone.write_bytes(b"Metadata-Version: 2.1\n")
    code, lines = verify(synced, capsys)
    assert code == 1
    assert sorted(lines) == sorted(
        f"orphan: packages/{p.relative_to(synced.web / 'packages')}: no page links it; deleted by --repair"
        for p in (beside, lone))
    assert_repaired(synced, upstream, capsys)
    assert not beside.exists() and not lone.exists() and linked.is_file()


def test_verify_during_a_first_sync_says_it_is_not_finished_instead_of_root_damaged(
    tmp_path: Path, upstream: Upstream, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(20):
        upstream.add_wheel(f"proj{i:02d}", "1.0")
    upstream.latency = 0.05
    mirror = write_config(tmp_path, upstream.url, workers="1")
    proc = mirror.run_subprocess()
    journal = mirror.root / "todo.journal"
    deadline = time.monotonic() + 30
    while not (journal.exists() and journal.read_text().count("\n") > 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert not (mirror.root / "state").exists()  # the first sync is under way
    code, lines = verify(mirror, capsys)
    assert code == 1 and not [line for line in lines if line.startswith("root-")], lines
    said = [r.getMessage() for r in caplog.records if "first sync is not finished" in r.getMessage()]
    assert len(said) == 1 and "project(s) still owed" in said[0]
    assert mirror.run() == 0
    assert verify(mirror, capsys) == (0, [])


def test_a_root_index_deleted_under_a_whole_tree_is_still_repaired_by_verify(
    synced: MirrorSetup, upstream: Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    (synced.web / "simple" / "index.html").unlink()
    code, lines = verify(synced, capsys)
    assert code == 1 and lines[0].startswith("root-damaged: simple/index.html: missing"), lines
    assert_repaired(synced, upstream, capsys)
