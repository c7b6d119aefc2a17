"""The streaming parser of PEP 691 root listings (``upstream.listing``): bytes in, entries out."""

from __future__ import annotations

import json
import random
import re
import tracemalloc
from collections.abc import Iterator

import pytest

from bandersnatch.errors import UpstreamError
from bandersnatch.upstream import listing as listing_module
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


# ---------------------------------------------------------------- the regular shape's fast path

def parsed(body: bytes, size: int) -> tuple[list[tuple[str, int | None]], int | None] | str:
    """What ``RootListing`` makes of ``body`` cut in ``size``-byte pieces: entries and meta serial,
    or the error it raises."""
    listing = RootListing(pieces(body, size))
    try:
        return list(listing), listing.last_serial
    except UpstreamError as exc:
        return f"UpstreamError: {exc}"


def general_only(body: bytes, size: int) -> tuple[list[tuple[str, int | None]], int | None] | str:
    """The same through the general path alone (``raw_decode`` for every entry)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(listing_module, "_FAST_ENTRY", re.compile(r"(?!)"))
        patch.setattr(listing_module, "_RUN", re.compile(r"(?!)"))
        return parsed(body, size)


ODD_ENTRIES = [
    pytest.param(b'{"name":"plain","_last-serial":12}', id="plain"),
    pytest.param(b'{"_last-serial":12,"name":"plain"}', id="serial-first"),
    pytest.param(b' \n\t{ "name" :\r"a" ,\n "_last-serial" : 0 }\n ', id="json-whitespace"),
    pytest.param(b'{"name":"a","_last-serial":1}\x0c', id="form-feed-is-not-json-whitespace"),
    pytest.param(b'{"name":"a\\"b","_last-serial":1}', id="escaped-quote"),
    pytest.param(b'{"name":"caf\\u00e9\\/x","_last-serial":1}', id="unicode-escape"),
    pytest.param(b'{"name":"\\ud83d\\ude00","_last-serial":1}', id="surrogate-pair-escape"),
    pytest.param('{"name":"café 日本 😀","_last-serial":1}'.encode(), id="raw-unicode"),
    pytest.param(b'{"name":"a\x01b","_last-serial":1}', id="raw-control-character"),
    pytest.param(b'{"name":"","_last-serial":1}', id="empty-name"),
    pytest.param(b'{"name":"' + b"n" * 300_000 + b'","_last-serial":1}', id="huge-name"),
    pytest.param(b'{"name":"a","_last-serial":1,"x":[1,{"y":2}]}', id="more-keys"),
    pytest.param(b'{"name":"a","name":"b","_last-serial":1}', id="repeated-key"),
    pytest.param(b'{"name":"a","_last-serial":1,"_last-serial":2}', id="repeated-serial"),
    pytest.param(b'{"name":"a","_last-serial":007}', id="leading-zeros"),
    pytest.param(b'{"name":"a","_last-serial":1.0}', id="float"),
    pytest.param(b'{"name":"a","_last-serial":1e3}', id="exponent"),
    pytest.param(b'{"name":"a","_last-serial":-1}', id="negative"),
    pytest.param(b'{"name":"a","_last-serial":2147483647}', id="max-serial"),
    pytest.param(b'{"name":"a","_last-serial":2147483648}', id="past-max-serial"),
    pytest.param(b'{"name":"a","_last-serial":99999999999999999999999}', id="past-64-bits"),
    pytest.param(b'{"name":"a","_last-serial":true}', id="boolean"),
    pytest.param(b'{"name":"a","_last-serial":"1"}', id="string-serial"),
    pytest.param(b'{"name":"a","_last-serial":null}', id="null-serial"),
    pytest.param(b'{"name":"a"}', id="no-serial"),
    pytest.param(b'{"name":7,"_last-serial":1}', id="number-name"),
    pytest.param(b'{"Name":"a","_last-serial":1}', id="other-key"),
    pytest.param(b'["a",1]', id="not-an-object"),
    pytest.param(b'{"name":"a","_last-serial":1},', id="trailing-comma"),
    pytest.param(b'{"name":"a","_last-serial":1}{"name":"b","_last-serial":2}', id="missing-comma"),
]


@pytest.mark.parametrize("entry", ODD_ENTRIES)
@pytest.mark.parametrize("size", [1, 5, 1 << 16])
def test_the_fast_path_gives_what_the_general_parser_gives_for_any_entry(entry: bytes, size: int) -> None:
    body = (b'{"meta":{"_last-serial":5},"projects":[{"name":"before","_last-serial":3},' + entry
            + b',{"_last-serial":4,"name":"after"}]}')
    size = max(size, len(entry) // 16)  # a huge entry in tiny pieces: the general path is quadratic
    fast = parsed(body, size)
    assert fast == general_only(body, size)
    if not isinstance(fast, str):  # and what a whole-document parse finds
        projects = json.loads(body)["projects"]
        assert fast[0] == [(p["name"], p.get("_last-serial")) for p in projects]


def test_a_listing_cut_anywhere_fails_alike_on_both_paths() -> None:
    body = (b'{"meta":{"_last-serial":5},"projects":[ {"name":"a","_last-serial":10} ,'
            b'{"_last-serial":2,"name":"caf\xc3\xa9"},{"name":"b\\n","_last-serial":3}]}')
    for cut in range(len(body)):
        assert parsed(body[:cut], 7) == general_only(body[:cut], 7), cut
        assert parsed(body[:cut], 7) != parsed(body, 7)


def test_random_listings_parse_alike_on_both_paths() -> None:
    rng = random.Random(21)
    shapes = [p.values[0] for p in ODD_ENTRIES if p.id in (
        "plain", "serial-first", "json-whitespace", "escaped-quote", "unicode-escape", "raw-unicode",
        "more-keys", "no-serial", "max-serial")]
    for _ in range(40):
        entries = [rng.choice(shapes).replace(b'"a', b'"a%d' % i).replace(b'"plain', b'"p%d' % i)
                   for i in range(rng.randint(0, 30))]
        body = b'{"projects":[' + b",".join(entries) + b'],"meta":{"_last-serial":1}}'
        size = rng.choice([1, 3, 16, 100, 4096])
        assert parsed(body, size) == general_only(body, size)


def test_runs_of_regular_entries_come_in_blocks_and_parse_alike_on_both_paths() -> None:
    rng = random.Random(2121)
    odd = [b'{"name":"x\\ny","_last-serial":1}', b'{"name":"a","_last-serial":99999999999999999999}',
           b'{"name":"z","_last-serial":1,"k":2}']
    for _ in range(30):
        rate = rng.choice([0, 0.02])  # some listings all regular
        entries = [rng.choice(odd) if rng.random() < rate else
                   b'{"name":"Pro_j.%d","_last-serial":%d}' % (i, rng.randint(0, 2**31)) if rng.random() < 0.5
                   else b'{ "_last-serial" : %d ,\n"name":"p-%d" }' % (rng.randint(0, 9), i)
                   for i in range(rng.randint(0, 2000))]
        body = b'{"meta":{"_last-serial":1},"projects":[' + b",".join(entries) + b']}'
        size = rng.choice([7, 100, 4096, 1 << 16])
        fast = parsed(body, size)
        assert fast == general_only(body, size)
        if isinstance(fast, str):
            continue  # refused alike (a serial past 64 bits)
        blocks = list(RootListing(pieces(body, size)).blocks())
        assert all(names and len(names) == len(serials) for names, serials in blocks)
        assert not any("\n" in name for names, _ in blocks if len(names) > 1 for name in names)
        if size == 1 << 16 and len(entries) > 1000 and not any(e in odd for e in entries):
            assert len(blocks) < len(entries) // 100  # runs, not entries one by one
