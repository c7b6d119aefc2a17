"""Filter plugins as types: one class per plugin, in one registry.

A plugin class carries its bandersnatch name, the options it reads (so an option no enabled
plugin reads is refused, and ``enabled = all`` knows which plugins have settings), the check
that refuses it enabled without the settings it needs, its part of the fingerprint (so changing
its options reconciles the mirror) and its hooks (project, release, file), which say why
something is not mirrored or ``None``.  Adding a filter is one class and one line in ``BUILTIN``.

Third-party filters register a ``FilterPlugin`` subclass in the entry point group
``bandersnatch.filters``; only names listed in ``[plugins] enabled`` are loaded.  bandersnatch 8's
``bandersnatch_filter_plugins.*`` groups are never read: their classes expect its API.  The
configuration's sections are fixed (``filters.SCHEMA``), so a third-party plugin has no options
of its own yet.

Most built-in plugins decide alone and carry their hook here.  Those that decide together stay
in ``selection.policy``: the allowlists and requirements (one set of roots and version limits,
the size and count limits they exempt from) and ``latest_release`` (which counts the releases
every other filter left); their classes carry the name, options and fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..errors import ConfigError
from ..formats.dists import PlatformFilter
from ..formats.simple import DistFile
from .metadatarules import Rule, range_holds, regex_holds

ENTRY_POINT_GROUP = "bandersnatch.filters"

PLUGINS = "plugins"
ALLOWLIST = "allowlist"
BLOCKLIST = "blocklist"
FILTER_REGEX = "filter_regex"
FILTER_PRERELEASE = "filter_prerelease"
LATEST_RELEASE = "latest_release"
SIZE_PROJECT = "size_project_metadata"
VERSIONS_COUNT = "versions_count_project_metadata"
REGEX_METADATA = "regex_project_metadata"
VERSION_RANGE_METADATA = "version_range_project_metadata"
# bandersnatch 8.2's version_range_project_metadata reads this section (its base class's), so an
# 8.2 configuration may put the project rules there.
VERSION_RANGE_FILE_METADATA = "version_range_release_file_metadata"
REGEX_FILE_METADATA = "regex_release_file_metadata"
ANY_OPTION = "*"  # in ``reads``/``needs``: every option of a section without fixed options

Option = tuple[str, str]  # (section, option)


@dataclass(frozen=True)
class Pin:
    """One requirement line of an allowlist, blocklist or requirements file, parsed."""

    key: str  # PEP 503 normalized
    extras: frozenset[str]
    specifier: str  # "" when the line has none
    text: str  # the line as the operator wrote it


class FilterPlugin:
    """One filter; subclasses set ``name`` and override what they need.

    A plugin is built once per run with the parsed configuration; its hooks must be pure and
    safe to call from several threads.
    """

    name: ClassVar[str]
    reads: ClassVar[tuple[Option, ...]] = ()
    # True: the plugin decides on upstream's JSON API document (``/pypi/<project>/json``), which
    # the sync then fetches for every project it syncs.
    needs_metadata: ClassVar[bool] = False
    # With ``enabled = all`` a plugin is on when any of these is set (no entry: always on).
    needs: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, cfg: FilterConfig) -> None:
        self.cfg = cfg

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        """Labelled parts of the fingerprint: every setting that changes what this plugin selects."""
        return {}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        """Raise ConfigError when the plugin is enabled but its settings cannot mean what is wanted."""

    def project(self, key: str, name: str | None) -> str | None:
        """Why the project ``key`` is not mirrored, or None."""
        return None

    def metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        """Why the project ``key`` is not mirrored, judged on its JSON API document, or None."""
        return None

    def release(self, key: str, version: Version) -> str | None:
        """Why the release ``version`` of ``key`` is not mirrored, or None."""
        return None

    def file_metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        """Why a file is not mirrored, judged on ``{"info", "release", "release_file"}`` built from
        the project's JSON API document (bandersnatch 8.2's shape), or None."""
        return None

    def file(self, key: str, dist: DistFile) -> str | None:
        """Why the file ``dist`` of ``key`` is not mirrored, or None."""
        return None


@dataclass(frozen=True)
class FilterConfig:
    """What the operator selected; ``enabled`` empty means the whole upstream is mirrored."""

    enabled: frozenset[str] = frozenset()
    allowlist: tuple[Pin, ...] = ()
    with_dependencies: bool = False
    requirements_path: Path = Path("/")
    requirement_globs: tuple[str, ...] = ()
    requirements: tuple[Pin, ...] = ()  # read from the files by read_requirement_files
    requirement_sources: tuple[str, ...] = ()  # the files they came from (the pins are fingerprinted)
    lock_globs: tuple[str, ...] = ()  # [allowlist] lockfiles: read into ``requirements`` with the files
    lock_notes: tuple[str, ...] = field(default=(), compare=False)  # one line per lock entry skipped
    blocklist: tuple[Pin, ...] = ()
    platforms: tuple[str, ...] = ()
    project_patterns: tuple[str, ...] = ()
    release_patterns: tuple[str, ...] = ()
    prerelease_projects: frozenset[str] | None = None  # None: every project
    latest_keep: int | None = None
    latest_sort_by: str = "version"
    max_package_size: int | None = None
    min_versions: int | None = None
    max_versions: int | None = None
    metadata_regexes: tuple[Rule, ...] = ()  # [regex_project_metadata]
    metadata_ranges: tuple[Rule, ...] = ()  # [version_range_project_metadata]
    file_regexes: tuple[Rule, ...] = ()  # [regex_release_file_metadata]
    file_ranges: tuple[Rule, ...] = ()  # [version_range_release_file_metadata]
    third_party: tuple[type[FilterPlugin], ...] = ()  # enabled plugins from the entry point group
    where: str = field(default="", compare=False)

    @property
    def active(self) -> bool:
        return bool(self.enabled)

    def uses(self, plugin: type[FilterPlugin] | str) -> bool:
        """Whether ``plugin`` (a class, or its bandersnatch name) is enabled."""
        return (plugin if isinstance(plugin, str) else plugin.name) in self.enabled

    def fingerprint(self) -> str:
        """A digest of everything that decides the selection: a change means reconcile the mirror."""
        return fingerprint(self)


def specifiers(pins: Iterable[Pin]) -> dict[str, list[SpecifierSet]]:
    """The version specifiers of ``pins``, by project key (pins without one are left out)."""
    out: dict[str, list[SpecifierSet]] = defaultdict(list)
    for pin in pins:
        if pin.specifier:
            try:
                out[pin.key].append(SpecifierSet(pin.specifier))
            except InvalidSpecifier:  # pragma: no cover - the configuration parsed it already
                continue
    return dict(out)


def matches_any(version: Version, sets: Sequence[SpecifierSet]) -> bool:
    return any(s.contains(version, prereleases=True) for s in sets)


def _pin_ids(pins: Iterable[Pin]) -> str:
    return ",".join(sorted(f"{p.key}[{','.join(sorted(p.extras))}]{p.specifier}" for p in pins))


# --------------------------------------------------------------------------
# The built-in plugins (bandersnatch 6-8's names and meaning)
# --------------------------------------------------------------------------


class AllowlistProject(FilterPlugin):
    name = "allowlist_project"
    reads = ((ALLOWLIST, "packages"),)
    needs = reads

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"allow": _pin_ids(cfg.allowlist), "deps": str(cfg.with_dependencies)}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.allowlist and not cfg.uses(ProjectRequirements):
            raise ConfigError(where, ALLOWLIST, "packages",
                              "missing or empty: allowlist_project is enabled, so nothing would be mirrored")


class AllowlistRelease(FilterPlugin):
    name = "allowlist_release"
    reads = ((ALLOWLIST, "packages"),)
    needs = reads

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"allow": _pin_ids(cfg.allowlist)}


class ProjectRequirements(FilterPlugin):
    name = "project_requirements"
    reads = ((ALLOWLIST, "requirements"), (ALLOWLIST, "lockfiles"), (ALLOWLIST, "requirements_path"))
    needs = ((ALLOWLIST, "requirements"), (ALLOWLIST, "lockfiles"))

    # A lock's pins join ``requirements`` (one ``==`` pin per locked version), so they are
    # fingerprinted with the requirement lines: a changed lock reconciles the mirror.
    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"req": _pin_ids(cfg.requirements), "deps": str(cfg.with_dependencies)}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.requirement_globs and not cfg.lock_globs:
            raise ConfigError(where, ALLOWLIST, "requirements",
                              "missing: project_requirements is enabled but names no requirements file "
                              "(requirements) or lock file (lockfiles)")


class ProjectRequirementsPinned(FilterPlugin):
    name = "project_requirements_pinned"
    reads = ProjectRequirements.reads
    needs = ProjectRequirements.needs
    check = ProjectRequirements.check

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"req": _pin_ids(cfg.requirements)}


class BlocklistProject(FilterPlugin):
    name = "blocklist_project"
    reads = ((BLOCKLIST, "packages"),)
    needs = reads

    def __init__(self, cfg: FilterConfig) -> None:
        super().__init__(cfg)
        self._blocked = frozenset(p.key for p in cfg.blocklist if not p.specifier)

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"block": _pin_ids(cfg.blocklist)}

    def project(self, key: str, name: str | None) -> str | None:
        return "in the blocklist" if key in self._blocked else None


class BlocklistRelease(FilterPlugin):
    name = "blocklist_release"
    reads = BlocklistProject.reads
    needs = reads

    def __init__(self, cfg: FilterConfig) -> None:
        super().__init__(cfg)
        self._blocked = specifiers(cfg.blocklist)

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return BlocklistProject.fingerprint(cfg)

    def release(self, key: str, version: Version) -> str | None:
        blocked = self._blocked.get(key)
        return f"version {version} in the blocklist" if blocked and matches_any(version, blocked) else None


class RegexProject(FilterPlugin):
    name = "regex_project"
    reads = ((FILTER_REGEX, "packages"),)
    needs = reads

    def __init__(self, cfg: FilterConfig) -> None:
        super().__init__(cfg)
        self._patterns = [re.compile(p) for p in cfg.project_patterns]

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"rx": "\0".join(cfg.project_patterns)}

    def project(self, key: str, name: str | None) -> str | None:
        for pattern in self._patterns:
            if pattern.match(key) or (name is not None and pattern.match(name)):
                return f"matches {pattern.pattern!r}"
        return None


class RegexRelease(FilterPlugin):
    name = "regex_release"
    reads = ((FILTER_REGEX, "releases"),)
    needs = reads

    def __init__(self, cfg: FilterConfig) -> None:
        super().__init__(cfg)
        self._patterns = [re.compile(p) for p in cfg.release_patterns]

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"rrx": "\0".join(cfg.release_patterns)}

    def release(self, key: str, version: Version) -> str | None:
        for pattern in self._patterns:
            if pattern.match(str(version)):
                return f"version {version} matches {pattern.pattern!r}"
        return None


class PrereleaseRelease(FilterPlugin):
    name = "prerelease_release"
    reads = ((FILTER_PRERELEASE, "packages"),)
    needs = ()  # no setting needed: every project's pre-releases go

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        scope = cfg.prerelease_projects
        return {"pre": ",".join(sorted(scope)) if scope is not None else "*"}

    def release(self, key: str, version: Version) -> str | None:
        scope = self.cfg.prerelease_projects
        if version.is_prerelease and (scope is None or key in scope):
            return f"version {version} is a pre-release"
        return None


class LatestRelease(FilterPlugin):
    name = "latest_release"
    reads = ((LATEST_RELEASE, "keep"), (LATEST_RELEASE, "sort_by"))
    needs = ((LATEST_RELEASE, "keep"),)

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"latest": f"{cfg.latest_keep}/{cfg.latest_sort_by}"}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if cfg.latest_keep is None:
            raise ConfigError(where, LATEST_RELEASE, "keep",
                              "missing: latest_release is enabled but does not say how many releases to keep")


class ExcludePlatform(FilterPlugin):
    name = "exclude_platform"
    reads = ((BLOCKLIST, "platforms"),)
    needs = reads

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"platforms": ",".join(sorted(p.lower() for p in cfg.platforms))}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.platforms:
            raise ConfigError(where, BLOCKLIST, "platforms",
                              "missing: exclude_platform is enabled but names no platform to exclude")

    def __init__(self, cfg: FilterConfig) -> None:
        super().__init__(cfg)
        self.platforms = PlatformFilter.parse(cfg.platforms)

    def file(self, key: str, dist: DistFile) -> str | None:
        return self.platforms.excludes(dist.filename) or None


class SizeProjectMetadata(FilterPlugin):
    name = "size_project_metadata"
    # The allowlist exempts projects from the size and count limits.
    reads = ((SIZE_PROJECT, "max_package_size"), (ALLOWLIST, "packages"))
    needs = ((SIZE_PROJECT, "max_package_size"),)

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"size": str(cfg.max_package_size)}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if cfg.max_package_size is None:
            raise ConfigError(where, SIZE_PROJECT, "max_package_size",
                              "missing: size_project_metadata is enabled without a size")


class VersionsCountProjectMetadata(FilterPlugin):
    name = "versions_count_project_metadata"
    reads = ((VERSIONS_COUNT, "min_versions"), (VERSIONS_COUNT, "max_versions"), (ALLOWLIST, "packages"))
    needs = ((VERSIONS_COUNT, "min_versions"), (VERSIONS_COUNT, "max_versions"))

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"versions": f"{cfg.min_versions}-{cfg.max_versions}"}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        low, high = cfg.min_versions, cfg.max_versions
        if low is not None and high is not None and low > high:
            raise ConfigError(where, VERSIONS_COUNT, "min_versions",
                              f"{low} is greater than max_versions ({high})")
        if low is None and high is None:
            raise ConfigError(where, VERSIONS_COUNT, "min_versions",
                              "missing: versions_count_project_metadata is enabled without min_versions "
                              "or max_versions")


class RegexProjectMetadata(FilterPlugin):
    """bandersnatch 8.2's: keep a project only when each rule's patterns match its JSON metadata."""

    name = REGEX_METADATA
    reads = ((REGEX_METADATA, ANY_OPTION),)
    needs = reads
    needs_metadata = True

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        # Nothing when unset, so configurations from before the plugin keep their fingerprint.
        return {"rxmeta": _rule_ids(cfg.metadata_regexes)} if cfg.metadata_regexes else {}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.metadata_regexes:
            raise ConfigError(where, REGEX_METADATA, None, "missing: regex_project_metadata is enabled "
                              "without a rule such as not-null:info.classifiers = .*Python :: 3.*")

    def metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        for rule in self.cfg.metadata_regexes:
            if not regex_holds(rule, doc):
                return f"metadata {rule.option} does not match {', '.join(map(repr, rule.values))}"
        return None


class VersionRangeProjectMetadata(FilterPlugin):
    """bandersnatch 8.2's: keep a project only when the specifier at each rule's path (such as
    ``info.requires_python``) admits one of the rule's versions."""

    name = VERSION_RANGE_METADATA
    reads = ((VERSION_RANGE_METADATA, ANY_OPTION), (VERSION_RANGE_FILE_METADATA, ANY_OPTION))
    needs = reads
    needs_metadata = True

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"vrmeta": _rule_ids(cfg.metadata_ranges)} if cfg.metadata_ranges else {}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.metadata_ranges:
            raise ConfigError(where, VERSION_RANGE_METADATA, None, "missing: version_range_project_metadata "
                              "is enabled without a rule such as info.requires_python = 3.12")

    def metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        for rule in self.cfg.metadata_ranges:
            if not range_holds(rule, doc):
                return f"metadata {rule.option} admits none of {', '.join(rule.values)}"
        return None


