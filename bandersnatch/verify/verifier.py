"""``bandersnatch verify``: is every page, link and file of the mirror what it should be?

Memory stays flat at PyPI scale (750,000 projects, ten million files): no
set of every file is ever held.  The steps, each streaming from disk to disk
under ``<directory>/tmp/verify/``:

1. list the project directories, sorted on disk (``extsort``);
2. the root index, streamed against that list: it must name exactly the
   projects with both pages; a directory it does not name is a ghost when
   upstream does not list it either (upstream is asked only then; its listing
   is kept as 8-byte digests);
3. every project's two pages (``pagecheck``): they parse, agree, and link only
   below ``packages/``; each link becomes a line (path, size, sha256, mtime,
   ETag, project) of a spool file;
4. the spool, sorted by path, merged with a sorted walk of ``packages/``: a
   path on both sides is checked (size, and sha256 on a pool of reader
   threads), one only in the spool is missing, one only on disk is an orphan.

On an object store (``storage-backend = s3``) steps 1 to 3 read the local
record of the pages (``<directory>/s3-pages/``), and step 4 asks the store for
each path of the spool (``objectcheck``: a HEAD, or with ``--hash`` a streamed
GET) and never lists the bucket, so orphans are not looked for there.  What
clients read is the bucket, not the record: steps 2 and 3 also HEAD each
root index and page object (on ``workers`` threads), so one deleted or cut
there is reported like a page missing or damaged in ``web/``.

A checkpoint (the step and the last project or path done, with the spool's
and the problem list's lengths then) is rewritten every second, so a killed
verify resumes where it stopped.  Every problem found is checked once more
right before it is reported, so a mirror run that changed a page or a file
meanwhile is not reported as damage: plain verify takes no lock and never
holds the mirror's runs back, however long it hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

import filelock

from ..config.settings import Config
from ..config.values import ReleaseFiles
from ..errors import BandersnatchError, ConfigError, LockHeld
from ..formats.layout import PAGE_HTML, PAGE_JSON, has_pages_in, key_dir
from ..ledger.extsort import open_text, read_lines, sort_lines
from ..ledger.state import NameSet, StateFiles, name_hash
from ..names import is_valid_project_name, normalize
from ..progress import Progress, human_bytes
from ..publish.budget import ALLOW_REPAIR_REMOVAL
from ..publish.gate import Gate
from ..publish.owners import owners_of, sidecar_of
from ..runtime import Runtime, build_selection, published_dir
from ..selection.records import DependencyRecords
from ..store.atomic import atomic_write, clear_staging, link_refused
from ..store.recorded import RECORD_DIR
from ..sync.mirror import acquire_lock
from ..sync.package import Layout, ProjectSync
from ..sync.rootindex import RootIndex
from ..upstream.master import Master
from .objectcheck import check_object, published
from .pagecheck import (
    CONFLICT,
    FILE_KINDS,
    GHOST,
    HASH,
    MISSING,
    ORPHAN,
    PAGE_KINDS,
    ROOT_DAMAGED,
    ROOT_EXTRA,
    ROOT_MISSING,
    SEP,
    SIZE,
    STRAY,
    FileRecord,
    PageReport,
    Problem,
    check_project,
    linked_by,
)
from .repair import Repair, RepairReport
from .status import published_missing

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 2  # 2: spool lines carry the ETag
_NOT_KEPT = -2  # _check_path's "bytes hashed" for a linked file on-demand has not fetched yet (-1: unlinked)
_WINDOW = 64  # files queued for the readers beyond those being read
_WINDOW = 64  # projects queued for the page checks beyond those being checked
# Paths go to the reader threads in batches: a future per path was a fifth of a --fast run's CPU.
# A batch that reads files is cut early (by the sizes recorded) so big files still spread over
# the readers; one that only stats them is cut by count.
_BATCH_PATHS, _BATCH_READ_PATHS, _BATCH_BYTES = 64, 8, 4 << 20
Pair = tuple[str, list[FileRecord] | None, str | None]  # a path's sort key, its records, where it is on disk


def sha256_file(path: Path | str) -> tuple[str, int]:
    """sha256 and size of a file; hashlib lets go of the GIL, so several threads read in parallel."""
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


@dataclass
class Counts:
    projects: int = 0
    files: int = 0  # paths checked on disk
    hashed: int = 0
    bytes: int = 0  # bytes hashed
    trusted: int = 0  # --fast: size and mtime as recorded, not read
    kept: int = 0  # unlinked files kept on purpose (delete-packages = false)
    not_kept: int = 0  # linked files the web server has not fetched yet (release-files = on-demand)


@dataclass
class Checkpoint:
    fast: bool
    started: str
    phase: str  # "pages", "files" or "report"
    after: str | None = None  # the last project (pages) or path sort key (files) done
    records: int = 0  # bytes of the spool written when ``after`` was done
    problems: int = 0  # bytes of the problem list then
    counts: Counts = field(default_factory=Counts)


@dataclass
class Result:
    problems: list[Problem]
    counts: Counts
    resumed: str | None  # when the verify that this one finished had started


class Verifier:
    """Checks one mirror; ``projects`` (a ProjectSync) answers which pages link a file.

    ``objects``: the object store the files are in (an s3 mirror), checked key by key
    instead of walking ``packages/``; ``fast`` there means a HEAD instead of a read.
    """

    def __init__(self, config: Config, projects: ProjectSync, master: Master, *, fast: bool,
                 progress: Progress | None = None, checkpoint_every: float = 1.0,
                 objects: Gate | None = None, work: Path | None = None, check_root: bool = True) -> None:
        """``work``: where the spool and checkpoint go (default ``<directory>/tmp/verify``);
        ``check_root`` False: a first sync is under way, its root index is not written yet."""
        self.config = config
        self.fast = fast
        self.objects = objects
        # What clients read: the bucket behind the record, which answers for pages without asking it.
        self.bucket = objects.clients_store() if objects is not None else None
        self.projects = projects
        self.master = master
        self.progress = progress or Progress(None)
        self.checkpoint_every = checkpoint_every
        self.layout: Layout = projects.layout
        self.work = work or config.directory / "tmp" / "verify"
        self.check_root = check_root
        # release-files = false: pages link upstream's files; on-demand: a linked file may not be here yet.
        self.external = config.release_files is ReleaseFiles.FALSE
        self.on_demand = config.release_files is ReleaseFiles.ON_DEMAND
        self.root = RootIndex(self.layout.simple, self.work / "stage", config.hash_index)
        self.cp = Checkpoint(fast, _now(), "pages")
        self._saved = 0.0

    # ------------------------------------------------------------ the run

    def run(self) -> Result:
        self.work.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.work.parent / "verify.lock"))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise LockHeld(f"another bandersnatch verify holds {lock.lock_file}; this one stops") from None
        try:
            resumed = self._resume()
            if resumed is None:
                self._start()
            if self.cp.phase == "pages":
                self._pages()
                sort_lines(self.work / "records", self.work / "records.sorted", self.work / "runs")
                self._save("files", None, force=True)
            if self.cp.phase == "files":
                self._files()
                self._save("report", None, force=True)
            problems = [p for p in self._read_problems() if self._confirmed(p)]
            problems.extend(self._confirm_root(problems))
            return Result(problems, self.cp.counts, resumed)
        finally:
            lock.release()

    def finish(self) -> None:
        """Forget this verify: the next one starts from the beginning."""
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ checkpoint

    def _resume(self) -> str | None:
        try:
            doc = json.loads((self.work / "checkpoint").read_bytes())
            if doc.pop("version") != CHECKPOINT_VERSION:
                return None
            counts = Counts(**doc.pop("counts"))
            cp = Checkpoint(counts=counts, **doc)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if cp.fast != self.fast:
            logger.info("Not resuming the verify started at %s: it was run %s --fast", cp.started,
                        "with" if cp.fast else "without")
            return None
        for name, length in (("records", cp.records), ("problems", cp.problems)):
            path = self.work / name
            if not path.is_file() or path.stat().st_size < length:
                return None
            os.truncate(path, length)  # drop what was written after the checkpoint
        self.cp = cp
        logger.info("Resuming the verify started at %s (%s step, after %s)", cp.started, cp.phase,
                    (cp.after or "the start").replace(SEP, "/"))
        return cp.started

    def _save(self, phase: str, after: str | None, force: bool = False,
              records: TextIO | None = None, problems: TextIO | None = None) -> None:
        now = time.monotonic()
        if not force and now - self._saved < self.checkpoint_every:
            return
        for f in (records, problems):
            if f is not None:
                f.flush()
        self.cp.phase, self.cp.after = phase, after
        self.cp.records = (self.work / "records").stat().st_size
        self.cp.problems = (self.work / "problems").stat().st_size
        doc = {"version": CHECKPOINT_VERSION, **asdict(self.cp)}
        atomic_write(self.work / "checkpoint", json.dumps(doc).encode(), self.work / "stage")
        self._saved = now

    # ------------------------------------------------------------ steps 1 and 2: directories, root index

    def _start(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        (self.work / "records").touch()
        with open_text(self.work / "problems", "w") as problems:
            with open_text(self.work / "dirs", "w") as dirs:
                for problem in self._list_dirs(dirs):
                    problems.write(problem.to_json() + "\n")
            sort_lines(self.work / "dirs", self.work / "dirs.sorted", self.work / "runs")
            (self.work / "dirs").unlink()
            for problem in self._check_root() if self.check_root else ():
                problems.write(problem.to_json() + "\n")
        self._save("pages", None, force=True)

    def _list_dirs(self, out: TextIO) -> Iterator[Problem]:
        """Write the project directories' names to ``out`` (in any order: they are sorted on disk
        next); yield what cannot be a project's, in name order.

        Streamed from ``scandir``: a sorted list of PyPI's 750,000 directory entries was most of
        verify's peak memory.  Only the strays (few) are held, to be yielded in order.
        """
        _refuse_link(self.layout.simple)
        strays: list[tuple[str, str, Problem]] = []  # (top, sub): the order they were yielded in
        if not self.config.hash_index:
            for top in _dirs_in(self.layout.simple):
                if _is_key(top.name):
                    out.write(top.name + "\n")
                else:
                    strays.append((top.name, "", Problem(STRAY, f"simple/{top.name}",
                                                         "not a normalized project name; left alone")))
        for top in _subdirs(self.layout.simple) if self.config.hash_index else ():
            if len(top.name) != 1:
                strays.append((top.name, "", Problem(STRAY, f"simple/{top.name}",
                                                     "not a hash-index directory; left alone")))
                continue
            for sub in _dirs_in(top.path):
                if _is_key(sub.name) and sub.name[0] == top.name:
                    out.write(sub.name + "\n")
                else:
                    why = "not a project directory of this layout; left alone"
                    strays.append((top.name, sub.name, Problem(STRAY, f"simple/{top.name}/{sub.name}", why)))
        strays.sort(key=lambda stray: stray[:2])
        yield from (problem for _, _, problem in strays)

    def _where(self, key: str) -> str:
        return "simple/" + "/".join(key_dir(key, self.config.hash_index))

    def _has_pages(self, key: str) -> bool:
        return has_pages_in(self.layout.simple.joinpath(*key_dir(key, self.config.hash_index)))

    def _check_root(self) -> Iterator[Problem]:
        """The root index against the project directories, both streamed in name order."""
        readers: dict[str, Callable[[], Iterator[str]]] = {}
        for label, names in (("simple/index.html", self.root.html_names),
                             ("simple/index.v1_json", self.root.json_names)):
            gone = self._unpublished(label)
            if gone is not None:
                yield Problem(ROOT_DAMAGED, label,
                              f"{gone[1]}; rebuilt from the project directories by --repair")
            try:
                for _ in names():
                    pass
                readers[label] = names
            except ValueError as exc:
                yield Problem(ROOT_DAMAGED, label, f"{exc}; rebuilt from the project directories by --repair")
        unnamed = self.work / "unnamed"
        with open_text(unnamed, "w") as out:
            for name, sources in _merge_sorted({"dir": read_lines(self.work / "dirs.sorted"),
                                                **{k: f() for k, f in readers.items()}}):
                pages = "dir" in sources and self._has_pages(name)
                named = [label for label in readers if label in sources]
                if not pages and named:
                    yield Problem(ROOT_EXTRA, name, f"named by {', '.join(named)} but has no pages", (name,))
                elif "dir" in sources and not named:
                    out.write(f"{name}\t{int(pages)}\n")  # a ghost unless upstream lists it
                elif pages and len(named) < len(readers):
                    missing = ", ".join(label for label in readers if label not in named)
                    yield Problem(ROOT_MISSING, name, f"has both pages but {missing} does not name it",
                                  (name,))
        yield from self._classify_unnamed(unnamed, readers)

    def _classify_unnamed(self, unnamed: Path, readers: Mapping[str, object]) -> Iterator[Problem]:
        if unnamed.stat().st_size == 0:
            return
        listed = self._upstream_names()
        with open_text(self.work / "ghosts", "w") as ghosts:
            for line in read_lines(unnamed):
                name, pages = line.split("\t")
                if listed is not None and name not in listed:
                    ghosts.write(name + "\n")
                    yield Problem(GHOST, self._where(name), "neither the root index nor upstream names it",
                                  (name,))
                elif pages == "1" and readers:
                    yield Problem(ROOT_MISSING, name, "has both pages but the root index does not name it",
                                  (name,))

    def _upstream_names(self) -> NameSet | None:
        """What upstream lists, as digests; None when it cannot be asked (nothing is then a ghost)."""
        try:
            return NameSet(name_hash(normalize(name)) for name, _ in self.master.list_packages_with_serial())
        except BandersnatchError as exc:
            logger.warning("Cannot ask upstream which projects it lists (%s): directories the root index "
                           "does not name are not told apart from ghosts", exc)
            return None

    # ------------------------------------------------------------ step 3: pages

    def _pages(self) -> None:
        ghosts: set[str] = set()
        with contextlib.suppress(FileNotFoundError):
            ghosts = set(read_lines(self.work / "ghosts"))
        total = sum(1 for _ in read_lines(self.work / "dirs.sorted"))
        self.progress.start(total, done=self.cp.counts.projects)
        keys = read_lines(self.work / "dirs.sorted", skip_through=self.cp.after)
        workers = max(2, self.config.workers)
        with open_text(self.work / "records", "a") as records, \
                open_text(self.work / "problems", "a") as problems, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pages") as pool:
            # A project's pages are checked on the pool only where that asks the bucket (HEADs);
            # reading the record alone gains nothing from threads.
            reports = (_in_order(pool, self._page_report, keys, workers + _WINDOW)
                       if self.objects is not None else ((key, self._page_report(key)) for key in keys))
            for key, report in reports:
                records.writelines(r.spool_line() for r in report.records)
                if key not in ghosts:
                    problems.writelines(p.to_json() + "\n" for p in report.problems)
                self.cp.counts.projects += 1
                self.progress.advance(files=len(report.records))
                self._save("pages", key, records=records, problems=problems)
            self._save("pages", None, force=True, records=records, problems=problems)
        self.progress.finish()

    # ------------------------------------------------------------ step 4: files

    def _files(self) -> None:
        counts = self.cp.counts
        after = self.cp.after
        total = sum(1 for _ in read_lines(self.work / "records.sorted"))
        self.progress.start(total, done=counts.files, unit="files")
        window: deque[tuple[list[str], Future[list[tuple[list[Problem], int]]]]] = deque()
        workers = max(2, self.config.workers)
        with open_text(self.work / "problems", "a") as problems, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            def settle(keys: list[str], future: Future[list[tuple[list[Problem], int]]]) -> None:
                for key, (found, hashed) in zip(keys, future.result(), strict=True):
                    problems.writelines(p.to_json() + "\n" for p in found)
                    self._count(found, hashed)
                    self.progress.advance(files=1, nbytes=max(0, hashed))
                    self._save("files", key, problems=problems)

            groups = _groups(read_lines(self.work / "records.sorted"), after)
            pairs = (((key, records, None) for key, records in groups) if self.objects is not None
                     else _pairs(groups, walk_sorted(self.layout.packages, after)))
            for batch in _batches(pairs, reads=not self.fast or self.objects is not None):
                window.append(([key for key, _, _ in batch], pool.submit(self._check_batch, batch)))
                while len(window) > 2 * workers + 2 or (window and window[0][1].done()):
                    settle(*window.popleft())
            while window:
                settle(*window.popleft())
            self._save("files", None, force=True, problems=problems)
        self.progress.finish()

    def _check_batch(self, batch: list[Pair]) -> list[tuple[list[Problem], int]]:
        return [self._check_path(key, records, path) for key, records, path in batch]

    def _check_path(self, key: str, records: list[FileRecord] | None,
                    path: str | None) -> tuple[list[Problem], int]:
        """Problems of one path below packages/, and the bytes hashed to find them (-1: not a linked file)."""
        rel = key.replace(SEP, "/")
        if self.objects is not None and records is not None:
            return check_object(self.objects, rel, records, read=not self.fast)
        if records is None:
            if not self.config.delete_packages:
                return [], -1  # kept on purpose: files upstream deleted stay with delete-packages = false
            return [Problem(ORPHAN, f"packages/{rel}", "no page links it; deleted by --repair")], -1
        if path is None and self.on_demand and not (self.layout.packages / rel).exists():
            return [], _NOT_KEPT  # fetched from upstream when a client first asks for it: not missing
        return check_file(self.layout.packages / rel if path is None else path, rel, records,
                          self.fast, exists=path is not None)

    def _count(self, found: list[Problem], hashed: int) -> None:
        counts = self.cp.counts
        if hashed == _NOT_KEPT:
            counts.not_kept += 1
            return
        if hashed < 0:
            counts.kept += 0 if found else 1
            return
        counts.files += 1
        if hashed:
            counts.hashed += 1
            counts.bytes += hashed
        elif not found and self.fast:
            counts.trusted += 1

    # ------------------------------------------------------------ confirmation

    def _read_problems(self) -> Iterator[Problem]:
        for line in read_lines(self.work / "problems"):
            yield Problem.from_json(line)

    def _confirmed(self, problem: Problem) -> bool:
        """Whether ``problem`` still holds now: a mirror run may have mended or changed it meanwhile."""
        if problem.kind in FILE_KINDS or problem.kind == CONFLICT:
            rel = problem.subject.removeprefix("packages/")
            records = [r for p in problem.projects for r in self._records_of(p) if r.rel == rel]
            path = self.layout.packages / rel
            if not records:
                return False  # no page links it any more
            if self.objects is not None:
                found, _ = check_object(self.objects, rel, records, read=not self.fast)
                return any(p.kind == problem.kind for p in found)
            found, _ = check_file(path, rel, records, fast=False, exists=path.is_file())
            return any(p.kind == problem.kind for p in found)
        if problem.kind == ORPHAN:
            return self._still_orphan(problem.subject.removeprefix("packages/"))
        if problem.kind in PAGE_KINDS:
            found = self._page_report(problem.projects[0]).problems
            return any(p.kind == problem.kind and p.subject == problem.subject for p in found)
        if problem.kind == GHOST:
            return self.layout.simple.joinpath(*key_dir(problem.projects[0], self.config.hash_index)).is_dir()
        return problem.kind == STRAY  # root problems: re-checked together, by _confirm_root

    def _page_report(self, key: str) -> PageReport:
        """The project's pages as the record holds them, and (on an object store) as the bucket does."""
        where = self.layout.simple.joinpath(*key_dir(key, self.config.hash_index))
        with contextlib.suppress(FileNotFoundError, NotADirectoryError), \
                os.scandir(where) as entries:  # its pages: never read through a link
            for entry in entries:
                _refuse_link(entry)
        report = check_project(where, key, self._where(key), external=self.external)
        for page in (PAGE_JSON, PAGE_HTML):
            subject = f"{self._where(key)}/{page}"
            gone = self._unpublished(subject)
            if gone is not None:
                report.problems.append(Problem(gone[0], subject, gone[1], (key,)))
        return report

    def _unpublished(self, key: str) -> tuple[str, str] | None:
        """Why the object store does not hold the record's copy of ``key`` (kind, detail); None when it
        does, or on a filesystem store (the record is what clients read)."""
        if self.bucket is None:
            return None
        return published(self.bucket, key, self.layout.web.joinpath(*key.split("/")))

    def _records_of(self, key: str) -> list[FileRecord]:
        return check_project(self.layout.simple.joinpath(*key_dir(key, self.config.hash_index)), key,
                             self._where(key), external=self.external).records

    def _still_orphan(self, rel: str) -> bool:
        path = self.layout.packages / rel
        if not path.exists():
            return False
        # What is published beside a file (.metadata, .provenance) is linked only by a page
        # linking it, not by every page linking its file.
        sidecar = sidecar_of(rel)
        linked = rel if sidecar is None else sidecar[0]
        if (self.projects.links.others("", rel) if sidecar is None
                else self.projects.links.sidecar_linkers("", *sidecar)):
            return False
        # A file of a project whose pages cannot be read is that project's to sort out.
        for owner in owners_of(linked):
            where = self.layout.simple.joinpath(*key_dir(owner, self.config.hash_index))
            if where.is_dir() and not check_project(where, owner, self._where(owner),
                                                    external=self.external).linked:
                return False
        return True

    def _confirm_root(self, confirmed: list[Problem]) -> list[Problem]:
        """The root index's problems as they stand now (a run may have patched it since step 2)."""
        if not any(p.kind in (ROOT_DAMAGED, ROOT_MISSING, ROOT_EXTRA) for p in self._read_problems()):
            return []
        ghosts = {p.projects[0] for p in confirmed if p.kind == GHOST}
        with open_text(self.work / "dirs", "w") as dirs:
            for _ in self._list_dirs(dirs):
                pass
        sort_lines(self.work / "dirs", self.work / "dirs.sorted", self.work / "runs")
        return [p for p in self._check_root() if p.kind != GHOST and not set(p.projects) & ghosts]


