"""What one ``bandersnatch mirror`` run owes: from state, todo, the change feed and the serial check
to the work list written as ``todo``, and, when it is a full sync, the one reason why.

The run (``mirror``) holds the lock, calls ``Planner.plan`` once, then syncs what ``todo``
holds.  Planning streams the work list from upstream to disk and the run reads it back
lazily, so a 750,000-project sync keeps memory flat.
"""

from __future__ import annotations

import enum
import itertools
import logging
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

from ..config.settings import Config
from ..errors import BandersnatchError
from ..formats.layout import has_pages_in
from ..ledger.counts import Tally
from ..ledger.state import NameSet, PendingFile, StateFiles, Todo, name_hash
from ..names import is_valid_project_name, normalize
from ..selection.closure import DependencyTracker
from ..selection.policy import Selection
from ..selection.records import DependencyRecords
from ..upstream.feeds import ChangeFeed
from . import adopt
from .package import Layout, ProjectSync
from .rootindex import RootIndex
from .serialcheck import SerialCheck

logger = logging.getLogger(__name__)


class Work(NamedTuple):
    """One project owed to the mirror: its name as upstream spells it, and the serial to ask it at
    (0: as upstream has it now)."""

    name: str
    serial: int


class FullSyncReason(enum.Enum):
    """Why a run lists every project upstream instead of reading the changes since its serial.

    Declared in the order of precedence: when several hold, the first is the one logged.
    """

    FILTERS_CHANGED = "the filters, core-metadata or hold-back changed since the last run"
    CONTENT_LOST = "pages the state says the mirror has are gone"
    TODO_LOST = "todo was damaged with no record of what it owed"
    FIRST_RUN = "first run: no state and nothing pending"
    FORCE_CHECK = "--force-check"
    ADOPTING = "adopting a bandersnatch 8 mirror: every project's JSON copy is written anew"
    AHEAD_OF_UPSTREAM = "the mirror's serial is above upstream's own"


# What the operator reads for a reason, once per run: ``{detail}`` is what the check found.
# The reasons without a line of their own before (first run, --force-check, ...) say it at debug.
_SAID: dict[FullSyncReason, tuple[int, str]] = {
    FullSyncReason.FILTERS_CHANGED: (
        logging.INFO,
        "The filters, core-metadata or hold-back changed since the last run: reconciling the mirror with "
        "them"),
    FullSyncReason.CONTENT_LOST: (
        logging.WARNING,
        "{detail}: content was lost; a full sync follows (files still on disk are checked, not downloaded "
        "again)"),
    FullSyncReason.AHEAD_OF_UPSTREAM: (
        logging.WARNING,
        "{detail}: listing upstream again for a full sync that takes its serial (files already on disk are "
        "checked, not downloaded again)"),
}


def announce(reason: FullSyncReason, detail: str = "") -> None:
    """The one log line for why this run is a full sync."""
    level, text = _SAID.get(reason, (logging.DEBUG, "Full sync: {reason}"))
    logger.log(level, text.format(detail=detail, reason=reason.value))


def full_sync_reason(holding: Iterable[FullSyncReason]) -> FullSyncReason | None:
    """The reason to log among those that hold: the first in declaration order."""
    held = set(holding)
    return next((reason for reason in FullSyncReason if reason in held), None)


@dataclass(frozen=True)
class Plan:
    """This run's work list, written as ``todo``: up to serial ``target``, ``count`` entries."""

    target: int
    count: int
    full: FullSyncReason | None  # None: the changes since the mirror's serial


def pages_fingerprint(config: Config, selection: Selection) -> str | None:
    """What decides what every page lists: the filters, core-metadata when it is off, and the
    cooling-off window when it is on.

    A change makes the next run render every page again.  With core-metadata on and no
    hold-back (the defaults) it is the filters' fingerprint alone, so a mirror's record from
    before stays valid.
    """
    filters = config.filters.fingerprint() if selection.active else None
    pages = filters if config.core_metadata else f"{filters or 'unfiltered'}+no-core-metadata"
    window = config.hold_back.fingerprint()
    return pages if window is None else f"{pages or 'unfiltered'}+hold-back-{window}"


