"""Specification of simple-page parsing (PEP 503 HTML, PEP 691 JSON) on realistic saved pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bandersnatch.errors import UpstreamError
from bandersnatch.formats.simple import (
    DistFile,
    ProjectPage,
    ProjectStatus,
    check_api_version,
    check_provenance,
    parse_html_page,
    parse_json_page,
)

DATA = Path(__file__).parent.parent / "data"
PYPI_PAGE = "https://pypi.org/simple/example-pkg/"
FILES = "https://files.pythonhosted.org/packages"

SDIST_100 = DistFile(
    filename="example_pkg-1.0.0.tar.gz",
    url=f"{FILES}/33/11/2ee14ee469c3eb52fe90322ec81dd404a0093d565a6d71ce77cbc8124e3b/example_pkg-1.0.0.tar.gz",
    hashes={"sha256": "714772a9f82b2aeb4fa5f7092d00fe4ac4c9cdeb6800840b6ed39ea64c4d785a"},
    requires_python=">=3.8",
    size=48213,
    upload_time="2023-05-02T14:31:07.261416Z",
)
WHEEL_100 = DistFile(
    filename="example_pkg-1.0.0-py3-none-any.whl",
    url=f"{FILES}/f9/98/fe06afa0cfbe73e0449dc2b1698309e1b5714960f027b2858312b152c275/"
    "example_pkg-1.0.0-py3-none-any.whl",
    hashes={"sha256": "ba59926159d2aa256eb8739b8da7e2b574b960e1202c6d624cbe981cef996c91"},
    requires_python=">=3.8",
    core_metadata={"sha256": "4a29ebb7b2af76679028ff9bd41fa145e10df1c2f45a31aa09b73f538a202ccb"},
    size=12877,
    upload_time="2023-05-02T14:31:05.018972Z",
)
WHEEL_110 = DistFile(
    filename="example_pkg-1.1.0-py3-none-any.whl",
    url=f"{FILES}/97/fb/5f8538b89f6c1accfd19836b65a73b61fbc2e0cbf84bb858a0fffa3f1592/"
    "example_pkg-1.1.0-py3-none-any.whl",
    hashes={"sha256": "0451babfbf4a29781694e402a6ed067a2d6beebc50654415b2afc91e3dd2eca1"},
    requires_python=">=3.9",
    yanked="Broken on Python 3.9: use 1.1.1",
    core_metadata={"sha256": "ff062af048e75aa9f00d9f484af5716c1dfe8a74cea72f09202d0fffd6e926dd"},
    size=13012,
    upload_time="2023-09-18T08:02:44.907531Z",
)
SDIST_111 = DistFile(
    filename="example_pkg-1.1.1.tar.gz",
    url=f"{FILES}/e9/59/0c04cea54beb769a96148583176605389b3a3809162f2fd6392b43fb8382/example_pkg-1.1.1.tar.gz",
    hashes={"sha256": "e9590c04cea54beb769a96148583176605389b3a3809162f2fd6392b43fb8382"},
    requires_python=None,
    yanked=True,
    size=49870,
    upload_time="2023-09-19T10:12:00.000000Z",
)


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ---------------------------------------------------------------- PEP 691 JSON


def test_pep691_page_parses_every_field() -> None:
    page = parse_json_page(data("pep691_example_pkg.json"), PYPI_PAGE)
    assert page == ProjectPage(
        name="example-pkg",
        files=(SDIST_100, WHEEL_100, WHEEL_110, SDIST_111),
        last_serial=18233615,
        versions=("1.0.0", "1.1.0", "1.1.1"),
    )


def test_older_json_with_only_dist_info_metadata_and_relative_urls() -> None:
    page_url = "https://mirror.example.org/simple/legacy-lib/"
    page = parse_json_page(data("pep691_legacy_dist_info.json"), page_url)
    assert page.name == "legacy-lib"
    assert page.last_serial is None
    assert page.versions is None
    wheel, sdist, old = page.files
    base = "https://mirror.example.org/packages"
    assert wheel == DistFile(
        filename="legacy_lib-0.3-py2.py3-none-any.whl",
        url=f"{base}/ec/d9/5a3f8e1191647566babdd2bd209a8c7a47a6380a8654b8dbf60451814da8/"
        "legacy_lib-0.3-py2.py3-none-any.whl",
        hashes={"sha256": "ecd95a3f8e1191647566babdd2bd209a8c7a47a6380a8654b8dbf60451814da8"},
        requires_python=">=2.7, !=3.0.*, !=3.1.*",
        core_metadata={"sha256": "23c47e2b8bfa367bafc1b2b0e86c5f0763003e9cf4d469b2ca7de198b548d90c"},
    )
    assert sdist.url == (
        f"{base}/1a/eb/7d10224882eb56b1ba904a780466aeb773e5c6689bffbddc2e820acf376c/legacy_lib-0.3.tar.gz"
    )
    assert sdist.hashes == {
        "sha256": "1aeb7d10224882eb56b1ba904a780466aeb773e5c6689bffbddc2e820acf376c",
        "md5": "ce1f884db8a042b6670f967f655725e2",
    }
    assert sdist.core_metadata is False
    assert sdist.yanked is False
    assert old.core_metadata is True
    assert old.url.startswith("https://mirror.example.org/packages/33/11/")


def test_core_metadata_key_wins_over_dist_info_metadata() -> None:
    doc = {
        "name": "p",
        "files": [{
            "filename": "p-1-py3-none-any.whl", "url": "https://h/p-1-py3-none-any.whl", "hashes": {},
            "core-metadata": {"sha256": "aa"}, "dist-info-metadata": True,
        }],
    }
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    assert page.files[0].core_metadata == {"sha256": "aa"}


def test_json_name_is_normalized_and_optional_keys_default() -> None:
    doc = {"name": "Foo.Bar", "files": [{"filename": "f.zip", "url": "f.zip"}]}
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/foo-bar/")
    assert page.name == "foo-bar"
    assert page.files == (DistFile(filename="f.zip", url="https://h/simple/foo-bar/f.zip"),)
    assert page.last_serial is None


@pytest.mark.parametrize(
    "meta",
    [{"_last-serial": "5"}, {"_last-serial": True}, {"_last-serial": 1.5}, {"_last-serial": None}, [], "x"],
)
def test_unusable_last_serial_is_ignored(meta: Any) -> None:
    doc = {"meta": meta, "name": "p", "files": []}
    assert parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/").last_serial is None


def _json_file(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": "p-1.tar.gz", "url": "https://h/p-1.tar.gz", "hashes": {"sha256": "ab"},
    }
    entry.update(overrides)
    return entry


MALFORMED_JSON = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b"<html>not json</html>", id="html"),
    pytest.param(b"\xff\xfe\x00\x00", id="not-utf"),
    pytest.param(b"[]", id="top-level-list"),
    pytest.param(b'"files"', id="top-level-string"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"name": "p"}', id="no-files"),
    pytest.param(b'{"name": "p", "files": {}}', id="files-an-object"),
    pytest.param(b'{"name": "p", "files": "a.tar.gz"}', id="files-a-string"),
    pytest.param(b'{"files": []}', id="no-name"),
    pytest.param(b'{"name": 5, "files": []}', id="name-not-string"),
    pytest.param(b'{"name": "p", "files": [], "versions": "1.0"}', id="versions-a-string"),
    pytest.param(b'{"name": "p", "files": [], "versions": [1.0]}', id="versions-not-strings"),
    pytest.param(b'{"name": "p", "files": ["p-1.tar.gz"]}', id="file-a-string"),
    pytest.param(b'{"name": "p", "files": [null]}', id="file-null"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested-list"),
    pytest.param(
        b'{"name": "p", "files": [' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"]}",
        id="deeply-nested-file",
    ),
]


@pytest.mark.parametrize("raw", MALFORMED_JSON)
def test_malformed_json_page_raises_upstream_error(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse_json_page(raw, "https://h/simple/p/")


BAD_FILES = [
    pytest.param({"filename": None}, id="filename-null"),
    pytest.param({"filename": 1}, id="filename-int"),
    pytest.param({"url": None}, id="url-null"),
    pytest.param({"url": ["x"]}, id="url-list"),
    pytest.param({"hashes": None}, id="hashes-null"),
    pytest.param({"hashes": ["sha256", "ab"]}, id="hashes-list"),
    pytest.param({"hashes": {"sha256": 12}}, id="hash-int"),
    pytest.param({"requires-python": 3}, id="requires-python-int"),
    pytest.param({"upload-time": 1700000000}, id="upload-time-int"),
    pytest.param({"yanked": None}, id="yanked-null"),
    pytest.param({"yanked": 1}, id="yanked-int"),
    pytest.param({"yanked": ["reason"]}, id="yanked-list"),
    pytest.param({"yanked": {"reason": "x"}}, id="yanked-object"),
    pytest.param({"size": -1}, id="negative-size"),
    pytest.param({"size": 1.5}, id="float-size"),
    pytest.param({"size": "100"}, id="string-size"),
    pytest.param({"size": True}, id="bool-size"),
    pytest.param({"core-metadata": "true"}, id="core-metadata-string"),
    pytest.param({"core-metadata": {"sha256": 1}}, id="core-metadata-hash-int"),
    pytest.param({"dist-info-metadata": ["sha256"]}, id="dist-info-metadata-list"),
    pytest.param({"url": "http://[::1/p-1.tar.gz"}, id="unparsable-url"),
]


@pytest.mark.parametrize("override", BAD_FILES)
def test_file_entry_of_wrong_type_raises_upstream_error(override: dict[str, Any]) -> None:
    doc = {"name": "p", "files": [_json_file(**override)]}
    with pytest.raises(UpstreamError):
        parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")


@pytest.mark.parametrize("missing", ["filename", "url"])
def test_file_entry_without_filename_or_url_raises_upstream_error(missing: str) -> None:
    entry = _json_file()
    del entry[missing]
    with pytest.raises(UpstreamError):
        parse_json_page(json.dumps({"name": "p", "files": [entry]}).encode(), "https://h/simple/p/")


@pytest.mark.parametrize(
    ("field", "value"),
    [("yanked", False), ("yanked", True), ("yanked", "reason"), ("size", 0), ("size", 2**40)],
)
def test_file_entry_accepts_every_legal_type(field: str, value: Any) -> None:
    doc = {"name": "p", "files": [_json_file(**{field: value})]}
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    assert getattr(page.files[0], field) == value


@pytest.mark.parametrize(
    ("url", "absolute"),
    [
        ("https://files.example/packages/x.tar.gz", "https://files.example/packages/x.tar.gz"),
        ("https://files.example/x.tar.gz#sha256=ab", "https://files.example/x.tar.gz"),
        ("../../packages/x.tar.gz", "https://h/packages/x.tar.gz"),
        ("/packages/x.tar.gz", "https://h/packages/x.tar.gz"),
        ("x.tar.gz#md5=00", "https://h/simple/p/x.tar.gz"),
        ("//cdn.example/x.tar.gz", "https://cdn.example/x.tar.gz"),
    ],
)
def test_json_file_urls_come_back_absolute_without_fragment(url: str, absolute: str) -> None:
    doc = {"name": "p", "files": [_json_file(url=url)]}
    assert parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/").files[0].url == absolute


def test_hash_names_and_digests_are_lowercased() -> None:
    doc = {"name": "p", "files": [_json_file(hashes={"SHA256": "ABCDEF"})]}
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    assert page.files[0].hashes == {"sha256": "abcdef"}


# ---------------------------------------------------------------- PEP 503 HTML


def test_pep503_page_with_base_href_fragments_and_data_attributes() -> None:
    page = parse_html_page(data("pep503_example_pkg.html"), PYPI_PAGE, "Example_Pkg")
    assert page.name == "example-pkg"
    assert page.last_serial is None
    assert page.versions is None
    html_only = {"size": None, "upload_time": None}
    sdist, wheel, yanked_wheel, yanked_sdist, old_zip = page.files
    assert sdist == DistFile(**{**SDIST_100.__dict__, **html_only})
    assert wheel == DistFile(**{**WHEEL_100.__dict__, **html_only})
    assert yanked_wheel == DistFile(**{
        **WHEEL_110.__dict__, **html_only,
        # relative to <base href>, not to the page
        "url": "https://files.example.org/repo/packages/97/fb/5f8538b89f6c1accfd19836b65a73b61fbc2e0cbf84bb858a0fffa3f1592/"
        "example_pkg-1.1.0-py3-none-any.whl",
        "requires_python": ">=3.9,<4",
    })
    assert yanked_sdist == DistFile(
        filename="example_pkg-1.1.1.tar.gz",
        url="https://files.example.org/other/example_pkg-1.1.1.tar.gz",
        hashes={"sha256": "e9590c04cea54beb769a96148583176605389b3a3809162f2fd6392b43fb8382"},
        yanked=True,
    )
    assert old_zip == DistFile(
        filename="example_pkg-0.9.zip",
        url="https://files.example.org/packages/0d/09/071383fdbb0ff573829fe7b61143/example_pkg-0.9.zip",
        yanked=True,
        core_metadata=True,
    )


def test_devpi_like_page_with_md5_fragments_and_relative_links() -> None:
    page_url = "https://devpi.example.org/root/pypi/+simple/devpi-demo/"
    page = parse_html_page(data("devpi_demo.html"), page_url, "devpi-demo")
    assert [(f.filename, f.url, f.hashes) for f in page.files] == [
        (
            "devpi_demo-0.2.tar.gz",
            "https://devpi.example.org/root/pypi/+f/515/fdf0b1400eb5c/devpi_demo-0.2.tar.gz",
            {"md5": "515fdf0b1400eb5c75beab724c2f907d"},
        ),
        (
            "devpi_demo-0.1-py2.py3-none-any.whl",
            "https://devpi.example.org/root/pypi/+f/b4d/25be13907e0b7/devpi_demo-0.1-py2.py3-none-any.whl",
            {"md5": "b4d25be13907e0b7d62696bbd74e8630"},
        ),
        (
            "devpi-demo-0.0.1.zip",
            "https://devpi.example.org/root/pypi/+e/https_github.com_devpi_devpi-demo/devpi-demo-0.0.1.zip",
            {},
        ),
    ]
    assert all(f.yanked is False and f.core_metadata is False for f in page.files)


def _anchor_page(anchor: str) -> bytes:
    return f"<!DOCTYPE html><html><body>{anchor}</body></html>".encode()


@pytest.mark.parametrize(
    ("attrs", "field", "expected"),
    [
        ("", "yanked", False),
        ('data-yanked=""', "yanked", True),
        ("data-yanked", "yanked", True),
        ('data-yanked="security issue &amp; more"', "yanked", "security issue & more"),
        ("", "core_metadata", False),
        ('data-dist-info-metadata="true"', "core_metadata", True),
        ('data-core-metadata="true"', "core_metadata", True),
        ('data-core-metadata="sha256=ABCD"', "core_metadata", {"sha256": "abcd"}),
        ('data-dist-info-metadata="sha256=ab"', "core_metadata", {"sha256": "ab"}),
        (
            'data-core-metadata="sha256=cd" data-dist-info-metadata="sha256=ab"', "core_metadata",
            {"sha256": "cd"},
        ),
        ('data-core-metadata="false"', "core_metadata", False),
        ('data-requires-python="&gt;=3.7,&lt;4,!=3.8.*"', "requires_python", ">=3.7,<4,!=3.8.*"),
        ('data-requires-python=">=3"', "requires_python", ">=3"),
        ("", "requires_python", None),
    ],
)
def test_html_data_attributes(attrs: str, field: str, expected: object) -> None:
    raw = _anchor_page(f'<a href="p-1.tar.gz" {attrs}>p-1.tar.gz</a>')
    page = parse_html_page(raw, "https://h/simple/p/", "p")
    assert getattr(page.files[0], field) == expected


@pytest.mark.parametrize(
    ("href", "url", "hashes"),
    [
        ("p-1.tar.gz", "https://h/simple/p/p-1.tar.gz", {}),
        ("  p-1.tar.gz  ", "https://h/simple/p/p-1.tar.gz", {}),
        ("../../packages/p-1.tar.gz#sha256=AB", "https://h/packages/p-1.tar.gz", {"sha256": "ab"}),
        ("/packages/p-1.tar.gz#sha512=cd", "https://h/packages/p-1.tar.gz", {"sha512": "cd"}),
        ("https://other/p-1.tar.gz#", "https://other/p-1.tar.gz", {}),
        ("https://other/p-1.tar.gz#sha256=", "https://other/p-1.tar.gz", {}),
        ("https://other/p-1.tar.gz?x=1#sha256=ef", "https://other/p-1.tar.gz?x=1", {"sha256": "ef"}),
    ],
)
def test_html_urls_come_back_absolute_without_fragment(href: str, url: str, hashes: dict[str, str]) -> None:
    page = parse_html_page(_anchor_page(f'<a href="{href}">p-1.tar.gz</a>'), "https://h/simple/p/", "p")
    assert (page.files[0].url, page.files[0].hashes) == (url, hashes)


def test_anchors_without_href_are_skipped() -> None:
    page = parse_html_page(
        _anchor_page('<a name="top">top</a><a href="">empty</a><a href="p-1.zip">p-1.zip</a>'),
        "https://h/simple/p/", "p",
    )
    assert [f.filename for f in page.files] == ["p-1.zip"]


def test_page_without_anchors_has_no_files() -> None:
    page = parse_html_page(b"<html><body><h1>Links for p</h1></body></html>", "https://h/simple/p/", "p")
    assert page.files == ()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'<a href="p-1.zip">p-\xff\xfe-1.zip</a>', id="invalid-utf8-text"),
        pytest.param(b'<a href="p-\xe9.zip" data-yanked="\xff">p-1.zip</a>', id="latin1-in-attributes"),
        pytest.param(b"\xff\xfe<a href=x>y</a>", id="utf16-bom-then-ascii"),
        pytest.param(b'<a href="x" data-yanked="&#xd800;">a&#0;b</a>', id="bad-char-refs"),
        pytest.param(b"\x00\x01\x02<a href=x>y</a>", id="control-bytes"),
        pytest.param(b"<div>" * 5000 + b'<a href="p-1.zip">p-1.zip</a>', id="deeply-nested"),
    ],
)
def test_hostile_html_bytes_do_not_crash(raw: bytes) -> None:
    try:
        page = parse_html_page(raw, "https://h/simple/p/", "p")
    except UpstreamError:
        return
    for f in page.files:
        assert isinstance(f.filename, str)
        assert f.url.startswith("https://")
        assert "#" not in f.url
        f.filename.encode("utf-8")  # nothing unencodable reaches our own pages


@pytest.mark.parametrize("raw", [b"", b"   \n", b"<!-- only a comment -->"])
def test_empty_html_page_raises_upstream_error_or_has_no_files(raw: bytes) -> None:
    try:
        page = parse_html_page(raw, "https://h/simple/p/", "p")
    except UpstreamError:
        return
    assert page.files == ()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'<a href="http://[::1/p-1.zip">p-1.zip</a>', id="unparsable-href"),
        pytest.param(b'<base href="http://[oops/"><a href="p-1.zip">p-1.zip</a>', id="unparsable-base"),
    ],
)
def test_unparsable_urls_in_html_raise_upstream_error(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse_html_page(raw, "https://h/simple/p/", "p")


def test_html_name_is_the_normalized_requested_name() -> None:
    assert parse_html_page(_anchor_page(""), "https://h/simple/a-b/", "A_B").name == "a-b"


# ---------------------------------------------------------------- Simple API 1.4 (PEP 740, 792, 629)

ARCHIVED_PAGE = "https://pypi.org/simple/archived-pkg/"
ARCHIVED = ProjectStatus("archived", "Superseded by new-pkg; no further releases.")
ARCHIVED_SDIST_PROVENANCE = "https://pypi.org/integrity/archived-pkg/2.0.0/archived_pkg-2.0.0.tar.gz/provenance"


def test_pep691_v14_page_carries_project_status_and_provenance() -> None:
    page = parse_json_page(data("pep691_v14_archived_pkg.json"), ARCHIVED_PAGE)
    assert page.name == "archived-pkg"
    assert page.status == ARCHIVED
    assert not page.status.quarantined
    sdist, wheel = page.files
    assert sdist.provenance == ARCHIVED_SDIST_PROVENANCE
    assert wheel.provenance is None  # "provenance": null


def test_pep503_v14_page_carries_project_status_and_provenance() -> None:
    page = parse_html_page(data("pep503_v14_archived_pkg.html"), ARCHIVED_PAGE, "archived-pkg")
    assert page.status == ARCHIVED
    assert [f.provenance for f in page.files] == [ARCHIVED_SDIST_PROVENANCE, None]


def test_pages_without_status_have_none_and_status_without_reason_has_no_reason() -> None:
    assert parse_json_page(data("pep691_example_pkg.json"), PYPI_PAGE).status is None
    assert parse_html_page(data("pep503_example_pkg.html"), PYPI_PAGE, "example-pkg").status is None
    doc = {"name": "p", "files": [], "project-status": {"status": "quarantined"}}
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    assert page.status == ProjectStatus("quarantined")
    assert page.status.quarantined
    html = b'<meta name="pypi:project-status" content="quarantined"><a href="p-1.zip">p-1.zip</a>'
    assert parse_html_page(html, "https://h/simple/p/", "p").status == ProjectStatus("quarantined")


def test_json_status_object_without_status_is_active() -> None:
    doc = {"name": "p", "files": [], "project-status": {}}
    assert parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/").status == ProjectStatus("active")


def test_relative_provenance_urls_come_back_absolute() -> None:
    doc = {"name": "p", "files": [_json_file(provenance="../../integrity/p-1.tar.gz/provenance")]}
    page = parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    assert page.files[0].provenance == "https://h/integrity/p-1.tar.gz/provenance"
    html = b'<a href="p-1.zip" data-provenance="p-1.zip.provenance">p-1.zip</a>'
    provenance = parse_html_page(html, "https://h/simple/p/", "p").files[0].provenance
    assert provenance == "https://h/simple/p/p-1.zip.provenance"


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"name": "p", "files": [], "project-status": "archived"}, id="status-a-string"),
        pytest.param({"name": "p", "files": [], "project-status": {"status": 1}}, id="status-not-string"),
        pytest.param({"name": "p", "files": [], "project-status": {"status": "archived", "reason": []}},
                     id="reason-not-string"),
        pytest.param({"name": "p", "files": [_json_file(provenance=5)]}, id="provenance-not-string"),
    ],
)
def test_malformed_v14_fields_raise_upstream_error(doc: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError):
        parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")


@pytest.mark.parametrize("version", [None, "1.0", "1.1", "1.4", "1.99", "01.4", " 1.4 "])
def test_api_versions_of_major_1_are_read(version: str | None) -> None:
    check_api_version(version, "https://h/simple/p/")


@pytest.mark.parametrize("version", ["2.0", "3.1", "10.0", "0002.0", "9" * 5000 + ".0"])
def test_api_major_version_above_1_is_refused_with_a_clear_error(version: str) -> None:
    doc = {"meta": {"api-version": version}, "name": "p", "files": []}
    with pytest.raises(UpstreamError, match="is not supported .*reads 1.x.*upgrade") as json_error:
        parse_json_page(json.dumps(doc).encode(), "https://h/simple/p/")
    html = f'<meta name="pypi:repository-version" content="{version}"><a href="p-1.zip">p-1.zip</a>'.encode()
    with pytest.raises(UpstreamError, match="is not supported") as html_error:
        parse_html_page(html, "https://h/simple/p/", "p")
    for error in (json_error, html_error):
        assert "\n" not in str(error.value) and len(str(error.value)) < 300


@pytest.mark.parametrize("version", [1.4, 2, "", "two", "1", "1.", ".4", "1.4.1", "v1.4", "1.x"])
def test_api_version_that_is_not_major_minor_is_refused(version: Any) -> None:
    with pytest.raises(UpstreamError, match="is not MAJOR.MINOR"):
        check_api_version(version, "https://h/simple/p/")


@pytest.mark.parametrize("raw", [b'{"version": 1, "attestation_bundles": []}', b"{}"])
def test_well_formed_provenance_is_accepted(raw: bytes) -> None:
    check_provenance(raw, "p-1.tar.gz")


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b"<html></html>"],
)
def test_malformed_provenance_raises_upstream_error(raw: bytes) -> None:
    with pytest.raises(UpstreamError, match="malformed provenance"):
        check_provenance(raw, "p-1.tar.gz")
