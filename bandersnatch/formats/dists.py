"""What a release file is: its version, and whether the platform filter drops it.

Pure: filenames in, answers out.  Wheels are read through packaging's own filename
and tag grammar; the older binary formats (eggs, bdist_wininst/msi installers,
rpms, dmgs, bdist_dumb archives) through their historical naming conventions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..names import normalize
from .filenames import SDIST_SUFFIXES, split_suffix

# The suffixes are filenames' (the one table of what a distribution file is called).
SDIST_EXTENSIONS = tuple(s.lower() for s in SDIST_SUFFIXES)
# bdist_wininst/msi and bdist_dumb put the platform after a dot: ``name-1.0.win-amd64-py2.7.exe``,
# ``name-1.0.linux-x86_64.tar.gz``.  A version never continues with one of these words.
_DOTTED_PLATFORM = re.compile(
    r"\.(?:win|linux|macosx|darwin|freebsd|openbsd|netbsd|cygwin|solaris|sunos|aix|hp-ux|irix)[-_.\w]*$"
)
_PY_SUFFIX = re.compile(r"-py(\d+)\.(\d+)$", re.IGNORECASE)
_RPM_ARCH = re.compile(r"\.(?:noarch|src|i[3-6]86|x86_64|amd64|aarch64|arm\w*|ppc\w*|s390x?)$")


# ---------------------------------------------------------------- versions

# No file's name (at most 255 bytes) can carry a longer version; packaging would int() its
# digits, and int() refuses a string of over 4,300 digits with a ValueError.
MAX_VERSION_LENGTH = 255


def parse_version(text: str) -> Version | None:
    """``text`` as a PEP 440 version; None when it is not one, or too long to be a release's."""
    if len(text) > MAX_VERSION_LENGTH:
        return None
    try:
        return Version(text)
    except (InvalidVersion, ValueError):
        return None


