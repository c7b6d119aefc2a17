"""A fake PyPI on 127.0.0.1 for testing the mirror client end to end.

It models what bandersnatch depends on and what goes wrong in production:
the serial/changelog (XML-RPC), the simple API in both formats (PEP 503
HTML, PEP 691 JSON) with yanking (PEP 592), requires-python, PEP 658/714
metadata and PEP 700 fields, the legacy JSON API, and the files themselves.
Faults a real CDN produces (stale pages, corrupted or truncated bodies, 5xx,
429 with Retry-After, redirects, slow links) can be injected between runs.

Only the stdlib is used and nothing listens anywhere but 127.0.0.1.

This module is the upstream itself (its state, fault switches and request router) and the
sample corpus; its records live in :mod:`support.pypirecords`, its pages are rendered by
:mod:`support.pypirender` and it is served by :mod:`support.loopback`. Every name they
define that tests use is importable from here too. The underscore names are shared by these
four modules only.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import functools
import hashlib
import heapq
import json
import random
import re
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from support import distbuild
from support.loopback import BaseHandler, LocalHTTPServer
from support.pypirecords import (
    _LATEST,
    _OFFERS,
    FIRST_SERIAL,
    SIMPLE_HTML,
    SIMPLE_JSON,
    ChangelogEntry,
    FileEntry,
    RequestRecord,
    Response,
    Snapshot,
    _Blob,
    _Faults,
    _kept,
    _packagetype,
    blob_path,
    choose_simple_format,
    normalize,
    version_from_filename,
)

# Not used here: re-exported for the tests and benchmarks that import them from here, as they
# did before the records, the renderers and the loopback server had modules of their own.
from support.pypirecords import API_VERSION as API_VERSION
from support.pypirecords import TEXT_HTML as TEXT_HTML
from support.pypirecords import iso_time as iso_time
from support.pypirecords import parse_accept as parse_accept
from support.pypirender import (
    _corrupted,
    _html_type,
    _json_body,
    _plain,
    render_legacy_json,
    render_project,
    render_root,
    render_root_rows,
)

# ---------------------------------------------------------------- upstream


@functools.lru_cache(maxsize=256)
def _cached_wheel(
    name: str, version: str, requires: tuple[str, ...], requires_python: str | None,
    tag: str = distbuild.WHEEL_TAG,
) -> tuple[str, bytes, bytes]:
    """Build each distinct wheel once per test session: fixtures stay fast."""
    return distbuild.make_wheel(name, version, requires=requires, requires_python=requires_python, tag=tag)


@functools.lru_cache(maxsize=256)
def _cached_sdist(
    name: str, version: str, requires: tuple[str, ...], requires_python: str | None
) -> tuple[str, bytes]:
    """Build each distinct sdist once per test session."""
    return distbuild.make_sdist(name, version, requires=requires, requires_python=requires_python)


class Upstream:
    """The fake PyPI: corpus, changelog, fault switches and the HTTP server.

    All state sits behind one lock so tests may mutate the corpus while a
    client is syncing.  Project names keep their display form; lookups go
    through :func:`normalize`.
    """

    latency: float = 0.0  # seconds added to every request
    # While set to an unset Event, every project page request waits for it (at most a minute):
    # a test holds a run mid-sync for as long as it needs, whatever the machine's load.
    hold_pages: threading.Event | None = None
    bandwidth: float | None = None  # bytes per second per response; None = unlimited
    # False keeps only the ``traffic`` counters, not one RequestRecord per request
    # (benchmarks making hundreds of thousands of requests).
    record_requests: bool = True
    json_api: bool = True  # False: no PEP 691 JSON pages, HTML only (an older repository)
    # Set before start(): serve everything under this path (https://host/pypi-mirror/simple/ ...).
    path_prefix: str = ""
    # How POST /pypi is answered when XML-RPC is off (``without_xmlrpc``): None while it is on.
    no_xmlrpc: str | None = None
    listing_validators: bool = True  # ETag/Last-Modified on /simple/, answered 304 when they match

    def __init__(self, first_serial: int = FIRST_SERIAL) -> None:
        self._lock = threading.RLock()
        self.serial = first_serial
        self.changelog: list[ChangelogEntry] = []
        self._history: dict[str, list[Snapshot]] = {}
        self._blobs: dict[str, _Blob] = {}
        self._faults = _Faults()
        self.requests: list[RequestRecord] = []
        self.fault_log: list[tuple[str, str]] = []
        self.url = ""
        self._server: LocalHTTPServer | None = None
        # Added for benchmarks (see "bulk corpus and traffic" below).
        self.traffic: dict[str, list[int]] = {}  # kind -> [requests, body bytes]
        self.busy_seconds = 0.0  # summed time from reading a request to writing its response
        self._bulk: list[_BulkRange] = []
        # PyPI returns at most 50,000 changelog rows per call; tests set a small cap.
        self.changelog_page_limit: int | None = None
        # Files answer Range requests (206) as PyPI's CDN does; False: Range is ignored (200).
        self.honour_range = True
        self._truncate_keep: dict[str, float] = {}
        self._root_cache: dict[str, tuple[int, bytes]] = {}
        self._held: dict[tuple[str, str], tuple[FileEntry, ...]] = {}  # quarantined releases' files

    # ------------------------------------------------------------ lifecycle

    def start(self, tls: ssl.SSLContext | None = None) -> str:
        """Listen on 127.0.0.1 on an OS-chosen port; returns the base URL (https:// with ``tls``)."""
        self._server = LocalHTTPServer(_UpstreamHandler, context=self, tls=tls)
        self._server.serve_in_thread()
        self.url = self._server.base_url + self.path_prefix
        return self.url

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Upstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --------------------------------------------------------------- corpus

    def _bump(self, name: str, version: str | None, action: str) -> int:
        """Advance the serial and journal one change (caller holds the lock)."""
        self.serial += 1
        self.changelog.append(ChangelogEntry(name, version, int(time.time()), action, self.serial))
        return self.serial

    def _current(self, project: str) -> Snapshot | None:
        key = normalize(project)
        history = self._history.get(key)
        return history[-1] if history else self._bulk_snapshot(key)

    def _existing(self, project: str) -> Snapshot:
        snapshot = self._current(project)
        if snapshot is None or not snapshot.exists:
            raise KeyError(f"no such project: {project}")
        return snapshot

    def _record(self, name: str, files: tuple[FileEntry, ...] | None,
                status: tuple[str, str | None] | None = None) -> None:
        """Store the project's new state at the current serial; its status carries over unless given."""
        key = normalize(name)
        if key not in self._history:
            bulk = self._bulk_snapshot(key)
            self._history[key] = [bulk] if bulk is not None else []
        history = self._history[key]
        if status is None:
            status = (history[-1].status, history[-1].status_reason) if history and files is not None else (
                "active", None)
        self._history[key].append(Snapshot(self.serial, name, files, *status))

    def add_project(self, name: str) -> int:
        """Register a project with no files ("create"); returns the new serial.

        Adding an existing project is a no-op that returns its last serial.
        """
        with self._lock:
            current = self._current(name)
            if current is not None and current.exists:
                return current.serial
            self._bump(name, None, "create")
            self._record(name, ())
            return self.serial

    def add_file(
        self,
        project: str,
        filename: str,
        content: bytes,
        *,
        version: str | None = None,
        requires_python: str | None = None,
        metadata: bytes | None = None,
        upload_time: datetime.datetime | None = None,
    ) -> int:
        """Upload one file (creating the project if needed); returns the new serial.

        A file of a version not seen before also journals "new release", as
        PyPI does.  ``metadata`` makes the file advertise PEP 658 metadata and
        serves it at ``<file url>.metadata``.
        """
        with self._lock:
            self.add_project(project)
            snapshot = self._existing(project)
            if any(e.filename == filename for e in snapshot.files or ()):
                raise ValueError(f"{filename} already exists in {project}")
            entry = self._new_entry(
                project, filename, content, version, requires_python, metadata, upload_time
            )
            if entry.version not in snapshot.versions():
                self._bump(snapshot.name, entry.version, "new release")
            self._bump(snapshot.name, entry.version, f"add {entry.python_version} file {filename}")
            self._record(snapshot.name, (*(snapshot.files or ()), entry))
            self._blobs[entry.path] = _Blob(entry.project, filename, content)
            if metadata is not None:
                self._blobs[entry.metadata_path] = _Blob(entry.project, filename + ".metadata", metadata)
            return self.serial

    def add_external_file(self, project: str, filename: str, *, size: int, sha256: str,
                          version: str | None = None) -> FileEntry:
        """List a file whose bytes the fake does not hold: a server in front of it serves ``entry.path``.

        For gigabytes of files (``benchmarks/bench_bigfiles.py``: nginx serves them from
        disk).  The pages advertise ``size`` and ``sha256``; md5 and blake2b are not
        computed (empty), and a request for the file reaching the fake is a 404.
        """
        packagetype, python_version = _packagetype(filename)
        entry = FileEntry(
            project=normalize(project), filename=filename, version=version or version_from_filename(filename),
            content=b"", sha256=sha256, md5="", blake2b_256="",
            path=f"/packages/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{filename}",
            upload_time=datetime.datetime.now(datetime.timezone.utc), packagetype=packagetype,
            python_version=python_version, external_size=size,
        )
        with self._lock:
            self.add_project(project)
            snapshot = self._existing(project)
            if entry.version not in snapshot.versions():
                self._bump(snapshot.name, entry.version, "new release")
            self._bump(snapshot.name, entry.version, f"add {entry.python_version} file {filename}")
            self._record(snapshot.name, (*(snapshot.files or ()), entry))
        return entry

    @staticmethod
    def _new_entry(
        project: str,
        filename: str,
        content: bytes,
        version: str | None,
        requires_python: str | None,
        metadata: bytes | None,
        upload_time: datetime.datetime | None,
    ) -> FileEntry:
        """Compute hashes, path and PyPI's per-file fields for an upload."""
        packagetype, python_version = _packagetype(filename)
        return FileEntry(
            project=normalize(project),
            filename=filename,
            version=version or version_from_filename(filename),
            content=content,
            sha256=hashlib.sha256(content).hexdigest(),
            md5=hashlib.md5(content).hexdigest(),
            blake2b_256=hashlib.blake2b(content, digest_size=32).hexdigest(),
            path=blob_path(content, filename),
            upload_time=upload_time or datetime.datetime.now(datetime.timezone.utc),
            requires_python=requires_python,
            metadata=metadata,
            packagetype=packagetype,
            python_version=python_version,
        )

    def add_wheel(
        self,
        project: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
        with_metadata: bool = False,
        modules: dict[str, str] | None = None,
        tag: str = distbuild.WHEEL_TAG,
        upload_time: datetime.datetime | None = None,
    ) -> FileEntry:
        """Build a real wheel with :mod:`distbuild` and upload it.

        ``requires_python`` goes both into METADATA and the page's
        data-requires-python; ``with_metadata`` also serves it per PEP 658;
        ``upload_time`` is the PEP 700 upload-time its pages give (default: now).
        """
        if modules is None:
            filename, data, metadata = _cached_wheel(project, version, tuple(requires), requires_python, tag)
        else:
            filename, data, metadata = distbuild.make_wheel(
                project, version, requires=requires, requires_python=requires_python, modules=modules,
                tag=tag,
            )
        self.add_file(
            project,
            filename,
            data,
            version=version,
            requires_python=requires_python,
            metadata=metadata if with_metadata else None,
            upload_time=upload_time,
        )
        return self.get_file(project, filename)

    def add_sdist(
        self,
        project: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
    ) -> FileEntry:
        """Build a real, offline-buildable sdist with :mod:`distbuild` and upload it."""
        filename, data = _cached_sdist(project, version, tuple(requires), requires_python)
        self.add_file(project, filename, data, version=version, requires_python=requires_python)
        return self.get_file(project, filename)

    def remove_file(self, project: str, filename: str) -> int:
        """Delete one file ("remove file <name>"); its URLs then 404."""
        with self._lock:
            snapshot = self._existing(project)
            entry = self._find(snapshot, filename)
            self._bump(snapshot.name, entry.version, f"remove file {filename}")
            self._record(snapshot.name, tuple(e for e in snapshot.files or () if e is not entry))
            self._drop_blobs(entry)
            return self.serial

    def remove_project(self, name: str) -> int:
        """Delete a project ("remove project"): page, files and listing entry go."""
        with self._lock:
            snapshot = self._existing(name)
            self._bump(snapshot.name, None, "remove project")
            self._record(snapshot.name, None)
            for entry in snapshot.files or ():
                self._drop_blobs(entry)
            return self.serial

    def yank(self, project: str, filename: str, reason: str = "") -> int:
        """Mark one file yanked (PEP 592); the journal says "yank release" like PyPI."""
        return self._set_yanked(project, filename, True, reason, "yank release")

    def unyank(self, project: str, filename: str) -> int:
        """Undo :meth:`yank` ("unyank release")."""
        return self._set_yanked(project, filename, False, "", "unyank release")

    def _set_yanked(self, project: str, filename: str, yanked: bool, reason: str, action: str) -> int:
        with self._lock:
            snapshot = self._existing(project)
            entry = self._find(snapshot, filename)
            changed = dataclasses.replace(entry, yanked=yanked, yanked_reason=reason)
            self._bump(snapshot.name, entry.version, action)
            self._record(snapshot.name, tuple(changed if e is entry else e for e in snapshot.files or ()))
            return self.serial

    def set_status(self, project: str, status: str, reason: str | None = None) -> int:
        """Set the PEP 792 status; journals "project quarantined" / "project quarantine cleared"
        as PyPI does around a quarantine, and "project <status>" otherwise (PyPI journals none)."""
        with self._lock:
            snapshot = self._existing(project)
            if status == "quarantined":
                action = "project quarantined"
            elif snapshot.status == "quarantined":
                action = "project quarantine cleared"
            else:
                action = f"project {status}"
            self._bump(snapshot.name, None, action)
            self._record(snapshot.name, snapshot.files, (status, reason))
            return self.serial

    def quarantine_release(self, project: str, version: str) -> int:
        """Hide one release's files from the page ("release quarantined"), as PyPI does."""
        with self._lock:
            snapshot = self._existing(project)
            held = tuple(e for e in snapshot.files or () if e.version == version)
            if not held:
                raise KeyError(f"{project} has no files of {version}")
            self._held[(normalize(project), version)] = held
            self._bump(snapshot.name, version, "release quarantined")
            self._record(snapshot.name, tuple(e for e in snapshot.files or () if e.version != version))
            return self.serial

    def clear_release_quarantine(self, project: str, version: str) -> int:
        """Undo :meth:`quarantine_release` ("release quarantine cleared")."""
        with self._lock:
            snapshot = self._existing(project)
            held = self._held.pop((normalize(project), version))
            self._bump(snapshot.name, version, "release quarantine cleared")
            self._record(snapshot.name, (*(snapshot.files or ()), *held))
            return self.serial

    def add_provenance(self, project: str, filename: str, body: bytes | None = None, *,
                       served: bool = True) -> int:
        """Give a file a PEP 740 provenance: ``body`` (a minimal valid object by default) at its
        integrity URL; ``served=False`` advertises it but answers 404, as a broken index would."""
        if body is None:
            body = json.dumps({"version": 1, "attestation_bundles": [
                {"publisher": {"kind": "GitHub", "repository": f"example/{project}"}, "attestations": []}]
            }).encode()
        with self._lock:
            snapshot = self._existing(project)
            entry = self._find(snapshot, filename)
            changed = dataclasses.replace(entry, provenance=body)
            self._bump(snapshot.name, entry.version, f"add provenance {filename}")
            self._record(snapshot.name, tuple(changed if e is entry else e for e in snapshot.files or ()))
            self._blobs.pop(entry.provenance_path, None)
            if served:
                self._blobs[changed.provenance_path] = _Blob(entry.project, filename + ".provenance", body)
            return self.serial

    def _drop_blobs(self, entry: FileEntry) -> None:
        self._blobs.pop(entry.path, None)
        self._blobs.pop(entry.metadata_path, None)
        self._blobs.pop(entry.provenance_path, None)

    @staticmethod
    def _find(snapshot: Snapshot, filename: str) -> FileEntry:
        for entry in snapshot.files or ():
            if entry.filename == filename:
                return entry
        raise KeyError(f"{filename} not in {snapshot.name}")

    # -------------------------------------------------------------- queries

    def get_file(self, project: str, filename: str) -> FileEntry:
        """The current entry for a file of an existing project."""
        with self._lock:
            return self._find(self._existing(project), filename)

    def files(self, project: str) -> tuple[FileEntry, ...]:
        """Current files of an existing project, in upload order."""
        with self._lock:
            return self._existing(project).files or ()

    def file_url(self, entry: FileEntry) -> str:
        """Absolute URL of a file, as the pages advertise it."""
        return self.url + quote(entry.path)

    def project_serial(self, project: str) -> int:
        """The project's last_serial (also for a removed project: its removal)."""
        with self._lock:
            snapshot = self._current(project)
            if snapshot is None:
                raise KeyError(f"no such project: {project}")
            return snapshot.serial

    def list_packages_with_serial(self) -> dict[str, int]:
        """Existing projects by display name, as PyPI's XML-RPC method."""
        with self._lock:
            listing = {h[-1].name: h[-1].serial for h in self._history.values() if h[-1].exists}
            for bulk in self._bulk:
                listing.update(bulk.listing(self._history))
            return listing

    def changelog_since_serial(self, since: int) -> list[list[Any]]:
        """Journal rows newer than ``since``, oldest first; at most ``changelog_page_limit`` of them."""
        with self._lock:
            rows = [list(entry) for entry in self.changelog if entry.serial > since]
            if self._bulk:
                bulk_rows = [bulk.changelog_rows(since) for bulk in self._bulk]
                rows = list(heapq.merge(rows, *bulk_rows, key=lambda row: row[4]))
            return rows if self.changelog_page_limit is None else rows[: self.changelog_page_limit]

    def changelog_last_serial(self) -> int:
        """The newest serial."""
        with self._lock:
            return self.serial

    def snapshot(self, project: str, *, stale: bool = False, at_serial: int | None = None) -> Snapshot:
        """The page state to serve: current, one change back, or as of a serial.

        A project unknown at that point is an absent snapshot (a 404).
        """
        with self._lock:
            key = normalize(project)
            history = self._history.get(key) or self._bulk_history(key)
            if at_serial is not None:
                older = [s for s in history if s.serial <= at_serial]
                return older[-1] if older else Snapshot(0, project, None)
            if stale:
                return history[-2] if len(history) >= 2 else Snapshot(0, project, None)
            return history[-1] if history else Snapshot(0, project, None)

    def all_current(self) -> list[Snapshot]:
        """Current snapshots of existing projects, by normalized name."""
        with self._lock:
            current = [self._history[k][-1] for k in sorted(self._history) if self._history[k][-1].exists]
            if not self._bulk:
                return current
            bulk = [Snapshot(s, n, ()) for n, s in self._bulk_listing_rows()]
            return sorted(current + bulk, key=lambda snapshot: normalize(snapshot.name))

    # --------------------------------------------------------------- faults

    def stale(self, project: str, times: int = 1, *, at_serial: int | None = None) -> None:
        """Serve the previous page state (older serial) for the next ``times`` requests.

        ``at_serial`` picks the state as of that serial instead of one change
        back, for a CDN lagging several changes.
        """
        with self._lock:
            self._faults.stale[normalize(project)] = (times, at_serial)

    def corrupt(self, project: str | None, filename: str, times: int | None = None) -> None:
        """Serve wrong bytes (same length) for a file; None ``times`` = until cleared.

        ``filename`` may end in ``.metadata`` to corrupt a PEP 658 file.
        """
        with self._lock:
            self._faults.corrupt.set((normalize(project) if project else None, filename), times)

    def truncate(self, filename: str, times: int | None = 1, keep: float = 0.5) -> None:
        """Announce the full Content-Length but close after ``keep`` (half) of the body."""
        with self._lock:
            self._faults.truncate.set(filename, times)
            self._truncate_keep[filename] = keep

    def fail(
        self, path_prefix: str, status: int, times: int | None = 1, retry_after: float | None = None
    ) -> None:
        """Answer ``status`` to requests whose path starts with ``path_prefix``."""
        with self._lock:
            self._faults.fail[path_prefix] = (status, times, retry_after)

    def redirect(self, path: str, location: str) -> None:
        """Answer 302 to ``location`` for this exact path (query ignored)."""
        with self._lock:
            self._faults.redirect[path] = location

    def raw_page(self, project: str, body: bytes, content_type: str, serial: int | None) -> None:
        """Serve exactly ``body`` as the project's simple page, whatever is asked.

        ``serial`` None sends no ``X-PyPI-Last-Serial`` header (a proxy's page, not PyPI's).
        """
        with self._lock:
            self._faults.raw[normalize(project)] = (body, content_type, serial)

    def slow(self, path_prefix: str, seconds: float, times: int | None = 1) -> None:
        """Wait ``seconds`` before answering requests whose path starts with ``path_prefix``."""
        with self._lock:
            self._faults.slow[path_prefix] = (seconds, times)

    def trickle(self, path_prefix: str, bytes_per_second: float, times: int | None = None) -> None:
        """Send matching answers' bodies at ``bytes_per_second`` (1 byte at a time when slower than 20/s).

        Unlike :meth:`slow`, bytes keep arriving, so a per-read timeout never fires.
        """
        with self._lock:
            self._faults.trickle[path_prefix] = (bytes_per_second, times)

    def reset(self, path_prefix: str, times: int | None = 1) -> None:
        """Reset the connection instead of answering (nothing of a response is sent)."""
        with self._lock:
            self._faults.reset[path_prefix] = (True, times)

    def cut(self, path_prefix: str, times: int | None = 1) -> None:
        """Like :meth:`truncate` for any path (pages, XML-RPC, files): full length announced, half sent."""
        with self._lock:
            self._faults.cut[path_prefix] = (True, times)

    def shorten(self, filename: str, times: int | None = 1) -> None:
        """Serve the first half of a file with a matching Content-Length: only size or hash can tell."""
        with self._lock:
            self._faults.shorten.set(filename, times)

    def raw_rpc(self, method: str, body: bytes, content_type: str = "text/xml") -> None:
        """Answer the XML-RPC ``method`` with exactly ``body`` (until :meth:`clear_faults`)."""
        with self._lock:
            self._faults.raw_rpc[method] = (body, content_type)

    def raw_path(
        self, path: str, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None,
        repeat: int = 1, chunked: bool = False,
    ) -> None:
        """Answer any request for exactly ``path`` (query ignored) with ``body`` sent ``repeat`` times.

        ``chunked`` leaves out Content-Length (chunked transfer encoding), so only
        the bytes received can tell how large the answer is.
        """
        response = Response(status, dict(headers or {"Content-Type": "application/octet-stream"}), body,
                            repeat=repeat, chunked=chunked)
        with self._lock:
            self._faults.raw_path[path] = response

    def _take_prefix(self, armed: dict[str, tuple[Any, int | None]], path: str) -> Any:
        """Consume one hit of the first switch whose prefix matches ``path``; its value or None."""
        for prefix, (value, times) in list(armed.items()):
            if not path.startswith(prefix):
                continue
            if times is not None and times <= 1:
                del armed[prefix]
            elif times is not None:
                armed[prefix] = (value, times - 1)
            return value
        return None

    def set_random_faults(
        self, seed: int, error_rate: float = 0.0, truncate_rate: float = 0.0, stale_rate: float = 0.0
    ) -> None:
        """Seeded random 5xx / truncation / staleness on simple pages and files."""
        with self._lock:
            self._faults.rng = random.Random(seed)
            self._faults.error_rate = error_rate
            self._faults.truncate_rate = truncate_rate
            self._faults.stale_rate = stale_rate

    def clear_faults(self) -> None:
        """Back to a healthy upstream (latency and bandwidth included)."""
        with self._lock:
            self._faults = _Faults()
            self.latency = 0.0
            self.bandwidth = None

    def reset_requests(self) -> None:
        """Forget recorded requests (and the fault log) before the next step of a test."""
        with self._lock:
            self.requests.clear()
            self.fault_log.clear()
            self.traffic.clear()
            self.busy_seconds = 0.0

    def count_requests(self, path_prefix: str = "", method: str | None = None) -> int:
        """How many recorded requests start with ``path_prefix`` (and have ``method``)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            )

    # ----------------------------------------------- fault decisions (server)

    def _note(self, kind: str, path: str) -> None:
        self.fault_log.append((kind, path))

    def _take_stale(self, key: str) -> tuple[bool, int | None]:
        """Consume a stale-page hit for ``key``; returns (stale?, at_serial)."""
        armed = self._faults.stale.get(key)
        if armed is None:
            return False, None
        times, at_serial = armed
        if times is not None and times <= 1:
            del self._faults.stale[key]
        elif times is not None:
            self._faults.stale[key] = (times - 1, at_serial)
        return True, at_serial

    def _take_fail(self, path: str) -> tuple[int, float | None] | None:
        """Consume the first armed failure whose prefix matches ``path``."""
        for prefix, (status, times, retry_after) in list(self._faults.fail.items()):
            if not path.startswith(prefix):
                continue
            if times is not None and times <= 1:
                del self._faults.fail[prefix]
            elif times is not None:
                self._faults.fail[prefix] = (status, times - 1, retry_after)
            return status, retry_after
        return None

    def _roll(self, rate: float) -> bool:
        """One seeded draw; no draw at all when the rate is zero (keeps sequences stable)."""
        return rate > 0 and self._faults.rng is not None and self._faults.rng.random() < rate

    # ----------------------------------------- bulk corpus and traffic
    # Added for benchmarks/bench_mirror.py.  A PyPI-sized listing (hundreds of
    # thousands of projects, most without files) is stored as a few number
    # ranges instead of one history per project; such a project gets a real
    # history the first time anything changes it.  With no bulk range, every
    # method above behaves exactly as before.

    def without_xmlrpc(self, answer: str = "404") -> None:
        """Answer XML-RPC as a master without it does: "404", "405", "fault" or "html" (a web page)."""
        assert answer in ("404", "405", "fault", "html")
        self.no_xmlrpc = answer

    def listing_validators_for(self, serial: int, content_type: str) -> tuple[str, str]:
        """(ETag, Last-Modified) of the root listing at ``serial``: one second per serial since 2020."""
        epoch = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        moment = epoch + datetime.timedelta(seconds=serial)
        kind = "j" if content_type == SIMPLE_JSON else "h"
        return f'"{kind}{serial}"', email.utils.format_datetime(moment, usegmt=True)

    def add_bulk_projects(self, count: int, prefix: str = "bulk-", width: int = 7) -> range:
        """Create ``count`` empty projects ``<prefix><i zero-padded to width>`` at once.

        Each gets its own "create" serial, like ``count`` calls of
        :meth:`add_project`, at a fraction of the time and memory.  Returns
        the range of serials used.
        """
        if count < 0 or count > 10**width:
            raise ValueError(f"{count} projects do not fit in {width} digits")
        if normalize(prefix + "0") != prefix + "0" or not prefix:
            raise ValueError(f"bulk prefix {prefix!r} must be a normalized name start")
        with self._lock:
            if any(b.prefix == prefix for b in self._bulk):
                raise ValueError(f"bulk prefix {prefix!r} already used")
            bulk = _BulkRange(prefix, width, count, self.serial + 1, int(time.time()))
            if any(bulk.index_of(key) is not None for key in self._history):
                raise ValueError(f"bulk names {prefix}* clash with existing projects")
            self._bulk.append(bulk)
            self.serial += count
            return range(bulk.first_serial, self.serial + 1)

    def bulk_names(self) -> Iterator[str]:
        """Every bulk project name ever created (changed or removed ones included)."""
        for bulk in list(self._bulk):
            yield from (bulk.name(i) for i in range(bulk.count))

    def touch(self, project: str, action: str = "update description") -> int:
        """Journal a change that leaves the files as they are (metadata edits on PyPI)."""
        with self._lock:
            snapshot = self._existing(project)
            self._bump(snapshot.name, None, action)
            self._record(snapshot.name, snapshot.files)
            return self.serial

    def root_page(self, content_type: str) -> tuple[bytes, int]:
        """The ``/simple/`` body and the serial it is at; cached per serial once bulk ranges exist."""
        with self._lock:
            if not self._bulk:
                return render_root(self.all_current(), self.serial, content_type), self.serial
            cached = self._root_cache.get(content_type)
            if cached is None or cached[0] != self.serial:
                body = render_root_rows(self._root_rows(), self.serial, content_type)
                cached = self._root_cache[content_type] = (self.serial, body)
            return cached[1], self.serial

    def traffic_total(self) -> tuple[int, int]:
        """(requests, body bytes) answered since the last :meth:`reset_requests`."""
        with self._lock:
            return sum(c[0] for c in self.traffic.values()), sum(c[1] for c in self.traffic.values())

    def _count_traffic(self, method: str, raw_path: str, sent: int) -> None:
        kind = traffic_kind(method, raw_path)
        with self._lock:
            counts = self.traffic.setdefault(kind, [0, 0])
            counts[0] += 1
            counts[1] += sent

    def _bulk_snapshot(self, key: str) -> Snapshot | None:
        """The untouched state of a bulk project (caller made sure it has no history)."""
        for bulk in self._bulk:
            index = bulk.index_of(key)
            if index is not None:
                return Snapshot(bulk.first_serial + index, key, ())
        return None

    def _bulk_history(self, key: str) -> list[Snapshot]:
        snapshot = self._bulk_snapshot(key)
        return [snapshot] if snapshot is not None else []

    def _bulk_listing_rows(self) -> list[tuple[str, int]]:
        """(name, serial) of bulk projects nothing has changed since their creation."""
        rows: list[tuple[str, int]] = []
        for bulk in self._bulk:
            rows.extend(bulk.listing(self._history).items())
        return rows

    def _root_rows(self) -> list[tuple[str, int]]:
        """Every existing project as (display name, serial), by normalized name."""
        keyed = [(k, h[-1].name, h[-1].serial) for k, h in self._history.items() if h[-1].exists]
        keyed.extend((name, name, serial) for name, serial in self._bulk_listing_rows())
        keyed.sort()
        return [(name, serial) for _, name, serial in keyed]


@dataclass(frozen=True)
class _BulkRange:
    """Empty projects ``prefix + zero-padded index``, created at consecutive serials."""

    prefix: str
    width: int
    count: int
    first_serial: int
    timestamp: int

    def name(self, index: int) -> str:
        return f"{self.prefix}{index:0{self.width}d}"

    def index_of(self, key: str) -> int | None:
        """The index a normalized name has in this range, or None."""
        if not key.startswith(self.prefix) or len(key) != len(self.prefix) + self.width:
            return None
        digits = key[len(self.prefix):]
        if not (digits.isascii() and digits.isdigit()):
            return None
        index = int(digits)
        return index if index < self.count else None

    def listing(self, history: dict[str, list[Snapshot]]) -> dict[str, int]:
        """name -> serial of the names no later change took over (those live in ``history``)."""
        names = (self.name(i) for i in range(self.count))
        return {name: self.first_serial + i for i, name in enumerate(names) if name not in history}

    def changelog_rows(self, since: int) -> list[list[Any]]:
        """The "create" journal rows of this range newer than ``since``."""
        start = max(0, since - self.first_serial + 1)
        return [[self.name(i), None, self.timestamp, "create", self.first_serial + i]
                for i in range(start, self.count)]


def traffic_kind(method: str, raw_path: str) -> str:
    """What a request asked for: xmlrpc, index, page, json, file, metadata or other."""
    path = unquote(urlsplit(raw_path).path)
    if method == "POST":
        return "xmlrpc"
    if path.rstrip("/") == "/simple":
        return "index"
    if path.startswith("/simple/"):
        return "page"
    if path.startswith("/packages/"):
        return "metadata" if path.endswith(".metadata") else "file"
    if path.startswith("/pypi/") and path.rstrip("/").endswith("/json"):
        return "json"
    return "other"


def _rpc_method(payload: bytes) -> str | None:
    """The XML-RPC method a request body calls, or None when it is not XML-RPC."""
    try:
        return xmlrpc.client.loads(payload)[1]
    except Exception:
        return None


def _body_bytes(response: Response, method: str) -> int:
    """How many body bytes the handler writes for ``response``."""
    if method == "HEAD":
        return 0
    return _kept(response) if response.truncate else len(response.body) * response.repeat


class _UpstreamHandler(BaseHandler):
    """Routes requests to the Upstream, applying injected faults first."""

    @property
    def upstream(self) -> Upstream:
        return self.server.context  # type: ignore[no-any-return]

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        payload = self.read_body() if method == "POST" else b""
        record = RequestRecord(method, self.path, self.headers.get("Accept"), self.headers.get("User-Agent"))
        record.client_port = self.client_address[1]
        record.started = time.monotonic()
        upstream = self.upstream
        if upstream.record_requests:
            with upstream._lock:
                upstream.requests.append(record)
        if upstream.latency:
            time.sleep(upstream.latency)
        hold = upstream.hold_pages
        if hold is not None and self.path.startswith(f"{upstream.path_prefix}/simple/") \
                and self.path.rstrip("/") != f"{upstream.path_prefix}/simple":
            hold.wait(60)
        router = _Router(upstream, method, self.path, self.headers.get("Accept"), payload,
                         {k: v for k in ("Range", "If-Range") if (v := self.headers.get(k)) is not None})
        router.conditional = (self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"))
        response = router.respond()
        record.status = response.status
        record.sent = _body_bytes(response, method)
        upstream._count_traffic(method, self.path, record.sent)
        self.send_body(response, head=method == "HEAD", bandwidth=response.bandwidth or upstream.bandwidth)
        record.finished = time.monotonic()
        with upstream._lock:
            upstream.busy_seconds += record.finished - record.started


class _Router:
    """Turns one request into a Response, consulting the fault switches."""

    def __init__(
        self, upstream: Upstream, method: str, raw_path: str, accept: str | None, payload: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.headers: Mapping[str, str] = headers or {}
        self.upstream = upstream
        self.method = method
        parts = urlsplit(raw_path)
        self.path = unquote(parts.path)
        prefix = upstream.path_prefix
        # Outside the prefix nothing is served: a client that drops it sees only 404s.
        self.outside = bool(prefix) and not self.path.startswith(prefix + "/")
        if prefix and not self.outside:
            self.path = self.path[len(prefix):]
        self.query = parts.query
        self.accept = accept
        self.payload = payload
        self.conditional: tuple[str | None, str | None] = (None, None)  # If-None-Match, If-Modified-Since

    def respond(self) -> Response:
        """Connection-level and raw switches, then :meth:`_route`; a cut applies to any answer."""
        upstream = self.upstream
        with upstream._lock:
            faults = upstream._faults
            delay = upstream._take_prefix(faults.slow, self.path)
            reset = upstream._take_prefix(faults.reset, self.path)
            cut = upstream._take_prefix(faults.cut, self.path)
            rate = upstream._take_prefix(faults.trickle, self.path)
            raw = faults.raw_path.get(self.path)
            rpc = None
            if self.method == "POST" and faults.raw_rpc:
                called = _rpc_method(self.payload)
                rpc = faults.raw_rpc.get(called) if called is not None else None
        if delay:
            upstream._note("slow", self.path)
            time.sleep(delay)
        if reset:
            upstream._note("reset", self.path)
            return Response(0, {}, b"", reset=True)
        if raw is not None:
            upstream._note("raw path", self.path)
            response = raw
        elif rpc is not None:
            upstream._note("raw rpc", self.path)
            response = Response(200, {"Content-Type": rpc[1]}, rpc[0])
        else:
            response = self._route()
        if cut:
            upstream._note("cut", self.path)
            response = response._replace(truncate=True)
        if rate:
            upstream._note("trickle", self.path)
            response = response._replace(bandwidth=rate)
        return response

    def _route(self) -> Response:
        """Faults that apply to any path, then the route."""
        if self.outside:
            return _plain(404, "Not Found")
        early = self._global_faults()
        if early is not None:
            return early
        routes: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Response]]] = [
            (re.compile(r"/(pypi|RPC2)/?"), self._xmlrpc),
            (re.compile(r"/simple/?"), self._root),
            (re.compile(r"/simple/([^/]+)/?"), self._project),
            (re.compile(r"/packages/.+"), self._file),
            (re.compile(r"/integrity/.+/provenance"), self._file),
            (re.compile(r"/pypi/([^/]+)/json/?"), self._legacy),
            (re.compile(r"/pypi/([^/]+)/([^/]+)/json/?"), self._legacy),
        ]
        for pattern, handler in routes:
            match = pattern.fullmatch(self.path)
            if match:
                return handler(match)
        return _plain(404, "Not Found")

    def _global_faults(self) -> Response | None:
        with self.upstream._lock:
            location = self.upstream._faults.redirect.get(self.path)
            failure = self.upstream._take_fail(self.path)
        if location is not None:
            self.upstream._note("redirect", self.path)
            return Response(302, {"Location": location, "Content-Type": "text/plain"}, b"")
        if failure is not None:
            status, retry_after = failure
            self.upstream._note(f"fail {status}", self.path)
            extra = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return _plain(status, "Injected failure", extra)
        return None

    def _random_error(self) -> Response | None:
        """A seeded random 5xx for simple pages and files."""
        upstream = self.upstream
        with upstream._lock:
            if not upstream._roll(upstream._faults.error_rate):
                return None
            assert upstream._faults.rng is not None
            status = upstream._faults.rng.choice((500, 502, 503))
        upstream._note(f"random {status}", self.path)
        return _plain(status, "Random injected failure")

    def _random_truncate(self) -> bool:
        upstream = self.upstream
        with upstream._lock:
            hit = upstream._roll(upstream._faults.truncate_rate)
        if hit:
            upstream._note("random truncate", self.path)
        return hit

    # --------------------------------------------------------------- routes

    def _xmlrpc(self, match: re.Match[str]) -> Response:
        if self.method != "POST":
            return _plain(405, "XML-RPC needs POST", {"Allow": "POST"})
        off = self.upstream.no_xmlrpc
        if off in ("404", "405"):
            return _plain(int(off), "No XML-RPC here")
        if off == "html":
            page = b"<!DOCTYPE html>\n<html><body><h1>Welcome</h1></body></html>\n"
            return Response(200, {"Content-Type": "text/html; charset=utf-8"}, page)
        if off == "fault":
            fault = xmlrpc.client.Fault(-32601, "XML-RPC is not available on this server")
            body = xmlrpc.client.dumps(fault, methodresponse=True)
            return Response(200, {"Content-Type": "text/xml; charset=utf-8"}, body.encode("utf-8"))
        methods: dict[str, Callable[..., Any]] = {
            "list_packages_with_serial": self.upstream.list_packages_with_serial,
            "changelog_since_serial": self.upstream.changelog_since_serial,
            "changelog_last_serial": self.upstream.changelog_last_serial,
        }
        try:
            params, name = xmlrpc.client.loads(self.payload)
            if name not in methods:
                raise xmlrpc.client.Fault(1, f"method {name!r} is not supported")
            body = xmlrpc.client.dumps((methods[name](*params),), methodresponse=True, allow_none=True)
        except xmlrpc.client.Fault as fault:
            body = xmlrpc.client.dumps(fault, methodresponse=True)
        except Exception as error:  # bad XML or bad arguments: a fault, like PyPI
            wrapped = xmlrpc.client.Fault(2, f"{type(error).__name__}: {error}")
            body = xmlrpc.client.dumps(wrapped, methodresponse=True)
        return Response(200, {"Content-Type": "text/xml; charset=utf-8"}, body.encode("utf-8"))

    def _content_type(self) -> str:
        """PEP 691 negotiation, with PyPI's ``?format=`` override."""
        requested = parse_qs(self.query).get("format")
        if requested:
            wanted = _LATEST.get(requested[0], requested[0])
            if wanted in _OFFERS:
                return wanted
        chosen = choose_simple_format(self.accept)
        if chosen == SIMPLE_JSON and not self.upstream.json_api:
            return SIMPLE_HTML  # an upstream without PEP 691
        return chosen

    def _root(self, match: re.Match[str]) -> Response:
        if not self.path.endswith("/"):
            return self._moved("/simple/")
        content_type = self._content_type()
        upstream = self.upstream
        with upstream._lock:
            body, serial = upstream.root_page(content_type)
        headers = {
            "Content-Type": _html_type(content_type),
            "X-PyPI-Last-Serial": str(serial),
            "Vary": "Accept",
        }
        if upstream.path_prefix and content_type != SIMPLE_JSON:
            body = body.replace(b'href="/simple/', f'href="{upstream.path_prefix}/simple/'.encode())
        if upstream.listing_validators:
            etag, modified = upstream.listing_validators_for(serial, content_type)
            headers.update({"ETag": etag, "Last-Modified": modified})
            if self._not_modified(etag, modified):
                return Response(304, {k: v for k, v in headers.items() if k != "Content-Type"}, b"")
        return Response(200, headers, body)

    def _not_modified(self, etag: str, modified: str) -> bool:
        """RFC 9110: If-None-Match decides when sent; else If-Modified-Since."""
        if_none_match, if_modified_since = self.conditional
        if if_none_match is not None:
            return etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*"
        if if_modified_since is not None:
            try:
                since = email.utils.parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False
            return email.utils.parsedate_to_datetime(modified) <= since
        return False

    def _moved(self, path: str) -> Response:
        location = quote(self.upstream.path_prefix + path) + (f"?{self.query}" if self.query else "")
        return Response(301, {"Location": location, "Content-Type": "text/plain"}, b"")

    def _project(self, match: re.Match[str]) -> Response:
        name = match.group(1)
        canonical = normalize(name)
        if name != canonical or not self.path.endswith("/"):
            return self._moved(f"/simple/{canonical}/")
        upstream = self.upstream
        with upstream._lock:
            raw = upstream._faults.raw.get(canonical)
            stale, at_serial = upstream._take_stale(canonical)
        if raw is not None:
            body, raw_type, serial = raw
            upstream._note("raw", self.path)
            headers = {"Content-Type": raw_type}
            if serial is not None:
                headers["X-PyPI-Last-Serial"] = str(serial)
            return Response(200, headers, body)
        error = self._random_error()
        if error is not None:
            return error
        if not stale:
            with upstream._lock:
                stale = upstream._roll(upstream._faults.stale_rate)
        if stale:
            upstream._note("stale", self.path)
        snapshot = upstream.snapshot(canonical, stale=stale, at_serial=at_serial if stale else None)
        if not snapshot.exists:
            return _plain(404, "Not Found")
        content_type = self._content_type()
        headers = {
            "Content-Type": _html_type(content_type),
            "X-PyPI-Last-Serial": str(snapshot.serial),
            "Vary": "Accept",
        }
        body = render_project(snapshot, upstream.url, content_type)
        return Response(200, headers, body, truncate=self._random_truncate())

    def _file(self, match: re.Match[str]) -> Response:
        upstream = self.upstream
        with upstream._lock:
            blob = upstream._blobs.get(self.path)
        if blob is None:
            return _plain(404, "Not Found")
        error = self._random_error()
        if error is not None:
            return error
        content = blob.content
        with upstream._lock:
            faults = upstream._faults
            corrupt = faults.corrupt.take((blob.project, blob.filename)) or faults.corrupt.take(
                (None, blob.filename)
            )
            truncate = faults.truncate.take(blob.filename)
            shorten = faults.shorten.take(blob.filename)
        if shorten:
            upstream._note("shorten", self.path)
            content = content[: len(content) // 2]
        if corrupt:
            upstream._note("corrupt", self.path)
            content = _corrupted(content)
        if truncate:
            upstream._note("truncate", self.path)
        keep = upstream._truncate_keep.get(blob.filename, 0.5)
        truncate = truncate or self._random_truncate()
        etag = f'"{hashlib.sha256(blob.content).hexdigest()}"'
        headers = {"Content-Type": "application/octet-stream", "ETag": etag, "Accept-Ranges": "bytes"}
        start = self._range_start(etag, len(content)) if upstream.honour_range else None
        if start is not None:
            upstream._note("range", self.path)
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
            return Response(206, headers, content[start:], truncate=truncate, keep=keep)
        return Response(200, headers, content, truncate=truncate, keep=keep)

    def _range_start(self, etag: str, length: int) -> int | None:
        """The start of a ``Range: bytes=N-`` this file can answer with 206, else None (send it all)."""
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        if match is None or (if_range is not None and if_range != etag):
            return None
        start = int(match.group(1))
        return start if 0 < start < length else None

    def _legacy(self, match: re.Match[str]) -> Response:
        name = match.group(1)
        version = match.group(2) if match.re.groups > 1 else None
        snapshot = self.upstream.snapshot(name)
        if not snapshot.exists:
            return Response(404, {"Content-Type": "application/json"}, _json_body({"message": "Not Found"}))
        if name != snapshot.name:
            suffix = f"/{version}/json" if version is not None else "/json"
            return self._moved(f"/pypi/{snapshot.name}{suffix}")
        body = render_legacy_json(snapshot, self.upstream.url, version)
        if body is None:
            return Response(404, {"Content-Type": "application/json"}, _json_body({"message": "Not Found"}))
        headers = {"Content-Type": "application/json", "X-PyPI-Last-Serial": str(snapshot.serial)}
        return Response(200, headers, body)


# ------------------------------------------------------------ sample corpus


@dataclass(frozen=True)
class SampleFile:
    """What a test needs to know about one file of the sample corpus."""

    project: str  # display name
    filename: str
    version: str
    sha256: str
    size: int
    url: str
    has_metadata: bool
    requires_python: str | None


@dataclass(frozen=True)
class SampleCorpus:
    """The sample corpus as added: projects (display → normalized) and files by name."""

    projects: dict[str, str]
    files: dict[str, SampleFile]
    serial: int

    def files_of(self, project: str) -> list[SampleFile]:
        """The sample files of one project, any spelling of its name."""
        return [f for f in self.files.values() if normalize(f.project) == normalize(project)]


def populate_sample(upstream: Upstream) -> SampleCorpus:
    """Add a small realistic corpus and describe it.

    - "Alpha-Lib": 1.0 wheel (requires-python >=3.8), 2.0 wheel with PEP 658 metadata;
    - "beta": 0.5 wheel requiring alpha-lib, plus its sdist;
    - "empty-project": no files;
    - "zope.interface_x": one wheel (dotted and underscored name).
    """
    upstream.add_wheel("Alpha-Lib", "1.0", requires_python=">=3.8")
    upstream.add_wheel("Alpha-Lib", "2.0", with_metadata=True)
    upstream.add_wheel("beta", "0.5", requires=["alpha-lib"])
    upstream.add_sdist("beta", "0.5", requires=["alpha-lib"])
    upstream.add_project("empty-project")
    upstream.add_wheel("zope.interface_x", "3.1")
    projects = {name: normalize(name) for name in ("Alpha-Lib", "beta", "empty-project", "zope.interface_x")}
    files: dict[str, SampleFile] = {}
    for name in projects:
        for entry in upstream.files(name):
            files[entry.filename] = SampleFile(
                project=name,
                filename=entry.filename,
                version=entry.version,
                sha256=entry.sha256,
                size=entry.size,
                url=upstream.file_url(entry),
                has_metadata=entry.metadata is not None,
                requires_python=entry.requires_python,
            )
    return SampleCorpus(projects=projects, files=files, serial=upstream.serial)


def iter_file_urls(upstream: Upstream) -> Iterator[str]:
    """Every file URL currently advertised (handy for 'is everything mirrored?' checks)."""
    for snapshot in upstream.all_current():
        for entry in snapshot.offered:
            yield upstream.file_url(entry)
