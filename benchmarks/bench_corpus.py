"""Deterministic synthetic corpora for ``bench_mirror.py``, loaded into a ``fakepypi.Upstream``.

Everything is drawn from ``random.Random(seed)``: the same seed gives the same
project names, file names, sizes, bytes and changes, so runs are comparable.
File contents are random bytes (neither client looks inside a distribution),
except in a corpus with ``real_wheels``: there every wheel is a real zip whose
``*.dist-info/METADATA`` the upstream also serves as its PEP 658 ``.metadata``
file, padded with random bytes to the drawn size.
"""

from __future__ import annotations

import datetime
import math
import random
import time
from dataclasses import dataclass, field

from support import distbuild
from support.fakepypi import Upstream, normalize

SYLLABLES = (
    "al", "be", "co", "da", "el", "fi", "go", "hu", "io", "ja", "ka", "lu", "me", "no", "op",
    "py", "qu", "ra", "si", "to", "ur", "vi", "wa", "xe", "yo", "ze", "zip", "log", "net", "db",
)
EPOCH = datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc)
MAX_FILES_PER_PROJECT = 80
SIZE_SIGMA = 1.3  # spread of the log-normal file size distribution
COUNT_SIGMA = 1.0  # spread of the log-normal files-per-project distribution


@dataclass(frozen=True)
class CorpusSpec:
    """What to build: project count, mean files per project, file sizes, seed."""

    projects: int = 300
    files_per_project: float = 8.0
    min_size: int = 2 * 1024
    median_size: int = 24 * 1024
    max_size: int = 1024 * 1024
    seed: int = 20240601
    real_wheels: bool = False  # wheels are zips with core metadata the upstream advertises (PEP 658)


def small_wheels_spec(projects: int = 150, files_per_project: float = 8.0, size: int = 10 * 1024,
                      seed: int = 20240601) -> CorpusSpec:
    """The small-files corpus: ~1,150 files of about ``size`` bytes, ~45 % of them wheels with metadata."""
    return CorpusSpec(projects=projects, files_per_project=files_per_project, min_size=size * 4 // 5,
                      median_size=size, max_size=size * 6 // 5, seed=seed, real_wheels=True)


@dataclass
class CorpusInfo:
    """What was built, and how long building took."""

    projects: list[str]
    files: int = 0
    bytes: int = 0
    serial: int = 0
    seconds: float = 0.0
    file_counts: dict[str, int] = field(default_factory=dict)
    metadata_files: int = 0  # files advertising PEP 658 core metadata

    def add(self, name: str, files: int, size: int) -> None:
        self.files += files
        self.bytes += size
        self.file_counts[name] = files


@dataclass(frozen=True)
class Change:
    """One change applied to the upstream between two syncs."""

    project: str
    kind: str
    detail: str


class _Clock:
    """Deterministic upload times, one minute apart."""

    def __init__(self) -> None:
        self.minutes = 0

    def next(self) -> datetime.datetime:
        self.minutes += 1
        return EPOCH + datetime.timedelta(minutes=self.minutes)


# ------------------------------------------------------------------ drawing


def project_names(rng: random.Random, count: int, taken: set[str] | None = None) -> list[str]:
    """``count`` distinct project names (distinct once normalized), in PyPI's mixed spellings."""
    seen = set(taken or ())
    names: list[str] = []
    while len(names) < count:
        parts = [rng.choice(SYLLABLES) + rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))]
        name = rng.choice(("-", "_", ".", "-")).join(parts)
        if rng.random() < 0.2:
            name = name.capitalize()
        if rng.random() < 0.3:
            name += str(rng.randint(2, 99))
        if normalize(name) not in seen:
            seen.add(normalize(name))
            names.append(name)
    return names


def file_count(rng: random.Random, mean: float) -> int:
    """Files of one project: log-normal with the given mean, at least 1."""
    mu = math.log(max(mean, 1.0)) - COUNT_SIGMA**2 / 2
    return max(1, min(MAX_FILES_PER_PROJECT, round(rng.lognormvariate(mu, COUNT_SIGMA))))


