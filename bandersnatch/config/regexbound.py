"""Which ``[filter_regex]`` patterns run in bounded time, decided when the config is read.

Python's ``re`` backtracks, and a match cannot be interrupted: ``(a+)+-nightly$``
against ``aaaa…-b`` takes time exponential in the name's length, and the worker
thread running it hangs the run.  What makes a backtracking match exponential is
a repeat whose iterations can divide the same text in more than one way.  So a
pattern is refused when a repeat (``*``, ``+``, ``{n,}``, ``{n,m}`` with m > 1)
holds, at any depth:

- two or more parts of variable length (``(\\w+\\s?)+``, ``(a?b?)*``), or one
  with no character beside it that it cannot match itself (``(a+)+``,
  ``(.*,)*``): the iterations' boundaries are not fixed by the text;
- an alternation whose branches can begin with the same character, or match
  nothing (``(a|ab)+``, ``(\\d|\\w)*``).

What is left is at worst polynomial, and the texts matched are short (project
names of at most 200 characters, versions of at most 255).  Every pattern
bandersnatch's documentation shows passes (``.*-nightly$``, ``^django-.*``,
``.*\\.dev\\d+$``, ``(?i)^test``), as do separated repeats such as
``^\\d+(\\.\\d+)*$``.  A possessive repeat or an atomic group is never divided
again once matched, so only what it holds is checked.

The texts are ASCII (normalized project names, PEP 440 versions), so character
sets are compared over ASCII, which makes "cannot match the same character" exact.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Any


def _stdlib(name: str, before_3_11: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return importlib.import_module(before_3_11)


# The stdlib's own parser: the very tree ``re`` compiles and runs.  It is private in 3.11+
# (``sre_parse`` is deprecated and typeshed types neither precisely): read as Any.  Python 3.10,
# which we still support, has only the top-level modules (and no possessive or atomic forms).
_parser: Any = _stdlib("re._parser", "sre_parse")
_c: Any = _stdlib("re._constants", "sre_constants")

_ASCII = frozenset(range(128))
_BACKTRACKING_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")
_WORD = frozenset(c for c in _ASCII if chr(c).isalnum() or c == ord("_"))
_DIGIT = frozenset(range(ord("0"), ord("9") + 1))
_SPACE = frozenset(ord(c) for c in " \t\n\r\f\v")
_CATEGORIES = {"CATEGORY_DIGIT": _DIGIT, "CATEGORY_NOT_DIGIT": _ASCII - _DIGIT,
               "CATEGORY_WORD": _WORD, "CATEGORY_NOT_WORD": _ASCII - _WORD,
               "CATEGORY_SPACE": _SPACE, "CATEGORY_NOT_SPACE": _ASCII - _SPACE}


class Unbounded(ValueError):
    """A pattern whose matching time can grow exponentially with the text's length."""


def check(pattern: str) -> None:
    """Raise Unbounded (saying why) when ``pattern`` can backtrack exponentially.

    ``pattern`` must compile (``re.error`` is the caller's to report first).
    """
    tree = _parser.parse(pattern)
    _Checker(bool(tree.state.flags & _c.SRE_FLAG_IGNORECASE)).sequence(list(tree))


def _name(op: Any) -> str:
    return str(op)


