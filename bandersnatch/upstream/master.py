"""The only module that talks to the upstream: one requests session, retries, serial checks.

XML-RPC goes through the same session as pages and files, so it shares the
timeouts, the User-Agent and the keep-alive connection pool.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import io
import logging
import os
import platform
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.adapters
import requests.structures
import urllib3.exceptions

from .. import __version__
from ..config.network import Network, Proxy
from ..config.settings import DEFAULT_GLOBAL_TIMEOUT, DEFAULT_MAX_FILE_BYTES
from ..errors import (
    Cancelled,
    HashMismatch,
    NotFound,
    NoXmlRpc,
    StalePage,
    StorageError,
    UnsafePath,
    UpstreamError,
    UpstreamUnreachable,
    shown,
)
from ..formats.layout import UrlPolicy
from ..formats.serial import MAX_SERIAL, is_serial
from ..formats.simple import ACCEPT, JSON_CONTENT_TYPE, ProjectPage, parse_html_page, parse_json_page
from .rpcstream import describe, iter_items

logger = logging.getLogger(__name__)

# PyPI caps one changelog_since_serial answer at this many rows; a full page means "ask again".
CHANGELOG_PAGE = 50_000
CHANGELOG_PAUSE = 1.0  # seconds between paged calls: 3,600 an hour is PyPI's XML-RPC limit
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# How a server without XML-RPC answers a POST to /pypi: a plain web server or a PEP 691 index
# (404, 405, 501), or the nginx of a mirror with json = true (403: /pypi is redirected to the
# /pypi/ directory of its JSON API copy, which takes no POST).  5xx and no answer are trouble.
NO_XMLRPC_STATUSES = frozenset({403, 404, 405, 501})
# PyPI's integrity API answers in its own media type; any JSON will do for a provenance object.
PROVENANCE_ACCEPT = "application/vnd.pypi.integrity.v1+json, application/json;q=0.9"
MAX_REDIRECTS = 3
CHUNK = 1 << 16
T = TypeVar("T")
# Hashes a page may name that we can check: fixed-length ones.  shake_128/shake_256 need a length
# for hexdigest() that nothing on a page gives; like any algorithm we do not know, they are ignored.
VERIFIABLE = frozenset(a for a in hashlib.algorithms_guaranteed if hashlib.new(a).digest_size)

USER_AGENT = (
    f"bandersnatch/{__version__} (PyPI mirror client; {platform.python_implementation()}/"
    f"{platform.python_version()}; requests/{requests.__version__})"
)


def _declared_over(content_length: str, limit: int) -> bool:
    """A Content-Length that announces more than ``limit`` bytes.

    Checked as ASCII digits of bounded length before ``int``: str.isdigit accepts "²", and
    int() refuses more than 4,300 digits, both with a ValueError no caller expects.
    """
    return _CONTENT_LENGTH.fullmatch(content_length) is not None and (
        len(content_length) > 18 or int(content_length) > limit)


_CONTENT_LENGTH = re.compile(r"[0-9]+")


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


class _Transient(Exception):
    """A failure worth another try (5xx, 429, reset, timeout, short body)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _TooManyRedirects(UpstreamError):
    """A redirect chain longer than ``MAX_REDIRECTS`` (a loop, most likely)."""


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


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_PROXY_AUTH = ("authentication required (HTTP 407); put the right credentials in the proxy URL: "
               "http://user:password@host:port")
_CA_HINT = ("if TLS is inspected on the way, set REQUESTS_CA_BUNDLE or SSL_CERT_FILE to a bundle "
            "holding the inspecting CA")
_CA_IN_USE_HINT = "checked against {bundle} (from {source}); if TLS is inspected on the way, add its CA there"
_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})\b ?(.*)")
_SSL_TEXT = re.compile(r"\] (.+?) \(_ssl\.c")


