"""Chains of our mirrors: upstream -> A -> B -> C, each mirror served by README's nginx block.

A follows the fake upstream; B follows A's nginx and C follows B's. nginx has no XML-RPC, so B and C
(api-method = auto) find that out and follow the PEP 691 root listing our mirrors write, with its
per-project ``_last-serial``; nginx answers that listing with an ETag, so an unchanged one costs a 304.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, assert_mirror_matches, write_config
from support.nginx_server import Nginx, nginx_binary, run_nginx, run_nginx_site, site_config

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)"),
    pytest.mark.slow,
]

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


def access_lines(nginx: Nginx) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request nginx has logged, in order."""
    found = []
    for line in nginx.access_log.read_text().splitlines():
        match = REQUEST_LINE.search(line)
        assert match, line
        found.append((match["method"], match["path"], int(match["status"])))
    return found


class Chain:
    def __init__(self, tmp_path: Path, upstream: Upstream, stack: ExitStack) -> None:
        self.mirrors: list[MirrorSetup] = []
        self.servers: list[Nginx] = []
        master = upstream.url
        for name in "abc":
            mirror = write_config(tmp_path / name, master, api_method="auto")
            mirror.web.mkdir(parents=True)  # nginx needs its root before the first run fills it
            server = stack.enter_context(run_nginx(mirror.web, tmp_path / f"nginx-{name}"))
            self.mirrors.append(mirror)
            self.servers.append(server)
            master = server.url

    def run_each_once(self, upstream: Upstream) -> None:
        """One run of A, then B, then C: each must equal upstream straight after its own run."""
        for name, mirror in zip("abc", self.mirrors, strict=True):
            assert mirror.run() == 0, name
            assert_mirror_matches(upstream, mirror.web)
            assert (mirror.root / "state").read_text().strip() == str(upstream.serial), name


@pytest.fixture
def chain(tmp_path: Path, upstream: Upstream) -> Iterator[Chain]:
    with ExitStack() as stack:
        yield Chain(tmp_path, upstream, stack)


