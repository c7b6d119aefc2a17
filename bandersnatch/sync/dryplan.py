"""What ``bandersnatch mirror --dry-run`` found a run would do: the plan's records and their two renderings.

Decisions in, records out; records in, text or JSON out; no network, no disk.  Every "not mirrored" is an
``Exclusion`` (the filter plugin's class and its reason), at the level it was
decided: a project, a release (with the files it takes along), or one file.
Anything else that keeps a file back for a while (a cooling-off window, say)
adds its files as ``ExcludedFile`` records with an ``Exclusion`` of its own
``FilterPlugin`` subclass and reason: the renderings need no change for it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config.plugins import AllowlistProject, ProjectRequirements
from ..formats.dists import file_version
from ..progress import human_bytes
from ..publish.budget import FileRemovalLimit, RemovalLimit
from ..selection.policy import Exclusion, FilePlan

FORMAT = 1  # the JSON document's "format": raised when a field changes meaning


class Change(enum.Enum):
    """What the run would do to one project."""

    ADD = "add"  # not on the mirror: its pages and files would be published
    UPDATE = "update"  # on the mirror: files to fetch or to delete
    UNCHANGED = "unchanged"  # asked (the feed named it), nothing to fetch or delete
    REMOVE = "remove"  # its pages (and, with delete-packages, its files) would go


@dataclass(frozen=True)
class PlannedFile:
    """A file to fetch or to delete; ``size`` None: the page gives none (PEP 700 ``size`` is optional)."""

    filename: str
    size: int | None


@dataclass(frozen=True)
class ExcludedRelease:
    version: str
    exclusion: Exclusion
    files: tuple[str, ...]


@dataclass(frozen=True)
class ExcludedFile:
    filename: str
    exclusion: Exclusion


@dataclass(frozen=True)
class ProjectPlan:
    """One project the run would ask for."""

    name: str  # normalized
    change: Change
    fetch: tuple[PlannedFile, ...] = ()
    delete: tuple[PlannedFile, ...] = ()
    releases: tuple[ExcludedRelease, ...] = ()  # excluded whole
    files: tuple[ExcludedFile, ...] = ()  # excluded one by one
    removed_by: Exclusion | None = None  # why a REMOVE: a filter (None: upstream has no such project)


@dataclass(frozen=True)
class ExcludedProject:
    name: str
    exclusion: Exclusion


@dataclass(frozen=True)
class ExcludedCount:
    """Projects excluded for one reason and counted, not named: the complement of an allowlist
    (on PyPI, every project but the few the operator asked for)."""

    exclusion: Exclusion
    count: int


@dataclass(frozen=True)
class LimitCheck:
    """What one removal limit of ``publish/budget.py`` would say to the run's removals."""

    what: str  # "projects" or "files"
    removals: int
    mirror_size: int | None  # None: not needed (removals within the count, or no limit)
    limit: int | None  # None: --allow-mass-removal
    percent: float | None
    refused: str | None  # the limit's own message when it would hold the removals back

    @property
    def verdict(self) -> str:
        return "unlimited" if self.limit is None else "refuse" if self.refused else "pass"


@dataclass(frozen=True)
class Failed:
    """A project whose page could not be planned (the run would fail it too, and retry it next time)."""

    name: str
    error: str


@dataclass(frozen=True)
class Totals:
    projects_to_add: int
    projects_to_update: int
    projects_to_remove: int
    files_to_fetch: int
    bytes_to_fetch: int  # of the files whose size the pages give
    files_of_unknown_size: int
    files_to_delete: int
    bytes_to_free: int


@dataclass(frozen=True)
class DryRunPlan:
    """Everything one dry run found."""

    master: str
    directory: str
    since: int | None  # the mirror's serial (None: none yet)
    target: int | None  # the serial the run would reach
    full_sync: str | None  # why the run would list every project; None: the changes since ``since``
    projects: tuple[ProjectPlan, ...]
    excluded: tuple[ExcludedProject, ...] = ()
    counted: tuple[ExcludedCount, ...] = ()
    failed: tuple[Failed, ...] = ()
    limits: tuple[LimitCheck, ...] = ()
    notes: tuple[str, ...] = field(default=())  # what the plan could not know (one line each)

    @property
    def totals(self) -> Totals:
        fetch = [f for p in self.projects for f in p.fetch]
        delete = [f for p in self.projects for f in p.delete]
        changes = [p.change for p in self.projects]
        return Totals(changes.count(Change.ADD), changes.count(Change.UPDATE), changes.count(Change.REMOVE),
                      len(fetch), sum(f.size or 0 for f in fetch), sum(1 for f in fetch if f.size is None),
                      len(delete), sum(f.size or 0 for f in delete))