def file_size(rng: random.Random, spec: CorpusSpec) -> int:
    """One file's size: log-normal around ``median_size``, clamped to [min_size, max_size]."""
    size = int(rng.lognormvariate(math.log(spec.median_size), SIZE_SIGMA))
    return max(spec.min_size, min(spec.max_size, size))


def release_filenames(name: str, version: str, count: int) -> list[str]:
    """Up to ``count`` files of one release: sdist, pure wheel, then platform wheels."""
    dist = normalize(name).replace("-", "_")
    candidates = [
        f"{dist}-{version}.tar.gz",
        f"{dist}-{version}-py3-none-any.whl",
        f"{dist}-{version}-cp312-cp312-manylinux_2_17_x86_64.whl",
        f"{dist}-{version}-cp312-cp312-win_amd64.whl",
        f"{dist}-{version}-cp312-cp312-macosx_11_0_arm64.whl",
    ]
    return candidates[:count]


# ------------------------------------------------------------------ building


def add_release(
    upstream: Upstream, rng: random.Random, spec: CorpusSpec, clock: _Clock, name: str, version: str,
    count: int,
) -> tuple[int, int]:
    """Upload one release of ``count`` files; returns (files, bytes)."""
    added = total = 0
    for filename in release_filenames(name, version, count):
        size = file_size(rng, spec)
        metadata = None
        if spec.real_wheels and filename.endswith(".whl"):
            filename, content, metadata = padded_wheel(rng, name, version, filename, size)
        else:
            content = rng.randbytes(size)
        upstream.add_file(name, filename, content, version=version, upload_time=clock.next(),
                          metadata=metadata)
        added += 1
        total += len(content)
    return added, total


def padded_wheel(
    rng: random.Random, name: str, version: str, filename: str, size: int
) -> tuple[str, bytes, bytes]:
    """A real wheel of about ``size`` bytes: (filename, bytes, its METADATA), tag taken from ``filename``.

    The padding is random bytes, which deflate cannot shrink, so the wheel's
    size is the drawn size plus a few hundred bytes of zip structure.
    """
    tag = filename[: -len(".whl")].split("-", 2)[2]
    metadata = distbuild.core_metadata(name, version)
    package = distbuild.escape_name(name)
    modules: dict[str, str | bytes] = {f"{package}/__init__.py": f'__version__ = "{version}"\n',
                                       f"{package}/_data.bin": rng.randbytes(max(0, size - 700))}
    wheel_name, content = distbuild.build_wheel_bytes(name, version, metadata, modules, tag)
    return wheel_name, content, metadata


def add_project_files(
    upstream: Upstream, rng: random.Random, spec: CorpusSpec, clock: _Clock, name: str, count: int
) -> tuple[int, int]:
    """Spread ``count`` files over releases 1.0, 1.1, ... (1 to 3 files each)."""
    added = total = 0
    minor = 0
    while added < count:
        per_release = min(count - added, rng.randint(1, 3))
        files, size = add_release(upstream, rng, spec, clock, name, f"1.{minor}", per_release)
        added, total, minor = added + files, total + size, minor + 1
    return added, total


def build_corpus(upstream: Upstream, spec: CorpusSpec) -> CorpusInfo:
    """Fill ``upstream`` with ``spec.projects`` projects and their files."""
    started = time.perf_counter()
    rng = random.Random(spec.seed)
    clock = _Clock()
    info = CorpusInfo(projects=project_names(rng, spec.projects))
    for name in info.projects:
        count = file_count(rng, spec.files_per_project)
        info.add(name, *add_project_files(upstream, rng, spec, clock, name, count))
    info.metadata_files = sum(1 for s in upstream.all_current() for e in s.files or () if e.metadata)
    info.serial = upstream.serial
    info.seconds = time.perf_counter() - started
    return info


# ------------------------------------------------------------------ changes


