"""Sync one project: fetch its page, fetch what is missing, write its pages, prune.

Pages are written only after every file they link is on disk and verified, so
a client never follows a link to a missing or half-written file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from .depstore import DependencyRecords, MirroredFile
from .errors import NotFound, UnsafePath
from .layout import PAGE_HTML, PAGE_JSON, UrlPolicy, file_href, file_segments, project_dir
from .master import Digest, Master
from .names import normalize
from .rootindex import has_pages
from .selection import Exclusion, Selection
from .simple import DistFile, ProjectPage, render_project_html, render_project_json
from .stats.filenames import candidate_projects
from .storage import MAX_SEGMENT_BYTES, atomic_write, confined, prune_empty_dirs, remove_file, staged

logger = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata"  # PEP 658: a file's core metadata is at its URL plus this


@dataclass(frozen=True)
class Known:
    """What our own published page says about a file: verified facts, no need to hash again."""

    sha256: str
    size: int | None
    metadata_sha256: str | None


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

    def page_dir(self, name: str) -> Path:
        return confined(self.simple, project_dir(name, self.hash_index))


def read_known(page_dir: Path) -> dict[str, Known]:
    """href -> Known, from the JSON page we published last time (empty when there is none)."""
    try:
        doc = json.loads((page_dir / PAGE_JSON).read_bytes())
        files = doc["files"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}
    known = {}
    for entry in files:
        try:
            metadata = entry.get("core-metadata")
            known[entry["url"]] = Known(
                sha256=entry["hashes"]["sha256"],
                size=entry.get("size"),
                metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
            )
        except (KeyError, TypeError, AttributeError):
            continue
    return known


def hash_file(path: Path, algorithms: set[str]) -> tuple[Digest, dict[str, str]]:
    """sha256 and size of a file on disk, plus any other requested digests."""
    hashers = {a: hashlib.new(a) for a in algorithms | {"sha256"} if a in hashlib.algorithms_guaranteed}
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


class ProjectSync:
    """Syncs projects into one mirror; safe to use from many worker threads."""

    def __init__(self, master: Master, layout: Layout, policy: UrlPolicy, *,
                 workers: int, delete_packages: bool, force_check: bool,
                 selection: Selection | None = None, records: DependencyRecords | None = None) -> None:
        self.master = master
        self.selection = selection
        self.records = records
        self.layout = layout
        self.policy = policy
        self.delete_packages = delete_packages
        self.force_check = force_check
        # Files of all projects share one pool, so a project with many files keeps every
        # connection busy.  Twice `workers` threads: while one fsyncs and renames the file it
        # just fetched, another already holds the request slot it let go.  Master's slots
        # still cap the requests in flight at `workers`.
        self.downloads = ThreadPoolExecutor(max_workers=2 * workers, thread_name_prefix="download")

    def close(self) -> None:
        self.downloads.shutdown(wait=True, cancel_futures=True)

    def sync(self, name: str, serial: int) -> Outcome:
        key = normalize(name)
        page_dir = self.layout.page_dir(name)
        page = self.master.fetch_page(key, serial)
        if page is None:
            return Outcome(key, name, serial, removed=True)
        if self.selection is not None and self.selection.active:
            excluded = self.selection.project_page(key, page)
            if excluded is not None:
                return Outcome(key, name, serial, excluded=excluded)
            chosen = self.selection.plan_files(key, page)
            for filename, why in chosen.dropped:
                logger.debug("%s: not mirroring %s (%s)", key, filename, why)
            page = replace(page, files=chosen.files, versions=chosen.versions)
        known = read_known(page_dir)
        # Not both pages yet (new, or a sync stopped between them): the root index may not name it.
        created = not has_pages(page_dir)
        plan = self._plan_files(page)  # every URL checked before anything is downloaded
        # Files downloaded before the page links them, and files the page stops linking, are
        # recorded first: if this sync is killed, the next one deletes those no page ends up linking.
        leftover = self._read_intent(key)
        wanted = {href for _, href, _ in plan}
        unlinked = (set(known) | leftover) - wanted
        intent = (wanted - set(known)) | unlinked
        if self.delete_packages and intent != leftover:
            self._write_intent(key, intent)
        local, fetched, fetched_bytes = self._fetch_files(plan, known)
        requires = None
        if self.records is not None:
            requires = self.records.update(key, (
                MirroredFile(f.filename, f.hashes["sha256"], path,
                             path.with_name(path.name + METADATA_SUFFIX) if f.core_metadata else None)
                for f, (_, _, path) in zip(local, plan, strict=False)))
        local_page = replace(page, name=key, files=tuple(local))
        page_serial = page.last_serial if page.last_serial is not None else serial
        # JSON first: it is our record of what is verified on disk.
        atomic_write(page_dir / PAGE_JSON, render_project_json(local_page, page_serial), self.layout.staging)
        atomic_write(page_dir / PAGE_HTML, render_project_html(local_page, page_serial), self.layout.staging)
        if self.delete_packages:
            self._delete_files(key, unlinked)
            self._clear_intent(key)
        if fetched:
            logger.info("%s: %d new file(s), %d bytes", key, fetched, fetched_bytes)
        else:
            logger.debug("%s: up to date", key)
        return Outcome(key, name, serial, created=created, files=fetched, bytes=fetched_bytes,
                       requires=requires)

    def _fetch_files(
        self, plan: list[tuple[DistFile, str, Path]], known: Mapping[str, Known]
    ) -> tuple[list[DistFile], int, int]:
        """Fetch the planned files in parallel on the shared download pool; local records in page order."""
        futures = [self.downloads.submit(self._fetch_one, f, href, path, known.get(href))
                   for f, href, path in plan]
        results: list[tuple[DistFile, int]] = []
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
        fetched = sum(1 for _, size in results if size >= 0)
        return [f for f, _ in results], fetched, sum(size for _, size in results if size > 0)

    def _plan_files(self, page: ProjectPage) -> list[tuple[DistFile, str, Path]]:
        plan: list[tuple[DistFile, str, Path]] = []
        seen: set[str] = set()
        for f in page.files:
            segments = file_segments(f.url, self.policy)
            if f.filename != segments[-1]:
                raise UnsafePath(f"refusing file {f.filename[:100]!r}: its URL names {segments[-1][:100]!r}")
            if f.core_metadata and len(segments[-1].encode()) > MAX_SEGMENT_BYTES - len(METADATA_SUFFIX):
                raise UnsafePath(f"refusing file {f.filename[:40]!r}...: too long a name to keep its "
                                 f"{METADATA_SUFFIX} beside it")
            href = file_href(segments, self.layout.hash_index)
            if href not in seen:
                seen.add(href)
                plan.append((f, href, confined(self.layout.packages, segments)))
        return plan

    def _fetch_one(self, f: DistFile, href: str, path: Path, old: Known | None) -> tuple[DistFile, int]:
        """One file and its metadata; returns its local record and bytes downloaded (-1: none)."""
        digest, downloaded = self._ensure(path, f.url, f.hashes, f.size, old)
        metadata = self._ensure_metadata(path, f, old)
        local = replace(
            f, url=href, hashes={"sha256": digest.sha256}, size=digest.size,
            core_metadata={"sha256": metadata} if metadata else False,
        )
        return local, digest.size if downloaded else -1

    def _ensure(self, path: Path, url: str, hashes: Mapping[str, str], size: int | None,
                old: Known | None) -> tuple[Digest, bool]:
        """The file at ``path`` verified against ``hashes``; True when it had to be downloaded."""
        if old is not None and not self.force_check and _matches(hashes, {"sha256": old.sha256}):
            try:
                on_disk = path.stat().st_size
            except FileNotFoundError:
                on_disk = -1
            if on_disk == old.size and size in (None, on_disk):
                return Digest(old.sha256, on_disk), False
        if path.is_file():
            # Left by an interrupted run or asked to re-check: hashing beats downloading.
            digest, digests = hash_file(path, set(hashes))
            if _matches(hashes, digests) and size in (None, digest.size):
                return digest, False
            logger.warning("%s: on-disk copy does not match upstream; downloading again", path.name)
        with staged(path, self.layout.staging) as st:
            digest = self.master.download(url, st.file, hashes, size)
            st.commit()
        return digest, True

    def _ensure_metadata(self, path: Path, f: DistFile, old: Known | None) -> str | None:
        """PEP 658 metadata beside the file; its sha256, or None when upstream has none to give."""
        if not f.core_metadata:
            return None
        expected = dict(f.core_metadata) if isinstance(f.core_metadata, Mapping) else {}
        meta_path = path.with_name(path.name + ".metadata")
        if (old is not None and old.metadata_sha256 and not self.force_check
                and _matches(expected, {"sha256": old.metadata_sha256}) and meta_path.is_file()):
            return old.metadata_sha256
        try:
            digest, _ = self._ensure(meta_path, f.url + ".metadata", expected, None, None)
        except NotFound:
            # PEP 714: a page may advertise metadata the server cannot serve; pip then falls back.
            logger.warning("%s: advertised metadata is missing upstream; not advertising it", f.filename)
            return None
        return digest.sha256

    def _delete_files(self, owner: str, hrefs: set[str]) -> None:
        """Delete files ``owner``'s page no longer links, unless another project's page links them."""
        prefix = "../../../packages/" if self.layout.hash_index else "../../packages/"
        for href in hrefs:
            if not href.startswith(prefix):
                continue
            try:
                path = confined(self.layout.packages, [unquote(s) for s in href[len(prefix):].split("/")])
            except UnsafePath:
                continue
            other = self._linked_elsewhere(owner, href, path.name)
            if other is not None:
                logger.warning("%s: no longer links %s, but %s does: file kept", owner, path.name, other)
                continue
            for victim in (path, path.with_name(path.name + ".metadata")):
                if remove_file(victim):
                    logger.debug("deleted %s", victim)
            prune_empty_dirs(path.parent, self.layout.packages)

    def _linked_elsewhere(self, owner: str, href: str, filename: str) -> str | None:
        """Another project whose page links ``href``: an upstream page may claim any project's file.

        File names on PyPI start with their project's name, so the projects
        the name could belong to are the only pages to read.
        """
        for candidate in candidate_projects(filename):
            if candidate == owner:
                continue
            try:
                page_dir = self.layout.page_dir(candidate)
            except UnsafePath:
                continue
            if href in read_known(page_dir):
                return candidate
        return None

    def _read_intent(self, key: str) -> set[str]:
        try:
            return set((self.layout.intents / key).read_text(encoding="utf-8").split())
        except FileNotFoundError:
            return set()

    def _write_intent(self, key: str, hrefs: set[str]) -> None:
        atomic_write(self.layout.intents / key, "".join(f"{h}\n" for h in sorted(hrefs)).encode(),
                     self.layout.staging)

    def _clear_intent(self, key: str) -> None:
        remove_file(self.layout.intents / key)

    def remove_project(self, name: str, why: str = "gone upstream") -> None:
        """Take a project off the mirror: its pages, then (with delete-packages) its files."""
        key = normalize(name)
        page_dir = self.layout.page_dir(name)
        doomed = set(read_known(page_dir)) | self._read_intent(key)
        if self.delete_packages and doomed:
            self._write_intent(key, doomed)  # the pages are the only other record of these files
        for page in (PAGE_HTML, PAGE_JSON):
            remove_file(page_dir / page)
        prune_empty_dirs(page_dir, self.layout.simple)
        if self.delete_packages:
            self._delete_files(key, doomed)
            self._clear_intent(key)
        logger.info("%s: removed (%s)", key, why)
