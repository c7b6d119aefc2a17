"""Counting downloads per (UTC day, project, file, client) from raw log lines.

This is the hot loop: millions of lines per run.  It keeps the parse to one
precompiled regex match on bytes and turns every field that needs real work
(timestamp → UTC day, request → project and file, user agent → client) into
a dict lookup, computing each distinct value once.  Memory is the counts
themselves plus those caches, and the caches are capped.

It does no I/O of its own: the file → project lookup is passed in, so the
loop can be tested with a dict and benchmarked against a real index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .agents import simplify
from .logparse import (
    COUNTED_STATUS,
    DOWNLOAD_REQUEST_PREFIX,
    LINE,
    agent_of_tail,
    download_filename,
    request_path,
    utc_day,
)

# (project, filename, client) — one CSV row of a day file.
Key = tuple[str, str, str]
DayCounts = dict[Key, int]

MAX_CACHE_ENTRIES = 100_000
K = TypeVar("K")
V = TypeVar("V")
_UNRESOLVED = ("", "")


class Tally:
    """Download counts of the lines fed so far, grouped by UTC day."""

    def __init__(self, resolve: Callable[[str], str | None]) -> None:
        """``resolve`` maps a file name to its project, or None when it is no distribution."""
        self.resolve = resolve
        self.days: dict[str, DayCounts] = {}
        self.keys = 0
        self.lines = 0
        self.downloads = 0
        self.malformed = 0
        self._day_cache: dict[bytes, str] = {}
        self._minute_cache: dict[bytes, str] = {}
        self._request_cache: dict[bytes, tuple[str, str]] = {}
        self._tail_cache: dict[bytes, str] = {}
        self._agent_cache: dict[bytes | None, str] = {}

    def feed(self, lines: Sequence[bytes]) -> None:
        """Count the complete lines ``lines`` (without their newlines)."""
        match = LINE.match
        prefix = DOWNLOAD_REQUEST_PREFIX
        ok = COUNTED_STATUS
        day_get = self._day_cache.get
        request_get = self._request_cache.get
        tail_get = self._tail_cache.get
        days = self.days
        malformed = downloads = new_keys = 0
        for line in lines:
            found = match(line)
            if found is None:
                malformed += 1
                continue
            timestamp, request, status, tail = found.groups()
            if status != ok or not request.startswith(prefix):
                continue
            target = request_get(request)
            if target is None:
                target = self._resolve_request(request)
            if target is _UNRESOLVED:
                continue
            day = day_get(timestamp)
            if day is None:
                day = self._day(timestamp)
            if not day:
                malformed += 1
                continue
            client = tail_get(tail)
            if client is None:
                client = self._client(tail)
            counts = days.get(day)
            if counts is None:
                counts = days[day] = {}
            key = (target[0], target[1], client)
            before = counts.get(key)
            if before is None:
                counts[key] = 1
                new_keys += 1
            else:
                counts[key] = before + 1
            downloads += 1
        self.lines += len(lines)
        self.malformed += malformed
        self.downloads += downloads
        self.keys += new_keys

    def drain(self) -> dict[str, DayCounts]:
        """Hand over the counts made so far and start again from zero (caches are kept)."""
        days, self.days, self.keys = self.days, {}, 0
        return days

    def _resolve_request(self, request: bytes) -> tuple[str, str]:
        filename = download_filename(request_path(request))
        project = self.resolve(filename) if filename is not None else None
        target = (project, filename) if project is not None and filename is not None else _UNRESOLVED
        _remember(self._request_cache, request, target)
        return target

    def _day(self, timestamp: bytes) -> str:
        # Offsets are whole minutes, so the seconds never move a line to
        # another UTC day: a second cache keyed without them catches the
        # timestamps the per-second cache has not seen yet.
        day = ""
        if len(timestamp) == 26 and timestamp[17:18] == b":" and timestamp[18:20].isdigit():
            minute = timestamp[:17] + timestamp[20:]
            day = self._minute_cache.get(minute, "")
            if not day:
                day = utc_day(timestamp) or ""
                _remember(self._minute_cache, minute, day)
        _remember(self._day_cache, timestamp, day)
        return day

    def _client(self, tail: bytes) -> str:
        # Keyed first by the whole tail (cheap, and the same for every line of
        # a client unless the log appends per-request fields), then by the
        # agent itself, so only distinct agents are ever simplified.
        agent = agent_of_tail(tail)
        client = self._agent_cache.get(agent)
        if client is None:
            client = simplify(agent.decode("utf-8", "replace") if agent is not None else None)
            _remember(self._agent_cache, agent, client)
        _remember(self._tail_cache, tail, client)
        return client


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    """Cache ``value``; a full cache is emptied rather than grown (logs repeat locally)."""
    if len(cache) >= MAX_CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


def merge_counts(into: DayCounts, new: DayCounts) -> DayCounts:
    """Add ``new`` to ``into`` in place and return it."""
    for key, count in new.items():
        into[key] = into.get(key, 0) + count
    return into
