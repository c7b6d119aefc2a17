"""Where changes come from: a master without XML-RPC is followed through its PEP 691 root listing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream, populate_sample
from support.mirrortools import assert_mirror_matches, write_config
from support.static_server import serve_web

from bandersnatch.upstream.feeds import MirroredProjects

NO_XMLRPC = "no XML-RPC"


@pytest.fixture
def listing_only(upstream: Upstream, sample_corpus: SampleCorpus) -> Upstream:
    """The sample corpus on a master that answers XML-RPC with 404."""
    upstream.without_xmlrpc("404")
    return upstream


def infos(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and text in r.getMessage()]


def test_master_without_xmlrpc_is_mirrored_through_its_listing_full_and_incremental(
    tmp_path: Path, listing_only: Upstream, sample_corpus: SampleCorpus
) -> None:
    upstream = listing_only
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert (mirror.root / "state").read_text().strip() == str(upstream.serial)

    upstream.add_wheel("Alpha-Lib", "3.0")  # a new release
    upstream.remove_file("beta", sample_corpus.files_of("beta")[0].filename)  # a removed file
    upstream.remove_project("zope.interface_x")  # a removed project
    upstream.add_wheel("Gamma", "1.0")  # a new project
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert (mirror.root / "state").read_text().strip() == str(upstream.serial)
    # The listing, then only the changed projects' pages: untouched ones are not asked for.
    pages = {r.path for r in upstream.requests if r.path.startswith("/simple/") and r.path != "/simple/"}
    assert {p.split("?")[0] for p in pages} == {"/simple/alpha-lib/", "/simple/beta/",
                                                "/simple/zope-interface-x/", "/simple/gamma/"}
    assert upstream.count_requests("/simple/", "GET") - len(pages) == 1


@pytest.mark.parametrize("answer", ["404", "405", "fault", "html"])
def test_auto_detection_follows_the_listing_with_one_info_line(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, answer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream.without_xmlrpc(answer)
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert len(infos(caplog, NO_XMLRPC)) == 1
    assert upstream.count_requests("/pypi", "POST") == 1  # asked once, then not again this run

    caplog.clear()
    upstream.add_wheel("beta", "0.6")
    upstream.reset_requests()
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert len(infos(caplog, NO_XMLRPC)) == 1
    assert upstream.count_requests("/pypi", "POST") == 0  # remembered: not asked again


def test_a_hostile_fault_in_auto_mode_is_one_escaped_info_line_then_the_listing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    fault = ("<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode</name>"
             "<value><int>1</int></value></member><member><name>faultString</name><value><string>boom\n"
             "ERROR: fake line\u202e</string></value></member></struct></value></fault>"
             "</methodResponse>").encode()
    upstream.raw_rpc("list_packages_with_serial", fault)
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    [line] = infos(caplog, NO_XMLRPC)
    assert "boom\\nERROR: fake line\\u202e" in line and "\n" not in line and "\u202e" not in line


# How /pypi answers on masters that have no XML-RPC: (status, headers, body) of POST /pypi.
NOT_XMLRPC = {
    "forbidden": (403, {"Content-Type": "text/html"}, b"<html><body>403 Forbidden</body></html>"),
    "json": (200, {"Content-Type": "application/json"}, b'{"message": "POST /pypi: no such thing"}'),
    "xml-but-not-xmlrpc": (200, {"Content-Type": "text/xml"}, b"<?xml version='1.0'?><rss><channel/></rss>"),
    "not-xml": (200, {"Content-Type": "application/octet-stream"}, b"\x00\x01 binary \xff"),
    "empty": (200, {"Content-Type": "text/xml"}, b""),
    "redirect-loop": (301, {"Location": "/pypi"}, b""),
    "redirect-off-host": (302, {"Location": "http://other.invalid/pypi\x1b[2J"}, b""),
}


@pytest.mark.parametrize("answer", NOT_XMLRPC.values(), ids=NOT_XMLRPC.keys())
def test_an_xmlrpc_endpoint_answering_as_no_xmlrpc_server_is_one_escaped_info_line_then_the_listing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture,
    answer: tuple[int, dict[str, str], bytes],
) -> None:
    status, headers, body = answer
    upstream.raw_path("/pypi", body, status=status, headers=headers)
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    [line] = infos(caplog, NO_XMLRPC)
    assert "\x1b" not in line and "\n" not in line
    assert upstream.count_requests("/pypi/", "POST") == 0  # no POST body sent anywhere else


def test_a_redirect_of_pypi_to_a_forbidden_directory_is_followed_through_the_listing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    # nginx in front of a mirror with json = true: /pypi is a directory (the JSON API copy).
    upstream.raw_path("/pypi", b"", status=301, headers={"Location": "/pypi/"})
    upstream.raw_path("/pypi/", b"<html>403 Forbidden</html>", status=403,
                      headers={"Content-Type": "text/html"})
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    [line] = infos(caplog, NO_XMLRPC)
    assert "HTTP 403 from" in line and "/pypi/)" in line  # names the URL that answered
    upstream.add_wheel("beta", "0.6")
    upstream.reset_requests()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/pypi", "POST") == 0  # remembered: not asked again


TROUBLE = {
    "server-error": (503, {"Content-Type": "text/html"}, b"<html>Service Unavailable</html>"),
    "cut-short": (200, {"Content-Type": "text/xml"},
                  b"<?xml version='1.0'?><methodResponse><params><param><value><array><data><value>"),
    "malformed-value": (200, {"Content-Type": "text/xml"},
                        b"<?xml version='1.0'?><methodResponse><params><param><value><int>x</int>"
                        b"</value></param></params></methodResponse>"),
}


@pytest.mark.parametrize("answer", TROUBLE.values(), ids=TROUBLE.keys())
def test_xmlrpc_trouble_on_a_master_that_has_it_is_an_incomplete_run_not_a_switch_to_the_listing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture,
    answer: tuple[int, dict[str, str], bytes],
) -> None:
    status, headers, body = answer
    upstream.raw_path("/pypi", body, status=status, headers=headers)
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 1
    assert infos(caplog, NO_XMLRPC) == []
    assert upstream.count_requests("/simple/") == 0
    assert not (mirror.root / "state").exists()


def test_a_master_with_xmlrpc_is_followed_through_it_in_auto_mode(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, upstream.url)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
        upstream.add_wheel("beta", "0.6")
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert infos(caplog, NO_XMLRPC) == [] and infos(caplog, "root listing") == []
    assert not any(r.path == "/simple/" for r in upstream.requests)  # the listing is never asked for


def test_forced_xmlrpc_against_a_master_without_it_fails_with_what_to_set(
    tmp_path: Path, listing_only: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, listing_only.url, api_method="xmlrpc")
    assert mirror.run() == 1
    assert "set api-method = auto or simple" in caplog.text
    assert listing_only.count_requests("/simple/") == 0
    assert not (mirror.root / "state").exists()


def test_forced_simple_follows_the_listing_even_when_xmlrpc_exists(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, upstream.url, api_method="simple")
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
        upstream.add_wheel("Alpha-Lib", "3.0")
        upstream.remove_project("beta")
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/pypi", "POST") == 0
    assert infos(caplog, NO_XMLRPC) == []


def test_an_unchanged_listing_costs_one_request_answered_304(
    tmp_path: Path, listing_only: Upstream
) -> None:
    mirror = write_config(tmp_path, listing_only.url)
    assert mirror.run() == 0
    assert mirror.run() == 0  # the first incremental run remembers that the master has no XML-RPC
    listing_only.reset_requests()
    assert mirror.run() == 0
    assert [(r.method, r.path, r.status) for r in listing_only.requests] == [("GET", "/simple/", 304)]
    assert_mirror_matches(listing_only, mirror.web)


def test_a_listing_changed_after_a_304_is_read_again(tmp_path: Path, listing_only: Upstream) -> None:
    mirror = write_config(tmp_path, listing_only.url, api_method="simple")
    assert mirror.run() == 0
    assert mirror.run() == 0
    listing_only.add_wheel("Alpha-Lib", "3.0")
    listing_only.reset_requests()
    assert mirror.run() == 0
    assert [r.status for r in listing_only.requests if r.path == "/simple/"] == [200]
    assert_mirror_matches(listing_only, mirror.web)


def test_a_listing_not_planned_yet_is_asked_without_validators(
    tmp_path: Path, listing_only: Upstream
) -> None:
    """A run killed after reading a listing, before its plan was kept, must not be answered 304 next time."""
    mirror = write_config(tmp_path, listing_only.url, api_method="simple")
    assert mirror.run() == 0
    before = (mirror.root / "state").read_text()
    listing_only.add_wheel("Alpha-Lib", "3.0")
    assert mirror.run() == 0
    (mirror.root / "state").write_text(before)  # as if killed between reading the listing and planning
    listing_only.reset_requests()
    assert mirror.run() == 0
    assert [r.status for r in listing_only.requests if r.path == "/simple/"] == [200]
    assert_mirror_matches(listing_only, mirror.web)
    assert (mirror.root / "state").read_text().strip() == str(listing_only.serial)


def test_a_stale_page_behind_a_fresh_listing_is_asked_again_past_the_cache(
    tmp_path: Path, listing_only: Upstream
) -> None:
    mirror = write_config(tmp_path, listing_only.url, api_method="simple")
    assert mirror.run() == 0
    listing_only.add_wheel("Alpha-Lib", "3.0")
    listing_only.stale("alpha-lib")
    assert mirror.run() == 0
    assert_mirror_matches(listing_only, mirror.web)
    assert any("bandersnatch_serial" in r.path for r in listing_only.requests)


def test_projects_gone_from_the_listing_past_the_removal_limit_are_held_back(
    tmp_path: Path, listing_only: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    mirror = write_config(tmp_path, listing_only.url, api_method="simple", max_removals="1",
                          max_removals_percent="10")
    assert mirror.run() == 0
    listing_only.remove_project("beta")
    listing_only.remove_project("empty-project")
    assert mirror.run() == 1
    assert "--allow-mass-removal" in caplog.text
    assert (mirror.web / "simple" / "beta" / "index.html").exists()
    assert mirror.run("--allow-mass-removal") == 0
    assert_mirror_matches(listing_only, mirror.web)


@pytest.fixture
def prefixed() -> Iterator[Upstream]:
    server = Upstream()
    server.path_prefix = "/pypi-mirror"
    with server:
        populate_sample(server)
        yield server


@pytest.mark.parametrize("xmlrpc", [True, False], ids=["xmlrpc", "listing"])
def test_a_master_under_a_path_prefix_is_mirrored(tmp_path: Path, prefixed: Upstream, xmlrpc: bool) -> None:
    if not xmlrpc:
        prefixed.without_xmlrpc("404")
    assert prefixed.url.endswith("/pypi-mirror")
    mirror = write_config(tmp_path, prefixed.url + "/")
    assert mirror.run() == 0
    assert_mirror_matches(prefixed, mirror.web)
    prefixed.add_wheel("Alpha-Lib", "3.0")
    prefixed.remove_project("beta")
    assert mirror.run() == 0
    assert_mirror_matches(prefixed, mirror.web)
    assert all(r.path.startswith("/pypi-mirror/") for r in prefixed.requests)


def test_a_mirror_of_our_mirror_equals_upstream_after_full_and_incremental_syncs(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    first = write_config(tmp_path / "first", upstream.url)
    assert first.run() == 0
    with serve_web(first.web) as url:
        # Our mirror's pages link files by relative URLs, on the host that serves it.
        second = write_config(tmp_path / "second", url)
        assert second.run() == 0
        assert_mirror_matches(upstream, second.web)
        upstream.add_wheel("Alpha-Lib", "3.0")
        upstream.remove_file("beta", sample_corpus.files_of("beta")[0].filename)
        upstream.remove_project("zope.interface_x")
        upstream.add_wheel("Gamma", "1.0")
        upstream.yank("Alpha-Lib", sample_corpus.files_of("Alpha-Lib")[0].filename, "broken")
        assert first.run() == 0
        assert second.run() == 0
        assert_mirror_matches(upstream, second.web)
        assert second.run() == 0
        del url.requests[:]
        assert second.run() == 0
        assert [(r.path, r.status) for r in url.requests] == [("/simple/", 304)]


def test_an_unchanged_listing_answered_304_does_not_read_the_root_index(
    tmp_path: Path, listing_only: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 750,000 projects, reading our root index to diff a listing that never came took 4 s of a 5 s run."""
    from bandersnatch.sync.rootindex import RootIndex

    mirror = write_config(tmp_path, listing_only.url)
    assert mirror.run() == 0
    assert mirror.run() == 0
    read: list[str] = []
    real_entries, real_mirrored = RootIndex.entries, RootIndex.mirrored

    def counted(self: RootIndex) -> Iterator[tuple[str, int | None]]:
        for entry in real_entries(self):
            read.append(entry[0])
            yield entry

    def counted_whole(self: RootIndex) -> MirroredProjects:  # the feed's one read of the whole index
        known = real_mirrored(self)
        read.extend(known.names)
        return known

    monkeypatch.setattr(RootIndex, "entries", counted)
    monkeypatch.setattr(RootIndex, "mirrored", counted_whole)
    listing_only.reset_requests()
    assert mirror.run() == 0
    assert [(r.path, r.status) for r in listing_only.requests] == [("/simple/", 304)]
    assert read == []
    listing_only.add_wheel("Alpha-Lib", "3.0")
    assert mirror.run() == 0  # a listing that did change is still diffed against the root index
    assert read
    assert_mirror_matches(listing_only, mirror.web)
