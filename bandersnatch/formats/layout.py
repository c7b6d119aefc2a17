"""Where things live in the mirror: pure mapping of names and URLs to local paths.

Everything here refuses input that could escape ``web/packages`` or
``web/simple``; callers join the returned segments with ``storage.confined``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, quote, unquote, urlsplit

from ..errors import UnsafePath
from ..names import is_valid_project_name, normalize
from .segment import check_segment

_USERINFO = re.compile(r"//[^/?#]*@")

# Each project directory under web/simple/, and web/simple/ itself, holds these two pages.
PAGE_JSON = "index.v1_json"
PAGE_HTML = "index.html"
PAGES = (PAGE_JSON, PAGE_HTML)


@dataclass(frozen=True)
class UrlPolicy:
    """Which upstream URLs we are willing to download from."""

    hosts: frozenset[str]
    allow_http: bool
    # A master under a path prefix (https://host/pypi-mirror) keeps its files below that prefix.
    prefix: str = ""

    @classmethod
    def for_master(cls, master: str, extra_hosts: Collection[str], allow_http: bool) -> UrlPolicy:
        parts = urlsplit(master)
        return cls(frozenset({parts.netloc.lower(), *(h.lower() for h in extra_hosts)}), allow_http,
                   parts.path.rstrip("/"))


def file_segments(url: str, policy: UrlPolicy) -> list[str]:
    """Path segments below ``web/packages/`` for an upstream file URL.

    The file keeps the path it has below ``/packages/`` upstream, so links from
    other mirrors' pages and our own stay comparable.  Other hosts, other
    schemes, credentials and anything outside ``/packages/`` are refused.
    """
    parts = checked_url(url, policy, "file URL")
    path = parts.path
    if policy.prefix and path.startswith(policy.prefix + "/packages/"):
        path = path[len(policy.prefix):]
    raw = path.split("/")
    if len(raw) < 3 or raw[0] != "" or raw[1] != "packages":
        raise UnsafePath(f"refusing file URL outside /packages/: {parts.path[:200]!r}")
    segments = []
    for piece in raw[2:]:
        try:
            decoded = unquote(piece, errors="strict")
        except UnicodeDecodeError:
            raise UnsafePath(f"refusing file URL with non-UTF-8 path: {parts.path[:200]!r}") from None
        segments.append(check_segment(decoded))
    return segments


def checked_url(url: str, policy: UrlPolicy, what: str) -> SplitResult:
    """``url`` split, when policy lets us download from it (scheme, host, no credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafePath(f"refusing unparsable {what}: {without_userinfo(url)[:200]!r}") from None
    if parts.username is not None or parts.password is not None:
        raise UnsafePath(f"refusing {what} carrying credentials")
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        shown = without_userinfo(url)[:200]
        raise UnsafePath(f"refusing {what} with scheme {scheme[:20] or 'none'!r}: {shown!r}")
    if parts.netloc.lower() not in policy.hosts:
        raise UnsafePath(f"refusing {what} on host {parts.netloc[:100]!r} (not in download-hosts)")
    return parts


def refuse_file_below_file(paths: Iterable[Sequence[str]]) -> None:
    """Refuse a page whose files include one path below another: no disk holds both.

    ``/packages/zz`` and ``/packages/zz/x.tar.gz`` need ``zz`` as a file and as a
    directory.  Checked before anything is fetched; another project's files can
    still clash on disk, which storage refuses when it writes.
    """
    files = {tuple(p) for p in paths}
    for path in files:
        for depth in range(1, len(path)):
            if path[:depth] in files:
                below = "/packages/" + "/".join(path)[:200]
                above = "/packages/" + "/".join(path[:depth])[:200]
                raise UnsafePath(f"refusing file URL path {below!r}: the page also lists {above!r} as a file")


def without_userinfo(url: str) -> str:
    """``url`` without anything that could be a ``user:password@`` part, for log messages."""
    return _USERINFO.sub("//", url)


def key_dir(key: str, hash_index: bool) -> list[str]:
    """Segments below ``web/simple/`` for ``key``, a name already normalized and checked."""
    return [key[0], key] if hash_index else [key]


def page_key(name: str, page: str, hash_index: bool) -> str:
    """The store key (below ``web/``) of one of a project's pages: ``simple/[<k>/]<key>/<page>``."""
    return "/".join(["simple", *project_dir(name, hash_index), page])


def page_path(simple: Path, key: str, hash_index: bool, page: str = PAGE_JSON) -> Path:
    """Where below ``web/simple`` (``simple``) the page of ``key``, a normalized name, lives."""
    return simple.joinpath(*key_dir(key, hash_index), page)


def page_key_project(key: str, hash_index: bool) -> str | None:
    """The project whose JSON page is at the store key ``key``; None for any other key.

    Directories not under a normalized name are not ours (a bandersnatch 8 leftover): None.
    """
    parts = key.split("/")
    depth = 4 if hash_index else 3  # simple/[<first letter>/]<project>/index.v1_json
    if len(parts) == depth and parts[-1] == PAGE_JSON and normalize(parts[-2]) == parts[-2]:
        return parts[-2]
    return None


def has_pages(is_there: Callable[[str], bool]) -> bool:
    """Both pages of a project are there (``is_there(page)``): the root index may name it.

    A killed run may leave one page without the other.
    """
    return all(is_there(page) for page in PAGES)


def has_pages_in(page_dir: Path) -> bool:
    """``has_pages`` of the project directory ``page_dir`` on a filesystem."""
    return has_pages(lambda page: (page_dir / page).is_file())


def href_prefix(hash_index: bool) -> str:
    """How our project pages' links to files start (``file_href``)."""
    return "../" * (3 if hash_index else 2) + "packages/"


def project_dir(name: str, hash_index: bool) -> list[str]:
    """Segments below ``web/simple/`` of a project's page directory."""
    if not is_valid_project_name(name):
        raise UnsafePath(f"refusing project name {name[:100]!r}: not a valid project name")
    return key_dir(normalize(name), hash_index)


def file_href(segments: Sequence[str], hash_index: bool) -> str:
    """Link from a project page to a file, relative so the mirror can be served under any prefix."""
    return href_prefix(hash_index) + "/".join(quote(s, safe="") for s in segments)


def upstream_link(url: str, segments: Sequence[str], root_uri: str | None) -> str:
    """Link from a page of an index-only mirror (``release-files = false``) to a file it does not keep.

    As bandersnatch 8: ``root_uri`` (ending with ``/``) followed by the file's path below
    ``/packages/``; without one, the absolute URL upstream's page gives (``segments``:
    ``file_segments`` of that URL, already checked).  8.2 defaulted to files.pythonhosted.org
    instead, which is that URL for PyPI and a wrong host for any other master.
    """
    if root_uri is None:
        return url
    return root_uri + "packages/" + "/".join(quote(s, safe="") for s in segments)
