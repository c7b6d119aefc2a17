"""Partial mirrors against the fake PyPI: each filter plugin's meaning, and reconciling a live mirror.

What a filtered mirror must look like: the root index names exactly the
mirrored projects, every page lists exactly the mirrored files (and its PEP
700 ``versions`` matches them), no page links a file a filter dropped, and
an unselected project's change costs no request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import MirrorSetup, check_page_links, page_dir, write_config


def plugins(*names: str, **sections: str) -> str:
    """INI text: ``[plugins] enabled`` with ``names``, then each keyword as a section body."""
    text = "[plugins]\nenabled =\n" + "".join(f"    {n}\n" for n in names)
    for section, body in sections.items():
        text += f"\n[{section}]\n{body}\n"
    return text


def mirrored(mirror: MirrorSetup) -> dict[str, list[str]]:
    """Project -> filenames, read from the root JSON index and each project's JSON page."""
    root = json.loads((mirror.web / "simple" / "index.v1_json").read_bytes())
    out = {}
    for entry in root["projects"]:
        page = json.loads((page_dir(mirror.web, entry["name"]) / "index.v1_json").read_bytes())
        out[entry["name"]] = sorted(f["filename"] for f in page["files"])
        assert check_page_links(page_dir(mirror.web, entry["name"]) / "index.html") == []
    return out


def versions_of(mirror: MirrorSetup, project: str) -> list[str]:
    return json.loads((page_dir(mirror.web, project) / "index.v1_json").read_bytes())["versions"]


def files_on_disk(mirror: MirrorSetup) -> set[str]:
    return {p.name for p in (mirror.web / "packages").rglob("*") if p.is_file()}


@pytest.fixture
def corpus(upstream: Upstream) -> Upstream:
    """alpha (1.0, 2.0, 3.0rc1), beta (0.1, 0.2), gamma-evil, plat (wheels for several platforms)."""
    for version in ("1.0", "2.0", "3.0rc1"):
        upstream.add_wheel("alpha", version, with_metadata=True)
    upstream.add_sdist("alpha", "2.0")
    for version in ("0.1", "0.2"):
        upstream.add_wheel("beta", version)
    upstream.add_wheel("gamma-evil", "1.0")
    for tag in ("cp311-cp311-win_amd64", "cp311-cp311-macosx_11_0_arm64",
                "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", "cp27-cp27mu-manylinux1_x86_64",
                "py2.py3-none-any"):
        upstream.add_wheel("plat", "1.0", tag=tag)
    upstream.add_sdist("plat", "1.0")
    return upstream


def test_without_plugins_everything_is_mirrored(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url)
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"alpha", "beta", "gamma-evil", "plat"}


def test_allowlist_project_mirrors_only_the_listed_projects(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "allowlist_project", allowlist="packages =\n    Alpha\n    plat"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"alpha", "plat"}
    assert corpus.count_requests("/simple/beta/") == 0
    # An unselected project's change costs no request; a selected one's costs its page and file.
    corpus.add_wheel("beta", "0.3")
    corpus.add_wheel("alpha", "4.0")
    corpus.reset_requests()
    assert mirror.run() == 0
    assert corpus.count_requests("/simple/") == 1
    assert corpus.count_requests("/simple/beta/") == 0
    assert "alpha-4.0-py3-none-any.whl" in mirrored(mirror)["alpha"]


def test_allowlist_release_specifiers_limit_the_releases(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "allowlist_project", "allowlist_release", allowlist="packages =\n    alpha>=2\n    beta"))
    assert mirror.run() == 0
    assert mirrored(mirror) == {
        "alpha": ["alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz", "alpha-3.0rc1-py3-none-any.whl"],
        "beta": ["beta-0.1-py3-none-any.whl", "beta-0.2-py3-none-any.whl"],
    }
    assert versions_of(mirror, "alpha") == ["2.0", "3.0rc1"]
    assert "alpha-1.0-py3-none-any.whl" not in files_on_disk(mirror)
    assert "alpha-1.0-py3-none-any.whl.metadata" not in files_on_disk(mirror)