# ------------------------------------------------------------------ pure-ish helpers


def check_file(path: Path | str, rel: str, records: list[FileRecord], fast: bool, *,
               exists: bool) -> tuple[list[Problem], int]:
    """One linked path against what its pages recorded; returns the problems and the bytes hashed."""
    subject = f"packages/{rel}"
    projects, by, shas, problems = linked_by(subject, records)
    if not exists:
        return [*problems, Problem(MISSING, subject, f"linked by {by} but not on disk", projects)], 0
    try:
        st = os.stat(path)
    except OSError as exc:
        return [*problems, Problem(MISSING, subject, f"cannot stat: {exc.strerror}", projects)], 0
    sizes = {r.size for r in records if r.size is not None}
    if sizes and st.st_size not in sizes:
        return [*problems, Problem(SIZE, subject, f"{st.st_size} bytes, {min(sizes)} recorded by {by}",
                                   projects)], 0
    if not shas or (fast and sizes and all(r.mtime_ns == st.st_mtime_ns for r in records)):
        return problems, 0
    try:
        digest, size = sha256_file(path)
    except OSError as exc:
        return [*problems, Problem(HASH, subject, f"cannot read: {exc.strerror}", projects)], 0
    if digest not in shas:
        problems.append(Problem(HASH, subject, f"sha256 {digest}, {shas[0]} recorded by {by}", projects))
    return problems, size


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_key(name: str) -> bool:
    return is_valid_project_name(name) and normalize(name) == name


