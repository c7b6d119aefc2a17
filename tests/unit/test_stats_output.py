"""Day files, the state file, digests and the rendered page (all pure)."""

from __future__ import annotations

import bz2
import json
import re
from datetime import date, datetime, timezone

import pytest

from bandersnatch.stats.dayfile import HEADER, decode_day, encode_day, format_day, parse_day
from bandersnatch.stats.render import render_chart, render_html, render_json
from bandersnatch.stats.state import LogEntry, StatsState, dump_state, load_state, prune_logs
from bandersnatch.stats.summary import DayDigest, build_summary, digest_counts, prune_digests

NOW = datetime(2024, 10, 12, 9, 30, tzinfo=timezone.utc)
HEAD = "a" * 64


# -- day files --------------------------------------------------------------


def test_day_file_is_bzip2_csv_with_the_pep381_header_and_sorted_rows() -> None:
    counts = {
        ("requests", "requests-2.32.3.tar.gz", "pip/24.2"): 3,
        ("django", "Django-4.2.tar.gz", "uv/0.5.1"): 1,
        ("requests", "requests-2.32.3-py3-none-any.whl", "browser"): 2,
    }
    text = bz2.decompress(encode_day(counts)).decode()
    assert text.splitlines() == [
        "# package,filename,useragent,count",
        "django,Django-4.2.tar.gz,uv/0.5.1,1",
        "requests,requests-2.32.3-py3-none-any.whl,browser,2",
        "requests,requests-2.32.3.tar.gz,pip/24.2,3",
    ]
    assert text.startswith(HEADER + "\n") and text.endswith("\n")


def test_day_file_round_trips_fields_that_need_quoting() -> None:
    counts = {("odd", 'we,ird"name.tar.gz', "x/1"): 5, ("plain", "p-1.tar.gz", "other"): 1}
    assert decode_day(encode_day(counts)) == counts


def test_same_counts_give_the_same_bytes() -> None:
    a = {("a", "a-1.tar.gz", "pip/1"): 1, ("b", "b-1.tar.gz", "pip/1"): 2}
    b = dict(reversed(list(a.items())))
    assert format_day(a) == format_day(b)


def test_parse_day_adds_up_repeated_rows_and_skips_comments() -> None:
    text = "# package,filename,useragent,count\na,a-1.tar.gz,pip/1,2\na,a-1.tar.gz,pip/1,3\n\n"
    assert parse_day(text) == {("a", "a-1.tar.gz", "pip/1"): 5}


@pytest.mark.parametrize(
    "data",
    [
        b"not bzip2",
        bz2.compress(b"a,b,c\n"),
        bz2.compress(b"a,b,c,many\n"),
        bz2.compress(b"a,b,c,-1\n"),
        bz2.compress(b"\xff\xfe"),
        bz2.compress(b"a,b,c,1\n")[:-8],
    ],
)
def test_decode_day_refuses_damaged_files(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_day(data)


# -- state ------------------------------------------------------------------


def test_state_round_trips() -> None:
    state = StatsState(
        logs=[LogEntry(HEAD, 120, "b" * 64, 3, "/var/log/access.log", "2024-10-12T09:30:00Z", "10:20")],
        pending=["2024-10-11"],
        days={
            "2024-10-11": DayDigest(4, {"requests": 4}, {"pip/24.2": 4}),
            "2024-07-01": DayDigest(9),
        },
    )
    assert load_state(dump_state(state)) == state
    assert json.loads(dump_state(state))["version"] == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"version": 2}',
        b'{"version": 1, "logs": [{"head": "zz"}]}',
        b'{"version": 1, "logs": [{"head": "' + b"a" * 64 + b'", "offset": -1}]}',
        b'{"version": 1, "pending": ["../../etc"]}',
        b'{"version": 1, "days": {"2024-10-11": {"total": "many"}}}',
        b'{"version": 1, "days": {"x": {"total": 1}}}',
    ],
)
def test_load_state_refuses_what_it_did_not_write(data: bytes) -> None:
    with pytest.raises(ValueError):
        load_state(data)


def test_logs_unseen_for_long_are_forgotten() -> None:
    state = StatsState(
        logs=[
            LogEntry(HEAD, seen="2024-10-12T09:00:00Z"),
            LogEntry("b" * 64, seen="2024-06-01T00:00:00Z"),
        ]
    )
    assert prune_logs(state, NOW, 90) == 1
    assert [e.head for e in state.logs] == [HEAD]