def test_blocklist_project_and_release(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "blocklist_project", "blocklist_release", blocklist="packages =\n    beta\n    alpha==1.0"))
    assert mirror.run() == 0
    result = mirrored(mirror)
    assert set(result) == {"alpha", "gamma-evil", "plat"}
    assert "alpha-1.0-py3-none-any.whl" not in result["alpha"]
    assert versions_of(mirror, "alpha") == ["2.0", "3.0rc1"]


def test_regex_project_and_release(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "regex_project", "regex_release", filter_regex="packages =\n    .+-evil$\nreleases =\n    .*rc\\d$"))
    assert mirror.run() == 0
    result = mirrored(mirror)
    assert "gamma-evil" not in result
    assert "alpha-3.0rc1-py3-none-any.whl" not in result["alpha"]


def test_prerelease_release_drops_pre_releases_everywhere_or_where_listed(tmp_path: Path,
                                                                          corpus: Upstream) -> None:
    corpus.add_wheel("beta", "0.3a1")
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "prerelease_release", filter_prerelease="packages = beta"))
    assert mirror.run() == 0
    result = mirrored(mirror)
    assert "beta-0.3a1-py3-none-any.whl" not in result["beta"]
    assert "alpha-3.0rc1-py3-none-any.whl" in result["alpha"]
    everywhere = write_config(tmp_path / "b", corpus.url, sections=plugins("prerelease_release"))
    assert everywhere.run() == 0
    assert "alpha-3.0rc1-py3-none-any.whl" not in mirrored(everywhere)["alpha"]


def test_latest_release_keeps_the_newest_by_version(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins("latest_release", latest_release="keep = 2"))
    assert mirror.run() == 0
    assert versions_of(mirror, "alpha") == ["2.0", "3.0rc1"]
    corpus.add_wheel("alpha", "4.0")
    assert mirror.run() == 0
    assert versions_of(mirror, "alpha") == ["3.0rc1", "4.0"]
    assert not any(name.startswith("alpha-2.0") for name in files_on_disk(mirror))


def test_exclude_platform_decides_from_wheel_tags_and_keeps_sdists(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "exclude_platform", blocklist="platforms =\n    windows\n    macos\n    py2"))
    assert mirror.run() == 0
    assert mirrored(mirror)["plat"] == [
        "plat-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "plat-1.0-py2.py3-none-any.whl",
        "plat-1.0.tar.gz",
    ]


def test_size_and_versions_count_limits_exempt_the_allowlist(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "versions_count_project_metadata", "size_project_metadata",
        versions_count_project_metadata="min_versions = 2", size_project_metadata="max_package_size = 1G",
        allowlist="packages = gamma-evil"))
    assert mirror.run() == 0
    # plat and gamma-evil have one version each; gamma-evil is allowlisted (exempt).
    assert set(mirrored(mirror)) == {"alpha", "beta", "gamma-evil"}
    small = write_config(tmp_path / "b", corpus.url, sections=plugins(
        "size_project_metadata", size_project_metadata="max_package_size = 2000"))
    assert small.run() == 0
    assert "alpha" not in mirrored(small)  # several wheels and an sdist: more than 2000 bytes


def test_changing_the_filters_reconciles_without_downloading_again(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "allowlist_project", allowlist="packages =\n    alpha\n    beta"))
    assert mirror.run() == 0
    kept = {p: p.stat().st_ino for p in (mirror.web / "packages").rglob("alpha-*")}
    # Shrink the allowlist and add another project: beta leaves, plat arrives, alpha stays untouched.
    mirror.config.write_text(mirror.config.read_text().replace("    beta\n", "    plat\n"))
    corpus.reset_requests()
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"alpha", "plat"}
    assert not any(n.startswith("beta-") for n in files_on_disk(mirror))
    assert not page_dir(mirror.web, "beta").exists()
    assert corpus.count_requests("/packages/") == len(corpus.files("plat"))
    assert {p: p.stat().st_ino for p in (mirror.web / "packages").rglob("alpha-*")} == kept
    # And the next run is a no-op again: one changelog call.
    corpus.reset_requests()
    assert mirror.run() == 0
    assert corpus.count_requests() == 1


