"""Specification of the test upstream: if these fail, mirror tests mean nothing."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import subprocess
import sys
import tarfile
import time
import xmlrpc.client
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from support import distbuild
from support.fakepypi import SIMPLE_HTML, SIMPLE_JSON, SampleCorpus, Upstream, choose_simple_format
from support.static_server import serve_web

PIP_ACCEPT = f"{SIMPLE_JSON}, {SIMPLE_HTML}; q=0.1, text/html; q=0.01"


class _Anchors(HTMLParser):
    """Collects (attributes, text) of every <a> in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._current: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.anchors.append((self._current, data))
            self._current = None


def anchors(body: str) -> dict[str, dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(body)
    return {text: attrs for attrs, text in parser.anchors}


def rpc(upstream: Upstream, path: str = "/pypi") -> Any:
    """An XML-RPC proxy (typed Any: its methods are dynamic)."""
    return xmlrpc.client.ServerProxy(upstream.url + path)


def get_page(upstream: Upstream, project: str, accept: str | None = SIMPLE_JSON) -> requests.Response:
    headers = {"Accept": accept} if accept is not None else {}
    return requests.get(f"{upstream.url}/simple/{project}/", headers=headers, timeout=5)


# ------------------------------------------------------------------ XML-RPC


def test_xmlrpc_lists_projects_with_their_last_serial(
    upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    proxy = rpc(upstream)
    listing = proxy.list_packages_with_serial()
    assert set(listing) == set(sample_corpus.projects)  # display names
    assert listing["Alpha-Lib"] == upstream.project_serial("alpha-lib")
    assert proxy.changelog_last_serial() == sample_corpus.serial == max(listing.values())


def test_changelog_records_pypi_style_actions(upstream: Upstream) -> None:
    start = upstream.serial
    upstream.add_wheel("Foo_Bar", "1.0")
    upstream.yank("foo-bar", "foo_bar-1.0-py3-none-any.whl", reason="broken")
    upstream.remove_project("FOO.bar")
    proxy = rpc(upstream, "/RPC2")
    rows = proxy.changelog_since_serial(start)
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("Foo_Bar", None, "create"),
        ("Foo_Bar", "1.0", "new release"),
        ("Foo_Bar", "1.0", "add py3 file foo_bar-1.0-py3-none-any.whl"),
        ("Foo_Bar", "1.0", "yank release"),
        ("Foo_Bar", None, "remove project"),
    ]
    assert [r[4] for r in rows] == list(range(start + 1, start + 6))
    assert proxy.changelog_since_serial(start + 4) == [rows[-1]]
    assert proxy.list_packages_with_serial() == {}


def test_unknown_xmlrpc_method_is_a_fault(upstream: Upstream) -> None:
    with pytest.raises(xmlrpc.client.Fault):
        rpc(upstream).no_such_method()


# ------------------------------------------------------------- simple pages


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text/html"),
        ("*/*", "text/html"),
        (SIMPLE_JSON, SIMPLE_JSON),
        ("application/vnd.pypi.simple.latest+json", SIMPLE_JSON),
        ("application/vnd.pypi.simple.latest+html", SIMPLE_HTML),
        (PIP_ACCEPT, SIMPLE_JSON),
        (f"text/html;q=0.9, {SIMPLE_JSON};q=0.5", "text/html"),
        (f"text/html;q=0.5, {SIMPLE_JSON};q=0.9", SIMPLE_JSON),
        (f"{SIMPLE_JSON};q=0, */*", "text/html"),
        ("application/xml", "text/html"),
    ],
)
def test_content_negotiation(accept: str | None, expected: str) -> None:
    assert choose_simple_format(accept) == expected


