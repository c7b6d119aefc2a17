"""Where changes come from: one interface, asked by the run's planning, with two sources.

- ``XmlRpcFeed``: PyPI's XML-RPC ``list_packages_with_serial`` and
  ``changelog_since_serial`` (exact, but "to be deprecated" and rate-limited).
- ``ListingFeed``: the PEP 691 JSON root listing, ``GET <master>/simple/``,
  with each project's ``_last-serial`` (what bandersnatch 8 follows, and what
  any static mirror of ours serves).  A listing has no history: what changed
  is what it lists newer than the mirror has, and what it no longer lists.

``AutoFeed`` asks XML-RPC and, when the master has none, follows the listing.
Planning (``plan.Planner``) sees only ``ChangeFeed``.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import operator
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from ..config.settings import ApiMethod
from ..errors import NoXmlRpc, UpstreamError
from ..formats.serial import is_serial
from ..names import normalize
from ..store.atomic import atomic_write
from .listing import RootListing
from .master import Master, Validators

logger = logging.getLogger(__name__)

LISTING_STATE = "listing-state"
"""Under the mirror directory: the listing's validators, for a conditional request next run."""

Entries = Iterator[tuple[str, int]]
_MAX_Q = (1 << 63) - 1  # a serial past any upstream's is kept as this (an array of signed 64-bit)


class MirroredProjects:
    """The projects the mirror has (normalized, sorted, once each), each with the serial its root
    index records (-1: none), held for one diff against the listing.

    A list of names and an array of serials: the listing's names are looked up by
    bisection, with no hashing and no per-project record, and the root index is
    read once however the diff uses it.
    """

    def __init__(self, names: list[str], serials: array[int]) -> None:
        """``names`` sorted, each once; ``serials`` beside them."""
        self.names, self.serials = names, serials

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, int | None]]) -> MirroredProjects:
        """From ``(name, serial or None)``, normally sorted once each (the root index's order)."""
        known = cls([], array("q"))
        for name, serial in entries:
            known.names.append(name)
            known.serials.append(-1 if serial is None else min(serial, _MAX_Q))
        if any(map(operator.ge, known.names, itertools.islice(known.names, 1, None))):
            known._sort()
        return known

    def _sort(self) -> None:
        """Not sorted once each (a hand-made list): sorted, a repeated name keeping its highest serial."""
        best: dict[str, int] = {}
        for name, serial in zip(self.names, self.serials, strict=True):
            best[name] = max(serial, best.get(name, -1))
        self.names = sorted(best)
        self.serials = array("q", (best[name] for name in self.names))

    def __len__(self) -> int:
        return len(self.names)

    def find(self, key: str) -> int:
        """Where ``key`` is in ``names``, or -1."""
        at = bisect.bisect_left(self.names, key)
        return at if at < len(self.names) and self.names[at] == key else -1


Mirrored = Callable[[], MirroredProjects]
"""What the mirror has now, read when the listing first differs (a 304 never reads it)."""


class ChangeFeed(Protocol):
    """What changed upstream, whatever the master speaks."""

    def all_projects(self) -> Iterator[tuple[str, int]]:
        """``(name, serial)`` of every project upstream has, streamed."""

    def changed_since(self, serial: int) -> Iterator[tuple[str, int]]:
        """``(name, serial)`` of every project that changed after ``serial`` (serial 0: it may be gone)."""

    def last_serial(self) -> int:
        """The serial the last listing or changelog reached; asks upstream when none was read."""

    def upstream_serial(self, ask: bool, fresh: bool = False) -> int | None:
        """The serial upstream reported for itself this run; asked when ``ask`` and nothing said it yet.

        ``fresh``: ask again past any cache (before the mirror is called ahead of upstream).
        None when not asked.
        """


