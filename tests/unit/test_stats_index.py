"""The mirror's own pages decide which project a downloaded file belongs to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bandersnatch.stats.index import ProjectIndex, page_filenames, page_path


def write_page(simple: Path, project: str, files: list[str], hash_index: bool) -> None:
    path = page_path(simple, project, hash_index)
    path.parent.mkdir(parents=True, exist_ok=True)
    up = "../../../" if hash_index else "../../"
    page = {
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": [{"filename": f, "url": f"{up}packages/ab/cd/0123/{f}", "hashes": {}} for f in files],
    }
    path.write_text(json.dumps(page))


@pytest.mark.parametrize("hash_index", [False, True])
def test_page_path_follows_the_mirror_layout(tmp_path: Path, hash_index: bool) -> None:
    expected = "simple/r/requests/index.v1_json" if hash_index else "simple/requests/index.v1_json"
    assert page_path(tmp_path / "simple", "requests", hash_index) == tmp_path / expected


@pytest.mark.parametrize("hash_index", [False, True])
def test_a_file_listed_on_a_candidate_page_belongs_to_that_project(tmp_path: Path, hash_index: bool) -> None:
    simple = tmp_path / "simple"
    write_page(simple, "foo-2", ["foo-2-1.0.tar.gz"], hash_index)
    write_page(simple, "foo", ["foo-1.0.tar.gz"], hash_index)
    index = ProjectIndex(simple, hash_index)
    # Longest candidate "foo-2" is confirmed by its page.
    assert index.project_for("foo-2-1.0.tar.gz") == "foo-2"
    assert index.project_for("foo-1.0.tar.gz") == "foo"


def test_the_index_overrules_the_longest_name_guess(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    # Project "pkg" released version "2-beta" as pkg-2-beta-1.tar.gz; a
    # project "pkg-2-beta" does not exist, so the index picks "pkg".
    write_page(simple, "pkg", ["pkg-2-beta-1.tar.gz"], False)
    index = ProjectIndex(simple, False)
    assert index.project_for("pkg-2-beta-1.tar.gz") == "pkg"


def test_a_page_is_read_once_per_run(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    write_page(simple, "requests", ["requests-2.32.3.tar.gz", "requests-2.32.3-py3-none-any.whl"], False)
    index = ProjectIndex(simple, False)
    for _ in range(3):
        assert index.project_for("requests-2.32.3.tar.gz") == "requests"
        assert index.project_for("requests-2.32.3-py3-none-any.whl") == "requests"
    assert index.pages_read == 1


def test_without_a_page_the_file_name_decides(tmp_path: Path) -> None:
    index = ProjectIndex(tmp_path / "simple", False)
    assert index.project_for("Some_Project-1.0-py3-none-any.whl") == "some-project"
    assert index.project_for("some-project-1.0.tar.gz") == "some-project"


def test_metadata_and_signature_files_belong_to_no_project(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    write_page(simple, "requests", ["requests-2.32.3-py3-none-any.whl"], False)
    index = ProjectIndex(simple, False)
    assert index.project_for("requests-2.32.3-py3-none-any.whl.metadata") is None
    assert index.project_for("requests-2.32.3-py3-none-any.whl.asc") is None


def test_a_damaged_page_falls_back_to_the_file_name(tmp_path: Path) -> None:
    path = page_path(tmp_path / "simple", "requests", False)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    index = ProjectIndex(tmp_path / "simple", False)
    assert index.project_for("requests-2.32.3.tar.gz") == "requests"


@pytest.mark.parametrize(
    "data",
    [b"[]", b'{"files": {}}', b"\xff", b'{"name": "x"}'],
)
def test_page_filenames_refuses_what_is_no_project_page(data: bytes) -> None:
    with pytest.raises(ValueError):
        page_filenames(data)


def test_page_filenames_ignores_odd_entries() -> None:
    data = json.dumps({"files": [{"filename": "a-1.tar.gz"}, {"filename": 3}, "x", {}]}).encode()
    assert page_filenames(data) == frozenset({"a-1.tar.gz"})
