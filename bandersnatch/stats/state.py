"""What update-stats remembers between runs, and its JSON form (pure).

``<directory>/stats-state.json``::

    {
      "version": 1,
      "logs": [
        {"head": "<sha256 of the first line>", "offset": 81234,
         "tail": "<sha256 of the (up to) 1024 bytes before offset>",
         "lines": 412, "name": "/var/log/nginx/access.log.2.gz",
         "seen": "2024-10-10T13:00:02Z", "sealed": "20811:1728565202000000000",
         "marks": ["<16 hex digits per line>", ...]}
      ],
      "pending": [],
      "days": {"2024-10-10": {"total": 9120, "projects": {...}, "clients": {...}}}
    }

A log is known by what it contains, not by its name or inode: logrotate
renames ``access.log`` to ``access.log.1``, compresses it to
``access.log.2.gz``, and every copy has the same first line.  ``offset``
counts *decompressed* bytes, so it stays valid across compression.  ``tail``
proves that a file with that first line really is the one we read (and not a
different log that happens to start the same way) before we skip ``offset``
bytes of it.  Several entries may share a head; each is a separate log.
``marks`` are short hashes of the log's first lines: a file with the same
first line but other lines after it is another log, even when it is too
short to reach ``offset`` (where ``tail`` could tell).
``sealed`` is the size and modification time of a compressed copy read to
its end: compressed logs never change, so a file with that head, size and
time is skipped without decompressing it again on every hourly run.

``pending`` lists day files staged in ``<directory>/tmp/stats/pending/``
whose counts the offsets above already include: the state is the commit
point, and a run that finds pending days finishes moving them into
``web/local-stats/days/`` before anything else.  ``days`` holds the digests
the summary page is drawn from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .summary import DayDigest

STATE_VERSION = 1
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MARK = re.compile(r"[0-9a-f]{16}")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class LogEntry:
    """How far one log (known by its first line) has been counted."""

    head: str
    offset: int = 0
    tail: str = ""
    lines: int = 0
    name: str = ""
    seen: str = ""
    sealed: str = ""
    marks: list[str] = field(default_factory=list)


@dataclass
class StatsState:
    """The whole state file."""

    logs: list[LogEntry] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    days: dict[str, DayDigest] = field(default_factory=dict)

    def entries_for(self, head: str) -> list[LogEntry]:
        """The logs starting with ``head``, furthest read first."""
        return sorted((e for e in self.logs if e.head == head), key=lambda e: -e.offset)


def is_day(text: str) -> bool:
    """True for a ``YYYY-MM-DD`` string (safe to use in a file name)."""
    return _DAY.fullmatch(text) is not None


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} is not a non-negative integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _counts(value: Any, what: str) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return {_str(k, what): _int(v, what) for k, v in value.items()}


def _marks(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(m, str) and _MARK.fullmatch(m) for m in value):
        raise ValueError(f"{what} is not a list of line hashes")
    return list(value)


def load_state(data: bytes) -> StatsState:
    """Parse the state file; ValueError (with the reason) when it is not one we wrote."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("version") != STATE_VERSION:
        raise ValueError(f"unknown version {document.get('version')!r} (expected {STATE_VERSION})")
    state = StatsState()
    logs = document.get("logs", [])
    if not isinstance(logs, list):
        raise ValueError("logs is not a list")
    for number, raw in enumerate(logs):
        if not isinstance(raw, dict):
            raise ValueError(f"logs[{number}] is not an object")
        head = _str(raw.get("head"), f"logs[{number}].head")
        tail = _str(raw.get("tail", ""), f"logs[{number}].tail")
        if not _SHA256.fullmatch(head) or (tail and not _SHA256.fullmatch(tail)):
            raise ValueError(f"logs[{number}] has a malformed hash")
        state.logs.append(
            LogEntry(
                head=head,
                offset=_int(raw.get("offset", 0), f"logs[{number}].offset"),
                tail=tail,
                lines=_int(raw.get("lines", 0), f"logs[{number}].lines"),
                name=_str(raw.get("name", ""), f"logs[{number}].name"),
                seen=_str(raw.get("seen", ""), f"logs[{number}].seen"),
                sealed=_str(raw.get("sealed", ""), f"logs[{number}].sealed"),
                marks=_marks(raw.get("marks", []), f"logs[{number}].marks"),
            )
        )
    pending = document.get("pending", [])
    if not isinstance(pending, list) or not all(isinstance(d, str) and is_day(d) for d in pending):
        raise ValueError("pending is not a list of YYYY-MM-DD days")
    state.pending = list(pending)
    days = document.get("days", {})
    if not isinstance(days, dict):
        raise ValueError("days is not an object")
    for day, raw in days.items():
        if not is_day(day) or not isinstance(raw, dict):
            raise ValueError(f"days[{day!r}] is malformed")
        state.days[day] = DayDigest(
            total=_int(raw.get("total"), f"days[{day}].total"),
            projects=_counts(raw.get("projects"), f"days[{day}].projects"),
            clients=_counts(raw.get("clients"), f"days[{day}].clients"),
        )
    return state


def dump_state(state: StatsState) -> bytes:
    """The state file's bytes (stable order, one log per line for a human reading it)."""
    days: dict[str, dict[str, Any]] = {}
    for day in sorted(state.days):
        digest = state.days[day]
        entry: dict[str, Any] = {"total": digest.total}
        if digest.projects is not None:
            entry["projects"] = digest.projects
        if digest.clients is not None:
            entry["clients"] = digest.clients
        days[day] = entry
    lines = ["{", f'"version": {STATE_VERSION},', '"logs": [']
    logs = [
        json.dumps(
            {
                "head": e.head,
                "offset": e.offset,
                "tail": e.tail,
                "lines": e.lines,
                "name": e.name,
                "seen": e.seen,
                "sealed": e.sealed,
                "marks": e.marks,
            }
        )
        for e in state.logs
    ]
    lines.append(",\n".join(logs))
    lines.append("],")
    lines.append(f'"pending": {json.dumps(sorted(state.pending))},')
    lines.append(f'"days": {json.dumps(days, separators=(",", ":"))}')
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def format_time(moment: datetime) -> str:
    """``moment`` (UTC) as the state file writes it."""
    return moment.strftime(TIME_FORMAT)


def prune_logs(state: StatsState, now: datetime, keep_days: int) -> int:
    """Forget logs not seen for ``keep_days``; return how many went.

    A log is seen on every run while any file still holds it, so only logs
    deleted long ago are forgotten; a forgotten log that came back would be
    counted again, which is why the delay is generous.
    """
    cutoff = format_time(now - timedelta(days=keep_days))
    before = len(state.logs)
    state.logs = [e for e in state.logs if e.seen >= cutoff]
    return before - len(state.logs)
