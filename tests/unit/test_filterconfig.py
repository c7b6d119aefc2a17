"""The filter sections: bandersnatch 6-8's names and meaning, and how a mistake in them reads.

A filter that is silently ignored mirrors terabytes nobody asked for, so every
plugin name is either understood or refused, and every bad line is named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bandersnatch.config.filters import IMPLEMENTED, REFUSED, FilterConfig, Pin
from bandersnatch.config.settings import load, parse
from bandersnatch.errors import ConfigError, ConfigErrors

CONF = Path("/etc/bandersnatch-test.conf")


def conf(*sections: str) -> str:
    return "[mirror]\ndirectory = /srv/pypi\n\n" + "\n\n".join(sections) + "\n"


def filters(*sections: str) -> FilterConfig:
    return parse(conf(*sections), CONF).filters


def refused(*sections: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(conf(*sections), CONF)
    assert "\n" not in str(info.value)
    return info.value


def test_no_plugins_section_means_no_filter() -> None:
    cfg = filters()
    assert not cfg.active
    assert cfg == FilterConfig()


def test_bandersnatch8_allowlist_and_blocklist_sections_are_read_with_their_meaning() -> None:
    cfg = filters(
        "[plugins]\nenabled =\n    allowlist_project\n    allowlist_release\n    blocklist_release",
        "[allowlist]\npackages =\n    Requests>=2.30\n    dep-root[Fancy]\n    # a comment\n",
        "[blocklist]\npackages =\n    dep-leaf==3.0\n",
    )
    assert cfg.enabled == {"allowlist_project", "allowlist_release", "blocklist_release"}
    assert cfg.allowlist == (
        Pin("requests", frozenset(), ">=2.30", "Requests>=2.30"),
        Pin("dep-root", frozenset({"fancy"}), "", "dep-root[Fancy]"),
    )
    assert cfg.blocklist == (Pin("dep-leaf", frozenset(), "==3.0", "dep-leaf==3.0"),)


def test_enabled_all_turns_on_every_plugin_whose_settings_are_present() -> None:
    cfg = filters("[plugins]\nenabled = all", "[allowlist]\npackages = foo",
                  "[blocklist]\nplatforms = windows", "[latest_release]\nkeep = 2")
    assert cfg.enabled == {"allowlist_project", "allowlist_release", "exclude_platform",
                           "latest_release", "prerelease_release"}
    assert set(cfg.enabled) <= set(IMPLEMENTED)


@pytest.mark.parametrize("plugin", sorted(REFUSED))
def test_a_bandersnatch_plugin_we_do_not_implement_is_refused_by_name(plugin: str) -> None:
    error = refused(f"[plugins]\nenabled =\n    blocklist_project\n    {plugin}")
    assert (error.section, error.option) == ("plugins", "enabled")
    assert plugin in str(error)


def test_an_unknown_plugin_name_is_refused_with_the_known_ones() -> None:
    error = refused("[plugins]\nenabled = allowlist_projects", "[allowlist]\npackages = foo")
    assert "unknown plugin 'allowlist_projects'" in str(error)
    assert "allowlist_project," in str(error)


def test_filter_sections_without_enabled_plugins_are_refused_not_ignored() -> None:
    error = refused("[allowlist]\npackages = foo")
    assert error.section == "allowlist"
    assert "[plugins] enabled" in str(error)


@pytest.mark.parametrize(
    ("sections", "section", "option", "words"),
    [
        (("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages =\n    good\n    b@d line"),
         "allowlist", "packages", "'b@d line' is not a requirement"),
        (("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = x @ https://e.org/x.whl"),
         "blocklist", "packages", "URL requirement"),
        (("[plugins]\nenabled = regex_project", "[filter_regex]\npackages =\n    ok.*\n    (unclosed"),
         "filter_regex", "packages", "'(unclosed' is not a regular expression"),
        (("[plugins]\nenabled = regex_release", "[filter_regex]\nreleases = [z-a]"),
         "filter_regex", "releases", "not a regular expression"),
        (("[plugins]\nenabled = latest_release", "[latest_release]\nkeep = three"),
         "latest_release", "keep", "not a whole number"),
        (("[plugins]\nenabled = latest_release", "[latest_release]\nkeep = 2\nsort_by = size"),
         "latest_release", "sort_by", "'size' is not one of version, time"),
        (("[plugins]\nenabled = latest_release",), "latest_release", "keep", "missing"),
        (("[plugins]\nenabled = size_project_metadata", "[size_project_metadata]\nmax_package_size = 1Q"),
         "size_project_metadata", "max_package_size", "not a size"),
        (("[plugins]\nenabled = versions_count_project_metadata",
          "[versions_count_project_metadata]\nmin_versions = 10\nmax_versions = 5"),
         "versions_count_project_metadata", "min_versions", "greater than max_versions"),
        (("[plugins]\nenabled = exclude_platform",), "blocklist", "platforms", "missing"),
        (("[plugins]\nenabled = exclude_platform", "[blocklist]\nplatforms =\n    windows\n    amiga"),
         "blocklist", "platforms", "'amiga'"),
        (("[plugins]\nenabled = allowlist_project",), "allowlist", "packages", "nothing would be mirrored"),
        (("[plugins]\nenabled = blocklist_project", "[allowlist]\nwith-dependencies = true"),
         "allowlist", "with-dependencies", "allowlist_project"),
        (("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages = a\nwith-dependencies = maybe"),
         "allowlist", "with-dependencies", "not a boolean"),
        (("[plugins]\nenabled = project_requirements",), "allowlist", "requirements", "missing"),
        (("[plugins]\nenabled = all\n", "[blacklist_project]\npackages = x"),
         "blacklist_project", None, "not supported"),
    ],
)
def test_a_bad_filter_setting_names_section_option_and_line(
    sections: tuple[str, ...], section: str, option: str | None, words: str
) -> None:
    error = refused(*sections)
    assert (error.section, error.option) == (section, option), str(error)
    assert words in str(error)


def test_unknown_option_in_a_filter_section_is_a_typo_we_report() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse(conf("[plugins]\nenabled = allowlist_project", "[allowlist]\npackage = foo"), CONF)
    # The typo, and what it leaves missing, in the same run.
    typo, missing = info.value.problems
    assert (typo.section, typo.option) == ("allowlist", "package")
    assert "did you mean packages?" in str(typo)
    assert (missing.section, missing.option) == ("allowlist", "packages")


def test_requirement_files_add_their_names_and_globs_are_expanded(tmp_path: Path) -> None:
    (tmp_path / "requirements-a.txt").write_text(
        "# pinned by pip-compile\nalpha==1.0 \\\n    --hash=sha256:abc\n-r more.txt\n"
        "--index-url https://example.org/simple\nBeta[x]>=2 ; python_version >= '3.8'\n")
    (tmp_path / "requirements-b.txt").write_text("gamma\n")
    (tmp_path / "more.txt").write_text("delta<5  # comment\n")
    text = conf("[plugins]\nenabled =\n    project_requirements\n    project_requirements_pinned",
                f"[allowlist]\nrequirements_path = {tmp_path}\nrequirements =\n    requirements-*.txt")
    text = text.replace("/srv/pypi", str(tmp_path / "mirror"))
    path = tmp_path / "b.conf"
    path.write_text(text)
    cfg = load(path).filters
    assert [(p.key, p.specifier) for p in cfg.requirements] == [
        ("alpha", "==1.0"), ("delta", "<5"), ("beta", ">=2"), ("gamma", "")]
    assert cfg.requirements[2].extras == {"x"}


def test_a_bad_requirements_file_line_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("good\n\nnot a requirement!\n")
    path = tmp_path / "b.conf"
    path.write_text(conf("[plugins]\nenabled = project_requirements",
                         f"[allowlist]\nrequirements = {tmp_path}/req.txt").replace(
        "/srv/pypi", str(tmp_path / "m")))
    with pytest.raises(ConfigError) as info:
        load(path)
    assert (info.value.section, info.value.option) == ("allowlist", "requirements")
    assert f"{tmp_path}/req.txt line 3" in str(info.value)


def test_a_requirements_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "b.conf"
    path.write_text(conf("[plugins]\nenabled = project_requirements",
                         f"[allowlist]\nrequirements_path = {tmp_path}\nrequirements = nope-*.txt").replace(
        "/srv/pypi", str(tmp_path / "m")))
    with pytest.raises(ConfigError, match="matches no file"):
        load(path)


def test_fingerprint_changes_with_the_selection_and_ignores_spelling() -> None:
    base = filters("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages =\n    Foo\n    bar")
    same = filters("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages =\n    bar\n    foo")
    other = filters("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages = foo")
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != other.fingerprint()


# bandersnatch 8's documented patterns, and shapes real configs use: every one is kept.
BOUNDED = [r".*-nightly$", r"^django-.*", r".*\.dev\d+$", r"(?i)^test", r".+-evil$", r".*rc\d$",
           r".*(rc|alpha|beta|a|b)\d*$", r"^\d+(\.\d+)*$", r"^(\d+\.)*\d+$", r"^(?!.*foo).*\.dev\d+$",
           r"^(?:[a-z]+-)+nightly$", r"[a-z]{2,3}", r"(ab?){2,5}", r"^(aa|bb)+$", r"(\d|\w)*", r"(a++)+x",
           r"(?>a+)+x", r"(a|ab)++c", r"^pypi-.*", r"(?i).*NIGHTLY.*"]
# Each can take time exponential in the length of the name it is matched against.
EXPONENTIAL = [r"(a+)+-nightly$", r"(a*)*", r"(\w+\s?)+$", r"(a|ab)+", r"(a?b?)*c", r"(x+x+y)+z", r"(.*,)*",
               r"(a|a){1,30}", r"(a?){25}a", r"(-?\d+)*$", r"((ab)*)+", r"(a|)+", r"(\d+)*\.\d+",
               r"(?>(a|ab)*)c", r"^(?!(a+)+b)x", r"(?i)(ab|AC)+"]


@pytest.mark.parametrize("pattern", BOUNDED)
@pytest.mark.parametrize("option", ["packages", "releases"])
def test_a_regex_that_matches_in_bounded_time_is_accepted(pattern: str, option: str) -> None:
    plugin = "regex_project" if option == "packages" else "regex_release"
    cfg = filters(f"[plugins]\nenabled = {plugin}", f"[filter_regex]\n{option} =\n    {pattern}")
    assert pattern in (cfg.project_patterns if option == "packages" else cfg.release_patterns)


@pytest.mark.parametrize("pattern", EXPONENTIAL)
@pytest.mark.parametrize("option", ["packages", "releases"])
def test_a_regex_that_can_backtrack_exponentially_is_refused_at_load(pattern: str, option: str) -> None:
    # Python's re cannot be interrupted: such a pattern and one hostile name hang the run.
    error = refused("[plugins]\nenabled = regex_project\n    regex_release",
                    f"[filter_regex]\n{option} =\n    .*-ok$\n    {pattern}")
    assert (error.section, error.option) == ("filter_regex", option)
    assert repr(pattern) in str(error) and "exponential" in str(error)


@pytest.mark.parametrize(("section", "line", "reader"), [
    ("allowlist", "packages = foo", "allowlist_project"),
    ("allowlist", "requirements = reqs.txt", "project_requirements"),
    ("allowlist", "requirements_path = /etc/reqs", "project_requirements"),
    ("blocklist", "packages = foo", "blocklist_project"),
    ("blocklist", "platforms = windows", "exclude_platform"),
    ("filter_regex", "packages = .*-nightly", "regex_project"),
    ("filter_regex", "releases = .*dev.*", "regex_release"),
    ("filter_prerelease", "packages = numpy", "prerelease_release"),
    ("latest_release", "keep = 3", "latest_release"),
    ("latest_release", "sort_by = time", "latest_release"),
    ("size_project_metadata", "max_package_size = 1G", "size_project_metadata"),
    ("versions_count_project_metadata", "min_versions = 2", "versions_count_project_metadata"),
    ("versions_count_project_metadata", "max_versions = 9", "versions_count_project_metadata"),
])
def test_every_filter_option_no_enabled_plugin_reads_is_refused_naming_a_plugin_that_would(
        section: str, line: str, reader: str) -> None:
    other = "latest_release" if section == "filter_prerelease" else "prerelease_release"
    rest = "\n\n[latest_release]\nkeep = 1" if other == "latest_release" else ""
    error = refused(f"[plugins]\nenabled = {other}", f"[{section}]\n{line}{rest}")
    option = line.split(" =", 1)[0]
    assert (error.section, error.option) == (section, option)
    assert reader in str(error) and "[plugins] enabled" in str(error)


