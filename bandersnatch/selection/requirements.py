"""Requirements and the dependency closure of an allowlist.

Core metadata in, ``Requires-Dist`` lines out; lines and target environments in, the
projects they pull in out.  The only disk access is reading one member of a release
file the mirror already holds (``wheel_metadata``, ``sdist_pkg_info``); nothing is
ever extracted, and every read is capped, so a hostile archive costs bounded work.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from ..names import is_valid_project_name, normalize

MAX_METADATA = 16 * 1024 * 1024
# How much of an sdist is decompressed while looking for its PKG-INFO.  Some backends
# (hatchling, flit) write PKG-INFO last, so a whole ordinary sdist must fit; a bomb must not.
MAX_SDIST_SCAN = 256 * 1024 * 1024
ROOT_REQUIREMENT = "allowlist"
# Bounds on what one file's Requires-Dist costs to parse: a real file has at most a few hundred
# lines of a few hundred characters; a hostile one may carry megabytes of them.
MAX_REQUIREMENTS = 10_000
MAX_REQUIREMENT_LENGTH = 4096

# ---------------------------------------------------------------- core metadata

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _headers(metadata: bytes) -> list[tuple[str, str]]:
    """The RFC 822-style header fields of core metadata, names lower-cased, folds joined.

    The body (the long description, after the first empty line) is not read: it is
    free text that may contain anything, including lines that look like headers.
    """
    text = metadata.decode("utf-8", errors="replace").removeprefix("\ufeff")
    fields: list[tuple[str, str]] = []
    for line in _LINE_BREAK.split(text):
        if not line:
            break
        if line[0] in " \t":
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, sep, value = line.partition(":")
        if sep:
            fields.append((name.strip().lower(), value.strip()))
    return fields


def requires_dist(metadata: bytes) -> tuple[str, ...]:
    """The ``Requires-Dist`` values of core metadata (METADATA, PKG-INFO, a ``.metadata`` file)."""
    return tuple(value for name, value in _headers(metadata) if name == "requires-dist" and value)


def sdist_requires_dist(pkg_info: bytes) -> tuple[str, ...] | None:
    """An sdist's ``Requires-Dist`` when its PKG-INFO declares them, else None (unknown).

    Before Metadata-Version 2.2 an sdist's PKG-INFO could leave them out even when the
    project had dependencies, so an absent field there says nothing; from 2.2 on (PEP 643)
    fields are reliable unless marked ``Dynamic``.
    """
    fields = _headers(pkg_info)
    if any(name == "dynamic" and value.lower() == "requires-dist" for name, value in fields):
        return None
    found = tuple(value for name, value in fields if name == "requires-dist" and value)
    if found:
        return found
    declared = next((value for name, value in fields if name == "metadata-version"), "")
    try:
        reliable = Version(declared) >= Version("2.2")
    except InvalidVersion:
        reliable = False
    return () if reliable else None


class Checked(NamedTuple):
    """A file's requirement lines as recorded: the well-formed ones, and how many were skipped."""

    lines: tuple[str, ...]
    skipped: int = 0
    first_skipped: str | None = None
    unread: bool = False  # lines past MAX_REQUIREMENTS were skipped without being parsed


def requirement(text: str) -> Requirement | None:
    """The requirement on a (stripped) line; None when it is malformed or names no possible project.

    PEP 508 bounds neither the line nor the name, but no project name is longer than
    ``names.MAX_NAME_LENGTH``: such a line could only name a project nobody can register.
    """
    if len(text) > MAX_REQUIREMENT_LENGTH:
        return None
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    return req if is_valid_project_name(normalize(req.name)) else None


def checked_requirements(lines: Iterable[str]) -> Checked:
    """The well-formed lines among ``lines`` (stripped, in order), at most MAX_REQUIREMENTS of them parsed.

    What is skipped is counted, not kept: a dependency record holds only lines the
    closure can use, so bad upstream input is parsed and reported once, when read.
    """
    good: list[str] = []
    skipped, first, unread = 0, None, False
    for count, raw in enumerate(lines):
        text = raw.strip()
        if not text:
            continue
        if count >= MAX_REQUIREMENTS:
            unread = True
        elif requirement(text) is not None:
            good.append(text)
            continue
        skipped += 1
        first = first if first is not None else text
    return Checked(tuple(good), skipped, first, unread)


# ---------------------------------------------------------------- reading archives on disk

