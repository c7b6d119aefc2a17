"""Specification of the pages we serve: PEP 503/592/629/658/691/700/714, and HTML escaping."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import lxml.etree
import lxml.html
import pytest
from support.pages import render_root_html, render_root_json, root_names

from bandersnatch.formats.dists import version_text
from bandersnatch.formats.simple import (
    API_VERSION,
    DistFile,
    ProjectPage,
    ProjectStatus,
    parse_html_page,
    parse_json_page,
    render_project_html,
    render_project_json,
    root_json_line_entry,
)

DATA = Path(__file__).parent.parent / "data"
PYPI_PAGE = "https://pypi.org/simple/example-pkg/"
MIRROR_PAGE = "https://mirror.example.org/simple/example-pkg/"
SHA = "714772a9f82b2aeb4fa5f7092d00fe4ac4c9cdeb6800840b6ed39ea64c4d785a"
META_SHA = "4a29ebb7b2af76679028ff9bd41fa145e10df1c2f45a31aa09b73f538a202ccb"
HOSTILE = '"><script>alert(1)</script>&amp;&'


def upstream_page() -> ProjectPage:
    return parse_json_page((DATA / "pep691_example_pkg.json").read_bytes(), PYPI_PAGE)


def mirrored(filename: str = "p-1.0.tar.gz", **fields: Any) -> DistFile:
    """A file as package.py hands it to the renderer: relative href, sha256 and size known."""
    base: dict[str, Any] = {
        "filename": filename,
        "url": f"../../packages/ab/cd/{filename}",
        "hashes": {"sha256": SHA},
        "size": 1234,
    }
    base.update(fields)
    return DistFile(**base)


def page_of(*files: DistFile, versions: tuple[str, ...] | None = None, name: str = "p") -> ProjectPage:
    return ProjectPage(name=name, files=files, versions=versions)


def json_files(page: ProjectPage) -> list[dict[str, Any]]:
    return json.loads(render_project_json(page, 1))["files"]  # type: ignore[no-any-return]


def elements(doc: lxml.etree._Element, path: str) -> list[lxml.html.HtmlElement]:
    """What ``doc.xpath(path)`` selects, for a path that selects elements (lxml's stubs cannot tell)."""
    return cast("list[lxml.html.HtmlElement]", doc.xpath(path))


def anchors(html: bytes) -> list[lxml.html.HtmlElement]:
    return elements(lxml.html.document_fromstring(html), "//a")


# ---------------------------------------------------------------- JSON (PEP 691, 700, 714)


def test_json_round_trip_gives_the_same_page() -> None:
    page = upstream_page()
    again = parse_json_page(render_project_json(page, 18233615), PYPI_PAGE)
    assert again == page


def test_json_round_trip_of_mirrored_files_resolves_relative_urls() -> None:
    page = page_of(
        mirrored("p-1.0.tar.gz", yanked="bad", requires_python=">=3.8"),
        mirrored("p-1.0-py3-none-any.whl", core_metadata={"sha256": META_SHA}, upload_time="2024-01-01"),
    )
    again = parse_json_page(render_project_json(page, 7), "https://mirror.example.org/simple/p/")
    assert again.files == tuple(
        replace(f, url="https://mirror.example.org/packages/ab/cd/" + f.filename) for f in page.files
    )
    assert again.last_serial == 7


def test_json_meta_declares_api_version_1_4_and_serial() -> None:
    doc = json.loads(render_project_json(page_of(), 42))
    assert API_VERSION == "1.4"
    assert doc["meta"] == {"api-version": "1.4", "_last-serial": 42}
    assert doc["name"] == "p"
    assert doc["files"] == []
    assert doc["versions"] == []


def test_json_keeps_upstream_versions_verbatim() -> None:
    doc = json.loads(render_project_json(upstream_page(), 1))
    assert doc["versions"] == ["1.0.0", "1.1.0", "1.1.1"]


def test_json_versions_includes_versions_without_files() -> None:
    page = page_of(mirrored("p-2.0.tar.gz"), versions=("1.0", "2.0"))
    assert json.loads(render_project_json(page, 1))["versions"] == ["1.0", "2.0"]


def test_json_versions_derived_from_filenames_when_upstream_gave_none() -> None:
    page = page_of(
        mirrored("p-1.0.tar.gz"),
        mirrored("p-1.0-py3-none-any.whl"),
        mirrored("p-2.0rc1.zip"),
        mirrored("p-0.9-py2.7.egg"),
        mirrored("p-3.0.deb"),
        mirrored("README.txt"),
    )
    assert json.loads(render_project_json(page, 1))["versions"] == ["0.9", "1.0", "2.0rc1"]


def test_json_versions_derived_from_filenames_are_in_version_order_and_normal_form() -> None:
    page = page_of(
        mirrored("p-10.0.tar.gz"),
        mirrored("p-9.0-py3-none-any.whl"),
        mirrored("p-1.0RC1.zip"),
        mirrored("p-1.0.tar.gz"),
        mirrored("p-1.0.0-py3-none-any.whl"),
    )
    assert json.loads(render_project_json(page, 1))["versions"] == ["1.0rc1", "1.0", "9.0", "10.0"]


def test_json_file_entry_for_a_plain_file_has_exactly_the_required_keys() -> None:
    (entry,) = json_files(page_of(mirrored(size=None)))
    assert entry == {
        "filename": "p-1.0.tar.gz",
        "url": "../../packages/ab/cd/p-1.0.tar.gz",
        "hashes": {"sha256": SHA},
        "yanked": False,
        "core-metadata": False,
    }


@pytest.mark.parametrize(
    ("fields", "key", "value"),
    [
        ({"requires_python": ">=3.8"}, "requires-python", ">=3.8"),
        ({"requires_python": ""}, "requires-python", ""),
        ({"yanked": True}, "yanked", True),
        ({"yanked": "broken build"}, "yanked", "broken build"),
        ({"core_metadata": True}, "core-metadata", True),
        ({"core_metadata": {"sha256": META_SHA}}, "core-metadata", {"sha256": META_SHA}),
        ({"size": 0}, "size", 0),
        ({"size": 1234}, "size", 1234),
        ({"upload_time": "2023-05-02T14:31:07.261416Z"}, "upload-time", "2023-05-02T14:31:07.261416Z"),
    ],
)
def test_json_optional_keys_appear_when_set(fields: dict[str, Any], key: str, value: Any) -> None:
    (entry,) = json_files(page_of(mirrored(**fields)))
    assert entry[key] == value


@pytest.mark.parametrize(
    ("fields", "key"), [({}, "requires-python"), ({"size": None}, "size"), ({}, "upload-time")]
)
def test_json_optional_keys_are_absent_when_unknown(fields: dict[str, Any], key: str) -> None:
    (entry,) = json_files(page_of(mirrored(**fields)))
    assert key not in entry


@pytest.mark.parametrize("metadata", [False, True, {"sha256": META_SHA}])
def test_json_never_emits_the_pre_pep714_dist_info_metadata_key(metadata: Any) -> None:
    # pip 22.3 to 23.1 crash on any "dist-info-metadata" value in JSON (PEP 714).
    (entry,) = json_files(page_of(mirrored(core_metadata=metadata)))
    assert "dist-info-metadata" not in entry
    assert "data-dist-info-metadata" not in entry


def test_json_is_utf8_without_ascii_escapes() -> None:
    raw = render_project_json(page_of(mirrored("p-1.0.tar.gz", yanked="café ☕")), 1)
    assert "café ☕".encode() in raw
    assert json.loads(raw)["files"][0]["yanked"] == "café ☕"


def test_lone_surrogates_from_upstream_json_still_render_valid_utf8() -> None:
    upstream = (
        b'{"name": "p", "files": [{"filename": "p-1.0.tar.gz", "url": "https://h/p-1.0.tar.gz",'
        b' "hashes": {}, "yanked": "bad \\ud800 reason", "requires-python": ">=3\\udfff"}]}'
    )
    page = parse_json_page(upstream, "https://h/simple/p/")
    for raw in (render_project_json(page, 1), render_project_html(page, 1)):
        raw.decode("utf-8")  # strict: no UnicodeEncodeError on the way out, no invalid bytes in
    again = parse_json_page(render_project_json(page, 1), "https://h/simple/p/")
    assert again.files[0].yanked == "bad ? reason"


# ---------------------------------------------------------------- version_from_filename


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        ("requests-2.31.0.tar.gz", "requests", "2.31.0"),
        ("requests-2.31.0-py3-none-any.whl", "requests", "2.31.0"),
        ("my-project-1.0.tar.gz", "my-project", "1.0"),
        ("my_project-1.0.tar.gz", "my-project", "1.0"),
        ("My.Project-1.0rc1.zip", "my-project", "1.0rc1"),
        ("foo-bar-baz-2.0.post1.tar.bz2", "foo-bar-baz", "2.0.post1"),
        ("zope.interface-6.0.tar.xz", "zope-interface", "6.0"),
        ("pkg-1.0.tgz", "pkg", "1.0"),
        ("my_project-1.0-py3-none-any.whl", "my-project", "1.0"),
        ("pkg-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl", "pkg", "1.0"),
        ("numpy-1.26.0-cp312-cp312-win_amd64.whl", "numpy", "1.26.0"),
        ("pkg-1.0-py2.7.egg", "pkg", "1.0"),
        ("pkg-1.0-py3.11-linux-x86_64.egg", "pkg", "1.0"),
        ("pkg-1.0.egg", "pkg", "1.0"),
        ("pkg-1!2.0+local.tar.gz", "pkg", "1!2.0+local"),
        ("pkg-1.0.deb", "pkg", None),
        ("pkg-1.0.tar", "pkg", "1.0"),  # an uncompressed sdist, rare but on PyPI
        ("pkg-1.0.tar.gz.asc", "pkg", None),
        ("README", "pkg", None),
        ("other-1.0.tar.gz", "pkg", None),
        ("pkg.tar.gz", "pkg", None),
        ("pkg-.tar.gz", "pkg", None),
        ("pkg-1.0-py3-none.whl", "pkg", None),
        ("bad.whl", "pkg", None),
    ],
)
def test_version_from_filename(filename: str, project: str, version: str | None) -> None:
    assert version_text(filename, project) == version


