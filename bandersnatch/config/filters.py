"""The filter sections of the configuration, read with bandersnatch 6-8's names and meaning.

Filters are off unless ``[plugins] enabled`` names them (one per line, or
``all``).  Every plugin name bandersnatch 8 knows is either implemented here
with the same meaning or refused with one line: a silently ignored filter
would mirror terabytes nobody asked for.  Parsing is pure (text in, a frozen
``FilterConfig`` out); only ``read_requirement_files`` touches the disk.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from ..errors import ConfigError, Problems
from ..formats import lockfiles
from ..formats.dists import PlatformFilter
from ..names import normalize
from . import metadatarules, regexbound
from .plugins import (
    ALLOWLIST,
    ANY_OPTION,
    BLOCKLIST,
    BUILTIN,
    FILTER_PRERELEASE,
    FILTER_REGEX,
    LATEST_RELEASE,
    PLUGINS,
    REFUSED,
    REGEX_FILE_METADATA,
    REGEX_METADATA,
    SIZE_PROJECT,
    VERSION_RANGE_FILE_METADATA,
    VERSION_RANGE_METADATA,
    VERSIONS_COUNT,
    AllowlistProject,
    AllowlistRelease,
    FilterConfig,
    FilterPlugin,
    Pin,
    ProjectRequirements,
    ProjectRequirementsPinned,
    third_party,
)
from .values import parse_bool, size_bytes

__all__ = ["IMPLEMENTED", "REFUSED", "SCHEMA", "FilterConfig", "FilterPlugin", "Pin", "parse",
           "read_requirement_files"]

SCHEMA: Mapping[str, tuple[str, ...]] = {
    PLUGINS: ("enabled",),
    ALLOWLIST: ("packages", "requirements_path", "requirements", "lockfiles", "with-dependencies"),
    BLOCKLIST: ("packages", "platforms"),
    FILTER_REGEX: ("packages", "releases"),
    FILTER_PRERELEASE: ("packages",),
    LATEST_RELEASE: ("keep", "sort_by"),
    SIZE_PROJECT: ("max_package_size",),
    VERSIONS_COUNT: ("min_versions", "max_versions"),
    REGEX_METADATA: (),
    VERSION_RANGE_METADATA: (),
    VERSION_RANGE_FILE_METADATA: (),
    REGEX_FILE_METADATA: (),
}
"""The filter sections and options this client reads (added to config.SCHEMA)."""

FREE_FORM = frozenset({REGEX_METADATA, VERSION_RANGE_METADATA, REGEX_FILE_METADATA,
                       VERSION_RANGE_FILE_METADATA})
"""Sections whose options are rules (``tag:path.to.node``), checked when the rules are parsed."""

IMPLEMENTED = tuple(BUILTIN)

_SORT_BY = ("version", "time")


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


def _enabled(raw: str | None, where: str, values: Mapping[str, Mapping[str, str]]) \
        -> tuple[frozenset[str], tuple[type[FilterPlugin], ...]]:
    """The enabled names, and the third-party plugins among them (loaded from the entry points)."""
    names = [n.lower() for line in lines(raw) for n in line.replace(",", " ").split()]
    if names == ["all"]:
        # bandersnatch turns on every plugin with its defaults, and a plugin whose settings are
        # absent does nothing: here it is simply not enabled.  Third-party plugins are named.
        return frozenset(
            plugin.name for plugin in BUILTIN.values()
            if not plugin.needs or any(_set(values, section, key) for section, key in plugin.needs)
        ), ()
    whys = []  # every bad name at once: an 8.x file may name several plugins we lack
    extra: list[type[FilterPlugin]] = []
    for name in names:
        if name == "all":
            whys.append("'all' must stand alone")
        elif name in REFUSED:
            whys.append(f"plugin {name} is not supported: {REFUSED[name]}")
        elif name in BUILTIN:
            continue
        elif (found := third_party(name, where)) is not None:
            extra.append(found)
        else:
            whys.append(f"unknown plugin {name!r}; known: {', '.join(IMPLEMENTED)}")
    if whys:
        raise ConfigError(where, PLUGINS, "enabled", "; ".join(whys))
    return frozenset(names), tuple(sorted(set(extra), key=lambda plugin: plugin.name))


def _set(values: Mapping[str, Mapping[str, str]], section: str, option: str) -> bool:
    """Whether the option (any option of the section, for ANY_OPTION) has a value."""
    options = values.get(section, {})
    return any(options.values()) if option == ANY_OPTION else bool(options.get(option))


def _readers(section: str, option: str, plugins: Iterable[type[FilterPlugin]]) -> tuple[str, ...] | None:
    """The plugins that read an option, in registry order; None for an option none declares."""
    readers = tuple(plugin.name for plugin in plugins
                    if (section, option) in plugin.reads or (section, ANY_OPTION) in plugin.reads)
    return readers or None


# An option none of the enabled plugins reads is refused: an allowlist beside ``latest_release``
# alone would otherwise mirror the whole upstream.
def _check_read(values: Mapping[str, Mapping[str, str]], enabled: frozenset[str], where: str,
                extra: tuple[type[FilterPlugin], ...]) -> None:
    """Refuse every set option that no enabled plugin reads, naming the plugin that would."""
    problems = Problems()
    requirements = enabled & {ProjectRequirements.name, ProjectRequirementsPinned.name}
    plugins = (*BUILTIN.values(), *extra)
    for section, options in values.items():
        for option, raw in options.items():
            readers = _readers(section, option, plugins)
            if readers is None or not raw.strip():
                continue  # [plugins] enabled, with-dependencies (checked below), or an empty value
            reading = enabled.intersection(readers)
            if (section, option) == (ALLOWLIST, "packages") and requirements \
                    and not enabled & {AllowlistProject.name, AllowlistRelease.name}:
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

    enabled, extra = _enabled(get(PLUGINS, "enabled"), where, values)
    if not enabled:
        for section in values:
            if section != PLUGINS and any(v.strip() for v in values[section].values()):
                raise ConfigError(where, section, None, "filter settings are present but [plugins] enabled "
                                  "names no plugin, so they would be ignored; enable the plugins you mean "
                                  "(or 'all'), or delete the section")
        return FilterConfig(where=where)
    _check_read(values, enabled, where, extra)
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
        lock_globs=tuple(lines(get(ALLOWLIST, "lockfiles"))),
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
        metadata_regexes=_rules(values, (REGEX_METADATA,), where, versions=False),
        metadata_ranges=_rules(values, _range_sections(values), where, versions=True),
        file_regexes=_rules(values, (REGEX_FILE_METADATA,), where, versions=False),
        file_ranges=_rules(values, (VERSION_RANGE_FILE_METADATA,), where, versions=True),
        third_party=extra,
        where=where,
    )
    _check_consistent(cfg, where)
    _check_range_sections(cfg, values, where)
    _check_platforms(cfg.platforms, where)
    return cfg


def _range_sections(values: Mapping[str, Mapping[str, str]]) -> tuple[str, ...]:
    """version_range_project_metadata's own section, else the one bandersnatch 8.2 read for it."""
    return (VERSION_RANGE_METADATA,) if values.get(VERSION_RANGE_METADATA) else (VERSION_RANGE_FILE_METADATA,)


