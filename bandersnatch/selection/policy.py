"""What the operator selected: one policy asked where a name enters the work list and where a
project's files are planned.

Every "no" comes with an ``Exclusion`` naming the plugin and the reason, as pip's link evaluator
does.  Excluded is not refused: a refused name is bad upstream data (the run fails), an excluded
one is the operator's choice (silent, debug log).  Pure: records in, decisions out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from packaging.version import Version

from ..config.holdback import HoldBack
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
from ..formats.dists import version_text as file_version_text
from ..formats.jsonapi import jsonapi_files
from ..formats.simple import DistFile, ProjectPage
from .holdback import Timing, Window


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
    held: int = 0  # files the cooling-off window holds back (their exclusions are ``HoldBack``'s)
    matures: float | None = None  # when the first of them leaves the window (Unix time)
    # The releases excluded whole (a version and why), in version order: ``dropped`` names their files
    # too, and a file dropped for its own sake is one whose version is not here.
    releases: tuple[tuple[Version, Exclusion], ...] = ()


class Selection:
    """The operator's selection, built once from the configuration; safe to share between threads."""

    def __init__(self, cfg: FilterConfig, window: Window | None = None) -> None:
        self.cfg = cfg
        self.active = cfg.active
        # The cooling-off window ([mirror] hold-back); None when it is off.
        self.window = window if window is not None and window.cfg.active else None
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
        self._judges_metadata = tuple(p for p in self._plugins if p.needs_metadata)
        self._judges_file_metadata = tuple(p for p in self._judges_metadata
                                           if type(p).file_metadata is not FilterPlugin.file_metadata)

    @property
    def wants_metadata(self) -> bool:
        """Whether a plugin decides on upstream's JSON API document, which must then be fetched."""
        return self.active and bool(self._judges_metadata)

    @property
    def judges_pages(self) -> bool:
        """Whether a filter excludes whole projects on their page or metadata (not their name alone)."""
        sized = self.cfg.uses(SizeProjectMetadata) and self.cfg.max_package_size is not None
        counted = self.cfg.uses(VersionsCountProjectMetadata)
        return self.active and (sized or counted or bool(self._judges_metadata))

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

    def metadata(self, key: str, doc: Mapping[str, object]) -> Exclusion | None:
        """What the metadata plugins say of the project's JSON API document (``{}`` when upstream
        has none: every rule then meets a missing node)."""
        for plugin in self._judges_metadata:
            reason = plugin.metadata(key, doc)
            if reason is not None:
                return Exclusion(type(plugin), reason)
        return None

    def plan_files(self, key: str, page: ProjectPage,
                   metadata: Mapping[str, object] | None = None) -> FilePlan:
        """The files of ``page`` that survive the release and file filters and the cooling-off window,
        in page order; ``metadata``: the project's JSON API document, for the file metadata plugins.

        The window holds files the filters keep; a release whose kept files are all held is not a
        release here yet, so ``latest_release`` counts only the others.
        """
        if not self.active and self.window is None:
            return FilePlan(page.files, page.versions)
        judge_file = self._file_metadata_judge(key, metadata or {})
        versions = {f.filename: file_version(f.filename, key) for f in page.files}
        release_verdict: dict[Version | None, Exclusion | None] = {
            v: self._release(key, v) if self.active else None for v in set(versions.values())}
        by_file = {f.filename: (self._file(key, f) or judge_file(f)) if self.active else None
                   for f in page.files}
        held = self._held(key, page, versions, release_verdict, by_file)
        waiting = self._releases_held(page, versions, release_verdict, by_file, held)
        for release in waiting:
            release_verdict[release] = Exclusion(HoldBack, f"every file of version {release} is held back")
        if self.active:
            self._keep_latest(key, page, versions, release_verdict)
        kept: list[DistFile] = []
        dropped: list[tuple[str, Exclusion]] = []
        matures: list[float] = []
        for f in page.files:
            v = versions[f.filename]
            why = (None if v in waiting else release_verdict[v]) or by_file[f.filename]
            if why is None and f.filename in held:
                why, ripe_at = held[f.filename]
                matures.append(ripe_at)
                if v in waiting:  # held whole: listed under its release (dry run)
                    why = release_verdict[v] or why
            if why is None:
                kept.append(f)
            else:
                dropped.append((f.filename, why))
        if self.active:
            listed = self._versions(page, kept, versions, release_verdict)
        else:
            listed = _without(page.versions, waiting)
        releases = tuple(sorted(((v, why) for v, why in release_verdict.items()
                                 if v is not None and why is not None), key=lambda item: item[0]))
        return FilePlan(tuple(kept), listed, tuple(dropped), len(matures), min(matures, default=None),
                        releases)

    def _held(self, key: str, page: ProjectPage, versions: Mapping[str, Version | None],
              release_verdict: Mapping[Version | None, Exclusion | None],
              by_file: Mapping[str, Exclusion | None]) -> dict[str, tuple[Exclusion, float]]:
        """The files the filters keep that the window holds: filename -> (exclusion, when it matures)."""
        window = self.window
        if window is None:
            return {}
        now = window.now()
        held: dict[str, tuple[Exclusion, float]] = {}
        for f in page.files:
            v = versions[f.filename]
            if release_verdict[v] is not None or by_file[f.filename] is not None:
                continue  # the filters' reason stands: the window never holds what is not kept
            verdict = window.decide(key, f.upload_time, v, now)
            if verdict.timing is Timing.UNTIMED:
                window.untimed(key, f.filename)
            elif verdict.timing is Timing.HELD and verdict.matures is not None:
                held[f.filename] = (Exclusion(HoldBack, window.reason(verdict)), verdict.matures)
        return held

    @staticmethod
    def _releases_held(page: ProjectPage, versions: Mapping[str, Version | None],
                       release_verdict: Mapping[Version | None, Exclusion | None],
                       by_file: Mapping[str, Exclusion | None],
                       held: Mapping[str, object]) -> set[Version]:
        """Releases with at least one file held and none of their kept files out of the window."""
        if not held:
            return set()
        some: set[Version] = set()
        ripe: set[Version | None] = set()
        for f in page.files:
            v = versions[f.filename]
            if v is None or release_verdict[v] is not None or by_file[f.filename] is not None:
                continue
            (some if f.filename in held else ripe).add(v)
        return some - ripe

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

    def _file_metadata_judge(self, key: str, doc: Mapping[str, object]) \
            -> Callable[[DistFile], Exclusion | None]:
        """The verdict of the file metadata plugins on one file, each judged on bandersnatch 8.2's
        ``{"info", "release", "release_file"}`` (a file the document lacks: an empty release_file)."""
        if not self._judges_file_metadata:
            return lambda dist: None
        entries = jsonapi_files(doc)
        info = doc.get("info")

        def judge(dist: DistFile) -> Exclusion | None:
            release, entry = entries.get(dist.filename, (file_version_text(dist.filename, key), {}))
            view = {"info": info, "release": release, "release_file": entry}
            for plugin in self._judges_file_metadata:
                reason = plugin.file_metadata(key, view)
                if reason is not None:
                    return Exclusion(type(plugin), reason)
            return None

        return judge

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


def _without(listed: tuple[str, ...] | None, waiting: set[Version]) -> tuple[str, ...] | None:
    """PEP 700 ``versions`` without the releases whose every file is held back (unfiltered pages)."""
    if listed is None or not waiting:
        return listed
    out = []
    for text in listed:
        try:
            if Version(text) in waiting:
                continue
        except ValueError:
            pass
        out.append(text)
    return tuple(out)
