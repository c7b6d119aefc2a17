"""Why a request got no answer, in one line an operator can act on.

requests and urllib3 wrap the real cause (a refused connection, a certificate, a proxy
that wants credentials) several levels down; this module digs it out and names who did
not answer.  Pure: it reads exceptions and settings, sends nothing.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ..config.network import Network, Proxy
from ..errors import shown

PROXY_AUTH = ("authentication required (HTTP 407); put the right credentials in the proxy URL: "
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


def proxy_where(url: str, proxy: Proxy) -> str:
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


def why_no_answer(exc: BaseException, url: str, proxy: Proxy | None, timeout: float,
                   network: Network) -> str:
    """One line naming who did not answer and why: the cause an operator can act on."""
    causes = _causes(exc)
    where = _where(url, proxy)
    if proxy is not None and any(isinstance(e, urllib3.exceptions.ProxyError) for e in causes):
        where = proxy_where(url, proxy)
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
                return PROXY_AUTH
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