class XmlRpcFeed:
    """PyPI's XML-RPC mirroring API."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self._seen: int | None = None
        self._own: int | None = None

    def all_projects(self) -> Iterator[tuple[str, int]]:
        self._seen = None
        for name, serial in self._hinted(self.master.list_packages_with_serial()):
            self._seen = max(self._seen or 0, serial)
            yield name, serial

    def changed_since(self, serial: int) -> Iterator[tuple[str, int]]:
        self._seen = serial
        for name, change in self._hinted(self.master.changelog_since_serial(serial)):
            self._seen = max(self._seen, change)
            yield name, change

    def last_serial(self) -> int:
        if self._seen:
            return self._seen
        own = self.upstream_serial(ask=True)
        assert own is not None
        return own

    def upstream_serial(self, ask: bool, fresh: bool = False) -> int | None:
        # changelog_last_serial is a POST: no cache answers it, so ``fresh`` asks nothing more.
        if self._own is None and ask:
            self._own = self.master.changelog_last_serial()
        return self._own

    @staticmethod
    def _hinted(items: Iterator[tuple[str, int]]) -> Iterator[tuple[str, int]]:
        try:
            yield from items
        except NoXmlRpc as exc:
            raise NoXmlRpc(f"{exc}; this master has no XML-RPC: set api-method = auto or simple") from None


@dataclass(frozen=True)
class _Saved:
    """The ``listing-state`` file: which master's listing, its validators, and its serial."""

    master: str
    validators: Validators
    serial: int

    def render(self) -> bytes:
        return json.dumps({"master": self.master, "etag": self.validators.etag,
                           "last-modified": self.validators.last_modified, "serial": self.serial},
                          sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> _Saved | None:
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("master"), str):
            return None
        if not is_serial(doc.get("serial")):
            return None
        etag, modified = doc.get("etag"), doc.get("last-modified")
        if not (isinstance(etag, str | None) and isinstance(modified, str | None)) or not (etag or modified):
            return None
        return cls(doc["master"], Validators(etag, modified), doc["serial"])


