"""The filter sections of the configuration, read with bandersnatch 6-8's names and meaning.

Filters are off unless ``[plugins] enabled`` names them (one per line, or
``all``).  Every plugin name bandersnatch 8 knows is either implemented here
with the same meaning or refused with one line: a silently ignored filter
would mirror terabytes nobody asked for.  Parsing is pure (text in, a frozen
``FilterConfig`` out); only ``read_requirement_files`` touches the disk.
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import ConfigError, Problems
from ..formats.dists import PlatformFilter
from ..names import normalize
from . import regexbound
from .values import parse_bool, size_bytes

PLUGINS = "plugins"
ALLOWLIST = "allowlist"
BLOCKLIST = "blocklist"
FILTER_REGEX = "filter_regex"
FILTER_PRERELEASE = "filter_prerelease"
LATEST_RELEASE = "latest_release"
SIZE_PROJECT = "size_project_metadata"
VERSIONS_COUNT = "versions_count_project_metadata"

SCHEMA: Mapping[str, tuple[str, ...]] = {
    PLUGINS: ("enabled",),
    ALLOWLIST: ("packages", "requirements_path", "requirements", "with-dependencies"),
    BLOCKLIST: ("packages", "platforms"),
    FILTER_REGEX: ("packages", "releases"),
    FILTER_PRERELEASE: ("packages",),
    LATEST_RELEASE: ("keep", "sort_by"),
    SIZE_PROJECT: ("max_package_size",),
    VERSIONS_COUNT: ("min_versions", "max_versions"),
}
"""The filter sections and options this client reads (added to config.SCHEMA)."""

IMPLEMENTED = (
    "allowlist_project",
    "allowlist_release",
    "project_requirements",
    "project_requirements_pinned",
    "blocklist_project",
    "blocklist_release",
    "regex_project",
    "regex_release",
    "prerelease_release",
    "latest_release",
    "exclude_platform",
    "size_project_metadata",
    "versions_count_project_metadata",
)

# bandersnatch 8 plugins we do not implement, and what to use instead.
REFUSED: Mapping[str, str] = {
    "regex_project_metadata": "filtering on JSON API metadata is not supported; "
    "use regex_project or an allowlist",
    "regex_release_file_metadata": "filtering on JSON API file metadata is not supported; "
    "use exclude_platform or regex_release",
    "version_range_project_metadata": "not supported; use allowlist_release or blocklist_release specifiers",
    "version_range_release_file_metadata": "not supported; use allowlist_release or blocklist_release "
    "specifiers",
    "whitelist_project": "renamed allowlist_project in bandersnatch 5; use that name",
    "whitelist_release": "renamed allowlist_release in bandersnatch 5; use that name",
    "blacklist_project": "renamed blocklist_project in bandersnatch 5; use that name",
    "blacklist_release": "renamed blocklist_release in bandersnatch 5; use that name",
}

_SORT_BY = ("version", "time")


@dataclass(frozen=True)
class Pin:
    """One requirement line of an allowlist, blocklist or requirements file, parsed."""

    key: str  # PEP 503 normalized
    extras: frozenset[str]
    specifier: str  # "" when the line has none
    text: str  # the line as the operator wrote it


@dataclass(frozen=True)
class FilterConfig:
    """What the operator selected; ``enabled`` empty means the whole upstream is mirrored."""

    enabled: frozenset[str] = frozenset()
    allowlist: tuple[Pin, ...] = ()
    with_dependencies: bool = False
    requirements_path: Path = Path("/")
    requirement_globs: tuple[str, ...] = ()
    requirements: tuple[Pin, ...] = ()  # read from the files by read_requirement_files
    requirement_sources: tuple[str, ...] = ()  # the files they came from, for the fingerprint
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
    where: str = field(default="", compare=False)

    @property
    def active(self) -> bool:
        return bool(self.enabled)

    def uses(self, plugin: str) -> bool:
        return plugin in self.enabled

    def fingerprint(self) -> str:
        """A digest of everything that decides the selection: a change means reconcile the mirror."""
        parts = [
            "enabled=" + ",".join(sorted(self.enabled)),
            "allow=" + ",".join(sorted(_pin_id(p) for p in self.allowlist)),
            f"deps={self.with_dependencies}",
            "req=" + ",".join(sorted(_pin_id(p) for p in self.requirements)),
            "block=" + ",".join(sorted(_pin_id(p) for p in self.blocklist)),
            "platforms=" + ",".join(sorted(p.lower() for p in self.platforms)),
            "rx=" + "\0".join(self.project_patterns),
            "rrx=" + "\0".join(self.release_patterns),
            "pre=" + (",".join(sorted(self.prerelease_projects)) if self.prerelease_projects is not None
                      else "*"),
            f"latest={self.latest_keep}/{self.latest_sort_by}",
            f"size={self.max_package_size}",
            f"versions={self.min_versions}-{self.max_versions}",
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _pin_id(pin: Pin) -> str:
    return f"{pin.key}[{','.join(sorted(pin.extras))}]{pin.specifier}"


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------


def lines(raw: str | None) -> list[str]:
    """The non-empty lines of a multi-line value, with ``#`` comments dropped."""
    if raw is None:
        return []
    out = []
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def parse_pin(line: str, where: str, section: str, option: str) -> Pin:
    """A PEP 508 requirement line; markers are refused (a mirror serves every environment)."""
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise ConfigError(where, section, option, f"line {line!r} is not a requirement: {detail}") from None
    if req.url:
        raise ConfigError(where, section, option, f"line {line!r}: a URL requirement cannot be mirrored")
    return Pin(
        key=normalize(req.name),
        extras=frozenset(normalize(e) for e in req.extras),
        specifier=str(req.specifier),
        text=line,
    )


