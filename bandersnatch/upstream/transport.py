"""How a request is sent and its answer read safely: the one requests session of a run.

What ``Master`` asks for (a page, a listing, an XML-RPC call, a file) is its business;
everything about getting bytes over HTTP is this module's: the session with its
User-Agent and TLS/proxy settings, one slot per request in flight, retries with
back-off, redirects only where policy allows, the count of requests that got no
answer ("upstream unreachable"), bodies read against a deadline and a cap, spooling,
and cancellation.  As requests itself keeps policy (``sessions.py``) apart from
transport (``adapters.py``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import requests.structures
import urllib3.exceptions

from .. import __version__
from ..config.network import Network
from ..config.settings import DEFAULT_GLOBAL_TIMEOUT
from ..errors import Cancelled, NoAnswer, StorageError, UnsafePath, UpstreamError, UpstreamUnreachable, shown
from ..formats.layout import UrlPolicy
from .diagnosis import PROXY_AUTH, proxy_where, why_no_answer

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 3
CHUNK = 1 << 16
# Release files are read in pieces of up to 256 KiB: each ``read1`` is one recv into a new bytes
# object, then one sha256 update and one write of it, with no further copy.  At 64 KiB the
# Python-level loop per piece made reading the socket cost 0.53 s of CPU per GB; from 128 KiB
# on it is 0.30-0.37 s/GB whatever the size (measured 128 KiB to 2 MiB, issue 21's closing
# note).  256 KiB is past that knee and keeps the buffer each download thread allocates per
# read small: read1 allocates the whole piece before the recv, even for a 20 KiB wheel.
# read1 returns what has arrived, so a slow link gives smaller pieces and the deadline is
# still checked as often as before.
FILE_CHUNK = 1 << 18
T = TypeVar("T")

USER_AGENT = (
    f"bandersnatch/{__version__} (PyPI mirror client; {platform.python_implementation()}/"
    f"{platform.python_version()}; requests/{requests.__version__})"
)


def declared_over(content_length: str, limit: int) -> bool:
    """A Content-Length that announces more than ``limit`` bytes.

    Checked as ASCII digits of bounded length before ``int``: str.isdigit accepts "²", and
    int() refuses more than 4,300 digits, both with a ValueError no caller expects.
    """
    return _CONTENT_LENGTH.fullmatch(content_length) is not None and (
        len(content_length) > 18 or int(content_length) > limit)


_CONTENT_LENGTH = re.compile(r"[0-9]+")


class Transient(Exception):
    """A failure worth another try (5xx, 429, reset, timeout, short body)."""

    def __init__(self, message: str, retry_after: float | None = None, *, answered: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.answered = answered  # False: nobody answered at all (refused, DNS, timeout, a proxy's 407)


class TooManyRedirects(UpstreamError):
    """A redirect chain longer than ``MAX_REDIRECTS`` (a loop, most likely)."""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Transport:
    """One session to the master and the hosts policy allows, shared by every request of a run."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        workers: int,
        policy: UrlPolicy,
        spool_dir: Path,
        global_timeout: float = DEFAULT_GLOBAL_TIMEOUT,
        attempts: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], object] | None = None,
        network: Network | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.global_timeout = global_timeout
        # Where answers are spooled: the mirror's staging area, not /tmp, which may be RAM.
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

    def sleep_before_retry(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            delay = min(retry_after, 60.0)
        else:
            delay = min(self.backoff * 2**attempt, 30.0) * random.uniform(0.5, 1.5)
        self._sleep(delay)

    def pause(self, seconds: float) -> None:
        """Wait between calls a rate limit spaces out; cut short when the run stops."""
        self._sleep(seconds)

    def check_usable(self) -> None:
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
        self.check_usable()

    def with_retries(self, what: str, call: Callable[[], T], *, attempts: int | None = None) -> T:
        """``call`` in a request slot, tried again after a Transient; ``attempts``: fewer tries than
        the run's (a download mirror with a fallback gets one: upstream is its retry)."""
        tries = self.attempts if attempts is None else max(1, min(attempts, self.attempts))
        for attempt in range(tries):
            self.check_usable()
            try:
                # One slot per request in flight: never more connections than `workers`,
                # and no slot is held while backing off.
                with self._slots:
                    return call()
            except Transient as exc:
                if attempt + 1 == tries:
                    kind = UpstreamError if exc.answered else NoAnswer
                    raise kind(f"{what}: {exc} (gave up after {tries} tries)") from None
                logger.debug("%s: %s; retrying", what, exc)
                self.sleep_before_retry(attempt, exc.retry_after)
        raise AssertionError("unreachable")

    def send(
        self, method: str, url: str, *, headers: Mapping[str, str], data: bytes | None = None,
        same_host_only: bool = True, counted: bool = True,
    ) -> requests.Response:
        """One request, following a few redirects only where policy allows, body not yet read.

        ``counted`` False: whether it gets an answer says nothing about the master (a request
        to the download mirror), so it neither adds to nor clears "upstream unreachable".
        """
        for _ in range(MAX_REDIRECTS + 1):
            self.check_usable()
            proxy = self.network.proxy_for(url)
            try:
                response = self.session.send(
                    self.prepare(method, url, headers, data), timeout=self.timeout,
                    stream=True, allow_redirects=False,
                    proxies={urlsplit(url).scheme: proxy.url} if proxy else {},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                # Refused, reset before any answer, DNS, TLS, connect timeout: nobody answered.
                # A read timeout too: connected, then no answer within `timeout` (a load
                # balancer whose backends are gone accepts every connection and never answers).
                why = why_no_answer(exc, url, proxy, self.timeout, self.network)
                if counted:
                    self._not_answered(why)
                raise Transient(why, answered=False) from None
            except (requests.RequestException, ValueError) as exc:
                # requests parses a Location header even when not following it: a malformed one
                # (or a URL requests refuses) is the upstream's fault, not a bug of ours.
                raise UpstreamError(
                    f"{shown(url)}: unusable request or answer: {type(exc).__name__}: {shown(str(exc), 100)}"
                ) from None
            if response.status_code == 407 and proxy is not None:
                # The proxy's answer, not the upstream's (plain http; for https it fails the tunnel).
                response.close()
                why = f"{proxy_where(url, proxy)}: {PROXY_AUTH}"
                if counted:
                    self._not_answered(why)
                raise Transient(why, answered=False)
            if counted:
                self._answered()
            if response.status_code in RETRY_STATUSES:
                response.close()
                raise Transient(f"HTTP {response.status_code}", _retry_after(response))
            if response.is_redirect and "Location" in response.headers:
                response.close()
                url = self._redirect_target(url, response.headers["Location"], same_host_only)
                continue
            return response
        raise TooManyRedirects(f"{shown(url)}: too many redirects")

    def prepare(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
                ) -> requests.PreparedRequest:
        """The request ``session.request`` would send, prepared without its generic merging.

        ``Session.prepare_request`` and ``merge_environment_settings`` merge params, auth,
        hooks, cookies, proxies and TLS settings through code that checks each value against
        runtime protocols: about a third of a page request's CPU.  This session sets only
        headers (and keeps any cookies an upstream sets), ``trust_env`` is off, ``send``
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

    def deadline(self) -> float:
        """When a request started now must be over, body included (``global-timeout``)."""
        return time.monotonic() + self.global_timeout

    def pump(self, response: requests.Response, take: Callable[[bytes], None], *, decode: bool,
              deadline: float, what: str, chunk_size: int = CHUNK) -> None:
        """Hand the body to ``take`` piece by piece as it arrives; always closes ``response``.

        ``read1`` returns whatever has arrived instead of waiting for a full
        chunk, so the deadline and the cancel flag are checked at least once per
        ``timeout`` however slowly the bytes come.  ``decode`` undoes a
        Content-Encoding (pages); files are taken exactly as sent.
        """
        with self._lock:
            self._reading.add(response)
        try:
            self.check_usable()  # cancel() may have run before the response was registered
            while True:
                try:
                    chunk = response.raw.read1(chunk_size, decode_content=decode)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    self.check_usable()
                    raise Transient(f"body cut short ({type(exc).__name__})") from None
                # After cancel() a shut-down socket reads as the end of the body: never trust it.
                self.check_usable()
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

    def read_capped(self, response: requests.Response, limit: int, what: str, deadline: float) -> bytes:
        buffer = io.BytesIO()
        self.copy_capped(response, buffer, limit, what, deadline)
        return buffer.getvalue()

    def copy_capped(self, response: requests.Response, sink: BinaryIO, limit: int, what: str,
                     deadline: float) -> None:
        """The (decoded) body into ``sink``, refusing more than ``limit`` bytes (declared or sent)."""
        declared = response.headers.get("Content-Length")
        if declared and declared_over(declared, limit):
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

        self.pump(response, take, decode=True, deadline=deadline, what=what)
        try:
            sink.flush()
        except OSError as exc:
            raise StorageError(f"{what}: cannot spool the answer: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def spool(self, what: str) -> Iterator[BinaryIO]:
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
