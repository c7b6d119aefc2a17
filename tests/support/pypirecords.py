"""What the fake PyPI serves, as records: its content types, name and version helpers,
content negotiation, files, project snapshots, changelog rows, requests seen, fault switches
and the response a handler writes. Pure: no socket, no thread.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
_LATEST = {
    "application/vnd.pypi.simple.latest+json": SIMPLE_JSON,
    "application/vnd.pypi.simple.latest+html": SIMPLE_HTML,
}
# Server preference on equal q, as PyPI: a bare "*/*" (requests' default)
# gets HTML, so old clients keep working.
_OFFERS = (TEXT_HTML, SIMPLE_HTML, SIMPLE_JSON)
API_VERSION = "1.4"
FIRST_SERIAL = 100

_SEPARATORS = re.compile(r"[-_.]+")
_SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar")


# ------------------------------------------------------------------ helpers


def normalize(name: str) -> str:
    """PEP 503 normalized project name: the key every lookup uses."""
    return _SEPARATORS.sub("-", name).lower()


def version_from_filename(filename: str) -> str:
    """The version a distribution file name carries.

    Wheels (and eggs) put it in the second dash-separated field; sdists end
    in ``-<version><suffix>``.  Good enough for the names tests create.
    """
    for suffix in _SDIST_SUFFIXES:
        if filename.endswith(suffix):
            return filename[: -len(suffix)].rsplit("-", 1)[1]
    return filename.split("-")[1]


def _packagetype(filename: str) -> tuple[str, str]:
    """(packagetype, python_version) as PyPI reports them for a file name."""
    if filename.endswith(".whl"):
        return "bdist_wheel", filename.split("-")[-3]
    if filename.endswith(".egg"):
        return "bdist_egg", filename.split("-")[2] if filename.count("-") >= 2 else "any"
    return "sdist", "source"


def blob_path(content: bytes, filename: str) -> str:
    """PyPI's content-addressed file path: ``/packages/ab/cd/<rest>/<filename>``."""
    digest = hashlib.blake2b(content, digest_size=32).hexdigest()
    return f"/packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{filename}"


def iso_time(moment: datetime.datetime) -> str:
    """PEP 700 upload-time form: UTC with microseconds and a ``Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[tuple[int, Any], ...]:
    """A natural sort key (1.10 after 1.9) without depending on ``packaging``."""
    parts = re.findall(r"\d+|[A-Za-z]+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """``Accept`` entries as (media type, q); malformed q counts as 0."""
    entries: list[tuple[str, float]] = []
    for item in (header or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        entries.append((_LATEST.get(media.lower(), media.lower()), quality))
    return entries


def _quality_for(offer: str, entries: list[tuple[str, float]]) -> float:
    """q of the most specific Accept entry matching ``offer`` (exact > type/* > */*)."""
    major = offer.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for media, quality in entries:
        if media == offer:
            rank = 2
        elif media == f"{major}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        if rank > best[0]:
            best = (rank, quality)
    return best[1]


def choose_simple_format(accept: str | None) -> str:
    """The content type to answer a simple-API request with (PEP 691).

    Highest q wins; ties go to the server's preference (HTML first);
    nothing acceptable, or no header, means HTML, as PyPI does.
    """
    entries = parse_accept(accept)
    best, best_q = TEXT_HTML, 0.0
    for offer in _OFFERS:
        quality = _quality_for(offer, entries)
        if quality > best_q:
            best, best_q = offer, quality
    return best


# ------------------------------------------------------------------- model


@dataclass(frozen=True)
class FileEntry:
    """One uploaded file, immutable: yanking makes a new entry in a new snapshot."""

    project: str  # normalized name
    filename: str
    version: str
    content: bytes
    sha256: str
    md5: str
    blake2b_256: str
    path: str  # URL path, unquoted
    upload_time: datetime.datetime
    requires_python: str | None = None
    metadata: bytes | None = None
    yanked: bool = False
    yanked_reason: str = ""
    packagetype: str = "sdist"
    python_version: str = "source"
    # PEP 740: the provenance object served at provenance_path (None: the file has none).
    provenance: bytes | None = None
    # A file whose bytes another server holds (``Upstream.add_external_file``): its size (content: b"").
    external_size: int | None = None

    @property
    def size(self) -> int:
        """Byte size, as advertised in the simple JSON and legacy JSON."""
        return len(self.content) if self.external_size is None else self.external_size

    @property
    def metadata_sha256(self) -> str | None:
        """sha256 of the PEP 658 metadata file, or None when there is none."""
        return hashlib.sha256(self.metadata).hexdigest() if self.metadata is not None else None

    @property
    def metadata_path(self) -> str:
        """URL path of the PEP 658 file: the file's path plus ``.metadata``."""
        return self.path + ".metadata"

    @property
    def provenance_path(self) -> str:
        """URL path of the PEP 740 provenance, where PyPI's integrity API serves it."""
        return f"/integrity/{self.project}/{self.version}/{self.filename}/provenance"

    @property
    def yanked_value(self) -> bool | str:
        """PEP 691 ``yanked``: False, or the reason string, or True without one."""
        if not self.yanked:
            return False
        return self.yanked_reason or True


