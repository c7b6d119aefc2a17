"""What the operator selected: one policy asked where a name enters the work list and where a
project's files are planned.

Every "no" comes with an ``Exclusion`` naming the plugin and the reason, as pip's link evaluator
does.  Excluded is not refused: a refused name is bad upstream data (the run fails), an excluded
one is the operator's choice (silent, debug log).  Pure: records in, decisions out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..config.filters import FilterConfig, Pin
from ..formats.dists import PlatformFilter, file_version
from ..formats.simple import DistFile, ProjectPage


@dataclass(frozen=True)
class Exclusion:
    """Why something is not mirrored: the plugin that decided and its reason."""

    plugin: str
    reason: str

    def __str__(self) -> str:
        return f"{self.plugin}: {self.reason}"


@dataclass(frozen=True)
class FilePlan:
    """A project's files after the release and file filters, and the versions its pages list."""

    files: tuple[DistFile, ...]
    versions: tuple[str, ...] | None
    dropped: tuple[tuple[str, Exclusion], ...] = ()


def _specifiers(pins: Iterable[Pin]) -> dict[str, list[SpecifierSet]]:
    out: dict[str, list[SpecifierSet]] = defaultdict(list)
    for pin in pins:
        if pin.specifier:
            try:
                out[pin.key].append(SpecifierSet(pin.specifier))
            except InvalidSpecifier:  # pragma: no cover - filterconfig parsed it already
                continue
    return dict(out)


def _matches_any(version: Version, sets: Sequence[SpecifierSet]) -> bool:
    return any(s.contains(version, prereleases=True) for s in sets)


