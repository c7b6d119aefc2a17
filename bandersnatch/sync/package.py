"""Sync one project: fetch its page, fetch what is missing, write its pages, prune.

Pages are written only after every file they link is on disk and verified, so
a client never follows a link to a missing or half-written file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from ..config.values import ReleaseFiles
from ..errors import NotFound, UnsafePath, UpstreamError, shown
from ..formats import pagerecord
from ..formats.dists import MAX_VERSION_LENGTH, usable_versions
from ..formats.layout import (
    PAGE_HTML,
    PAGE_JSON,
    PAGES,
    UrlPolicy,
    checked_url,
    file_href,
    file_segments,
    href_prefix,
    page_key,
    page_key_project,
    project_dir,
    refuse_file_below_file,
)
from ..formats.layout import has_pages as layout_has_pages
from ..formats.pagerecord import Known as Known
from ..formats.pagerecord import Stored as Stored
from ..formats.segment import MAX_SEGMENT_BYTES
from ..formats.simple import DistFile, ProjectPage, check_provenance, render_project_html
from ..ledger.counts import NONE, Tally, Totals
from ..names import is_valid_project_name, normalize
from ..progress import human_bytes
from ..publish.gate import Gate
from ..publish.owners import METADATA_SUFFIX as METADATA_SUFFIX
from ..publish.owners import PROVENANCE_SUFFIX as PROVENANCE_SUFFIX
from ..publish.owners import SIDECARS as SIDECARS
from ..publish.owners import Linked, Links
from ..selection.policy import Exclusion, Selection
from ..selection.records import METADATA_LIMIT, SDIST_SUFFIXES, DependencyRecords, MirroredFile
from ..selection.requirements import sdist_pkg_info, wheel_metadata
from ..store.atomic import atomic_write, confined, remove_file
from ..store.filesystem import FilesystemStore
from ..store.protocol import Store
from ..upstream.master import VERIFIABLE, Digest, Master
from .jsoncopy import JsonApi
from .releasefiles import MetadataReader, linked_record, mirrored

logger = logging.getLogger(__name__)



def sidecars(metadata: bool, provenance: bool) -> frozenset[str]:
    """The suffixes of what a page links beside a file that has ``metadata`` and ``provenance``."""
    pairs = ((METADATA_SUFFIX, metadata), (PROVENANCE_SUFFIX, provenance))
    return frozenset(suffix for suffix, linked in pairs if linked)


def _sidecars_of(known: Known) -> frozenset[str]:
    """The suffixes of what our page links beside the file ``known`` describes."""
    return sidecars(known.metadata_sha256 is not None, known.provenance)


class _NotOurs(Exception):
    """A page sharing a file would have to publish something beside it: only the file's holder may."""


@dataclass(frozen=True)
class Outcome:
    """What syncing one project did."""

    key: str  # normalized name
    name: str  # as upstream spells it
    serial: int
    removed: bool = False
    created: bool = False  # the project did not have both pages on the mirror before
    files: int = 0
    bytes: int = 0
    excluded: Exclusion | None = None  # the operator's filters do not select it (after its page)
    requires: tuple[str, ...] | None = None  # its Requires-Dist, when dependencies are followed
    unverified: int = 0  # files downloaded with no usable hash to check them against
    last_serial: int | None = None  # the serial our pages were written with (the root index lists it)
    held: int = 0  # files the cooling-off window holds back for now
    matures: float | None = None  # when the first of them leaves the window (Unix time)


@dataclass(frozen=True)
class Layout:
    """Where one mirror keeps its pages and files."""

    web: Path
    staging: Path
    hash_index: bool

    @property
    def simple(self) -> Path:
        return self.web / "simple"

    @property
    def packages(self) -> Path:
        return self.web / "packages"

    @property
    def intents(self) -> Path:
        """Per project, the files an interrupted sync may leave on disk with no page linking them."""
        return self.web.parent / "intents"

    @property
    def claims(self) -> Path:
        """Per project, the files its page links that its name does not own (see ``owners``)."""
        return self.web.parent / "claims"

    @property
    def href_prefix(self) -> str:
        """How our project pages' links to files start (``file_href``)."""
        return href_prefix(self.hash_index)

    def page_dir(self, name: str) -> Path:
        return confined(self.simple, project_dir(name, self.hash_index))

    def page_key(self, name: str, page: str) -> str:
        """The store key of one of a project's pages (``simple/<project>/index.v1_json``)."""
        return page_key(name, page, self.hash_index)

    def file_key(self, path: Path) -> str:
        """The store key of a file planned at ``path`` below ``packages``."""
        return path.relative_to(self.web).as_posix()


def read_known(store: Store, page_key: str) -> dict[str, Known]:
    """href -> Known, from the JSON page we published last time at ``page_key`` (empty when there is none)."""
    return pagerecord.from_bytes(store.read(page_key))


def page_totals(store: Store, page_key: str) -> Totals:
    """What the project's JSON page at ``page_key`` links: its count for ``counts``."""
    data = store.read(page_key)
    return NONE if data is None else known_totals(pagerecord.from_bytes(data))


def known_totals(known: Mapping[str, Known]) -> Totals:
    """The count for ``counts`` of a JSON page that is there, what it links (``pagerecord.from_bytes``)."""
    return Totals(1, len(known), sum(k.size or 0 for k in known.values()))


