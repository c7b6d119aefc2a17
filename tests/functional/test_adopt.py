"""Adopting a bandersnatch 8 mirror directory: its serial, its leftovers, and the projects it kept."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, page_dir, write_config


def make_8x_mirror(mirror: MirrorSetup, serial: int) -> None:
    """Reshape a synced mirror as bandersnatch 8 leaves one (simple-format = ALL, json = true).

    Its bookkeeping is 8.x's (generation 5, status); its pages carry no record of ours;
    every page has its index.v1_html twin; web/json and web/pypi hold the JSON copies; one
    project is kept in versions/ (keep_index_versions); one has only HTML (simple-format =
    HTML at some point); and one, "ghost-project", was deleted upstream long ago but kept.
    """
    root, web = mirror.root, mirror.web
    for name in ("state", "todo", "todo.journal", "failures", "selection", "generation"):
        (root / name).unlink(missing_ok=True)
    shutil.rmtree(root / "tmp", ignore_errors=True)
    (root / "generation").write_text("5")
    (root / "status").write_text(f"{serial}\n")
    simple = web / "simple"
    ghost = simple / "ghost-project"
    ghost.mkdir()
    (ghost / "index.html").write_text("<html><body><h1>Links for ghost-project</h1></body></html>")
    (ghost / "index.v1_json").write_text('{"meta":{"api-version":"1.1"},"name":"ghost-project","files":[]}')
    for page_dir_ in [simple, *(d for d in simple.iterdir() if d.is_dir())]:
        (page_dir_ / "index.v1_html").write_bytes((page_dir_ / "index.html").read_bytes())
        doc = page_dir_ / "index.v1_json"
        page = json.loads(doc.read_bytes())
        for entry in page.get("files", ()):
            entry.pop("_on-disk", None)
        doc.write_text(json.dumps(page))
        if page_dir_ != simple:
            (web / "json").mkdir(exist_ok=True)
            (web / "json" / page_dir_.name).write_text(json.dumps({"info": {"name": page_dir_.name}}))
            (web / "pypi" / page_dir_.name).mkdir(parents=True)
            os.symlink(f"../../json/{page_dir_.name}", web / "pypi" / page_dir_.name / "json")
    alpha = simple / "alpha-lib"
    (alpha / "versions").mkdir()
    (alpha / "index.html").rename(alpha / "versions" / f"index_{serial}_1700000000.html")
    os.symlink(f"versions/index_{serial}_1700000000.html", alpha / "index.html")
    (simple / "empty-project" / "index.v1_json").unlink()


def test_an_8x_mirror_is_adopted_cleaned_and_kept_current_by_the_next_sync(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    make_8x_mirror(synced, upstream.serial)
    upstream.add_wheel("beta", "0.6")
    upstream.reset_requests()

    assert synced.run() == 0
    web = synced.web
    assert (synced.root / "state").read_text().strip() == str(upstream.serial)
    assert (synced.root / "status.adopted").exists() and not (synced.root / "adopting").exists()
    assert not page_dir(web, "ghost-project").exists()  # upstream deleted it; 8.x had kept it
    assert not (web / "json").exists() and not (web / "pypi").exists()
    assert list(web.rglob("index.v1_html")) == [] and list(web.rglob("versions")) == []
    assert not (page_dir(web, "alpha-lib") / "index.html").is_symlink()
    assert (page_dir(web, "empty-project") / "index.v1_json").is_file()
    assert_mirror_matches(upstream, web)
    # beta (changed), empty-project (one page only), the ghost (its 404 confirmed past the CDN).
    assert sorted(r.path.split("?")[0] for r in upstream.requests if r.path.startswith("/simple/")) == [
        "/simple/beta/", "/simple/empty-project/", "/simple/ghost-project/", "/simple/ghost-project/"]

    upstream.reset_requests()
    assert synced.run() == 0  # adopted: an ordinary no-op run from now on
    assert upstream.count_requests("/simple/") == 0


def test_ghosts_of_an_adopted_mirror_go_through_the_removal_limit(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, max_removals="0", max_removals_percent="0")
    assert mirror.run() == 0
    make_8x_mirror(mirror, upstream.serial)
    assert mirror.run() == 1  # held back: removals past the limit need a word from the operator
    assert page_dir(mirror.web, "ghost-project").exists()
    assert not (mirror.root / "adopting").exists()  # the ghost is owed in todo, not found again
    assert mirror.run("--allow-mass-removal") == 0
    assert not page_dir(mirror.web, "ghost-project").exists()
    assert_mirror_matches(upstream, mirror.web)


def test_adopting_with_json_true_syncs_every_project_once(upstream: Upstream, synced: MirrorSetup) -> None:
    make_8x_mirror(synced, upstream.serial)
    synced.config.write_text(synced.config.read_text().replace("[mirror]\n", "[mirror]\njson = true\n"))
    upstream.reset_requests()
    assert synced.run() == 0
    assert upstream.count_requests("/packages/") == 0  # files on disk are reused
    assert upstream.count_requests("/simple/") == 6  # every listed project, and the ghost's confirmed 404
    assert not page_dir(synced.web, "ghost-project").exists()
    assert_mirror_matches(upstream, synced.web)
