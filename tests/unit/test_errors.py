"""``errors.shown``: upstream text made safe for one log line."""

from __future__ import annotations

import pytest

from bandersnatch.errors import shown


@pytest.mark.parametrize(("text", "expected"), [
    ("good-1.0.tar.gz", "good-1.0.tar.gz"),
    ("caf\xe9 \u65e5\u672c", "caf\xe9 \u65e5\u672c"),  # printable non-ASCII stays readable
    ("a\x1b[2Jb", "a\\x1b[2Jb"),  # ESC: clear screen
    ("\x9b2J", "\\x9b2J"),  # C1 CSI, the one-character ESC [
    ("x\ny\rz\t", "x\\ny\\rz\\t"),  # no forged log lines
    ("a\u2028b\u2029", "a\\u2028b\\u2029"),
    ("\u202egnp.exe", "\\u202egnp.exe"),  # bidi override
    ("lone \udcff", "lone \\udcff"),
    ("\\x1b", "\\\\x1b"),  # a backslash is escaped too: every escape on the line is ours
    ("\x7f\x00", "\\x7f\\x00"),
])
def test_control_characters_become_escapes_and_printable_text_is_kept(text: str, expected: str) -> None:
    assert shown(text) == expected
    assert shown(text).isprintable()


def test_long_text_is_cut_and_says_so() -> None:
    assert shown("x" * 300, 10) == "x" * 10 + "..."
    assert shown("x" * 10, 10) == "x" * 10