class Planner:
    """Decides one run's work: which projects, at which serials, and whether a full sync."""

    def __init__(self, config: Config, state: StateFiles, feed: ChangeFeed, master_url: str, root: RootIndex,
                 layout: Layout, projects: ProjectSync, selection: Selection,
                 records: DependencyRecords | None, tally: Tally, *, force_check: bool) -> None:
        self.config, self.state, self.feed, self.master_url = config, state, feed, master_url
        self.root, self.layout, self.projects, self.tally = root, layout, projects, tally
        self.selection, self.records, self.force_check = selection, records, force_check
        self.refused: set[str] = set()
        self.repeated: set[int] = set()  # digests of listed names that normalize alike
        self.tracker: DependencyTracker | None = None  # built once the run holds the lock
        self.unselected: dict[str, int] = {}  # unselected projects in this run's changelog: highest serial
        # Projects with a file that left the cooling-off window since it was held: owed with no
        # upstream change (set by the run from the hold-back ledger before it plans).
        self.matured: list[str] = []

    def plan(self) -> Plan | None:
        """Write this run's work list as ``todo``; None when the mirror is current."""
        if self.records is not None:
            self.tracker = DependencyTracker(self.selection, self.records)
        pending = self.state.open_todo()  # first: recovering a corrupt todo may void the state
        serial = self.state.read_serial()
        fingerprint = self._pages_fingerprint()
        reconcile = serial is not None and self.state.read_selection() != fingerprint
        if reconcile:
            self.state.set_prune_pending(True)
        if pending is not None:
            logger.info("Resuming the pending projects of %s", self.state.todo_path)
        lost = self._content_lost() if serial is not None and not self.force_check else None
        if lost is not None:
            self.tally.recount()  # the counts followed pages that are gone
        adopting = self.state.adopting()
        check = SerialCheck(self.state, self.feed, self.master_url)
        reason = full_sync_reason(held for held, holds in (
            (FullSyncReason.FILTERS_CHANGED, reconcile),
            (FullSyncReason.CONTENT_LOST, lost is not None),
            (FullSyncReason.TODO_LOST, self.state.damaged),
            (FullSyncReason.FIRST_RUN, serial is None and pending is None),
            (FullSyncReason.FORCE_CHECK, self.force_check),
            (FullSyncReason.ADOPTING, adopting and self.config.json),
        ) if holds)
        if reason is not None:
            announce(reason, lost or "")
            plan = self._plan_full(pending, adopting, check, reason)
            self.state.write_selection(fingerprint)  # todo now holds what the new filters owe
            self.state.adopted()
            return plan
        return self._plan_changes(serial, pending, adopting, check)

    def _plan_changes(self, serial: int | None, pending: PendingFile | None, adopting: bool,
                      check: SerialCheck) -> Plan | None:
        """The changes since the mirror's serial, after what an earlier run still owes."""
        since = max(serial or 0, pending.target if pending else 0)
        changes = self._changes_since(since)
        upstream = check.confirm(max([since, pending.highest if pending else 0,
                                      *(s for _, s in changes.pending.values())]))
        if upstream is not None and upstream < since and check.still_ahead(since):
            announce(FullSyncReason.AHEAD_OF_UPSTREAM, self._ahead(since, check))
            plan = self._plan_full(pending, adopting, check, FullSyncReason.AHEAD_OF_UPSTREAM)
            self.state.adopted()
            return plan
        changes.pending = {key: (name, check.ceiling(s, name)) for key, (name, s) in changes.pending.items()}
        if self.tracker is not None:
            for key in self.tracker.owed(self.has_pages):
                changes.add(key, 0)  # reached by the closure but not on the mirror yet
        for key in self.matured:
            if key not in changes.pending and self.acceptable(key) and self.selected(key):
                changes.add(key, 0)  # as upstream has it now: its held files are due
        last = self.feed.last_serial()
        target = max([since, last if upstream is None else min(last, upstream),
                      *(s for _, s in changes.pending.values())])
        if not changes.pending and pending is None and target == serial and not adopting:
            check.report()
            return None
        work: Iterable[tuple[str, int]] = self._merged(pending or (), changes, check)
        if adopting:
            work = itertools.chain(work, self._adoption_work())
        target, count = self.state.begin_stream(lambda: target, work)
        check.report()
        self.state.adopted()
        if target > since:
            logger.info("Syncing %d project(s) changed since serial %d, up to serial %d", count, since,
                        target)
        else:
            logger.info("Syncing %d project(s) still owed at serial %d (nothing new upstream)", count,
                        target)
        return Plan(target, count, None)

    def _changes_since(self, since: int) -> Todo:
        """What upstream changed after ``since`` that this mirror selects."""
        changes = Todo(since)
        for name, change_serial in self.feed.changed_since(since):
            if not self.acceptable(name):
                continue
            if self.selected(name):
                changes.add(name, change_serial)
            elif self.tracker is not None:  # may join during the run: then asked at this serial
                key = normalize(name)
                self.unselected[key] = max(self.unselected.get(key, 0), change_serial)
        return changes

    @staticmethod
    def _ahead(since: int, check: SerialCheck) -> str:
        """What the serial check found, for the ahead-of-upstream line."""
        previous = check.previous
        if previous is None:
            why = "no record of what it said before: another master, or a serial it never reached"
        elif previous.master != check.master:
            why = f"the master was {previous.master}"
        elif previous.serial >= since:
            why = f"upstream's serial went back from {previous.serial}"
        else:
            why = "an earlier run took a serial upstream never reached"
        return (f"The mirror is at serial {since} but {check.master} says its last serial is "
                f"{check.upstream} ({why})")

    def _pages_fingerprint(self) -> str | None:
        return pages_fingerprint(self.config, self.selection)

    def _content_lost(self) -> str | None:
        """What is gone, when pages are gone that the state says the mirror has; None when whole.

        Cheap enough for every run: the root index's ends name two projects whose
        pages must exist (a whole index naming none, as filters selecting nothing
        leave it, asks for none); without a whole index, ``simple/`` must hold some pages.
        A deleted ``web/`` or ``web/simple/`` then means a full sync, not "up to date".
        """
        ends = self.root.end_names()
        if ends is not None:
            missing = [key for key in ends if not self.has_pages(key)]
            if not missing:
                return None
            why = f"the root index names {missing[0]} but its pages are missing"
        elif self.root.any_pages() is False:
            why = f"{self.layout.simple} holds no project pages"
        else:
            return None
        return f"{why} although {self.state.state_path} says the mirror is current"

    def _merged(self, pending: Iterable[tuple[str, int]], changes: Todo,
                check: SerialCheck) -> Iterator[tuple[str, int]]:
        """Earlier pending work, each project once at its highest serial, then the new changes."""
        fresh = dict(changes.pending)
        for name, serial in check.ceiled(pending):
            if not self.acceptable(name) or not self.selected(name):
                continue
            change = fresh.pop(normalize(name), None)
            yield change if change is not None and change[1] > serial else (name, serial)
        yield from fresh.values()

    def _adoption_work(self) -> Iterator[Work]:
        """An adopted 8.x mirror's projects upstream no longer lists, or without both our pages.

        Upstream is listed once for this: the first go through the work list removes
        the first (their pages answer 404) and writes the pages of the others.
        """
        listed: array[int] = array("Q")
        for name, _ in self.feed.all_projects():
            if is_valid_project_name(name):
                listed.append(name_hash(normalize(name)))
        known = NameSet(listed)
        del listed[:]
        ghosts = 0
        for page_dir in adopt.project_dirs(self.layout.simple, self.config.hash_index):
            key = page_dir.name
            if not is_valid_project_name(key) or normalize(key) != key or not self.selected(key):
                continue
            if key not in known:
                ghosts += 1
                yield Work(key, 0)
            elif not has_pages_in(page_dir):
                yield Work(key, 0)
        if ghosts:
            logger.info("Adopting a bandersnatch 8 mirror: %d project(s) on it are no longer listed "
                        "upstream and will be removed", ghosts)

    def _plan_full(self, pending: Iterable[tuple[str, int]] | None, adopting: bool,
                   check: SerialCheck, reason: FullSyncReason) -> Plan:
        highest, named = 0, ""
        listed: array[int] = array("Q")

        def entries() -> Iterator[tuple[str, int]]:
            nonlocal highest, named
            for name, serial in self.feed.all_projects():
                if self.acceptable(name):
                    if serial > highest:
                        highest, named = serial, name
                    if self.selected(name):
                        listed.append(name_hash(normalize(name)))
                        yield name, serial
            # Projects we still serve but upstream no longer lists: ask for them, they will 404.
            # Besides the root index's names: what an earlier run still owed (a removal stopped
            # after the root index let go of the project, before its pages), and projects whose
            # sync or removal stopped between its files (their intents file names what is left).
            known = NameSet(listed)
            del listed[:]
            self.repeated = known.repeated()
            unlisted: set[str] = set()
            owed = (normalize(name) for name, _ in pending or ())
            # An 8.x mirror being adopted may have projects with one page only: its directories count.
            on_mirror = (d.name for d in adopt.project_dirs(self.layout.simple, self.config.hash_index)) \
                if adopting else self.root.names()
            for key in chain(on_mirror, owed, self.projects.interrupted()):
                if key not in known and key not in unlisted and is_valid_project_name(key) \
                        and normalize(key) == key and self.selected(key):
                    unlisted.add(key)
                    yield Work(key, 0)
            if self.tracker is not None:
                for key in self.tracker.owed(self.has_pages):
                    if key not in known and key not in unlisted:
                        yield Work(key, 0)

        def target() -> int:
            listed = highest or self.feed.last_serial()
            upstream = check.confirm(listed)
            # Above upstream's own serial: a lie, never taken (the entry itself is asked at it once,
            # and the next run's plan asks that project as upstream has it now).
            if upstream is None or listed <= upstream:
                return listed
            return check.ceiling(listed, named) or upstream

        target_serial, count = self.state.begin_stream(target, entries())
        check.report()
        logger.info("Full sync of %d project(s) up to serial %d", count, target_serial)
        return Plan(target_serial, count, reason)

    def acceptable(self, name: str) -> bool:
        """False, with one error line, for a name that cannot be a project (path tricks, junk).

        Such a name is never put in ``todo``: it could not be mirrored on any later
        run either, and a line break in it would corrupt the file.
        """
        if is_valid_project_name(name):
            return True
        if name not in self.refused:
            self.refused.add(name)
            logger.error("refusing project name %r from upstream: not a valid project name", name[:100])
        return False

    def selected(self, name: str) -> bool:
        """Whether the operator's filters select this project (unselected: silent, debug only)."""
        if not self.selection.active:
            return True
        key = normalize(name)
        if self.tracker is not None:
            if self.tracker.admits(key):
                return True
            logger.debug("%s: not selected (not reached from the allowlist)", key)
            return False
        why = self.selection.project(key, name)
        if why is not None:
            logger.debug("%s: not selected (%s)", key, why)
        return why is None

    def has_pages(self, key: str) -> bool:
        try:
            return self.projects.has_pages(key)
        except BandersnatchError:
            return False
