"""Serve a mirror's ``web/`` directory the way the documented nginx config would.

End-to-end tests point pip (or a plain HTTP client) at the mirror through
this server, so they exercise what users actually get: ``index.v1_json``
when the client asks for PEP 691 JSON, ``index.html`` otherwise, and a 301
that adds the trailing slash to directory URLs.  Stdlib only, 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from support.loopback import BaseHandler, LocalHTTPServer
from support.pypirecords import SIMPLE_JSON, Response, choose_simple_format


@dataclass
class StaticRequest:
    """One request the static server saw."""

    method: str
    path: str  # as sent, query included
    user_agent: str | None
    status: int = 0
    content_type: str = ""


class WebURL(str):
    """The base URL (a plain ``str``) that also carries the server's request log.

    ``serve_web`` yields this so ``with serve_web(d) as url`` reads naturally
    while ``url.requests`` still lets a test count what the client fetched.
    """

    requests: list[StaticRequest]
    server: StaticServer


def content_type_for(path: Path) -> str:
    """The Content-Type nginx would be configured to send for a mirror file."""
    name = path.name
    if name == "index.v1_json":
        return SIMPLE_JSON
    if name.endswith(".html"):
        return "text/html; charset=utf-8"
    if name == "json" or name.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


class StaticServer:
    """A static file server rooted at ``web_dir`` on 127.0.0.1:PORT."""

    def __init__(self, web_dir: str | Path) -> None:
        self.root = Path(web_dir).resolve()
        self.requests: list[StaticRequest] = []
        self.lock = threading.Lock()
        self._server: LocalHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        """Listen on an OS-chosen port; returns the base URL."""
        self._server = LocalHTTPServer(_StaticHandler, context=self)
        self._server.serve_in_thread()
        self.url = self._server.base_url
        return self.url

    def stop(self) -> None:
        """Stop and cut open keep-alive connections."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def resolve(self, url_path: str) -> Path | None:
        """Map a percent-decoded URL path to a file under the root, or None.

        Refuses ``..``, NUL, backslashes and anything resolving (through
        symlinks too) outside the root: a mirror must never expose more than
        ``web/``.
        """
        if "\x00" in url_path or "\\" in url_path:
            return None
        parts = [p for p in url_path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        candidate = self.root.joinpath(*parts).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            return None
        return candidate

    def respond(self, raw_path: str, accept: str | None, if_none_match: str | None = None) -> Response:
        """Pick the file (or redirect / 404) for one request; 304 when ``if_none_match`` names its ETag."""
        parts = urlsplit(raw_path)
        try:
            url_path = unquote(parts.path, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            return _text(400, "Bad Request")
        target = self.resolve(url_path)
        if target is None:
            return _text(404 if ".." not in url_path else 403, "Not Found")
        if target.is_dir():
            if not url_path.endswith("/"):
                location = quote(url_path + "/") + (f"?{parts.query}" if parts.query else "")
                return Response(301, {"Location": location, "Content-Type": "text/plain"}, b"")
            target = _directory_index(target, accept)
            if target is None:
                return _text(404, "Not Found")
        if not target.is_file():
            return _text(404, "Not Found")
        info = target.stat()
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'  # nginx's: mtime and size
        headers = {"Content-Type": content_type_for(target), "ETag": etag,
                   "Last-Modified": email.utils.formatdate(info.st_mtime, usegmt=True)}
        if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(304, {"ETag": etag, "Last-Modified": headers["Last-Modified"]}, b"")
        return Response(200, headers, target.read_bytes())


def _directory_index(directory: Path, accept: str | None) -> Path | None:
    """``index.v1_json`` when JSON is preferred and present, else ``index.html``."""
    json_index = directory / "index.v1_json"
    html_index = directory / "index.html"
    if choose_simple_format(accept) == SIMPLE_JSON and json_index.is_file():
        return json_index
    if html_index.is_file():
        return html_index
    return None


def _text(status: int, message: str) -> Response:
    return Response(status, {"Content-Type": "text/plain; charset=utf-8"}, (message + "\n").encode())


class _StaticHandler(BaseHandler):
    """GET/HEAD only; everything else is 405."""

    @property
    def static(self) -> StaticServer:
        return self.server.context  # type: ignore[no-any-return]

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_POST(self) -> None:  # noqa: N802
        self.read_body()
        self.send_body(_text(405, "Method Not Allowed"))

    def _serve(self, head: bool) -> None:
        record = StaticRequest(self.command, self.path, self.headers.get("User-Agent"))
        with self.static.lock:
            self.static.requests.append(record)
        headers = self.headers
        response = self.static.respond(self.path, headers.get("Accept"), headers.get("If-None-Match"))
        record.status = response.status
        record.content_type = response.headers.get("Content-Type", "")
        self.send_body(response, head=head)


@contextlib.contextmanager
def serve_web(web_dir: str | Path) -> Iterator[WebURL]:
    """Serve ``web_dir`` for the duration of the block; yields the base URL.

    The yielded URL is a ``str`` with ``.requests`` (the request log) and
    ``.server`` (the :class:`StaticServer`) attached.
    """
    server = StaticServer(web_dir)
    url = WebURL(server.start())
    url.requests = server.requests
    url.server = server
    try:
        yield url
    finally:
        server.stop()
