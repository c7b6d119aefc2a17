"""``json = true``: web/pypi/<project>/json in PyPI's JSON API shape, kept in step with the pages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from support.fakepypi import SIMPLE_JSON, SampleCorpus, Upstream, normalize, render_legacy_json
from support.mirrortools import MirrorSetup, sha256_of, write_config

from bandersnatch.formats.jsonapi import latest_version, packagetype, python_version

# What our copy says the same as PyPI's (the fake's legacy JSON API); the rest it cannot know.
SAME_AS_PYPI = ("filename", "packagetype", "python_version", "requires_python", "size", "upload_time",
                "upload_time_iso_8601", "yanked", "yanked_reason")


def json_api(web: Path, project: str, hash_index: bool = False) -> dict[str, Any]:
    key = normalize(project)
    path = web / "pypi" / key[0] / key / "json" if hash_index else web / "pypi" / key / "json"
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def served_file(web: Path, project: str, url: str) -> Path:
    """The file a client of ``/pypi/<project>/json`` reaches by ``url`` (served URLs are never hashed)."""
    path = urlsplit(urljoin(f"http://mirror.test/pypi/{normalize(project)}/json", url)).path
    assert path.startswith("/packages/"), url
    return web / unquote(path.lstrip("/"))


def assert_json_api_matches(upstream: Upstream, mirror: MirrorSetup, hash_index: bool = False) -> None:
    """Every project upstream has, as PyPI's JSON API has it, its URLs reaching the verified files."""
    for snapshot in upstream.all_current():
        ours = json_api(mirror.web, snapshot.name, hash_index)
        legacy = render_legacy_json(snapshot, upstream.url)
        assert legacy is not None
        theirs = json.loads(legacy)
        assert ours["info"]["name"] == theirs["info"]["name"]
        assert ours["info"]["version"] == theirs["info"]["version"]
        assert ours["info"]["requires_python"] == theirs["info"]["requires_python"]
        assert ours["last_serial"] == theirs["last_serial"]
        assert set(ours["releases"]) == set(theirs["releases"])
        for version, files in theirs["releases"].items():
            assert [{k: f[k] for k in SAME_AS_PYPI} for f in ours["releases"][version]] == \
                [{k: f[k] for k in SAME_AS_PYPI} for f in files], (snapshot.name, version)
        assert [f["filename"] for f in ours["urls"]] == [f["filename"] for f in theirs["urls"]]
        for files in ours["releases"].values():
            for entry in files:
                path = served_file(mirror.web, snapshot.name, entry["url"])
                assert sha256_of(path) == entry["digests"]["sha256"], entry["filename"]
                entry_upstream = upstream.get_file(snapshot.name, entry["filename"])
                assert entry["digests"]["sha256"] == entry_upstream.sha256
                if entry_upstream.metadata is not None:
                    assert entry["core-metadata"] == {"sha256": entry_upstream.metadata_sha256}
                    metadata = path.with_name(path.name + ".metadata")
                    assert sha256_of(metadata) == entry_upstream.metadata_sha256
                else:
                    assert entry["core-metadata"] is False
    listed = {p.parent.name for p in (mirror.web / "pypi").rglob("json")}
    assert listed == {normalize(s.name) for s in upstream.all_current()}


@pytest.mark.parametrize("hash_index", [False, True], ids=["flat", "hash-index"])
def test_a_synced_corpus_has_pypi_s_json_api_with_urls_into_the_mirror(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, hash_index: bool
) -> None:
    mirror = write_config(tmp_path, upstream.url, json="true", hash_index=str(hash_index).lower())
    assert mirror.run() == 0
    assert_json_api_matches(upstream, mirror, hash_index)
    alpha = json_api(mirror.web, "alpha-lib", hash_index)
    assert alpha["info"]["version"] == "2.0"
    assert alpha["urls"][0]["url"].startswith("../../packages/")
    assert alpha["urls"][0]["packagetype"] == "bdist_wheel"
    assert set(alpha["urls"][0]["digests"]) == {"sha256"}  # the simple index gives no other digest
    assert json_api(mirror.web, "empty-project", hash_index)["releases"] == {}


def test_the_json_api_follows_new_releases_removed_files_yanks_and_removed_projects(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, json="true")
    assert mirror.run() == 0
    upstream.add_wheel("Alpha-Lib", "3.0")
    upstream.add_wheel("Alpha-Lib", "4.0b1")
    upstream.remove_file("beta", "beta-0.5.tar.gz")
    upstream.yank("zope.interface_x", "zope_interface_x-3.1-py3-none-any.whl", reason="broken")
    upstream.remove_project("empty-project")
    upstream.add_sdist("newcomer", "0.1")
    assert mirror.run() == 0
    alpha = json_api(mirror.web, "alpha-lib")
    assert alpha["info"]["version"] == "3.0"  # the newest final release, as PyPI shows it
    assert set(alpha["releases"]) == {"1.0", "2.0", "3.0", "4.0b1"}
    assert [f["filename"] for f in json_api(mirror.web, "beta")["urls"]] == ["beta-0.5-py3-none-any.whl"]
    (zope,) = json_api(mirror.web, "zope-interface-x")["urls"]
    assert (zope["yanked"], zope["yanked_reason"]) == (True, "broken")
    assert json_api(mirror.web, "zope-interface-x")["info"]["yanked"] is True
    assert not (mirror.web / "pypi" / "empty-project").exists()
    assert json_api(mirror.web, "newcomer")["urls"][0]["packagetype"] == "sdist"
    assert json_api(mirror.web, "newcomer")["urls"][0]["python_version"] == "source"