def _check_range_sections(cfg: FilterConfig, values: Mapping[str, Mapping[str, str]], where: str) -> None:
    """With both sections, the project plugin reads its own: the other one must have a reader."""
    if values.get(VERSION_RANGE_METADATA) and any(values.get(VERSION_RANGE_FILE_METADATA, {}).values()) \
            and not cfg.uses(VERSION_RANGE_FILE_METADATA):
        raise ConfigError(where, VERSION_RANGE_FILE_METADATA, None, (
            "set, but version_range_project_metadata reads [version_range_project_metadata] when it is "
            "present, so this section would be ignored; enable version_range_release_file_metadata, or "
            "delete the section"))


def _rules(values: Mapping[str, Mapping[str, str]], sections: tuple[str, ...], where: str, *,
           versions: bool) -> tuple[metadatarules.Rule, ...]:
    rules: list[metadatarules.Rule] = []
    for section in sections:
        options = dict(values.get(section, {}))
        # 8.2 reserves ``search`` in its regex sections (a switch, not a path); not in the range ones.
        switch = metadatarules.SEARCH_OPTION
        search = False if versions else parse_bool(options.pop(switch, None), False, where, section, switch)
        rules.extend(metadatarules.parse_rule(option, raw, where, section, versions=versions, search=search)
                     for option, raw in options.items() if raw.strip())
    return tuple(rules)