def _subdirs(path: Path) -> list[os.DirEntry[str]]:
    """The directories in ``path``, sorted; a link among them is refused (LinkInMirror, exit 2)."""
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        _refuse_link(entry)
    return sorted((e for e in entries if e.is_dir(follow_symlinks=False)), key=lambda e: e.name)


def _dirs_in(path: Path | str) -> Iterator[os.DirEntry[str]]:
    """The directories in ``path`` as ``scandir`` gives them (unsorted, none held); a link among
    its entries is refused (LinkInMirror, exit 2)."""
    try:
        with os.scandir(path) as it:
            for entry in it:
                _refuse_link(entry)
                if entry.is_dir(follow_symlinks=False):
                    yield entry
    except (FileNotFoundError, NotADirectoryError):
        return


def _refuse_link(entry: os.DirEntry[str] | Path) -> None:
    """A link below web/ is neither followed nor judged (an orphan to delete, a page to trust)."""
    if entry.is_symlink():
        path = Path(entry)
        # The mirror directory is the parent of web/ (or of s3-pages/): found by its name.
        root = next((p.parent for p in path.parents if p.name in ("web", RECORD_DIR)), path.parent)
        raise link_refused(path, root)


def _in_order(pool: ThreadPoolExecutor, check: Callable[[str], PageReport], keys: Iterator[str],
              ahead: int) -> Iterator[tuple[str, PageReport]]:
    """``check`` of each key on ``pool``, at most ``ahead`` in flight, yielded in the keys' order
    (the checkpoint names the last key done, so nothing after it may be written first)."""
    window: deque[tuple[str, Future[PageReport]]] = deque()
    for key in keys:
        window.append((key, pool.submit(check, key)))
        if len(window) > ahead:
            done, future = window.popleft()
            yield done, future.result()
    while window:
        done, future = window.popleft()
        yield done, future.result()


