"""Per-day digests and the summary shown to operators (pure).

Reading ninety bzip2 day files every hour to draw a chart would cost more
than counting the logs, so each day file gets a small digest (its total and
its biggest projects and clients) when it is written; the page and
``summary.json`` are built from digests alone.

A digest keeps the top :data:`DIGEST_TOP` projects and clients of its day.
The 30-day tables add those up, which is exact for everything that was in
some day's top list — any project near the top of a month is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from .aggregate import DayCounts

DIGEST_TOP = 2000
CHART_DAYS = 90
TABLE_DAYS = 30
TABLE_ROWS = 25


@dataclass
class DayDigest:
    """What the summary needs of one day: its total and its biggest names.

    ``projects`` and ``clients`` are None for days too old to appear in the
    tables; only the total is kept for them.
    """

    total: int
    projects: dict[str, int] | None = None
    clients: dict[str, int] | None = None


@dataclass(frozen=True)
class Summary:
    """Everything index.html and summary.json show."""

    generated: datetime
    days: list[tuple[str, int]]
    top_projects: list[tuple[str, int]]
    top_clients: list[tuple[str, int]]
    table_days: int = TABLE_DAYS
    table_total: int = 0


def _top(counter: Mapping[str, int], limit: int) -> dict[str, int]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:limit])


def digest_counts(counts: DayCounts, limit: int = DIGEST_TOP) -> DayDigest:
    """The digest of a whole day's counts."""
    projects: dict[str, int] = {}
    clients: dict[str, int] = {}
    total = 0
    for (project, _filename, client), count in counts.items():
        total += count
        projects[project] = projects.get(project, 0) + count
        clients[client] = clients.get(client, 0) + count
    return DayDigest(total, _top(projects, limit), _top(clients, limit))


def day_range(last: date, count: int) -> list[str]:
    """The ``count`` ISO days ending with ``last``, oldest first."""
    return [(last - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def add_up(maps: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    """Sum name → count maps (missing ones count as empty)."""
    total: dict[str, int] = {}
    for counts in maps:
        for name, count in (counts or {}).items():
            total[name] = total.get(name, 0) + count
    return total


def build_summary(
    digests: Mapping[str, DayDigest],
    now: datetime,
    chart_days: int = CHART_DAYS,
    table_days: int = TABLE_DAYS,
    rows: int = TABLE_ROWS,
) -> Summary:
    """The summary as of ``now`` (UTC): a total per day, and the top tables."""
    today = now.date()
    chart = [(day, digests[day].total if day in digests else 0) for day in day_range(today, chart_days)]
    recent = [digests[day] for day in day_range(today, table_days) if day in digests]
    projects = add_up(digest.projects for digest in recent)
    clients = add_up(digest.clients for digest in recent)
    return Summary(
        generated=now,
        days=chart,
        top_projects=list(_top(projects, rows).items()),
        top_clients=list(_top(clients, rows).items()),
        table_days=table_days,
        table_total=sum(digest.total for digest in recent),
    )


def prune_digests(digests: dict[str, DayDigest], today: date, keep_days: int, detail_days: int) -> None:
    """Forget digests older than ``keep_days`` and the tables of those older than ``detail_days``."""
    oldest = (today - timedelta(days=keep_days - 1)).isoformat()
    detailed = (today - timedelta(days=detail_days - 1)).isoformat()
    for day in list(digests):
        if day < oldest:
            del digests[day]
        elif day < detailed:
            digests[day].projects = None
            digests[day].clients = None