# ---------------------------------------------------------------- HTML (PEP 503, 592, 629, 658, 714)


def test_html_declares_repository_version_1_4_and_title() -> None:
    doc = lxml.html.document_fromstring(render_project_html(page_of(name="example-pkg"), 5))
    assert doc.xpath('//meta[@name="pypi:repository-version"]/@content') == ["1.4"]
    assert doc.findtext(".//title") == "Links for example-pkg"
    assert doc.findtext(".//h1") == "Links for example-pkg"


@pytest.mark.parametrize(("serial", "comment"), [(5, b"<!--SERIAL 5-->"), (None, None)])
def test_html_serial_comment_only_with_a_serial(serial: int | None, comment: bytes | None) -> None:
    raw = render_project_html(page_of(), serial)
    if comment is None:
        assert b"SERIAL" not in raw
    else:
        assert comment in raw


def test_html_anchor_for_a_plain_file_has_href_with_sha256_and_nothing_else() -> None:
    (a,) = anchors(render_project_html(page_of(mirrored()), 1))
    assert dict(a.attrib) == {"href": f"../../packages/ab/cd/p-1.0.tar.gz#sha256={SHA}"}
    assert a.text == "p-1.0.tar.gz"


def test_html_href_has_no_fragment_without_sha256() -> None:
    (a,) = anchors(render_project_html(page_of(mirrored(hashes={"md5": "00"})), 1))
    assert a.get("href") == "../../packages/ab/cd/p-1.0.tar.gz"


