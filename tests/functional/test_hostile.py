"""A broken or malicious upstream cannot write outside the mirror, inject markup, or exhaust memory.

Every case is one parametrized row.  For each, the run must: write nothing
outside its directory (a snapshot of the tree around it is compared), refuse
the offending project with one clear log line while another project syncs in
the same run, keep every page it serves well-formed and escaped, and log no
credential.  Answers larger than ``max-page-size`` are cut off, with or
without a Content-Length, so memory stays bounded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import lxml.html
import pytest
from support.fakepypi import SIMPLE_JSON, Upstream, blob_path
from support.mirrortools import (
    MirrorSetup,
    WebReader,
    anchors_in,
    assert_mirror_matches,
    pending_work,
    temp_files,
    tmpfs,
    tree_snapshot,
    write_config,
)

import bandersnatch
from bandersnatch.config.network import Network
from bandersnatch.formats.layout import UrlPolicy
from bandersnatch.upstream.master import Master

SECRET = "s3cr3t-pa55"
GOOD_CONTENT = b"good bytes" * 50
GOOD_PATH = blob_path(GOOD_CONTENT, "good-1.0.tar.gz")
CANARIES = [Path("/pwned"), Path("/etc/pwned"), Path("/tmp/pwned"), Path("/tmp/pwned.tar.gz")]
HTML = "text/html; charset=utf-8"


@dataclass
class Site:
    """The upstream, the mirror, and where the mirror sits (its surroundings must not change)."""

    upstream: Upstream
    mirror: MirrorSetup
    around: Path

    @property
    def url(self) -> str:
        return self.upstream.url

    def snapshot(self) -> dict[str, tuple[str, int, int]]:
        return tree_snapshot(self.around, skip=self.mirror.root)


@pytest.fixture
def site(tmp_path: Path, upstream: Upstream) -> Site:
    upstream.add_file("good", "good-1.0.tar.gz", GOOD_CONTENT)
    (tmp_path / "a" / "b").mkdir(parents=True)
    mirror = write_config(tmp_path / "a" / "b", upstream.url, max_page_size="256K")
    return Site(upstream, mirror, tmp_path)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def raw_controls(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log messages carrying a control character (ESC, CSI, line breaks...) instead of its escape."""
    return [r.getMessage() for r in caplog.records if not r.getMessage().isprintable()]


def run_and_check_nothing_escaped(site: Site, caplog: pytest.LogCaptureFixture,
                                  hash_index: bool = False) -> int:
    before = site.snapshot()
    code = site.mirror.run()
    assert site.snapshot() == before
    for canary in CANARIES:
        assert not canary.exists()
    assert "Traceback" not in caplog.text
    assert SECRET not in caplog.text
    assert raw_controls(caplog) == []
    assert WebReader(site.mirror.web, hash_index).sweep() == []
    return code


def assert_our_pages_are_well_formed(web: Path) -> None:
    for page in web.rglob("index.html"):
        doc = lxml.html.fromstring(page.read_bytes())
        assert doc.xpath("//script|//img|//iframe|//*[@onerror]") == [], page
    for page in web.rglob("index.v1_json"):
        json.loads(page.read_bytes())


# ---------------------------------------------------------------- pages with hostile file entries


def json_page(filename: str, url: str, **extra: object) -> bytes:
    entry = {"filename": filename, "url": url, "hashes": {"sha256": "0" * 64}, **extra}
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "bad", "files": [entry]}).encode()


def html_page(anchors: str, head: str = "") -> bytes:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{anchors}</body></html>".encode()


def _fill(template: str, url: str, port: str) -> str:
    return template.replace("{u}", url).replace("{p}", port).replace("{secret}", SECRET).replace(
        "{good}", GOOD_PATH)