def page_keys(store: Store, hash_index: bool) -> Iterator[str]:
    """Every project with a JSON page under ``simple/``: the one walk, when ``counts`` must be rebuilt.

    Directories not under a normalized name are not ours (a bandersnatch 8 leftover): skipped.
    """
    for key in store.iterate("simple/"):
        project = page_key_project(key, hash_index)
        if project is not None:
            yield project


def has_pages(store: Store, layout: Layout, name: str) -> bool:
    """Both pages of a project are in the store: the root index may name it (a killed run may leave one)."""
    return layout_has_pages(lambda page: store.stat(layout.page_key(name, page)) is not None)


def hash_file(path: Path, algorithms: set[str]) -> tuple[Digest, dict[str, str]]:
    """sha256 and size of a file on disk, plus any other requested digests."""
    hashers = {a: hashlib.new(a) for a in algorithms | {"sha256"} if a in VERIFIABLE}
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            for h in hashers.values():
                h.update(chunk)
    digests = {a: h.hexdigest() for a, h in hashers.items()}
    return Digest(digests["sha256"], size), digests


def _matches(expected: Mapping[str, str], digests: Mapping[str, str]) -> bool:
    return all(digests.get(a, v) == v for a, v in expected.items())


def _metadata_in_wheel(path: Path) -> bytes | None:
    try:
        return wheel_metadata(path, METADATA_LIMIT)
    except OSError:
        return None


@dataclass(frozen=True)
class Core:
    """A downloaded file's core metadata (a wheel's METADATA, an sdist's PKG-INFO; None: it has none)."""

    data: bytes | None


@dataclass(frozen=True)
class FetchedFile:
    """One planned file once it is on the mirror."""

    local: DistFile  # our record of it, as our pages link it
    downloaded: int | None  # bytes downloaded for it now; None: the copy on the mirror held
    core: Core | None  # its core metadata as read from the download, when wanted (see ``Core``)


@dataclass(frozen=True)
class FetchedFiles:
    """A project's planned files once they are all on the mirror, in page order."""

    local: list[DistFile]
    cores: list[Core | None]
    count: int  # files downloaded now
    bytes: int  # bytes downloaded now
    unverified: int  # files downloaded with no usable hash to check them against


def _core_metadata(filename: str, staged: BinaryIO) -> bytes | None:
    """The core metadata of a verified download, from its staged file (the dependency records' source)."""
    try:
        if filename.endswith(".whl"):
            return wheel_metadata(staged, METADATA_LIMIT)
        if filename.lower().endswith(SDIST_SUFFIXES):
            return sdist_pkg_info(staged, METADATA_LIMIT, filename=filename)
    except OSError:
        return None
    return None


def _staged_bytes(staged: BinaryIO) -> bytes:
    """All of a staged download (one capped at max-page-size: a .metadata file)."""
    staged.seek(0)
    return staged.read()


def _pip_reads(core: list[bytes | None], served: list[bytes], metadata: Stored | None) -> Core | None:
    """The core metadata a file's requirements are recorded from: what pip reads (issue 18, case 7).

    That is the PEP 658 metadata the page advertises (and we verified) when there is one,
    the file's own otherwise.  None: nothing was read now; the records read what the mirror holds.
    """
    if served:
        return Core(served[0])
    if not core:
        return None
    own = core[0]
    if metadata is None or (own is not None and hashlib.sha256(own).hexdigest() == metadata.sha256):
        return Core(own)
    return None  # kept from an earlier run, and not the file's own METADATA: read where it lies


def _verified_bytes(data: bytes, expected: Mapping[str, str]) -> bool:
    """True when ``expected`` names a hash we can check and every such hash matches ``data``."""
    checks = {a: v for a, v in expected.items() if a in VERIFIABLE}
    return bool(checks) and all(hashlib.new(a, data).hexdigest() == v for a, v in checks.items())


def project_metadata(master: Master, selection: Selection, key: str) -> Mapping[str, object] | None:
    """Upstream's JSON API document when a metadata plugin is enabled, else None (and no
    request); ``{}`` when upstream has none, so every rule meets a missing node.

    The run and the dry run ask it the same way, so the plan judges what the run will judge.
    """
    if not selection.wants_metadata:
        return None
    doc = master.fetch_project_json(key)
    if doc is None:
        logger.debug("%s: upstream has no JSON API document; metadata rules see none", key)
    return doc or {}


