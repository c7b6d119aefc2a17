"""The streaming parser of PEP 691 root listings (``upstream.listing``): bytes in, entries out."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator

import pytest

from bandersnatch.errors import UpstreamError
from bandersnatch.upstream.listing import MAX_ITEM, RootListing

PYPI_SHAPE = (
    b'{"meta":{"_last-serial":31000000,"api-version":"1.4"},"projects":['
    b'{"_last-serial":2,"name":"0"},{"_last-serial":30999999,"name":"Zope.Interface"},'
    b'{"name":"caf\xc3\xa9","_last-serial":7}]}'
)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 16])
def test_entries_and_meta_serial_are_read_however_the_body_is_cut(size: int) -> None:
    listing = RootListing(pieces(PYPI_SHAPE, size))
    assert list(listing) == [("0", 2), ("Zope.Interface", 30999999), ("café", 7)]
    assert listing.last_serial == 31000000
    assert listing.api_version == "1.4"


def test_meta_after_projects_whitespace_and_unknown_members_are_accepted() -> None:
    body = b' {\n "projects" : [ {"name": "a", "_last-serial": 1} ] ,\n "extra": [1, {"x": 2}],\n' \
           b' "meta": {"_last-serial": 9} }\n'
    listing = RootListing(pieces(body, 5))
    assert list(listing) == [("a", 1)]
    assert listing.last_serial == 9


def test_an_entry_without_a_serial_has_serial_none() -> None:
    assert list(RootListing([b'{"meta":{},"projects":[{"name":"a"}]}'])) == [("a", None)]


def test_an_empty_listing_has_no_entries() -> None:
    listing = RootListing([b'{"meta":{"_last-serial":5},"projects":[]}'])
    assert list(listing) == []
    assert listing.last_serial == 5


@pytest.mark.parametrize("body, why", [
    (b'{"meta":{},"projects":[{"name":"a"}', "expected one of"),  # cut short
    (b'{"meta":{},"projects":[{"name":"a"},]}', "malformed project entry"),
    (b'{"meta":{},"projects":[{"nom":"a"}]}', "has no name"),
    (b'{"meta":{},"projects":[{"name":"a","_last-serial":-1}]}', "is not a serial"),
    (b'{"meta":{},"projects":[{"name":"a","_last-serial":true}]}', "is not a serial"),
    (b'{"meta":{"_last-serial":"12"},"projects":[]}', "meta._last-serial"),
    (b'{"meta":[],"projects":[]}', "not an object"),
    (b'[]', "expected one of"),
    (b'{"meta":{},"projects":[]} trailing', "more text"),
    (b'{"meta":{},"projects":[{"name":"\xff"}]}', "not UTF-8"),
    (b'<!DOCTYPE html><html></html>', "expected one of"),
])
def test_a_malformed_listing_is_one_upstream_error(body: bytes, why: str) -> None:
    with pytest.raises(UpstreamError, match=why):
        list(RootListing(pieces(body, 4)))


def test_an_endless_entry_is_refused_past_the_item_limit() -> None:
    def body() -> Iterator[bytes]:
        yield b'{"projects":[{"name":"'
        while True:
            yield b"a" * 65536

    with pytest.raises(UpstreamError, match=f"larger than {MAX_ITEM} bytes"):
        list(RootListing(body()))


def test_a_large_listing_is_parsed_with_flat_memory() -> None:
    count = 100_000
    entry = json.dumps({"name": "project-name-%07d", "_last-serial": 1234567}).encode()

    def body() -> Iterator[bytes]:
        yield b'{"meta":{"_last-serial":1234567,"api-version":"1.1"},"projects":['
        batch = [entry.replace(b"%07d", b"%07d" % i) for i in range(count)]
        for i in range(0, count, 500):
            yield b",".join(batch[i:i + 500]) + (b"," if i + 500 < count else b"")
        yield b"]}"

    chunks = list(pieces(b"".join(body()), 1 << 16))  # ~5 MB of listing, held by the test only
    tracemalloc.start()
    try:
        seen = sum(1 for _ in RootListing(iter(chunks)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 1 << 20  # a window of the body, not the body
