"""The upstream's APIs, as the rest of bandersnatch calls them: ``Master``.

XML-RPC (the changelog and the full listing), the PEP 691 root listing, project
pages and files (with their provenance).  How each request is sent, retried and
read is ``transport``'s business: XML-RPC goes through the same session as pages
and files, so it shares the timeouts, the User-Agent and the keep-alive pool.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import requests

from ..config.network import Network
from ..config.settings import DEFAULT_GLOBAL_TIMEOUT, DEFAULT_MAX_FILE_BYTES
from ..errors import (
    HashMismatch,
    NotFound,
    NoXmlRpc,
    StalePage,
    UnsafePath,
    UpstreamError,
    UpstreamUnreachable,
    shown,
)
from ..formats.layout import UrlPolicy
from ..formats.serial import MAX_SERIAL, is_serial
from ..formats.simple import ACCEPT, JSON_CONTENT_TYPE, ProjectPage, parse_html_page, parse_json_page
from .downloadmirror import DownloadMirror, Fallback
from .rpcstream import describe, iter_items
from .transport import CHUNK, FILE_CHUNK, TooManyRedirects, Transient, Transport, declared_over

logger = logging.getLogger(__name__)

# PyPI caps one changelog_since_serial answer at this many rows; a full page means "ask again".
CHANGELOG_PAGE = 50_000
CHANGELOG_PAUSE = 1.0  # seconds between paged calls: 3,600 an hour is PyPI's XML-RPC limit
# How a server without XML-RPC answers a POST to /pypi: a plain web server or a PEP 691 index
# (404, 405, 501), or the nginx of a mirror with json = true (403: /pypi is redirected to the
# /pypi/ directory of its JSON API copy, which takes no POST).  5xx and no answer are trouble.
NO_XMLRPC_STATUSES = frozenset({403, 404, 405, 501})
# PyPI's integrity API answers in its own media type; any JSON will do for a provenance object.
PROVENANCE_ACCEPT = "application/vnd.pypi.integrity.v1+json, application/json;q=0.9"
# Hashes a page may name that we can check: fixed-length ones.  shake_128/shake_256 need a length
# for hexdigest() that nothing on a page gives; like any algorithm we do not know, they are ignored.
VERIFIABLE = frozenset(a for a in hashlib.algorithms_guaranteed if hashlib.new(a).digest_size)


@dataclass(frozen=True)
class _Limit:
    """The most bytes a download of unknown size may have, and the option that says so."""

    bytes: int
    option: str


class _Partial:
    """What earlier attempts of one download staged: bytes, running hashes, the file's ETag."""

    def __init__(self) -> None:
        self.total = 0
        self.checkers: dict[str, Any] = {"sha256": hashlib.sha256()}
        self.etag: str | None = None
        self.touched = False  # an attempt has written into the sink

    @property
    def resumable(self) -> bool:
        return self.total > 0 and self.etag is not None

    def start(self, response: requests.Response, hashes: Mapping[str, str]) -> None:
        """A whole body begins: fresh hashes, and the ETag that lets a later attempt resume it."""
        self.total = 0
        self.checkers = {algo: hashlib.new(algo) for algo in hashes if algo in VERIFIABLE}
        self.checkers.setdefault("sha256", hashlib.sha256())
        etag = response.headers.get("ETag", "")
        # Only a strong validator may join byte ranges (RFC 9110, If-Range).
        self.etag = etag if etag.startswith('"') and etag.endswith('"') and len(etag) > 2 else None

    def continues(self, response: requests.Response, size: int | None) -> bool:
        """True when a 206 answer carries exactly the bytes after ours, of a file of the right size."""
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
        if (match is None or int(match.group(1)) != self.total or response.headers.get("ETag") != self.etag
                or (size is not None and int(match.group(3)) != size)):
            return False
        return int(match.group(2)) + 1 == int(match.group(3))

    def forget(self) -> None:
        self.total = 0
        self.etag = None


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


@dataclass(frozen=True)
class _PageBody:
    """A project page as answered, not yet parsed."""

    data: bytes
    content_type: str
    header_serial: str