def test_a_project_the_filters_stop_selecting_loses_its_json_api_with_its_pages(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    allow = "[plugins]\nenabled = allowlist_project\n\n[allowlist]\npackages =\n    alpha-lib\n    beta\n"
    mirror = write_config(tmp_path, upstream.url, json="true", sections=allow)
    assert mirror.run() == 0
    assert (mirror.web / "pypi" / "beta" / "json").is_file()
    mirror.config.write_text(mirror.config.read_text().replace("    beta\n", ""))
    assert mirror.run() == 0
    assert not (mirror.web / "pypi" / "beta").exists()
    assert (mirror.web / "pypi" / "alpha-lib" / "json").is_file()


def test_root_uri_makes_the_json_api_s_file_urls_absolute(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, json="true")
    mirror.config.write_text(mirror.config.read_text().replace(  # bandersnatch's spelling: root_uri
        "[mirror]\n", "[mirror]\nroot_uri = https://pypi-mirror.example.org/base\n"))
    assert mirror.run() == 0
    url = json_api(mirror.web, "beta")["urls"][0]["url"]
    assert url.startswith("https://pypi-mirror.example.org/base/packages/")
    assert (mirror.web / urlsplit(url).path.removeprefix("/base/")).is_file()


def test_without_json_no_json_api_is_written(synced: MirrorSetup) -> None:
    assert not (synced.web / "pypi").exists()


@pytest.mark.parametrize(
    ("versions", "latest"),
    [
        (["1.0", "2.0rc1", "1.5"], "1.5"),
        (["1.0a1", "1.0b2"], "1.0b2"),
        (["0.9", "1.0.post1", "1.0"], "1.0.post1"),
        (["1.0", "not-a-version"], "1.0"),
        (["banana"], "banana"),
        (["1.0", "9" * 5000], "1.0"),  # int() refuses over 4,300 digits: never a version here
        (["1" * 5000], "1" * 5000),
        ([], None),
    ],
)
def test_info_version_is_the_newest_final_release_else_the_newest_pre_release(
    versions: list[str], latest: str | None
) -> None:
    assert latest_version(versions) == latest


@pytest.mark.parametrize(
    ("filename", "kind", "python"),
    [
        ("x-1.0-py3-none-any.whl", "bdist_wheel", "py3"),
        ("x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "bdist_wheel", "cp311"),
        ("x-1.0.tar.gz", "sdist", "source"),
        ("x-1.0.zip", "sdist", "source"),
        ("x-1.0-py2.7.egg", "bdist_egg", "2.7"),
        ("x-1.0.win32.exe", "bdist_wininst", "any"),
        ("x-1.0.msi", "bdist_msi", "any"),
    ],
)
def test_packagetype_and_python_version_are_told_from_the_filename(
    filename: str, kind: str, python: str
) -> None:
    assert (packagetype(filename), python_version(filename)) == (kind, python)


@pytest.mark.parametrize("bad", ["9" * 5000, "1." + "0" * 4400, "x" * 300], ids=["digits", "segment", "long"])
def test_an_unusable_pep700_versions_entry_is_dropped_with_one_warning_per_serial(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    upstream.add_file("huge", "huge-1.0.tar.gz", b"huge bytes")
    entry = upstream.get_file("huge", "huge-1.0.tar.gz")
    body = json.dumps({
        "meta": {"api-version": "1.1"}, "name": "huge", "versions": ["1.0", bad],
        "files": [{"filename": entry.filename, "url": upstream.url + quote(entry.path),
                   "hashes": {"sha256": entry.sha256}, "size": len(b"huge bytes")}],
    }).encode()
    upstream.raw_page("huge", body, SIMPLE_JSON, upstream.project_serial("huge"))
    mirror = write_config(tmp_path, upstream.url, json="true")
    with caplog.at_level(logging.WARNING):
        assert mirror.run() == 0
        assert mirror.run() == 0  # a no-op run: nothing read again, nothing said again
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "huge" in lines[0] and "versions" in lines[0], lines
    assert list(json_api(mirror.web, "huge")["releases"]) == ["1.0"]
    page = json.loads((mirror.web / "simple" / "huge" / "index.v1_json").read_bytes())
    assert page["versions"] == ["1.0"]
