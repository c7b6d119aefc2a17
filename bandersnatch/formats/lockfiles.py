"""Lock files read as allowlists: ``pylock.toml`` (PEP 751) and ``uv.lock``, text in, pins out.

A lock names every project an environment installs and the one version it installs, so a
mirror that holds exactly those versions serves the environment.  What the lock says about
where a file came from (index URLs, file URLs, hashes) is information only: the mirror's
hashes come from its own upstream's pages.  An entry the mirror cannot serve from an index
(a VCS checkout, a local directory or archive, an editable or virtual project) or one without
a version is skipped, with a line saying so.  Pure: no disk, no network.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from ..names import is_valid_project_name, normalize

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

# PEP 751: a package's source is one of these keys (sdist and wheels come from an index).
_PYLOCK_INDEX_SOURCES = ("sdist", "wheels")
_PYLOCK_OTHER_SOURCES = ("vcs", "directory", "archive")
# uv.lock: ``source = { registry = "..." }`` is an index; every other key is not.
_UV_REGISTRY = "registry"


class NotALock(ValueError):
    """The text is not valid TOML, or not a lock file this reader knows; the message says which."""


@dataclass(frozen=True)
class Locked:
    """One project at one version, as a lock pins it."""

    key: str  # PEP 503 normalized
    version: str


@dataclass(frozen=True)
class Lock:
    """What a lock file pins, and one line per entry left out (with why)."""

    kind: str  # "pylock.toml" or "uv.lock"
    pins: tuple[Locked, ...]
    skipped: tuple[str, ...]


def parse(text: str) -> Lock:
    """The pins of a ``pylock.toml`` or ``uv.lock`` (told apart by content, not by file name)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NotALock(f"not valid TOML: {exc}") from None
    if "lock-version" in data:
        return _pylock(data)
    if isinstance(data.get("version"), int) and ("package" in data or "requires-python" in data):
        return _uvlock(data)
    raise NotALock("not a lock file: neither pylock.toml's lock-version nor uv.lock's version and "
                   "[[package]] tables")


def _pylock(data: Mapping[str, Any]) -> Lock:
    version = data["lock-version"]
    # PEP 751: a reader must refuse a major version it does not know.
    if not isinstance(version, str) or version.split(".", 1)[0] != "1":
        raise NotALock(f"pylock.toml lock-version {version!r} is not supported (only 1.x)")
    packages = _tables(data.get("packages", []), "packages")
    pins: list[Locked] = []
    skipped: list[str] = []
    for index, package in enumerate(packages, start=1):
        name, why = _name(package, f"[[packages]] entry {index}")
        if why:
            skipped.append(why)
            continue
        other = next((key for key in _PYLOCK_OTHER_SOURCES if key in package), None)
        if other is not None:
            skipped.append(f"{name}: locked from {other}, not from an index")
        elif not any(key in package for key in _PYLOCK_INDEX_SOURCES):
            skipped.append(f"{name}: no sdist or wheels to mirror")
        else:
            _pin(name, package.get("version"), pins, skipped)
    return Lock("pylock.toml", tuple(pins), tuple(skipped))


def _uvlock(data: Mapping[str, Any]) -> Lock:
    packages = _tables(data.get("package", []), "package")
    pins: list[Locked] = []
    skipped: list[str] = []
    for index, package in enumerate(packages, start=1):
        name, why = _name(package, f"[[package]] entry {index}")
        if why:
            skipped.append(why)
            continue
        source = package.get("source")
        kinds = sorted(source) if isinstance(source, dict) else []
        if _UV_REGISTRY in kinds:
            _pin(name, package.get("version"), pins, skipped)
        else:
            skipped.append(f"{name}: locked from {'/'.join(kinds) or 'no source'}, not from an index")
    return Lock("uv.lock", tuple(pins), tuple(skipped))


def _tables(value: object, key: str) -> Sequence[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise NotALock(f"{key} is not an array of tables")
    return value


def _name(package: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The entry's project name, or "" and why it is skipped."""
    name = package.get("name")
    if not isinstance(name, str) or not is_valid_project_name(name):
        return "", f"{where}: no valid project name"
    return name, ""


def _pin(name: str, version: object, pins: list[Locked], skipped: list[str]) -> None:
    if not isinstance(version, str) or not version.strip():
        skipped.append(f"{name}: no version")
        return
    try:
        Version(version)
    except InvalidVersion:
        # Pinned to what no specifier can say, the name would join with every version.
        skipped.append(f"{name}: its version is not a PEP 440 version")
        return
    pins.append(Locked(normalize(name), version.strip()))