@pytest.mark.parametrize(
    ("yanked", "attribute"),
    [(False, None), (True, ""), ("", ""), ("broken build", "broken build")],
)
def test_html_data_yanked_exactly_when_yanked(yanked: bool | str, attribute: str | None) -> None:
    (a,) = anchors(render_project_html(page_of(mirrored(yanked=yanked)), 1))
    assert a.get("data-yanked") == attribute


@pytest.mark.parametrize(("requires", "attribute"), [(None, None), ("", ""), (">=3.8,<4", ">=3.8,<4")])
def test_html_data_requires_python_exactly_when_known(requires: str | None, attribute: str | None) -> None:
    raw = render_project_html(page_of(mirrored(requires_python=requires)), 1)
    (a,) = anchors(raw)
    assert a.get("data-requires-python") == attribute
    if requires:
        assert b'data-requires-python="&gt;=3.8,&lt;4"' in raw


@pytest.mark.parametrize(
    ("metadata", "attribute"),
    [
        (False, None),
        (True, "true"),
        ({"sha256": META_SHA}, f"sha256={META_SHA}"),
        ({"md5": "00"}, "true"),
    ],
)
def test_html_core_metadata_attributes_exactly_when_metadata_exists(
    metadata: Any, attribute: str | None
) -> None:
    (a,) = anchors(render_project_html(page_of(mirrored(core_metadata=metadata)), 1))
    assert a.get("data-core-metadata") == attribute
    # PEP 714: the legacy attribute may accompany the new one in HTML, and must then match it.
    assert a.get("data-dist-info-metadata") == attribute