def test_a_chain_of_three_mirrors_behind_nginx_equals_upstream_through_full_and_incremental_syncs(
    chain: Chain, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    chain.run_each_once(upstream)  # full syncs

    upstream.add_wheel("Alpha-Lib", "3.0")  # a new release
    upstream.remove_file("beta", sample_corpus.files_of("beta")[0].filename)  # a removed file
    upstream.remove_project("zope.interface_x")  # a removed project
    upstream.yank("Alpha-Lib", sample_corpus.files_of("Alpha-Lib")[0].filename, "broken")  # a yank
    upstream.add_wheel("Gamma", "1.0")  # a new project
    chain.run_each_once(upstream)

    # Each downstream mirror's serial and per-project serials are its master's, as nginx serves them.
    a_root, _, c_root = (requests.get(f"{s.url}/simple/", headers={"Accept": SIMPLE_JSON}, timeout=10).json()
                         for s in chain.servers)
    assert a_root["meta"]["_last-serial"] == c_root["meta"]["_last-serial"] == upstream.serial
    assert {p["name"]: p["_last-serial"] for p in a_root["projects"]} == {
        p["name"]: p["_last-serial"] for p in c_root["projects"]}

    # A no-op run of a downstream mirror costs at most 2 requests of its master (a 304 for the listing).
    for downstream, master in ((chain.mirrors[1], chain.servers[0]), (chain.mirrors[2], chain.servers[1])):
        before = len(access_lines(master))
        assert downstream.run() == 0
        asked = access_lines(master)[before:]
        assert len(asked) <= 2, asked
        assert ("GET", "/simple/", 304) in asked
        assert_mirror_matches(upstream, downstream.web)


def test_readme_nginx_serves_our_root_listing_by_accept_with_an_etag_that_answers_304(
    chain: Chain, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror, nginx = chain.mirrors[0], chain.servers[0]
    assert mirror.run() == 0
    url = f"{nginx.url}/simple/"
    as_json = requests.get(url, headers={"Accept": SIMPLE_JSON}, timeout=10)
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"].startswith(SIMPLE_JSON)
    assert as_json.content == (mirror.web / "simple" / "index.v1_json").read_bytes()
    assert "Accept" in as_json.headers["Vary"]
    assert as_json.json()["meta"]["_last-serial"] == upstream.serial
    as_html = requests.get(url, headers={"Accept": "text/html"}, timeout=10)
    assert as_html.headers["Content-Type"].startswith("text/html")
    assert as_html.content == (mirror.web / "simple" / "index.html").read_bytes()
    etag = as_json.headers["ETag"]
    assert etag != as_html.headers["ETag"]  # the two forms are different entities

    again = requests.get(url, headers={"Accept": SIMPLE_JSON, "If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    other_form = requests.get(url, headers={"Accept": "text/html", "If-None-Match": etag}, timeout=10)
    assert other_form.status_code == 200  # the JSON form's tag does not validate the HTML form

    upstream.add_wheel("Gamma", "1.0")
    assert mirror.run() == 0
    changed = requests.get(url, headers={"Accept": SIMPLE_JSON, "If-None-Match": etag}, timeout=10)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "gamma" in {p["name"] for p in changed.json()["projects"]}


def two_mirrors_behind(tmp_path: Path, upstream: Upstream, stack: ExitStack,
                       site: Callable[[Path, int], str]) -> tuple[MirrorSetup, Nginx, MirrorSetup]:
    """A (``json = true``) follows upstream and is served by ``site``; B follows A with the defaults."""
    first = write_config(tmp_path / "a", upstream.url, json="true")
    first.web.mkdir(parents=True)
    server = stack.enter_context(run_nginx_site(functools.partial(site, first.web), tmp_path / "nginx-a"))
    second = write_config(tmp_path / "b", server.url)
    return first, server, second


def readme_site(web: Path, port: int) -> str:
    return site_config(web, port, hash_index=False)


def site_before_10(web: Path, port: int) -> str:
    """README's block as it was before 10.0: no ``location = /pypi``, so nginx redirects it to /pypi/."""
    block = site_config(web, port, hash_index=False)
    cut = re.sub(r"\n *# No XML-RPC here.*?location = /pypi \{[^}]*\}\n", "\n", block, flags=re.S)
    assert cut != block and "location = /pypi " not in cut
    return cut


@pytest.mark.parametrize(("site", "probe"), [
    (readme_site, [("POST", "/pypi", 404)]),
    (site_before_10, [("POST", "/pypi", 301), ("POST", "/pypi/", 403)]),
], ids=["readme", "before-10"])
def test_a_mirror_with_the_json_api_behind_nginx_is_followed_through_its_listing(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, caplog: pytest.LogCaptureFixture,
    site: Callable[[Path, int], str], probe: list[tuple[str, str, int]],
) -> None:
    with ExitStack() as stack:
        first, server, second = two_mirrors_behind(tmp_path, upstream, stack, site)
        assert first.run() == 0
        assert (first.web / "pypi" / "beta" / "json").is_file()
        with caplog.at_level(logging.INFO):
            assert second.run() == 0
        assert_mirror_matches(upstream, second.web)
        assert access_lines(server)[:len(probe)] == probe  # asked once; nginx has no XML-RPC
        assert len([r for r in caplog.records if "has no XML-RPC" in r.getMessage()]) == 1

        upstream.add_wheel("Gamma", "1.0")
        upstream.remove_project("zope.interface_x")
        assert first.run() == 0
        before = len(access_lines(server))
        assert second.run() == 0
        assert_mirror_matches(upstream, second.web)
        assert (second.root / "state").read_text().strip() == str(upstream.serial)
        assert not [line for line in access_lines(server)[before:] if line[0] == "POST"]