def _merge_sorted(streams: dict[str, Iterator[str]]) -> Iterator[tuple[str, set[str]]]:
    """Names of several sorted streams in order, each once, with the labels of the streams naming it."""
    heads = {label: next(it, None) for label, it in streams.items()}
    while True:
        present = [name for name in heads.values() if name is not None]
        if not present:
            return
        name = min(present)
        labels = {label for label, head in heads.items() if head == name}
        yield name, labels
        for label in labels:
            heads[label] = next(streams[label], None)


def _groups(lines: Iterator[str], after: str | None) -> Iterator[tuple[str, list[FileRecord]]]:
    """Spool lines sorted by path, grouped per path (pages of several projects may link one file)."""
    current: str | None = None
    group: list[FileRecord] = []
    for line in lines:
        key = line.split("\t", 1)[0]
        if after is not None and key <= after:
            continue
        if key != current and group:
            yield current or "", group
            group = []
        current = key
        group.append(FileRecord.from_spool(line))
    if group:
        yield current or "", group


def walk_sorted(root: Path, after: str | None = None) -> Iterator[tuple[str, str]]:
    """Every file below ``root`` as (sort key, path), in sort key order; only keys after ``after``.

    Strings, not Paths, each directory entry's own type, and one generator with a stack of
    listings rather than one per directory level: at ten million files a Path per file and
    each file passing up through a ``yield from`` per level were most of the walk's CPU.
    """
    _refuse_link(root)
    listings = [iter(_listing(str(root)))]
    prefixes = [""]
    while listings:
        entry = next(listings[-1], None)
        if entry is None:
            listings.pop()
            prefixes.pop()
            continue
        if entry.is_symlink():
            _refuse_link(entry)
        key = prefixes[-1] + entry.name
        if entry.is_dir(follow_symlinks=False):
            inside = key + SEP
            if after is not None and inside < after and not after.startswith(inside):
                continue  # everything in it was done before the checkpoint
            listings.append(iter(_listing(entry.path)))
            prefixes.append(inside)
        elif after is None or key > after:
            yield key, entry.path


