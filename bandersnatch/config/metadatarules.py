"""bandersnatch 8.2's metadata rules: a dotted path into upstream's JSON API document, with tags,
and what it must match (regular expressions, or versions a specifier there must admit).

``[regex_project_metadata]`` and ``[version_range_project_metadata]`` have no fixed options: each
option is ``tag:tag:path.to.node`` (tags ``all``, ``any``, ``none``, ``match-null``,
``not-null``; default ``any:match-null``), each line of its value a pattern or a version.  A
project is kept when every rule holds (8.2's ``all(...)`` over its options).  In the regex
sections, 8.2 reserves one option, ``search``: true finds a pattern anywhere in a value
(``re.search``), false (the default) only at its start (``re.match``).  Pure: rules are parsed
from the configuration's text and matched against a parsed document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from ..errors import ConfigError
from . import regexbound

MODES = ("any", "all", "none")
NULLS = ("match-null", "not-null")
# An option line may start with tags joined by ':', which configparser would otherwise take for
# the option's delimiter (bandersnatch 8 reads its file with '=' alone).
TAGGED_OPTION = r"(?:(?:all|any|none|match-null|not-null):)+[^=:]+"
SEARCH_OPTION = "search"  # 8.2's reserved option of the regex sections, not a path
_CUT_AT_UNKNOWN_TAG = re.compile(r"([\w.:-]+)\s*=")


@dataclass(frozen=True)
class Rule:
    """One option of a metadata section."""

    option: str  # as written, tags and all (for messages and the fingerprint)
    path: tuple[str, ...]
    mode: str  # any, all, none (regex rules only)
    nulls_match: bool
    values: tuple[str, ...]  # patterns, or versions
    search: bool = False  # re.search rather than re.match (8.2's ``search`` option; regex rules only)

    def describe(self) -> str:
        return f"{self.option} = {', '.join(self.values)}" + (" (search)" if self.search else "")

    def finds(self, pattern: re.Pattern[str], value: str) -> bool:
        return (pattern.search(value) if self.search else pattern.match(value)) is not None


def parse_rule(option: str, raw: str, where: str, section: str, *, versions: bool,
               search: bool = False) -> Rule:
    """The rule an option states; ConfigError for an unknown tag, an empty path or a bad value."""
    cut = _CUT_AT_UNKNOWN_TAG.match(raw.strip())
    if cut is not None:
        # configparser cut ``maybe:info.name = x`` at its first ':' since ``maybe`` is no tag.
        raise ConfigError(where, section, f"{option}:{cut.group(1)}",
                          f"unknown tag {option!r}; tags are {', '.join((*MODES, *NULLS))}")
    *tags, path = option.split(":")
    mode, nulls_match = "any", True
    for tag in tags:
        if tag in MODES:
            mode = tag
        elif tag in NULLS:
            nulls_match = tag == "match-null"
        else:
            raise ConfigError(where, section, option,
                              f"unknown tag {tag!r}; tags are {', '.join((*MODES, *NULLS))}")
    steps = tuple(path.strip().split("."))
    if not all(steps):
        raise ConfigError(where, section, option, "not a dotted path such as info.classifiers")
    values = tuple(line.strip() for line in raw.splitlines() if line.strip())
    if not values:
        raise ConfigError(where, section, option, "empty: give one pattern or version per line")
    for value in values:
        _check_value(value, where, section, option, versions)
    return Rule(option, steps, mode, nulls_match, values, search)


def _check_value(value: str, where: str, section: str, option: str, versions: bool) -> None:
    if versions:
        try:
            Version(value)
        except InvalidVersion:
            raise ConfigError(where, section, option, f"line {value!r} is not a version") from None
        return
    try:
        re.compile(value)
        regexbound.check(value)
    except re.error as exc:
        raise ConfigError(where, section, option,
                          f"line {value!r} is not a regular expression: {exc}") from None
    except regexbound.Unbounded as exc:
        raise ConfigError(where, section, option, f"line {value!r} could take time exponential in a "
                          f"value's length: {exc}; rewrite it without that") from None


def node(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path``, or None where a step is missing or null (8.2's walk)."""
    current: Any = doc
    for step in path:
        if not isinstance(current, Mapping) or current.get(step) is None:
            return None
        current = current[step]
    return current


def _values(found: Any) -> list[str]:
    if found is None:
        return []
    items = found if isinstance(found, list) else [found]
    return [item if isinstance(item, str) else str(item) for item in items]


def regex_holds(rule: Rule, doc: Mapping[str, Any]) -> bool:
    """Whether the node at the rule's path matches as its tags ask (``re.match``, or ``re.search``
    with the section's ``search = true``, as 8.2)."""
    values = _values(node(doc, rule.path))
    patterns = [re.compile(p) for p in rule.values]
    if rule.mode == "none":
        # 8.2 negates its "any" with match-null whatever the tags say: a missing node fails "none".
        return not _any(rule, patterns, values, nulls_match=True)
    if rule.mode == "all":
        return all((rule.nulls_match and not values) or any(rule.finds(p, v) for v in values)
                   for p in patterns)
    return _any(rule, patterns, values, nulls_match=rule.nulls_match)


def _any(rule: Rule, patterns: list[re.Pattern[str]], values: list[str], *, nulls_match: bool) -> bool:
    if not values:
        return nulls_match
    return any(rule.finds(p, v) for p in patterns for v in values)


def range_holds(rule: Rule, doc: Mapping[str, Any]) -> bool:
    """Whether the specifier at the rule's path admits one of its versions (pre-releases count).

    A specifier upstream wrote that packaging cannot read holds: better a project too many on
    the mirror than one dropped for a typo in its metadata (8.2 stopped the run there).
    """
    found = node(doc, rule.path)
    if not found:
        return rule.nulls_match
    try:
        specifier = SpecifierSet(str(found))
    except InvalidSpecifier:
        return True
    return any(specifier.contains(Version(v), prereleases=True) for v in rule.values)