# JSON pages: (id, filename, URL, extra fields); "{u}" is the upstream, "{p}" its port.
BAD_JSON: list[tuple[str, str, str, dict[str, object]]] = [
    ("other-host", "bad-1.0.tar.gz", "http://evil.invalid/packages/a/bad-1.0.tar.gz", {}),
    ("other-port", "bad-1.0.tar.gz", "http://127.0.0.1:1/packages/a/bad-1.0.tar.gz", {}),
    ("file-scheme", "passwd", "file:///etc/passwd", {}),
    ("ftp-scheme", "bad-1.0.tar.gz", "ftp://127.0.0.1:{p}/packages/a/bad-1.0.tar.gz", {}),
    ("data-scheme", "bad-1.0.tar.gz", "data:text/plain,pwned", {}),
    ("outside-packages", "passwd", "{u}/etc/passwd", {}),
    ("simple-not-packages", "index.html", "{u}/simple/good/index.html", {}),
    ("dotdot", "passwd", "{u}/packages/../../../../../etc/passwd", {}),
    ("dotdot-relative", "pwned", "../../../../../../../../tmp/pwned", {}),
    ("dotdot-encoded", "pwned", "{u}/packages/%2e%2e/%2e%2e/%2e%2e/%2e%2e/tmp/pwned", {}),
    ("dotdot-last", "..", "{u}/packages/a/%2E%2E", {}),
    ("slash-encoded", "../../../../pwned.tar.gz", "{u}/packages/a/..%2F..%2F..%2F..%2Fpwned.tar.gz", {}),
    ("backslash", "..\\..\\pwned.tar.gz", "{u}/packages/a/..%5C..%5Cpwned.tar.gz", {}),
    ("absolute-encoded", "/tmp/pwned", "{u}/packages/%2Ftmp%2Fpwned", {}),
    ("empty-segment", "pwned", "{u}/packages//tmp/pwned", {}),
    ("nul", "bad\0.tar.gz", "{u}/packages/a/bad%00.tar.gz", {}),
    ("newline", "bad\nERROR fake.tar.gz", "{u}/packages/a/bad%0AERROR%20fake.tar.gz", {}),
    ("non-utf8-percent", "bad.tar.gz", "{u}/packages/a/%FF%FE.tar.gz", {}),
    ("lone-surrogate", "bad\udcff.tar.gz", "{u}/packages/a/bad\udcff.tar.gz", {}),
    ("over-long", "b" * 300 + ".tar.gz", "{u}/packages/a/" + "b" * 300 + ".tar.gz", {}),
    ("no-room-for-metadata", "b" * 240 + ".tar.gz", "{u}/packages/a/" + "b" * 240 + ".tar.gz",
     {"core-metadata": True}),
    ("filename-mismatch", "good-1.0.tar.gz", "{u}/packages/a/evil.tar.gz", {}),
    ("credentials", "bad-1.0.tar.gz", "http://user:{secret}@127.0.0.1:{p}/packages/a/bad-1.0.tar.gz", {}),
    ("credentials-ftp", "bad-1.0.tar.gz", "ftp://user:{secret}@127.0.0.1:{p}/packages/a/bad-1.0.tar.gz", {}),
    ("credentials-unparsable", "bad-1.0.tar.gz", "http://user:{secret}@[::1/packages/a/bad-1.0.tar.gz", {}),
    ("hash-with-line-break", "good-1.0.tar.gz", "{u}{good}",
     {"hashes": {"sha256": "0\nERROR: fake line"}}),
    ("bad-size", "bad.tar.gz", "{u}/packages/a/bad.tar.gz", {"size": -5}),
    ("longer-than-path-max", "bad-1.0.tar.gz", "{u}/packages/" + ("d" * 200 + "/") * 25 + "bad-1.0.tar.gz",
     {}),
]
# Other pages: (id, content type, body).
BAD_OTHER: list[tuple[str, str, bytes]] = [
    ("html-other-host", HTML, html_page('<a href="http://evil.invalid/packages/a/bad-1.0.tar.gz">bad-1.0.tar.gz</a>')),
    ("html-base-other-host", HTML, html_page('<a href="packages/a/bad-1.0.tar.gz">bad-1.0.tar.gz</a>',
                                             '<base href="http://evil.invalid/">')),
    ("html-dotdot", HTML, html_page('<a href="../../../../../../tmp/pwned#sha256=00">pwned</a>')),
    ("html-dotdot-encoded", HTML, html_page('<a href="/packages/%2e%2e/%2e%2e/%2e%2e/tmp/pwned">pwned</a>')),
    ("html-file-scheme", HTML, html_page('<a href="file:///etc/passwd">passwd</a>')),
    ("html-javascript", HTML, html_page('<a href="javascript:alert(1)">x.tar.gz</a>')),
    ("html-credentials", HTML, html_page('<a href="http://u:{secret}@127.0.0.1:{p}/packages/a/b.tar.gz">b.tar.gz</a>')),
    ("html-unparsable-url", HTML, html_page('<a href="http://u:{secret}@[::1/x">x</a>')),
    ("html-external-entity", HTML, html_page('<a href="/packages/a/bad.tar.gz">&e;</a>').replace(
        b"<!DOCTYPE html>", b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>')),
    ("json-malformed", SIMPLE_JSON, b'{"meta": {}, "name": "bad", "files": [{"filen'),
    ("json-not-utf8", SIMPLE_JSON, b'{"name": "bad", "files": [{"filename": "caf\xe9", "url": "x"}]}'),
    ("json-deep", SIMPLE_JSON, b'{"files": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("json-wrong-types", SIMPLE_JSON,
     b'{"name": "bad", "files": [{"filename": 1, "url": ["x"], "hashes": "no"}]}'),
    ("unexpected-content-type", "application/xml", b"<x/>"),
]


def bad_page_params() -> Sequence[object]:
    rows = [pytest.param(SIMPLE_JSON, (f, u, e), id=i) for i, f, u, e in BAD_JSON]
    return rows + [pytest.param(t, b, id=i) for i, t, b in BAD_OTHER]


@pytest.mark.parametrize(("content_type", "body"), bad_page_params())
def test_a_hostile_page_is_refused_alone_and_nothing_is_written_outside(
    site: Site, caplog: pytest.LogCaptureFixture, content_type: str,
    body: bytes | tuple[str, str, dict[str, object]],
) -> None:
    upstream = site.upstream
    port = upstream.url.rsplit(":", 1)[1]
    if isinstance(body, tuple):
        filename, url, extra = body
        data = json_page(filename, _fill(url, upstream.url, port), **extra)
    else:
        data = _fill(body.decode("latin-1"), upstream.url, port).encode("latin-1")
    upstream.add_project("bad")
    upstream.raw_page("bad", data, content_type, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    bad_lines = [line for line in errors(caplog) if line.startswith("bad")]
    assert len(bad_lines) == 1 and "\n" not in bad_lines[0], errors(caplog)
    assert bad_lines[0].endswith("left in todo for the next run")
    assert "ERROR: fake" not in caplog.text.replace("'", "")  # no forged line: newlines stay escaped
    assert pending_work(site.mirror.root) == {"bad": upstream.serial}
    assert not (site.mirror.web / "simple" / "bad").exists()
    assert (site.mirror.web / "simple" / "good" / "index.html").is_file()  # synced in the same run
    assert [p.name for p in (site.mirror.web / "packages").rglob("*") if p.is_file()] == ["good-1.0.tar.gz"]
    assert_our_pages_are_well_formed(site.mirror.web)


# ---------------------------------------------------------------- markup injection: accepted, escaped


def test_markup_in_what_upstream_sends_is_escaped_in_every_page_we_render(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    filename = "\"><img src=x onerror=alert(1)>&amp;'.tar.gz"
    content = b"sneaky" * 100
    path = f"/packages/ab/cd/{filename}"
    upstream.raw_path(path, content)
    requires = '"><script>alert(2)</script>'
    reason = "</a><script>alert(3)</script><a>"
    entry = {"filename": filename, "url": upstream.url + quote(path), "yanked": reason,
             "hashes": {"sha256": hashlib.sha256(content).hexdigest()}, "requires-python": requires,
             "upload-time": "<b>now</b>"}
    page = {"meta": {"api-version": "1.1"}, "name": "<script>alert(4)</script>", "files": [entry]}
    upstream.add_project("sneaky")
    upstream.raw_page("sneaky", json.dumps(page).encode(), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert_our_pages_are_well_formed(site.mirror.web)
    ours = site.mirror.web / "simple" / "sneaky"
    html_bytes = (ours / "index.html").read_bytes()
    assert b"<script" not in html_bytes and b"<img" not in html_bytes
    (anchor,) = anchors_in(html_bytes)
    assert anchor.text_content() == filename
    assert anchor.get("data-requires-python") == requires
    assert anchor.get("data-yanked") == reason
    assert lxml.html.fromstring(html_bytes).findtext(".//title") == "Links for sneaky"
    doc = json.loads((ours / "index.v1_json").read_bytes())
    assert doc["name"] == "sneaky"
    assert doc["files"][0]["filename"] == filename and doc["files"][0]["requires-python"] == requires
    assert doc["files"][0]["yanked"] == reason
    stored = [p for p in (site.mirror.web / "packages").rglob("*") if p.name == filename]
    assert len(stored) == 1 and stored[0].read_bytes() == content


# ---------------------------------------------------------------- hostile project names (XML-RPC)


HOSTILE_NAMES = [
    "../../../../tmp/pwned", "/tmp/pwned", "..", ".", "a\\..\\..\\pwned", "a/b",
    "%2e%2e%2fpwned", "evil\nname", "evil\u2028ERROR: fake", "caf\xe9", "x" * 300, "-leading", "trailing.",
    "sp ace", "tab\there", "\u212a", "\U0001f600",
]


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_project_name_is_refused_with_one_line_and_never_requested(
    site: Site, caplog: pytest.LogCaptureFixture, name: str, incremental: bool
) -> None:
    upstream = site.upstream
    if incremental:
        assert site.mirror.run() == 0
    upstream.add_project(name)
    upstream.add_file("good", "good-2.0.tar.gz", b"two" * 100)
    upstream.reset_requests()
    assert run_and_check_nothing_escaped(site, caplog) == 1
    refused = [line for line in errors(caplog) if line.startswith("refusing project name")]
    assert refused == [f"refusing project name {name[:100]!r} from upstream: not a valid project name"]
    assert [r.path for r in upstream.requests if r.method == "GET" and not r.path.startswith(
        ("/simple/good/", "/packages/"))] == []
    assert list(site.mirror.web.rglob("good-2.0.tar.gz"))  # the rest of the sync went on
    assert pending_work(site.mirror.root) == {}
    # It is not retried: the next run has nothing to do and says the mirror is complete.
    assert site.mirror.run() == 0


def test_names_that_normalize_to_one_project_are_synced_once(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    serial = upstream.serial
    listing = {"Good": serial, "good": serial, "GOOD": serial - 1}
    upstream.add_file("Foo.Bar_baz", "foo_bar_baz-1.0.tar.gz", b"foo" * 100)
    listing.update({"Foo.Bar_baz": upstream.serial, "foo-bar-baz": upstream.serial, "FOO__BAR..BAZ": 1})
    upstream.raw_rpc("list_packages_with_serial", xml_response(listing))
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert upstream.count_requests("/simple/foo-bar-baz/") == 1
    assert upstream.count_requests("/simple/good/") == 1
    upstream.clear_faults()
    assert_mirror_matches(upstream, site.mirror.web)


def claim_page(name: str, files: Sequence[Mapping[str, object]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files}).encode()


@pytest.mark.parametrize("how", ["stops-linking", "project-removed"])
def test_a_page_that_claims_another_projects_file_cannot_make_the_mirror_delete_it(
    site: Site, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    upstream = site.upstream
    good = upstream.get_file("good", "good-1.0.tar.gz")
    claim = {"filename": good.filename, "url": upstream.file_url(good), "hashes": {"sha256": good.sha256}}
    upstream.add_project("thief")
    upstream.raw_page("thief", claim_page("thief", [claim]), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    if how == "stops-linking":
        upstream.touch("thief")
        upstream.raw_page("thief", claim_page("thief", []), SIMPLE_JSON, upstream.serial)
    else:
        upstream.clear_faults()  # the raw page goes: upstream answers 404 for thief
        upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0  # the sweep: every link still resolves
    kept = [r.getMessage() for r in caplog.records if "file kept" in r.getMessage()]
    assert kept == ["thief: no longer links good-1.0.tar.gz, but good does: file kept"]
    if how == "project-removed":
        assert_mirror_matches(upstream, site.mirror.web)
    assert (site.mirror.web / "packages").joinpath(*good.path.split("/")[2:]).is_file()


def claim_of(upstream: Upstream, project: str, filename: str, **changes: object) -> dict[str, object]:
    """A file entry naming ``project``'s file by its real URL, as another page would list it."""
    entry = upstream.get_file(project, filename)
    claim: dict[str, object] = {"filename": entry.filename, "url": upstream.file_url(entry),
                                "hashes": {"sha256": entry.sha256}}
    claim.update(changes)
    return claim


@pytest.mark.parametrize("hash_index", [False, True], ids=["flat", "hash-index"])
def test_a_file_two_pages_link_stays_while_one_links_it_after_the_other_is_removed(
    site: Site, caplog: pytest.LogCaptureFixture, hash_index: bool
) -> None:
    upstream = site.upstream
    if hash_index:
        site.mirror.config.write_text(site.mirror.config.read_text() + "hash-index = true\n")
    good = upstream.get_file("good", "good-1.0.tar.gz")
    upstream.add_project("thief")
    upstream.raw_page("thief", claim_page("thief", [claim_of(upstream, "good", good.filename)]), SIMPLE_JSON,
                      upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog, hash_index) == 0
    upstream.remove_project("good")
    # The sweep: thief's link still resolves.
    assert run_and_check_nothing_escaped(site, caplog, hash_index) == 0
    stored = (site.mirror.web / "packages").joinpath(*good.path.split("/")[2:])
    assert stored.read_bytes() == GOOD_CONTENT
    assert not list((site.mirror.web / "simple").rglob("good"))
    kept = [r.getMessage() for r in caplog.records if "file kept" in r.getMessage()]
    assert kept == ["good: no longer links good-1.0.tar.gz, but thief does: file kept"]
    assert (site.mirror.root / "claims" / "thief").read_text() == good.path.split("/", 2)[2] + "\n"
    # Once thief lets go too, nothing links the file and it goes: no orphan, no claim is left.
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog, hash_index) == 0
    assert_mirror_matches(upstream, site.mirror.web, hash_index)
    assert not stored.exists()
    assert not (site.mirror.root / "claims" / "thief").exists()


def test_a_metadata_name_is_never_accepted_as_a_distribution_file(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    wheel = "good-1.0-py3-none-any.whl"
    upstream.add_file("good", wheel, b"wheel bytes" * 40, metadata=b"Metadata-Version: 2.1\nName: good\n")
    entry = upstream.get_file("good", wheel)
    claim = {"filename": wheel + ".metadata", "url": upstream.file_url(entry) + ".metadata",
             "hashes": {"sha256": entry.metadata_sha256}}
    upstream.add_project("thief")
    upstream.raw_page("thief", claim_page("thief", [claim]), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    thief_lines = [line for line in errors(caplog) if line.startswith("thief")]
    assert len(thief_lines) == 1 and ".metadata" in thief_lines[0], errors(caplog)
    assert pending_work(site.mirror.root) == {"thief": upstream.serial}
    metadata = (site.mirror.web / "packages").joinpath(*entry.metadata_path.split("/")[2:])
    assert metadata.read_bytes() == entry.metadata
    # thief drops the entry: good's PEP 658 metadata stays, pip can still read it.
    upstream.touch("thief")
    upstream.raw_page("thief", claim_page("thief", []), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert metadata.read_bytes() == entry.metadata
    assert_mirror_matches(upstream, site.mirror.web)


@pytest.mark.parametrize("what", ["file", "metadata"])
def test_a_page_linking_a_verified_file_with_other_bytes_cannot_overwrite_it(
    site: Site, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    upstream = site.upstream
    wheel = "good-1.0-py3-none-any.whl"
    upstream.add_file("good", wheel, b"wheel bytes" * 40, metadata=b"Metadata-Version: 2.1\nName: good\n")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    entry = upstream.get_file("good", wheel)
    evil = b"evil bytes" * 44
    if what == "file":  # same URL, another sha256, and the server serves those bytes
        claim = claim_of(upstream, "good", wheel, hashes={"sha256": hashlib.sha256(evil).hexdigest()})
        upstream.raw_path(entry.path, evil)
    else:  # same file, but other metadata bytes advertised and served
        other = {"sha256": hashlib.sha256(evil).hexdigest()}
        claim = claim_of(upstream, "good", wheel, **{"core-metadata": other})
        upstream.raw_path(entry.metadata_path, evil)
    upstream.add_project("thief")
    upstream.raw_page("thief", claim_page("thief", [claim]), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 1  # the sweep: good's pages still correct
    thief_lines = [line for line in errors(caplog) if line.startswith("thief")]
    assert len(thief_lines) == 1 and wheel in thief_lines[0] and "good" in thief_lines[0], errors(caplog)
    stored = (site.mirror.web / "packages").joinpath(*entry.path.split("/")[2:])
    assert stored.read_bytes() == entry.content
    assert stored.with_name(wheel + ".metadata").read_bytes() == entry.metadata
    assert pending_work(site.mirror.root) == {"thief": upstream.serial}
    assert not (site.mirror.web / "simple" / "thief").exists()


GOOD_WHEEL = "good-1.0-py3-none-any.whl"
GOOD_PROVENANCE = b'{"version": 1, "attestation_bundles": [{"publisher": {"kind": "good"}}]}'
THIEF_PROVENANCE = b'{"version": 1, "attestation_bundles": [{"publisher": {"kind": "thief"}}]}'


def good_with_provenance(site: Site) -> tuple[Path, Path]:
    """good's wheel with its own provenance, synced; the wheel and its provenance on the mirror."""
    upstream = site.upstream
    upstream.add_file("good", GOOD_WHEEL, b"wheel bytes" * 40)
    upstream.add_provenance("good", GOOD_WHEEL, GOOD_PROVENANCE)
    assert site.mirror.run() == 0
    wheel = next(site.mirror.web.joinpath("packages").rglob(GOOD_WHEEL))
    return wheel, wheel.with_name(GOOD_WHEEL + ".provenance")


def thief_page(upstream: Upstream, *files: Mapping[str, object]) -> None:
    upstream.add_project("thief")  # a no-op once it exists; the touch journals the new page
    upstream.touch("thief")
    upstream.raw_page("thief", claim_page("thief", list(files)), SIMPLE_JSON, upstream.serial)


def test_a_page_sharing_another_projects_file_links_its_provenance_but_never_replaces_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    _, provenance = good_with_provenance(site)
    upstream.raw_path("/integrity/thief/evil/provenance", THIEF_PROVENANCE)
    thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL,
                                  provenance=upstream.url + "/integrity/thief/evil/provenance"))
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    theirs = json.loads((site.mirror.web / "simple" / "thief" / "index.v1_json").read_bytes())["files"][0]
    assert theirs["provenance"] == theirs["url"] + ".provenance"  # thief's page links good's copy
    assert upstream.count_requests("/integrity/thief/") == 0  # never fetched: nowhere to put it
    # good re-syncs, then everything is checked again: good's copy stays good's.
    upstream.touch("good")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    assert site.mirror.run("--force-check") == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    # thief drops the link, then goes: nothing of thief's is left.
    thief_page(upstream)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    assert_mirror_matches(upstream, site.mirror.web)


def test_a_page_sharing_a_file_whose_owner_has_no_provenance_does_not_get_to_add_one(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    upstream.add_file("good", GOOD_WHEEL, b"wheel bytes" * 40)
    assert site.mirror.run() == 0
    upstream.raw_path("/integrity/thief/evil/provenance", THIEF_PROVENANCE)
    thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL,
                                  provenance=upstream.url + "/integrity/thief/evil/provenance"))
    assert run_and_check_nothing_escaped(site, caplog) == 0
    wheel = next(site.mirror.web.joinpath("packages").rglob(GOOD_WHEEL))
    assert not wheel.with_name(GOOD_WHEEL + ".provenance").exists()
    theirs = json.loads((site.mirror.web / "simple" / "thief" / "index.v1_json").read_bytes())["files"][0]
    assert "provenance" not in theirs
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and r.getMessage().startswith("thief")]
    assert warned == [f"thief: {GOOD_WHEEL}: good's page holds this file and links no provenance for it; "
                      "not linking the one this page advertises"]
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert_mirror_matches(upstream, site.mirror.web)


def test_a_page_sharing_a_file_cannot_publish_core_metadata_its_owner_does_not_advertise(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    assert site.mirror.run() == 0
    good = upstream.get_file("good", "good-1.0.tar.gz")
    evil = b"Metadata-Version: 2.1\nName: good\nRequires-Dist: evil\n"
    upstream.raw_path(good.metadata_path, evil)  # a hostile upstream serves it at good's URL
    thief_page(upstream, claim_of(upstream, "good", good.filename,
                                  **{"core-metadata": {"sha256": hashlib.sha256(evil).hexdigest()}}))
    assert run_and_check_nothing_escaped(site, caplog) == 0
    stored = (site.mirror.web / "packages").joinpath(*good.path.split("/")[2:])
    assert not stored.with_name(good.filename + ".metadata").exists()
    theirs = json.loads((site.mirror.web / "simple" / "thief" / "index.v1_json").read_bytes())["files"][0]
    assert "core-metadata" not in theirs or theirs["core-metadata"] is False
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert not stored.with_name(good.filename + ".metadata").exists()
    assert_mirror_matches(upstream, site.mirror.web)


def test_a_provenance_the_owner_stops_advertising_leaves_once_no_page_links_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    wheel, provenance = good_with_provenance(site)
    entry = upstream.get_file("good", GOOD_WHEEL)
    thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL,
                                  provenance=upstream.url + entry.provenance_path))
    assert run_and_check_nothing_escaped(site, caplog) == 0
    # good's upstream page stops advertising it: thief's page still links good's copy, so it stays.
    upstream.touch("good")
    files = [claim_of(upstream, "good", name) for name in ("good-1.0.tar.gz", GOOD_WHEEL)]
    upstream.raw_page("good", claim_page("good", files), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    # Once thief lets go too, nothing links it: it goes, the wheel stays.
    thief_page(upstream)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert not provenance.exists() and wheel.is_file()


@pytest.mark.parametrize("what", ["provenance", "metadata"])
def test_what_a_sharing_page_published_before_the_owner_came_is_replaced_by_the_owner_and_leaves_with_it(
    site: Site, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    upstream = site.upstream
    upstream.add_file("good", GOOD_WHEEL, b"wheel bytes" * 40)
    if what == "provenance":
        upstream.add_provenance("good", GOOD_WHEEL, GOOD_PROVENANCE)
        upstream.raw_path("/integrity/thief/evil/provenance", THIEF_PROVENANCE)
        extra: dict[str, object] = {"provenance": upstream.url + "/integrity/thief/evil/provenance"}
    else:  # good advertises none; a hostile upstream serves some at good's URL for thief's page
        evil = b"Metadata-Version: 2.1\nName: good\nRequires-Dist: evil\n"
        upstream.raw_path(upstream.get_file("good", GOOD_WHEEL).metadata_path, evil)
        extra = {"core-metadata": {"sha256": hashlib.sha256(evil).hexdigest()}}
    thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL, **extra))
    upstream.stale("good", times=1000)  # good's page cannot be had: thief alone links the wheel
    assert site.mirror.run() == 1
    sidecar = next(site.mirror.web.joinpath("packages").rglob(GOOD_WHEEL)).with_name(GOOD_WHEEL + "." + what)
    assert sidecar.is_file()  # no page owning the wheel by name links it yet: thief's page holds it
    upstream.stale("good", times=0)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    if what == "provenance":
        assert sidecar.read_bytes() == GOOD_PROVENANCE  # the owner fetched its own
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert sidecar.exists() == (what == "provenance")
    assert_mirror_matches(upstream, site.mirror.web)


def test_force_check_gives_the_owner_its_own_provenance_back_in_a_mirror_damaged_before(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    _, provenance = good_with_provenance(site)
    provenance.write_bytes(THIEF_PROVENANCE)  # as an older bandersnatch let a sharing page do
    assert site.mirror.run("--force-check") == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE


def test_of_two_pages_linking_a_file_by_claim_the_first_holds_its_provenance(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # A renamed project's page links a file whose own project is gone: it holds the file's
    # provenance; a later page listing the same file links that copy and never replaces it.
    upstream = site.upstream
    upstream.raw_path("/packages/ol/dn/oldname-1.0-py3-none-any.whl", b"old wheel" * 40)
    upstream.raw_path("/integrity/oldname/provenance", GOOD_PROVENANCE)
    upstream.raw_path("/integrity/thief/evil/provenance", THIEF_PROVENANCE)

    def entry(provenance: str) -> dict[str, object]:
        return {"filename": "oldname-1.0-py3-none-any.whl",
                "url": upstream.url + "/packages/ol/dn/oldname-1.0-py3-none-any.whl",
                "hashes": {"sha256": hashlib.sha256(b"old wheel" * 40).hexdigest()},
                "provenance": upstream.url + provenance}

    upstream.add_project("newname")
    upstream.raw_page("newname", claim_page("newname", [entry("/integrity/oldname/provenance")]), SIMPLE_JSON,
                      upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    provenance = next(site.mirror.web.joinpath("packages").rglob("oldname-1.0-py3-none-any.whl.provenance"))
    assert provenance.read_bytes() == GOOD_PROVENANCE
    for _ in range(2):  # thief's first sync and a later one: newname held it first
        thief_page(upstream, entry("/integrity/thief/evil/provenance"))
        assert run_and_check_nothing_escaped(site, caplog) == 0
        assert provenance.read_bytes() == GOOD_PROVENANCE
    assert upstream.count_requests("/integrity/thief/") == 0
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    assert not (site.mirror.root / "claims" / "thief").exists()


@pytest.mark.parametrize("how", ["provenance-is-goods-wheel", "provenance-off-host", "huge-provenance",
                                 "wrong-sha256"])
def test_a_hostile_provenance_on_a_page_sharing_a_file_leaves_the_owners_copy_alone(
    site: Site, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    upstream = site.upstream
    wheel, provenance = good_with_provenance(site)
    entry = upstream.get_file("good", GOOD_WHEEL)
    if how == "provenance-is-goods-wheel":  # thief's own file, its provenance URL naming good's wheel
        upstream.add_file("thief", "thief-1.0.tar.gz", b"thief" * 50)
        own = claim_of(upstream, "thief", "thief-1.0.tar.gz", provenance=upstream.file_url(entry))
        thief_page(upstream, own, claim_of(upstream, "good", GOOD_WHEEL, provenance=upstream.file_url(entry)))
        expected = 1  # not a JSON object: thief fails with one line
    elif how == "provenance-off-host":
        thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL, provenance="https://attacker.invalid/p"))
        expected = 1
    elif how == "huge-provenance":
        upstream.raw_path("/integrity/thief/huge", b"{" + b" " * 1024, repeat=1024)
        thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL,
                                      provenance=upstream.url + "/integrity/thief/huge"))
        expected = 0  # never fetched: thief links good's copy
    else:
        upstream.raw_path("/integrity/thief/evil/provenance", THIEF_PROVENANCE)
        thief_page(upstream, claim_of(upstream, "good", GOOD_WHEEL, hashes={"sha256": "0" * 64},
                                      provenance=upstream.url + "/integrity/thief/evil/provenance"))
        expected = 1
    assert run_and_check_nothing_escaped(site, caplog) == expected
    if expected:
        thief_lines = [line for line in errors(caplog) if line.startswith("thief")]
        assert len(thief_lines) == 1, errors(caplog)
    assert upstream.count_requests("/integrity/thief/") == 0
    assert provenance.read_bytes() == GOOD_PROVENANCE
    assert wheel.read_bytes() == entry.content
    upstream.clear_faults()
    upstream.remove_project("thief")
    assert run_and_check_nothing_escaped(site, caplog) == 0
    assert_mirror_matches(upstream, site.mirror.web)


def unhashed_page(upstream: Upstream) -> bytes:
    """Two files with no hash we can check: none at all, and only an algorithm we do not know."""
    files = []
    for filename, hashes in (("loose-1.0.tar.gz", {}), ("loose-2.0.tar.gz", {"whirlpool": "ab" * 64})):
        path = f"/packages/lo/ose/{filename}"
        upstream.raw_path(path, filename.encode() * 20)
        files.append({"filename": filename, "url": upstream.url + path, "hashes": hashes})
    return claim_page("loose", files)


def test_files_with_no_usable_hash_are_mirrored_but_counted_in_the_summary(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    upstream.add_project("loose")
    upstream.raw_page("loose", unhashed_page(upstream), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    summary = caplog.records[-1].getMessage()
    assert "; 2 file(s) with no usable hash mirrored unverified;" in summary, summary
    assert len(list((site.mirror.web / "packages" / "lo").rglob("loose-*.tar.gz"))) == 2


def test_require_hashes_refuses_a_file_with_no_usable_hash_with_one_line(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    site.mirror.config.write_text(site.mirror.config.read_text() + "require-hashes = true\n")
    upstream.add_project("loose")
    upstream.raw_page("loose", unhashed_page(upstream), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    loose_lines = [line for line in errors(caplog) if line.startswith("loose")]
    assert len(loose_lines) == 1 and "require-hashes = true" in loose_lines[0], errors(caplog)
    assert pending_work(site.mirror.root) == {"loose": upstream.serial}
    assert not (site.mirror.web / "packages" / "lo").exists()
    assert (site.mirror.web / "simple" / "good" / "index.html").is_file()


# ---------------------------------------------------------------- hostile XML-RPC answers


def xml_response(value: int | str | list[Any] | dict[str, Any]) -> bytes:
    import xmlrpc.client

    return xmlrpc.client.dumps((value,), methodresponse=True).encode()


LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b"]><methodResponse><params><param><value><string>&lol9;</string></value></param></params>"
            b"</methodResponse>")
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><methodResponse>'
            b"<params><param><value><struct><member><name>&e;</name><value><int>5</int></value></member>"
            b"</struct></value></param></params></methodResponse>")
def member_answer(value: bytes) -> bytes:
    """A listing whose one member, "good", has ``value`` (raw XML) as its serial."""
    return (b"<?xml version='1.0'?><methodResponse><params><param><value><struct><member><name>good</name>"
            b"<value>" + value + b"</value></member></struct></value></param></params></methodResponse>")


BAD_RPC: list[tuple[str, bytes]] = [
    ("billion-laughs", LAUGHS),
    ("external-entity", EXTERNAL),
    ("malformed", b"<methodResponse><params><param><value><struct>"),
    ("not-xml", b"\x00\x01\x02 definitely not xml"),
    ("not-utf8", b'<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>'
                 b"caf\xe9</name><value><int>5</int></value></member></struct></value></param></params>"
                 b"</methodResponse>"),
    ("nul-in-name", xml_response({"ok": 1}).replace(b"ok", b"o&#0;k")),
    ("fault-multiline", b"<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode"
                        b"</name><value><int>1</int></value></member><member><name>faultString</name><value>"
                        b"<string>boom\nERROR: fake line</string></value></member></struct></value></fault>"
                        b"</methodResponse>"),
    ("wrong-type", xml_response("a string, not a listing")),
    ("wrong-value-types", xml_response({"good": "not a serial"})),
    ("empty", b""),
    ("int-not-a-number", member_answer(b"<int>abc</int>")),
    ("int-empty", member_answer(b"<int></int>")),
    ("int-unicode-digits", member_answer("<int>\u0663</int>".encode())),
    ("double-not-a-number", member_answer(b"<double>zz</double>")),
    ("base64-invalid", member_answer(b"<base64>abc</base64>")),
    ("boolean-not-0-or-1", member_answer(b"<boolean>yes</boolean>")),
    ("serial-beyond-int", member_answer(b"<int>2147483648</int>")),
    ("serial-negative", member_answer(b"<i4>-1</i4>")),
    ("serial-boolean", member_answer(b"<boolean>1</boolean>")),
]


@pytest.mark.parametrize("body", [pytest.param(b, id=i) for i, b in BAD_RPC])
def test_a_hostile_xmlrpc_answer_stops_the_run_with_one_line_and_changes_nothing(
    site: Site, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    upstream = site.upstream
    # With api-method = auto, a fault or a body that is no XML at all means "no XML-RPC here"
    # (test_changes.py): forced XML-RPC shows how the answer itself is handled.
    if b"<fault>" in body or not body.startswith(b"<"):
        write_config(site.mirror.root.parent, upstream.url, max_page_size="256K", api_method="xmlrpc")
    upstream.raw_rpc("list_packages_with_serial", body)
    upstream.raw_rpc("changelog_since_serial", body)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    last = errors(caplog)[-1]
    assert last.startswith("XML-RPC list_packages_with_serial: ") and "\n" not in last
    assert last.endswith("; the run is incomplete, run again to finish")
    assert "root:" not in caplog.text  # nothing of /etc/passwd
    assert not (site.mirror.web / "simple" / "good").exists()
    assert not (site.mirror.root / "state").exists()
    # Incremental: the same answer to changelog_since_serial changes nothing on disk.
    upstream.clear_faults()
    assert site.mirror.run() == 0
    upstream.add_file("good", "good-2.0.tar.gz", b"two" * 100)
    upstream.raw_rpc("changelog_since_serial", body)
    web_before = tree_snapshot(site.mirror.web)
    state_before = (site.mirror.root / "state").read_text()
    assert run_and_check_nothing_escaped(site, caplog) == 1
    assert tree_snapshot(site.mirror.web) == web_before
    assert (site.mirror.root / "state").read_text() == state_before
    upstream.clear_faults()
    assert site.mirror.run() == 0
    assert_mirror_matches(upstream, site.mirror.web)


# ---------------------------------------------------------------- huge answers: memory stays bounded


@functools.lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """64 MiB of spaces in about 64 KiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = b" " * (1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()


@pytest.mark.parametrize("target", ["page", "xmlrpc"])
@pytest.mark.parametrize("kind", ["content-length", "chunked", "gzip-bomb"])
def test_a_huge_answer_is_cut_off_at_the_size_cap_and_memory_stays_bounded(
    site: Site, caplog: pytest.LogCaptureFixture, target: str, kind: str
) -> None:
    upstream = site.upstream
    path = "/simple/bad/" if target == "page" else "/pypi"
    content_type = SIMPLE_JSON if target == "page" else "text/xml"
    if target == "page":
        upstream.add_project("bad")
    if kind == "gzip-bomb":
        headers = {"Content-Type": content_type, "Content-Encoding": "gzip"}
        upstream.raw_path(path, gzip_bomb(), headers=headers)
    else:  # 64 MiB, against a cap of 256 KiB for pages and 2 MiB for XML-RPC
        upstream.raw_path(path, b" " * (1 << 16), headers={"Content-Type": content_type}, repeat=1024,
                          chunked=kind == "chunked")
    tracemalloc.start()
    try:
        code = run_and_check_nothing_escaped(site, caplog)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 1
    assert peak < 24 << 20, f"peak {peak >> 20} MiB"
    what = "page bad" if target == "page" else "XML-RPC list_packages_with_serial"
    assert [line for line in errors(caplog) if what in line and "exceeds the limit" in line], errors(caplog)
    if target == "page":
        assert (site.mirror.web / "simple" / "good" / "index.html").is_file()


# ---------------------------------------------------------------- transport security


def test_tls_verification_is_never_turned_off() -> None:
    master = Master("https://pypi.example", timeout=1, workers=1, max_page_bytes=1024,
                    policy=UrlPolicy.for_master("https://pypi.example", (), False),
                    spool_dir=Path("/nonexistent"))
    assert master.transport.session.verify is True and master.transport.session.trust_env is False
    master.close()
    bundle = Master("https://pypi.example", timeout=1, workers=1, max_page_bytes=1024,
                    policy=UrlPolicy.for_master("https://pypi.example", (), False),
                    spool_dir=Path("/nonexistent"),
                    network=Network(ca_bundle="/etc/ssl/certs/ca-certificates.crt"))
    assert bundle.transport.session.verify == "/etc/ssl/certs/ca-certificates.crt"
    bundle.close()
    source = "\n".join(p.read_text() for p in Path(bandersnatch.__file__).parent.rglob("*.py"))
    # Import lines name the package ``verify`` (``from .verify import status``): not a TLS setting.
    source = "\n".join(line for line in source.splitlines()
                        if not line.lstrip().startswith(("from ", "import ")))
    # The one assignment allowed: another CA bundle (a path, never False) replaces the default one.
    allowed = "self.session.verify = self.network.ca_bundle or True"
    assert source.count(allowed) == 1
    source = source.replace(allowed, "")
    assert not re.search(r"verify\s*=|\.verify\b|CERT_NONE|check_hostname|_create_unverified_context"
                         r"|disable_warnings|InsecureRequestWarning", source)


def test_a_self_signed_https_upstream_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {made.stderr[-200:]!r}")
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        mirror = write_config(tmp_path, url, allow_non_https="false", timeout="5")
        assert mirror.run() == 1
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []  # no request was ever sent over the unverified connection
    assert "certificate verify failed" in errors(caplog)[-1]


def test_no_credential_in_a_file_url_reaches_any_log_output(tmp_path: Path, upstream: Upstream) -> None:
    """The same through the command line, stderr included, at debug level."""
    upstream.add_file("good", "good-1.0.tar.gz", b"good" * 100)
    port = upstream.url.rsplit(":", 1)[1]
    upstream.add_project("bad")
    body = json_page("bad-1.0.tar.gz", f"http://user:{SECRET}@127.0.0.1:{port}/packages/a/bad-1.0.tar.gz")
    upstream.raw_page("bad", body, SIMPLE_JSON, upstream.serial)
    entry = upstream.get_file("good", "good-1.0.tar.gz")
    upstream.redirect(entry.path, f"http://user:{SECRET}@127.0.0.1:{port}/packages/x")
    mirror = write_config(tmp_path, upstream.url)
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-v", "-c", str(mirror.config), "mirror"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "refusing file URL carrying credentials" in result.stderr
    assert "refusing redirect" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert all(SECRET not in r.path for r in upstream.requests)


# ---------------------------------------------------------------- one path needed as a file and a directory


def served_file(upstream: Upstream, path: str, content: bytes) -> dict[str, object]:
    """A page entry for ``content``, which upstream serves at ``path`` (any path, not only a blob's)."""
    upstream.raw_path(path, content)
    return {"filename": path.rsplit("/", 1)[1], "url": upstream.url + path,
            "hashes": {"sha256": hashlib.sha256(content).hexdigest()}}


def listed(upstream: Upstream, name: str, *entries: dict[str, object]) -> None:
    upstream.add_project(name)
    upstream.touch(name)
    upstream.raw_page(name, claim_page(name, entries), SIMPLE_JSON, upstream.serial)


def many_projects(upstream: Upstream, prefix: str, count: int = 30) -> set[str]:
    """More projects than the run keeps in flight: a run that stops early leaves some unstarted."""
    for i in range(count):
        upstream.add_file(f"{prefix}{i}", f"{prefix}{i}-1.0.tar.gz", f"{prefix}{i}".encode() * 40)
    return {f"{prefix}{i}" for i in range(count)}


def assert_synced(web: Path, names: set[str]) -> None:
    missing = sorted(n for n in names if not (web / "simple" / n / "index.html").is_file())
    assert missing == []


def test_a_page_needing_one_path_as_a_file_and_a_directory_is_refused_alone_and_the_run_goes_on(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    listed(upstream, "clash", served_file(upstream, "/packages/zz", b"a file named zz"),
           served_file(upstream, "/packages/zz/clash-1.0.tar.gz", b"a file below zz"))
    clash_serial = upstream.serial
    others = many_projects(upstream, "after")
    assert run_and_check_nothing_escaped(site, caplog) == 1
    (line,) = [e for e in errors(caplog) if e.startswith("clash")]
    assert "packages/zz" in line and line.endswith("left in todo for the next run"), line
    assert "stopped early" not in caplog.text
    assert_synced(site.mirror.web, others | {"good"})
    assert not (site.mirror.web / "packages" / "zz").exists()  # refused before anything was fetched
    assert pending_work(site.mirror.root) == {"clash": clash_serial}
    # The next run retries it first, fails it again, and still syncs what changed since.
    later = many_projects(upstream, "later")
    caplog.clear()
    assert run_and_check_nothing_escaped(site, caplog) == 1
    assert "stopped early" not in caplog.text
    assert_synced(site.mirror.web, later)
    assert set(pending_work(site.mirror.root)) == {"clash"}


@pytest.mark.parametrize("first", ["file-first", "directory-first"])
def test_projects_whose_urls_need_one_path_as_a_file_and_a_directory_fail_the_later_one_alone(
    site: Site, caplog: pytest.LogCaptureFixture, first: str
) -> None:
    """Across projects only the disk can tell: the second one to claim the path fails, the run goes on."""
    upstream = site.upstream
    as_file = served_file(upstream, "/packages/zz", b"a file named zz")
    as_dir = served_file(upstream, "/packages/zz/x-1.0.tar.gz", b"a file below zz")
    first_entry, second_entry = (as_file, as_dir) if first == "file-first" else (as_dir, as_file)
    listed(upstream, "owner", first_entry)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    kept = tree_snapshot(site.mirror.web / "packages" / "zz") if first == "directory-first" else None
    kept_bytes = (site.mirror.web / "packages" / "zz").read_bytes() if first == "file-first" else None
    listed(upstream, "claimer", second_entry)
    others = many_projects(upstream, "after")
    for attempt in range(2):
        caplog.clear()
        assert run_and_check_nothing_escaped(site, caplog) == 1
        (line,) = [e for e in errors(caplog) if e.startswith("claimer")]
        assert "packages/zz" in line and line.endswith("left in todo for the next run"), line
        assert "stopped early" not in caplog.text
        assert_synced(site.mirror.web, others | {"owner"})
        assert set(pending_work(site.mirror.root)) == {"claimer"}
        if kept is not None:
            assert tree_snapshot(site.mirror.web / "packages" / "zz") == kept
        else:
            assert (site.mirror.web / "packages" / "zz").read_bytes() == kept_bytes
        others = many_projects(upstream, f"more{attempt}")
    assert temp_files(site.mirror.root) == []


# ---------------------------------------------------------------- serials XML-RPC cannot carry


BEYOND = 2**31  # an XML-RPC <int> is 32 bits: a state holding this could never be sent back


def changelog_answer(serial: int) -> bytes:
    return (b"<?xml version='1.0'?><methodResponse><params><param><value><array><data><value><array><data>"
            b"<value><string>good</string></value><value><string>2.0</string></value><value><int>0</int>"
            b"</value><value><string>new release</string></value><value><int>%d</int></value>"
            b"</data></array></value></data></array></value></param></params></methodResponse>" % serial)


def bookkeeping(root: Path) -> str:
    files = (root / "state", root / "todo", root / "todo.journal")
    return "".join(p.read_text() for p in files if p.exists())


@pytest.mark.parametrize("method, body, incremental", [
    pytest.param("list_packages_with_serial", member_answer(b"<int>%d</int>" % BEYOND), False, id="listing"),
    pytest.param("list_packages_with_serial", xml_response({"good": -1}), False, id="listing-negative"),
    pytest.param("changelog_since_serial", changelog_answer(BEYOND), True, id="changelog"),
    pytest.param("changelog_since_serial", changelog_answer(-7), True, id="changelog-negative"),
    pytest.param("changelog_last_serial", xml_response(0).replace(b"<int>0</int>", b"<i8>%d</i8>" % BEYOND),
                 False, id="last-serial"),
    pytest.param("changelog_last_serial", xml_response(True), False, id="last-serial-boolean"),
])
def test_a_serial_xmlrpc_cannot_carry_is_refused_and_never_reaches_state_or_todo(
    site: Site, caplog: pytest.LogCaptureFixture, method: str, body: bytes, incremental: bool
) -> None:
    upstream = site.upstream
    if incremental:
        assert site.mirror.run() == 0
        upstream.add_file("good", "good-2.0.tar.gz", b"two" * 100)
    if method == "changelog_last_serial":
        upstream.raw_rpc("list_packages_with_serial", xml_response({}))  # no highest serial to use
    upstream.raw_rpc(method, body)
    before = bookkeeping(site.mirror.root)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    last = errors(caplog)[-1]
    assert last.startswith(f"XML-RPC {method}: ") and "not an integer from 0 to 2147483647" in last, last
    assert bookkeeping(site.mirror.root) == before  # nothing of it in state, todo or the journal
    upstream.clear_faults()
    assert site.mirror.run() == 0
    assert_mirror_matches(upstream, site.mirror.web)


def json_page_with_serial(serial: int) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1", "_last-serial": serial}, "name": "bad",
                       "files": []}).encode()


@pytest.mark.parametrize("header, body", [
    pytest.param(BEYOND, claim_page("bad", []), id="header"),
    pytest.param(None, json_page_with_serial(BEYOND), id="json-meta"),
    pytest.param(None, json_page_with_serial(-3), id="json-meta-negative"),
])
def test_a_page_serial_xmlrpc_cannot_carry_fails_that_project_alone(
    site: Site, caplog: pytest.LogCaptureFixture, header: int | None, body: bytes
) -> None:
    upstream = site.upstream
    upstream.add_project("bad")
    upstream.raw_page("bad", body, SIMPLE_JSON, header)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    bad_lines = [line for line in errors(caplog) if line.startswith("bad")]
    assert len(bad_lines) == 1 and "not an integer from 0 to 2147483647" in bad_lines[0], errors(caplog)
    assert pending_work(site.mirror.root) == {"bad": upstream.serial}
    assert not (site.mirror.web / "simple" / "bad").exists()
    assert (site.mirror.web / "simple" / "good" / "index.html").is_file()
    upstream.clear_faults()
    assert site.mirror.run() == 0
    assert_mirror_matches(upstream, site.mirror.web)


@pytest.mark.parametrize("damage", ["state", "todo-target", "todo-entry"])
def test_a_serial_xmlrpc_cannot_carry_left_in_state_or_todo_by_an_older_run_heals_with_a_full_listing(
    site: Site, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    upstream = site.upstream
    assert site.mirror.run() == 0
    root = site.mirror.root
    serial = int((root / "state").read_text())
    if damage == "state":
        (root / "state").write_text(f"{BEYOND}\n")
    elif damage == "todo-target":
        (root / "todo").write_text(f"{BEYOND}\ngood {serial}\n")
    else:
        (root / "todo").write_text(f"{serial}\ngood {BEYOND}\n")
    upstream.add_file("good", "good-2.0.tar.gz", b"two" * 100)
    caplog.clear()
    assert run_and_check_nothing_escaped(site, caplog) == 0
    damaged = [r.getMessage() for r in caplog.records if str(BEYOND) in r.getMessage()]
    assert len(damaged) == 1 and "full" in damaged[0], damaged
    assert upstream.count_requests("/pypi", "POST") >= 1
    assert int((root / "state").read_text()) == upstream.serial
    assert not (root / "todo").exists()
    assert_mirror_matches(upstream, site.mirror.web)


# ---------------------------------------------------------------- more hostile scalars and hashes


DEPTH = 200_000


@pytest.mark.parametrize("where", ["listing-member", "changelog-row", "fault-code"])
def test_an_xmlrpc_answer_nested_200000_deep_is_refused_with_one_line(
    site: Site, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    upstream = site.upstream
    # 8 MiB for XML-RPC; with api-method = auto a fault means "no XML-RPC" (test_changes.py)
    write_config(site.mirror.root.parent, upstream.url, max_page_size="1M", api_method="xmlrpc")
    deep = b"<array>" * DEPTH + b"</array>" * DEPTH
    head, tail = b"<?xml version='1.0'?><methodResponse>", b"</methodResponse>"
    if where == "listing-member":
        method, body = "list_packages_with_serial", member_answer(deep)
    elif where == "changelog-row":
        assert site.mirror.run() == 0
        upstream.add_file("good", "good-2.0.tar.gz", b"two" * 100)
        method = "changelog_since_serial"
        body = head + b"<params><param><value><array><data><value>" + deep + (
            b"</value></data></array></value></param></params>" + tail)
    else:
        method = "list_packages_with_serial"
        body = head + b"<fault><value><struct><member><name>faultCode</name><value>" + deep + (
            b"</value></member></struct></value></fault>" + tail)
    upstream.raw_rpc(method, body)
    assert run_and_check_nothing_escaped(site, caplog) == 1
    last = errors(caplog)[-1]
    assert last.startswith(f"XML-RPC {method}: ") and len(last) < 400, last[:400]
    upstream.clear_faults()
    assert site.mirror.run() == 0


def test_a_hash_without_a_fixed_length_like_shake_is_ignored_for_verification(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    both, shake_only = b"both hashes" * 40, b"only shake" * 40
    upstream.raw_path("/packages/sh/shaky-1.0.tar.gz", both)
    upstream.raw_path("/packages/sh/shaky-1.1.tar.gz", shake_only)
    files = [
        {"filename": "shaky-1.0.tar.gz", "url": f"{upstream.url}/packages/sh/shaky-1.0.tar.gz",
         "hashes": {"shake_128": "00", "sha256": hashlib.sha256(both).hexdigest()}},
        {"filename": "shaky-1.1.tar.gz", "url": f"{upstream.url}/packages/sh/shaky-1.1.tar.gz",
         "hashes": {"shake_256": "00"}},
    ]
    upstream.add_project("shaky")
    upstream.raw_page("shaky", claim_page("shaky", files), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0
    stored = {p.name: p.read_bytes() for p in (site.mirror.web / "packages").rglob("shaky-*")}
    assert stored == {"shaky-1.0.tar.gz": both, "shaky-1.1.tar.gz": shake_only}
    assert site.mirror.run("--force-check") == 0  # files on disk are hashed again: same algorithms
    assert "Traceback" not in caplog.text


# ---------------------------------------------------------------- escape sequences from upstream


ESC = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, set the terminal title
CSI = "\x9b2J"  # the same as one C1 control character


def test_escape_sequences_in_a_location_header_are_escaped_in_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    good = upstream.get_file("good", "good-1.0.tar.gz")
    upstream.redirect(good.path, f"http://evil{ESC}.invalid/x")
    assert run_and_check_nothing_escaped(site, caplog) == 1
    (line,) = [m for m in errors(caplog) if m.startswith("good: ")]
    assert "\\x1b" in line  # requests refuses the Location; its own error message is escaped too


def test_escape_sequences_in_a_redirect_loop_are_escaped_in_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    upstream.redirect("/simple/good/", f"/x{ESC}/1")
    upstream.redirect(f"/x{ESC}/1", f"/x{ESC}/2")
    upstream.redirect(f"/x{ESC}/2", f"/x{ESC}/1")
    assert run_and_check_nothing_escaped(site, caplog) == 1
    line = next(m for m in errors(caplog) if "too many redirects" in m)
    assert "\\x1b[2J" in line


def test_control_characters_in_a_filename_are_escaped_in_the_log(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = site.upstream
    filename = f"bad{CSI}\u2028-1.0.tar.gz"
    content = b"sneaky" * 100
    upstream.raw_path(f"/packages/cc/{filename}", content)
    entry = {"filename": filename, "url": upstream.url + quote(f"/packages/cc/{filename}"),
             "hashes": {"sha256": hashlib.sha256(content).hexdigest()}, "core-metadata": True}
    upstream.add_project("bad")
    upstream.raw_page("bad", claim_page("bad", [entry]), SIMPLE_JSON, upstream.serial)
    assert run_and_check_nothing_escaped(site, caplog) == 0  # its metadata 404s: a warning names the file
    line = next(r.getMessage() for r in caplog.records if "metadata is missing" in r.getMessage())
    assert line.startswith("bad\\x9b2J\\u2028-1.0.tar.gz: ")


def test_the_xmlrpc_answer_is_spooled_in_the_mirror_staging_area(
    tmp_path: Path, upstream: Upstream
) -> None:
    upstream.add_file("good", "good-1.0.tar.gz", GOOD_CONTENT)
    upstream.add_file("other", "other-1.0.tar.gz", b"other" * 10)
    spool = tmp_path / "spool"
    spool.mkdir()
    master = Master(upstream.url, timeout=5, workers=1, max_page_bytes=1 << 20, spool_dir=spool,
                    policy=UrlPolicy.for_master(upstream.url, (), True))
    try:
        listing = master.list_packages_with_serial()
        next(listing)  # the answer is on disk now, read as it is parsed
        open_files = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                      if os.path.exists(f"/proc/self/fd/{fd}")]
        assert [f for f in open_files if f.startswith(str(spool))], open_files
        listing.close()
    finally:
        master.close()


def test_a_full_disk_while_the_xmlrpc_answer_is_spooled_is_one_line(
    tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    listing = {f"project-{i:06d}": 100 + i for i in range(20_000)}  # about 1.3 MB of XML
    upstream.raw_rpc("list_packages_with_serial", xml_response(listing))
    with tmpfs(tmp_path / "disk", "512k") as disk:
        setup = write_config(tmp_path, upstream.url, directory=str(disk / "mirror"), max_page_size="1M")
        assert MirrorSetup(disk / "mirror", setup.config).run() == 1
        assert not (disk / "mirror" / "state").exists()
    last = errors(caplog)[-1]
    assert last.startswith("XML-RPC list_packages_with_serial: ") and "No space left on device" in last, last
    assert "Traceback" not in caplog.text
