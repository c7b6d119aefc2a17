"""Access log line parsing: formats, what counts as a download, UTC days."""

from __future__ import annotations

import pytest

from bandersnatch.stats.logparse import (
    download_filename,
    is_download_request,
    parse_line,
    request_path,
    utc_day,
)

WHEEL = "/packages/ab/cd/ef0123/requests-2.32.3-py3-none-any.whl"
TS = "10/Oct/2024:13:55:36 -0700"


def combined(prefix: str = "203.0.113.9 - -", agent: str = "pip/24.2", extra: str = "") -> bytes:
    return f'{prefix} [{TS}] "GET {WHEEL} HTTP/1.1" 200 4838 "-" "{agent}"{extra}'.encode()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(combined(), id="nginx-combined"),
        pytest.param(combined("203.0.113.9 - alice"), id="authenticated-user"),
        pytest.param(combined("mirror.example.org:443 203.0.113.9 - -"), id="apache-vhost-combined"),
        pytest.param(combined("mirror.example.org 203.0.113.9 - -"), id="nginx-host-first"),
        pytest.param(combined("2001:db8::1 - -"), id="ipv6-client"),
        pytest.param(combined(extra=' "198.51.100.7" 0.012'), id="extra-fields-after-agent"),
        pytest.param(combined(extra="\r"), id="crlf-line-ending"),
    ],
)
def test_combined_variants_yield_timestamp_request_status_and_agent(line: bytes) -> None:
    record = parse_line(line)
    assert record is not None
    assert record.timestamp == TS.encode()
    assert record.request == f"GET {WHEEL} HTTP/1.1".encode()
    assert record.status == b"200"
    assert record.agent == b"pip/24.2"


def test_common_format_without_referer_and_agent_has_no_agent() -> None:
    record = parse_line(f'203.0.113.9 - - [{TS}] "GET {WHEEL} HTTP/1.0" 200 4838'.encode())
    assert record is not None
    assert record.agent is None


def test_nginx_escaped_quotes_in_agent_stay_inside_the_agent() -> None:
    agent = r"pip/24.2 {\x22ci\x22:null,\x22cpu\x22:\x22x86_64\x22}"
    record = parse_line(combined(agent=agent))
    assert record is not None
    assert record.agent == agent.encode()


def test_apache_escaped_quotes_in_agent_stay_inside_the_agent() -> None:
    agent = r"pip/24.2 {\"ci\":null,\"cpu\":\"x86_64\"}"
    record = parse_line(combined(agent=agent, extra=' "-" 0.1'))
    assert record is not None
    assert record.agent == agent.encode()


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage",
        b"\x00\xff\xfe binary \x1f\x8b",
        f'203.0.113.9 - - {TS} "GET {WHEEL} HTTP/1.1" 200 1 "-" "pip"'.encode(),  # no brackets
        f'203.0.113.9 - - [{TS}] "GET {WHEEL} HTTP/1.1" OK 1 "-" "pip"'.encode(),  # status not a number
        f'203.0.113.9 - - [{TS}] "GET {WHEEL} HTTP/1.1'.encode(),  # cut short
    ],
)
def test_malformed_lines_do_not_parse(line: bytes) -> None:
    assert parse_line(line) is None


@pytest.mark.parametrize(
    ("request_line", "status", "counted"),
    [
        (f"GET {WHEEL} HTTP/1.1", b"200", True),
        (f"GET {WHEEL} HTTP/1.1", b"206", False),  # range request: metadata probe or resumed download
        (f"GET {WHEEL} HTTP/1.1", b"304", False),  # client reused its copy; nothing transferred
        (f"GET {WHEEL} HTTP/1.1", b"404", False),
        (f"HEAD {WHEEL} HTTP/1.1", b"200", False),
        ("GET /simple/requests/ HTTP/1.1", b"200", False),
        ("GET /simple/packages/ HTTP/1.1", b"200", False),  # the project called "packages"
        ("POST /packages/x.whl HTTP/1.1", b"200", False),
    ],
)
def test_only_successful_gets_under_packages_are_downloads(
    request_line: str, status: bytes, counted: bool
) -> None:
    assert is_download_request(request_line.encode(), status) is counted


def test_request_path_is_the_middle_of_the_request_line() -> None:
    assert request_path(b"GET /packages/a.whl HTTP/1.1") == b"/packages/a.whl"
    assert request_path(b"GET /packages/a.whl") == b"/packages/a.whl"
    assert request_path(b"-") == b""


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/packages/ab/cd/ef/requests-2.32.3.tar.gz", "requests-2.32.3.tar.gz"),
        (b"/packages/ab/cd/ef/requests-2.32.3.tar.gz?sha256=abc", "requests-2.32.3.tar.gz"),
        (b"/packages/ab/cd/ef/requests-2.32.3.tar.gz#frag", "requests-2.32.3.tar.gz"),
        (
            b"/packages/ab/cd/ef/torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl",
            "torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl",
        ),
        (b"/packages/ab/cd/ef/caf%C3%A9-1.0.tar.gz", "café-1.0.tar.gz"),
        (b"/packages/", None),
        (b"/packages/ab/cd/", None),
        (b"/packages/ab/../../etc/passwd", None),
        (b"/packages/ab/%2e%2e/x.whl", None),
        (b"/packages/ab/x%0A.whl", None),
        (b"/packages/ab/%ff.whl", None),
        (b"/simple/requests/", None),
        (b"/web/packages/ab/x.whl", None),
    ],
)
def test_download_filename_decodes_and_refuses_what_is_no_file(target: bytes, expected: str | None) -> None:
    assert download_filename(target) == expected


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [
        ("10/Oct/2024:13:55:36 -0700", "2024-10-10"),
        ("10/Oct/2024:17:00:00 -0700", "2024-10-11"),  # 00:00 UTC
        ("10/Oct/2024:16:59:59 -0700", "2024-10-10"),
        ("11/Oct/2024:01:00:00 +0200", "2024-10-10"),
        ("11/Oct/2024:02:00:00 +0200", "2024-10-11"),
        ("10/Oct/2024:05:44:59 +0545", "2024-10-09"),  # Nepal: 23:59:59 UTC the day before
        ("10/Oct/2024:05:45:00 +0545", "2024-10-10"),
        ("31/Dec/2024:23:30:00 -0100", "2025-01-01"),
        ("01/Mar/2024:00:30:00 +0100", "2024-02-29"),  # leap day
        ("10/Oct/2024:13:55:36 +0000", "2024-10-10"),
    ],
)
def test_utc_day_applies_the_offset(timestamp: str, day: str) -> None:
    assert utc_day(timestamp.encode()) == day


@pytest.mark.parametrize(
    "timestamp",
    ["", "10/Foo/2024:13:55:36 -0700", "32/Oct/2024:13:55:36 -0700", "10/Oct/2024:13:55:36", "yesterday"],
)
def test_utc_day_refuses_what_is_no_timestamp(timestamp: str) -> None:
    assert utc_day(timestamp.encode()) is None