# With ``enabled = all``, bandersnatch turns on every plugin with its defaults, and a plugin
# whose settings are absent does nothing: here it is simply not enabled.
_SETTINGS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "allowlist_project": ((ALLOWLIST, "packages"),),
    "allowlist_release": ((ALLOWLIST, "packages"),),
    "project_requirements": ((ALLOWLIST, "requirements"),),
    "project_requirements_pinned": ((ALLOWLIST, "requirements"),),
    "blocklist_project": ((BLOCKLIST, "packages"),),
    "blocklist_release": ((BLOCKLIST, "packages"),),
    "regex_project": ((FILTER_REGEX, "packages"),),
    "regex_release": ((FILTER_REGEX, "releases"),),
    "prerelease_release": (),  # no setting needed: every project's pre-releases go
    "latest_release": ((LATEST_RELEASE, "keep"),),
    "exclude_platform": ((BLOCKLIST, "platforms"),),
    "size_project_metadata": ((SIZE_PROJECT, "max_package_size"),),
    "versions_count_project_metadata": ((VERSIONS_COUNT, "min_versions"), (VERSIONS_COUNT, "max_versions")),
}


def _enabled(raw: str | None, where: str, values: Mapping[str, Mapping[str, str]]) -> frozenset[str]:
    names = [n.lower() for line in lines(raw) for n in line.replace(",", " ").split()]
    if names == ["all"]:
        for plugin in ("regex_project_metadata", "regex_release_file_metadata"):
            if plugin in values:
                raise ConfigError(where, plugin, None, f"plugin {plugin} is not supported: {REFUSED[plugin]}")
        return frozenset(
            plugin for plugin, needs in _SETTINGS.items()
            if not needs or any(values.get(section, {}).get(option) for section, option in needs)
        )
    whys = []  # every bad name at once: an 8.x file may name several plugins we lack
    for name in names:
        if name == "all":
            whys.append("'all' must stand alone")
        elif name in REFUSED:
            whys.append(f"plugin {name} is not supported: {REFUSED[name]}")
        elif name not in IMPLEMENTED:
            whys.append(f"unknown plugin {name!r}; known: {', '.join(IMPLEMENTED)}")
    if whys:
        raise ConfigError(where, PLUGINS, "enabled", "; ".join(whys))
    return frozenset(names)


# Which plugins read each option.  An option none of the enabled plugins reads is refused: an
# allowlist beside ``latest_release`` alone would otherwise mirror the whole upstream.
_READERS: Mapping[tuple[str, str], tuple[str, ...]] = {
    (ALLOWLIST, "packages"): ("allowlist_project", "allowlist_release", "size_project_metadata",
                              "versions_count_project_metadata"),
    (ALLOWLIST, "requirements"): ("project_requirements", "project_requirements_pinned"),
    (ALLOWLIST, "requirements_path"): ("project_requirements", "project_requirements_pinned"),
    (BLOCKLIST, "packages"): ("blocklist_project", "blocklist_release"),
    (BLOCKLIST, "platforms"): ("exclude_platform",),
    (FILTER_REGEX, "packages"): ("regex_project",),
    (FILTER_REGEX, "releases"): ("regex_release",),
    (FILTER_PRERELEASE, "packages"): ("prerelease_release",),
    (LATEST_RELEASE, "keep"): ("latest_release",),
    (LATEST_RELEASE, "sort_by"): ("latest_release",),
    (SIZE_PROJECT, "max_package_size"): ("size_project_metadata",),
    (VERSIONS_COUNT, "min_versions"): ("versions_count_project_metadata",),
    (VERSIONS_COUNT, "max_versions"): ("versions_count_project_metadata",),
}


