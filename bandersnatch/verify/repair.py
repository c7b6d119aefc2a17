"""``bandersnatch verify --repair``: mend what ``verify`` found, with the mirror's own tools.

* A project whose file is missing, short or has other bytes, or whose pages
  are missing, damaged or disagree, is synced again (``ProjectSync``, checking
  every file it links on disk; in an object store by a HEAD against its
  record): a bad file is downloaded again and verified like any download,
  and both pages are rewritten from upstream's.  The files verify found bad
  are never trusted by their record, whatever their size and stamp say; the
  others are kept.  A project upstream no longer has leaves the root index,
  then the disk.
* A ghost project (a directory neither the root index nor upstream names) is
  taken off the mirror like one upstream removed.
* An orphan file is deleted unless a page links it after all: the claims
  record, the owner's page and this run's syncs are asked first
  (``owners.Links``); a ``.metadata`` or ``.provenance`` goes unless a page
  links it (a page linking only its file does not). It is deleted through the
  store, like every other change.
* Removals draw from the run's removal budget (``gate``), as a mirror run's
  do: the projects to remove (gone upstream, ghosts) and the orphans are each
  counted first, and past ``max-removals``/``max-file-removals`` (and their
  percentages) none of them is removed: they are reported, and
  ``--allow-mass-removal`` lets them go.
* The root index is rebuilt from the project directories when it was wrong
  or a project came or went.

It runs under the mirror's lock, so no mirror run writes meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import BandersnatchError, LinkInMirror, RemovalsHeldBack
from ..formats.layout import PAGE_JSON
from ..publish.owners import sidecar_of
from ..sync.package import ProjectSync
from ..sync.rootindex import RootIndex
from .pagecheck import CONFLICT, FILE_KINDS, GHOST, ORPHAN, PAGE_KINDS, ROOT_EXTRA, Problem

logger = logging.getLogger(__name__)

_RESYNC_KINDS = FILE_KINDS | PAGE_KINDS | {CONFLICT, ROOT_EXTRA}


@dataclass
class RepairReport:
    resynced: list[str] = field(default_factory=list)
    files: int = 0  # files downloaded again
    removed: list[str] = field(default_factory=list)  # ghosts, and projects gone upstream
    orphans: int = 0
    kept: list[str] = field(default_factory=list)  # orphans a page turned out to link
    root_rebuilt: bool = False
    failed: dict[str, str] = field(default_factory=dict)  # what could not be mended -> why
    held: list[str] = field(default_factory=list)  # projects and files left as they were: past the limits
    held_back: str | None = None  # why (the removal limits), for the last line

    def lines(self) -> list[str]:
        said = [f"re-synced {len(self.resynced)} project(s) ({', '.join(self.resynced[:10])}"
                f"{', ...' if len(self.resynced) > 10 else ''}), {self.files} file(s) downloaded again"]
        if self.removed:
            said.append(f"removed {len(self.removed)} project(s): {', '.join(self.removed[:10])}")
        said.append(f"deleted {self.orphans} orphan file(s)")
        if self.kept:
            said.append(f"kept {len(self.kept)} file(s) another page links")
        if self.root_rebuilt:
            said.append("rebuilt the root index from the project directories")
        if self.held:
            said.append(f"held back {len(self.held)} removal(s) past the removal limits")
        return said


class Repair:
    def __init__(self, projects: ProjectSync, root: RootIndex, serial: int | None, workers: int) -> None:
        self.projects = projects
        self.layout = projects.layout
        self.root = root
        self.serial = serial
        self.workers = workers
        self.report = RepairReport()
        self._created = False
        self._synced: dict[str, int] = {}  # re-synced projects and their pages' serials, for the root index
        self._gone: dict[str, str] = {}  # re-synced projects upstream no longer has (or filters drop) -> why
        self._lock = threading.Lock()

    def run(self, problems: Iterable[Problem]) -> RepairReport:
        problems = list(problems)
        resync = sorted({key for p in problems if p.kind in _RESYNC_KINDS for key in p.projects})
        ghosts = sorted({p.projects[0] for p in problems if p.kind == GHOST})
        self.projects.suspect = frozenset(p.subject for p in problems if p.kind in FILE_KINDS)
        with ThreadPoolExecutor(max_workers=2 * self.workers, thread_name_prefix="repair") as pool:
            for key, error in zip(resync, pool.map(self._resync, resync), strict=True):
                if error is not None:
                    self.report.failed[key] = error
        self._remove(self._gone, ghosts)
        self._delete_orphans([p.subject.removeprefix("packages/") for p in problems if p.kind == ORPHAN])
        # A re-sync may give a project its pages back; ghosts were never named, and the removals
        # above patched the root index already.
        if self._created or any(p.kind.startswith("root-") for p in problems):
            self.root.update(None, set(), self.serial)
            self.report.root_rebuilt = True
        elif self._synced:
            self.root.update(self._synced, set(), self.serial)  # a re-synced page may carry a newer serial
        return self.report

    def _resync(self, key: str) -> str | None:
        """Sync ``key`` again; the error when that fails."""
        try:
            serial = _page_serial(self.projects, key)
            outcome = self.projects.sync(key, serial)
            if outcome.removed or outcome.excluded:
                why = f"not selected: {outcome.excluded}" if outcome.excluded else "gone upstream"
                with self._lock:  # removed after the pool, all or none (the removal budget)
                    self._gone[key] = why
                return None
        except LinkInMirror:
            raise  # the operator's to fix (exit 2), not a project that failed
        except RemovalsHeldBack as exc:
            with self._lock:
                self.report.held.append(key)
                self.report.held_back = self.report.held_back or str(exc)
            return None
        except BandersnatchError as exc:
            logger.error("%s: could not repair: %s", key, exc)
            return str(exc)
        self.report.resynced.append(key)
        self._created |= outcome.created
        self._synced[key] = outcome.last_serial if outcome.last_serial is not None else serial
        self.report.files += outcome.files
        logger.info("%s: re-synced, %d file(s) downloaded again", key, outcome.files)
        return None

    def _remove(self, named: dict[str, str], ghosts: list[str]) -> None:
        """Take off the mirror the projects upstream no longer has (``named``: project -> why; the root
        index first) and the ``ghosts`` (never named): all of them, or none past the removal limits."""
        gone = {**named, **{key: "ghost: neither the root index nor upstream names it" for key in ghosts}}
        if not gone:
            return
        if not self.projects.store.reserve_projects(len(gone)):
            self.report.held.extend(sorted(gone))
            self.report.held_back = self.report.held_back or self.projects.store.budget.held_back
            return
        if named:
            self.root.update({}, set(named), self.serial)  # the root stops naming them before their pages go
        for key in sorted(gone):
            self.projects.remove_project(key, gone[key])
            self.report.removed.append(key)

    def _delete_orphans(self, rels: list[str]) -> None:
        if not rels:
            return
        try:
            self.projects.store.reserve_files(len(rels))
        except RemovalsHeldBack as exc:
            self.report.held.extend(f"packages/{rel}" for rel in rels)
            self.report.held_back = self.report.held_back or str(exc)
            return
        for rel in rels:
            self._delete_orphan(rel)

    def _delete_orphan(self, rel: str) -> None:
        path = self.layout.packages / rel

        def delete() -> None:
            # Through the store (the gate), which prunes the directories the delete leaves empty.
            if self.projects.store.delete(f"packages/{rel}") is not None:
                logger.info("deleted orphan %s", path)
                self.report.orphans += 1

        # A .metadata or .provenance goes unless a page links it (not merely its file).
        sidecar = sidecar_of(rel)
        links = self.projects.links
        other = (links.delete_if_unlinked("", rel, delete) if sidecar is None
                 else links.delete_sidecar_if_unlinked("", *sidecar, delete))
        if other is not None:
            logger.warning("kept %s: %s's page links it", path, other)
            self.report.kept.append(rel)


def _page_serial(projects: ProjectSync, key: str) -> int:
    """The serial our page was written at: upstream's page must be at least as new."""
    try:
        meta = json.loads((projects.layout.page_dir(key) / PAGE_JSON).read_bytes())["meta"]
        serial = meta.get("_last-serial")
        return serial if isinstance(serial, int) and not isinstance(serial, bool) else 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0

