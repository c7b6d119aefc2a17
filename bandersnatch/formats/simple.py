"""Pure parsing and rendering of simple-repository pages.

PEP 503, 592, 629, 658/714, 691, 700, 740 (provenance), 792 (project status), 833 (HTML frozen at 1.4).

Bytes in, records out; records in, bytes out.  No network, no disk.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.etree
import lxml.html

from ..errors import UpstreamError, shown
from ..names import normalize
from .dists import file_version
from .layout import without_userinfo

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
# What we ask for: JSON first, HTML as a fallback for upstreams without PEP 691.
ACCEPT = f"{JSON_CONTENT_TYPE}, {HTML_CONTENT_TYPE};q=0.2, text/html;q=0.01"
API_VERSION = "1.4"  # our JSON pages (PEP 740 provenance is 1.3, PEP 792 project status 1.4)
# PEP 833 froze the HTML form: it says 1.4 whatever later JSON versions add.
HTML_API_VERSION = "1.4"
SUPPORTED_MAJOR = 1  # PEP 629: a page of a higher major version must be refused, not guessed at
QUARANTINED = "quarantined"

Yanked = bool | str
CoreMetadata = bool | Mapping[str, str]


@dataclass(frozen=True)
class DistFile:
    """One file a project page links to."""

    filename: str
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: Yanked = False
    core_metadata: CoreMetadata = False
    size: int | None = None
    upload_time: str | None = None
    provenance: str | None = None  # PEP 740: URL of the file's provenance object
    # Ours only: how the stored file looked when we verified it (size/mtime), under a private JSON key.
    on_disk: Mapping[str, int | str] | None = None


@dataclass(frozen=True)
class ProjectStatus:
    """PEP 792: active, archived, quarantined or deprecated (others are carried through as given)."""

    status: str
    reason: str | None = None

    @property
    def quarantined(self) -> bool:
        """A quarantined project offers no files (the index MUST NOT serve any)."""
        return self.status == QUARANTINED


@dataclass(frozen=True)
class ProjectPage:
    """A project's simple page, whichever format it came in."""

    name: str
    files: tuple[DistFile, ...]
    last_serial: int | None = None
    versions: tuple[str, ...] | None = None
    status: ProjectStatus | None = None  # None: the upstream gave none (PEP 792: active)


# ---------------------------------------------------------------- parsing


def _hashes_from(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UpstreamError(f"{where}: hashes must be an object")
    out: dict[str, str] = {}
    for algo, digest in value.items():
        if not isinstance(algo, str) or not isinstance(digest, str):
            raise UpstreamError(f"{where}: hash entries must be strings")
        out[algo.lower()] = digest.lower()
    return out


def _core_metadata_from_json(entry: Mapping[str, Any], where: str) -> CoreMetadata:
    # PEP 714 renamed dist-info-metadata to core-metadata; older servers send only the old key.
    value = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    if isinstance(value, bool):
        return value
    return _hashes_from(value, where)


def _optional_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UpstreamError(f"{where}: {key} must be a string")
    return value


# A base and a link of the plain shapes our pages and PyPI's use (``../../packages/xx/yy/<hash>/<file>``,
# a ``#sha256=`` fragment): joined by slicing strings.  urllib's general parser was most of the CPU
# of reading a page, and verify reads 1.5 million of them at PyPI's size.  Anything else (a dot
# segment, a query, an escape, another scheme) goes through urljoin, which gives the same result
# for these shapes (tests/unit/test_simple_urls.py holds them against it).
_PLAIN_SEGMENT = r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]*"
_PLAIN_BASE = re.compile(rf"(https?://[A-Za-z0-9.-]+(?::[0-9]+)?)/((?:{_PLAIN_SEGMENT}/)*)\Z")
_PLAIN_LINK = re.compile(rf"((?:\.\./)*)((?:{_PLAIN_SEGMENT}/)*{_PLAIN_SEGMENT}(?:#[A-Za-z0-9=_-]+)?)\Z")
_PLAIN_URL = re.compile(rf"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/{_PLAIN_SEGMENT})*/?(#[A-Za-z0-9=_-]+)?\Z")


