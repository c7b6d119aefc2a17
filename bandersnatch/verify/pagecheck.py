"""One project's two pages, checked against each other: what they link, and what is wrong with them.

Used by ``verify``.  Reads the two pages of one project directory, never the
files they link: it turns the JSON page (or, when that is damaged, a whole
HTML page) into :class:`FileRecord` lines for the spool that ``verify`` sorts
and compares with the disk, and names what is wrong with the pages themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..errors import BandersnatchError
from ..formats.layout import PAGE_HTML, PAGE_JSON, UrlPolicy, file_segments
from ..formats.pagerecord import OnDisk
from ..formats.simple import DistFile, ProjectPage, parse_html_page, parse_json_page
from ..sync.package import METADATA_SUFFIX

# Pages are parsed against this base so their relative links come back absolute and comparable.
_BASE_HOST = "verify.invalid"
_POLICY = UrlPolicy(frozenset({_BASE_HOST}), allow_http=True)
_HTML_SERIAL = re.compile(rb"<!--SERIAL ([0-9]+)-->\s*\Z")
_HTML_END = re.compile(rb"</html>\s*(?:<!--SERIAL [0-9]+-->\s*)?\Z")
# A link below packages/ of names file_segments passes as they are (each under 255 bytes, no
# escape, no "." or ".."): the usual link, taken apart without urllib.
_PACKAGES = f"http://{_BASE_HOST}/packages/"
_PLAIN_FILE = re.compile(re.escape(_PACKAGES) + r"[A-Za-z0-9_~+-][A-Za-z0-9._~+-]{0,254}"
                         r"(?:/[A-Za-z0-9_~+-][A-Za-z0-9._~+-]{0,254})*\Z")
NO_HASH = "-"  # a record's sha256 when the page gives none: size and existence are checked
SEP = "\x01"  # joins path segments in sort keys: below every character a segment may hold


# ------------------------------------------------------------------ problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the mirror: its kind, what it is about, why, and whose re-sync mends it."""

    kind: str
    subject: str  # a path below web/, or a project name
    detail: str
    projects: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "subject": self.subject, "detail": self.detail,
                           "projects": list(self.projects)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Problem:
        doc = json.loads(line)
        return cls(doc["kind"], doc["subject"], doc["detail"], tuple(doc["projects"]))


# The kinds, in the words an operator greps for.
MISSING = "missing"  # a page links a file that is not there
SIZE = "size"  # the file's size is not the one recorded
HASH = "hash"  # the file's sha256 is not the one recorded
CHANGED = "changed"  # an object store's ETag is not the one recorded: replaced since (found without reading)
CONFLICT = "conflict"  # two pages link one path with different sha256
ORPHAN = "orphan"  # a file under packages/ no page links
PAGE_MISSING = "page-missing"  # one of a project's two pages is missing
PAGE_DAMAGED = "page-damaged"  # a page does not parse or is cut short
PAGES_DISAGREE = "pages-disagree"  # the HTML and JSON pages of a project link different things
BAD_LINK = "bad-link"  # a page links something outside packages/
ROOT_DAMAGED = "root-damaged"  # a root index file is missing, cut short or not an index
ROOT_MISSING = "root-missing"  # a project with both pages is not named by the root index
ROOT_EXTRA = "root-extra"  # the root index names a project without both pages
GHOST = "ghost"  # a project directory neither the root index nor upstream names
STRAY = "stray"  # a directory under simple/ that cannot be a project's: reported, left alone