def _check_read(values: Mapping[str, Mapping[str, str]], enabled: frozenset[str], where: str) -> None:
    """Refuse every set option that no enabled plugin reads, naming the plugin that would."""
    problems = Problems()
    requirements = enabled & {"project_requirements", "project_requirements_pinned"}
    for section, options in values.items():
        for option, raw in options.items():
            readers = _READERS.get((section, option))
            if readers is None or not raw.strip():
                continue  # [plugins] enabled, with-dependencies (checked below), or an empty value
            reading = enabled.intersection(readers)
            if (section, option) == (ALLOWLIST, "packages") and requirements \
                    and not enabled & {"allowlist_project", "allowlist_release"}:
                reading = frozenset()  # the size/count exemption then comes from the requirements files
            if not reading:
                problems.add(ConfigError(where, section, option, (
                    "set, but no enabled plugin reads it, so it would be ignored; add "
                    f"{' or '.join(readers[:2])} to [plugins] enabled, or delete the option")))
    problems.raise_any()


def _regexes(raw: str | None, where: str, option: str) -> tuple[str, ...]:
    patterns = lines(raw)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(where, FILTER_REGEX, option, f"line {pattern!r} is not a regular expression: "
                              f"{exc}") from None
        try:
            regexbound.check(pattern)
        except regexbound.Unbounded as exc:
            # Python's re cannot be interrupted: a match that backtracks exponentially hangs the run.
            raise ConfigError(where, FILTER_REGEX, option, f"line {pattern!r} could take time exponential in "
                              f"a name's length: {exc}; rewrite it without that") from None
    return tuple(patterns)


def _count(raw: str | None, where: str, section: str, option: str, minimum: int) -> int | None:
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) < minimum:
        raise ConfigError(where, section, option, f"{raw!r} is not a whole number of at least {minimum}")
    return int(raw)


def _size(raw: str | None, where: str) -> int | None:
    if raw is None or raw == "":
        return None
    value = size_bytes(raw)
    if value is None:
        raise ConfigError(where, SIZE_PROJECT, "max_package_size",
                          f"{raw!r} is not a size greater than 0 such as 1G, 500M or 1073741824")
    return value


def parse(values: Mapping[str, Mapping[str, str]], where: str) -> FilterConfig:
    """``values``: section -> option -> raw value, for the filter sections present in the file."""

    def get(section: str, option: str) -> str | None:
        return values.get(section, {}).get(option)

    enabled = _enabled(get(PLUGINS, "enabled"), where, values)
    if not enabled:
        for section in values:
            if section != PLUGINS and any(v.strip() for v in values[section].values()):
                raise ConfigError(where, section, None, "filter settings are present but [plugins] enabled "
                                  "names no plugin, so they would be ignored; enable the plugins you mean "
                                  "(or 'all'), or delete the section")
        return FilterConfig(where=where)
    _check_read(values, enabled, where)
    allow = tuple(parse_pin(line, where, ALLOWLIST, "packages") for line in lines(get(ALLOWLIST, "packages")))
    block = tuple(parse_pin(line, where, BLOCKLIST, "packages") for line in lines(get(BLOCKLIST, "packages")))
    raw_deps = get(ALLOWLIST, "with-dependencies")
    with_deps = False
    if raw_deps is not None:
        with_deps = parse_bool(raw_deps, False, where, ALLOWLIST, "with-dependencies")
    sort_by = (get(LATEST_RELEASE, "sort_by") or "version").lower()
    if sort_by not in _SORT_BY:
        raise ConfigError(where, LATEST_RELEASE, "sort_by",
                          f"{sort_by!r} is not one of {', '.join(_SORT_BY)}")
    pre = lines(get(FILTER_PRERELEASE, "packages"))
    cfg = FilterConfig(
        enabled=enabled,
        allowlist=allow,
        with_dependencies=with_deps,
        requirements_path=Path(get(ALLOWLIST, "requirements_path") or "/"),
        requirement_globs=tuple(lines(get(ALLOWLIST, "requirements"))),
        blocklist=block,
        platforms=tuple(p.lower() for line in lines(get(BLOCKLIST, "platforms")) for p in line.split()),
        project_patterns=_regexes(get(FILTER_REGEX, "packages"), where, "packages"),
        release_patterns=_regexes(get(FILTER_REGEX, "releases"), where, "releases"),
        prerelease_projects=frozenset(normalize(p) for p in pre) if pre else None,
        latest_keep=_count(get(LATEST_RELEASE, "keep"), where, LATEST_RELEASE, "keep", 0),
        latest_sort_by=sort_by,
        max_package_size=_size(get(SIZE_PROJECT, "max_package_size"), where),
        min_versions=_count(get(VERSIONS_COUNT, "min_versions"), where, VERSIONS_COUNT, "min_versions", 0),
        max_versions=_count(get(VERSIONS_COUNT, "max_versions"), where, VERSIONS_COUNT, "max_versions", 0),
        where=where,
    )
    _check_consistent(cfg, where)
    _check_platforms(cfg.platforms, where)
    return cfg


