"""The reader the crash and fault tests trust: it must see every break a pip client would trip over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import MirrorSetup, WebReader, page_dir, write_config


@pytest.fixture(params=[False, True], ids=["flat", "hash-index"])
def synced(request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream) -> tuple[MirrorSetup, bool]:
    hash_index: bool = request.param
    upstream.add_file("alpha", "alpha-1.0.tar.gz", b"a" * 700)
    upstream.add_file("beta", "beta-2.0.tar.gz", b"b" * 900)
    mirror = write_config(tmp_path, upstream.url, hash_index=str(hash_index).lower())
    assert mirror.run() == 0
    return mirror, hash_index


def reader(synced: tuple[MirrorSetup, bool]) -> WebReader:
    mirror, hash_index = synced
    return WebReader(mirror.web, hash_index)


def test_a_complete_mirror_shows_no_problem(synced: tuple[MirrorSetup, bool]) -> None:
    r = reader(synced)
    assert r.sweep() == []
    assert r.pages_read == 4 and r.files_checked == 4  # two pages per project, one file each


def test_a_missing_file_is_seen(synced: tuple[MirrorSetup, bool]) -> None:
    mirror, _ = synced
    next(mirror.web.joinpath("packages").rglob("alpha-1.0.tar.gz")).unlink()
    problems = reader(synced).sweep()
    assert any("links alpha-1.0.tar.gz, which is missing" in p for p in problems), problems


def test_a_file_with_other_bytes_is_seen(synced: tuple[MirrorSetup, bool]) -> None:
    mirror, _ = synced
    next(mirror.web.joinpath("packages").rglob("beta-2.0.tar.gz")).write_bytes(b"tampered")
    problems = reader(synced).sweep()
    assert any("links beta-2.0.tar.gz, which is of another sha256" in p for p in problems), problems


def test_a_half_written_page_is_seen(synced: tuple[MirrorSetup, bool]) -> None:
    mirror, hash_index = synced
    page = page_dir(mirror.web, "alpha", hash_index) / "index.html"
    page.write_bytes(page.read_bytes()[:40])
    assert any("is incomplete" in p for p in reader(synced).sweep())


def test_a_root_index_naming_a_project_without_its_page_is_seen(synced: tuple[MirrorSetup, bool]) -> None:
    mirror, hash_index = synced
    (page_dir(mirror.web, "beta", hash_index) / "index.v1_json").unlink()
    problems = reader(synced).sweep()
    assert any("beta but its index.v1_json is missing" in p for p in problems), problems


def test_an_unparseable_root_json_is_seen(synced: tuple[MirrorSetup, bool]) -> None:
    mirror, _ = synced
    root = mirror.web / "simple" / "index.v1_json"
    root.write_bytes(json.dumps({"projects": [{"name": "alpha"}]}).encode()[:-3])
    assert any("does not parse" in p for p in reader(synced).sweep())
