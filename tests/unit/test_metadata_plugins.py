"""bandersnatch 8.2's metadata plugins: ``regex_project_metadata`` and
``version_range_project_metadata``, read from an 8.2 configuration unchanged and judged on a
project's JSON API document (the rules' tags, nulls, several rules, and what a mistake reads like).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bandersnatch.config.plugins import RegexProjectMetadata, VersionRangeProjectMetadata
from bandersnatch.config.settings import parse
from bandersnatch.errors import ConfigError
from bandersnatch.formats.simple import DistFile, ProjectPage
from bandersnatch.selection.policy import Selection

CONF = Path("/etc/bandersnatch-test.conf")

PY2_ONLY: dict[str, Any] = {"info": {"name": "Old", "classifiers": [
    "Programming Language :: Python :: 2.7", "License :: OSI Approved"], "requires_python": ">=2.7,<3"}}
PY3: dict[str, Any] = {"info": {"name": "New", "classifiers": [
    "Programming Language :: Python :: 3.12"], "requires_python": ">=3.9"}}
BARE: dict[str, Any] = {"info": {"name": "Bare", "classifiers": [], "requires_python": None}}


def selection(*sections: str) -> Selection:
    text = "[mirror]\ndirectory = /srv/pypi\n\n" + "\n\n".join(sections) + "\n"
    return Selection(parse(text, CONF).filters)


def regex(rules: str) -> Selection:
    return selection("[plugins]\nenabled = regex_project_metadata", f"[regex_project_metadata]\n{rules}")


def kept(sel: Selection, doc: dict[str, Any]) -> bool:
    return sel.metadata("x", doc) is None


def test_the_documented_8_2_example_keeps_projects_with_a_python_3_classifier() -> None:
    sel = regex("not-null:info.classifiers =\n        .*Programming Language :: Python :: 3.*")
    assert (kept(sel, PY3), kept(sel, PY2_ONLY), kept(sel, BARE)) == (True, False, False)
    why = sel.metadata("old", PY2_ONLY)
    assert why is not None and why.by is RegexProjectMetadata
    assert "not-null:info.classifiers" in why.reason


@pytest.mark.parametrize(("rule", "py3", "py2", "bare"), [
    ("info.classifiers = .*Python :: 3.*", True, False, True),  # any:match-null by default
    ("match-null:info.classifiers = .*Python :: 3.*", True, False, True),
    ("all:info.classifiers =\n    .*Python.*\n    .*License.*", False, True, True),
    ("all:not-null:info.classifiers =\n    .*Python.*\n    .*License.*", False, True, False),
    ("none:info.classifiers = .*Python :: 2.*", True, False, False),  # 8.2: a null never passes none
    ("info.missing.deeper = x", True, True, True),
    ("not-null:info.missing = x", False, False, False),
    ("info.name = N.*", True, False, False),  # re.match: from the start, as 8.2
])
def test_regex_rules_mean_what_their_tags_say_in_8_2(rule: str, py3: bool, py2: bool, bare: bool) -> None:
    sel = regex(rule)
    assert (kept(sel, PY3), kept(sel, PY2_ONLY), kept(sel, BARE)) == (py3, py2, bare)


def test_every_rule_must_hold() -> None:
    sel = regex("info.classifiers = .*Python :: 3.*\ninfo.name = Old")
    assert not kept(sel, PY3) and not kept(sel, PY2_ONLY)


@pytest.mark.parametrize(("section", "rule", "py3", "py2", "bare"), [
    ("version_range_project_metadata", "info.requires_python = 2.7", False, True, True),
    ("version_range_project_metadata", "info.requires_python =\n    2.7\n    3.12", True, True, True),
    ("version_range_project_metadata", "not-null:info.requires_python = 3.12", True, False, False),
    # bandersnatch 8.2 read this section for the project plugin too: such a file works unchanged.
    ("version_range_release_file_metadata", "info.requires_python = 3.12", True, False, True),
])
def test_version_range_keeps_projects_whose_specifier_admits_a_version(
        section: str, rule: str, py3: bool, py2: bool, bare: bool) -> None:
    sel = selection("[plugins]\nenabled = version_range_project_metadata", f"[{section}]\n{rule}")
    assert (kept(sel, PY3), kept(sel, PY2_ONLY), kept(sel, BARE)) == (py3, py2, bare)
    why = sel.metadata("new", PY2_ONLY if not py2 else PY3)
    assert why is None or why.by is VersionRangeProjectMetadata


def test_a_specifier_upstream_wrote_badly_keeps_the_project() -> None:
    sel = selection("[plugins]\nenabled = version_range_project_metadata",
                    "[version_range_project_metadata]\ninfo.requires_python = 3.12")
    assert kept(sel, {"info": {"requires_python": ">=3.6.*,"}})


def test_metadata_is_wanted_only_when_a_metadata_plugin_is_enabled() -> None:
    assert regex("info.name = .*").wants_metadata
    assert not selection("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = x").wants_metadata
    assert not selection().wants_metadata


@pytest.mark.parametrize(("sections", "section", "option", "words"), [
    (("[plugins]\nenabled = regex_project_metadata",), "regex_project_metadata", None, "missing"),
    (("[plugins]\nenabled = version_range_project_metadata",), "version_range_project_metadata", None,
     "missing"),
    (("[plugins]\nenabled = regex_project_metadata", "[regex_project_metadata]\nmaybe:info.name = x"),
     "regex_project_metadata", "maybe:info.name", "unknown tag 'maybe'"),
    (("[plugins]\nenabled = regex_project_metadata", "[regex_project_metadata]\ninfo..name = x"),
     "regex_project_metadata", "info..name", "dotted path"),
    (("[plugins]\nenabled = regex_project_metadata", "[regex_project_metadata]\ninfo.name = (a+)+$"),
     "regex_project_metadata", "info.name", "exponential"),
    (("[plugins]\nenabled = regex_project_metadata", "[regex_project_metadata]\ninfo.name = [a"),
     "regex_project_metadata", "info.name", "not a regular expression"),
    (("[plugins]\nenabled = version_range_project_metadata",
      "[version_range_project_metadata]\ninfo.requires_python = three"),
     "version_range_project_metadata", "info.requires_python", "not a version"),
    (("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = x", "[regex_project_metadata]\n"
      "info.name = x"), "regex_project_metadata", "info.name", "no enabled plugin reads it"),
    (("[plugins]\nenabled = version_range_project_metadata",
      "[version_range_project_metadata]\ninfo.requires_python = 3.12",
      "[version_range_release_file_metadata]\ninfo.requires_python = 2.7"),
     "version_range_release_file_metadata", None, "would be ignored"),
])
def test_a_bad_metadata_rule_is_exit_2_naming_section_and_option(
        sections: tuple[str, ...], section: str, option: str | None, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        selection(*sections)
    assert (info.value.section, info.value.option) == (section, option)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_all_enables_the_metadata_plugins_whose_sections_are_present() -> None:
    sel = selection("[plugins]\nenabled = all", "[regex_project_metadata]\nnot-null:info.classifiers = .*3.*")
    assert sel.cfg.uses(RegexProjectMetadata) and not sel.cfg.uses(VersionRangeProjectMetadata)


def test_a_tagged_option_line_still_parses_beside_colon_options_elsewhere() -> None:
    # configparser also splits on ':'; only an option starting with rule tags is kept whole.
    text = ("[mirror]\ndirectory: /srv/pypi\n\n[plugins]\nenabled = regex_project_metadata\n\n"
            "[regex_project_metadata]\nany:not-null:info.name = a\n")
    (rule,) = parse(text, CONF).filters.metadata_regexes
    assert (rule.option, rule.path, rule.mode, rule.nulls_match) == (
        "any:not-null:info.name", ("info", "name"), "any", False)


# --------------------------------------------------------------------------
# The release file plugins: each file judged on {"info", "release", "release_file"}
# --------------------------------------------------------------------------

FILES = ("foo-1.0.tar.gz", "foo-1.0-py2-none-any.whl", "foo-2.0-py3-none-any.whl", "foo-2.0-cp312-win32.whl")
DOC: dict[str, Any] = {"info": {"name": "foo", "requires_python": ">=3.8"}, "releases": {
    "1.0": [{"filename": FILES[0], "packagetype": "sdist", "requires_python": None},
            {"filename": FILES[1], "packagetype": "bdist_wheel", "requires_python": "<3"}],
    "2.0": [{"filename": FILES[2], "packagetype": "bdist_wheel", "requires_python": ">=3.8"}],
}}  # FILES[3] is on the page but not in the document (published between the two requests)


def planned(sel: Selection, doc: dict[str, Any] | None = DOC) -> list[str]:
    page = ProjectPage("foo", tuple(DistFile(name, f"https://x/{name}") for name in FILES))
    return [f.filename for f in sel.plan_files("foo", page, doc).files]


@pytest.mark.parametrize(("rule", "files"), [
    ("any:release_file.packagetype =\n    sdist", [FILES[0], FILES[3]]),  # a file missing: match-null
    ("not-null:release_file.packagetype = bdist_wheel", [FILES[1], FILES[2]]),
    ("release = 2\\..*", [FILES[2], FILES[3]]),  # "release" is the version, as 8.2's
    ("none:release_file.filename = .*py2.*", [FILES[0], FILES[2]]),
])
def test_regex_release_file_metadata_keeps_the_files_whose_metadata_match(rule: str,
                                                                          files: list[str]) -> None:
    sel = selection("[plugins]\nenabled = regex_release_file_metadata",
                    f"[regex_release_file_metadata]\n{rule}")
    assert sel.wants_metadata
    assert planned(sel) == files


def test_version_range_release_file_metadata_keeps_files_whose_requires_python_admits_a_version() -> None:
    sel = selection("[plugins]\nenabled = version_range_release_file_metadata",
                    "[version_range_release_file_metadata]\nrelease_file.requires_python = 3.12")
    assert planned(sel) == [FILES[0], FILES[2], FILES[3]]
    page = ProjectPage("foo", (DistFile(FILES[1], "u"),))
    (dropped,) = sel.plan_files("foo", page, DOC).dropped
    assert dropped[0] == FILES[1] and dropped[1].by.name == "version_range_release_file_metadata"


def test_without_a_document_every_file_meets_missing_nodes() -> None:
    sel = selection("[plugins]\nenabled = regex_release_file_metadata",
                    "[regex_release_file_metadata]\nnot-null:release_file.packagetype = sdist")
    assert planned(sel, None) == [] and planned(sel, {"releases": "junk"}) == []


def test_8_2s_search_option_finds_a_pattern_anywhere_instead_of_at_the_start() -> None:
    # 8.2 reserves ``search`` in the regex sections: true uses re.search, false (default) re.match.
    rule = "not-null:info.classifiers =\n    Python :: 3"
    assert not kept(regex(rule), PY3)
    searching = regex(f"search = true\n{rule}")
    assert kept(searching, PY3) and not kept(searching, PY2_ONLY)
    assert [r.option for r in searching.cfg.metadata_regexes] == ["not-null:info.classifiers"]
    with pytest.raises(ConfigError) as info:
        regex(f"search = maybe\n{rule}")
    assert (info.value.section, info.value.option) == ("regex_project_metadata", "search")