def apply_changes(upstream: Upstream, info: CorpusInfo, spec: CorpusSpec) -> list[Change]:
    """Change 10 projects: 4 new releases, 1 new project, 2 removed files, 1 removed project, 2 yanks."""
    rng = random.Random(spec.seed + 1)
    clock = _Clock()
    clock.minutes = 10**6
    several = sorted(n for n, c in info.file_counts.items() if c >= 2)
    picked = rng.sample(several, 5)
    rest = rng.sample(sorted(set(info.projects) - set(picked)), 4)
    changes = [_new_release(upstream, rng, spec, clock, name) for name in rest]
    changes.append(_new_project(upstream, rng, spec, clock, info))
    changes += [_remove_first_file(upstream, name) for name in picked[:2]]
    changes.append(Change(picked[2], "remove project", "with all its files"))
    upstream.remove_project(picked[2])
    changes += [_yank_last_file(upstream, name) for name in picked[3:5]]
    return changes


def _new_release(
    upstream: Upstream, rng: random.Random, spec: CorpusSpec, clock: _Clock, name: str
) -> Change:
    files, size = add_release(upstream, rng, spec, clock, name, "99.0", 2)
    return Change(name, "new release", f"99.0: {files} files, {size} bytes")


def _new_project(
    upstream: Upstream, rng: random.Random, spec: CorpusSpec, clock: _Clock, info: CorpusInfo
) -> Change:
    name = project_names(rng, 1, {normalize(n) for n in info.projects})[0]
    files, size = add_release(upstream, rng, spec, clock, name, "0.1", 3)
    return Change(name, "new project", f"0.1: {files} files, {size} bytes")


def _remove_first_file(upstream: Upstream, name: str) -> Change:
    victim = upstream.files(name)[0].filename
    upstream.remove_file(name, victim)
    return Change(name, "remove file", victim)


def _yank_last_file(upstream: Upstream, name: str) -> Change:
    victim = upstream.files(name)[-1].filename
    upstream.yank(name, victim, reason="benchmark yank")
    return Change(name, "yank", victim)


# ------------------------------------------------------------------ scale


@dataclass(frozen=True)
class ScaleSpec:
    """A PyPI-sized listing: ``projects`` in all, ``file_projects`` of them with small files."""

    projects: int = 750_000
    file_projects: int = 2_000
    files_each: int = 2
    events: int = 100_000
    event_projects: int = 10_000
    seed: int = 20240601


def small_files_spec(seed: int) -> CorpusSpec:
    """Sizes for the scale corpus: 1 to 16 KiB."""
    return CorpusSpec(projects=0, min_size=1024, median_size=4096, max_size=16 * 1024, seed=seed)


def build_scale_corpus(upstream: Upstream, spec: ScaleSpec) -> CorpusInfo:
    """``projects - file_projects`` empty bulk projects, then the projects with files."""
    started = time.perf_counter()
    upstream.add_bulk_projects(spec.projects - spec.file_projects, prefix="bulk-", width=7)
    rng = random.Random(spec.seed)
    clock = _Clock()
    sizes = small_files_spec(spec.seed)
    info = CorpusInfo(projects=project_names(rng, spec.file_projects))
    for name in info.projects:
        info.add(name, *add_release(upstream, rng, sizes, clock, name, "1.0", spec.files_each))
    info.serial = upstream.serial
    info.seconds = time.perf_counter() - started
    return info


def apply_event_storm(upstream: Upstream, spec: ScaleSpec) -> tuple[int, int, float]:
    """``spec.events`` changelog events over ``spec.event_projects`` bulk projects.

    One project in ten gets a new release with one small file (two events:
    "new release" and "add ... file"); every other event is a metadata
    change that leaves the files alone.  Returns (events, projects, seconds).
    """
    started = time.perf_counter()
    rng = random.Random(spec.seed + 2)
    clock = _Clock()
    clock.minutes = 2 * 10**6
    sizes = small_files_spec(spec.seed)
    bulk_count = spec.projects - spec.file_projects
    chosen = sorted(rng.sample(range(bulk_count), min(spec.event_projects, bulk_count)))
    names = [f"bulk-{i:07d}" for i in chosen]
    first = upstream.serial
    for position, name in enumerate(names):
        if position % 10 == 0:
            add_release(upstream, rng, sizes, clock, name, "1.0", 1)
    position = 0
    while upstream.serial - first < spec.events:
        upstream.touch(names[position % len(names)], "update description")
        position += 1
    return upstream.serial - first, len(names), time.perf_counter() - started
