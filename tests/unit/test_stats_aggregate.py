"""The counting loop: downloads per UTC day, project, file and client."""

from __future__ import annotations

from bandersnatch.stats.aggregate import Tally, merge_counts
from bandersnatch.stats.filenames import guess_project

WHL = "requests-2.32.3-py3-none-any.whl"
PATH = f"/packages/ab/cd/0123/{WHL}"


def log(
    ts: str = "10/Oct/2024:13:55:36 -0700", path: str = PATH, status: int = 200, agent: str = "pip/24.2"
) -> bytes:
    return f'203.0.113.9 - - [{ts}] "GET {path} HTTP/1.1" {status} 1234 "-" "{agent}"'.encode()


def test_downloads_are_counted_per_day_project_file_and_client() -> None:
    tally = Tally(guess_project)
    tally.feed(
        [
            log(),
            log(),
            log(agent="uv/0.5.1"),
            log(ts="10/Oct/2024:23:00:00 -0700"),  # 06:00 UTC the next day
            log(path="/packages/ab/cd/0123/six-1.16.0.tar.gz?x=1"),
        ]
    )
    assert tally.days == {
        "2024-10-10": {
            ("requests", WHL, "pip/24.2"): 2,
            ("requests", WHL, "uv/0.5.1"): 1,
            ("six", "six-1.16.0.tar.gz", "pip/24.2"): 1,
        },
        "2024-10-11": {("requests", WHL, "pip/24.2"): 1},
    }
    assert (tally.lines, tally.downloads, tally.malformed, tally.keys) == (5, 5, 0, 4)


def test_other_requests_are_read_but_not_counted() -> None:
    tally = Tally(guess_project)
    tally.feed(
        [
            log(status=304),
            log(status=206),
            log(status=404),
            log(path="/simple/requests/"),
            log(path=PATH + ".metadata"),
            log().replace(b'"GET ', b'"HEAD '),
        ]
    )
    assert tally.days == {}
    assert (tally.lines, tally.downloads, tally.malformed) == (6, 0, 0)


def test_malformed_lines_and_bad_timestamps_are_counted_as_malformed() -> None:
    tally = Tally(guess_project)
    tally.feed([b"", b"\x00\xff garbage", log(ts="99/Xyz/2024:13:55:36 -0700"), log()])
    assert (tally.lines, tally.downloads, tally.malformed) == (4, 1, 3)


def test_a_bad_timestamp_is_not_rescued_by_the_minute_cache() -> None:
    tally = Tally(guess_project)
    tally.feed([log(ts="10/Oct/2024:13:55:36 -0700"), log(ts="10/Oct/2024:13:55:9x -0700")])
    assert (tally.downloads, tally.malformed) == (1, 1)


def test_caches_do_not_change_results_for_agents_sharing_a_tail() -> None:
    tally = Tally(guess_project)
    lines = [log(agent=a) for a in ("pip/24.2", "pip/24.1", "pip/24.2", "Mozilla/5.0 (X11)")]
    tally.feed(lines)
    tally.feed(lines)
    counts = tally.days["2024-10-10"]
    assert counts == {
        ("requests", WHL, "pip/24.2"): 4,
        ("requests", WHL, "pip/24.1"): 2,
        ("requests", WHL, "browser"): 2,
    }


def test_drain_hands_over_and_restarts_the_counts() -> None:
    tally = Tally(guess_project)
    tally.feed([log()])
    drained = tally.drain()
    assert drained == {"2024-10-10": {("requests", WHL, "pip/24.2"): 1}}
    assert tally.days == {} and tally.keys == 0
    assert tally.downloads == 1


def test_unattributable_files_are_not_counted() -> None:
    tally = Tally(lambda filename: None)
    tally.feed([log()])
    assert tally.downloads == 0


def test_merge_counts_adds() -> None:
    into = {("a", "a-1.tar.gz", "pip/1"): 2}
    merge_counts(into, {("a", "a-1.tar.gz", "pip/1"): 3, ("b", "b-1.tar.gz", "pip/1"): 1})
    assert into == {("a", "a-1.tar.gz", "pip/1"): 5, ("b", "b-1.tar.gz", "pip/1"): 1}