# -- digests and summary ------------------------------------------------------


def test_digest_counts_totals_per_project_and_client() -> None:
    digest = digest_counts(
        {
            ("requests", "requests-1.tar.gz", "pip/24.2"): 3,
            ("requests", "requests-1.whl", "uv/0.5.1"): 2,
            ("six", "six-1.tar.gz", "pip/24.2"): 1,
        }
    )
    assert digest == DayDigest(6, {"requests": 5, "six": 1}, {"pip/24.2": 4, "uv/0.5.1": 2})


def test_digest_keeps_only_the_top_names() -> None:
    counts = {(f"p{i}", f"p{i}-1.tar.gz", "pip/1"): i for i in range(1, 11)}
    digest = digest_counts(counts, limit=3)
    assert digest.total == 55
    assert digest.projects == {"p10": 10, "p9": 9, "p8": 8}


def test_summary_covers_90_days_and_tables_the_last_30() -> None:
    digests = {
        "2024-10-12": DayDigest(5, {"requests": 3, "six": 2}, {"pip/24.2": 5}),
        "2024-10-01": DayDigest(4, {"six": 4}, {"uv/0.5.1": 4}),
        "2024-09-01": DayDigest(100, {"old": 100}, {"curl/8": 100}),  # outside the tables
        "2024-06-01": DayDigest(1000),  # outside the chart
    }
    summary = build_summary(digests, NOW)
    assert len(summary.days) == 90
    assert summary.days[-1] == ("2024-10-12", 5)
    assert summary.days[0] == ("2024-07-15", 0)
    assert dict(summary.days)["2024-09-01"] == 100
    assert summary.top_projects == [("six", 6), ("requests", 3)]
    assert summary.top_clients == [("pip/24.2", 5), ("uv/0.5.1", 4)]
    assert summary.table_total == 9


def test_prune_digests_drops_old_days_and_old_details() -> None:
    digests = {
        "2024-10-12": DayDigest(1, {"a": 1}, {"x/1": 1}),
        "2024-08-01": DayDigest(2, {"a": 2}, {"x/1": 2}),
        "2023-01-01": DayDigest(3),
    }
    prune_digests(digests, date(2024, 10, 12), keep_days=400, detail_days=30)
    assert digests == {"2024-10-12": DayDigest(1, {"a": 1}, {"x/1": 1}), "2024-08-01": DayDigest(2)}


# -- rendering ------------------------------------------------------------------


def test_page_is_self_contained_and_escapes_everything() -> None:
    digests = {"2024-10-12": DayDigest(3, {"<b>evil</b>&co": 3}, {'"><script>x</script>': 3})}
    page = render_html(build_summary(digests, NOW)).decode()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "</svg>" in page
    assert "<script" not in page.lower()
    assert "&lt;b&gt;evil&lt;/b&gt;&amp;co" in page
    assert "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must fetch nothing"
    assert "2024-10-12: 3 downloads" in page


def test_chart_has_one_bar_per_day_scaled_to_the_busiest() -> None:
    days = [("2024-10-10", 10), ("2024-10-11", 0), ("2024-10-12", 5)]
    svg = render_chart(days)
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([0-9.]+)"', svg)]
    assert len(heights) == 3
    assert heights[1] == 0 and heights[0] == pytest.approx(2 * heights[2])


def test_empty_statistics_still_render() -> None:
    summary = build_summary({}, NOW)
    page = render_html(summary).decode()
    assert "No downloads counted" in page
    document = json.loads(render_json(summary))
    assert document["top_projects"] == [] and len(document["days"]) == 90


def test_summary_json_has_days_tops_and_generation_time() -> None:
    digests = {"2024-10-12": DayDigest(3, {"requests": 3}, {"pip/24.2": 3})}
    document = json.loads(render_json(build_summary(digests, NOW)))
    assert document["generated"] == "2024-10-12T09:30:00Z"
    assert document["days"][-1] == {"date": "2024-10-12", "downloads": 3}
    assert document["top_projects"] == [{"project": "requests", "downloads": 3}]
    assert document["top_clients"] == [{"client": "pip/24.2", "downloads": 3}]
    assert document["top_window_days"] == 30
