"""What the operator selected: one policy asked where a name enters the work list and where a
project's files are planned.

Every "no" comes with an ``Exclusion`` naming the plugin and the reason, as pip's link evaluator
does.  Excluded is not refused: a refused name is bad upstream data (the run fails), an excluded
one is the operator's choice (silent, debug log).  Pure: records in, decisions out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.version import Version

from ..config.plugins import (
    BUILTIN,
    AllowlistProject,
    AllowlistRelease,
    ExcludePlatform,
    FilterConfig,
    FilterPlugin,
    LatestRelease,
    Pin,
    ProjectRequirements,
    ProjectRequirementsPinned,
    SizeProjectMetadata,
    VersionsCountProjectMetadata,
    matches_any,
    specifiers,
)
from ..formats.dists import PlatformFilter, file_version
from ..formats.simple import DistFile, ProjectPage


@dataclass(frozen=True)
class Exclusion:
    """Why something is not mirrored: the plugin that decided (a type) and its reason."""

    by: type[FilterPlugin]
    reason: str

    @property
    def plugin(self) -> str:
        """The plugin's bandersnatch name, as the configuration, logs and selected.txt spell it."""
        return self.by.name

    def __str__(self) -> str:
        return f"{self.plugin}: {self.reason}"


@dataclass(frozen=True)
class FilePlan:
    """A project's files after the release and file filters, and the versions its pages list."""

    files: tuple[DistFile, ...]
    versions: tuple[str, ...] | None
    dropped: tuple[tuple[str, Exclusion], ...] = ()
    # The releases excluded whole (a version and why), in version order: ``dropped`` names their files
    # too, and a file dropped for its own sake is one whose version is not here.
    releases: tuple[tuple[Version, Exclusion], ...] = ()


class Selection:
    """The operator's selection, built once from the configuration; safe to share between threads."""

    def __init__(self, cfg: FilterConfig) -> None:
        self.cfg = cfg
        self.active = cfg.active
        self.allowlist_mode = cfg.uses(AllowlistProject) or cfg.uses(ProjectRequirements)
        self.with_dependencies = cfg.with_dependencies and self.allowlist_mode
        roots: dict[str, frozenset[str]] = {}
        sources: list[Pin] = []
        if cfg.uses(AllowlistProject) or not self.allowlist_mode:
            sources.extend(cfg.allowlist)  # the allowlist also exempts from size/count limits
        if cfg.uses(ProjectRequirements):
            sources.extend(cfg.requirements)
        for pin in sources:
            roots[pin.key] = roots.get(pin.key, frozenset()) | pin.extras
        self._roots = roots
        limits: list[Pin] = []
        if cfg.uses(AllowlistRelease):
            limits.extend(cfg.allowlist)
        if cfg.uses(ProjectRequirementsPinned):
            limits.extend(cfg.requirements)
        self._limits = specifiers(limits)
        # The plugins that decide alone, in registry order (third-party ones last): their hooks.
        self._plugins = tuple(plugin(cfg) for plugin in (*BUILTIN.values(), *cfg.third_party)
                              if cfg.uses(plugin))
        self._platforms = next((p.platforms for p in self._plugins if isinstance(p, ExcludePlatform)), None)

    # ------------------------------------------------------------ names

    @property
    def roots(self) -> Mapping[str, frozenset[str]]:
        """Allowlisted projects (normalized) and the extras their lines ask for."""
        return self._roots if self.allowlist_mode else {}

    def environments(self) -> tuple[dict[str, str], ...]:
        """The marker environments the mirror serves (for dependency markers)."""
        return (self._platforms or PlatformFilter.parse(())).environments()

    def blocks(self, key: str, name: str | None = None) -> Exclusion | None:
        """The filters that hold for any project, dependency or not: blocklist, regex, third-party."""
        for plugin in self._plugins:
            reason = plugin.project(key, name)
            if reason is not None:
                return Exclusion(type(plugin), reason)
        return None

    def project(self, key: str, name: str | None = None) -> Exclusion | None:
        """Whether a name may enter the work list (dependencies aside: see ``blocks``)."""
        if not self.active:
            return None
        blocked = self.blocks(key, name)
        if blocked is not None:
            return blocked
        if self.allowlist_mode and key not in self._roots:
            plugin = AllowlistProject if self.cfg.uses(AllowlistProject) else ProjectRequirements
            return Exclusion(plugin, "not in the allowlist")
        return None

    # ------------------------------------------------------------ a project's page

    def project_page(self, key: str, page: ProjectPage) -> Exclusion | None:
        """Project-wide limits that need the page: total size and number of versions."""
        if not self.active:
            return None
        exempt = key in self._roots and not self.cfg.uses(AllowlistProject)
        if self.cfg.uses(SizeProjectMetadata) and self.cfg.max_package_size is not None and not exempt:
            total = sum(f.size or 0 for f in page.files)
            if total > self.cfg.max_package_size:
                return Exclusion(SizeProjectMetadata,
                                 f"{total} bytes exceed max_package_size {self.cfg.max_package_size}")
        if self.cfg.uses(VersionsCountProjectMetadata) and not exempt:
            count = len(page.versions) if page.versions is not None else len(
                {v for f in page.files if (v := file_version(f.filename, key)) is not None})
            if self.cfg.min_versions is not None and count < self.cfg.min_versions:
                return Exclusion(VersionsCountProjectMetadata,
                                 f"{count} versions, fewer than min_versions {self.cfg.min_versions}")
            if self.cfg.max_versions is not None and count > self.cfg.max_versions:
                return Exclusion(VersionsCountProjectMetadata,
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
            why = release_verdict[versions[f.filename]] or self._file(key, f)
            if why is None:
                kept.append(f)
            else:
                dropped.append((f.filename, why))
        releases = tuple(sorted(((v, why) for v, why in release_verdict.items()
                                 if v is not None and why is not None), key=lambda item: item[0]))
        return FilePlan(tuple(kept), self._versions(page, kept, versions, release_verdict), tuple(dropped),
                        releases)

    def _release(self, key: str, version: Version | None) -> Exclusion | None:
        limits = self._limits.get(key)
        if limits and (version is None or not matches_any(version, limits)):
            plugin = AllowlistRelease if self.cfg.uses(AllowlistRelease) else ProjectRequirementsPinned
            return Exclusion(plugin, f"version {version} outside {', '.join(map(str, limits))}")
        if version is None:
            return None
        for each in self._plugins:
            reason = each.release(key, version)
            if reason is not None:
                return Exclusion(type(each), reason)
        return None

    def _file(self, key: str, dist: DistFile) -> Exclusion | None:
        for plugin in self._plugins:
            reason = plugin.file(key, dist)
            if reason is not None:
                return Exclusion(type(plugin), reason)
        return None

    def _keep_latest(self, key: str, page: ProjectPage, versions: Mapping[str, Version | None],
                     verdict: dict[Version | None, Exclusion | None]) -> None:
        keep = self.cfg.latest_keep
        if not self.cfg.uses(LatestRelease) or not keep:
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
            verdict[v] = Exclusion(LatestRelease, f"version {v} is older than the newest {keep}")

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
