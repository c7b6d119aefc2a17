"""Our JSON page record: what the writer puts in, the one reader gets back."""

from __future__ import annotations

import pytest

from bandersnatch.formats import pagerecord
from bandersnatch.formats.pagerecord import Known, OnDisk, Stored
from bandersnatch.formats.simple import DistFile, ProjectPage


def _page(on_disk: dict[str, int | str] | None) -> ProjectPage:
    f = DistFile("a-1.tar.gz", "../../packages/aa/a-1.tar.gz", {"sha256": "0" * 64}, size=10,
                 core_metadata={"sha256": "1" * 64}, on_disk=on_disk)
    return ProjectPage("a", (f,), last_serial=None)


@pytest.mark.parametrize(("stamp", "metadata"), [
    (123, Stored("1" * 64, 5, 456)),
    ('"etag-1"', Stored("1" * 64, 5, '"etag-2"')),
    (None, None),
])
def test_what_is_written_is_read_back(stamp: int | str | None, metadata: Stored | None) -> None:
    data = pagerecord.to_bytes(_page(pagerecord.on_disk(stamp, metadata)), 42)
    known = pagerecord.from_bytes(data)["../../packages/aa/a-1.tar.gz"]
    assert known == Known("0" * 64, 10, "1" * 64, stamp, metadata.size if metadata else None,
                          metadata.stamp if metadata else None)
    assert pagerecord.serial_from_head(data[:pagerecord.HEAD_BYTES]) == 42
    assert pagerecord.serial_from_bytes(data) == 42
    assert pagerecord.filenames_from_bytes(data) == frozenset({"a-1.tar.gz"})


@pytest.mark.parametrize("data", [None, b"", b"[]", b'{"meta": {}}', b"{not json"])
def test_a_missing_or_damaged_page_knows_nothing(data: bytes | None) -> None:
    assert pagerecord.from_bytes(data) == {}


def test_odd_on_disk_values_are_ignored() -> None:
    entry = {"_on-disk": {"mtime-ns": True, "etag": 3, "metadata-size": "5"}}
    assert OnDisk.from_entry(entry) == OnDisk()
    assert OnDisk.from_entry({"_on-disk": []}) == OnDisk()
