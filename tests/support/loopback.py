"""A threading HTTP(S) server on 127.0.0.1 that can cut its connections, and the base handler
that writes a :class:`pypirecords.Response` with its faults (truncation, chunking, resets,
trickle). The fake PyPI, the static mirror server and the forward proxy stand on it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.pypirecords import Response, _kept


class LocalHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer bound to 127.0.0.1:0 that can cut its connections.

    ``stop()`` must also end idle keep-alive connections: otherwise their
    handler threads would keep answering a client after the test ended.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], context: Any = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.context = context
        self.tls = tls  # a server-side context: connections speak HTTPS
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` when serving TLS)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[Any, Any]:
        request, address = super().get_request()
        if self.tls is not None:
            # The handshake happens on the first read, in the handler's thread: a client
            # that never completes it cannot hold up the accepting loop.
            request = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        return request, address

    def serve_in_thread(self) -> threading.Thread:
        """Start serve_forever in a daemon thread; ``stop()`` joins it."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response are normal in fault tests: stay quiet."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop accepting, then shut every open connection down."""
        self.shutdown()
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that always sends a Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end eventually
    # Headers and body go out in separate writes; with Nagle on, the body
    # would wait for the client's delayed ACK (~40 ms per keep-alive request).
    disable_nagle_algorithm = True
    server: LocalHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging; tests inspect the request log instead."""

    def send_body(self, response: Response, *, head: bool = False, bandwidth: float | None = None) -> None:
        """Write status, headers and (maybe throttled, maybe truncated) body.

        A truncated response announces the full length and nothing else, like
        a connection reset mid-transfer; the socket is closed afterwards.
        """
        if response.reset:
            # SO_LINGER 0: closing sends an RST; the client gets no response at all.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if response.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(response.body) * response.repeat))
        self.end_headers()
        if head:
            return
        if response.chunked or response.repeat > 1:
            self._write_repeated(response)
            return
        body = response.body[: _kept(response)] if response.truncate else response.body
        self._write(body, bandwidth)
        if response.truncate:
            self.close_connection = True

    def _write_repeated(self, response: Response) -> None:
        """The body ``repeat`` times, as chunks when chunked; the client may hang up at any point."""
        if response.chunked:
            frame = f"{len(response.body):x}\r\n".encode() + response.body + b"\r\n"
        else:
            frame = response.body
        for _ in range(response.repeat):
            self.wfile.write(frame)
        if response.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, body: bytes, bandwidth: float | None) -> None:
        """Write the body, pacing it to ``bandwidth`` bytes/second when set."""
        if not bandwidth:
            self.wfile.write(body)
            return
        chunk = max(1, min(65536, int(bandwidth / 20)))
        start = time.monotonic()
        for offset in range(0, len(body), chunk):
            piece = body[offset : offset + chunk]
            self.wfile.write(piece)
            delay = start + (offset + len(piece)) / bandwidth - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def read_body(self) -> bytes:
        """Read the request body so the connection stays usable for keep-alive."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""