def _listing(directory: str) -> list[os.DirEntry[str]]:
    """The entries of ``directory`` by name; none when it is gone (or was a file) by now."""
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=_name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _name(entry: os.DirEntry[str]) -> str:
    return entry.name


def _batches(pairs: Iterator[Pair], *, reads: bool) -> Iterator[list[Pair]]:
    """``pairs`` in consecutive batches for the reader threads (see ``_BATCH_PATHS``)."""
    most = _BATCH_READ_PATHS if reads else _BATCH_PATHS
    batch: list[Pair] = []
    size = 0
    for pair in pairs:
        batch.append(pair)
        if reads and pair[1] is not None:
            size += max((r.size or 0 for r in pair[1]), default=0)
        if len(batch) >= most or size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _pairs(groups: Iterator[tuple[str, list[FileRecord]]], disk: Iterator[tuple[str, str]]
           ) -> Iterator[Pair]:
    """Merge of what pages link and what is on disk: (key, records or None, path or None)."""
    g, d = next(groups, None), next(disk, None)
    while g is not None or d is not None:
        if d is None or (g is not None and g[0] < d[0]):
            assert g is not None
            yield g[0], g[1], None
            g = next(groups, None)
        elif g is None or d[0] < g[0]:
            yield d[0], None, d[1]
            d = next(disk, None)
        else:
            yield g[0], g[1], d[1]
            g, d = next(groups, None), next(disk, None)


