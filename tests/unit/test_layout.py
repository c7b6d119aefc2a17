"""Specification of the mirror layout: which upstream file URLs map where, and which are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bandersnatch.errors import UnsafePath
from bandersnatch.formats import layout
from bandersnatch.formats.layout import UrlPolicy, file_href, file_segments, project_dir

FILES = "https://files.pythonhosted.org"
DIGEST = "2ee14ee469c3eb52fe90322ec81dd404a0093d565a6d71ce77cbc8124e3b"

PYPI = UrlPolicy.for_master("https://pypi.org", ["files.pythonhosted.org"], allow_http=False)
LOCAL_HTTP = UrlPolicy.for_master("http://127.0.0.1:8080", [], allow_http=True)


# ---------------------------------------------------------------- file_segments: accepted


@pytest.mark.parametrize(
    ("url", "policy", "segments"),
    [
        pytest.param(
            f"{FILES}/packages/ab/cd/{DIGEST}/x-1.0.tar.gz", PYPI, ["ab", "cd", DIGEST, "x-1.0.tar.gz"],
            id="files-host",
        ),
        pytest.param(
            f"https://pypi.org/packages/ab/cd/{DIGEST}/x-1.0.tar.gz", PYPI,
            ["ab", "cd", DIGEST, "x-1.0.tar.gz"], id="master-host",
        ),
        pytest.param(
            f"HTTPS://Files.PythonHosted.org/packages/ab/cd/{DIGEST}/x-1.0.tar.gz", PYPI,
            ["ab", "cd", DIGEST, "x-1.0.tar.gz"], id="scheme-and-host-case-insensitive",
        ),
        pytest.param(
            f"{FILES}/packages/ab/cd/{DIGEST}/x-1.0-py3-none-any.whl#sha256=00ff", PYPI,
            ["ab", "cd", DIGEST, "x-1.0-py3-none-any.whl"], id="fragment-ignored",
        ),
        pytest.param(
            f"{FILES}/packages/ab/cd/{DIGEST}/x%20y%2B1.0.tar.gz", PYPI,
            ["ab", "cd", DIGEST, "x y+1.0.tar.gz"], id="percent-escapes-decoded",
        ),
        pytest.param(
            f"{FILES}/packages/ab/cd/{DIGEST}/caf%C3%A9-1.0.tar.gz", PYPI,
            ["ab", "cd", DIGEST, "café-1.0.tar.gz"], id="utf8-percent-escapes",
        ),
        pytest.param(
            "http://127.0.0.1:8080/packages/source/x/x/x-1.0.zip", LOCAL_HTTP,
            ["source", "x", "x", "x-1.0.zip"], id="http-when-allowed-with-port",
        ),
        pytest.param(f"{FILES}/packages/x.zip", PYPI, ["x.zip"], id="flat"),
        pytest.param(f"{FILES}/packages/a/{'b' * 255}", PYPI, ["a", "b" * 255], id="255-byte-segment"),
    ],
)
def test_file_segments_keeps_the_path_below_packages(
    url: str, policy: UrlPolicy, segments: list[str]
) -> None:
    assert file_segments(url, policy) == segments


def test_policy_for_master_allows_master_and_extra_hosts_lowercased() -> None:
    policy = UrlPolicy.for_master("https://PyPI.org/", ["Files.PythonHosted.org"], allow_http=False)
    assert policy.hosts == frozenset({"pypi.org", "files.pythonhosted.org"})
    assert policy.allow_http is False


# ---------------------------------------------------------------- file_segments: refused

REFUSED = [
    pytest.param(f"https://evil.example/packages/ab/cd/{DIGEST}/x-1.0.tar.gz", id="other-host"),
    pytest.param("https://files.pythonhosted.org.evil.example/packages/ab/x.tar.gz", id="host-suffix-trick"),
    pytest.param("https://files.pythonhosted.org:8443/packages/ab/x.tar.gz", id="other-port"),
    pytest.param("file:///etc/passwd", id="file-scheme"),
    pytest.param("file://files.pythonhosted.org/packages/ab/x.tar.gz", id="file-scheme-right-host"),
    pytest.param("ftp://files.pythonhosted.org/packages/ab/x.tar.gz", id="ftp-scheme"),
    pytest.param("http://files.pythonhosted.org/packages/ab/x.tar.gz", id="http-not-allowed"),
    pytest.param("//files.pythonhosted.org/packages/ab/x.tar.gz", id="scheme-relative"),
    pytest.param("/packages/ab/x.tar.gz", id="no-scheme-no-host"),
    pytest.param("https://user:secret@files.pythonhosted.org/packages/ab/x.tar.gz", id="credentials"),
    pytest.param("https://user@files.pythonhosted.org/packages/ab/x.tar.gz", id="username-only"),
    pytest.param("https://@files.pythonhosted.org/packages/ab/x.tar.gz", id="empty-userinfo"),
    pytest.param(f"{FILES}/simple/x/x-1.0.tar.gz", id="outside-packages"),
    pytest.param(f"{FILES}/x-1.0.tar.gz", id="top-level"),
    pytest.param(f"{FILES}/packages", id="packages-itself"),
    pytest.param(f"{FILES}/packages/", id="packages-slash"),
    pytest.param(f"{FILES}/Packages/ab/x.tar.gz", id="packages-wrong-case"),
    pytest.param(f"{FILES}/other/../packages/ab/x.tar.gz", id="dotdot-before-packages"),
    pytest.param(f"{FILES}/packages/../etc/passwd", id="dotdot"),
    pytest.param(f"{FILES}/packages/ab/../../x.tar.gz", id="dotdot-deeper"),
    pytest.param(f"{FILES}/packages/./ab/x.tar.gz", id="dot"),
    pytest.param(f"{FILES}/packages/ab/..", id="trailing-dotdot"),
    pytest.param(f"{FILES}/packages/%2e%2e/x.tar.gz", id="pct-dotdot-lower"),
    pytest.param(f"{FILES}/packages/%2E%2E/x.tar.gz", id="pct-dotdot-upper"),
    pytest.param(f"{FILES}/packages/.%2e/x.tar.gz", id="pct-dotdot-mixed"),
    pytest.param(f"{FILES}/packages/%2e/x.tar.gz", id="pct-dot"),
    pytest.param(f"{FILES}/packages/ab%2F..%2F..%2Fx.tar.gz", id="pct-slash"),
    pytest.param(f"{FILES}/packages/ab%2fx.tar.gz", id="pct-slash-lower"),
    pytest.param(f"{FILES}/packages/ab%5C..%5Cx.tar.gz", id="pct-backslash"),
    pytest.param(f"{FILES}/packages/ab/x.tar.gz%00.txt", id="pct-nul"),
    pytest.param(f"{FILES}/packages/ab/x%0A.tar.gz", id="pct-newline"),
    pytest.param(f"{FILES}/packages/ab\\..\\x.tar.gz", id="backslash"),
    pytest.param(f"{FILES}/packages/ab/x%ff.tar.gz", id="non-utf8-escape"),
    pytest.param(f"{FILES}/packages/ab/x%c3.tar.gz", id="truncated-utf8-escape"),
    pytest.param(f"{FILES}/packages/ab/x%ed%a0%80.tar.gz", id="surrogate-escape"),
    pytest.param(f"{FILES}/packages/ab/{'b' * 256}", id="256-byte-segment"),
    pytest.param(f"{FILES}/packages/ab/{'é' * 128}", id="256-utf8-bytes-in-128-chars"),
    pytest.param(f"{FILES}/packages/ab//x.tar.gz", id="empty-segment"),
    pytest.param(f"{FILES}/packages//x.tar.gz", id="empty-first-segment"),
    pytest.param(f"{FILES}/packages/ab/", id="trailing-slash"),
    pytest.param("https://[::1/packages/ab/x.tar.gz", id="unparsable-ipv6"),
    pytest.param("https://files.pythonhosted.org\uff03/packages/ab/x.tar.gz", id="nfkc-netloc"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("url", REFUSED)
def test_file_segments_refuses_unsafe_urls(url: str) -> None:
    with pytest.raises(UnsafePath):
        file_segments(url, PYPI)


def test_http_is_refused_unless_allowed() -> None:
    url = "http://127.0.0.1:8080/packages/ab/x.tar.gz"
    with pytest.raises(UnsafePath):
        file_segments(url, UrlPolicy.for_master("http://127.0.0.1:8080", [], allow_http=False))
    assert file_segments(url, LOCAL_HTTP) == ["ab", "x.tar.gz"]


# ---------------------------------------------------------------- project_dir


@pytest.mark.parametrize(
    ("name", "hash_index", "segments"),
    [
        ("requests", False, ["requests"]),
        ("requests", True, ["r", "requests"]),
        ("Zope.Interface", False, ["zope-interface"]),
        ("Zope.Interface", True, ["z", "zope-interface"]),
        ("3to2", True, ["3", "3to2"]),
        ("a", True, ["a", "a"]),
    ],
)
def test_project_dir_is_the_normalized_name_optionally_under_its_first_letter(
    name: str, hash_index: bool, segments: list[str]
) -> None:
    assert project_dir(name, hash_index) == segments


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "a\\b", "-x", "x y", "%2e%2e", "é", "x\n"])
@pytest.mark.parametrize("hash_index", [False, True])
def test_project_dir_refuses_invalid_names(name: str, hash_index: bool) -> None:
    with pytest.raises(UnsafePath):
        project_dir(name, hash_index)




# ---------------------------------------------------------------- file_href


@pytest.mark.parametrize(
    ("segments", "hash_index", "href"),
    [
        (["ab", "cd", DIGEST, "x-1.0.tar.gz"], False, f"../../packages/ab/cd/{DIGEST}/x-1.0.tar.gz"),
        (["ab", "cd", DIGEST, "x-1.0.tar.gz"], True, f"../../../packages/ab/cd/{DIGEST}/x-1.0.tar.gz"),
        (["ab", "x y-1.0.tar.gz"], False, "../../packages/ab/x%20y-1.0.tar.gz"),
        (["ab", "x#1.tar.gz"], False, "../../packages/ab/x%231.tar.gz"),
        (["ab", "x?1.tar.gz"], False, "../../packages/ab/x%3F1.tar.gz"),
        (["ab", "café-1.0.tar.gz"], False, "../../packages/ab/caf%C3%A9-1.0.tar.gz"),
        (["ab", "x%41.tar.gz"], False, "../../packages/ab/x%2541.tar.gz"),
        (["ab", "x+1~2_3.tar.gz"], True, "../../../packages/ab/x%2B1~2_3.tar.gz"),
    ],
)
def test_file_href_is_relative_and_percent_encodes_each_segment(
    segments: list[str], hash_index: bool, href: str
) -> None:
    assert file_href(segments, hash_index) == href


@pytest.mark.parametrize("filename", ["x y.tar.gz", "x#y?.whl", "café.zip", "x%2e%2e.zip", "a&b.tar.gz"])
def test_file_href_round_trips_through_file_segments(filename: str) -> None:
    href = file_href(["ab", "cd", filename], hash_index=False)
    url = "https://files.pythonhosted.org/" + href.removeprefix("../../")
    assert file_segments(url, PYPI) == ["ab", "cd", filename]


@pytest.mark.parametrize(("hash_index", "key", "project"), [
    (False, "simple/requests/index.v1_json", "requests"),
    (True, "simple/r/requests/index.v1_json", "requests"),
    (False, "simple/r/requests/index.v1_json", None),
    (False, "simple/Requests/index.v1_json", None),
    (False, "simple/requests/index.html", None),
])
def test_a_page_key_names_its_project_once(hash_index: bool, key: str, project: str | None) -> None:
    assert layout.page_key_project(key, hash_index) == project
    if project is not None:
        assert layout.page_key(project, layout.PAGE_JSON, hash_index) == key


@pytest.mark.parametrize("hash_index", [False, True])
def test_links_start_with_the_prefix_of_the_layout(hash_index: bool) -> None:
    expected = layout.href_prefix(hash_index) + "aa/a-1.tar.gz"
    assert layout.file_href(["aa", "a-1.tar.gz"], hash_index) == expected


def test_a_project_has_pages_only_when_both_are_there(tmp_path: Path) -> None:
    (tmp_path / layout.PAGE_JSON).write_bytes(b"{}")
    assert not layout.has_pages_in(tmp_path)
    (tmp_path / layout.PAGE_HTML).write_bytes(b"")
    assert layout.has_pages_in(tmp_path)
