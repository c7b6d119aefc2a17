"""index.html and summary.json for ``web/local-stats/`` (pure).

The page is for an operator glancing at the mirror: a bar chart of daily
downloads and the busiest projects and clients.  It is one self-contained
file — inline SVG and CSS, no JavaScript, nothing fetched — so it works on
an air-gapped mirror and from ``file://``; hovering a bar shows its day and
count through SVG ``<title>``.  Every piece of text from the logs is escaped.
"""

from __future__ import annotations

import json
from html import escape

from .summary import Summary

CHART_WIDTH = 900
CHART_HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 8, 12, 36
_LABEL_GAP = 12  # days between date labels at least

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:960px;
color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#59636e;margin-top:0}.figures{display:flex;gap:1rem;flex-wrap:wrap;margin:1.5rem 0}
.figure{border:1px solid #d1d9e0;border-radius:6px;padding:.75rem 1rem;min-width:10rem}
.figure b{display:block;font-size:1.4rem}.figure span{color:#59636e;font-size:.85rem}
svg{max-width:100%;height:auto}.bar{fill:#2f81f7}.bar:hover{fill:#0550ae}
.grid{stroke:#d1d9e0;stroke-width:1}.axis{font-size:11px;fill:#59636e}
.tables{display:flex;gap:2rem;flex-wrap:wrap}.tables section{flex:1 1 380px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #d1d9e0;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.share{background:#54aeff;height:.5rem;border-radius:2px}.empty{color:#59636e}
"""


_TICKS = 4


def _nice_step(value: int) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ whose :data:`_TICKS` multiples reach ``value``: round axis labels."""
    scale = 1
    while True:
        for factor in (1, 2, 5):
            if scale * factor * _TICKS >= value:
                return scale * factor
        scale *= 10


def render_chart(days: list[tuple[str, int]]) -> str:
    """An inline SVG bar chart of ``(day, downloads)``, oldest first."""
    plot_width = CHART_WIDTH - _LEFT - _RIGHT
    plot_height = CHART_HEIGHT - _TOP - _BOTTOM
    step = _nice_step(max((count for _day, count in days), default=0))
    top = step * _TICKS
    count = max(len(days), 1)
    slot = plot_width / count
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" role="img" '
        f'aria-label="Downloads per day over the last {len(days)} days">'
    ]
    for tick in range(_TICKS + 1):
        value = step * tick
        y = _TOP + plot_height - plot_height * tick / _TICKS
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{CHART_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,}</text>')
    for index, (day, downloads) in enumerate(days):
        height = plot_height * downloads / top
        x = _LEFT + index * slot
        y = _TOP + plot_height - height
        label = escape(f"{day}: {downloads:,} downloads")
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{height:.1f}"><title>{label}</title></rect>'
        )

    # Date labels: the first and the last day, and each first of a month
    # not so close to another label that they would overlap.
    last = len(days) - 1
    labelled = -_LABEL_GAP
    for index, (day, _downloads) in enumerate(days):
        month = day.endswith("-01") and index - labelled >= _LABEL_GAP and last - index >= _LABEL_GAP
        if not (index in (0, last) or month):
            continue
        x = _LEFT + index * slot + (slot if index == last else 0)
        anchor = "end" if index == last else "start"
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{CHART_HEIGHT - _BOTTOM + 16}" '
            f'text-anchor="{anchor}">{escape(day)}</text>'
        )
        labelled = index
    parts.append("</svg>")
    return "\n".join(parts)


def render_table(title: str, column: str, rows: list[tuple[str, int]], total: int) -> str:
    """A ranked table of ``rows`` with each one's share of ``total`` and a bar scaled to the first."""
    parts = [f"<section><h2>{escape(title)}</h2>"]
    if not rows:
        parts.append('<p class="empty">No downloads counted in this period.</p></section>')
        return "\n".join(parts)
    parts.append(
        f'<table><thead><tr><th class="n">#</th><th>{escape(column)}</th>'
        '<th class="n">Downloads</th><th class="n">Share</th><th></th></tr></thead><tbody>'
    )
    biggest = max(count for _name, count in rows) or 1
    for rank, (name, count) in enumerate(rows, start=1):
        share = 100.0 * count / total if total else 0.0
        bar = 100.0 * count / biggest  # relative to the first row, so small shares stay visible
        parts.append(
            f'<tr><td class="n">{rank}</td><td>{escape(name)}</td><td class="n">{count:,}</td>'
            f'<td class="n">{share:.1f}%</td>'
            f'<td style="width:25%"><div class="share" style="width:{bar:.1f}%"></div></td></tr>'
        )
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def render_html(summary: Summary) -> bytes:
    """The whole index.html."""
    chart_total = sum(count for _day, count in summary.days)
    busiest = max(summary.days, key=lambda item: (item[1], item[0]), default=("-", 0))
    generated = summary.generated.strftime("%Y-%m-%d %H:%M UTC")
    figures = [
        (f"{summary.table_total:,}", f"downloads, last {summary.table_days} days"),
        (f"{chart_total:,}", f"downloads, last {len(summary.days)} days"),
        (f"{busiest[1]:,}", f"busiest day ({busiest[0]})" if busiest[1] else "busiest day"),
    ]
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Mirror download statistics</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Mirror download statistics</h1>",
        f'<p class="meta">Generated {escape(generated)} from the web server\'s access logs. '
        'Days are UTC. Per-day data (PEP 381): <a href="days/">days/</a>; '
        'machine-readable summary: <a href="summary.json">summary.json</a>.</p>',
        '<div class="figures">',
    ]
    for value, caption in figures:
        body.append(f'<div class="figure"><b>{escape(value)}</b><span>{escape(caption)}</span></div>')
    body.append("</div>")
    body.append(f"<h2>Downloads per day, last {len(summary.days)} days</h2>")
    body.append(render_chart(summary.days))
    body.append('<div class="tables">')
    body.append(
        render_table(
            f"Top projects, last {summary.table_days} days",
            "Project",
            summary.top_projects,
            summary.table_total,
        )
    )
    body.append(
        render_table(
            f"Top clients, last {summary.table_days} days", "Client", summary.top_clients, summary.table_total
        )
    )
    body.append("</div></body></html>")
    return ("\n".join(body) + "\n").encode("utf-8")


def render_json(summary: Summary) -> bytes:
    """summary.json: the same figures for scripts and monitoring."""
    document = {
        "generated": summary.generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days": [{"date": day, "downloads": count} for day, count in summary.days],
        "top_window_days": summary.table_days,
        "top_window_downloads": summary.table_total,
        "top_projects": [{"project": name, "downloads": count} for name, count in summary.top_projects],
        "top_clients": [{"client": name, "downloads": count} for name, count in summary.top_clients],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")