FILE_KINDS = frozenset({MISSING, SIZE, HASH, CHANGED})
PAGE_KINDS = frozenset({PAGE_MISSING, PAGE_DAMAGED, PAGES_DISAGREE, BAD_LINK})


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class FileRecord:
    """A file one page links, as the page recorded it when the file was verified."""

    rel: str  # below web/packages/, "/"-separated
    size: int | None
    sha256: str  # NO_HASH: the page gives none
    mtime_ns: int | None
    project: str
    etag: str | None = None  # the object store's ETag when the file was verified there

    def spool_line(self) -> str:
        size = NO_HASH if self.size is None else str(self.size)
        mtime = NO_HASH if self.mtime_ns is None else str(self.mtime_ns)
        etag = NO_HASH if self.etag is None else self.etag
        return f"{sort_key(self.rel)}\t{size}\t{self.sha256}\t{mtime}\t{etag}\t{self.project}\n"

    @classmethod
    def from_spool(cls, line: str) -> FileRecord:
        key, size, sha256, mtime, etag, project = line.split("\t")
        return cls(key.replace(SEP, "/"), None if size == NO_HASH else int(size), sha256,
                   None if mtime == NO_HASH else int(mtime), project, None if etag == NO_HASH else etag)


class Linkers(NamedTuple):
    """Who links one file, for every check of it: projects, them joined for messages, the sha256
    their pages record (sorted), and a CONFLICT problem when those disagree."""

    projects: tuple[str, ...]
    by: str
    shas: list[str]
    problems: list[Problem]


def linked_by(subject: str, records: list[FileRecord]) -> Linkers:
    projects = tuple(sorted({r.project for r in records}))
    by = ", ".join(projects)
    shas = sorted({r.sha256 for r in records if r.sha256 != NO_HASH})
    conflict = [Problem(CONFLICT, subject, f"pages of {by} record different sha256 for it", projects)]
    return Linkers(projects, by, shas, conflict if len(shas) > 1 else [])


def sort_key(rel: str) -> str:
    """``rel`` spelled so that code point order is the order of a sorted walk of the directories."""
    return rel.replace("/", SEP)


# ------------------------------------------------------------------ one project


@dataclass
class PageReport:
    records: list[FileRecord]
    problems: list[Problem]
    linked: bool  # False: neither page could be read, so what the project links is unknown


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _comparable(f: DistFile) -> tuple[Any, ...]:
    metadata: object = f.core_metadata
    if isinstance(f.core_metadata, Mapping):
        metadata = tuple(sorted(f.core_metadata.items())) or True
    return (f.filename, f.url, f.hashes.get("sha256"), f.requires_python, f.yanked, metadata)


def _html_serial(data: bytes) -> int | None:
    found = _HTML_SERIAL.search(data[-64:])
    return int(found[1]) if found else None


def check_project(page_dir: Path, key: str, where: str, *, external: bool = False) -> PageReport:
    """Check the pages in ``page_dir`` (``where``: that directory below web/) and list what they link.

    ``external``: the pages may link files on other hosts (``release-files = false``); such a
    link is neither a bad link nor a file of the mirror.
    """
    base = f"http://{_BASE_HOST}/{where}/"
    problems: list[Problem] = []
    raw_json, raw_html = _read(page_dir / PAGE_JSON), _read(page_dir / PAGE_HTML)
    for name, raw in ((PAGE_JSON, raw_json), (PAGE_HTML, raw_html)):
        if raw is None:
            problems.append(Problem(PAGE_MISSING, f"{where}/{name}", "missing", (key,)))
    json_page = html_page = None
    doc: Any = None
    if raw_json is not None:
        try:
            json_page, doc = parse_json_page(raw_json, base), json.loads(raw_json)
        except BandersnatchError as exc:
            problems.append(Problem(PAGE_DAMAGED, f"{where}/{PAGE_JSON}", _short(exc), (key,)))
    if raw_html is not None:
        if _HTML_END.search(raw_html[-128:]) is None:
            problems.append(Problem(PAGE_DAMAGED, f"{where}/{PAGE_HTML}", "cut short (no </html> at its end)",
                                    (key,)))
        else:
            try:
                html_page = parse_html_page(raw_html, base, key)
            except BandersnatchError as exc:
                problems.append(Problem(PAGE_DAMAGED, f"{where}/{PAGE_HTML}", _short(exc), (key,)))
    if json_page is not None and html_page is not None:
        why = _disagreement(json_page, html_page, _html_serial(raw_html or b""))
        if why:
            problems.append(Problem(PAGES_DISAGREE, where, why, (key,)))
    if json_page is not None:
        entries = doc["files"]
        return PageReport(_records(json_page, entries, key, where, problems, external), problems, True)
    if html_page is not None:
        return PageReport(_records(html_page, None, key, where, problems, external), problems, True)
    return PageReport([], problems, False)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("http://") and ": " in text else text