# ------------------------------------------------------------------ the command


def command(config: Config, *, repair: bool, fast: bool, as_json: bool, progress: Progress,
            out: TextIO, read: bool = False, allow_mass_removal: bool = False) -> int:
    """``bandersnatch verify``: problems one per line on ``out`` (or one JSON document); the exit code.

    On an s3 mirror files are HEADed unless ``read`` (``--hash``); on a filesystem they
    are read unless ``fast``.
    """
    web = published_dir(config)
    state = StateFiles(config.directory, config.directory / "tmp" / "mirror")  # only read here
    serial = state.read_serial()
    missing = published_missing(config, serial)
    # As status says it: the mirror is incomplete, not misconfigured.  (A root index missing
    # under a whole tree stays a root-damaged problem, which --repair mends.)
    if missing is not None and not (web / "simple").is_dir():
        logger.error("%s", missing)
        return 1
    first_sync = _first_sync_owed(state, serial)
    if first_sync is not None:
        logger.warning("The first sync is not finished (%s project(s) still owed): the root index is written "
                       "when it ends, so verify checks only the pages and files synced so far; run "
                       "bandersnatch mirror to finish it", first_sync)
    if not (web / "simple").is_dir():
        raise ConfigError(str(config.path), "mirror", "directory",  # exit 2: nothing to check there
                          f"{config.directory} holds no mirror (no {web.name}/simple/): run mirror first")
    verifier_work = None if repair else _work_dir(config.directory)
    # The store behind the gate (whose budget --repair draws from), the master with the network
    # settings: as every command builds them.  A killed repair's leftovers in staging are cleared
    # by the next run; the master spools its answers in verify's own directory (upstream's
    # listing, for ghosts, included), a temporary one for a user who may only read the mirror.
    spool = verifier_work.parent if verifier_work is not None else config.directory / "tmp" / "verify"
    run = Runtime.create(config, spool_dir=spool, diff_file=False,
                         allow_mass_removal=allow_mass_removal, command=ALLOW_REPAIR_REMOVAL)
    staging, master = run.staging, run.master
    # Files that are not local files (an object store's) are checked key by key through the
    # store, HEADed unless --hash reads them; local files are walked on disk.
    objects = run.store if run.store.local_path("packages") is None else None
    if objects is not None:
        fast = not read
    lock = acquire_lock(config.directory) if repair else None  # only --repair writes web/
    selection = build_selection(config)  # a repaired project's new files wait as a run's would
    records = DependencyRecords(config.directory / "deps", staging) if selection.with_dependencies else None
    # force_check: a re-synced project's files are checked on disk, not trusted by their stamps.
    projects = run.project_sync(force_check=True, selection=selection, records=records)
    try:
        if repair:
            clear_staging(staging)
        verifier = Verifier(config, projects, master, fast=fast, progress=progress,
                            objects=objects, work=verifier_work,
                            check_root=first_sync is None)
        result = verifier.run()
        if not as_json:  # the problems first: what the repair then does is logged below them
            out.writelines(p.line() + "\n" for p in result.problems)
            out.flush()
        report = None
        if repair and result.problems:
            report = Repair(projects, run.root, serial, config.workers).run(result.problems)
        _say(result, report, as_json, out, "size and ETag (HEAD; --hash reads them)" if objects is not None
             else "size and mtime (--fast)")
        verifier.finish()
    finally:
        projects.close()
        master.close()
        if lock is not None:
            lock.release()
        if verifier_work is not None:  # a read-only user's temporary directory
            shutil.rmtree(verifier_work.parent, ignore_errors=True)
    if first_sync is not None:
        return 1  # not the mirror it will be: incomplete, whatever was checked
    if report is not None:
        return 1 if report.failed or report.held_back or any(p.kind == STRAY for p in result.problems) else 0
    return 1 if result.problems else 0


