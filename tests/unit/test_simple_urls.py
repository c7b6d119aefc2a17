"""Links of the plain shape are joined without urllib: the result must be urljoin's, whatever the link."""

from __future__ import annotations

import itertools
from urllib.parse import urldefrag, urljoin

import pytest

from bandersnatch.formats.layout import file_segments
from bandersnatch.formats.simple import _absolute, _hash_from_fragment
from bandersnatch.verify.pagecheck import _POLICY, _rel

BASES = ["http://h/", "http://h/simple/", "http://verify.invalid/simple/p-1/", "https://x.org:8080/a/b/c/",
         "http://h/simple/a/../", "http://h/simple/p", "http://h/s/p/?q", "HTTP://h/a/", "http://h/.a/",
         "http://h/a/./", "http://h/a//", "ftp://h/a/"]
LINKS = ["f", "../f", "../../f", "../../../f", "../../../../f",
         "../../packages/ab/cd/ef/f-1.tar.gz#sha256=AB", "../../packages/ab/cd/ef/f-1.tar.gz",
         "./f", "a/../f", "..", "../", "f#", "f#x=y", "/abs/f", "//h2/f",
         "http://o/f", "f?q=1", "f%20g", "../.f", "a//b", ".", "f;p", "...", "..f", "../..", "f#a#b", " f"]


@pytest.mark.parametrize(("base", "link"), list(itertools.product(BASES, LINKS)))
def test_a_link_resolves_as_urljoin_resolves_it(base: str, link: str) -> None:
    joined = urljoin(base, link)
    assert _absolute(base, link, "page") == joined
    assert _hash_from_fragment(joined)[0] == urldefrag(joined).url


@pytest.mark.parametrize("rel", ["ab/cd/ef/f-1.tar.gz", "a/../b", "a%2Fb", "a.b/.c", "x" * 255, "x" * 256,
                                 "a//b", "a/./b", "~a/+b"])
def test_a_link_below_packages_gives_the_path_file_segments_gives(rel: str) -> None:
    url = "http://verify.invalid/packages/" + rel
    try:
        expected: str | type[Exception] = "/".join(file_segments(url, _POLICY))
    except Exception as exc:  # noqa: BLE001 - the same refusal either way
        expected = type(exc)
    try:
        got: str | type[Exception] = _rel(url)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == expected
