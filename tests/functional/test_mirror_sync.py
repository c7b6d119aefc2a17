"""``bandersnatch mirror`` against the fake PyPI: full and incremental syncs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import distbuild
from support.fakepypi import SampleCorpus, Upstream, normalize
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, temp_files, write_config

from bandersnatch.config.settings import load
from bandersnatch.formats.layout import UrlPolicy
from bandersnatch.sync.mirror import Mirror
from bandersnatch.upstream.master import CHANGELOG_PAUSE, Digest, Master


def test_full_sync_mirrors_every_project_file_and_metadata(upstream: Upstream, synced: MirrorSetup) -> None:
    assert_mirror_matches(upstream, synced.web)
    assert (synced.root / "state").read_text().strip() == str(upstream.serial)
    assert not (synced.root / "todo").exists()
    assert (synced.web / "last-modified").read_text().endswith("Z\n")
    assert temp_files(synced.root) == []


def test_incremental_sync_picks_up_a_new_release(upstream: Upstream, synced: MirrorSetup) -> None:
    upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.reset_requests()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    # One changelog call, upstream's own serial (the changelog named serials above the last one
    # upstream reported for itself), one page, one file: nothing else.
    assert upstream.count_requests("/pypi", "POST") == 2
    assert upstream.count_requests("/simple/") == 1
    assert upstream.count_requests("/packages/") == 1


def test_removed_file_is_deleted_from_disk_and_page(
    upstream: Upstream, sample_corpus: SampleCorpus, synced: MirrorSetup
) -> None:
    gone = sample_corpus.files_of("Alpha-Lib")[0]
    upstream.remove_file("Alpha-Lib", gone.filename)
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    assert not list(synced.web.rglob(gone.filename))


def test_removed_project_disappears_in_the_same_run(upstream: Upstream, synced: MirrorSetup) -> None:
    upstream.remove_project("beta")
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    assert not page_dir(synced.web, "beta").exists()


def test_removed_project_keeps_its_files_without_delete_packages(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, delete_packages="false")
    assert mirror.run() == 0
    upstream.remove_project("beta")
    assert mirror.run() == 0
    assert not page_dir(mirror.web, "beta").exists()
    assert list(mirror.web.rglob("beta-0.5.tar.gz"))


def test_yank_is_published_in_both_formats(
    upstream: Upstream, sample_corpus: SampleCorpus, synced: MirrorSetup
) -> None:
    target = sample_corpus.files_of("Alpha-Lib")[0]
    upstream.yank("Alpha-Lib", target.filename, reason="broken build")
    upstream.reset_requests()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    html = (page_dir(synced.web, "alpha-lib") / "index.html").read_text()
    assert 'data-yanked="broken build"' in html
    assert upstream.count_requests("/packages/") == 0  # yanking downloads nothing


def test_hash_index_spreads_pages_by_first_letter(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, hash_index="true")
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web, hash_index=True)
    assert (mirror.web / "simple" / "a" / "alpha-lib" / "index.html").is_file()
    root = (mirror.web / "simple" / "index.html").read_text()
    assert 'href="a/alpha-lib/"' in root


def test_noop_run_makes_one_request_and_rewrites_nothing(upstream: Upstream, synced: MirrorSetup) -> None:
    root_index = synced.web / "simple" / "index.html"
    before = root_index.stat().st_mtime_ns
    upstream.reset_requests()
    assert synced.run() == 0
    assert len(upstream.requests) == 1
    assert root_index.stat().st_mtime_ns == before


def test_unchanged_files_are_not_downloaded_or_rehashed_again(
    upstream: Upstream, synced: MirrorSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.add_wheel("Alpha-Lib", "3.0")
    hashed: list[Path] = []
    import bandersnatch.sync.package as package

    real = package.hash_file

    def recording_hash_file(path: Path, algorithms: set[str]) -> tuple[Digest, dict[str, str]]:
        hashed.append(path)
        return real(path, algorithms)

    monkeypatch.setattr(package, "hash_file", recording_hash_file)
    upstream.reset_requests()
    assert synced.run() == 0
    assert hashed == []
    assert upstream.count_requests("/packages/") == 1


def test_force_check_rehashes_and_repairs_a_damaged_file(upstream: Upstream, synced: MirrorSetup) -> None:
    victim = next(synced.web.rglob("beta-0.5.tar.gz"))
    victim.write_bytes(b"bit rot" + victim.read_bytes()[7:])
    assert synced.run("--force-check") == 0
    assert_mirror_matches(upstream, synced.web)


def test_deleting_state_and_todo_forces_a_full_sync_that_reuses_files(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    (synced.root / "state").unlink()
    upstream.reset_requests()
    assert synced.run() == 0
    assert upstream.count_requests("/pypi", "POST") == 1  # list_packages_with_serial
    assert upstream.count_requests("/simple/") == len(upstream.all_current())
    assert upstream.count_requests("/packages/") == 0
    assert_mirror_matches(upstream, synced.web)


def test_pages_carry_pep_691_and_700_fields(synced: MirrorSetup) -> None:
    doc = json.loads((page_dir(synced.web, "alpha-lib") / "index.v1_json").read_bytes())
    assert doc["meta"]["api-version"] == "1.4"
    assert doc["versions"] == ["1.0", "2.0"]
    assert all(isinstance(f["size"], int) and f["upload-time"].endswith("Z") for f in doc["files"])
    html = (page_dir(synced.web, "alpha-lib") / "index.html").read_text()
    assert '<meta name="pypi:repository-version" content="1.4">' in html
    assert 'data-requires-python="&gt;=3.8"' in html
    assert "data-core-metadata=\"sha256=" in html


def test_a_same_size_bit_flip_is_found_and_repaired_when_its_project_resyncs(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    victim = next(synced.web.rglob("beta-0.5.tar.gz"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))  # same size; its mtime is now not the one we recorded
    upstream.touch("beta")
    upstream.reset_requests()
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)
    assert upstream.count_requests("/packages/") == 1


def test_a_truncated_metadata_file_is_found_and_repaired_when_its_project_resyncs(
    upstream: Upstream, sample_corpus: SampleCorpus, synced: MirrorSetup
) -> None:
    sample = next(f for f in sample_corpus.files.values() if f.has_metadata)
    victim = next(synced.web.rglob(sample.filename + ".metadata"))
    victim.write_bytes(victim.read_bytes()[:10])
    upstream.touch(sample.project)
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)


def test_a_file_whose_record_still_holds_is_trusted_without_hashing_on_a_resync(
    upstream: Upstream, synced: MirrorSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bandersnatch.sync.package as package

    def no_hashing(path: Path, algorithms: set[str]) -> tuple[Digest, dict[str, str]]:
        raise AssertionError(f"{path.name} hashed although its size and mtime match the record")

    monkeypatch.setattr(package, "hash_file", no_hashing)
    for project in ("alpha-lib", "beta"):
        upstream.touch(project)
    assert synced.run() == 0
    assert_mirror_matches(upstream, synced.web)


def test_after_a_generation_reset_a_damaged_kept_file_is_found_as_the_log_line_says(
    upstream: Upstream, synced: MirrorSetup, caplog: pytest.LogCaptureFixture
) -> None:
    (synced.root / "generation").write_text("some-older-format\n")
    victim = next(synced.web.rglob("beta-0.5.tar.gz"))
    data = bytearray(victim.read_bytes())
    data[0] ^= 0x01
    victim.write_bytes(bytes(data))
    upstream.reset_requests()
    assert synced.run() == 0
    assert "trusted while their size and mtime match our pages' record, hashed when not" in caplog.text
    assert_mirror_matches(upstream, synced.web)
    assert upstream.count_requests("/packages/") == 1


def test_a_full_changelog_page_is_followed_by_another_call_from_its_last_serial(
    tmp_path: Path, upstream: Upstream, synced: MirrorSetup
) -> None:
    for version in ("3.0", "4.0", "5.0", "6.0"):
        upstream.add_wheel("Alpha-Lib", version)  # 2 changelog rows each: new release, add file
    upstream.add_wheel("beta", "9.0")
    upstream.changelog_page_limit = 3  # PyPI's is 50,000
    pauses: list[float] = []
    cfg = load(synced.config)
    master = Master(upstream.url, timeout=5, workers=1, max_page_bytes=1 << 20,
                    policy=UrlPolicy.for_master(upstream.url, (), True), spool_dir=tmp_path,
                    sleep=pauses.append, changelog_page=3)
    upstream.reset_requests()
    assert Mirror(cfg, master=master).run().exit_code == 0
    assert_mirror_matches(upstream, synced.web)
    # 10 rows in pages of 3: four calls, a pause before each follow-up (rate limit), none after the last;
    # then upstream's own serial, once (the rows are above the last one it reported for itself).
    assert upstream.count_requests("/pypi", "POST") == 5
    assert pauses == [CHANGELOG_PAUSE] * 3


def test_a_wheels_metadata_file_is_taken_from_the_wheel_when_it_matches_the_page(
    tmp_path: Path, upstream: Upstream
) -> None:
    same = upstream.add_wheel("same", "1.0", with_metadata=True, requires=("dep",))
    # An index may serve metadata that differs from the wheel's own (PEP 658 only promises the hash).
    name, data, _ = distbuild.make_wheel("other", "1.0")
    upstream.add_file("other", name, data, version="1.0", metadata=b"Metadata-Version: 2.1\nName: other\n")
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    # No request for the matching one; the other's came from upstream, byte for byte.
    assert upstream.count_requests("/packages/", "GET") == 3
    assert not any(r.path.endswith(same.filename + ".metadata") for r in upstream.requests)
    local = next(mirror.web.rglob(name + ".metadata"))
    assert local.read_bytes() == b"Metadata-Version: 2.1\nName: other\n"


def root_serials(mirror_web: Path) -> tuple[int, dict[str, int]]:
    """The root JSON index's meta._last-serial and each project's _last-serial."""
    root = json.loads((mirror_web / "simple" / "index.v1_json").read_bytes())
    return root["meta"]["_last-serial"], {p["name"]: p["_last-serial"] for p in root["projects"]}


def upstream_serials(upstream: Upstream) -> dict[str, int]:
    return {normalize(s.name): s.serial for s in upstream.all_current()}


def test_the_root_index_lists_each_project_at_upstream_s_serial_through_full_and_incremental_syncs(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    assert root_serials(synced.web) == (upstream.serial, upstream_serials(upstream))
    upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.yank("beta", "beta-0.5.tar.gz")
    upstream.remove_project("empty-project")
    upstream.add_sdist("newcomer", "0.1")
    assert synced.run() == 0
    assert root_serials(synced.web) == (upstream.serial, upstream_serials(upstream))
    assert (synced.root / "state").read_text().strip() == str(upstream.serial)
    html = (synced.web / "simple" / "index.html").read_text()
    assert html.endswith(f"</html>\n<!--SERIAL {upstream.serial}-->\n")


def test_a_change_that_leaves_the_files_alone_still_moves_the_project_s_root_line_and_serial(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    upstream.touch("beta")  # a description edit on PyPI: same files, new serial
    upstream.reset_requests()
    assert synced.run() == 0
    assert upstream.count_requests("/packages/") == 0
    serial, projects = root_serials(synced.web)
    assert serial == upstream.serial == int((synced.root / "state").read_text())
    assert projects == upstream_serials(upstream)
    assert projects["beta"] == upstream.serial


def test_a_root_index_written_without_project_serials_is_upgraded_by_the_next_run(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    root_json = synced.web / "simple" / "index.v1_json"
    text = root_json.read_text()
    root_json.write_text(re.sub(r',"_last-serial":\d+\}', "}", text.split("\n", 1)[1]).join(
        [text.split("\n", 1)[0] + "\n", ""]))
    assert '"_last-serial":' not in root_json.read_text().split("\n", 1)[1]
    upstream.reset_requests()
    assert synced.run() == 0  # nothing changed upstream
    assert root_json.read_text() == text
    assert len(upstream.requests) == 1


def test_a_run_with_only_owed_projects_says_so_instead_of_an_empty_serial_range(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    upstream.fail("/simple/beta/", 500, times=None)
    assert mirror.run() == 1
    upstream.clear_faults()
    caplog.clear()
    assert mirror.run() == 0
    said = f"Syncing 1 project(s) still owed at serial {upstream.serial} (nothing new upstream)"
    assert said in caplog.text
    assert "changed since serial" not in caplog.text