class Selection:
    """The operator's selection, built once from the configuration; safe to share between threads."""

    def __init__(self, cfg: FilterConfig) -> None:
        self.cfg = cfg
        self.active = cfg.active
        self.allowlist_mode = cfg.uses("allowlist_project") or cfg.uses("project_requirements")
        self.with_dependencies = cfg.with_dependencies and self.allowlist_mode
        roots: dict[str, frozenset[str]] = {}
        sources: list[Pin] = []
        if cfg.uses("allowlist_project") or not self.allowlist_mode:
            sources.extend(cfg.allowlist)  # the allowlist also exempts from size/count limits
        if cfg.uses("project_requirements"):
            sources.extend(cfg.requirements)
        for pin in sources:
            roots[pin.key] = roots.get(pin.key, frozenset()) | pin.extras
        self._roots = roots
        self._blocked = frozenset(p.key for p in cfg.blocklist if not p.specifier) \
            if cfg.uses("blocklist_project") else frozenset()
        self._project_rx = [re.compile(p) for p in cfg.project_patterns] if cfg.uses("regex_project") else []
        self._release_rx = [re.compile(p) for p in cfg.release_patterns] if cfg.uses("regex_release") else []
        limits: list[Pin] = []
        if cfg.uses("allowlist_release"):
            limits.extend(cfg.allowlist)
        if cfg.uses("project_requirements_pinned"):
            limits.extend(cfg.requirements)
        self._limits = _specifiers(limits)
        self._blocked_releases = _specifiers(cfg.blocklist) if cfg.uses("blocklist_release") else {}
        self._platforms = PlatformFilter.parse(cfg.platforms) if cfg.uses("exclude_platform") else None

    # ------------------------------------------------------------ names

    @property
    def roots(self) -> Mapping[str, frozenset[str]]:
        """Allowlisted projects (normalized) and the extras their lines ask for."""
        return self._roots if self.allowlist_mode else {}

    def environments(self) -> tuple[dict[str, str], ...]:
        """The marker environments the mirror serves (for dependency markers)."""
        return (self._platforms or PlatformFilter.parse(())).environments()

    def blocks(self, key: str, name: str | None = None) -> Exclusion | None:
        """The filters that hold for any project, dependency or not: blocklist and regex."""
        if key in self._blocked:
            return Exclusion("blocklist_project", "in the blocklist")
        for pattern in self._project_rx:
            if pattern.match(key) or (name is not None and pattern.match(name)):
                return Exclusion("regex_project", f"matches {pattern.pattern!r}")
        return None

    def project(self, key: str, name: str | None = None) -> Exclusion | None:
        """Whether a name may enter the work list (dependencies aside: see ``blocks``)."""
        if not self.active:
            return None
        blocked = self.blocks(key, name)
        if blocked is not None:
            return blocked
        if self.allowlist_mode and key not in self._roots:
            plugin = "allowlist_project" if self.cfg.uses("allowlist_project") else "project_requirements"
            return Exclusion(plugin, "not in the allowlist")
        return None

    # ------------------------------------------------------------ a project's page

    def project_page(self, key: str, page: ProjectPage) -> Exclusion | None:
        """Project-wide limits that need the page: total size and number of versions."""
        if not self.active:
            return None
        exempt = key in self._roots and not self.cfg.uses("allowlist_project")
        if self.cfg.uses("size_project_metadata") and self.cfg.max_package_size is not None and not exempt:
            total = sum(f.size or 0 for f in page.files)
            if total > self.cfg.max_package_size:
                return Exclusion("size_project_metadata",
                                 f"{total} bytes exceed max_package_size {self.cfg.max_package_size}")
        if self.cfg.uses("versions_count_project_metadata") and not exempt:
            count = len(page.versions) if page.versions is not None else len(
                {v for f in page.files if (v := file_version(f.filename, key)) is not None})
            if self.cfg.min_versions is not None and count < self.cfg.min_versions:
                return Exclusion("versions_count_project_metadata",
                                 f"{count} versions, fewer than min_versions {self.cfg.min_versions}")
            if self.cfg.max_versions is not None and count > self.cfg.max_versions:
                return Exclusion("versions_count_project_metadata",
                                 f"{count} versions, more than max_versions {self.cfg.max_versions}")
        return None

    def plan_files(self, key: str, page: ProjectPage) -> FilePlan:
        """The files of ``page`` that survive the release and file filters, in page order."""
        if not self.active:
            return FilePlan(page.files, page.versions)
        dropped: list[tuple[str, Exclusion]] = []
        versions = {f.filename: file_version(f.filename, key) for f in page.files}
        release_verdict: dict[Version | None, Exclusion | None] = {}
        for v in set(versions.values()):
            release_verdict[v] = self._release(key, v)
        self._keep_latest(key, page, versions, release_verdict)
        kept: list[DistFile] = []
        for f in page.files:
            why = release_verdict[versions[f.filename]]
            if why is None and self._platforms is not None:
                reason = self._platforms.excludes(f.filename)
                why = Exclusion("exclude_platform", reason) if reason else None
            if why is None:
                kept.append(f)
            else:
                dropped.append((f.filename, why))
        return FilePlan(tuple(kept), self._versions(page, kept, versions, release_verdict), tuple(dropped))

    def _release(self, key: str, version: Version | None) -> Exclusion | None:
        limits = self._limits.get(key)
        if limits and (version is None or not _matches_any(version, limits)):
            plugin = "allowlist_release" if self.cfg.uses("allowlist_release") else \
                    "project_requirements_pinned"
            return Exclusion(plugin, f"version {version} outside {', '.join(map(str, limits))}")
        if version is None:
            return None
        blocked = self._blocked_releases.get(key)
        if blocked and _matches_any(version, blocked):
            return Exclusion("blocklist_release", f"version {version} in the blocklist")
        for pattern in self._release_rx:
            if pattern.match(str(version)):
                return Exclusion("regex_release", f"version {version} matches {pattern.pattern!r}")
        if self.cfg.uses("prerelease_release") and version.is_prerelease:
            scope = self.cfg.prerelease_projects
            if scope is None or key in scope:
                return Exclusion("prerelease_release", f"version {version} is a pre-release")
        return None

    def _keep_latest(self, key: str, page: ProjectPage, versions: Mapping[str, Version | None],
                     verdict: dict[Version | None, Exclusion | None]) -> None:
        keep = self.cfg.latest_keep
        if not self.cfg.uses("latest_release") or not keep:
            return
        candidates = [v for v, why in verdict.items() if v is not None and why is None]
        if self.cfg.latest_sort_by == "time":
            newest: dict[Version, str] = {}
            for f in page.files:
                v = versions[f.filename]
                if v is not None:
                    newest[v] = max(newest.get(v, ""), f.upload_time or "")
            candidates.sort(key=lambda v: (newest.get(v, ""), v), reverse=True)
        else:
            candidates.sort(reverse=True)
        for v in candidates[keep:]:
            verdict[v] = Exclusion("latest_release", f"version {v} is older than the newest {keep}")

    @staticmethod
    def _versions(page: ProjectPage, kept: Sequence[DistFile], versions: Mapping[str, Version | None],
                  verdict: Mapping[Version | None, Exclusion | None]) -> tuple[str, ...] | None:
        """PEP 700 ``versions`` for our pages: the releases that still have files here."""
        present = {versions[f.filename] for f in kept} - {None}
        if page.versions is None:
            return tuple(str(v) for v in sorted(present))  # type: ignore[type-var]
        out = []
        for text in page.versions:
            try:
                v = Version(text)
            except ValueError:
                continue
            if v in present:
                out.append(text)
        return tuple(out)