@dataclass(frozen=True)
class Validators:
    """What the master said identifies its root listing: sent back to be answered 304 when unchanged."""

    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Listing:
    """A root listing's body, spooled and rewound, with its validators."""

    body: BinaryIO
    validators: Validators

    def chunks(self) -> Iterator[bytes]:
        return iter(functools.partial(self.body.read, CHUNK), b"")


def checked_serial(value: object, what: str) -> int:
    """``value`` when it is a serial we could send back to upstream; else one clear error."""
    if not is_serial(value):
        raise UpstreamError(f"{what}: serial {describe(value)} is not an integer from 0 to {MAX_SERIAL}")
    return value


class Master:
    """The upstream PyPI (or any PEP 503/691 repository with PyPI's XML-RPC)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        workers: int,
        max_page_bytes: int,
        policy: UrlPolicy,
        spool_dir: Path,
        global_timeout: float = DEFAULT_GLOBAL_TIMEOUT,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], object] | None = None,
        changelog_page: int = CHANGELOG_PAGE,
        network: Network | None = None,
        download_mirror: DownloadMirror | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Files (and their .metadata) are asked there first, through this same session.
        self.download_mirror = download_mirror
        self.changelog_page = changelog_page
        self.max_file_bytes = max_file_bytes
        self.max_page_bytes = max_page_bytes
        # PyPI's full listing is tens of megabytes of XML: allow RPC answers more room.
        self.max_rpc_bytes = max_page_bytes * 8
        self.transport = Transport(
            self.url, timeout=timeout, workers=workers, policy=policy, spool_dir=spool_dir,
            global_timeout=global_timeout, attempts=attempts, backoff=backoff, sleep=sleep,
            network=network,
        )

    def close(self) -> None:
        self.transport.close()

    def cancel(self) -> None:
        """Abandon every request (called from another thread when the run is interrupted)."""
        self.transport.cancel()

    # ------------------------------------------------------------ XML-RPC

    def rpc(self, method: str, *params: Any) -> Any:
        """A small XML-RPC answer: its one value."""
        items = list(self.rpc_stream(method, *params))
        return items[0] if len(items) == 1 else items

    def rpc_stream(self, method: str, *params: Any) -> Iterator[Any]:
        """The top-level members of a big XML-RPC answer, parsed from a spool file.

        The answer is spooled to an anonymous temporary file in ``spool_dir``
        first (so a body cut short is retried like any other request, and
        memory stays flat), then parsed as a stream.
        """
        body = xmlrpc.client.dumps(params, method, allow_none=False).encode("utf-8")
        endpoint = self.url + "/pypi"
        what = f"XML-RPC {method}"
        with self.transport.spool(what) as spool:

            def call() -> None:
                spool.seek(0)
                spool.truncate()
                deadline = self.transport.deadline()
                response = self._post_rpc(endpoint, body, what)
                self.transport.copy_capped(response, spool, self.max_rpc_bytes, what, deadline)

            self.transport.with_retries(what, call)
            spool.seek(0)
            try:
                yield from iter_items(iter(functools.partial(spool.read, CHUNK), b""))
            except NoXmlRpc as exc:  # a body that is no XML-RPC answer at all
                raise NoXmlRpc(f"{what}: {endpoint} answers with {exc}") from None
            except UpstreamError as exc:
                # A fault: an unknown method, or XML-RPC switched off (PyPI's own answer when it is).
                kind = NoXmlRpc if str(exc).startswith("fault ") else UpstreamError
                raise kind(f"{what}: {exc}") from None

    def _post_rpc(self, endpoint: str, body: bytes, what: str) -> requests.Response:
        """The answer to an XML-RPC call, body unread; NoXmlRpc when it is a server without XML-RPC's.

        Only answers a server without XML-RPC gives count as such: a status it
        sends, a web page or JSON, a redirect we do not follow (elsewhere, or
        round in a loop).  5xx and no answer stay trouble, retried as any request.
        """
        try:
            response = self.transport.send("POST", endpoint, headers={"Content-Type": "text/xml"}, data=body)
        except (UnsafePath, TooManyRedirects) as exc:
            raise NoXmlRpc(f"{what}: {exc}") from None
        where = shown(response.url or endpoint)  # after a redirect, the URL that answered
        if response.status_code in NO_XMLRPC_STATUSES:
            response.close()
            raise NoXmlRpc(f"{what}: HTTP {response.status_code} from {where}")
        if response.status_code != 200:
            response.close()
            raise UpstreamError(f"{what}: HTTP {response.status_code} from {where}")
        content_type = response.headers.get("Content-Type", "").lower()
        for kind, label in (("html", "a web page"), ("json", "JSON")):
            if kind in content_type:
                response.close()
                raise NoXmlRpc(f"{what}: {where} answers with {label}, not XML-RPC")
        return response

    def list_packages_with_serial(self) -> Iterator[tuple[str, int]]:
        """Every ``(name, serial)`` upstream lists, streamed: 750,000 of them never sit in memory."""
        what = "XML-RPC list_packages_with_serial"
        for item in self.rpc_stream("list_packages_with_serial"):
            if not isinstance(item, tuple):  # the answer was not a struct
                raise UpstreamError(f"{what}: unexpected member {describe(item)}")
            name, serial = item
            yield name, checked_serial(serial, f"{what}: {describe(name)}")

    def changelog_since_serial(self, serial: int) -> Iterator[tuple[str, int]]:
        """``(name, serial)`` of every change after ``serial``; other columns are not needed.

        PyPI answers at most 50,000 rows per call: a full page means there is more, so
        ask again from the last serial seen, pausing between calls so a long catch-up
        stays under PyPI's XML-RPC rate limit (3,600 calls an hour).
        """
        what = "XML-RPC changelog_since_serial"
        since = serial
        while True:
            rows = 0
            for row in self.rpc_stream("changelog_since_serial", since):
                if not (isinstance(row, list) and len(row) >= 5 and isinstance(row[0], str)):
                    raise UpstreamError(f"{what}: malformed row: {describe(row)}")
                row_serial = checked_serial(row[4], f"{what}: {describe(row[0])}")
                rows += 1
                since = max(since, row_serial)
                yield row[0], row_serial
            if rows < self.changelog_page:
                return
            logger.debug("%s: a full page of %d rows; asking again from serial %d", what, rows, since)
            self.transport.pause(CHANGELOG_PAUSE)
            self.transport.check_usable()

    def changelog_last_serial(self) -> int:
        return checked_serial(self.rpc("changelog_last_serial"), "XML-RPC changelog_last_serial")

    # ------------------------------------------------------------ the root listing

    @contextlib.contextmanager
    def root_listing(self, validators: Validators | None = None, *,
                     fresh: bool = False) -> Iterator[Listing | None]:
        """``GET <master>/simple/`` as PEP 691 JSON, spooled; None when ``validators`` still match (304).

        The body (PyPI's: tens of megabytes) goes to a spool file in
        ``spool_dir`` like an XML-RPC answer, so a body cut short is retried
        and the caller parses it as a stream.  ``validators`` are sent as
        ``If-None-Match`` / ``If-Modified-Since``: an unchanged listing costs one
        small answer.  ``fresh`` asks past any cache (a query string, as for a stale page).
        The spool is gone when the block ends.
        """
        url = self.url + "/simple/" + (f"?bandersnatch_serial=fresh-{time.time_ns()}" if fresh else "")
        what = "root listing"
        headers = {"Accept": JSON_CONTENT_TYPE}
        if validators is not None:
            if validators.etag:
                headers["If-None-Match"] = validators.etag
            if validators.last_modified:
                headers["If-Modified-Since"] = validators.last_modified
        with self.transport.spool(what) as spool:

            def call() -> Listing | None:
                spool.seek(0)
                spool.truncate()
                deadline = self.transport.deadline()
                response = self.transport.send("GET", url, headers=headers)
                if response.status_code == 304 and validators is not None:
                    response.close()
                    return None
                if response.status_code != 200:
                    response.close()
                    raise UpstreamError(f"{what}: HTTP {response.status_code} from {url}")
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if content_type != JSON_CONTENT_TYPE:
                    response.close()
                    raise UpstreamError(
                        f"{what}: {url} answers with {shown(content_type, 60) or 'no Content-Type'}, not "
                        f"PEP 691 JSON ({JSON_CONTENT_TYPE}); without it or XML-RPC this master cannot be "
                        "followed")
                found = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
                self.transport.copy_capped(response, spool, self.max_rpc_bytes, what, deadline)
                return Listing(spool, found)

            answer = self.transport.with_retries(what, call)
            if answer is not None:
                spool.seek(0)
            yield answer

    # ------------------------------------------------------------ pages

    def fetch_page(self, name: str, min_serial: int, stale_attempts: int = 3) -> ProjectPage | None:
        """The project's page at ``min_serial`` or newer; None when upstream has no such project.

        A CDN may serve an older copy of a page than the changelog promised
        (``X-PyPI-Last-Serial`` below the serial we were told about).  Such a
        page must not be mirrored: ask again with a cache-busting query, and
        after a few tries give up so the project stays in ``todo``.  A 404 may
        be stale too (a project created a moment ago): only a cache-busting
        request may tell us a project is gone.
        """
        url = f"{self.url}/simple/{quote(name, safe='')}/"
        seen: int | None = None
        for attempt in range(stale_attempts):
            query = "" if attempt == 0 else f"?bandersnatch_serial={min_serial}-{attempt}"
            # Parsed once the request slot is free: parsing is CPU, not a request in flight.
            body = self.transport.with_retries(
                f"page {name}", functools.partial(self._get_page, url + query, name))
            page = None if body is None else self._parse_page(body, url + query, name)
            if page is None:
                if query or stale_attempts == 1:
                    return None
                logger.debug("page %s: 404; asking again past any cache", name)
                continue
            if page.last_serial is None:
                # Without a serial we cannot tell PyPI's page from a proxy's error page served
                # with 200, and mirroring the latter would delete the project's files.
                raise UpstreamError(f"page {name}: no X-PyPI-Last-Serial header or _last-serial; refused")
            checked_serial(page.last_serial, f"page {name}")
            if page.last_serial >= min_serial:
                return page
            seen = page.last_serial
            logger.debug("page %s: serial %s older than %s; asking again", name, seen, min_serial)
            self.transport.sleep_before_retry(attempt, None)
        raise StalePage(f"page {name}: upstream serves serial {seen}, older than {min_serial} (stale CDN?)")

    def _get_page(self, url: str, name: str) -> _PageBody | None:
        deadline = self.transport.deadline()
        response = self.transport.send("GET", url, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            response.close()
            raise UpstreamError(f"page {name}: HTTP {response.status_code}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        header_serial = response.headers.get("X-PyPI-Last-Serial", "").strip()
        data = self.transport.read_capped(response, self.max_page_bytes, f"page {name}", deadline)
        return _PageBody(data, content_type, header_serial)

    @staticmethod
    def _parse_page(body: _PageBody, url: str, name: str) -> ProjectPage:
        if body.content_type == JSON_CONTENT_TYPE:
            page = parse_json_page(body.data, url)
        elif body.content_type in ("text/html", "application/vnd.pypi.simple.v1+html"):
            page = parse_html_page(body.data, url, name)
        else:
            raise UpstreamError(f"page {name}: unexpected Content-Type {body.content_type[:60]!r}")
        header_serial = body.header_serial
        if header_serial.isascii() and header_serial.isdigit():
            if len(header_serial) > len(str(MAX_SERIAL)):  # int() would refuse 5,000 digits
                raise UpstreamError(f"page {name}: X-PyPI-Last-Serial {shown(header_serial, 40)} is not "
                                    f"an integer from 0 to {MAX_SERIAL}")
            page = replace(page, last_serial=int(header_serial))
        return page

    def fetch_project_json(self, name: str) -> dict[str, Any] | None:
        """Upstream's JSON API document of a project (``/pypi/<name>/json``, Warehouse's, not a
        standard); None when upstream has none.  Only the metadata filter plugins ask for it."""
        url = f"{self.url}/pypi/{quote(name, safe='')}/json"
        what = f"JSON API {name}"

        def once() -> bytes | None:
            deadline = self.transport.deadline()
            response = self.transport.send("GET", url, headers={"Accept": "application/json"})
            if response.status_code == 404:
                response.close()
                return None
            if response.status_code != 200:
                response.close()
                raise UpstreamError(f"{what}: HTTP {response.status_code}")
            return self.transport.read_capped(response, self.max_page_bytes, what, deadline)

        data = self.transport.with_retries(what, once)
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            raise UpstreamError(f"{what}: not JSON") from None
        if not isinstance(doc, dict):
            raise UpstreamError(f"{what}: not a JSON object")
        return doc

    # ------------------------------------------------------------ files

    def download(self, url: str, sink: BinaryIO, hashes: Mapping[str, str], size: int | None, *,
                 cap: int | None = None) -> Digest:
        """Stream ``url`` into ``sink``, hashing as it arrives; verify size and every known hash.

        With no ``size``, the body may not exceed ``cap`` bytes (default: max-file-size; a
        ``.metadata`` file is capped like a page, at max-page-size).

        A body cut off part way is resumed by the next attempt with a ``Range`` request
        from the bytes already in ``sink``, when the server answers 206 for the same
        version of the file (``If-Range`` with its strong ETag); otherwise it starts over.
        The hashes carry on from where they stopped, so they still cover the whole file.

        With a download mirror, the file is asked there first and checked against the same
        hashes; when it is missing, failing or other bytes, from ``url`` (none of the mirror's
        bytes stay in ``sink``), unless the mirror has no fallback: then its error is raised.
        """
        what = f"file {shown(url.rsplit('/', 1)[-1], 120)}"
        limit = _Limit(self.max_file_bytes, "max-file-size") if cap is None else _Limit(cap, "max-page-size")
        if self.download_mirror is None:
            return self._fetch(url, sink, hashes, size, what, limit)
        # Only distribution files are counted per host, as the run's summary counts files; a
        # .metadata file (capped like a page) takes the same way as its file.
        return self._via_mirror(self.download_mirror, url, sink, hashes, size, what, limit,
                                counted=cap is None)

    def _via_mirror(self, source: DownloadMirror, url: str, sink: BinaryIO, hashes: Mapping[str, str],
                    size: int | None, what: str, limit: _Limit, *, counted: bool) -> Digest:
        """``download`` with a download mirror: asked first, upstream's ``url`` as its fallback."""
        verifiable = any(algo in VERIFIABLE for algo in hashes)
        if not verifiable and source.no_fallback:
            raise UpstreamError(f"{what}: upstream's page gives no hash to check the download mirror's "
                                "copy against; refused (download-mirror-no-fallback = true)")
        if not verifiable or source.given_up:
            # A copy that could not be checked is taken from upstream only; a mirror given up is not asked.
            digest = self._fetch(url, sink, hashes, size, what, limit)
            if counted:
                source.served_by_upstream(url, fallback=None)
            return digest
        try:
            # With a fallback the mirror gets one try: upstream is its retry.
            digest = self._fetch(source.url_for(url), sink, hashes, size, f"{what} (download mirror)", limit,
                                 mirror=True, attempts=None if source.no_fallback else 1)
        except UpstreamUnreachable:
            raise  # the master is gone: no fallback would get an answer either
        except (UpstreamError, UnsafePath) as exc:  # missing, failing, or other bytes than the page's
            cause = (Fallback.NOT_THERE if isinstance(exc, NotFound) else
                     Fallback.OTHER_BYTES if isinstance(exc, HashMismatch) else Fallback.FAILED)
            if cause is Fallback.FAILED:
                source.failed(str(exc))
            else:
                source.answered_without_file()
            if source.no_fallback:
                raise
            logger.info("%s; fetching it from upstream", exc)
            sink.seek(0)  # nothing of the mirror's bytes may reach the file
            sink.truncate()
            digest = self._fetch(url, sink, hashes, size, what, limit)
            if counted:
                source.served_by_upstream(url, fallback=cause)
            return digest
        if counted:
            source.served_by_mirror()
        return digest

    def _fetch(self, url: str, sink: BinaryIO, hashes: Mapping[str, str], size: int | None, what: str,
               limit: _Limit, *, mirror: bool = False, attempts: int | None = None) -> Digest:
        """``url`` into ``sink`` with the transport's retries (and resumes); ``mirror``: a request to the
        download mirror (redirects only on its host, and no verdict on the master's reachability)."""
        partial = _Partial()
        return self.transport.with_retries(
            what, lambda: self._download_once(url, sink, hashes, size, what, partial, limit, mirror),
            attempts=attempts)

    def _download_once(
        self, url: str, sink: BinaryIO, hashes: Mapping[str, str], size: int | None, what: str,
        partial: _Partial, cap: _Limit, mirror: bool = False,
    ) -> Digest:
        deadline = self.transport.deadline()
        # identity: the bytes as stored upstream.  A server may encode anyway (a .tar.gz sent
        # with Content-Encoding: gzip is a classic): its body is still taken exactly as sent.
        headers = {"Accept-Encoding": "identity"}
        if partial.resumable:
            headers["Range"] = f"bytes={partial.total}-"
            headers["If-Range"] = partial.etag or ""
        response = self.transport.send("GET", url, headers=headers, same_host_only=mirror, counted=not mirror)
        if response.status_code == 404:
            response.close()
            raise NotFound(f"{what}: HTTP 404")
        if response.status_code == 206 and partial.resumable and partial.continues(response, size):
            sink.seek(partial.total)
            logger.debug("%s: resuming after %d bytes", what, partial.total)
        elif response.status_code == 200:
            if partial.touched:  # an earlier attempt wrote into the sink (a fresh one costs no syscalls)
                sink.seek(0)
                sink.truncate()
            partial.start(response, hashes)
        else:
            response.close()
            partial.forget()  # a 206 for other bytes than ours: start over next time
            raise UpstreamError(f"{what}: HTTP {response.status_code}")
        # With no size on the page, only the cap (max-file-size) stops a body that never ends.
        limit = size if size is not None else cap.bytes
        declared = response.headers.get("Content-Length", "")
        if size is None and declared_over(declared, limit):
            response.close()
            raise UpstreamError(
                f"{what}: {shown(declared, 40)} bytes announced, more than {cap.option} ({limit}); refused")
        checkers = partial.checkers
        sha256 = checkers["sha256"]

        def take(chunk: bytes) -> None:
            if partial.total + len(chunk) > limit:  # checked before writing: the file never exceeds it
                if size is not None:
                    raise HashMismatch(f"{what}: more bytes than the advertised {size}")
                raise UpstreamError(f"{what}: larger than {cap.option} ({limit} bytes) and its size is not "
                                    "advertised; refused")
            partial.touched = True
            sink.write(chunk)  # first: the hashes and the count only ever cover bytes in the sink
            for h in checkers.values():
                h.update(chunk)
            partial.total += len(chunk)

        self.transport.pump(response, take, decode=False, deadline=deadline, what=what, chunk_size=FILE_CHUNK)
        total = partial.total
        if size is not None and total != size:
            raise Transient(f"body cut short: {total} of {size} bytes")
        for algo, h in checkers.items():
            expected = hashes.get(algo)
            if expected is not None and h.hexdigest() != expected:
                advertised = expected if expected.isalnum() else f"'{shown(expected, 130)}'"
                raise HashMismatch(
                    f"{what}: {algo} {h.hexdigest()} does not match the advertised {advertised}")
        return Digest(sha256.hexdigest(), total)

    # ------------------------------------------------------------ provenance

    def fetch_provenance(self, url: str, filename: str) -> bytes:
        """A file's PEP 740 provenance object, capped at ``max-page-size``; NotFound on a 404.

        Its URL may be on any host ``download-hosts`` allows (PyPI serves it from
        ``/integrity/`` on the index host), so redirects may go there too.
        """
        what = f"provenance of {shown(filename, 120)}"

        def once() -> bytes:
            deadline = self.transport.deadline()
            response = self.transport.send(
                "GET", url, headers={"Accept": PROVENANCE_ACCEPT}, same_host_only=False)
            if response.status_code == 404:
                response.close()
                raise NotFound(f"{what}: HTTP 404")
            if response.status_code != 200:
                response.close()
                raise UpstreamError(f"{what}: HTTP {response.status_code}")
            return self.transport.read_capped(response, self.max_page_bytes, what, deadline)

        return self.transport.with_retries(what, once)