class ProjectSync:
    """Syncs projects into one mirror; safe to use from many worker threads."""

    def __init__(self, master: Master, layout: Layout, policy: UrlPolicy, *,
                 workers: int, delete_packages: bool, force_check: bool,
                 selection: Selection | None = None, records: DependencyRecords | None = None,
                 require_hashes: bool = False,
                 tally: Tally | None = None, json_api: JsonApi | None = None,
                 store: Gate | None = None, core_metadata: bool = True,
                 release_files: ReleaseFiles = ReleaseFiles.TRUE, root_uri: str | None = None) -> None:
        self.master = master
        # [mirror] release-files: false and on-demand download no distribution file (``releasefiles``).
        self.release_files = release_files
        self.root_uri = root_uri  # with release-files = false, where the pages link files
        self.core_metadata = core_metadata  # [mirror] core-metadata: false fetches and advertises none
        # Where pages and files are published, through the run's gate (``runtime`` makes both).
        self.store: Gate = store or Gate(FilesystemStore(layout.web, layout.staging))
        self.tally = tally  # told of every page write and removal, for the mirror's totals
        self.json_api = json_api or JsonApi(self.store, layout.hash_index, enabled=False, root_uri=None)
        self.selection = selection
        self.records = records
        self.layout = layout
        self.policy = policy
        self.delete_packages = delete_packages
        self.force_check = force_check
        self.require_hashes = require_hashes
        # Which other pages link a file: asked before any delete or overwrite.
        self.links = Links(layout.claims, layout.staging, self._page_links)
        # Files of all projects share one pool, so a project with many files keeps every
        # connection busy.  Twice `workers` threads: while one fsyncs and renames the file it
        # just fetched, another already holds the request slot it let go.  Master's slots
        # still cap the requests in flight at `workers`.
        self.downloads = ThreadPoolExecutor(max_workers=2 * workers, thread_name_prefix="download")
        # Without the files, the closure reads requirements from each file's .metadata, in memory.
        self.metadata = (MetadataReader(master, records, self.downloads)
                         if records is not None and not release_files.downloads else None)
        self._deleted_lock = threading.Lock()
        self.deleted_files = 0  # files (not .metadata) this run deleted, and their bytes
        self.deleted_bytes = 0
        # Store keys found damaged (verify --repair): their record vouches for nothing.
        self.suspect: frozenset[str] = frozenset()
        # Projects synced because a held file left the window, and the run's serial: their pages
        # say that serial, not upstream's older one, so downstream mirrors see the files arrive.
        self.serial_floor: Mapping[str, int] = {}

    def close(self) -> None:
        self.downloads.shutdown(wait=True, cancel_futures=True)

    def sync(self, name: str, serial: int) -> Outcome:
        key = normalize(name)
        json_key = self.layout.page_key(name, PAGE_JSON)
        page = self.master.fetch_page(key, serial)
        if page is None:
            return Outcome(key, name, serial, removed=True)
        if page.status is not None and page.status.quarantined:
            # PEP 792: a quarantined project offers no files, whatever its page lists; the files
            # we had leave the mirror below like any file the page stops linking.
            logger.info("%s: quarantined upstream: offering none of its files", key)
            page = replace(page, files=(), versions=())
        page = _without_unusable_versions(key, page)
        held, matures = 0, None
        if self.selection is not None and (self.selection.active or self.selection.window is not None):
            metadata = project_metadata(self.master, self.selection, key)
            excluded = None if metadata is None else self.selection.metadata(key, metadata)
            if excluded is not None:
                return Outcome(key, name, serial, excluded=excluded)
            excluded = self.selection.project_page(key, page)
            if excluded is not None:
                return Outcome(key, name, serial, excluded=excluded)
            chosen = self.selection.plan_files(key, page, metadata)
            for filename, why in chosen.dropped:
                logger.debug("%s: not mirroring %s (%s)", key, shown(filename), why)
            page = replace(page, files=chosen.files, versions=chosen.versions)
            held, matures = chosen.held, chosen.matures
        if not self.core_metadata:
            # As bandersnatch 8's core-metadata = false: no <file>.metadata is fetched, and neither
            # page nor the JSON API copy advertises one (pip then reads the file itself).
            page = replace(page, files=tuple(replace(f, core_metadata=False) for f in page.files))
        published = self.store.read(json_key)  # None: no JSON page yet, so no pages to stat below
        known = pagerecord.from_bytes(published)
        # Not both pages yet (new, or a sync stopped between them): the root index may not name it.
        created = published is None or not has_pages(self.store, self.layout, name)
        plan = self._plan_files(page)  # every URL checked before anything is downloaded
        if self.release_files is ReleaseFiles.FALSE:
            return replace(self._sync_index_only(key, name, serial, page, plan, published, known, created),
                           held=held, matures=matures)
        # Files downloaded before the page links them, and files the page stops linking, are
        # recorded first: if this sync is killed, the next one deletes those no page ends up linking.
        intent_file = self._intent_file(key)
        leftover = intent_file or set()
        wanted = {href for _, href, _ in plan}
        unlinked = (set(known) | leftover) - wanted
        intent = (wanted - set(known)) | unlinked
        if self.delete_packages and unlinked:
            # Asked before anything changes: past the removal limits the project is held back whole,
            # its pages and files as they are (RemovalsHeldBack), and stays owed.
            self.store.reserve_files(len(unlinked & set(known)))
        if self.delete_packages and intent != leftover:
            self._write_intent(key, intent)
            intent_file = intent
        linked = {self._rel(h): Linked(None, None) for h in leftover}
        linked.update({self._rel(h): Linked(k.sha256, k.metadata_sha256) for h, k in known.items()})
        self.links.begin(key, linked, [self._rel(h) for h in wanted])
        try:
            fetched = (self._fetch_files(key, plan, known) if self.release_files.downloads
                       else self._link_files(key, plan))
            local = fetched.local
            requires = None
            if self.records is not None:
                # On-demand: what the web server kept is not read (the .metadata was, into ``cores``).
                on_disk = self.release_files.downloads and self.store.local_path(json_key) is not None
                requires = self.records.update(key, (
                    # On-demand links upstream's hashes: a page may give no sha256 (none to record).
                    MirroredFile(f.filename, f.hashes.get("sha256", ""), path if on_disk else None,
                                 path.with_name(path.name + METADATA_SUFFIX) if f.core_metadata and on_disk
                                 else None, core.data if core else None, core is not None,
                                 _metadata_sha256(f))
                    for f, (_, _, path), core in zip(local, plan, fetched.cores, strict=False)))
            page_serial = self._write_pages(name, key, serial, page, local, [
                (mine, theirs, self.json_api.file_url(self._rel(href)))
                for mine, (theirs, href, _) in zip(local, plan, strict=True)], published, known)
            if self.delete_packages:
                self._delete_files(key, unlinked)
                self._drop_unadvertised(key, known, local, plan)
                if intent_file is not None:  # most syncs had none and wrote none: nothing to remove
                    self._clear_intent(key)
            self.links.settle(key, [self._rel(h) for h in wanted])
        finally:
            self.links.end(key)
        if fetched.count:
            logger.info("%s: %d new file(s), %s", key, fetched.count, human_bytes(fetched.bytes))
        else:
            logger.debug("%s: up to date", key)
        return Outcome(key, name, serial, created=created, files=fetched.count, bytes=fetched.bytes,
                       requires=requires, unverified=fetched.unverified, last_serial=page_serial,
                       held=held, matures=matures)

    def _write_pages(self, name: str, key: str, serial: int, page: ProjectPage, local: list[DistFile],
                     api_files: list[tuple[DistFile, DistFile, str]], published: bytes | None,
                     known: Mapping[str, Known]) -> int:
        """Publish the project's pages (and JSON API copy) linking ``local``; the serial they carry."""
        local_page = replace(page, name=key, files=tuple(local))
        page_serial = page.last_serial if page.last_serial is not None else serial
        # A project whose held files matured carries the run's serial: followers see them arrive.
        page_serial = max(page_serial, self.serial_floor.get(key, 0))
        self.json_api.write(name, key, page.versions or (), api_files, page_serial)
        # JSON first: it is our record of what is verified on disk.
        before = NONE if published is None else known_totals(known)
        if self.tally is not None:
            self.tally.before(key, before)
        self.store.publish_page(self.layout.page_key(name, PAGE_JSON),
                                pagerecord.to_bytes(local_page, page_serial))
        if self.tally is not None:
            self.tally.changed(before, Totals(1, len(local), sum(f.size or 0 for f in local)))
        self.store.publish_page(self.layout.page_key(name, PAGE_HTML),
                                render_project_html(local_page, page_serial))
        return page_serial

    def _sync_index_only(self, key: str, name: str, serial: int, page: ProjectPage,
                         plan: list[tuple[DistFile, str, Path]], published: bytes | None,
                         known: Mapping[str, Known], created: bool) -> Outcome:
        """``release-files = false``: pages linking upstream's files (or root_uri's); nothing else is kept."""
        files = [f for f, _, _ in plan]
        cores = self.metadata.read(key, files) if self.metadata is not None else {}
        local = [linked_record(f, href, file_segments(f.url, self.policy), ReleaseFiles.FALSE, self.root_uri)
                 for f, href, _ in plan]
        requires = None
        if self.records is not None:
            requires = self.records.update(key, (mirrored(f, cores.get(f.filename), f.filename in cores)
                                                 for f in files))
        api_files = [(mine, theirs, mine.url) for mine, theirs in zip(local, files, strict=True)]
        page_serial = self._write_pages(name, key, serial, page, local, api_files, published, known)
        logger.debug("%s: pages written, linking %d file(s) upstream", key, len(local))
        return Outcome(key, name, serial, created=created, requires=requires, last_serial=page_serial)

    def _link_files(self, key: str, plan: list[tuple[DistFile, str, Path]]) -> FetchedFiles:
        """``release-files = on-demand``: the planned files linked, none downloaded.

        A kept copy (the web server's) that verify found damaged is deleted: the next
        request for it fetches it from upstream again.
        """
        cores = self.metadata.read(key, [f for f, _, _ in plan]) if self.metadata is not None else {}
        local: list[DistFile] = []
        for f, href, path in plan:
            rel = self._rel(href)
            self._discard_suspect(rel, path)
            local.append(linked_record(f, href, (), ReleaseFiles.ON_DEMAND, None))
            self.links.verified(key, rel, Linked(f.hashes.get("sha256"), _metadata_sha256(f),
                                                 sidecars(bool(f.core_metadata), False)))
        read = [Core(cores[f.filename]) if f.filename in cores else None for f, _, _ in plan]
        return FetchedFiles(local, read, 0, 0, 0)

    def _discard_suspect(self, rel: str, path: Path) -> None:
        """Delete the kept copies of a file and its .metadata that ``verify --repair`` found damaged."""
        for key in (self.layout.file_key(path), self.layout.file_key(path) + METADATA_SUFFIX):
            if key not in self.suspect:
                continue
            with self.links.exclusive(rel + key[len(self.layout.file_key(path)):]):
                stat = self.store.delete(key)  # through the gate: diff-file records it
            if stat is not None:
                logger.info("deleted %s: damaged; the next request fetches it from upstream again",
                            shown(key, 400))
                with self._deleted_lock:
                    self.deleted_files += 0 if key.endswith(METADATA_SUFFIX) else 1
                    self.deleted_bytes += 0 if key.endswith(METADATA_SUFFIX) else stat.size

    def _rel(self, href: str) -> str:
        """A page's link as a path below ``web/packages/`` (the same in both layouts)."""
        prefix = self.layout.href_prefix
        return href[len(prefix):] if href.startswith(prefix) else href

    def _fetch_files(
        self, key: str, plan: list[tuple[DistFile, str, Path]], known: Mapping[str, Known]
    ) -> FetchedFiles:
        """Fetch the planned files in parallel on the shared download pool; local records in page order,
        with the core metadata read from each file downloaded (see ``Core``)."""
        futures = [self.downloads.submit(self._fetch_one, key, f, href, path, known.get(href))
                   for f, href, path in plan]
        results: list[FetchedFile] = []
        error: BaseException | None = None
        for future in futures:
            if error is not None:
                future.cancel()
                continue
            try:
                results.append(future.result())
            except BaseException as exc:
                error = exc
        if error is not None:
            wait(futures)  # let started downloads finish discarding their temp files
            raise error
        fetched = [(upstream, r.downloaded) for (upstream, _, _), r in zip(plan, results, strict=True)
                   if r.downloaded is not None]
        unverified = sum(1 for f, _ in fetched if not _verifiable(f.hashes))
        return FetchedFiles([r.local for r in results], [r.core for r in results], len(fetched),
                            sum(size for _, size in fetched), unverified)

    def _plan_files(self, page: ProjectPage) -> list[tuple[DistFile, str, Path]]:
        plan: list[tuple[DistFile, str, Path]] = []
        seen: set[str] = set()
        on_disk: list[list[str]] = []
        for f in page.files:
            segments = file_segments(f.url, self.policy)
            if f.filename != segments[-1]:
                raise UnsafePath(f"refusing file {f.filename[:100]!r}: its URL names {segments[-1][:100]!r}")
            if segments[-1].lower().endswith(METADATA_SUFFIX):
                # PEP 658 keeps a file's metadata at its name plus .metadata: such a name is never a
                # distribution, and accepting one would let this page own another file's metadata.
                raise UnsafePath(f"refusing file {f.filename[:100]!r}: a {METADATA_SUFFIX} name is PEP 658 "
                                 "metadata, not a distribution file")
            if f.core_metadata and len(segments[-1].encode()) > MAX_SEGMENT_BYTES - len(METADATA_SUFFIX):
                raise UnsafePath(f"refusing file {f.filename[:40]!r}...: too long a name to keep its "
                                 f"{METADATA_SUFFIX} beside it")
            if segments[-1].lower().endswith(PROVENANCE_SUFFIX):
                # Our copy of a file's provenance sits at its name plus .provenance (as .metadata).
                raise UnsafePath(f"refusing file {f.filename[:100]!r}: a {PROVENANCE_SUFFIX} name is where "
                                 "we keep PEP 740 provenance, not a distribution file")
            if f.provenance is not None:
                checked_url(f.provenance, self.policy, f"provenance URL of {f.filename[:100]!r}")
                if len(segments[-1].encode()) > MAX_SEGMENT_BYTES - len(PROVENANCE_SUFFIX):
                    raise UnsafePath(f"refusing file {f.filename[:40]!r}...: too long a name to keep its "
                                     f"{PROVENANCE_SUFFIX} beside it")
            if self.require_hashes and not _verifiable(f.hashes):
                raise UpstreamError(f"refusing file {f.filename[:100]!r}: no hash we can check "
                                    "(require-hashes = true)")
            href = file_href(segments, self.layout.hash_index)
            if href not in seen:
                seen.add(href)
                room = max(len(METADATA_SUFFIX) if f.core_metadata else 0,
                           len(PROVENANCE_SUFFIX) if f.provenance is not None else 0)
                plan.append((f, href, confined(self.layout.packages, segments, room)))
                on_disk.append(segments)
                if f.core_metadata:
                    on_disk.append([*segments[:-1], segments[-1] + METADATA_SUFFIX])
                if f.provenance is not None:
                    on_disk.append([*segments[:-1], segments[-1] + PROVENANCE_SUFFIX])
        refuse_file_below_file(on_disk)
        return plan

    def _fetch_one(self, key: str, f: DistFile, href: str, path: Path,
                   old: Known | None) -> FetchedFile:
        """One file and its metadata on the mirror: its local record, what was downloaded and, when
        it was downloaded and its core metadata is wanted, that metadata as read from the download."""
        rel = self._rel(href)
        core: list[bytes | None] = []
        wanted = self.records is not None or (bool(f.core_metadata) and f.filename.endswith(".whl"))
        stored, downloaded = self._ensure(
            self.layout.file_key(path), f.url, f.hashes, f.size, old.file if old else None, rel,
            lambda: self._refuse_conflict(key, rel, f.filename, f.hashes.get("sha256"), metadata=False),
            inspect=(lambda staged: core.append(_core_metadata(f.filename, staged))) if wanted else None)
        # Only the file's holder publishes beside it; a page sharing the file links what is there.
        holder = (self.links.sidecar_holder(key, rel) if f.core_metadata or f.provenance is not None
                  else None)
        served: list[bytes] = []  # the advertised metadata, when it is downloaded now
        metadata = self._ensure_metadata(key, rel, path, f, old, core[0] if core else None, holder,
                                         served if self.records is not None else None)
        provenance = self._ensure_provenance(key, rel, path, f, old, holder)
        local = replace(
            f, url=href, hashes={"sha256": stored.sha256}, size=stored.size,
            core_metadata={"sha256": metadata.sha256} if metadata else False,
            on_disk=pagerecord.on_disk(stored.stamp, metadata),
            provenance=href + PROVENANCE_SUFFIX if provenance else None,
        )
        self.links.verified(key, rel, Linked(stored.sha256, metadata.sha256 if metadata else None,
                                             sidecars(metadata is not None, provenance)))
        return FetchedFile(local, (stored.size or 0) if downloaded else None,
                           _pip_reads(core, served, metadata))

    def _ensure(self, key: str, url: str, hashes: Mapping[str, str], size: int | None, old: Stored | None,
                lock_key: str, before_download: Callable[[], None],
                local: Callable[[], bytes | None] | None = None,
                inspect: Callable[[BinaryIO], None] | None = None,
                cap: int | None = None) -> tuple[Stored, bool]:
        """The file at the store's ``key`` verified against ``hashes``; True when it had to be downloaded.

        ``old`` is our record of the file when we last verified it: while its size and stamp
        still hold, the file is trusted without reading it; otherwise it is hashed where it
        lies on a filesystem store, and downloaded again on an object store (reading an
        object back costs as much as fetching it from upstream, and proves less).  For the
        same reason force-check, which hashes every file on a filesystem store, trusts an
        object whose size and ETag still match the record, as a run does (``verify --hash``
        reads them); a key in ``suspect`` is never trusted.  ``local``
        may offer the bytes from what the mirror already holds; they are used instead of a
        download only when they match ``hashes``.  ``inspect`` is shown a verified download
        before it is published (the core metadata is read from there on every store).  ``cap``
        bounds a download whose size the page does not give (default: max-file-size).
        """
        trusted = old if old is not None and _matches(hashes, {"sha256": old.sha256}) else None
        if key in self.suspect:
            trusted = None
        hashable = self.store.local_path(key) is not None  # only a file can be hashed where it lies
        if trusted is not None and not (self.force_check and hashable):
            now = self.store.stat(key)
            if (now is not None and now.size == trusted.size and size in (None, now.size)
                    and trusted.stamp in (None, now.stamp)):
                return Stored(trusted.sha256, now.size, now.stamp), False
        with self.links.exclusive(lock_key):
            path = self.store.local_path(key)
            if path is not None and self.store.stat(key) is not None:
                # Left by an interrupted run, changed since we verified it, or asked to re-check.
                # Hashed where it lies: a filesystem store's capability (the file below web/).
                digest, digests = hash_file(path, set(hashes))
                if (_matches(hashes, digests) and size in (None, digest.size)
                        and (trusted is None or digest.sha256 == trusted.sha256)):
                    now = self.store.stat(key)
                    return Stored(digest.sha256, digest.size, now.stamp if now else None), False
                logger.warning("%s: on-disk copy does not match upstream; downloading again",
                               shown(path.name))
            before_download()
            data = local() if local is not None else None
            if data is not None and _verified_bytes(data, hashes) and size in (None, len(data)):
                stat = self.store.publish_page(key, data)
                return Stored(hashlib.sha256(data).hexdigest(), len(data), stat.stamp), False
            with self.store.upload(key) as up:
                digest = self.master.download(url, up.file, hashes, size, cap=cap)
                if inspect is not None:
                    inspect(up.file)
                stat = up.commit()
            return Stored(digest.sha256, digest.size, stat.stamp), True

    def _refuse_conflict(self, key: str, rel: str, filename: str, sha256: str | None, *,
                         metadata: bool) -> None:
        """Raise when another page links ``rel`` with other bytes than this page asks for."""
        for project, how in sorted(self.links.others(key, rel).items()):
            theirs = how.metadata_sha256 if metadata else how.sha256
            if theirs is not None and theirs != sha256:
                what = f"{filename}{METADATA_SUFFIX if metadata else ''}"
                raise UpstreamError(
                    f"file {what[:120]!r}: {project}'s page links it with sha256 {theirs}; refusing to "
                    f"replace it with {'other' if sha256 else 'unverifiable'} bytes for this project")

    def _ensure_metadata(self, key: str, rel: str, path: Path, f: DistFile, old: Known | None,
                         from_download: bytes | None = None, holder: str | None = None,
                         served: list[bytes] | None = None) -> Stored | None:
        """PEP 658 metadata beside the file as verified, or None when upstream has none to give.

        A page sharing a file ``holder``'s pages hold (see ``owners``) gets the metadata only
        when ``holder`` published the same bytes; it never writes any.  When it is downloaded,
        its bytes are appended to ``served`` (if given): the dependency records read what pip reads.
        """
        if not f.core_metadata:
            return None
        expected = dict(f.core_metadata) if isinstance(f.core_metadata, Mapping) else {}
        if holder is not None:
            return self._shared_metadata(key, rel, path, f, expected, holder)
        # A wheel's PEP 658 file is its own *.dist-info/METADATA, which the mirror has just verified
        # as part of the wheel: take it from there when it matches the page's hash (no request).
        # Read from the download before it was published; a wheel kept from an earlier run is
        # read where it lies on a filesystem store, and never read back from an object store.
        local: Callable[[], bytes | None] | None = None
        if from_download is not None:
            local = lambda: from_download  # noqa: E731
        elif f.filename.endswith(".whl") and self.store.local_path(self.layout.file_key(path)) is not None:
            local = lambda: _metadata_in_wheel(path)  # noqa: E731
        try:
            stored, _ = self._ensure(
                self.layout.file_key(path) + METADATA_SUFFIX, f.url + METADATA_SUFFIX, expected, None,
                old.metadata if old else None, rel + METADATA_SUFFIX,
                lambda: self._refuse_conflict(key, rel, f.filename, expected.get("sha256"), metadata=True),
                local, cap=self.master.max_page_bytes,
                inspect=None if served is None else lambda staged: served.append(_staged_bytes(staged)))
        except NotFound:
            # PEP 714: a page may advertise metadata the server cannot serve; pip then falls back.
            logger.warning("%s: advertised metadata is missing upstream; not advertising it",
                           shown(f.filename))
            return None
        return stored

    def _shared_metadata(self, key: str, rel: str, path: Path, f: DistFile, expected: Mapping[str, str],
                         holder: str) -> Stored | None:
        """The holder's metadata beside a shared file, when it has the bytes this page advertises."""
        theirs = self._known_of(holder, rel)

        def refuse() -> None:  # called where a download would start: this page may not publish it
            self._refuse_conflict(key, rel, f.filename, expected.get("sha256"), metadata=True)
            raise _NotOurs

        try:
            stored, _ = self._ensure(
                self.layout.file_key(path) + METADATA_SUFFIX, f.url + METADATA_SUFFIX, expected, None,
                theirs.metadata if theirs else None, rel + METADATA_SUFFIX, refuse)
        except _NotOurs:
            logger.warning("%s: %s: %s's page holds this file and has not published this metadata beside "
                           "it; not advertising it", key, shown(f.filename), holder)
            return None
        return stored

    def _known_of(self, project: str, rel: str) -> Known | None:
        """What ``project``'s published JSON page records for ``rel`` (None: it does not link it)."""
        try:
            return read_known(self.store, self.layout.page_key(project, PAGE_JSON)).get(
                self.layout.href_prefix + rel)
        except UnsafePath:
            return None

    def _ensure_provenance(self, key: str, rel: str, path: Path, f: DistFile, old: Known | None,
                           holder: str | None = None) -> bool:
        """PEP 740 provenance beside the file, checked to be a JSON object; False when upstream has none.

        Nothing on the page hashes it, so a copy our page already links is kept as it is,
        and fetched again with force-check (the only way to compare it with upstream's).
        A page sharing a file ``holder``'s pages hold (see ``owners``) never fetches one: it
        links the holder's copy, or none when the holder links none.
        """
        if f.provenance is None:
            return False
        prov_key = self.layout.file_key(path) + PROVENANCE_SUFFIX
        what = f"{f.filename[:120]}{PROVENANCE_SUFFIX}"
        if holder is not None:
            theirs = self._known_of(holder, rel)
            if theirs is not None and theirs.provenance and self.store.stat(prov_key) is not None:
                return True
            logger.warning("%s: %s: %s's page holds this file and links no provenance for it; not linking "
                           "the one this page advertises", key, shown(f.filename), holder)
            return False
        if (old is not None and old.provenance and not self.force_check
                and self.store.stat(prov_key) is not None):
            return True
        with self.links.exclusive(rel + PROVENANCE_SUFFIX):
            try:
                data = self.master.fetch_provenance(f.provenance, f.filename)
            except NotFound:
                # Like PEP 714 metadata: an advertised provenance the server cannot give is not linked.
                logger.warning("%s: advertised provenance is missing upstream; not linking it",
                               shown(f.filename))
                return False
            check_provenance(data, shown(what))
            self.store.publish_page(prov_key, data)
        return True

    def _delete_files(self, owner: str, hrefs: set[str]) -> None:
        """Delete files ``owner``'s pages no longer link, unless another project's page links them."""
        prefix = self.layout.href_prefix
        for href in hrefs:
            if not href.startswith(prefix):
                continue
            try:
                path = confined(self.layout.packages, [unquote(s) for s in href[len(prefix):].split("/")])
            except UnsafePath:
                continue

            def delete(path: Path = path) -> None:
                key = self.layout.file_key(path)
                # The store prunes the directories each delete leaves empty.
                stat = self.store.delete(key)
                if stat is not None:
                    logger.info("deleted %s", shown(str(path), 400))
                    with self._deleted_lock:
                        self.deleted_files += 1
                        self.deleted_bytes += stat.size
                for sidecar in SIDECARS:  # PEP 658 metadata and PEP 740 provenance go with their file
                    if self.store.delete(key + sidecar):
                        logger.debug("deleted %s", shown(str(path) + sidecar, 400))

            other = self.links.delete_if_unlinked(owner, self._rel(href), delete)
            if other is not None:
                logger.warning("%s: no longer links %s, but %s does: file kept", owner, shown(path.name),
                               other)
                # What was published beside it goes when no page left links it.
                self._drop_sidecars(owner, self._rel(href), path, frozenset(SIDECARS))

    def _drop_unadvertised(self, key: str, known: Mapping[str, Known], local: list[DistFile],
                           plan: list[tuple[DistFile, str, Path]]) -> None:
        """Delete what the holder published beside a file its pages keep but no longer link (upstream
        stopped advertising it), once the new pages are out and unless another page links it."""
        for mine, (_, href, path) in zip(local, plan, strict=True):
            old = known.get(href)
            if old is None or not _sidecars_of(old):
                continue
            now = sidecars(bool(mine.core_metadata), mine.provenance is not None)
            rel = self._rel(href)
            if _sidecars_of(old) - now and self.links.sidecar_holder(key, rel) is None:
                self._drop_sidecars(key, rel, path, _sidecars_of(old) - now)

    def _drop_sidecars(self, key: str, rel: str, path: Path, suffixes: frozenset[str]) -> None:
        """Delete ``rel``'s sidecars ``suffixes`` that no page but ``key``'s links (delete-packages only)."""
        if not self.delete_packages:
            return
        for suffix in sorted(suffixes):
            sidecar = self.layout.file_key(path) + suffix

            def delete(sidecar: str = sidecar) -> None:
                if self.store.delete(sidecar):  # the gate records it for diff-file
                    logger.info("deleted %s", shown(sidecar, 400))

            self.links.delete_sidecar_if_unlinked(key, rel, suffix, delete)

    def _page_links(self, project: str, rel: str) -> Linked | None:
        """How ``project``'s pages (or its interrupted sync) link ``rel``; None when they do not."""
        try:
            page_key = self.layout.page_key(project, PAGE_JSON)
        except UnsafePath:
            return None
        href = self.layout.href_prefix + rel
        known = read_known(self.store, page_key).get(href)
        if known is not None:
            return Linked(known.sha256, known.metadata_sha256, _sidecars_of(known))
        return Linked(None, None) if href in self._read_intent(project) else None

    def on_mirror(self, name: str) -> bool:
        """Anything of the project is on the mirror: a page, or files its intents file names.

        A sync stopped between its two pages leaves one; a sync or removal stopped
        between its files may leave files and no page at all.
        """
        key = normalize(name)
        try:
            pages = [self.layout.page_key(name, page) for page in PAGES]
        except UnsafePath:
            return False
        return any(self.store.stat(page) is not None for page in pages) or bool(
            self.delete_packages and self._read_intent(key))

    def has_pages(self, name: str) -> bool:
        """Both pages of the project are published (False for a name that cannot have pages)."""
        try:
            return has_pages(self.store, self.layout, name)
        except UnsafePath:
            return False

    def interrupted(self) -> list[str]:
        """Projects with an intents file: a sync or removal of theirs stopped before its end."""
        try:
            return sorted(entry.name for entry in os.scandir(self.layout.intents)
                          if is_valid_project_name(entry.name))
        except FileNotFoundError:
            return []

    def _read_intent(self, key: str) -> set[str]:
        return self._intent_file(key) or set()

    def _intent_file(self, key: str) -> set[str] | None:
        """The hrefs the project's intents file names; None when it has none."""
        try:
            return set((self.layout.intents / key).read_text(encoding="utf-8").split())
        except FileNotFoundError:
            return None

    def _write_intent(self, key: str, hrefs: set[str]) -> None:
        atomic_write(self.layout.intents / key, "".join(f"{h}\n" for h in sorted(hrefs)).encode(),
                     self.layout.staging)

    def _clear_intent(self, key: str) -> None:
        remove_file(self.layout.intents / key, self.layout.staging)

    def remove_project(self, name: str, why: str = "gone upstream") -> None:
        """Take a project off the mirror: its pages, then (with delete-packages) its files.

        The entry point for every removal (gone upstream, or no longer selected).
        """
        key = normalize(name)
        json_key = self.layout.page_key(name, PAGE_JSON)
        published = self.store.read(json_key)
        known = pagerecord.from_bytes(published)
        doomed = set(known) | self._read_intent(key)
        if self.delete_packages and doomed:
            self._write_intent(key, doomed)  # the pages are the only other record of these files
        before = NONE if published is None else known_totals(known)
        if self.tally is not None:
            self.tally.before(key, before)
        for page in (PAGE_HTML, PAGE_JSON):  # the store prunes the project's emptied directory
            self.store.delete(self.layout.page_key(name, page))
        if self.tally is not None:
            self.tally.changed(before, NONE)
        self.json_api.remove(key)
        if self.delete_packages:
            self._delete_files(key, doomed)
            self._clear_intent(key)
        self.links.settle(key, ())
        logger.info("%s: removed (%s)", key, why)


def _without_unusable_versions(key: str, page: ProjectPage) -> ProjectPage:
    """``page`` without PEP 700 versions no release can have, said once per page read (issue 18, case 11)."""
    if page.versions is None:
        return page
    kept, dropped = usable_versions(page.versions)
    if not dropped:
        return page
    logger.warning("%s: dropping %d PEP 700 versions entr%s longer than %d characters (first: %s)",
                   key, len(dropped), "y" if len(dropped) == 1 else "ies", MAX_VERSION_LENGTH,
                   shown(dropped[0], 60))
    return replace(page, versions=kept)


def _metadata_sha256(local: DistFile) -> str | None:
    """The sha256 of the PEP 658 metadata our page advertises for ``local`` (None: it advertises none)."""
    metadata = local.core_metadata
    return metadata.get("sha256") if isinstance(metadata, Mapping) else None


def _verifiable(hashes: Mapping[str, str]) -> bool:
    """True when ``hashes`` names a digest a download can be checked against."""
    return any(a in VERIFIABLE for a in hashes)