def _check_platforms(platforms: tuple[str, ...], where: str) -> None:
    try:
        PlatformFilter.parse(platforms)
    except ValueError as exc:
        raise ConfigError(where, BLOCKLIST, "platforms", str(exc)) from None


def _check_consistent(cfg: FilterConfig, where: str) -> None:
    """Settings that cannot mean what the operator wants are refused, not half-applied."""
    roots = cfg.uses(AllowlistProject) or cfg.uses(ProjectRequirements)
    if cfg.with_dependencies and not roots:
        raise ConfigError(where, ALLOWLIST, "with-dependencies",
                          "needs allowlist_project or project_requirements enabled: there is nothing "
                          "to close over")
    for plugin in (*BUILTIN.values(), *cfg.third_party):
        if cfg.uses(plugin):
            plugin.check(cfg, where)


# --------------------------------------------------------------------------
# Requirements files (the disk)
# --------------------------------------------------------------------------


def read_requirement_files(cfg: FilterConfig) -> FilterConfig:
    """``cfg`` with the requirement lines of ``[allowlist] requirements`` and the pins of
    ``[allowlist] lockfiles`` read (globs allowed, both relative to ``requirements_path``)."""
    if not (cfg.requirement_globs or cfg.lock_globs) or not (cfg.uses(ProjectRequirements)
                                                            or cfg.uses(ProjectRequirementsPinned)):
        return cfg
    pins: list[Pin] = []
    sources: list[str] = []
    for path in _matches(cfg, cfg.requirement_globs, "requirements"):
        _read_requirements(path, cfg.where, pins, sources, depth=0)
    notes: list[str] = []
    for path in _matches(cfg, cfg.lock_globs, "lockfiles"):
        if str(path) not in sources:
            _read_lock(path, cfg.where, pins, notes)
            sources.append(str(path))
    return replace(cfg, requirements=tuple(pins), requirement_sources=tuple(sources), lock_notes=tuple(notes))


def _matches(cfg: FilterConfig, patterns: Iterable[str], option: str) -> list[Path]:
    """The files ``patterns`` name under ``requirements_path``, each pattern in sorted order."""
    out: list[Path] = []
    for pattern in patterns:
        full = str(cfg.requirements_path / pattern)
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        if not matches:
            raise ConfigError(cfg.where, ALLOWLIST, option, f"{full} matches no file")
        out.extend(Path(path) for path in matches)
    return out


def _read_lock(path: Path, where: str, pins: list[Pin], notes: list[str]) -> None:
    """The lock's pins (one ``==`` pin per locked version: several versions of a name make a
    union) and one note per entry skipped."""
    try:
        lock = lockfiles.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(where, ALLOWLIST, "lockfiles", f"cannot read {path}: {why}") from None
    except lockfiles.NotALock as exc:
        raise ConfigError(where, ALLOWLIST, "lockfiles", f"{path}: {exc}") from None
    for locked in lock.pins:
        text = f"{locked.key}=={locked.version}"
        pins.append(Pin(key=locked.key, extras=frozenset(), specifier=f"=={locked.version}",
                        text=f"{text} ({path.name})"))
    notes.extend(f"{path}: {why}; skipped (the mirror serves what an index serves)" for why in lock.skipped)


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
