"""Serials checked against upstream, not only bounded.

Every serial is a number upstream tells us.  One changelog row or listing
entry at 2**31-1, or ``master`` pointed at an upstream whose counter is lower,
would put the mirror's serial above anything upstream reports again: every
later run would find nothing new and say the mirror is up to date.

So the mirror keeps what its master last reported for itself (``state``'s
``upstream-serial``: the master URL, its own last serial, when it was asked)
and confirms with upstream (``changelog_last_serial``, or the listing's own
serial) when the record is missing, when ``master`` changed since, when a
change names a serial above what upstream last reported, and at most once a
day.  A row above upstream's own serial is taken for what it is: the project
is synced as it is now, and the mirror never takes that serial.  A mirror whose
serial is above upstream's is re-listed (``plan.Planner``).

A no-op run stays one request: a current record asks nothing more, except on
the first run of a day over XML-RPC (the listing says its own serial with
every read, so it is never asked again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone

from ..ledger.state import StateFiles, UpstreamRecord
from ..upstream.feeds import ChangeFeed

logger = logging.getLogger(__name__)

CONFIRM_EVERY = timedelta(days=1)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SerialCheck:
    """Confirms one run's serials with its master and keeps the record of what it said."""

    def __init__(self, state: StateFiles, feed: ChangeFeed, master: str, now: datetime | None = None) -> None:
        self.state = state
        self.feed = feed
        self.master = master
        self.now = now or datetime.now(timezone.utc)
        self.record = state.read_upstream()
        self.previous = self.record  # as the run found it
        self.upstream: int | None = None  # upstream's own serial, once confirmed this run
        self._clamped: list[tuple[str, int]] = []

    def due(self, highest: int) -> str | None:
        """Why upstream must be asked for its own serial now, or None when the record still holds."""
        record = self.record
        if record is None:
            return "no record of it yet"
        if record.master != self.master:
            return f"master changed from {record.master}"
        if highest > record.serial:
            return "a change names a serial above it"
        checked = record.checked_at()
        if checked is None or not timedelta(0) <= self.now - checked < CONFIRM_EVERY:
            return "a day has passed"
        return None

    def confirm(self, highest: int) -> int | None:
        """Upstream's own serial when a check is due (or costs nothing); None when not asked.

        ``highest``: the highest serial this run would take or ask pages at.
        """
        why = self.due(highest)
        serial = self.feed.upstream_serial(ask=why is not None)
        if serial is None:
            return None
        if why is not None:
            logger.debug("Asked %s for its own serial (%s): %d", self.master, why, serial)
        self._keep(serial, asked=why is not None)
        return serial

    def still_ahead(self, mirror: int) -> bool:
        """Asked again past any cache: is upstream's own serial still below ``mirror``?"""
        serial = self.feed.upstream_serial(ask=True, fresh=True)
        if serial is None:
            return False
        self._keep(serial, asked=True)
        return serial < mirror

    def _keep(self, serial: int, *, asked: bool) -> None:
        self.upstream = serial
        record = self.record
        if not asked and record is not None and (record.master, record.serial) == (self.master, serial):
            return  # nothing new: a no-op run writes nothing
        self.record = UpstreamRecord(self.master, serial, _utc(self.now))
        self.state.write_upstream(self.record)

    def ceiling(self, serial: int, name: str = "") -> int:
        """``serial``, or 0 (the project as it is now) when it is above upstream's own serial."""
        if self.upstream is None or serial <= self.upstream:
            return serial
        self._clamped.append((name, serial))
        return 0

    def ceiled(self, entries: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        for name, serial in entries:
            yield name, self.ceiling(serial, name)

    def report(self) -> None:
        """One warning for every change this run named above upstream's own serial."""
        if not self._clamped:
            return
        name, serial = max(self._clamped, key=lambda item: item[1])
        more = f" and {len(self._clamped) - 1} more" if len(self._clamped) > 1 else ""
        logger.warning(
            "Upstream named serial %d (%s%s) but says its own last serial is %d: that serial is ignored "
            "and the project is synced as upstream has it now", serial, name[:100] or "?", more,
            self.upstream)
        self._clamped.clear()
