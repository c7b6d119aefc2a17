"""Simple API 1.4 end to end: PEP 792 project status, PEP 740 provenance, PEP 629 major versions."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import lxml.html
import pytest
from support.fakepypi import SIMPLE_HTML, SIMPLE_JSON, SampleCorpus, Upstream
from support.mirrortools import (
    MirrorSetup,
    anchors_in,
    assert_mirror_matches,
    page_dir,
    pending_work,
    write_config,
)

ALPHA_WHEEL = "alpha_lib-2.0-py3-none-any.whl"


def page_json(web: Path, name: str) -> dict[str, Any]:
    return json.loads((page_dir(web, name) / "index.v1_json").read_bytes())  # type: ignore[no-any-return]


def html_metas(web: Path, name: str) -> dict[str, str]:
    doc = lxml.html.fromstring((page_dir(web, name) / "index.html").read_bytes())
    return {m.get("name", ""): m.get("content", "") for m in doc.iter("meta") if m.get("name")}


def json_page(name: str, *files: dict[str, Any], **extra: Any) -> bytes:
    """A raw upstream JSON page of API 1.4 listing ``files``."""
    return json.dumps({"meta": {"api-version": "1.4"}, "name": name, "files": list(files), **extra}).encode()


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def mirrored_names(web: Path) -> set[str]:
    return {p.name for p in (web / "packages").rglob("*") if p.is_file()}


# ---------------------------------------------------------------- PEP 792 project status


def test_quarantine_empties_the_page_and_removes_the_files_then_clearing_brings_them_back(
    upstream: Upstream, sample_corpus: SampleCorpus, synced: MirrorSetup
) -> None:
    alpha = {f.filename for f in sample_corpus.files_of("Alpha-Lib")}
    assert alpha <= mirrored_names(synced.web)

    upstream.set_status("Alpha-Lib", "quarantined", "malware reported")
    assert upstream.changelog[-1].action == "project quarantined"
    upstream.reset_requests()
    assert synced.run() == 0
    assert upstream.count_requests("/simple/alpha-lib/") == 1  # the changelog row alone drove the resync
    doc = page_json(synced.web, "alpha-lib")
    assert doc["files"] == [] and doc["versions"] == []
    assert doc["project-status"] == {"status": "quarantined", "reason": "malware reported"}
    assert html_metas(synced.web, "alpha-lib")["pypi:project-status"] == "quarantined"
    assert anchors_in((page_dir(synced.web, "alpha-lib") / "index.html").read_bytes()) == []
    assert not alpha & mirrored_names(synced.web)
    assert_mirror_matches(upstream, synced.web)

    upstream.set_status("Alpha-Lib", "active")
    assert upstream.changelog[-1].action == "project quarantine cleared"
    assert synced.run() == 0
    assert alpha <= mirrored_names(synced.web)
    assert page_json(synced.web, "alpha-lib")["project-status"] == {"status": "active"}
    assert_mirror_matches(upstream, synced.web)


def test_a_quarantined_page_that_still_lists_files_offers_none(
    upstream: Upstream, synced: MirrorSetup
) -> None:
    entry = upstream.get_file("beta", "beta-0.5.tar.gz")
    body = json.dumps({
        "meta": {"api-version": "1.4"}, "name": "beta", "project-status": {"status": "quarantined"},
        "files": [{"filename": entry.filename, "url": upstream.url + quote(entry.path),
                   "hashes": {"sha256": entry.sha256}}],
    }).encode()
    serial = upstream.touch("beta")
    upstream.raw_page("beta", body, SIMPLE_JSON, serial)
    upstream.reset_requests()
    assert synced.run() == 0
    assert page_json(synced.web, "beta")["files"] == []
    assert not {"beta-0.5.tar.gz", "beta-0.5-py3-none-any.whl"} & mirrored_names(synced.web)
    assert upstream.count_requests("/packages/") == 0


def test_quarantine_keeps_a_file_another_page_still_links(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    # "other" links beta's sdist (a renamed project keeps its files on PyPI): quarantining beta
    # must not take the file from under other's page.
    entry = upstream.get_file("beta", "beta-0.5.tar.gz")
    upstream.add_project("other")
    body = json_page("other", {"filename": entry.filename, "url": upstream.url + quote(entry.path),
                               "hashes": {"sha256": entry.sha256}})
    upstream.raw_page("other", body, SIMPLE_JSON, upstream.serial)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.set_status("beta", "quarantined")
    assert mirror.run() == 0
    assert page_json(mirror.web, "beta")["files"] == []
    assert "beta-0.5.tar.gz" in mirrored_names(mirror.web)  # other's page links it
    assert "beta-0.5-py3-none-any.whl" not in mirrored_names(mirror.web)


@pytest.mark.parametrize("status", ["archived", "deprecated"])
def test_archived_and_deprecated_projects_are_shown_as_such_and_keep_their_files(
    upstream: Upstream, synced: MirrorSetup, status: str
) -> None:
    upstream.set_status("beta", status, "see gamma")
    assert synced.run() == 0
    assert page_json(synced.web, "beta")["project-status"] == {"status": status, "reason": "see gamma"}
    metas = html_metas(synced.web, "beta")
    assert (metas["pypi:project-status"], metas["pypi:project-status-reason"]) == (status, "see gamma")
    assert metas["pypi:repository-version"] == "1.4"
    assert_mirror_matches(upstream, synced.web)


def test_release_quarantine_rows_resync_the_project(upstream: Upstream, synced: MirrorSetup) -> None:
    upstream.quarantine_release("Alpha-Lib", "2.0")
    assert synced.run() == 0
    assert ALPHA_WHEEL not in mirrored_names(synced.web)
    assert_mirror_matches(upstream, synced.web)
    upstream.clear_release_quarantine("Alpha-Lib", "2.0")
    actions = [e.action for e in upstream.changelog[-2:]]
    assert actions == ["release quarantined", "release quarantine cleared"]
    assert synced.run() == 0
    assert ALPHA_WHEEL in mirrored_names(synced.web)
    assert_mirror_matches(upstream, synced.web)


# ---------------------------------------------------------------- PEP 740 provenance


def test_provenance_is_mirrored_beside_the_file_and_both_pages_point_at_our_copy(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    upstream.add_provenance("Alpha-Lib", ALPHA_WHEEL)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)  # our copy has upstream's bytes
    directory = page_dir(mirror.web, "alpha-lib")
    entry = next(f for f in page_json(mirror.web, "alpha-lib")["files"] if f["filename"] == ALPHA_WHEEL)
    assert entry["provenance"] == entry["url"] + ".provenance"
    copy = (directory / unquote(entry["provenance"])).resolve()
    assert copy.name == ALPHA_WHEEL + ".provenance"
    assert copy.parent == (directory / unquote(entry["url"])).resolve().parent
    anchor = next(a for a in anchors_in((directory / "index.html").read_bytes())
                  if a.text_content() == ALPHA_WHEEL)
    assert anchor.get("data-provenance") == entry["provenance"]
    others = [f for f in page_json(mirror.web, "alpha-lib")["files"] if f["filename"] != ALPHA_WHEEL]
    assert others and all("provenance" not in f for f in others)

    # A later sync of the project keeps the copy without asking for it again.
    upstream.touch("Alpha-Lib")
    upstream.reset_requests()
    assert mirror.run() == 0
    assert upstream.count_requests("/integrity/") == 0
    assert copy.is_file()


def test_provenance_leaves_with_its_file(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    upstream.add_provenance("Alpha-Lib", ALPHA_WHEEL)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.remove_file("Alpha-Lib", ALPHA_WHEEL)
    assert mirror.run() == 0
    assert not any(n.startswith(ALPHA_WHEEL) for n in mirrored_names(mirror.web))
    assert_mirror_matches(upstream, mirror.web)


def test_provenance_that_404s_is_dropped_from_our_page_with_a_warning(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.add_provenance("Alpha-Lib", ALPHA_WHEEL, served=False)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    entry = next(f for f in page_json(mirror.web, "alpha-lib")["files"] if f["filename"] == ALPHA_WHEEL)
    assert "provenance" not in entry
    assert not any(n.endswith(".provenance") for n in mirrored_names(mirror.web))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{ALPHA_WHEEL}: advertised provenance is missing upstream; not linking it" in warnings


@pytest.mark.parametrize(
    ("body", "options", "why"),
    [
        (b'{"version": 1, "attestation_bundles": [', {}, "malformed provenance"),
        (b'["not", "an", "object"]', {}, "malformed provenance: not a JSON object"),
        (b'{"pad": "' + b"x" * 5000 + b'"}', {"max_page_size": "4K"}, "exceeds the limit of 4096"),
    ],
    ids=["malformed", "not-an-object", "too-large"],
)
def test_bad_provenance_fails_that_project_with_one_line_and_others_sync(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture,
    body: bytes, options: dict[str, str], why: str,
) -> None:
    upstream.add_provenance("Alpha-Lib", ALPHA_WHEEL, body)
    mirror = write_config(tmp_path, upstream.url, **options)
    assert mirror.run() == 1
    assert set(pending_work(mirror.root)) == {"alpha-lib"}
    lines = [line for line in error_lines(caplog) if line.startswith("alpha-lib")]
    assert len(lines) == 1 and why in lines[0] and "\n" not in lines[0], lines
    assert not (page_dir(mirror.web, "alpha-lib") / "index.html").exists()
    assert not any(n.endswith(".provenance") for n in mirrored_names(mirror.web))
    assert (page_dir(mirror.web, "beta") / "index.html").is_file()


def test_provenance_on_a_host_outside_download_hosts_is_refused(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    entry = upstream.get_file("beta", "beta-0.5.tar.gz")
    body = json_page("beta", {"filename": entry.filename, "url": upstream.url + quote(entry.path),
                              "hashes": {"sha256": entry.sha256}, "provenance": "https://attacker.invalid/p"})
    upstream.raw_page("beta", body, SIMPLE_JSON, upstream.serial)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 1
    assert any(line.startswith("beta") and "not in download-hosts" in line for line in error_lines(caplog))


# ---------------------------------------------------------------- PEP 629 major versions


@pytest.mark.parametrize("content_type", [SIMPLE_JSON, SIMPLE_HTML])
def test_a_page_of_api_major_version_2_is_refused_and_the_project_stays_in_todo(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture,
    content_type: str,
) -> None:
    entry = upstream.get_file("beta", "beta-0.5.tar.gz")
    url = upstream.url + quote(entry.path)
    if content_type == SIMPLE_JSON:
        body = json.dumps({"meta": {"api-version": "2.0"}, "name": "beta", "files": [
            {"filename": entry.filename, "url": url, "hashes": {"sha256": entry.sha256}}]}).encode()
    else:
        body = (f'<meta name="pypi:repository-version" content="2.0">'
                f'<a href="{url}#sha256={entry.sha256}">{entry.filename}</a>').encode()
    upstream.raw_page("beta", body, content_type, upstream.serial)
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 1
    assert set(pending_work(mirror.root)) == {"beta"}
    lines = [line for line in error_lines(caplog) if line.startswith("beta")]
    assert len(lines) == 1 and "Simple API version 2.0 is not supported" in lines[0], lines
    assert not (page_dir(mirror.web, "beta") / "index.html").exists()
    assert "beta-0.5.tar.gz" not in mirrored_names(mirror.web)