def _first_sync_owed(state: StateFiles, serial: int | None) -> str | None:
    """How many projects a first sync still owes (as text), when one is under way; None when none is."""
    if serial is not None or not state.todo_path.exists():
        return None
    owed = state.count_pending()
    return "some" if owed is None else str(owed)


def _work_dir(directory: Path) -> Path | None:
    """Where verify keeps its spool and checkpoint: None for ``<directory>/tmp/verify``, as usual.

    A user who may only read the mirror gets a temporary directory outside it instead
    (said in one line): nothing is written under the mirror, and a killed verify starts over.
    """
    usual = directory / "tmp" / "verify"
    # Its lock goes beside it (tmp/), its files in it; what does not exist yet is made in its parent.
    needed = [p for p in (usual, usual.parent) if p.exists()] or [directory]
    unwritable = [p for p in needed if not os.access(p, os.W_OK | os.X_OK)]
    if not unwritable:
        return None
    work = Path(tempfile.mkdtemp(prefix="bandersnatch-verify-")) / "verify"
    logger.warning("%s cannot be written by this user (or is on a read-only filesystem): verify works in %s "
                   "instead (nothing is written under the mirror; a killed verify starts over)",
                   unwritable[0], work.parent)
    return work


def _say(result: Result, report: RepairReport | None, as_json: bool, out: TextIO, trusted_by: str) -> None:
    c = result.counts
    if as_json:
        doc = {"clean": not result.problems, "problems": [json.loads(p.to_json()) for p in result.problems],
               "counts": asdict(c), "resumed_from": result.resumed,
               "repair": None if report is None else asdict(report)}
        out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        out.flush()
    summary = (f"verify: {c.projects} project(s), {c.files} linked file(s) checked, {c.hashed} hashed "
               f"({human_bytes(c.bytes)})")
    if c.trusted:
        summary += f", {c.trusted} trusted by {trusted_by}"
    if c.kept:
        summary += f", {c.kept} unlinked file(s) kept (delete-packages = false)"
    if c.not_kept:
        summary += f", {c.not_kept} not fetched yet (release-files = on-demand)"
    if report is None:
        logger.log(logging.ERROR if result.problems else logging.INFO, "%s; %d problem(s)%s", summary,
                   len(result.problems), "" if not result.problems else ", repair with verify --repair")
        return
    logger.info("%s; %d problem(s) found", summary, len(result.problems))
    for line in report.lines():
        logger.info("repair: %s", line)
    for what, why in report.failed.items():
        logger.error("repair: %s could not be repaired: %s", what, why)
    if report.held_back:
        logger.error("repair: %s", report.held_back)  # the last line: what to do