def test_a_new_release_filter_removes_the_dropped_files_and_their_metadata(tmp_path: Path,
                                                                         corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "allowlist_project", allowlist="packages = alpha"))
    assert mirror.run() == 0
    assert "alpha-1.0-py3-none-any.whl.metadata" in files_on_disk(mirror)
    mirror.config.write_text(mirror.config.read_text().replace("allowlist_project\n",
                                                               "allowlist_project\n    allowlist_release\n")
                             .replace("packages = alpha", "packages = alpha>=2"))
    assert mirror.run() == 0
    assert not any(n.startswith("alpha-1.0") for n in files_on_disk(mirror))
    assert versions_of(mirror, "alpha") == ["2.0", "3.0rc1"]


def test_removing_every_filter_brings_the_whole_upstream(tmp_path: Path, corpus: Upstream) -> None:
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "allowlist_project", allowlist="packages = alpha"))
    assert mirror.run() == 0
    mirror.config.write_text(mirror.config.read_text().split("[plugins]")[0])
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"alpha", "beta", "gamma-evil", "plat"}


def test_a_regex_that_backtracks_exponentially_is_refused_before_a_hostile_name_can_hang_the_run(
    tmp_path: Path, upstream: Upstream
) -> None:
    upstream.add_wheel("a" * 34 + "-b", "1.0")  # (a+)+ tries 2**34 ways to split its a's
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "regex_project", filter_regex="packages =\n    (a+)+-nightly$"))
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), "mirror"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(mirror.config) in line and "[filter_regex] packages" in line and "(a+)+-nightly$" in line
    assert upstream.count_requests("/") == 0


@pytest.mark.parametrize(("enabled", "sections", "unread", "names"), [
    ("latest_release", {"latest_release": "keep = 2", "allowlist": "packages = alpha"},
     "[allowlist] packages", "allowlist_project or allowlist_release"),
    ("latest_release", {"latest_release": "keep = 2", "blocklist": "platforms = windows"},
     "[blocklist] platforms", "exclude_platform"),
    ("blocklist_project", {"blocklist": "packages = beta", "filter_regex": "releases = .*rc.*"},
     "[filter_regex] releases", "regex_release"),
    ("project_requirements", {"allowlist": "packages = alpha\nrequirements_path = {tmp}\n"
                                           "requirements = reqs.txt"},
     "[allowlist] packages", "allowlist_project or allowlist_release"),
], ids=["allowlist-beside-latest", "platforms-beside-latest", "releases-beside-blocklist",
        "packages-beside-requirements"])
def test_an_option_no_enabled_plugin_reads_is_exit_2_naming_the_plugin_and_mirrors_nothing(
        tmp_path: Path, corpus: Upstream, caplog: pytest.LogCaptureFixture,
        enabled: str, sections: dict[str, str], unread: str, names: str) -> None:
    (tmp_path / "reqs.txt").write_text("beta\n")
    bodies = {section: body.format(tmp=tmp_path) for section, body in sections.items()}
    mirror = write_config(tmp_path, corpus.url, sections=plugins(enabled, **bodies))
    assert mirror.run() == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"{mirror.config}: {unread}: " in errors[0] and names in errors[0]
    assert not mirror.web.exists()  # refused before any request or write




PYLOCK = """\
lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "alpha"
version = "1.0"
wheels = [{ url = "https://elsewhere.example/alpha-1.0-py3-none-any.whl", hashes = { sha256 = "00" } }]

[[packages]]
name = "mine"
directory = { path = "." }
"""

