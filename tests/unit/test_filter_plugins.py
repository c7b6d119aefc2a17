"""Filter plugins as types: one registry, every bandersnatch name accounted for, every option
fingerprinted, and third-party plugins loaded from our entry point group only when enabled.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bandersnatch.config.filters import read_requirement_files
from bandersnatch.config.plugins import BUILTIN, ENTRY_POINT_GROUP, REFUSED
from bandersnatch.config.settings import parse
from bandersnatch.errors import ConfigError
from bandersnatch.selection.policy import Selection

CONF = Path("/etc/bandersnatch-test.conf")

# The filter plugins bandersnatch registers in its entry point groups
# (bandersnatch_filter_plugins.v2.{project,metadata,release,release_file}), with the two metadata
# plugins 8.x added, and the names it renamed in 5.0.
BANDERSNATCH_PLUGINS = (
    "blocklist_project", "allowlist_project", "regex_project", "project_requirements",
    "regex_project_metadata", "size_project_metadata", "version_range_project_metadata",
    "versions_count_project_metadata",
    "blocklist_release", "allowlist_release", "prerelease_release", "regex_release", "latest_release",
    "project_requirements_pinned",
    "regex_release_file_metadata", "version_range_release_file_metadata", "exclude_platform",
    "whitelist_project", "whitelist_release", "blacklist_project", "blacklist_release",
)


def conf(*sections: str) -> str:
    return "[mirror]\ndirectory = /srv/pypi\n\n" + "\n\n".join(sections) + "\n"


@pytest.mark.parametrize("name", BANDERSNATCH_PLUGINS)
def test_every_bandersnatch_plugin_name_is_registered_or_refused_with_one_line(name: str) -> None:
    assert (name in BUILTIN) != (name in REFUSED)
    if name in REFUSED:
        with pytest.raises(ConfigError) as info:
            parse(conf(f"[plugins]\nenabled = {name}"), CONF)
        assert "\n" not in str(info.value) and name in str(info.value)


def test_the_registry_knows_its_plugins_by_their_own_names() -> None:
    assert all(plugin.name == name for name, plugin in BUILTIN.items())


# For each registered plugin: two configurations enabling it that differ only in its options.
VARIANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "allowlist_project": (("[allowlist]\npackages = foo",), ("[allowlist]\npackages = bar",)),
    "allowlist_release": (("[allowlist]\npackages = foo>=1",), ("[allowlist]\npackages = foo>=2",)),
    "project_requirements": (("[allowlist]\nrequirements = a.txt",), ("[allowlist]\nrequirements = b.txt",)),
    "project_requirements_pinned": (("[allowlist]\nrequirements = a.txt",),
                                    ("[allowlist]\nrequirements = b.txt",)),
    "blocklist_project": (("[blocklist]\npackages = foo",), ("[blocklist]\npackages = bar",)),
    "blocklist_release": (("[blocklist]\npackages = foo<2",), ("[blocklist]\npackages = foo<3",)),
    "regex_project": (("[filter_regex]\npackages = foo.*",), ("[filter_regex]\npackages = bar.*",)),
    "regex_release": (("[filter_regex]\nreleases = .*rc",), ("[filter_regex]\nreleases = .*dev",)),
    "prerelease_release": ((), ("[filter_prerelease]\npackages = foo",)),
    "latest_release": (("[latest_release]\nkeep = 1",), ("[latest_release]\nkeep = 1\nsort_by = time",)),
    "exclude_platform": (("[blocklist]\nplatforms = windows",), ("[blocklist]\nplatforms = macos",)),
    "size_project_metadata": (("[size_project_metadata]\nmax_package_size = 1G",),
                              ("[size_project_metadata]\nmax_package_size = 2G",)),
    "versions_count_project_metadata": (("[versions_count_project_metadata]\nmin_versions = 1",),
                                        ("[versions_count_project_metadata]\nmax_versions = 9",)),
    "regex_project_metadata": (("[regex_project_metadata]\ninfo.name = a.*",),
                               ("[regex_project_metadata]\nnot-null:info.name = a.*",)),
    "version_range_project_metadata": (("[version_range_project_metadata]\ninfo.requires_python = 3.12",),
                                       ("[version_range_project_metadata]\ninfo.requires_python = 2.7",)),
    "regex_release_file_metadata": (("[regex_release_file_metadata]\nrelease_file.packagetype = sdist",),
                                    ("[regex_release_file_metadata]\nrelease_file.packagetype = wheel",)),
    "version_range_release_file_metadata": (
        ("[version_range_release_file_metadata]\nrelease_file.requires_python = 3.12",),
        ("[version_range_release_file_metadata]\nrelease_file.requires_python = 2.7",)),
}


def fingerprint(name: str, sections: tuple[str, ...], tmp_path: Path) -> str:
    (tmp_path / "a.txt").write_text("foo\n")
    (tmp_path / "b.txt").write_text("bar==1.0\n")
    text = conf(f"[plugins]\nenabled = {name}", *sections)
    text = text.replace("requirements = ", f"requirements_path = {tmp_path}\nrequirements = ")
    return read_requirement_files(parse(text, CONF).filters).fingerprint()


def test_every_registered_plugin_has_fingerprint_variants() -> None:
    assert set(VARIANTS) == set(BUILTIN)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_registered_plugins_options_change_the_fingerprint(name: str, tmp_path: Path) -> None:
    before, after = VARIANTS[name]
    assert fingerprint(name, before, tmp_path) != fingerprint(name, after, tmp_path)


def test_the_fingerprint_of_an_existing_configuration_is_what_it_was_before_plugins_were_types() -> None:
    # A changed value reconciles every mirror once after an upgrade: it must be on purpose.
    text = conf(
        "[plugins]\nenabled =\n    allowlist_project\n    allowlist_release\n    blocklist_release\n"
        "    exclude_platform\n    latest_release\n    prerelease_release\n    regex_release",
        "[allowlist]\npackages =\n    foo>=1\n    bar[x]",
        "[blocklist]\npackages = baz<2\nplatforms = windows",
        "[filter_regex]\nreleases = .*rc",
        "[latest_release]\nkeep = 3",
        "[filter_prerelease]\npackages = foo",
    )
    assert parse(text, CONF).filters.fingerprint() == "1fa0843f2876cb5b684a221e1d4e6954"
    assert parse(conf(), CONF).filters.fingerprint() == "841d4963d0e4c5e623a8ecfacc2c248d"


# --------------------------------------------------------------------------
# Third-party plugins
# --------------------------------------------------------------------------

PLUGIN_MODULE = '''
from bandersnatch.config.plugins import FilterPlugin


class NoNightly(FilterPlugin):
    name = "no_nightly"

    def project(self, key, name):
        return "a nightly build" if key.endswith("-nightly") else None

    def release(self, key, version):
        return "a dev release" if version.is_devrelease else None
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A tiny distribution on sys.path: one plugin in our group, one broken one, one 8.x one."""
    (tmp_path / "tinyfilter.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (tmp_path / "tinybroken.py").write_text("raise RuntimeError('loaded although not enabled')\n")
    info = tmp_path / "tinyfilter-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyfilter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nno_nightly = tinyfilter:NoNightly\nbroken = tinybroken:Broken\n\n"
        "[bandersnatch_filter_plugins.v2.project]\nold_style = tinybroken:Broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for module in ("tinyfilter", "tinybroken"):
        sys.modules.pop(module, None)


@pytest.mark.usefixtures("installed_plugin")
def test_a_third_party_plugin_is_loaded_when_enabled_and_its_hooks_decide() -> None:
    cfg = parse(conf("[plugins]\nenabled =\n    blocklist_project\n    no_nightly",
                     "[blocklist]\npackages = evil"), CONF).filters
    assert [plugin.name for plugin in cfg.third_party] == ["no_nightly"]
    selection = Selection(cfg)
    why = selection.project("foo-nightly")
    assert why is not None and why.plugin == "no_nightly"
    assert str(why) == "no_nightly: a nightly build"
    assert selection.project("evil") is not None and selection.project("foo") is None
    assert "tinybroken" not in sys.modules


@pytest.mark.usefixtures("installed_plugin")
def test_an_installed_third_party_plugin_is_not_loaded_unless_enabled() -> None:
    cfg = parse(conf("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = evil"), CONF).filters
    assert cfg.third_party == ()
    assert Selection(cfg).project("foo-nightly") is None
    assert "tinyfilter" not in sys.modules and "tinybroken" not in sys.modules


@pytest.mark.usefixtures("installed_plugin")
def test_a_third_party_plugin_is_part_of_the_fingerprint() -> None:
    plain = parse(conf("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = evil"), CONF)
    extra = parse(conf("[plugins]\nenabled =\n    blocklist_project\n    no_nightly",
                       "[blocklist]\npackages = evil"), CONF)
    assert plain.filters.fingerprint() != extra.filters.fingerprint()


@pytest.mark.usefixtures("installed_plugin")
def test_bandersnatch8_entry_point_groups_are_never_read() -> None:
    with pytest.raises(ConfigError) as info:
        parse(conf("[plugins]\nenabled = old_style"), CONF)
    assert "unknown plugin 'old_style'" in str(info.value)
    assert "tinybroken" not in sys.modules