_WHEEL_METADATA = re.compile(r"[^/]+\.dist-info/METADATA")
_TOP_PKG_INFO = re.compile(r"[^/]+/PKG-INFO")
_MAX_SDIST_MEMBERS = 200_000


class _ScanLimit(Exception):
    """More of an archive was decompressed than its purpose can justify."""


# What a damaged or hostile archive raises from zipfile, tarfile and the decompressors.
_DAMAGE = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    RuntimeError,  # an encrypted zip member
    NotImplementedError,  # a compression method zipfile lacks
    _ScanLimit,
)


class _Capped(io.RawIOBase):
    """A forward-only view of ``raw`` that raises _ScanLimit past ``limit`` bytes."""

    def __init__(self, raw: io.BufferedIOBase, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        self._left -= len(data)
        if self._left < 0:
            raise _ScanLimit
        buffer[: len(data)] = data
        return len(data)


def _read_capped(stream: IO[bytes], max_bytes: int) -> bytes | None:
    data = stream.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


@contextlib.contextmanager
def _opened(source: Path | IO[bytes]) -> Iterator[IO[bytes]]:
    """``source`` open for reading from its start: a path is opened (and closed), an open file rewound."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            yield handle
    else:
        source.seek(0)
        yield source


def wheel_metadata(path: Path | IO[bytes], max_bytes: int = MAX_METADATA) -> bytes | None:
    """The wheel's ``<name>.dist-info/METADATA``: None unless exactly one is there, intact, in ``max_bytes``.

    ``path`` may be an open file (a download staged before it is published).  Raises
    OSError only when ``path`` itself cannot be opened.
    """
    with _opened(path) as handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                found = [i for i in archive.infolist() if _WHEEL_METADATA.fullmatch(i.filename)]
                if len(found) != 1 or found[0].file_size > max_bytes:
                    return None
                with archive.open(found[0]) as member:
                    return _read_capped(member, max_bytes)
        except _DAMAGE:
            return None


def _zip_pkg_info(handle: IO[bytes], max_bytes: int) -> bytes | None:
    with zipfile.ZipFile(handle) as archive:
        found = [i for i in archive.infolist() if _TOP_PKG_INFO.fullmatch(i.filename.removeprefix("./"))]
        if len(found) != 1 or found[0].file_size > max_bytes:
            return None
        with archive.open(found[0]) as member:
            return _read_capped(member, max_bytes)


def _tar_pkg_info(stream: io.BufferedIOBase, max_bytes: int, max_scan: int) -> bytes | None:
    # Stream mode: members are met in order and never seeked back to; the first
    # top-level PKG-INFO is the one (an sdist has a single top directory).
    with tarfile.open(fileobj=_Capped(stream, max_scan), mode="r|") as archive:
        for count, member in enumerate(archive):
            if count >= _MAX_SDIST_MEMBERS:
                return None
            if _TOP_PKG_INFO.fullmatch(member.name.removeprefix("./")):
                if not member.isreg() or member.size > max_bytes:
                    return None
                extracted = archive.extractfile(member)
                return None if extracted is None else _read_capped(extracted, max_bytes)
    return None


def _decompressor(lower: str, handle: IO[bytes]) -> io.BufferedIOBase | None:
    if lower.endswith((".tar.gz", ".tgz")):
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if lower.endswith(".tar.bz2"):
        return bz2.BZ2File(handle, mode="rb")
    if lower.endswith(".tar.xz"):
        return lzma.LZMAFile(handle, mode="rb")
    return None


def sdist_pkg_info(
    path: Path | IO[bytes], max_bytes: int = MAX_METADATA, *, max_scan: int = MAX_SDIST_SCAN,
    filename: str | None = None,
) -> bytes | None:
    """The sdist's top-level ``<dir>/PKG-INFO`` (.tar.gz, .tgz, .tar.bz2, .tar.xz, .zip).

    None when there is none, the archive is damaged, the member exceeds ``max_bytes``, or
    finding it would decompress more than ``max_scan`` bytes.  ``path`` may be an open
    file, whose ``filename`` then says the format.  Raises OSError only when ``path``
    itself cannot be opened.
    """
    lower = (filename if filename is not None else path.name if isinstance(path, Path) else "").lower()
    with _opened(path) as handle:
        try:
            if lower.endswith(".zip"):
                return _zip_pkg_info(handle, max_bytes)
            decompressed = _decompressor(lower, handle)
            if decompressed is not None:
                with decompressed:
                    return _tar_pkg_info(decompressed, max_bytes, max_scan)
        except _DAMAGE:
            return None
    return None


# ---------------------------------------------------------------- requirements under markers


class Dependency(NamedTuple):
    """A project one requirement line pulls in, with the extras it asks of it."""

    key: str
    extras: frozenset[str]
    requirement: str


class Need(NamedTuple):
    """Why a project is in the closure: the first requirement that reached it, and from where."""

    key: str
    extras: frozenset[str]
    requirement: str
    parent: str | None


class _Line(NamedTuple):
    """A parsed requirement line: what it pulls in, and under which marker (as text, for caching)."""

    dependency: Dependency
    marker: Marker | None
    marker_text: str


# The names a marker can test, as packaging prints them (str(Marker) spells the aliases
# like ``os.name`` in these canonical forms).
_ENV_NAMES = (
    "os_name",
    "sys_platform",
    "platform_system",
    "platform_machine",
    "platform_release",
    "platform_version",
    "python_version",
    "python_full_version",
    "implementation_name",
    "implementation_version",
    "platform_python_implementation",
)


class Evaluator:
    """Parses requirement lines and evaluates their markers, remembering both.

    A marker is evaluated once per extra, and only against the distinct environments it
    can tell apart: ``sys_platform == "win32"`` needs four evaluations, not two hundred.
    """

    def __init__(self, environments: Sequence[Mapping[str, str]]) -> None:
        self._environments = tuple(dict(env) for env in environments)
        self._lines: dict[str, _Line | None] = {}
        self._holds: dict[tuple[str, str], bool] = {}
        self._projections: dict[tuple[str, ...], tuple[dict[str, str], ...]] = {}

    def parse(self, text: str) -> _Line | None:
        """The requirement on ``text`` (stripped), or None when the line is malformed."""
        if text in self._lines:
            return self._lines[text]
        req = requirement(text)
        if req is None:
            line = None
        else:
            extras = frozenset(normalize(extra) for extra in req.extras)
            dependency = Dependency(normalize(req.name), extras, text)
            line = _Line(dependency, req.marker, "" if req.marker is None else str(req.marker))
        self._lines[text] = line
        return line

    def _projected(self, used: tuple[str, ...]) -> tuple[dict[str, str], ...]:
        if used not in self._projections:
            distinct = {tuple(env.get(name, "") for name in used) for env in self._environments}
            rows = sorted(distinct)
            self._projections[used] = tuple(dict(zip(used, row, strict=True)) for row in rows)
        return self._projections[used]

    def holds(self, line: _Line, extra: str) -> bool:
        """Whether the line's marker holds in some environment with ``extra`` ("" for none) requested.

        A comparison packaging cannot decide (``python_version ~= "3"``) counts as holding:
        better one project too many on the mirror than a dependency missing from it.
        """
        if line.marker is None:
            return True
        text = line.marker_text
        key = (text, extra if "extra" in text else "")
        known = self._holds.get(key)
        if known is None:
            used = tuple(name for name in _ENV_NAMES if name in text)
            envs = self._projected(used)
            known = self._holds[key] = any(self._evaluate(line.marker, env, key[1]) for env in envs)
        return known

    @staticmethod
    def _evaluate(marker: Marker, env: dict[str, str], extra: str) -> bool:
        try:
            return marker.evaluate({**env, "extra": extra})
        except ValueError:  # UndefinedComparison, UndefinedEnvironmentName, InvalidVersion
            return True

    def joining(self, texts: Iterable[str], extras: Sequence[str]) -> tuple[list[Dependency], list[str]]:
        """The dependencies among ``texts`` whose marker holds for one of ``extras``, and the bad lines."""
        joined: list[Dependency] = []
        bad: list[str] = []
        for raw in texts:
            text = raw.strip()
            if not text:
                continue
            line = self.parse(text)
            if line is None:
                bad.append(text)
            elif line.marker is None or any(self.holds(line, extra) for extra in extras):
                joined.append(line.dependency)
        return joined, bad


def dependencies(
    requirements: Iterable[str], extras: frozenset[str], environments: Sequence[Mapping[str, str]]
) -> tuple[list[Dependency], list[str]]:
    """The projects ``requirements`` pull in when ``extras`` are requested, and the malformed lines.

    A requirement joins when its marker holds in at least one of ``environments`` with
    ``extra`` set to "" (the base) or to one of ``extras`` (compared PEP 685-normalized).
    """
    wanted = ["", *sorted({normalize(extra) for extra in extras})]
    return Evaluator(environments).joining(requirements, wanted)


# ---------------------------------------------------------------- the closure


def closure(
    roots: Mapping[str, frozenset[str]],
    requirements_of: Callable[[str], Iterable[str] | None],
    environments: Sequence[Mapping[str, str]],
    admits: Callable[[str], bool],
    on_bad: Callable[[str, str], None] | None = None,
) -> dict[str, Need]:
    """Every project the ``roots`` need, transitively, in breadth-first order.

    ``roots`` maps a project to the extras requested of it.  ``requirements_of(key)`` is the
    union of ``Requires-Dist`` over the project's mirrored releases, or None while unknown.
    ``admits(key)`` False keeps a project (and what only it would pull in) out.  A project
    reached again with more extras is expanded again for those.  ``on_bad(key, line)`` hears
    of each malformed requirement line of project ``key``.
    """
    return Closure(roots, requirements_of, environments, admits, on_bad).needs


class Closure:
    """``closure``'s result, kept so that a project's requirements growing extends it in place.

    A run learns requirements one project at a time; building the closure again after
    each would read every record so far each time (quadratic in the mirror's size).
    Growth only adds what the new lines reach; a project whose requirements lost a line
    needs a new ``Closure``, since what only that line reached may have to go.
    """

    def __init__(
        self,
        roots: Mapping[str, frozenset[str]],
        requirements_of: Callable[[str], Iterable[str] | None],
        environments: Sequence[Mapping[str, str]],
        admits: Callable[[str], bool],
        on_bad: Callable[[str, str], None] | None = None,
    ) -> None:
        self._requirements_of = requirements_of
        self._admits = admits
        self._on_bad = on_bad
        self._evaluator = Evaluator(environments)
        self.needs: dict[str, Need] = {}
        self._expanded: dict[str, frozenset[str]] = {}  # the extras each project was expanded for
        self._lines: dict[str, tuple[str, ...] | None] = {}  # the requirements it was expanded with
        self._admitted: dict[str, bool] = {}
        self._queue: deque[str] = deque()
        self._new: list[str] = []
        merged: dict[str, frozenset[str]] = {}
        for name, extras in roots.items():
            key = normalize(name)
            merged[key] = merged.get(key, frozenset()) | {normalize(e) for e in extras}
        for key in sorted(merged):
            self._reach(key, merged[key], ROOT_REQUIREMENT, None)
        self._drain()

    def lines(self, key: str) -> tuple[str, ...] | None:
        """The requirements of ``key`` the closure was built with (None: unknown or never read)."""
        return self._lines.get(key)

    def grow(self, key: str) -> list[str] | None:
        """Re-read ``key``'s requirements; the projects newly reached, or None when some line went.

        On None nothing changed here: the caller builds a new ``Closure``.
        """
        if key not in self._expanded:
            return []  # not reached (or not expanded yet): read when it is
        texts = self._requirements_of(key)
        new = None if texts is None else tuple(sorted(set(texts)))
        old = self._lines.get(key) or ()
        if new is None or not set(old) <= set(new):
            return None if old else []
        added = [line for line in new if line not in set(old)]
        self._lines[key] = new
        self._new = []
        self._expand(key, added, sorted(self._expanded[key]), report=True)
        self._drain()
        return self._new

    def _reach(self, key: str, extras: frozenset[str], requirement: str, parent: str | None) -> None:
        if key not in self._admitted:
            self._admitted[key] = self._admits(key)
        if not self._admitted[key]:
            return
        old = self.needs.get(key)
        if old is None:
            self.needs[key] = Need(key, extras, requirement, parent)
            self._new.append(key)
        elif extras <= old.extras:
            return
        else:
            self.needs[key] = old._replace(extras=old.extras | extras)
        self._queue.append(key)

    def _drain(self) -> None:
        while self._queue:
            key = self._queue.popleft()
            wanted = frozenset({"", *self.needs[key].extras})
            todo = sorted(wanted - self._expanded.get(key, frozenset()))
            if not todo:
                continue
            first_time = key not in self._expanded
            if first_time:
                texts = self._requirements_of(key)
                self._lines[key] = None if texts is None else tuple(sorted(set(texts)))
            self._expanded[key] = wanted
            self._expand(key, self._lines[key] or (), todo, report=first_time)

    def _expand(self, key: str, lines: Sequence[str], extras: Sequence[str], *, report: bool) -> None:
        joined, bad = self._evaluator.joining(lines, extras)
        if report and self._on_bad is not None:
            for line in bad:
                self._on_bad(key, line)
        for dep in joined:
            self._reach(dep.key, dep.extras, dep.requirement, key)
