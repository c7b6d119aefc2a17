"""A small HTTP forward proxy on 127.0.0.1, for testing that traffic goes through one.

It tunnels ``CONNECT host:port`` (how clients reach https:// URLs through a
proxy) and forwards plain requests whose target is an absolute ``http://``
URL, as a corporate proxy does.  It only ever connects to 127.0.0.1 or
localhost, so a misdirected test cannot send anything off the machine, and it
records what it carried so tests can tell that every request went through it.
"""

from __future__ import annotations

import base64
import http.client
import selectors
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from support.loopback import LocalHTTPServer

LOOPBACK = frozenset({"127.0.0.1", "localhost"})
# Headers that concern one hop only, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})


@dataclass(frozen=True)
class Carried:
    """One request the proxy was asked to carry."""

    method: str  # CONNECT, GET, POST, ...
    target: str  # host:port for CONNECT, the absolute URL otherwise
    status: int  # what the proxy answered (200 for a tunnel it opened)
    authorization: str | None  # the Proxy-Authorization header as received


class ForwardProxy:
    """The proxy: ``url`` once started; ``credentials`` makes it demand Basic authentication (407)."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.carried: list[Carried] = []
        self.upstream_ports: set[int] = set()  # source ports of the connections it opened
        self._lock = threading.Lock()
        self._server: LocalHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        self._server = LocalHTTPServer(_ProxyHandler, context=self)
        self._server.serve_in_thread()
        self.url = self._server.base_url
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> ForwardProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def url_with(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@{self.address}"

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.carried]

    def _record(self, carried: Carried, port: int | None = None) -> None:
        with self._lock:
            self.carried.append(carried)
            if port is not None:
                self.upstream_ports.add(port)

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: LocalHTTPServer

    @property
    def proxy(self) -> ForwardProxy:
        return self.server.context  # type: ignore[no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: tests read ``carried`` instead."""

    def _answer(self, status: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _admit(self, target: str, host: str | None) -> bool:
        """Authentication and the loopback-only rule; answers and records a refusal."""
        authorization = self.headers.get("Proxy-Authorization")
        refusal = None
        if not self.proxy._authorized(authorization):
            refusal = 407
            self._answer(407, {"Proxy-Authenticate": 'Basic realm="test proxy"'})
        elif host not in LOOPBACK:
            refusal = 403
            self._answer(403)
        if refusal is not None:
            self.proxy._record(Carried(self.command, target, refusal, authorization))
            return False
        return True

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib naming
        host, _, port = self.path.rpartition(":")
        if not self._admit(self.path, host):
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError):
            self.proxy._record(Carried("CONNECT", self.path, 502, self.headers.get("Proxy-Authorization")))
            self._answer(502)
            return
        self.proxy._record(Carried("CONNECT", self.path, 200, self.headers.get("Proxy-Authorization")),
                           upstream.getsockname()[1])
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream)

    def do_GET(self) -> None:  # noqa: N802
        self._forward()

    def do_HEAD(self) -> None:  # noqa: N802
        self._forward()

    def do_POST(self) -> None:  # noqa: N802
        self._forward()

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if parts.scheme != "http":
            self._answer(400)
            return
        if not self._admit(self.path, parts.hostname):
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(self.command, path or "/", body=body, headers=headers)
            self.proxy._record(Carried(self.command, self.path, 200, self.headers.get("Proxy-Authorization")),
                               connection.sock.getsockname()[1])
            response = connection.getresponse()
            data = response.read()
        except OSError:
            self._answer(502)
            return
        finally:
            connection.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length", "server", "date"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes or fails (or 30 s of silence)."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while ready := selector.select(timeout=30):
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return