class ListingFeed:
    """The PEP 691 JSON root listing, diffed against what the mirror has.

    A listing says where each project is now, not what happened: a project
    changed when the listing's ``_last-serial`` for it is newer than the serial
    the mirror's root index records for it or, where it records none, newer
    than the serial the mirror is at.  A project the mirror has and the
    listing no longer names is owed as a removal (serial 0): its page 404s and
    the usual removal path, with its limit, takes it off.

    The listing is asked with the last answer's ETag/Last-Modified once the
    mirror has planned past it, so an unchanged one costs a 304.  A CDN may
    serve a listing a while old: the pages are still checked against the
    serial the listing gave (``Master.fetch_page``).
    """

    def __init__(self, master: Master, mirrored: Mirrored, directory: Path, staging: Path, *,
                 record: bool = True) -> None:
        """``record`` False: the validators are read but never written (a dry run changes nothing)."""
        self.master = master
        self.mirrored = mirrored
        self.state_path = directory / LISTING_STATE
        self.staging = staging
        self.record = record
        self._serial: int | None = None
        self._own: int | None = None  # the listing's own serial as read this run (on a 304: as saved)
        self._unchanged = False  # the last request was answered 304

    def all_projects(self) -> Iterator[tuple[str, int]]:
        for name, serial in self._read(None, allow_unserialed=True):
            yield name, serial or 0

    def changed_since(self, serial: int) -> Iterator[tuple[str, int]]:
        saved = self._saved()
        usable = saved if saved is not None and saved.serial <= serial else None  # else: not planned yet
        known: MirroredProjects | None = None  # read at the first entry: a 304 never needs the root index
        listed = bytearray()  # per project the mirror has: whether the listing names it
        for names, serials in self._read_blocks(usable, allow_unserialed=False):
            if known is None:
                known = self.mirrored()
                listed = bytearray(len(known))
            yield from _diff_block(known, names, serials, serial, listed)
        if self._unchanged:
            return  # what the listing said was planned by an earlier run
        if known is None:  # an empty listing: every project the mirror has is gone
            known = self.mirrored()
            listed = bytearray(len(known))
        for at in _unset(listed):
            yield known.names[at], 0

    def last_serial(self) -> int:
        if self._serial is None:
            for _ in self._read(None, allow_unserialed=True):
                pass
        assert self._serial is not None
        return self._serial

    def upstream_serial(self, ask: bool, fresh: bool = False) -> int | None:
        # Read with every listing, so asking costs nothing unless no listing was read this run.
        if fresh or self._own is None and ask:
            for _ in self._read(None, allow_unserialed=True, fresh=fresh):
                pass
        return self._own

    def own_serial(self) -> int:
        """The listing's own serial, read-only (for ``status``): a 304 gives the saved serial.

        PyPI's listing says its serial in ``meta`` before the projects: reading stops there.
        """
        saved = self._saved()
        with self.master.root_listing(saved.validators if saved else None) as answer:
            if answer is None:
                assert saved is not None
                return saved.serial
            listing, highest = RootListing(answer.chunks()), 0
            for _, serial in listing:
                if listing.last_serial is not None:
                    break
                highest = max(highest, serial or 0)
            return highest if listing.last_serial is None else listing.last_serial

    def _read(self, saved: _Saved | None, *, allow_unserialed: bool,
              fresh: bool = False) -> Iterator[tuple[str, int]]:
        """The listing's entries (none on a 304), as ``_read_blocks``."""
        for names, serials in self._read_blocks(saved, allow_unserialed=allow_unserialed, fresh=fresh):
            yield from zip(names, serials, strict=True)

    def _read_blocks(self, saved: _Saved | None, *, allow_unserialed: bool,
                     fresh: bool = False) -> Iterator[tuple[list[str], list[int]]]:
        """The listing's entries in blocks (none on a 304); sets ``_serial`` and remembers the validators.

        The listing's own serial is ``meta._last-serial``, else its highest entry: never
        ``X-PyPI-Last-Serial``, a header a cache or proxy may have put on another body.
        """
        highest = 0
        self._unchanged = False
        with self.master.root_listing(saved.validators if saved else None, fresh=fresh) as answer:
            if answer is None:
                self._unchanged = True
                logger.debug("Root listing unchanged since serial %d (304)", saved.serial if saved else 0)
                self._serial = self._own = saved.serial if saved else 0
                return
            listing = RootListing(answer.chunks())
            for names, serials in listing.blocks():
                if None in serials:
                    if not allow_unserialed:
                        name = names[serials.index(None)]
                        raise UpstreamError(
                            f"root listing: project {name[:100]!r} has no _last-serial, so changes cannot "
                            "be told from it; run with --force-check, or set api-method = xmlrpc if the "
                            "master has it")
                    serials = [serial or 0 for serial in serials]
                known = cast("list[int]", serials)  # every one an int now
                highest = max(highest, max(known))
                yield names, known
            self._serial = self._own = highest if listing.last_serial is None else listing.last_serial
            validators = answer.validators
        if not self.record:
            return
        if validators.etag or validators.last_modified:
            saved = _Saved(self.master.url, validators, self._serial)
            atomic_write(self.state_path, saved.render(), self.staging)
        else:
            self.state_path.unlink(missing_ok=True)

    def _saved(self) -> _Saved | None:
        try:
            saved = _Saved.parse(self.state_path.read_bytes())
        except FileNotFoundError:
            return None
        return saved if saved is not None and saved.master == self.master.url else None

    def followed(self) -> bool:
        """Whether this mirror followed this master's listing last time (a choice ``auto`` keeps)."""
        return self._saved() is not None


def _diff_block(known: MirroredProjects, names: list[str], serials: list[int], serial: int,
                listed: bytearray) -> Entries:
    """The entries of one block of the listing newer than the mirror has them (``serial``: where
    the root index records none), each project named marked in ``listed``.  The usual block is
    decided at once (``_unchanged_run``); any other goes entry by entry (``_diff_entries``)."""
    keys = _normalized(names)
    if _unchanged_run(known, keys, serials, listed):
        return iter(())
    return _diff_entries(known, names, keys, serials, serial, listed)


def _diff_entries(known: MirroredProjects, names: list[str], keys: list[str], serials: list[int],
                  serial: int, listed: bytearray) -> Entries:
    """``_diff_block`` one entry at a time (``keys``: the names normalized)."""
    for name, key, listed_serial in zip(names, keys, serials, strict=True):
        at = known.find(key)
        have = serial
        if at >= 0:
            listed[at] = 1
            have = known.serials[at] if known.serials[at] >= 0 else serial
        if listed_serial > have:
            yield name, listed_serial