def _join_plain(base: str, href: str) -> str | None:
    """``urljoin(base, href)`` when both have the plain shapes above; None otherwise."""
    b, h = _PLAIN_BASE.match(base), _PLAIN_LINK.match(href)
    if b is None or h is None:
        return None
    up = len(h[1]) // 3
    dirs = b[2].split("/")[:-1]  # the base's directories: its path ends with "/"
    if up > len(dirs):
        return None
    kept = dirs[:len(dirs) - up]
    return f"{b[1]}/{''.join(d + '/' for d in kept)}{h[2]}"


def _absolute(base: str, href: str, page_url: str) -> str:
    """``href`` resolved against ``base``; a URL urllib cannot parse (``http://[x``) is a malformed page."""
    joined = _join_plain(base, href)
    if joined is not None:
        return joined
    try:
        return urljoin(base, href)
    except ValueError as exc:
        shown_href = without_userinfo(href)[:200]
        raise UpstreamError(f"{page_url}: unusable URL {shown_href!r}: {shown(str(exc))}") from None


def check_api_version(value: object, page_url: str) -> None:
    """Refuse a page whose API major version is above the one we read (PEP 629); None is 1.0."""
    if value is None:
        return
    text = value if isinstance(value, str) else ""
    major, dot, minor = text.strip().partition(".")
    if not (major.isascii() and major.isdigit() and dot and minor.isascii() and minor.isdigit()):
        raise UpstreamError(f"{page_url}: API version {shown(repr(value), 40)} is not MAJOR.MINOR")
    significant = major.lstrip("0") or "0"
    if len(significant) > 1 or int(significant) > SUPPORTED_MAJOR:
        raise UpstreamError(f"{page_url}: Simple API version {shown(text.strip(), 40)} is not supported "
                            f"(this bandersnatch reads {SUPPORTED_MAJOR}.x); upgrade bandersnatch")


def _status_from_json(value: Any, page_url: str) -> ProjectStatus | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UpstreamError(f"{page_url}: project-status must be an object")
    status = value.get("status", "active")  # PEP 792: no explicit status is active
    reason = value.get("reason")
    if not isinstance(status, str) or not (reason is None or isinstance(reason, str)):
        raise UpstreamError(f"{page_url}: project-status status and reason must be strings")
    return ProjectStatus(status, reason)


def _file_from_json(entry: Any, page_url: str) -> DistFile:
    if not isinstance(entry, dict):
        raise UpstreamError(f"{page_url}: a file entry is not an object")
    filename = entry.get("filename")
    url = entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str):
        raise UpstreamError(f"{page_url}: a file entry lacks filename or url")
    where = f"{page_url} {filename!r}"
    yanked = entry.get("yanked", False)
    if not isinstance(yanked, bool | str):
        raise UpstreamError(f"{where}: yanked must be a boolean or a string")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise UpstreamError(f"{where}: size must be a non-negative integer")
    provenance = _optional_str(entry, "provenance", where)
    return DistFile(
        filename=filename,
        url=urldefrag(_absolute(page_url, url, page_url)).url,
        hashes=_hashes_from(entry.get("hashes", {}), where),
        requires_python=_optional_str(entry, "requires-python", where),
        yanked=yanked,
        core_metadata=_core_metadata_from_json(entry, where),
        size=size,
        upload_time=_optional_str(entry, "upload-time", where),
        provenance=_absolute(page_url, provenance, page_url) if provenance is not None else None,
    )