def test_html_round_trip_through_our_own_parser() -> None:
    page = page_of(
        mirrored("p-1.0.tar.gz", requires_python=">=3.8"),
        mirrored("p-1.0-py3-none-any.whl", core_metadata={"sha256": META_SHA}, yanked="broken"),
        mirrored("p-0.9.zip", yanked=True, core_metadata=True),
    )
    again = parse_html_page(render_project_html(page, 3), "https://mirror.example.org/simple/p/", "p")
    base = "https://mirror.example.org/packages/ab/cd/"
    assert again.files == tuple(replace(f, url=base + f.filename, size=None) for f in page.files)


def test_html_round_trip_of_an_upstream_page() -> None:
    page = upstream_page()
    again = parse_html_page(render_project_html(page, 1), PYPI_PAGE, "example-pkg")
    assert again.files == tuple(replace(f, size=None, upload_time=None) for f in page.files)


# ---------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"filename": f"x{HOSTILE}.tar.gz"}, id="filename"),
        pytest.param({"requires_python": f">=3{HOSTILE}"}, id="requires-python"),
        pytest.param({"yanked": f"reason{HOSTILE}"}, id="yanked-reason"),
        pytest.param({"url": f"../../packages/x{HOSTILE}.tar.gz"}, id="url"),
        pytest.param({"hashes": {"sha256": f"ab{HOSTILE}"}}, id="hash"),
        pytest.param({"core_metadata": {"sha256": f"cd{HOSTILE}"}}, id="metadata-hash"),
        pytest.param(
            {"filename": "<a href='x'>&lt;</a>'\"", "yanked": "'single' \"double\" <>"}, id="quotes"
        ),
    ],
)
def test_hostile_strings_never_become_markup(fields: dict[str, Any]) -> None:
    f = replace(mirrored(), **fields)
    raw = render_project_html(page_of(f), 1)
    doc = lxml.html.document_fromstring(raw)
    assert doc.xpath("//script") == []
    (a,) = elements(doc, "//body//a")
    assert len(elements(doc, "//a")) == 1
    assert a.text_content() == f.filename
    assert a.get("href") == f.url + f"#sha256={f.hashes['sha256']}"
    assert a.get("data-requires-python") == f.requires_python
    assert a.get("data-yanked") == (f.yanked if isinstance(f.yanked, str) else None)
    if isinstance(f.core_metadata, dict):
        assert a.get("data-core-metadata") == f"sha256={f.core_metadata['sha256']}"
    # The same through our own parser.
    (parsed,) = parse_html_page(raw, "https://m/simple/p/", "p").files
    assert parsed.filename == f.filename
    assert parsed.requires_python == f.requires_python
    assert parsed.yanked == (f.yanked or False)


def test_hostile_strings_in_json_stay_strings() -> None:
    f = mirrored(f"x{HOSTILE}.tar.gz", requires_python=HOSTILE, yanked=HOSTILE)
    (entry,) = json_files(page_of(f))
    assert (entry["filename"], entry["requires-python"], entry["yanked"]) == (f.filename, HOSTILE, HOSTILE)


def test_root_html_escapes_names_and_hrefs() -> None:
    raw = render_root_html([("safe", "safe/"), (HOSTILE, f"{HOSTILE}/")], 9)
    doc = lxml.html.document_fromstring(raw)
    assert doc.xpath("//script") == []
    assert [(a.text_content(), a.get("href")) for a in elements(doc, "//a")] == [
        ("safe", "safe/"),
        (HOSTILE, f"{HOSTILE}/"),
    ]


# ---------------------------------------------------------------- root index


def test_root_html_lists_projects_with_relative_hrefs() -> None:
    raw = render_root_html([("aaa", "aaa/"), ("zope-interface", "z/zope-interface/")], 77)
    doc = lxml.html.document_fromstring(raw)
    assert doc.xpath('//meta[@name="pypi:repository-version"]/@content') == ["1.4"]
    assert doc.findtext(".//title") == "Simple index"
    assert [(a.text, a.get("href")) for a in elements(doc, "//a")] == [
        ("aaa", "aaa/"),
        ("zope-interface", "z/zope-interface/"),
    ]
    assert b"<!--SERIAL 77-->" in raw