class RegexReleaseFileMetadata(FilterPlugin):
    """bandersnatch 8.2's: keep a file only when each rule's patterns match its metadata
    (``release_file.packagetype``, ``release`` (the version), ``info.*``)."""

    name = REGEX_FILE_METADATA
    reads = ((REGEX_FILE_METADATA, ANY_OPTION),)
    needs = reads
    needs_metadata = True

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"rxfile": _rule_ids(cfg.file_regexes)} if cfg.file_regexes else {}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.file_regexes:
            raise ConfigError(where, REGEX_FILE_METADATA, None, "missing: regex_release_file_metadata is "
                              "enabled without a rule such as any:release_file.packagetype = bdist_wheel")

    def file_metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        for rule in self.cfg.file_regexes:
            if not regex_holds(rule, doc):
                return f"metadata {rule.option} does not match {', '.join(map(repr, rule.values))}"
        return None


class VersionRangeReleaseFileMetadata(FilterPlugin):
    """bandersnatch 8.2's: keep a file only when the specifier at each rule's path (such as
    ``release_file.requires_python``) admits one of the rule's versions."""

    name = VERSION_RANGE_FILE_METADATA
    reads = ((VERSION_RANGE_FILE_METADATA, ANY_OPTION),)
    needs = reads
    needs_metadata = True

    @classmethod
    def fingerprint(cls, cfg: FilterConfig) -> Mapping[str, str]:
        return {"vrfile": _rule_ids(cfg.file_ranges)} if cfg.file_ranges else {}

    @classmethod
    def check(cls, cfg: FilterConfig, where: str) -> None:
        if not cfg.file_ranges:
            raise ConfigError(where, VERSION_RANGE_FILE_METADATA, None, "missing: "
                              "version_range_release_file_metadata is enabled without a rule such as "
                              "release_file.requires_python = 3.12")

    def file_metadata(self, key: str, doc: Mapping[str, object]) -> str | None:
        for rule in self.cfg.file_ranges:
            if not range_holds(rule, doc):
                return f"metadata {rule.option} admits none of {', '.join(rule.values)}"
        return None