# ---------------------------------------------------------------- building them from decisions


def is_complement(exclusion: Exclusion) -> bool:
    """The allowlist's "everything else": counted, not named (on PyPI it is all but a few projects)."""
    return exclusion.by in (AllowlistProject, ProjectRequirements) and \
        exclusion.reason == "not in the allowlist"


def excluded_parts(key: str, chosen: FilePlan
                   ) -> tuple[tuple[ExcludedRelease, ...], tuple[ExcludedFile, ...]]:
    """The releases the filters drop whole (with their files), and the files they drop one by one."""
    whole = dict(chosen.releases)
    by_release: dict[object, list[str]] = {v: [] for v in whole}
    single: list[ExcludedFile] = []
    for filename, why in chosen.dropped:
        version = file_version(filename, key)
        if version in whole and whole[version] == why:
            by_release[version].append(filename)
        else:
            single.append(ExcludedFile(filename, why))
    releases = tuple(ExcludedRelease(str(v), why, tuple(by_release[v])) for v, why in chosen.releases)
    return releases, tuple(single)


def limit_check(what: str, removals: int, limit: RemovalLimit | FileRemovalLimit | None,
                size: Callable[[], int]) -> LimitCheck:
    """What ``limit`` says to ``removals`` (None: ``--allow-mass-removal``); as the run's budget, the
    mirror's ``size`` is asked only past the limit's count."""
    if limit is None:
        return LimitCheck(what, removals, None, None, None, None)
    count = limit.projects if isinstance(limit, RemovalLimit) else limit.files
    if removals <= count:
        return LimitCheck(what, removals, None, count, limit.percent, None)
    mirror = size()
    refused = limit.message(removals, mirror) if limit.exceeded(removals, mirror) else None
    return LimitCheck(what, removals, mirror, count, limit.percent, refused)


# ---------------------------------------------------------------- text


def _files(files: tuple[PlannedFile, ...]) -> str:
    known = human_bytes(sum(f.size or 0 for f in files))
    unknown = sum(1 for f in files if f.size is None)
    return f"{len(files)} file(s), {known}" + (f" ({unknown} of unknown size)" if unknown else "")


def _project_lines(p: ProjectPlan) -> Iterable[str]:
    head = f"{p.change.value} {p.name}"
    if p.change is Change.REMOVE:
        head += f" ({p.removed_by or 'gone upstream'})"
    parts = [f"{verb} {_files(files)}" for verb, files in (("fetch", p.fetch), ("delete", p.delete)) if files]
    yield head + (": " + "; ".join(parts) if parts else "")
    for release in p.releases:
        yield f"  excluded release {release.version} ({len(release.files)} file(s)): {release.exclusion}"
    for excluded in p.files:
        yield f"  excluded file {excluded.filename}: {excluded.exclusion}"


def _limit_line(check: LimitCheck) -> str:
    if check.limit is None:
        return f"  {check.what}: {check.removals} removal(s): pass (--allow-mass-removal)"
    size = "" if check.mirror_size is None else f" of the {check.mirror_size} on the mirror"
    limits = (f"max-{'file-' if check.what == 'files' else ''}removals = {check.limit}, "
              f"max-{'file-' if check.what == 'files' else ''}removals-percent = {check.percent:g}")
    if check.refused:
        return f"  {check.what}: {check.removals}{size}: REFUSE ({limits}): {check.refused}"
    return f"  {check.what}: {check.removals}{size}: pass ({limits})"


