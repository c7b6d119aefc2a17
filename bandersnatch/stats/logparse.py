"""Pure parsing of web server access log lines (nginx/Apache "combined").

Lines stay ``bytes``: logs are not guaranteed to be UTF-8 (a client controls
the request line and the user agent), and decoding every line would cost more
than the whole rest of the pipeline.  Only the few fields that matter are
decoded, once per distinct value, by the callers' caches.

Accepted shapes (all with an optional run of extra fields at the end, such as
nginx's ``$request_time`` or ``"$http_x_forwarded_for"``)::

    1.2.3.4 - user [10/Oct/2024:13:55:36 -0700] "GET /p HTTP/1.1" 200 123 "ref" "agent"
    host:443 1.2.3.4 - - [...] ...          (Apache vhost_combined)
    host 1.2.3.4 - - [...] ...              (nginx with $host first)
    1.2.3.4 - - [...] "GET /p HTTP/1.1" 200 123      (common: no referer/agent)

What counts as a download is decided here, in one place:

* the method is ``GET`` (``HEAD`` transfers no file);
* the status is ``200`` only.  ``206 Partial Content`` is not counted: range
  requests are how uv and pip's lazy-wheel probe a wheel's metadata and how
  resumed downloads fetch the rest, so counting them would count probes and
  count one download several times.  ``304 Not Modified`` is not counted
  either: nothing was transferred, the client reused a file it had already
  downloaded (and that download was counted then);
* the path, with any query string removed and percent-decoding applied, lies
  under ``/packages/`` (``/simple/packages/`` is a project page, not a file).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

COUNTED_STATUS = b"200"
PACKAGES_PREFIX = "/packages/"
DOWNLOAD_REQUEST_PREFIX = b"GET /packages/"

# A quoted field as both servers write it: nginx escapes '"' as \x22, Apache
# as \".  Written as "non-quotes, then any \"-escapes each followed by
# non-quotes" so that an nginx line (no escapes) matches without any
# backtracking; the pattern after each field decides which quote closes it.
_QUOTED = rb'"([^"]*(?:\\"[^"]*)*)"'
_QUOTED_SKIP = rb'"[^"]*(?:\\"[^"]*)*"'

# Timestamp, request line and status, then the rest after the response size
# as a fourth group.  Three or four space-free fields come before the
# timestamp: "ip ident user", or a virtual host ("host" or "host:port") in
# front of them.
LINE = re.compile(rb"(?:[^ ]+ ){3,4}\[([^\]]{1,64})\] " + _QUOTED + rb" ([0-9]{3}) [^ ]+(.*)", re.DOTALL)

# What follows the size in the combined format: referer and user agent, then
# possibly extra fields.  Matched separately, and only for downloads, because
# user agents are long (pip's carries a JSON document) and repeat a lot, so
# the aggregation caches this part by its bytes instead of parsing it per line.
AGENT_TAIL = re.compile(rb" " + _QUOTED_SKIP + rb" " + _QUOTED + rb"(?![^ \r])")

_MONTHS = {
    b"Jan": 1,
    b"Feb": 2,
    b"Mar": 3,
    b"Apr": 4,
    b"May": 5,
    b"Jun": 6,
    b"Jul": 7,
    b"Aug": 8,
    b"Sep": 9,
    b"Oct": 10,
    b"Nov": 11,
    b"Dec": 12,
}
TIMESTAMP = re.compile(
    rb"([0-9]{2})/([A-Z][a-z]{2})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})$"
)


class LogRecord(NamedTuple):
    """The fields of one access log line that statistics need."""

    timestamp: bytes
    request: bytes
    status: bytes
    agent: bytes | None


def parse_line(line: bytes) -> LogRecord | None:
    """The record in ``line``, or None when it is not a combined/common log line.

    The aggregation loop uses :data:`LINE` and :func:`agent_of_tail` directly,
    with caches; this is the same parse, named, for everyone else.
    """
    match = LINE.match(line)
    if match is None:
        return None
    timestamp, request, status, tail = match.groups()
    return LogRecord(timestamp, request, status, agent_of_tail(tail))


def agent_of_tail(tail: bytes) -> bytes | None:
    """The user agent in what follows the size field; None in the common format (no agent)."""
    match = AGENT_TAIL.match(tail)
    return match.group(1) if match is not None else None


def is_download_request(request: bytes, status: bytes) -> bool:
    """True when the request line and status count as a download (see module docstring)."""
    return status == COUNTED_STATUS and request.startswith(DOWNLOAD_REQUEST_PREFIX)


def request_path(request: bytes) -> bytes:
    """The raw target of a request line ``METHOD target PROTOCOL`` (empty when absent)."""
    first = request.find(b" ")
    if first < 0:
        return b""
    second = request.find(b" ", first + 1)
    return request[first + 1 :] if second < 0 else request[first + 1 : second]


def download_filename(target: bytes) -> str | None:
    """The file name a ``/packages/...`` request target names, or None.

    The query string (and a stray fragment) is dropped, the path is
    percent-decoded, and anything that is not a plain file name below
    ``/packages/`` (a directory listing, ``..`` tricks, control characters,
    bytes that are not UTF-8) yields None: it cannot be a distribution.
    """
    for stop in (b"?", b"#"):
        cut = target.find(stop)
        if cut >= 0:
            target = target[:cut]
    try:
        path = unquote_to_bytes(target).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not path.startswith(PACKAGES_PREFIX):
        return None
    segments = path[len(PACKAGES_PREFIX) :].split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return None
    name = segments[-1]
    if any(ord(c) < 32 or c in "\\\x7f" for c in name):
        return None
    return name


def utc_day(timestamp: bytes) -> str | None:
    """The UTC calendar day (``YYYY-MM-DD``) of a ``10/Oct/2024:13:55:36 -0700`` timestamp.

    None for anything else.  Callers cache the result per timestamp string,
    so this runs about once per distinct second in the log, not per line.
    """
    match = TIMESTAMP.match(timestamp)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, sign, off_hours, off_minutes = match.groups()
    month = _MONTHS.get(month_name)
    if month is None:
        return None
    try:
        local = datetime(int(year), month, int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
    try:
        utc = local - offset if sign == b"+" else local + offset
    except OverflowError:
        return None
    return utc.date().isoformat()