def usable_versions(versions: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """A page's PEP 700 ``versions`` split into those we keep and those too long for any release.

    A version need not be PEP 440 (older releases are not), so only the length is held against it.
    """
    kept: list[str] = []
    dropped: list[str] = []
    for text in versions:
        (kept if len(text) <= MAX_VERSION_LENGTH else dropped).append(text)
    return tuple(kept), dropped



def _after_name(stem: str, project_key: str) -> str | None:
    """What follows ``<name>-`` in ``stem``, where ``<name>`` normalizes to ``project_key``.

    Names may contain dashes, so every dash is tried, shortest name first.
    """
    for i, ch in enumerate(stem):
        if ch == "-" and normalize(stem[:i]) == project_key:
            return stem[i + 1 :] or None
    return None


def _strip_extension(filename: str, extensions: Iterable[str]) -> str | None:
    parts = split_suffix(filename)
    return parts[0] if parts is not None and parts[1].lower() in extensions else None


def _wheel_version(filename: str) -> Version | None:
    try:
        return parse_wheel_filename(filename)[1]
    except InvalidWheelFilename:
        pass
    # Older tools wrote names packaging now refuses (``Foo__bar``); the version is still the 2nd part.
    parts = filename[: -len(".whl")].split("-")
    return parse_version(parts[1]) if len(parts) in (5, 6) else None


def _sdist_version(filename: str, project_key: str) -> Version | None:
    try:
        name, version = parse_sdist_filename(filename)
    except InvalidSdistFilename:
        pass
    else:
        if name == project_key:
            return version
    stem = _strip_extension(filename, SDIST_EXTENSIONS)
    rest = _after_name(stem, project_key) if stem else None
    if rest is None:
        return None
    # A bdist_dumb archive (``name-1.0.linux-x86_64.zip``) shares the sdist extensions.
    return parse_version(rest) or parse_version(_DOTTED_PLATFORM.sub("", rest))


def _egg_version(filename: str, project_key: str) -> Version | None:
    # name-version[-pyX.Y[-platform]].egg; setuptools escapes dashes in name and version to "_".
    rest = _after_name(filename[: -len(".egg")], project_key)
    return parse_version(rest.split("-")[0]) if rest else None


def _installer_version(filename: str, project_key: str) -> Version | None:
    # bdist_wininst / bdist_msi: name-version.platform[-pyX.Y].exe
    rest = _after_name(filename[:-4], project_key)
    if rest is None:
        return None
    return parse_version(_DOTTED_PLATFORM.sub("", _PY_SUFFIX.sub("", rest)))


def _rpm_version(filename: str, project_key: str) -> Version | None:
    # bdist_rpm: name-version-release.arch.rpm
    rest = _after_name(filename[: -len(".rpm")], project_key)
    if rest is None:
        return None
    version, sep, _release = _RPM_ARCH.sub("", rest).rpartition("-")
    return parse_version(version) if sep else None


def _dmg_version(filename: str, project_key: str) -> Version | None:
    # name-version[-pyX.Y][-macosxN].dmg
    rest = _after_name(filename[: -len(".dmg")], project_key)
    return parse_version(rest.split("-")[0]) if rest else None


def file_version(filename: str, project_key: str) -> Version | None:
    """The release version ``filename`` belongs to, or None when it cannot be told.

    ``project_key`` is the PEP 503 name of the project whose page lists the file: formats
    other than wheels separate name and version with a dash that may also occur in the name.
    """
    parts = split_suffix(filename)
    suffix = parts[1].lower() if parts is not None else ""
    if suffix == ".whl":
        return _wheel_version(filename)
    if suffix == ".egg":
        return _egg_version(filename, project_key)
    if suffix in (".exe", ".msi"):
        return _installer_version(filename, project_key)
    if suffix == ".rpm":
        return _rpm_version(filename, project_key)
    if suffix == ".dmg":
        return _dmg_version(filename, project_key)
    if suffix in SDIST_EXTENSIONS:
        return _sdist_version(filename, project_key)
    return None


def version_text(filename: str, project_key: str) -> str | None:
    """The version of ``filename`` in normal form (``1.0RC1`` -> ``1.0rc1``), as PEP 700 lists it."""
    version = file_version(filename, project_key)
    return None if version is None else str(version)


# ---------------------------------------------------------------- the platform filter

_FAMILY_ALIASES = {"windows": "windows", "win": "windows", "macos": "macos", "macosx": "macos"}
_FAMILY_ALIASES |= {"freebsd": "freebsd", "linux": "linux"}
_FAMILY_PREFIXES = (
    ("win", "windows"),
    ("macosx", "macos"),
    ("freebsd", "freebsd"),
    ("linux", "linux"),
    ("manylinux", "linux"),
    ("musllinux", "linux"),
)
_PY_VALUE = re.compile(r"py([23])(?:\.(\d+))?")
_PY2_MINORS = range(4, 8)
# An exact platform tag as wheels spell it: win32, win_amd64, linux_armv7l, macosx_11_0_arm64 ...
_PLATFORM_TAG = re.compile(r"win32|[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_INTERPRETER = re.compile(r"(?:py|cp|pp|ip|jy)(\d)(\d*)")
ACCEPTED = (
    "windows/win, macos/macosx, freebsd, linux, py2, py3, py2.4..py2.7, py3.0..py3.N, "
    "or an exact wheel platform tag such as win_amd64 or manylinux2014_aarch64"
)

TARGET_PYTHONS: tuple[tuple[int, int], ...] = ((2, 7), *((3, minor) for minor in range(15)))


def platform_family(platform: str) -> str | None:
    """``windows``, ``macos``, ``freebsd`` or ``linux`` for a wheel platform tag; None otherwise."""
    for prefix, family in _FAMILY_PREFIXES:
        if platform.startswith(prefix):
            return family
    return None


class Served(NamedTuple):
    """The Python versions a tag serves: ``major``, with ``minor`` exactly or from ``minor`` on."""

    major: int
    minor: int | None  # None: every minor of ``major``
    onwards: bool = False


def served(tag: Tag) -> Served | None:
    """What Python versions ``tag`` serves; None for interpreters we cannot read (serves anything)."""
    match = _INTERPRETER.fullmatch(tag.interpreter)
    if match is None:
        return None
    major, minor = int(match[1]), match[2]
    if not minor:
        return Served(major, None)
    return Served(major, int(minor), onwards=tag.abi == "abi3")


@dataclass(frozen=True)
class PlatformFilter:
    """bandersnatch's ``[blocklist] platforms``, decided from parsed tags."""

    families: frozenset[str] = frozenset()
    majors: frozenset[int] = frozenset()
    pythons: frozenset[tuple[int, int]] = frozenset()
    tags: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, values: Iterable[str]) -> PlatformFilter:
        """Build from config values; ``ValueError`` names the first value that is none of ``ACCEPTED``."""
        families: set[str] = set()
        majors: set[int] = set()
        pythons: set[tuple[int, int]] = set()
        tags: set[str] = set()
        for raw in values:
            value = raw.strip().lower()
            py = _PY_VALUE.fullmatch(value)
            if value in _FAMILY_ALIASES:
                families.add(_FAMILY_ALIASES[value])
            elif py and py[2] is None:
                majors.add(int(py[1]))
            elif py and (py[1] == "3" or int(py[2]) in _PY2_MINORS):
                pythons.add((int(py[1]), int(py[2])))
            elif _PLATFORM_TAG.fullmatch(value) and not py:
                tags.add(value)
            else:
                raise ValueError(f"{raw!r} is not a platform: use {ACCEPTED}")
        return cls(frozenset(families), frozenset(majors), frozenset(pythons), frozenset(tags))

    def __bool__(self) -> bool:
        return bool(self.families or self.majors or self.pythons or self.tags)

    # -- one tag

    def _platform_reason(self, platform: str) -> str | None:
        if platform in self.tags:
            return f"platform {platform}"
        family = platform_family(platform)
        if family in self.families:
            return f"platform {family} ({platform})"
        return None

    def _python_reason(self, serves: Served | None, interpreter: str) -> str | None:
        if serves is None:
            return None
        if serves.major in self.majors:
            return f"python {serves.major} ({interpreter})"
        if serves.minor is not None and not serves.onwards and (serves.major, serves.minor) in self.pythons:
            return f"python {serves.major}.{serves.minor} ({interpreter})"
        return None

    def _tag_reason(self, platform: str, serves: Served | None, interpreter: str) -> str | None:
        return self._platform_reason(platform) or self._python_reason(serves, interpreter)

    def _all_dead(self, reasons: Iterator[str | None]) -> str | None:
        first: str | None = None
        for reason in reasons:
            if reason is None:
                return None
            first = first or reason
        return first

    # -- one file

    def excludes(self, filename: str) -> str | None:
        """None when ``filename`` is kept, else why it is dropped (``"platform windows (win_amd64)"``)."""
        if not self:
            return None
        lower = filename.lower()
        if lower.endswith(".whl"):
            tags = _wheel_tags(filename)
            if not tags:
                return None
            ordered = sorted(tags, key=str)
            return self._all_dead(self._tag_reason(t.platform, served(t), t.interpreter) for t in ordered)
        if lower.endswith(".egg"):
            return self._egg_reason(filename[: -len(".egg")])
        stem = _strip_extension(filename, (".exe", ".msi", ".dmg", ".rpm"))
        if stem is None:
            return None  # sdists and anything unknown: the filter only drops what it understands
        ext = lower[-4:]
        family = {".exe": "windows", ".msi": "windows", ".dmg": "macos", ".rpm": "linux"}[ext]
        if family in self.families:
            return f"platform {family} ({ext})"
        dotted = re.search(r"\.(win32|win-\w+)", stem.lower()) if family == "windows" else None
        if dotted and dotted[1].replace("-", "_") in self.tags:
            return f"platform {dotted[1].replace('-', '_')}"
        py = _PY_SUFFIX.search(stem) or re.search(r"-py(\d)\.(\d+)-", stem, re.IGNORECASE)
        if py:
            return self._python_reason(Served(int(py[1]), int(py[2])), f"py{py[1]}.{py[2]}")
        return None

    def _egg_reason(self, stem: str) -> str | None:
        # name-version-pyX.Y[-platform]; the platform keeps distutils' spelling (macosx-10.9-x86_64).
        parts = stem.split("-", 3)
        if len(parts) < 3:
            return None
        py = re.fullmatch(r"py(\d)\.(\d+)", parts[2], re.IGNORECASE)
        serves = Served(int(py[1]), int(py[2])) if py else None
        platform = re.sub(r"[-.]", "_", parts[3].lower()) if len(parts) == 4 else "any"
        return self._tag_reason(platform, serves, parts[2])

    # -- dependency evaluation

    def environments(self) -> tuple[dict[str, str], ...]:
        """The PEP 508 marker environments the mirror serves, minus what the filter excludes."""
        return tuple(
            environment(platform, machine, python)
            for platform, machines in PLATFORM_MACHINES.items()
            if platform not in self.families
            for machine in machines
            for python in TARGET_PYTHONS
            if python[0] not in self.majors and python not in self.pythons
        )


def _wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename:
        pass
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return frozenset()
    try:
        return parse_tag("-".join(parts[-3:]))
    except ValueError:
        return frozenset()


# platform -> (os_name, sys_platform, platform_system)
_PLATFORM_IDS = {
    "linux": ("posix", "linux", "Linux"),
    "macos": ("posix", "darwin", "Darwin"),
    "windows": ("nt", "win32", "Windows"),
    "freebsd": ("posix", "freebsd14", "FreeBSD"),
}
# platform.machine() as each system spells it, so ``platform_machine == "aarch64"`` can hold.
PLATFORM_MACHINES = {
    "linux": ("x86_64", "aarch64", "i686", "armv7l", "ppc64le", "s390x"),
    "macos": ("x86_64", "arm64"),
    "windows": ("AMD64", "x86", "ARM64"),
    "freebsd": ("amd64", "arm64"),
}


def environment(platform: str, machine: str, python: tuple[int, int]) -> dict[str, str]:
    """A full PEP 508 environment for CPython ``python`` on ``platform``/``machine``."""
    os_name, sys_platform, system = _PLATFORM_IDS[platform]
    if sys_platform == "linux" and python < (3, 3):
        sys_platform = "linux2"  # what Python before 3.3 reported, and old markers test for
    short = f"{python[0]}.{python[1]}"
    full = f"{short}.0"
    return {
        "os_name": os_name,
        "sys_platform": sys_platform,
        "platform_system": system,
        "platform_machine": machine,
        "platform_release": "",
        "platform_version": "",
        "python_version": short,
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
    }