def _serial_from(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_json_page(data: bytes, page_url: str) -> ProjectPage:
    """Parse a PEP 691 JSON project page; file URLs come back absolute."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(f"{page_url}: malformed JSON page: {shown(str(exc))}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise UpstreamError(f"{page_url}: JSON page lacks a files list")
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    check_api_version(meta.get("api-version"), page_url)
    name = doc.get("name")
    if not isinstance(name, str):
        raise UpstreamError(f"{page_url}: JSON page lacks a name")
    versions = doc.get("versions")
    if versions is not None and not (
        isinstance(versions, list) and all(isinstance(v, str) for v in versions)
    ):
        raise UpstreamError(f"{page_url}: versions must be a list of strings")
    return ProjectPage(
        name=normalize(name),
        files=tuple(_file_from_json(e, page_url) for e in doc["files"]),
        last_serial=_serial_from(meta.get("_last-serial")),
        versions=tuple(versions) if versions is not None else None,
        status=_status_from_json(doc.get("project-status"), page_url),
    )


def _hash_from_fragment(url: str) -> tuple[str, dict[str, str]]:
    if _PLAIN_URL.match(url):  # urldefrag's parse and unparse would give it back as it is
        bare, _, fragment = url.partition("#")
    else:
        bare, fragment = urldefrag(url)
    algo, sep, digest = fragment.partition("=")
    return bare, ({algo.lower(): digest.lower()} if sep and algo and digest else {})


def _metadata_attr(value: str | None) -> CoreMetadata:
    if value is None:
        return False
    algo, sep, digest = value.partition("=")
    if sep and algo and digest:
        return {algo.lower(): digest.lower()}
    return value.strip().lower() == "true"


def parse_html_page(data: bytes, page_url: str, name: str) -> ProjectPage:
    """Parse a PEP 503 HTML project page; ``name`` is what we asked for."""
    try:
        parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True, huge_tree=False)
        root = lxml.html.document_fromstring(data, parser=parser)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise UpstreamError(f"{page_url}: malformed HTML page: {shown(str(exc))}") from None
    meta: dict[str, str] = {}
    for meta_el in root.iter("meta"):
        meta_name, content = meta_el.get("name"), meta_el.get("content")
        if meta_name is not None and content is not None:
            meta.setdefault(meta_name.strip().lower(), content)
    check_api_version(meta.get("pypi:repository-version"), page_url)
    status = None
    if "pypi:project-status" in meta:
        status = ProjectStatus(meta["pypi:project-status"].strip(), meta.get("pypi:project-status-reason"))
    base = page_url
    for base_el in root.iter("base"):
        href = base_el.get("href")
        if href:
            base = _absolute(page_url, href, page_url)
            break
    files = []
    for anchor in root.iter("a"):
        href = anchor.get("href")
        if not href:
            continue
        url, hashes = _hash_from_fragment(_absolute(base, href.strip(), page_url))
        yanked_attr = anchor.get("data-yanked")
        metadata_attr = anchor.get("data-core-metadata", anchor.get("data-dist-info-metadata"))
        provenance = anchor.get("data-provenance")
        files.append(
            DistFile(
                filename="".join(str(t) for t in anchor.itertext()).strip(),
                url=url,
                hashes=hashes,
                requires_python=anchor.get("data-requires-python"),
                yanked=(yanked_attr or True) if yanked_attr is not None else False,
                core_metadata=_metadata_attr(metadata_attr),
                provenance=_absolute(base, provenance.strip(), page_url) if provenance else None,
            )
        )
    return ProjectPage(name=normalize(name), files=tuple(files), status=status)


# ---------------------------------------------------------------- rendering


def _versions(page: ProjectPage) -> list[str]:
    if page.versions is not None:
        return list(page.versions)
    found = {v for f in page.files if (v := file_version(f.filename, page.name)) is not None}
    return [str(v) for v in sorted(found)]


def _utf8(text: str) -> bytes:
    # A JSON page may carry lone surrogates ("\ud800" escapes) that strict UTF-8 cannot encode.
    return text.encode("utf-8", errors="replace")


def _metadata_json(value: CoreMetadata) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def render_project_json(page: ProjectPage, serial: int | None) -> bytes:
    """Our PEP 691 page: file URLs as given (relative to the page), api-version 1.4."""
    files = []
    for f in page.files:
        entry: dict[str, Any] = {"filename": f.filename, "url": f.url, "hashes": dict(f.hashes)}
        if f.requires_python is not None:
            entry["requires-python"] = f.requires_python
        entry["yanked"] = f.yanked
        # PEP 714: only the new key in JSON; pip 22.3-23.1 crash on any "dist-info-metadata" value.
        entry["core-metadata"] = _metadata_json(f.core_metadata)
        if f.size is not None:
            entry["size"] = f.size
        if f.upload_time is not None:
            entry["upload-time"] = f.upload_time
        if f.provenance is not None:
            entry["provenance"] = f.provenance
        if f.on_disk:
            entry["_on-disk"] = dict(f.on_disk)  # PEP 691 reserves keys starting with "_" for private use
        files.append(entry)
    doc: dict[str, Any] = {
        "meta": {"api-version": API_VERSION, "_last-serial": serial},
        "name": page.name,
        "versions": _versions(page),
        "files": files,
    }
    if page.status is not None:
        status = {"status": page.status.status}
        if page.status.reason is not None:
            status["reason"] = page.status.reason
        doc["project-status"] = status
    return _utf8(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def _attr(name: str, value: str) -> str:
    return f' {name}="{html.escape(value, quote=True)}"'


def _anchor(f: DistFile) -> str:
    href = f.url
    if sha := f.hashes.get("sha256"):
        href += f"#sha256={sha}"
    attrs = _attr("href", href)
    if f.requires_python is not None:
        attrs += _attr("data-requires-python", f.requires_python)
    if f.yanked is not False:
        attrs += _attr("data-yanked", f.yanked if isinstance(f.yanked, str) else "")
    if isinstance(f.core_metadata, Mapping) and "sha256" in f.core_metadata:
        value = f"sha256={f.core_metadata['sha256']}"
        attrs += _attr("data-core-metadata", value) + _attr("data-dist-info-metadata", value)
    elif f.core_metadata:
        attrs += _attr("data-core-metadata", "true") + _attr("data-dist-info-metadata", "true")
    if f.provenance is not None:
        attrs += _attr("data-provenance", f.provenance)
    return f"    <a{attrs}>{html.escape(f.filename)}</a><br/>\n"


def _html_document(title: str, body: Iterable[str], serial: int | None, metas: str = "") -> bytes:
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta charset="utf-8">\n'
        f'    <meta name="pypi:repository-version" content="{HTML_API_VERSION}">\n'
        f"{metas}"
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n"
    )
    tail = "  </body>\n</html>\n"
    if serial is not None:
        tail += f"<!--SERIAL {int(serial)}-->\n"
    return _utf8(head + "".join(body) + tail)


def _status_metas(status: ProjectStatus | None) -> str:
    if status is None:
        return ""
    metas = f"    <meta{_attr('name', 'pypi:project-status')}{_attr('content', status.status)}>\n"
    if status.reason is not None:
        metas += f"    <meta{_attr('name', 'pypi:project-status-reason')}{_attr('content', status.reason)}>\n"
    return metas


def render_project_html(page: ProjectPage, serial: int | None) -> bytes:
    """Our PEP 503 page with PEP 592 yanked, 629 version, 658/714 metadata, 740 provenance, 792 status."""
    return _html_document(f"Links for {page.name}", (_anchor(f) for f in page.files), serial,
                          _status_metas(page.status))


# Normalized project names and their hrefs need no escaping in HTML or JSON.
_PLAIN = re.compile(r"[a-z0-9._-]+")
_PLAIN_HREF = re.compile(r"[a-z0-9._/-]+")
_HTML_LINK_END = b"</a><br/>"

# The root index has one project per line in both formats, sorted by name, so it
# can be read back by lines and patched by lines (``rootindex``).  A line here is
# without its terminator: ``\n`` in HTML; ``,\n`` in JSON, ``\n`` after the last.


def root_html_head_tail(serial: int | None) -> tuple[bytes, bytes]:
    """What comes before and after the project lines of the root ``index.html``."""
    head, tail = _html_document("Simple index", ["\0"], serial).split(b"\0")
    return head, tail


def root_html_line(name: str, href: str) -> str:
    if _PLAIN.fullmatch(name) and _PLAIN_HREF.fullmatch(href):  # nothing to escape: the usual case
        return f'    <a href="{href}">{name}</a><br/>'
    return f"    <a{_attr('href', href)}>{html.escape(name)}</a><br/>"


def root_html_line_name(line: bytes) -> str | None:
    """The project a root ``index.html`` line names; None for any other line."""
    line = line.rstrip(b"\n")
    if not (line.startswith(b"    <a ") and line.endswith(_HTML_LINK_END)):
        return None
    text = line[line.rfind(b">", 0, -len(_HTML_LINK_END)) + 1:-len(_HTML_LINK_END)]
    name = text.decode("utf-8", errors="replace")
    return html.unescape(name) if "&" in name else name


def root_json_head(serial: int | None) -> bytes:
    meta = json.dumps({"api-version": API_VERSION, "_last-serial": serial}, separators=(",", ":"))
    return _utf8(f'{{"meta":{meta},"projects":[\n')


ROOT_JSON_TAIL = b"]}\n"


def root_json_line(name: str, serial: int) -> str:
    """A project's entry, with its ``_last-serial`` as PyPI's root JSON has it (a PEP 691 private key)."""
    if _PLAIN.fullmatch(name):
        return f'{{"name":"{name}","_last-serial":{int(serial)}}}'
    return json.dumps({"name": name, "_last-serial": int(serial)}, ensure_ascii=False, separators=(",", ":"))


_SERIAL_KEY = b'","_last-serial":'


def root_json_line_entry(line: bytes) -> tuple[str, int | None] | None:
    """Name and serial of a root ``index.v1_json`` line (serial None: an entry without one).

    None for a line that is not a project entry; ValueError for a damaged entry.
    """
    entry = line.strip().rstrip(b",")
    if entry.startswith(b'{"name":"') and entry.endswith(b"}") and b"\\" not in entry:
        # The common case, 750,000 times: no JSON parser.
        at = entry.find(_SERIAL_KEY, 9)
        digits = entry[at + len(_SERIAL_KEY):-1] if at > 0 else b""
        if digits.isdigit():
            return entry[9:at].decode("utf-8"), int(digits)
        if entry.endswith(b'"}') and b'"' not in entry[9:-2]:
            return entry[9:-2].decode("utf-8"), None
    if entry.startswith(b'{"name":'):
        doc = json.loads(entry)  # ValueError when malformed: the caller rebuilds the index
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise ValueError(f"not a project entry: {entry[:80]!r}")
        return str(doc["name"]), _serial_from(doc.get("_last-serial"))
    return None


def iter_root_html(projects: Iterable[tuple[str, str]], serial: int | None) -> Iterator[bytes]:
    """Root index from ``(name, href)`` pairs, in chunks: 750,000 links never form one string."""
    head, tail = root_html_head_tail(serial)
    yield head
    batch: list[str] = []
    for name, href in projects:
        batch.append(root_html_line(name, href) + "\n")
        if len(batch) == 4096:
            yield _utf8("".join(batch))
            batch.clear()
    yield _utf8("".join(batch))
    yield tail


def iter_root_json(projects: Iterable[tuple[str, int]], serial: int | None) -> Iterator[bytes]:
    """Root PEP 691 index from ``(name, last serial)`` pairs in chunks, one project per line."""
    yield root_json_head(serial)
    batch: list[str] = []
    separator = ""
    for name, last_serial in projects:
        batch.append(separator + root_json_line(name, last_serial))
        separator = ",\n"
        if len(batch) == 4096:
            yield _utf8("".join(batch))
            batch.clear()
    yield _utf8("".join(batch) + "\n") + ROOT_JSON_TAIL


def root_entries(data: bytes) -> list[tuple[str, int | None]]:
    """Names and ``_last-serial`` (None when absent) of a root ``index.v1_json`` in any layout."""
    doc = json.loads(data)
    return [(p["name"], _serial_from(p.get("_last-serial"))) for p in doc["projects"]]


def check_provenance(data: bytes, what: str) -> None:
    """A PEP 740 provenance object must at least be one well-formed JSON object."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(f"{what}: malformed provenance: {shown(str(exc))}") from None
    if not isinstance(doc, dict):
        raise UpstreamError(f"{what}: malformed provenance: not a JSON object")