def render_text(plan: DryRunPlan) -> str:
    """The operator's reading: one line per project and per exclusion, then the totals."""
    lines = [f"Dry run of {plan.directory} against {plan.master}: nothing was written or downloaded"]
    reach = f" up to serial {plan.target}" if plan.target is not None else ""
    lines.append(f"Full sync ({plan.full_sync}){reach}" if plan.full_sync is not None
                 else f"Changes since serial {plan.since}{reach}")
    unchanged = 0
    for p in plan.projects:
        if p.change is Change.UNCHANGED and not p.releases and not p.files:
            unchanged += 1
            continue
        lines.extend(_project_lines(p))
    if unchanged:
        lines.append(f"{unchanged} project(s) asked and unchanged")
    lines.extend(f"excluded project {e.name}: {e.exclusion}" for e in plan.excluded)
    lines.extend(f"excluded {c.count} project(s): {c.exclusion}" for c in plan.counted)
    lines.extend(f"failed {f.name}: {f.error}" for f in plan.failed)
    lines.extend(f"note: {note}" for note in plan.notes)
    t = plan.totals
    unknown = f" (+{t.files_of_unknown_size} file(s) of unknown size)" if t.files_of_unknown_size else ""
    lines.append(f"Totals: {t.projects_to_add} project(s) to add, {t.projects_to_update} to update, "
                 f"{t.projects_to_remove} to remove; {t.files_to_fetch} file(s) to fetch, "
                 f"{human_bytes(t.bytes_to_fetch)} ({t.bytes_to_fetch} bytes){unknown}; "
                 f"{t.files_to_delete} file(s) to delete, {human_bytes(t.bytes_to_free)} ({t.bytes_to_free} "
                 "bytes) to free")
    if plan.limits:
        lines.append("Removal limits:")
        lines.extend(_limit_line(check) for check in plan.limits)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- JSON


def _exclusion(e: Exclusion) -> dict[str, str]:
    return {"plugin": e.plugin, "reason": e.reason}


def _file_list(files: tuple[PlannedFile, ...]) -> list[dict[str, Any]]:
    return [{"filename": f.filename, "size": f.size} for f in files]


def _project_json(p: ProjectPlan) -> dict[str, Any]:
    return {
        "name": p.name,
        "change": p.change.value,
        "removed_by": None if p.removed_by is None else _exclusion(p.removed_by),
        "fetch": _file_list(p.fetch),
        "delete": _file_list(p.delete),
        "excluded_releases": [{"version": r.version, **_exclusion(r.exclusion), "files": list(r.files)}
                              for r in p.releases],
        "excluded_files": [{"filename": f.filename, **_exclusion(f.exclusion)} for f in p.files],
    }


def _limit_json(check: LimitCheck) -> dict[str, Any]:
    return {"removals": check.removals, "mirror_size": check.mirror_size, "limit": check.limit,
            "percent": check.percent, "verdict": check.verdict, "message": check.refused}


def to_json(plan: DryRunPlan) -> dict[str, Any]:
    """The document ``--json`` prints (its shape is in README: "A dry run")."""
    t = plan.totals
    return {
        "format": FORMAT,
        "master": plan.master,
        "directory": plan.directory,
        "since": plan.since,
        "target": plan.target,
        "full_sync": plan.full_sync,
        "projects": [_project_json(p) for p in plan.projects],
        "excluded_projects": [{"name": e.name, **_exclusion(e.exclusion)} for e in plan.excluded],
        "excluded_counts": [{**_exclusion(c.exclusion), "count": c.count} for c in plan.counted],
        "failed": [{"name": f.name, "error": f.error} for f in plan.failed],
        "notes": list(plan.notes),
        "totals": {
            "projects_to_add": t.projects_to_add, "projects_to_update": t.projects_to_update,
            "projects_to_remove": t.projects_to_remove, "files_to_fetch": t.files_to_fetch,
            "bytes_to_fetch": t.bytes_to_fetch, "files_of_unknown_size": t.files_of_unknown_size,
            "files_to_delete": t.files_to_delete, "bytes_to_free": t.bytes_to_free,
        },
        "limits": {check.what: _limit_json(check) for check in plan.limits},
    }


def render_json(plan: DryRunPlan) -> str:
    return json.dumps(to_json(plan), indent=1, sort_keys=True) + "\n"