def test_json_project_page(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    response = get_page(upstream, "alpha-lib", PIP_ACCEPT)
    assert response.headers["Content-Type"] == SIMPLE_JSON
    serial = int(response.headers["X-PyPI-Last-Serial"])
    page = response.json()
    assert page["meta"] == {"api-version": "1.4", "_last-serial": serial}
    assert page["name"] == "alpha-lib"
    assert page["versions"] == ["1.0", "2.0"]
    old, new = page["files"]
    assert old["requires-python"] == ">=3.8"
    assert old["core-metadata"] is False and old["yanked"] is False
    expected = sample_corpus.files[new["filename"]]
    assert new["url"] == expected.url and new["url"].startswith(upstream.url + "/packages/")
    assert new["hashes"] == {"sha256": expected.sha256}
    assert new["size"] == expected.size
    assert new["core-metadata"] == new["dist-info-metadata"]
    assert "requires-python" not in new
    assert time.strptime(new["upload-time"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_html_project_page_escapes_and_advertises(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    upstream.yank("Alpha-Lib", "alpha_lib-2.0-py3-none-any.whl", reason='bad "build" <x>')
    response = get_page(upstream, "alpha-lib", None)
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<meta name="pypi:repository-version" content="1.4">' in response.text
    assert 'data-requires-python="&gt;=3.8"' in response.text
    links = anchors(response.text)
    old = links["alpha_lib-1.0-py3-none-any.whl"]
    assert old["href"] == f"{sample_corpus.files['alpha_lib-1.0-py3-none-any.whl'].url}#sha256=" + (
        sample_corpus.files["alpha_lib-1.0-py3-none-any.whl"].sha256
    )
    assert "data-yanked" not in old and "data-core-metadata" not in old
    new = links["alpha_lib-2.0-py3-none-any.whl"]
    assert new["data-yanked"] == 'bad "build" <x>'
    assert new["data-core-metadata"] == new["data-dist-info-metadata"]
    assert str(new["data-core-metadata"]).startswith("sha256=")


def test_root_index_in_both_formats(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    html_page = requests.get(upstream.url + "/simple/", timeout=5)
    assert set(anchors(html_page.text)) == set(sample_corpus.projects)
    assert html_page.headers["X-PyPI-Last-Serial"] == str(sample_corpus.serial)
    json_page = requests.get(upstream.url + "/simple/", headers={"Accept": SIMPLE_JSON}, timeout=5).json()
    assert {p["name"] for p in json_page["projects"]} == set(sample_corpus.projects)


def test_non_normalized_name_redirects(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    response = requests.get(upstream.url + "/simple/Zope.Interface_X/?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == "/simple/zope-interface-x/?x=1"
    assert get_page(upstream, "Zope.Interface_X").json()["name"] == "zope-interface-x"


def test_removed_project_and_file_are_404(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    sdist = sample_corpus.files["beta-0.5.tar.gz"]
    upstream.remove_file("beta", sdist.filename)
    assert requests.get(sdist.url, timeout=5).status_code == 404
    upstream.remove_project("beta")
    assert get_page(upstream, "beta").status_code == 404
    assert get_page(upstream, "never-existed").status_code == 404
    assert "beta" not in rpc(upstream).list_packages_with_serial()


def test_empty_project_has_a_page(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    assert get_page(upstream, "empty-project").json()["files"] == []


# ------------------------------------------------------------- files, APIs


def test_files_and_metadata_match_their_hashes(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    for sample in sample_corpus.files.values():
        response = requests.get(sample.url, timeout=5)
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert hashlib.sha256(response.content).hexdigest() == sample.sha256
    page = get_page(upstream, "alpha-lib").json()
    new = page["files"][1]
    metadata = requests.get(new["url"] + ".metadata", timeout=5).content
    assert hashlib.sha256(metadata).hexdigest() == new["core-metadata"]["sha256"]
    assert b"Name: Alpha-Lib" in metadata
    assert requests.get(page["files"][0]["url"] + ".metadata", timeout=5).status_code == 404


def test_legacy_json_api(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    response = requests.get(upstream.url + "/pypi/Alpha-Lib/json", timeout=5)
    data = response.json()
    assert data["info"]["name"] == "Alpha-Lib" and data["info"]["version"] == "2.0"
    assert data["last_serial"] == int(response.headers["X-PyPI-Last-Serial"])
    assert sorted(data["releases"]) == ["1.0", "2.0"]
    wheel = data["urls"][0]
    assert wheel["digests"]["sha256"] == sample_corpus.files[wheel["filename"]].sha256
    assert wheel["packagetype"] == "bdist_wheel" and wheel["python_version"] == "py3"
    assert data["releases"]["1.0"][0]["requires_python"] == ">=3.8"
    redirect = requests.get(upstream.url + "/pypi/alpha_lib/json", allow_redirects=False, timeout=5)
    assert redirect.status_code == 301 and redirect.headers["Location"] == "/pypi/Alpha-Lib/json"
    assert (
        requests.get(upstream.url + "/pypi/Alpha-Lib/1.0/json", timeout=5).json()["info"]["version"] == "1.0"
    )
    assert requests.get(upstream.url + "/pypi/nope/json", timeout=5).status_code == 404


def test_requests_are_recorded(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    upstream.reset_requests()
    get_page(upstream, "beta", PIP_ACCEPT)
    get_page(upstream, "beta", None)
    assert upstream.count_requests("/simple/beta/") == 2
    assert upstream.requests[0].accept == PIP_ACCEPT and upstream.requests[0].status == 200


def test_keep_alive_serves_several_requests_on_one_connection(
    upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    connection = http.client.HTTPConnection(upstream.url.removeprefix("http://"), timeout=5)
    for path in ("/simple/beta/", "/simple/alpha-lib/", "/nope"):
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.version == 11 and response.getheader("Content-Length") is not None
        response.read()
    assert connection.sock is not None  # never closed by the server
    connection.close()


def test_stop_closes_idle_keep_alive_connections(sample_corpus: SampleCorpus) -> None:
    server = Upstream()
    server.start()
    session = requests.Session()
    session.get(server.url + "/simple/", timeout=5)
    server.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(server.url + "/simple/", timeout=5)


# ----------------------------------------------------------------- faults


def test_stale_page_serves_previous_serial(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    before = upstream.project_serial("beta")
    upstream.add_wheel("beta", "0.6")
    upstream.stale("beta", times=2)
    stale_json = get_page(upstream, "beta", PIP_ACCEPT)
    stale_html = requests.get(upstream.url + "/simple/beta/?1234", timeout=5)
    for response in (stale_json, stale_html):
        assert response.headers["X-PyPI-Last-Serial"] == str(before)
    assert "beta-0.6" not in stale_html.text
    fresh = get_page(upstream, "beta", PIP_ACCEPT)
    assert int(fresh.headers["X-PyPI-Last-Serial"]) == upstream.project_serial("beta") > before


def test_stale_page_of_new_project_is_404(upstream: Upstream) -> None:
    upstream.add_project("newborn")
    upstream.stale("newborn")
    assert get_page(upstream, "newborn").status_code == 404
    assert get_page(upstream, "newborn").status_code == 200


def test_corrupt_file_breaks_its_hash(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    sample = sample_corpus.files["beta-0.5-py3-none-any.whl"]
    upstream.corrupt("beta", sample.filename, times=1)
    bad = requests.get(sample.url, timeout=5).content
    assert len(bad) == sample.size and hashlib.sha256(bad).hexdigest() != sample.sha256
    assert hashlib.sha256(requests.get(sample.url, timeout=5).content).hexdigest() == sample.sha256
    upstream.corrupt(None, sample.filename)
    assert hashlib.sha256(requests.get(sample.url, timeout=5).content).hexdigest() != sample.sha256
    upstream.clear_faults()
    assert hashlib.sha256(requests.get(sample.url, timeout=5).content).hexdigest() == sample.sha256


def test_truncated_body_raises_in_client(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    sample = sample_corpus.files["beta-0.5.tar.gz"]
    upstream.truncate(sample.filename, times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(sample.url, timeout=5)
    assert len(requests.get(sample.url, timeout=5).content) == sample.size


def test_fail_with_retry_after(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    upstream.fail("/simple/beta/", 429, times=2, retry_after=3)
    for _ in range(2):
        response = get_page(upstream, "beta")
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert get_page(upstream, "beta").status_code == 200


def test_redirect_and_raw_page(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    upstream.redirect("/simple/beta/", "https://elsewhere.invalid/simple/beta/")
    response = requests.get(upstream.url + "/simple/beta/", allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://elsewhere.invalid/simple/beta/"
    upstream.clear_faults()
    upstream.raw_page("beta", b"<a href='../../etc/passwd'>x</a>", "text/html", serial=7)
    raw = get_page(upstream, "beta")
    assert raw.content == b"<a href='../../etc/passwd'>x</a>"
    assert raw.headers["X-PyPI-Last-Serial"] == "7"


def test_random_faults_are_reproducible(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    def run() -> list[tuple[str, str]]:
        upstream.reset_requests()
        upstream.set_random_faults(42, error_rate=0.3, stale_rate=0.3)
        for _ in range(20):
            get_page(upstream, "alpha-lib")
        return list(upstream.fault_log)

    first = run()
    assert first == run()
    kinds = {kind for kind, _ in first}
    assert "stale" in kinds and any(kind.startswith("random 5") for kind in kinds)


def test_bandwidth_and_latency_slow_responses(upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    upstream.add_file("big", "big-1.0.tar.gz", b"x" * 40_000)
    url = upstream.file_url(upstream.files("big")[0])
    upstream.bandwidth = 200_000
    upstream.latency = 0.05
    started = time.monotonic()
    assert len(requests.get(url, timeout=5).content) == 40_000
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------- distbuild


def test_wheel_is_valid_and_record_verifies() -> None:
    filename, data, metadata = distbuild.make_wheel(
        "Foo.Bar", "1.0", requires=["alpha-lib>=1"], requires_python=">=3.8"
    )
    assert filename == "foo_bar-1.0-py3-none-any.whl"
    assert (
        distbuild.make_wheel("Foo.Bar", "1.0", requires=["alpha-lib>=1"], requires_python=">=3.8")[1] == data
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.read("foo_bar-1.0.dist-info/METADATA") == metadata
        record = archive.read("foo_bar-1.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                continue
            content = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(content)
        assert set(archive.namelist()) == {p.rsplit(",", 2)[0] for p in record}
    assert b"Requires-Dist: alpha-lib>=1" in metadata and b"Requires-Python: >=3.8" in metadata


def test_sdist_builds_offline_with_in_tree_backend(tmp_path: Path) -> None:
    filename, data = distbuild.make_sdist("Foo.Bar", "1.0", requires=["alpha-lib"])
    assert filename == "foo_bar-1.0.tar.gz"
    assert distbuild.make_sdist("Foo.Bar", "1.0", requires=["alpha-lib"])[1] == data
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(tmp_path, filter="data")
    source = tmp_path / "foo_bar-1.0"
    out = tmp_path / "out"
    out.mkdir()
    script = (
        "import sys; sys.path.insert(0, '.'); import backend, json; "
        "print(json.dumps([backend.get_requires_for_build_wheel(), "
        "backend.prepare_metadata_for_build_wheel(sys.argv[1]), backend.build_wheel(sys.argv[1])]))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    requires, dist_info, wheel = json.loads(result.stdout)
    assert requires == [] and dist_info == "foo_bar-1.0.dist-info"
    assert b"Requires-Dist: alpha-lib" in (out / dist_info / "METADATA").read_bytes()
    with zipfile.ZipFile(out / wheel) as archive:
        assert "foo_bar/__init__.py" in archive.namelist()


# ----------------------------------------------------------- static server


def test_static_server_serves_a_mirror_tree(tmp_path: Path) -> None:
    project = tmp_path / "simple" / "ünï"
    project.mkdir(parents=True)
    (project / "index.html").write_text("<html>html</html>")
    (project / "index.v1_json").write_text('{"json": true}')
    (tmp_path / "secret.txt").write_text("top")
    with serve_web(tmp_path / "simple") as url:
        base = f"{url}/%C3%BCn%C3%AF"
        as_json = requests.get(base + "/", headers={"Accept": PIP_ACCEPT, "User-Agent": "t/1"}, timeout=5)
        assert as_json.headers["Content-Type"] == SIMPLE_JSON and as_json.json() == {"json": True}
        as_html = requests.get(base + "/", timeout=5)
        assert as_html.headers["Content-Type"].startswith("text/html") and as_html.text == "<html>html</html>"
        moved = requests.get(base, allow_redirects=False, timeout=5)
        assert moved.status_code == 301 and moved.headers["Location"].endswith("/")
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
        connection.request("GET", "/../secret.txt")
        assert connection.getresponse().status in (403, 404)
        assert url.requests[0].user_agent == "t/1" and url.requests[0].status == 200


def test_an_external_file_is_listed_with_its_size_and_sha256_but_not_served(upstream: Upstream) -> None:
    # For benchmarks: gigabytes of files that nginx serves from disk, never held by the fake.
    entry = upstream.add_external_file("big", "big-1.0.tar.gz", size=5 << 30, sha256="ab" * 32)
    page = requests.get(f"{upstream.url}/simple/big/", headers={"Accept": SIMPLE_JSON}, timeout=10).json()
    assert [(f["filename"], f["size"], f["hashes"]) for f in page["files"]] == [
        ("big-1.0.tar.gz", 5 << 30, {"sha256": "ab" * 32})]
    assert page["files"][0]["url"].endswith(entry.path) and entry.path.startswith("/packages/ab/ab/")
    assert requests.get(upstream.url + entry.path, timeout=10).status_code == 404