def _rule_ids(rules: Iterable[Rule]) -> str:
    return "\0".join(sorted(rule.describe() for rule in rules))


def _registry(*plugins: type[FilterPlugin]) -> Mapping[str, type[FilterPlugin]]:
    return {plugin.name: plugin for plugin in plugins}


BUILTIN: Mapping[str, type[FilterPlugin]] = _registry(
    AllowlistProject,
    AllowlistRelease,
    ProjectRequirements,
    ProjectRequirementsPinned,
    BlocklistProject,
    BlocklistRelease,
    RegexProject,
    RegexRelease,
    PrereleaseRelease,
    LatestRelease,
    ExcludePlatform,
    SizeProjectMetadata,
    VersionsCountProjectMetadata,
    RegexProjectMetadata,
    VersionRangeProjectMetadata,
    RegexReleaseFileMetadata,
    VersionRangeReleaseFileMetadata,
)
"""Every plugin this client implements, by its bandersnatch name."""

# bandersnatch 8 plugins we do not implement, and what to use instead.
REFUSED: Mapping[str, str] = {
    "whitelist_project": "renamed allowlist_project in bandersnatch 5; use that name",
    "whitelist_release": "renamed allowlist_release in bandersnatch 5; use that name",
    "blacklist_project": "renamed blocklist_project in bandersnatch 5; use that name",
    "blacklist_release": "renamed blocklist_release in bandersnatch 5; use that name",
}