def _normalized(names: list[str]) -> list[str]:
    """``normalize`` of each of ``names``: for a block, of the names joined by newlines at once (in C;
    a separator run never spans a newline), unless a name holds a newline itself."""
    if len(names) == 1:
        return [normalize(names[0])]
    joined = "\n".join(names)
    if joined.count("\n") != len(names) - 1:
        return [normalize(name) for name in names]
    return normalize(joined).split("\n")


def _unchanged_run(known: MirroredProjects, keys: list[str], serials: list[int], listed: bytearray) -> bool:
    """Whether ``keys`` are a run of ``known``'s names, in its order, none with a newer serial than
    the root index records for it (the usual block of a listing): then marked listed at once.
    False, with nothing marked, for any other block (each entry then goes one by one)."""
    at = bisect.bisect_left(known.names, keys[0])
    end = at + len(keys)
    if known.names[at:end] != keys:
        return False
    have = known.serials[at:end]
    if -1 in have or any(map(operator.gt, serials, have)):
        return False
    listed[at:end] = b"\x01" * len(keys)
    return True


def _unset(flags: bytearray) -> Iterator[int]:
    """The positions of the zero bytes in ``flags`` (found by ``find``, in C: most are set)."""
    at = flags.find(0)
    while at >= 0:
        yield at
        at = flags.find(0, at + 1)


class AutoFeed:
    """XML-RPC when the master speaks it; its root listing when it does not (one INFO line says so).

    A master found without XML-RPC is not asked again on incremental runs while
    its listing keeps validators (``listing-state``); a full sync asks again.
    """

    def __init__(self, xmlrpc: XmlRpcFeed, listing: ListingFeed) -> None:
        self.xmlrpc, self.listing = xmlrpc, listing
        self._chosen: ChangeFeed | None = None

    def all_projects(self) -> Iterator[tuple[str, int]]:
        return self._either(self.xmlrpc.all_projects, self.listing.all_projects, probe=True)

    def changed_since(self, serial: int) -> Iterator[tuple[str, int]]:
        return self._either(lambda: self.xmlrpc.changed_since(serial),
                            lambda: self.listing.changed_since(serial), probe=not self.listing.followed())

    def last_serial(self) -> int:
        return (self._chosen or self.xmlrpc).last_serial()

    def upstream_serial(self, ask: bool, fresh: bool = False) -> int | None:
        return (self._chosen or self.xmlrpc).upstream_serial(ask, fresh)

    def _either(self, xmlrpc: Callable[[], Entries], listing: Callable[[], Entries], *,
                probe: bool) -> Entries:
        if self._chosen is self.xmlrpc:
            yield from xmlrpc()
            return
        if self._chosen is None and probe:
            items = xmlrpc()
            try:
                first = next(items, None)
            except NoXmlRpc as exc:
                reason = str(exc).split("; this master", 1)[0]
                logger.info("The master has no XML-RPC (%s): following its PEP 691 root listing instead",
                            reason)
            else:
                self._chosen = self.xmlrpc
                if first is not None:
                    yield first
                    yield from items
                return
        elif self._chosen is None:
            logger.info("Following the master's PEP 691 root listing (it has no XML-RPC)")
        self._chosen = self.listing
        yield from listing()


def upstream_serial_for(method: ApiMethod, master: Master, directory: Path) -> Callable[[], int]:
    """How ``status`` asks the master for its own serial, in one request and writing nothing.

    The way the mirror follows it: ``changelog_last_serial``, or the root listing's own
    serial when ``api-method = simple`` (or ``auto`` and the mirror follows the listing).
    """
    if method == ApiMethod.XMLRPC:
        return master.changelog_last_serial
    listing = ListingFeed(master, lambda: MirroredProjects([], array("q")), directory, directory)
    if method == ApiMethod.AUTO and not listing.followed():
        return master.changelog_last_serial
    return listing.own_serial


def feed_for(method: ApiMethod, master: Master, mirrored: Mirrored, directory: Path,
             staging: Path, *, record: bool = True) -> ChangeFeed:
    """The feed ``api-method`` asks for; ``record`` False: it writes nothing (``--dry-run``)."""
    if method == ApiMethod.XMLRPC:
        return XmlRpcFeed(master)
    listing = ListingFeed(master, mirrored, directory, staging, record=record)
    if method == ApiMethod.SIMPLE:
        return listing
    return AutoFeed(XmlRpcFeed(master), listing)
