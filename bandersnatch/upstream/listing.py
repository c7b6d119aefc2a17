"""Streaming parse of a PEP 691 root listing: ``{"meta": {...}, "projects": [{...}, ...]}``.

PyPI's listing names some 730,000 projects in about 37 MB.  ``json.loads``
would hold the text, then a list of 730,000 dicts.  This parser is fed the
body piece by piece and hands out one ``(name, _last-serial)`` at a time,
keeping only a small window of text: each project entry (and the ``meta``
object) is decoded by ``json``'s own ``raw_decode``; only the punctuation of
the two outer levels is scanned here.

Pure: bytes in, entries out.  Members other than ``meta`` and ``projects``
are skipped when small and refused when not.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, cast

from ..errors import UpstreamError, shown
from ..formats.serial import MAX_SERIAL, is_serial
from .rpcstream import describe

# One entry (or meta, or an unknown member) larger than this is not a listing we understand.
MAX_ITEM = 1 << 20
_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()

# The regular shape of an entry, as PyPI and our own mirror write it: a name (a JSON string without
# escapes or control characters) and a serial (a plain integer of at most 19 digits), in either order,
# with JSON's own whitespace, and the separator after it.  One match decodes exactly what ``json``
# would; an entry of any other shape (escapes, more keys, a number written otherwise, cut by the end
# of the window) takes the general path, ``raw_decode``, which also says why a malformed one is wrong.
_WS = r"[ \t\n\r]*"
_STR = r'"([^"\\\x00-\x1f]*)"'
_INT = r"(0|[1-9][0-9]{0,18})"
_FAST_ENTRY = re.compile(
    rf'{_WS}\{{{_WS}(?:"name"{_WS}:{_WS}{_STR}{_WS},{_WS}"_last-serial"{_WS}:{_WS}{_INT}'
    rf'|"_last-serial"{_WS}:{_WS}{_INT}{_WS},{_WS}"name"{_WS}:{_WS}{_STR}){_WS}\}}{_WS}([,\]])')
# A run of regular entries each followed by a comma, matched in one call (no groups: only its end is
# wanted); ``findall`` of the same shape over exactly that run then gives every entry's fields in order,
# since each entry of the run matches where the one before it ended.  Both in C: no Python per entry
# but building the block's two lists.  A run is at most RUN_ENTRIES long: a block's lists stay small
# (the memory stays a window's) while the Python per block is shared by that many entries.
RUN_ENTRIES = 256
_PLAIN_STR = r'"[^"\\\x00-\x1f]*"'


def _entry_shape(string: str, number: str) -> str:
    """A regular entry and its comma, with ``string`` and ``number`` for the name and the serial."""
    return (rf'{_WS}\{{{_WS}(?:"name"{_WS}:{_WS}{string}{_WS},{_WS}"_last-serial"{_WS}:{_WS}{number}'
            rf'|"_last-serial"{_WS}:{_WS}{number}{_WS},{_WS}"name"{_WS}:{_WS}{string}){_WS}\}}{_WS},')


_RUN = re.compile(f"(?:{_entry_shape(_PLAIN_STR, '(?:0|[1-9][0-9]{0,18})')}){{1,{RUN_ENTRIES}}}")
_RUN_ENTRY = re.compile(_entry_shape(_STR, _INT))

Block = tuple[list[str], list[int | None]]
"""Some consecutive entries of a listing: their names and, beside them, their serials."""


class _Window:
    """The undecoded rest of the body, refilled from ``chunks`` on demand."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Append the next piece of the body; False at its end."""
        if self.eof:
            return False
        if self.pos > (1 << 16) and self.pos * 2 > len(self.text):
            self.text, self.pos = self.text[self.pos:], 0  # drop what was consumed
        for chunk in self._chunks:
            try:
                piece = self._utf8.decode(chunk)
            except UnicodeDecodeError:
                raise UpstreamError("root listing: not UTF-8") from None
            if piece:
                self.text += piece
                return True
        self.eof = True
        return False

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the body)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, where: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            found = f"'{shown(char)}'" if char else "the end of the body"
            raise UpstreamError(f"root listing: expected one of {chars!r} {where}, found {found}")
        self.pos += 1
        return char

    def value(self, where: str) -> Any:
        """The next JSON value, decoded once enough of the body is in the window."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Numbers may be cut by the end of the window; a value that still fails
                # with the body ended, or that grows past MAX_ITEM, is malformed.
                if len(self.text) - self.pos > MAX_ITEM:
                    raise UpstreamError(f"root listing: {where} larger than {MAX_ITEM} bytes or malformed "
                                        f"({exc.msg})") from None
                if not self.more():
                    raise UpstreamError(f"root listing: malformed {where} ({exc.msg})") from None
                continue
            if end == len(self.text) and self.more():
                continue  # a number may go on in the next piece
            self.pos = end
            return value


class RootListing:
    """Iterate for ``(name, serial)`` of every project; ``last_serial`` is ``meta._last-serial``.

    A project without ``_last-serial`` has serial None.  ``last_serial`` and
    ``api_version`` are known once iteration is over (the keys may come in any
    order).
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._window = _Window(chunks)
        self.last_serial: int | None = None
        self.api_version: str | None = None

    def __iter__(self) -> Iterator[tuple[str, int | None]]:
        for names, serials in self.blocks():
            yield from zip(names, serials, strict=True)

    def blocks(self) -> Iterator[Block]:
        """The entries as blocks of consecutive entries, in order (none empty): a run of regular
        entries is one block, any other entry a block of its own.  A name in a block of more than
        one is a plain JSON string: no escapes, no control characters (so no newline)."""
        window = self._window
        window.expect("{", "at the start")
        if window.peek() == "}":
            window.pos += 1
            return
        while True:
            key = window.value("member name")
            if not isinstance(key, str):
                raise UpstreamError(f"root listing: member name {describe(key)} is not a string")
            window.expect(":", f"after {describe(key)}")
            if key == "projects":
                yield from self._projects()
            elif key == "meta":
                self._meta(window.value("meta"))
            else:
                window.value(f"member {describe(key)}")
            if window.expect(",}", "between members") == "}":
                break
        if window.peek():
            raise UpstreamError("root listing: more text after the JSON document")

    def _projects(self) -> Iterator[Block]:
        window = self._window
        window.expect("[", "for projects")
        if window.peek() == "]":
            window.pos += 1
            return
        fast = _FAST_ENTRY.match
        while True:
            block = self._run()
            if block is not None:
                yield block
                continue
            found = fast(window.text, window.pos)
            if found is not None:
                name, serial, late_serial, late_name, after = found.groups()
                entry = (name, int(serial)) if name is not None else (late_name, int(late_serial))
                if entry[1] <= MAX_SERIAL:
                    window.pos = found.end()
                    yield [entry[0]], [entry[1]]
                    if after == "]":
                        return
                    continue
            name, got = self._entry(window.value("project entry"))
            yield [name], [got]
            if window.expect(",]", "between projects") == "]":
                return

    def _run(self) -> Block | None:
        """The run of regular entries (each with its comma) at the window's position, taken whole;
        None if there is none, or one of its serials is past MAX_SERIAL (each then goes one by one)."""
        window = self._window
        run = _RUN.match(window.text, window.pos)
        if run is None:
            return None
        found = _RUN_ENTRY.findall(window.text, window.pos, run.end())
        names = [name or late_name for name, _, _, late_name in found]
        serials = [int(serial or late_serial) for _, serial, late_serial, _ in found]
        if max(serials) > MAX_SERIAL:
            return None
        window.pos = run.end()
        return names, cast("list[int | None]", serials)

    @staticmethod
    def _entry(entry: Any) -> tuple[str, int | None]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise UpstreamError(f"root listing: project entry {describe(entry)} has no name")
        serial = entry.get("_last-serial")
        if serial is not None and not is_serial(serial):
            raise UpstreamError(f"root listing: {describe(entry['name'])}: _last-serial {describe(serial)} "
                                "is not a serial")
        return entry["name"], serial

    def _meta(self, meta: Any) -> None:
        if not isinstance(meta, dict):
            raise UpstreamError(f"root listing: meta is {describe(meta)}, not an object")
        serial = meta.get("_last-serial")
        if serial is not None and not is_serial(serial):
            raise UpstreamError(f"root listing: meta._last-serial {describe(serial)} is not a serial")
        self.last_serial = serial
        version = meta.get("api-version")
        self.api_version = version if isinstance(version, str) else None