# The order of the fingerprint's parts before plugins were types: kept, so that upgrading does
# not change an existing configuration's fingerprint (which would reconcile the whole mirror).
_PART_ORDER = ("allow", "deps", "req", "block", "platforms", "rx", "rrx", "pre", "latest", "size", "versions")


def fingerprint(cfg: FilterConfig) -> str:
    """The digest of ``cfg``: the enabled names, then every plugin's parts, by label."""
    parts: dict[str, str] = {}
    for plugin in (*BUILTIN.values(), *cfg.third_party):
        for label, text in plugin.fingerprint(cfg).items():
            parts.setdefault(label if plugin.name in BUILTIN else f"{plugin.name}.{label}", text)
    order = {label: i for i, label in enumerate(_PART_ORDER)}
    labels = sorted(parts, key=lambda label: (order.get(label, len(order)), label))
    lines = ["enabled=" + ",".join(sorted(cfg.enabled)), *(f"{label}={parts[label]}" for label in labels)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------
# Third-party plugins (our entry point group)
# --------------------------------------------------------------------------

def third_party(name: str, where: str) -> type[FilterPlugin] | None:
    """The plugin registered as ``name`` in ``bandersnatch.filters``, or None if none is.

    Only the entry point of that name is loaded: an installed plugin the operator did not
    enable never runs its import.
    """
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        plugin = ep.load()
        if not (isinstance(plugin, type) and issubclass(plugin, FilterPlugin)):
            raise ConfigError(where, PLUGINS, "enabled", f"plugin {name} ({ep.value}) is not a "
                              "bandersnatch.config.plugins.FilterPlugin subclass")
        if getattr(plugin, "name", None) != name:
            raise ConfigError(where, PLUGINS, "enabled", f"plugin {name} ({ep.value}) names itself "
                              f"{getattr(plugin, 'name', None)!r}; the entry point and the class must agree")
        return plugin
    return None