UVLOCK = """\
version = 1
requires-python = ">=3.10"

[[package]]
name = "alpha"
version = "2.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "beta"
version = "0.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
"""


def test_lockfiles_mirror_exactly_their_pinned_versions_and_a_changed_lock_reconciles(
        tmp_path: Path, corpus: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "pylock.toml").write_text(PYLOCK)
    (tmp_path / "locks" / "uv.lock").write_text(UVLOCK)
    mirror = write_config(tmp_path, corpus.url, sections=plugins(
        "project_requirements", "project_requirements_pinned",
        allowlist=f"requirements_path = {tmp_path}/locks\nlockfiles =\n    pylock.toml\n    *.lock"))
    assert mirror.run() == 0
    # alpha pinned by both locks: the union of 1.0 and 2.0 (its 2.0 sdist too); the lock's URLs
    # and hashes are not ours (upstream's pages give those).
    assert mirrored(mirror) == {
        "alpha": ["alpha-1.0-py3-none-any.whl", "alpha-2.0-py3-none-any.whl", "alpha-2.0.tar.gz"],
        "beta": ["beta-0.1-py3-none-any.whl"]}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert corpus.count_requests("/pypi/") == 0  # no metadata plugin: no JSON API request
    assert len(skipped) == 2 and "mine: locked from directory" in skipped[0] and "app: locked from virtual" \
        in skipped[1]
    caplog.clear()
    assert mirror.run() == 0  # a no-op run does not repeat the skips
    assert not [r for r in caplog.records if "skipped" in r.getMessage() and r.levelname == "WARNING"]
    (tmp_path / "locks" / "uv.lock").write_text(UVLOCK.replace('"0.1"\nsource', '"0.2"\nsource'))
    assert mirror.run() == 0
    assert mirrored(mirror)["beta"] == ["beta-0.2-py3-none-any.whl"]
    assert "beta-0.1-py3-none-any.whl" not in files_on_disk(mirror)


def test_metadata_plugins_judge_each_synced_project_on_its_json_api_document(
        tmp_path: Path, upstream: Upstream) -> None:
    upstream.add_wheel("modern", "1.0", requires_python=">=3.9")
    upstream.add_sdist("modern", "1.0", requires_python=">=3.9")
    upstream.add_wheel("legacy", "1.0", requires_python=">=2.7,<3")
    upstream.add_wheel("plain", "1.0")
    # An 8.2 configuration, unchanged: tagged options, and the range rules where 8.2 read them.
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "regex_project_metadata", "version_range_project_metadata", "regex_release_file_metadata",
        regex_project_metadata="not-null:info.summary =\n    Test project (modern|legacy)",
        version_range_release_file_metadata="not-null:info.requires_python =\n    3.12",
        regex_release_file_metadata="any:release_file.packagetype =\n    bdist_wheel"))
    assert mirror.run() == 0
    assert mirrored(mirror) == {"modern": ["modern-1.0-py3-none-any.whl"]}
    assert upstream.count_requests("/pypi/") == 3  # one JSON API document per project synced
    upstream.requests.clear()
    assert mirror.run() == 0
    assert upstream.count_requests("/pypi/") == 0  # a no-op run asks for none


def test_a_json_api_document_missing_or_failing_upstream_is_no_document_or_a_retry(
        tmp_path: Path, upstream: Upstream) -> None:
    for name in ("modern", "gone-json", "failing"):
        upstream.add_wheel(name, "1.0", requires_python=">=3.9")
    upstream.fail("/pypi/gone-json/", 404, times=None)  # an upstream without the JSON API for it
    upstream.fail("/pypi/failing/", 503, times=None)
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "version_range_project_metadata",
        version_range_project_metadata="not-null:info.requires_python = 3.12"))
    assert mirror.run() == 1  # "failing" is owed, not judged on a guess
    assert set(mirrored(mirror)) == {"modern"}  # "gone-json": no document, so not-null excludes it
    upstream.fail("/pypi/failing/", 503, times=0)
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"modern", "failing"}