def _check_platforms(platforms: tuple[str, ...], where: str) -> None:
    try:
        PlatformFilter.parse(platforms)
    except ValueError as exc:
        raise ConfigError(where, BLOCKLIST, "platforms", str(exc)) from None


def _check_consistent(cfg: FilterConfig, where: str) -> None:
    """Settings that cannot mean what the operator wants are refused, not half-applied."""
    if cfg.min_versions is not None and cfg.max_versions is not None and cfg.min_versions > cfg.max_versions:
        raise ConfigError(where, VERSIONS_COUNT, "min_versions",
                          f"{cfg.min_versions} is greater than max_versions ({cfg.max_versions})")
    if cfg.uses("exclude_platform") and not cfg.platforms:
        raise ConfigError(where, BLOCKLIST, "platforms",
                          "missing: exclude_platform is enabled but names no platform to exclude")
    roots = cfg.uses("allowlist_project") or cfg.uses("project_requirements")
    if cfg.with_dependencies and not roots:
        raise ConfigError(where, ALLOWLIST, "with-dependencies",
                          "needs allowlist_project or project_requirements enabled: there is nothing "
                          "to close over")
    if cfg.uses("allowlist_project") and not cfg.allowlist and not cfg.uses("project_requirements"):
        raise ConfigError(where, ALLOWLIST, "packages",
                          "missing or empty: allowlist_project is enabled, so nothing would be mirrored")
    if (cfg.uses("project_requirements") or cfg.uses("project_requirements_pinned")) \
            and not cfg.requirement_globs:
        raise ConfigError(where, ALLOWLIST, "requirements",
                          "missing: project_requirements is enabled but names no requirements file")
    if cfg.uses("latest_release") and cfg.latest_keep is None:
        raise ConfigError(where, LATEST_RELEASE, "keep",
                          "missing: latest_release is enabled but does not say how many releases to keep")
    if cfg.uses("size_project_metadata") and cfg.max_package_size is None:
        raise ConfigError(where, SIZE_PROJECT, "max_package_size",
                          "missing: size_project_metadata is enabled without a size")
    if cfg.uses("versions_count_project_metadata") and cfg.min_versions is None and cfg.max_versions is None:
        raise ConfigError(where, VERSIONS_COUNT, "min_versions",
                          "missing: versions_count_project_metadata is enabled without min_versions "
                          "or max_versions")


# --------------------------------------------------------------------------
# Requirements files (the disk)
# --------------------------------------------------------------------------


def read_requirement_files(cfg: FilterConfig) -> FilterConfig:
    """``cfg`` with the requirement lines of ``[allowlist] requirements`` read (globs allowed)."""
    if not cfg.requirement_globs or not (cfg.uses("project_requirements")
                                         or cfg.uses("project_requirements_pinned")):
        return cfg
    pins: list[Pin] = []
    sources: list[str] = []
    for pattern in cfg.requirement_globs:
        full = str(cfg.requirements_path / pattern)
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not matches:
            raise ConfigError(cfg.where, ALLOWLIST, "requirements", f"{full} matches no file")
        for path in matches:
            _read_requirements(Path(path), cfg.where, pins, sources, depth=0)
    return replace(cfg, requirements=tuple(pins), requirement_sources=tuple(sources))


def _read_requirements(path: Path, where: str, pins: list[Pin], sources: list[str], depth: int) -> None:
    if str(path) in sources:
        return
    if depth > 10:
        raise ConfigError(where, ALLOWLIST, "requirements", f"{path}: -r includes nest too deeply")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(where, ALLOWLIST, "requirements", f"cannot read {path}: {why}") from None
    sources.append(str(path))
    for number, line in enumerate(_logical_lines(text), start=1):
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ", "-c ", "--constraint ")):
            if line.startswith(("-r ", "--requirement ")):
                include = line.split(None, 1)[1].strip()
                _read_requirements(path.parent / include, where, pins, sources, depth + 1)
            continue
        if line.startswith("-"):
            continue  # pip options (-i, --hash on its own line, -e ...) say nothing about what to mirror
        line = re.split(r"\s+--?\w", line, maxsplit=1)[0].strip()  # per-line options such as --hash
        try:
            pins.append(parse_pin(line.split(";", 1)[0].strip(), where, ALLOWLIST, "requirements"))
        except ConfigError:
            # The line is not quoted: a mistyped requirements_path may point at any file (/etc/shadow).
            raise ConfigError(where, ALLOWLIST, "requirements",
                              f"{path} line {number} is not a requirement (PEP 508, one per line); is it "
                              "a requirements file?") from None


def _logical_lines(text: str) -> list[str]:
    """Lines of a requirements file: comments dropped, backslash continuations joined."""
    out: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        line = (buffer + line).strip()
        buffer = ""
        out.append(line)
    return out