def test_root_json_lists_names_with_their_serials_as_pypi_does_and_reads_back() -> None:
    raw = render_root_json([("aaa", 5), ("zope-interface", 70), ("caf\u00e9 \"x\"", 0)], 77)
    assert json.loads(raw) == {
        "meta": {"api-version": "1.4", "_last-serial": 77},
        "projects": [{"name": "aaa", "_last-serial": 5}, {"name": "zope-interface", "_last-serial": 70},
                     {"name": "caf\u00e9 \"x\"", "_last-serial": 0}],
    }
    assert root_names(raw) == ["aaa", "zope-interface", "caf\u00e9 \"x\""]
    lines = raw.splitlines()[1:-1]
    assert [root_json_line_entry(line) for line in lines] == [
        ("aaa", 5), ("zope-interface", 70), ("caf\u00e9 \"x\"", 0)]


@pytest.mark.parametrize(
    ("line", "entry"),
    [
        (b'{"name":"aaa"},\n', ("aaa", None)),  # written before lines carried serials
        (b'{"name":"aaa","_last-serial":12},\n', ("aaa", 12)),
        (b'{"_last-serial":12,"name":"aaa"}', None),  # another layout: not one of our lines
        (b'{"name":"aaa","_last-serial":true}', ("aaa", None)),
        (b'{"name":"a\\"b","_last-serial":3}', ('a"b', 3)),
        (b"]}", None),
    ],
)
def test_root_json_lines_are_read_with_or_without_a_serial(line: bytes, entry: object) -> None:
    assert root_json_line_entry(line) == entry


def test_empty_root_index() -> None:
    assert root_names(render_root_json([], None)) == []
    assert anchors(render_root_html([], None)) == []


# ---------------------------------------------------------------- Simple API 1.4 (PEP 740, 792, 833)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (ProjectStatus("archived", "read only"), {"status": "archived", "reason": "read only"}),
        (ProjectStatus("deprecated"), {"status": "deprecated"}),
        (ProjectStatus("active"), {"status": "active"}),
    ],
)
def test_json_carries_project_status_and_its_reason(status: ProjectStatus, expected: dict[str, str]) -> None:
    doc = json.loads(render_project_json(replace(page_of(), status=status), 1))
    assert doc["project-status"] == expected


def test_json_without_a_status_has_no_project_status_key() -> None:
    assert "project-status" not in json.loads(render_project_json(page_of(), 1))


@pytest.mark.parametrize(
    ("status", "metas"),
    [
        (ProjectStatus("archived", HOSTILE),
         {"pypi:project-status": "archived", "pypi:project-status-reason": HOSTILE}),
        (ProjectStatus("quarantined"), {"pypi:project-status": "quarantined"}),
        (None, {}),
    ],
)
def test_html_carries_project_status_metas(status: ProjectStatus | None, metas: dict[str, str]) -> None:
    doc = lxml.html.document_fromstring(render_project_html(replace(page_of(), status=status), 1))
    status_metas = elements(doc, "//meta[starts-with(@name, 'pypi:project')]")
    found = {m.get("name"): m.get("content") for m in status_metas}
    assert found == metas


def test_html_form_stays_at_1_4_per_pep_833() -> None:
    doc = lxml.html.document_fromstring(render_project_html(page_of(), 1))
    assert doc.xpath('//meta[@name="pypi:repository-version"]/@content') == ["1.4"]


def test_provenance_link_is_rendered_in_both_forms_exactly_when_known() -> None:
    with_provenance = mirrored(provenance="../../packages/ab/cd/p-1.0.tar.gz.provenance")
    page = page_of(with_provenance, mirrored("p-2.0.tar.gz"))
    assert [f.get("provenance") for f in json_files(page)] == [with_provenance.provenance, None]
    assert "provenance" not in json_files(page)[1]
    assert [a.get("data-provenance") for a in anchors(render_project_html(page, 1))] == [
        with_provenance.provenance, None]


def test_v14_pages_round_trip_through_our_own_parsers() -> None:
    page = replace(
        page_of(mirrored(provenance="../../packages/ab/cd/p-1.0.tar.gz.provenance")),
        status=ProjectStatus("deprecated", "use q"),
    )
    again = parse_json_page(render_project_json(page, 3), MIRROR_PAGE)
    assert again.status == page.status
    assert again.files[0].provenance == "https://mirror.example.org/packages/ab/cd/p-1.0.tar.gz.provenance"
    html = parse_html_page(render_project_html(page, 3), MIRROR_PAGE, "p")
    assert (html.status, html.files[0].provenance) == (again.status, again.files[0].provenance)
