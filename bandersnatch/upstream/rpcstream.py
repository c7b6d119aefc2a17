"""Streaming parse of XML-RPC answers whose one value is a big array or struct.

PyPI's ``list_packages_with_serial`` answers with a struct of 750,000+
members (tens of megabytes of XML).  ``xmlrpc.client`` would hold the whole
body and then the whole dict; this parser is fed the body chunk by chunk and
hands out the top-level members as they complete, so memory stays flat.

Only what XML-RPC needs is accepted: no DTD (so no entity tricks).  Pure:
bytes in, items out.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from typing import Any
from xml.parsers import expat

from ..errors import NoXmlRpc, UpstreamError, shown

_SCALARS = frozenset({"int", "i4", "i8", "boolean", "string", "double", "base64", "dateTime.iso8601", "nil"})
# At most 64 bits (<i8>); ASCII digits only: int() would also take "1_0" and Arabic-Indic digits.
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def describe(value: Any) -> str:
    """A value from an answer, for one line of a message.

    Never ``str()`` of an array or struct: an answer may nest them 200,000 deep,
    and formatting that would raise ``RecursionError``.
    """
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return shown(str(value), 40)
    if isinstance(value, str):
        return f"'{shown(value, 100)}'"
    if isinstance(value, list | tuple):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return f"a struct of {len(value)} member(s)"
    if isinstance(value, bytes):
        return f"{len(value)} bytes of base64"
    return "nil" if value is None else type(value).__name__


def _scalar(kind: str, text: str) -> Any:
    try:
        if kind in ("int", "i4", "i8"):
            if not _INTEGER.fullmatch(text.strip()):
                raise ValueError
            return int(text)
        if kind == "boolean":
            if text.strip() not in ("0", "1"):
                raise ValueError
            return text.strip() == "1"
        if kind == "double":
            return float(text)
        if kind == "base64":
            return base64.b64decode(text)
    except ValueError:  # binascii.Error for base64 is one too
        raise UpstreamError(f"malformed <{kind}> value '{shown(text, 40)}'") from None
    if kind == "nil":
        return None
    return text


class _Struct:
    """An open ``<struct>``: its members so far and the name awaiting its value."""

    __slots__ = ("members", "name")

    def __init__(self) -> None:
        self.members: dict[str, Any] = {}
        self.name = ""


class _Builder:
    """expat callbacks; completed members of the outermost container go to ``ready``."""

    def __init__(self) -> None:
        self.ready: list[Any] = []
        self.in_fault = False
        self.fault: Any = None
        self.root: str | None = None  # the document's first element, once seen
        self._containers: list[list[Any] | _Struct] = []
        self._typed: list[bool] = []  # per open <value>: did it hold a typed element?
        self._text: list[str] = []

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self._text = []
        if self.root is None:
            self.root = tag
            if tag != "methodResponse":  # an RSS feed, an XHTML page: some other document
                raise NoXmlRpc(f"a <{shown(tag, 40)}> document, not an XML-RPC answer")
        if tag == "value":
            self._typed.append(False)
            return
        if tag == "fault":
            self.in_fault = True
        if self._typed and (tag in _SCALARS or tag in ("array", "struct")):
            self._typed[-1] = True
        if tag == "array":
            self._containers.append([])
        elif tag == "struct":
            self._containers.append(_Struct())

    def end(self, tag: str) -> None:
        text = "".join(self._text)
        self._text = []
        if tag == "name" and self._containers and isinstance(self._containers[-1], _Struct):
            self._containers[-1].name = text
        elif tag in _SCALARS:
            self._emit(_scalar(tag, text))
        elif tag == "value":
            if not self._typed.pop():
                self._emit(text)  # <value>text</value>: a string
        elif tag in ("array", "struct"):
            done = self._containers.pop()
            value = done.members if isinstance(done, _Struct) else done
            if self.in_fault:
                if not self._containers:
                    self.fault = value
                else:
                    self._emit(value)
            elif self._containers:
                self._emit(value)
            # else: the outermost container closed; its members went out one by one

    def chars(self, data: str) -> None:
        self._text.append(data)

    def _emit(self, value: Any) -> None:
        if not self._containers:
            self.ready.append(value)  # the answer itself was a scalar
            return
        container = self._containers[-1]
        outermost = len(self._containers) == 1 and not self.in_fault
        if isinstance(container, _Struct):
            if outermost:
                self.ready.append((container.name, value))
            else:
                container.members[container.name] = value
        elif outermost:
            self.ready.append(value)
        else:
            container.append(value)


def _no_dtd(*args: Any) -> None:
    raise UpstreamError("XML-RPC answer carries a DTD: refused")


def iter_items(chunks: Iterable[bytes]) -> Iterator[Any]:
    """Top-level items of an XML-RPC answer: ``(name, value)`` for a struct, values for an array.

    A scalar answer yields itself once.  A fault raises ``UpstreamError``.  A body
    that is no XML-RPC answer at all (not XML, or another document than a
    ``<methodResponse>``) raises ``NoXmlRpc``: what a server without XML-RPC
    sends, unlike an XML-RPC answer cut short or malformed.
    """
    builder = _Builder()
    parser = expat.ParserCreate()
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.chars
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    parser.buffer_text = True
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
            if not builder.in_fault:
                yield from builder.ready
                builder.ready.clear()
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        if builder.root is None:  # empty, JSON, binary: not even an XML element
            raise NoXmlRpc(f"a body that is not XML ({exc}), not an XML-RPC answer") from None
        raise UpstreamError(f"malformed XML-RPC answer: {exc}") from None
    if builder.in_fault:
        fault = builder.fault if isinstance(builder.fault, dict) else {}
        raise UpstreamError(f"fault {describe(fault.get('faultCode'))}: {describe(fault.get('faultString'))}")
    yield from builder.ready
