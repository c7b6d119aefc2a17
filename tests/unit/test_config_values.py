"""The value parsers shared by every part of the configuration."""

from __future__ import annotations

import pytest

from bandersnatch.config.values import size_bytes


@pytest.mark.parametrize(("raw", "expected"), [
    ("67108864", 67108864), ("512K", 512 * 1024), ("64M", 64 * 1024**2), ("1G", 1024**3),
    ("1T", 1024**4), ("2 GiB", 2 * 1024**3), ("3mb", 3 * 1024**2),
])
def test_one_size_parser_reads_every_unit_both_options_take(raw: str, expected: int) -> None:
    assert size_bytes(raw) == expected


@pytest.mark.parametrize("raw", ["0", "0G", "", "1P", "-1", "1.5G", "lots"])
def test_a_size_that_is_none_or_zero_is_refused(raw: str) -> None:
    assert size_bytes(raw) is None


def test_a_page_or_file_size_in_terabytes_is_a_typo() -> None:
    assert size_bytes("1T", terabytes=False) is None
    assert size_bytes("1G", terabytes=False) == 1024**3
