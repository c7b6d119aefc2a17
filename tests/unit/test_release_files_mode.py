"""``[mirror] release-files``: its values, the links of pages whose files mirror does not download,
the record of the mode and the refusal to switch it on a mirror with pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bandersnatch.config.settings import parse
from bandersnatch.config.values import ReleaseFiles
from bandersnatch.errors import ConfigError
from bandersnatch.formats.layout import UrlPolicy, file_segments, upstream_link
from bandersnatch.formats.simple import DistFile, ProjectPage, render_project_html, render_project_json
from bandersnatch.sync.guards import RELEASE_FILES_RECORD, check_release_files
from bandersnatch.sync.releasefiles import linked_record
from bandersnatch.verify.pagecheck import BAD_LINK, check_project

CONF = Path("/etc/bandersnatch.conf")
FILES = "https://files.pythonhosted.org"
DIGEST = "2ee14ee469c3eb52fe90322ec81dd404a0093d565a6d71ce77cbc8124e3b"
PYPI = UrlPolicy.for_master("https://pypi.org", ["files.pythonhosted.org"], allow_http=False)
URL = f"{FILES}/packages/ab/cd/{DIGEST}/x-1.0-py3-none-any.whl"
SHA = "a" * 64
WHEEL = DistFile("x-1.0-py3-none-any.whl", URL, {"sha256": SHA}, size=10,
                 core_metadata={"sha256": "b" * 64}, provenance="https://pypi.org/integrity/x/1.0/x.whl/provenance")


def mirror(*lines: str) -> str:
    return "[mirror]\ndirectory = /srv/pypi\n" + "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize(("raw", "mode"), [
    (None, ReleaseFiles.TRUE), ("true", ReleaseFiles.TRUE), ("yes", ReleaseFiles.TRUE),
    ("false", ReleaseFiles.FALSE), ("off", ReleaseFiles.FALSE),
    ("on-demand", ReleaseFiles.ON_DEMAND), ("On-Demand", ReleaseFiles.ON_DEMAND),
])
def test_release_files_is_bandersnatch_8_s_boolean_or_on_demand(raw: str | None, mode: ReleaseFiles) -> None:
    lines = () if raw is None else (f"release-files = {raw}",)
    assert parse(mirror(*lines), CONF).release_files is mode


def test_a_release_files_value_that_is_neither_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse(mirror("release-files = lazy"), CONF)
    assert (info.value.section, info.value.option) == ("mirror", "release-files")
    assert "not true, false or on-demand" in str(info.value) and "\n" not in str(info.value)


def test_on_demand_with_s3_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse(mirror("release-files = on-demand", "storage-backend = s3") + "[s3]\nbucket = pypi\n", CONF)
    assert (info.value.section, info.value.option) == ("mirror", "release-files")
    assert "bucket" in str(info.value) and "\n" not in str(info.value)


def test_index_only_with_s3_is_accepted() -> None:
    cfg = parse(mirror("release-files = false", "storage-backend = s3") + "[s3]\nbucket = pypi\n", CONF)
    assert cfg.release_files is ReleaseFiles.FALSE


def test_root_uri_is_not_warned_about_when_index_only_pages_use_it() -> None:
    cfg = parse(mirror("release-files = false", "root_uri = https://files.example.org"), CONF)
    assert cfg.root_uri == "https://files.example.org/" and cfg.warnings == ()


# ---------------------------------------------------------------- links


@pytest.mark.parametrize(("root_uri", "link"), [
    (None, URL),
    ("https://files.example.org/", f"https://files.example.org/packages/ab/cd/{DIGEST}/x-1.0-py3-none-any.whl"),
    ("https://m.example.org/pypi/", f"https://m.example.org/pypi/packages/ab/cd/{DIGEST}/x-1.0-py3-none-any.whl"),
])
def test_index_only_links_root_uri_plus_the_file_s_path_else_upstream_s_url(root_uri: str | None,
                                                                            link: str) -> None:
    assert upstream_link(URL, file_segments(URL, PYPI), root_uri) == link


def test_index_only_quotes_each_segment_of_the_path_below_root_uri() -> None:
    url = f"{FILES}/packages/ab/x%2By-1.0.tar.gz"
    assert upstream_link(url, file_segments(url, PYPI), "https://m.example.org/") == (
        "https://m.example.org/packages/ab/x%2By-1.0.tar.gz")


def test_index_only_page_keeps_upstream_s_hash_metadata_and_provenance() -> None:
    mine = linked_record(WHEEL, "../../packages/ab/x.whl", file_segments(URL, PYPI), ReleaseFiles.FALSE, None)
    assert (mine.url, mine.hashes, mine.core_metadata, mine.provenance) == (
        URL, {"sha256": SHA}, {"sha256": "b" * 64}, WHEEL.provenance)
    html = render_project_html(ProjectPage("x", (mine,)), 7).decode()
    assert f'href="{URL}#sha256={SHA}"' in html and 'data-core-metadata="sha256=' + "b" * 64 in html


def test_on_demand_page_links_our_packages_with_upstream_s_hash_and_no_provenance() -> None:
    mine = linked_record(WHEEL, "../../packages/ab/x.whl", (), ReleaseFiles.ON_DEMAND, None)
    assert (mine.url, mine.hashes, mine.core_metadata, mine.provenance, mine.on_disk) == (
        "../../packages/ab/x.whl", {"sha256": SHA}, {"sha256": "b" * 64}, None, None)


def _pages(tmp_path: Path, files: tuple[DistFile, ...]) -> Path:
    where = tmp_path / "simple" / "x"
    where.mkdir(parents=True)
    page = ProjectPage("x", files)
    (where / "index.v1_json").write_bytes(render_project_json(page, 7))
    (where / "index.html").write_bytes(render_project_html(page, 7))
    return where


def test_verify_takes_an_index_only_page_s_links_elsewhere_as_no_file_of_the_mirror(tmp_path: Path) -> None:
    mine = linked_record(WHEEL, "", file_segments(URL, PYPI), ReleaseFiles.FALSE, None)
    where = _pages(tmp_path, (mine,))
    report = check_project(where, "x", "simple/x", external=True)
    assert (report.problems, report.records) == ([], [])
    assert [p.kind for p in check_project(where, "x", "simple/x").problems] == [BAD_LINK]


# ---------------------------------------------------------------- the record and the switch


def _mirror_with_pages(tmp_path: Path) -> Path:
    page = tmp_path / "web" / "simple" / "x"
    page.mkdir(parents=True)
    (page / "index.v1_json").write_text(json.dumps({"files": []}))
    (tmp_path / "staging").mkdir()
    return tmp_path


def test_the_mode_is_recorded_and_any_goes_while_the_mirror_has_no_pages(tmp_path: Path) -> None:
    (tmp_path / "staging").mkdir()
    for mode in (ReleaseFiles.ON_DEMAND, ReleaseFiles.FALSE):
        check_release_files(tmp_path, tmp_path / "web", mode, CONF, tmp_path / "staging")
        assert (tmp_path / RELEASE_FILES_RECORD).read_text() == f"{mode}\n"


@pytest.mark.parametrize(("recorded", "wanted", "delete"), [
    (ReleaseFiles.ON_DEMAND, ReleaseFiles.TRUE, "web/simple"),
    (ReleaseFiles.TRUE, ReleaseFiles.FALSE, "web,"),
    (ReleaseFiles.FALSE, ReleaseFiles.ON_DEMAND, "web/simple"),
    (None, ReleaseFiles.ON_DEMAND, "web/simple"),  # pages from before the record: true
])
def test_a_switch_on_a_mirror_with_pages_is_refused_with_the_steps(
        tmp_path: Path, recorded: ReleaseFiles | None, wanted: ReleaseFiles, delete: str) -> None:
    directory = _mirror_with_pages(tmp_path)
    if recorded is not None:
        (directory / RELEASE_FILES_RECORD).write_text(f"{recorded}\n")
    with pytest.raises(ConfigError) as info:
        check_release_files(directory, directory / "web", wanted, CONF, directory / "staging")
    said = str(info.value)
    assert info.value.option == "release-files" and "\n" not in said
    assert f"written with release-files = {recorded or ReleaseFiles.TRUE}" in said
    assert f"delete {directory}/{delete}" in said and "bandersnatch mirror" in said


def test_the_mode_the_pages_have_goes_on(tmp_path: Path) -> None:
    directory = _mirror_with_pages(tmp_path)
    check_release_files(directory, directory / "web", ReleaseFiles.TRUE, CONF, directory / "staging")
    assert (directory / RELEASE_FILES_RECORD).read_text() == "true\n"


def test_a_bandersnatch_8_mirror_being_adopted_takes_the_configured_mode(tmp_path: Path) -> None:
    directory = _mirror_with_pages(tmp_path)  # 8.x's index-only mirror: pages, no record
    check_release_files(directory, directory / "web", ReleaseFiles.FALSE, CONF, directory / "staging",
                        adopting=True)
    assert (directory / RELEASE_FILES_RECORD).read_text() == "false\n"