def _where(url: str, proxy: Proxy | None) -> str:
    """``host:port`` of ``url``, and the proxy's when one is used (never credentials)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    return f"{host} via proxy {proxy.address}" if proxy else host


def _proxy_where(url: str, proxy: Proxy) -> str:
    """For failures of the proxy itself: it comes first."""
    return f"proxy {proxy.address} (for {_where(url, None)})"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps: requests and urllib3 nest the real cause several levels down."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for attribute in ("reason", "original_error"):
            inner = getattr(current, attribute, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        todo += [current.__cause__, current.__context__]
    return found


def _why_no_answer(exc: BaseException, url: str, proxy: Proxy | None, timeout: float,
                   network: Network) -> str:
    """One line naming who did not answer and why: the cause an operator can act on."""
    causes = _causes(exc)
    where = _where(url, proxy)
    if proxy is not None and any(isinstance(e, urllib3.exceptions.ProxyError) for e in causes):
        where = _proxy_where(url, proxy)
    return f"{where}: {_cause(causes, timeout, network)}"


def _cause(causes: list[BaseException], timeout: float, network: Network) -> str:
    def first(kind: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException | None:
        return next((e for e in causes if isinstance(e, kind)), None)

    if isinstance(e := first(ssl.SSLCertVerificationError), ssl.SSLCertVerificationError):
        hint = (_CA_IN_USE_HINT.format(bundle=network.ca_bundle, source=network.ca_source)
                if network.ca_bundle else _CA_HINT)
        return f"certificate verify failed ({e.verify_message}); {hint}"
    if (e := first(ssl.SSLError)) is not None:
        text = _SSL_TEXT.search(str(e))
        return f"TLS handshake failed ({shown(text.group(1) if text else str(e), 100)})"
    if isinstance(e := first(socket.gaierror), socket.gaierror):
        return f"name not resolved ({e.strerror or e})"
    if first(ConnectionRefusedError) is not None:
        return "connection refused"
    for e in causes:
        tunnel = _TUNNEL_FAILED.match(str(e)) if type(e) is OSError else None
        if tunnel is not None:
            if tunnel.group(1) == "407":
                return _PROXY_AUTH
            status = f"{tunnel.group(1)} {shown(tunnel.group(2), 60)}".strip()
            return f"refused the tunnel (HTTP {status})"
    if first((TimeoutError, urllib3.exceptions.TimeoutError, requests.Timeout)) is not None:
        return f"timed out (no answer within {timeout:g} s)"
    if first(ConnectionResetError) is not None:
        return "connection reset"
    if first(http.client.RemoteDisconnected) is not None:
        return "connection closed without an answer"
    if isinstance(e := first(OSError), OSError) and e.errno:
        return os.strerror(e.errno).lower()
    innermost = causes[-1]
    return f"{type(innermost).__name__}: {shown(str(innermost), 100)}"


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
    ) -> None:
        self.url = url.rstrip("/")
        self.changelog_page = changelog_page
        self.timeout = timeout
        self.global_timeout = global_timeout
        self.max_file_bytes = max_file_bytes
        self.max_page_bytes = max_page_bytes
        # PyPI's full listing is tens of megabytes of XML: allow RPC answers more room.
        self.max_rpc_bytes = max_page_bytes * 8
        # Where XML-RPC answers are spooled: the mirror's staging area, not /tmp, which may be RAM.
        self.spool_dir = spool_dir
        self.policy = policy
        self.attempts = attempts
        self.backoff = backoff
        # Set by cancel(): requests in flight end at once and no new one starts.
        self.cancelled = threading.Event()
        # Set with it, or once the upstream is unreachable: ends every back-off early.
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._lock = threading.Lock()  # guards the two below
        self._reading: set[requests.Response] = set()  # responses whose bodies are being read
        self._failures_in_row = 0  # requests that got no answer at all, since the last one that did
        # That many requests in a row without an answer mean the upstream went away: stop the run
        # rather than fail every pending project after its own retries. It is the whole retry budget
        # of every request slot (one outage seen by all of them), and at least 10, which a flaky
        # link does not reach: any answer in between, even an error status, starts the count again.
        self.unreachable_after = max(10, attempts * workers)
        self._unreachable: str | None = None
        self._slots = threading.BoundedSemaphore(workers)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # trust_env would re-read proxies and CA from os.environ on every request and send
        # ~/.netrc credentials: the caller read the environment once into ``network`` instead.
        self.session.trust_env = False
        self.network = network or Network()
        self.session.verify = self.network.ca_bundle or True
        for line in self.network.describe():
            logger.debug("%s", line)  # every cron run: not worth an INFO line; errors name them
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=workers + 2, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def close(self) -> None:
        self.session.close()

    def cancel(self) -> None:
        """Abandon every request: bodies being read end now, and no request starts after this.

        Called from another thread when the run is interrupted.  Waiting for the
        next byte is not enough: a file trickling one byte a second never times out.
        Shutting the socket down wakes the reader at once.
        """
        self.cancelled.set()
        self._stopping.set()
        with self._lock:
            reading = list(self._reading)
        for response in reading:
            with contextlib.suppress(ValueError, RuntimeError, OSError):  # finished or released meanwhile
                response.raw.shutdown()

    # ------------------------------------------------------------ plumbing

    def _sleep_before_retry(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(retry_after, 60.0)
        else:
            delay = min(self.backoff * 2**attempt, 30.0) * random.uniform(0.5, 1.5)
        self._sleep(delay)

    def _check_usable(self) -> None:
        """Raise instead of sending a request the run no longer wants."""
        if self.cancelled.is_set():
            raise Cancelled("request abandoned: the run was interrupted")
        if self._unreachable is not None:
            raise UpstreamUnreachable(self._unreachable)

    def _answered(self) -> None:
        with self._lock:
            self._failures_in_row = 0

    def _not_answered(self, why: str) -> None:
        """Count a request that got no answer at all; past the limit, the upstream is unreachable."""
        with self._lock:
            self._failures_in_row += 1
            if self._failures_in_row >= self.unreachable_after and self._unreachable is None:
                self._unreachable = (
                    f"upstream {urlsplit(self.url).netloc} unreachable: {self._failures_in_row} requests in "
                    f"a row got no answer (last: {why}); stopping the run early"
                )
                self._stopping.set()
        self._check_usable()

    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(self.attempts):
            self._check_usable()
            try:
                # One slot per request in flight: never more connections than `workers`,
                # and no slot is held while backing off.
                with self._slots:
                    return call()
            except _Transient as exc:
                if attempt + 1 == self.attempts:
                    raise UpstreamError(f"{what}: {exc} (gave up after {self.attempts} tries)") from None
                logger.debug("%s: %s; retrying", what, exc)
                self._sleep_before_retry(attempt, exc.retry_after)
        raise AssertionError("unreachable")

    def _send(
        self, method: str, url: str, *, headers: Mapping[str, str], data: bytes | None = None,
        same_host_only: bool = True,
    ) -> requests.Response:
        """One request, following a few redirects only where policy allows, body not yet read."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_usable()
            proxy = self.network.proxy_for(url)
            try:
                response = self.session.send(
                    self._prepare(method, url, headers, data), timeout=self.timeout,
                    stream=True, allow_redirects=False,
                    proxies={urlsplit(url).scheme: proxy.url} if proxy else {},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                # Refused, reset before any answer, DNS, TLS, connect timeout: nobody answered.
                # A read timeout too: connected, then no answer within `timeout` (a load
                # balancer whose backends are gone accepts every connection and never answers).
                why = _why_no_answer(exc, url, proxy, self.timeout, self.network)
                self._not_answered(why)
                raise _Transient(why) from None
            except (requests.RequestException, ValueError) as exc:
                # requests parses a Location header even when not following it: a malformed one
                # (or a URL requests refuses) is the upstream's fault, not a bug of ours.
                raise UpstreamError(
                    f"{shown(url)}: unusable request or answer: {type(exc).__name__}: {shown(str(exc), 100)}"
                ) from None
            if response.status_code == 407 and proxy is not None:
                # The proxy's answer, not the upstream's (plain http; for https it fails the tunnel).
                response.close()
                why = f"{_proxy_where(url, proxy)}: {_PROXY_AUTH}"
                self._not_answered(why)
                raise _Transient(why)
            self._answered()
            if response.status_code in RETRY_STATUSES:
                response.close()
                raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
            if response.is_redirect and "Location" in response.headers:
                response.close()
                url = self._redirect_target(url, response.headers["Location"], same_host_only)
                continue
            return response
        raise _TooManyRedirects(f"{shown(url)}: too many redirects")

    def _prepare(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
                 ) -> requests.PreparedRequest:
        """The request ``session.request`` would send, prepared without its generic merging.

        ``Session.prepare_request`` and ``merge_environment_settings`` merge params, auth,
        hooks, cookies, proxies and TLS settings through code that checks each value against
        runtime protocols: about a third of a page request's CPU.  This session sets only
        headers (and keeps any cookies an upstream sets), ``trust_env`` is off, ``_send``
        passes the proxies itself and ``session.send`` takes the session's CA settings, so
        the merge is the headers' alone.
        """
        merged = requests.structures.CaseInsensitiveDict(self.session.headers)
        merged.update(headers)
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=merged, data=data, cookies=self.session.cookies)
        return prepared

    def _redirect_target(self, url: str, location: str, same_host_only: bool) -> str:
        try:
            target = urljoin(url, location)
            old, new = urlsplit(url), urlsplit(target)
        except ValueError:
            where = shown(urlsplit(url).netloc)
            raise UnsafePath(f"refusing redirect from {where} to a malformed URL") from None
        scheme_ok = new.scheme == old.scheme or (new.scheme == "https" and old.scheme == "http")
        host_ok = new.netloc.lower() == old.netloc.lower() or (
            not same_host_only and new.netloc.lower() in self.policy.hosts
        )
        if not (scheme_ok and host_ok) or new.username or new.password:
            # Never log a user:password@ part.
            where = shown(new.netloc.rpartition("@")[2], 100)
            old_host, scheme = shown(old.netloc), shown(new.scheme, 20)
            raise UnsafePath(f"refusing redirect from {old_host} to {scheme}://{where}")
        return target

    def _deadline(self) -> float:
        """When a request started now must be over, body included (``global-timeout``)."""
        return time.monotonic() + self.global_timeout

    def _pump(self, response: requests.Response, take: Callable[[bytes], None], *, decode: bool,
              deadline: float, what: str) -> None:
        """Hand the body to ``take`` piece by piece as it arrives; always closes ``response``.

        ``read1`` returns whatever has arrived instead of waiting for a full
        chunk, so the deadline and the cancel flag are checked at least once per
        ``timeout`` however slowly the bytes come.  ``decode`` undoes a
        Content-Encoding (pages); files are taken exactly as sent.
        """
        with self._lock:
            self._reading.add(response)
        try:
            self._check_usable()  # cancel() may have run before the response was registered
            while True:
                try:
                    chunk = response.raw.read1(CHUNK, decode_content=decode)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    self._check_usable()
                    raise _Transient(f"body cut short ({type(exc).__name__})") from None
                # After cancel() a shut-down socket reads as the end of the body: never trust it.
                self._check_usable()
                if not chunk:
                    return
                if time.monotonic() > deadline:
                    raise UpstreamError(
                        f"{what}: not complete after global-timeout ({self.global_timeout:g} s); abandoned")
                take(chunk)
        finally:
            with self._lock:
                self._reading.discard(response)
            response.close()

    def _read_capped(self, response: requests.Response, limit: int, what: str, deadline: float) -> bytes:
        buffer = io.BytesIO()
        self._copy_capped(response, buffer, limit, what, deadline)
        return buffer.getvalue()

    def _copy_capped(self, response: requests.Response, sink: BinaryIO, limit: int, what: str,
                     deadline: float) -> None:
        """The (decoded) body into ``sink``, refusing more than ``limit`` bytes (declared or sent)."""
        declared = response.headers.get("Content-Length")
        if declared and _declared_over(declared, limit):
            response.close()
            raise UpstreamError(f"{what}: answer of {shown(declared, 40)} bytes exceeds the limit of {limit}")
        total = 0

        def take(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)
            if total > limit:
                raise UpstreamError(f"{what}: answer exceeds the limit of {limit} bytes")
            try:
                sink.write(chunk)
            except OSError as exc:  # the spool file on a full disk
                raise StorageError(f"{what}: cannot spool the answer: {exc.strerror or exc}") from exc

        self._pump(response, take, decode=True, deadline=deadline, what=what)
        try:
            sink.flush()
        except OSError as exc:
            raise StorageError(f"{what}: cannot spool the answer: {exc.strerror or exc}") from exc

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
        with self._spool(what) as spool:

            def call() -> None:
                spool.seek(0)
                spool.truncate()
                deadline = self._deadline()
                response = self._post_rpc(endpoint, body, what)
                self._copy_capped(response, spool, self.max_rpc_bytes, what, deadline)

            self._with_retries(what, call)
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
            response = self._send("POST", endpoint, headers={"Content-Type": "text/xml"}, data=body)
        except (UnsafePath, _TooManyRedirects) as exc:
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

    @contextlib.contextmanager
    def _spool(self, what: str) -> Iterator[BinaryIO]:
        try:
            spool = tempfile.TemporaryFile(dir=self.spool_dir)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StorageError(f"{what}: cannot create a spool file in {self.spool_dir}: "
                               f"{exc.strerror or exc}") from exc
        try:
            yield spool
        finally:
            with contextlib.suppress(OSError):  # a full disk fails close()'s flush again; nothing to keep
                spool.close()

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
            self._sleep(CHANGELOG_PAUSE)
            self._check_usable()

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
        with self._spool(what) as spool:

            def call() -> Listing | None:
                spool.seek(0)
                spool.truncate()
                deadline = self._deadline()
                response = self._send("GET", url, headers=headers)
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
                self._copy_capped(response, spool, self.max_rpc_bytes, what, deadline)
                return Listing(spool, found)

            answer = self._with_retries(what, call)
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
            body = self._with_retries(f"page {name}", functools.partial(self._get_page, url + query, name))
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
            self._sleep_before_retry(attempt, None)
        raise StalePage(f"page {name}: upstream serves serial {seen}, older than {min_serial} (stale CDN?)")

    def _get_page(self, url: str, name: str) -> _PageBody | None:
        deadline = self._deadline()
        response = self._send("GET", url, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            response.close()
            raise UpstreamError(f"page {name}: HTTP {response.status_code}")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        header_serial = response.headers.get("X-PyPI-Last-Serial", "").strip()
        data = self._read_capped(response, self.max_page_bytes, f"page {name}", deadline)
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
        """
        what = f"file {shown(url.rsplit('/', 1)[-1], 120)}"
        partial = _Partial()
        limit = _Limit(self.max_file_bytes, "max-file-size") if cap is None else _Limit(cap, "max-page-size")
        return self._with_retries(what, lambda: self._download_once(url, sink, hashes, size, what, partial,
                                                                    limit))

    def _download_once(
        self, url: str, sink: BinaryIO, hashes: Mapping[str, str], size: int | None, what: str,
        partial: _Partial, cap: _Limit,
    ) -> Digest:
        deadline = self._deadline()
        # identity: the bytes as stored upstream.  A server may encode anyway (a .tar.gz sent
        # with Content-Encoding: gzip is a classic): its body is still taken exactly as sent.
        headers = {"Accept-Encoding": "identity"}
        if partial.resumable:
            headers["Range"] = f"bytes={partial.total}-"
            headers["If-Range"] = partial.etag or ""
        response = self._send("GET", url, headers=headers, same_host_only=False)
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
        if size is None and _declared_over(declared, limit):
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

        self._pump(response, take, decode=False, deadline=deadline, what=what)
        total = partial.total
        if size is not None and total != size:
            raise _Transient(f"body cut short: {total} of {size} bytes")
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
            deadline = self._deadline()
            response = self._send("GET", url, headers={"Accept": PROVENANCE_ACCEPT}, same_host_only=False)
            if response.status_code == 404:
                response.close()
                raise NotFound(f"{what}: HTTP 404")
            if response.status_code != 200:
                response.close()
                raise UpstreamError(f"{what}: HTTP {response.status_code}")
            return self._read_capped(response, self.max_page_bytes, what, deadline)

        return self._with_retries(what, once)