class _Checker:
    def __init__(self, ignore_case: bool) -> None:
        self.ignore_case = ignore_case

    # ---------------------------------------------------------------- walking the tree

    def sequence(self, items: Sequence[tuple[Any, Any]]) -> None:
        for op, av in items:
            name = _name(op)
            if name in _BACKTRACKING_REPEATS:
                lo, hi, body = av
                if hi > 1:
                    self._repeated(list(body))
                self.sequence(list(body))
            else:  # a possessive repeat never divides a text again: only what it holds is checked
                for sub in _children(name, av):
                    self.sequence(sub)

    def _repeated(self, body: list[tuple[Any, Any]]) -> None:
        """Refuse the body of an unbounded repeat when its iterations can split a text two ways."""
        variable = list(self._variable_parts(body))
        if len(variable) > 1:
            raise Unbounded("a repeated group (*, +, {n,}) holds more than one part of variable length, "
                            "so its repetitions can divide the same text in many ways")
        if variable:
            inner = self.chars(variable[0])
            if not any(not (self.chars([item]) & inner) for item in self._mandatory_chars(body)):
                raise Unbounded("a repeat (*, +, {n,}) is nested in an unbounded repeat with no character "
                                "between them that the inner one cannot match")
        for branches in self._alternations(body):
            self._disjoint(branches)

    def _disjoint(self, branches: list[list[tuple[Any, Any]]]) -> None:
        seen: set[int] = set()
        for branch in branches:
            first, nullable = self.first(branch)
            if nullable or first & seen:
                raise Unbounded("a repeated alternation has branches that can match the same text "
                                "(or nothing), so its repetitions can divide a text in many ways")
            seen |= first

    # ---------------------------------------------------------------- what a part can match

    def _variable_parts(self, items: Iterable[tuple[Any, Any]]) -> Iterable[list[tuple[Any, Any]]]:
        """The parts of ``items`` (at any depth) whose length varies: repeats, back-references."""
        for op, av in items:
            name = _name(op)
            if name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
                continue  # matched once, never given back: of fixed length to what is around it
            if name in _BACKTRACKING_REPEATS:
                lo, hi, body = av
                if lo != hi:
                    yield [(op, av)]
                    continue
                yield from self._variable_parts(body)
            elif name == "GROUPREF":
                yield [(op, av)]
            else:
                for sub in _children(name, av):
                    yield from self._variable_parts(sub)

    def _mandatory_chars(self, items: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any]]:
        """Single-character parts every match of ``items`` contains (groups looked into)."""
        for op, av in items:
            name = _name(op)
            if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
                yield op, av
            elif name == "SUBPATTERN":
                yield from self._mandatory_chars(av[-1])
            elif name in (*_BACKTRACKING_REPEATS, "POSSESSIVE_REPEAT") and av[0] >= 1:
                yield from self._mandatory_chars(av[2])

    def _alternations(self, items: Iterable[tuple[Any, Any]]) -> Iterable[list[list[tuple[Any, Any]]]]:
        for op, av in items:
            name = _name(op)
            if name == "BRANCH":
                yield [list(b) for b in av[1]]
            if name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
                continue
            for sub in _children(name, av):
                yield from self._alternations(sub)

    def chars(self, items: Iterable[tuple[Any, Any]]) -> frozenset[int]:
        """Every ASCII character some part of ``items`` can match."""
        out: set[int] = set()
        for op, av in items:
            name = _name(op)
            if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
                out |= self._single(name, av)
            elif name == "GROUPREF":
                out |= _ASCII
            else:
                for sub in _children(name, av):
                    out |= self.chars(sub)
        return frozenset(out)

    def first(self, items: Sequence[tuple[Any, Any]]) -> tuple[frozenset[int], bool]:
        """The characters a match of ``items`` can begin with, and whether it can match nothing."""
        out: set[int] = set()
        for op, av in items:
            name = _name(op)
            if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
                return frozenset(out | self._single(name, av)), False
            if name in ("AT", "ASSERT", "ASSERT_NOT"):
                continue
            if name in (*_BACKTRACKING_REPEATS, "POSSESSIVE_REPEAT"):
                sub, nullable = self.first(list(av[2]))
                out |= sub
                if av[0] >= 1 and not nullable:
                    return frozenset(out), False
                continue
            if name in ("SUBPATTERN", "ATOMIC_GROUP"):
                sub, nullable = self.first(list(av[-1] if name == "SUBPATTERN" else av))
            elif name == "BRANCH":
                results = [self.first(list(b)) for b in av[1]]
                sub = frozenset().union(*(r[0] for r in results))
                nullable = any(r[1] for r in results)
            else:  # a back-reference, a conditional: anything
                sub, nullable = _ASCII, True
            out |= sub
            if not nullable:
                return frozenset(out), False
        return frozenset(out), True

    def _single(self, name: str, av: Any) -> frozenset[int]:
        if name == "ANY":
            return _ASCII
        if name == "LITERAL":
            return frozenset(self._cased({av}))
        if name == "NOT_LITERAL":
            return _ASCII - self._cased({av})
        return self._set(av)

    def _set(self, items: Sequence[tuple[Any, Any]]) -> frozenset[int]:
        out: set[int] = set()
        negate = False
        for op, av in items:
            name = _name(op)
            if name == "NEGATE":
                negate = True
            elif name == "LITERAL":
                out |= self._cased({av})
            elif name == "RANGE":
                out |= self._cased(set(range(av[0], min(av[1], 127) + 1)))
            elif name == "CATEGORY":
                out |= _CATEGORIES.get(_name(av), _ASCII)
            else:  # RANGE_UNI_IGNORE and the like: assume the widest
                out |= _ASCII
        return frozenset(_ASCII - out if negate else out & _ASCII)

    def _cased(self, codes: set[int]) -> set[int]:
        if not self.ignore_case:
            return codes
        return codes | {ord(chr(c).swapcase()) for c in codes if c < 128 and ord(chr(c).swapcase()) < 128}


def _children(name: str, av: Any) -> Iterable[list[tuple[Any, Any]]]:
    """The sub-sequences of one node (groups, branches, lookarounds, conditionals)."""
    if name == "SUBPATTERN":
        yield list(av[-1])
    elif name == "BRANCH":
        yield from (list(b) for b in av[1])
    elif name in ("ASSERT", "ASSERT_NOT"):
        yield list(av[1])
    elif name in ("ATOMIC_GROUP",):
        yield list(av)
    elif name in (*_BACKTRACKING_REPEATS, "POSSESSIVE_REPEAT"):
        yield list(av[2])
    elif name == "GROUPREF_EXISTS":
        yield list(av[1])
        if av[2] is not None:
            yield list(av[2])