def _disagreement(json_page: ProjectPage, html_page: ProjectPage, html_serial: int | None) -> str | None:
    if json_page.last_serial != html_serial:
        return f"serial {json_page.last_serial} in {PAGE_JSON}, {html_serial} in {PAGE_HTML}"
    if len(json_page.files) != len(html_page.files):
        return f"{len(json_page.files)} file(s) in {PAGE_JSON}, {len(html_page.files)} in {PAGE_HTML}"
    for a, b in zip(json_page.files, html_page.files, strict=True):
        if _comparable(a) != _comparable(b):
            return f"{a.filename[:120]!r} differs between {PAGE_JSON} and {PAGE_HTML}"
    return None


def _on_disk(entries: list[Any] | None, index: int) -> OnDisk:
    return OnDisk() if entries is None else OnDisk.from_entry(entries[index])


def _etag(value: object) -> str | None:
    """An ETag as recorded (S3's are quoted hex, ``-<parts>`` after a multipart upload); None if odd."""
    if isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable() and value != NO_HASH:
        return value  # isprintable: no tab or newline to break a spool line
    return None


def _elsewhere(url: str) -> bool:
    """A link (made absolute against our page) to another host than the mirror's own."""
    return urlsplit(url).netloc != _BASE_HOST
def _rel(url: str) -> str:
    """The path below ``packages/`` of a link parsed against our base: by slicing when it is plain
    (what file_segments would return: no escape, no dot segment), else by file_segments."""
    if _PLAIN_FILE.match(url):
        return url[len(_PACKAGES):]
    return "/".join(file_segments(url, _POLICY))


def _records(page: ProjectPage, entries: list[Any] | None, key: str, where: str,
             problems: list[Problem], external: bool = False) -> list[FileRecord]:
    records = []
    for i, f in enumerate(page.files):
        if external and _elsewhere(f.url):
            continue  # upstream's file (or root_uri's): not the mirror's to check
        try:
            rel = _rel(f.url)
        except BandersnatchError as exc:
            problems.append(Problem(BAD_LINK, where, f"{f.filename[:120]!r}: {exc}", (key,)))
            continue
        on_disk = _on_disk(entries, i)
        records.append(FileRecord(rel, f.size, f.hashes.get("sha256", NO_HASH), on_disk.mtime_ns,
                                  key, _etag(on_disk.etag)))
        if f.core_metadata:
            meta = f.core_metadata.get("sha256", NO_HASH) if isinstance(f.core_metadata, Mapping) else NO_HASH
            records.append(FileRecord(rel + METADATA_SUFFIX, on_disk.metadata_size, meta,
                                      on_disk.metadata_mtime_ns, key, _etag(on_disk.metadata_etag)))
        if f.provenance is not None and not (external and _elsewhere(f.provenance)):
            # Our copy of its PEP 740 provenance: nothing records its size or hash, so verify
            # checks that it is there, and no page-linked copy is ever called an orphan.
            try:
                records.append(FileRecord("/".join(file_segments(f.provenance, _POLICY)), None, NO_HASH,
                                          None, key))
            except BandersnatchError as exc:
                problems.append(Problem(BAD_LINK, where, f"provenance of {f.filename[:120]!r}: {exc}",
                                        (key,)))
    return records