@dataclass(frozen=True)
class Snapshot:
    """A project's page state as of one serial; ``files`` None means absent."""

    serial: int
    name: str  # display name
    files: tuple[FileEntry, ...] | None
    status: str = "active"  # PEP 792 project status
    status_reason: str | None = None

    @property
    def offered(self) -> tuple[FileEntry, ...]:
        """The files the page lists: none for a quarantined project, as PyPI."""
        return () if self.status == "quarantined" else self.files or ()

    @property
    def exists(self) -> bool:
        """False for a never-created or removed project (its page is a 404)."""
        return self.files is not None

    def versions(self) -> list[str]:
        """Distinct versions of the files, naturally sorted."""
        seen = {entry.version for entry in self.files or ()}
        return sorted(seen, key=_version_key)


class ChangelogEntry(NamedTuple):
    """One PyPI journal row, as ``changelog_since_serial`` returns it."""

    name: str
    version: str | None
    timestamp: int
    action: str
    serial: int


@dataclass
class RequestRecord:
    """One HTTP request the fake saw, so tests can count and inspect traffic."""

    method: str
    path: str  # including the query string
    accept: str | None
    user_agent: str | None
    status: int = 0
    sent: int = 0  # body bytes answered (0 for HEAD, half for a truncated body)
    started: float = 0.0  # time.monotonic() when the request was read
    client_port: int = 0  # the connection's source port on 127.0.0.1 (which proxy tunnel, if any)
    finished: float = 0.0  # time.monotonic() when the response was written


@dataclass
class _Blob:
    """What ``/packages/...`` serves at one path."""

    project: str
    filename: str  # as matched by corrupt()/truncate(); ".metadata" appended for PEP 658
    content: bytes


class _Countdown:
    """Per-key remaining counts for injected faults; None means forever."""

    def __init__(self) -> None:
        self._left: dict[Any, int | None] = {}

    def set(self, key: Any, times: int | None) -> None:
        """Arm (or re-arm) a fault for ``times`` more hits."""
        self._left[key] = times

    def take(self, key: Any) -> bool:
        """Consume one hit if the fault is armed for ``key``."""
        if key not in self._left:
            return False
        left = self._left[key]
        if left is not None:
            if left <= 1:
                del self._left[key]
            else:
                self._left[key] = left - 1
        return True

    def keys(self) -> list[Any]:
        """Armed keys (for prefix matching)."""
        return list(self._left)

    def clear(self) -> None:
        """Disarm everything."""
        self._left.clear()


@dataclass
class _Faults:
    """All injected-fault state; guarded by the Upstream's lock."""

    stale: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    corrupt: _Countdown = field(default_factory=_Countdown)
    truncate: _Countdown = field(default_factory=_Countdown)
    fail: dict[str, tuple[int, int | None, float | None]] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    raw: dict[str, tuple[bytes, str, int | None]] = field(default_factory=dict)
    rng: random.Random | None = None
    error_rate: float = 0.0
    truncate_rate: float = 0.0
    stale_rate: float = 0.0
    # Connection-level and raw switches (tests/functional/test_faults.py, test_hostile.py):
    # path prefix -> (value, remaining hits or None for ever).
    slow: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    reset: dict[str, tuple[bool, int | None]] = field(default_factory=dict)
    cut: dict[str, tuple[bool, int | None]] = field(default_factory=dict)
    shorten: _Countdown = field(default_factory=_Countdown)
    raw_rpc: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    raw_path: dict[str, Response] = field(default_factory=dict)
    trickle: dict[str, tuple[float, int | None]] = field(default_factory=dict)


class Response(NamedTuple):
    """What the handler writes: status, headers, body, and whether to cut it short."""

    status: int
    headers: dict[str, str]
    body: bytes
    truncate: bool = False
    keep: float = 0.5  # the share of a truncated body that is sent before the connection closes
    repeat: int = 1  # the body is sent this many times (huge answers without allocating them)
    chunked: bool = False  # no Content-Length: chunked transfer encoding
    reset: bool = False  # no answer at all: the connection is reset
    bandwidth: float | None = None  # bytes per second for this answer alone (trickle)


def _kept(response: Response) -> int:
    """How many body bytes a truncated response sends."""
    return int(len(response.body) * response.keep)
