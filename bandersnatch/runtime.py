"""The one place that builds a command's collaborators from a ``Config``.

``mirror``, ``verify``, ``status`` and ``update-stats`` each need some of: the
staging directory, the store (``web/`` or an S3 bucket recorded locally) behind
the gate, the ``Master`` with the operator's network settings (proxy, CA
bundle) and URL policy, the ``Layout``, the root index, the diff-file record
and the project sync.  They are made here only, as pip makes its collaborators
in ``create()`` factories: a setting added once reaches every command (verify
once built its master by hand and ran without the proxy).  What differs per
command is an explicit parameter, not a copy of the wiring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import storage as storeconfig
from .config.settings import Config
from .formats.layout import UrlPolicy
from .ledger.counts import Tally, read_counts
from .ledger.state import ROOT_MARKS, StateFiles
from .publish.budget import ALLOW_MASS_REMOVAL, FileRemovalLimit, RemovalLimit
from .publish.difffile import SPOOL_NAME, Changes
from .publish.gate import Gate, RemovalBudget
from .selection.holdback import Window
from .selection.policy import Selection
from .selection.records import DependencyRecords, UnwrittenRecords
from .store.atomic import staging_dir
from .store.filesystem import FilesystemStore
from .store.protocol import Store
from .store.recorded import RECORD_DIR, open_s3
from .sync.dryrun import DryRun, Limits
from .sync.jsoncopy import JsonApi
from .sync.package import Layout, ProjectSync
from .sync.rootindex import RootIndex
from .upstream.downloadmirror import DownloadMirror
from .upstream.feeds import feed_for
from .upstream.master import Master


def on_s3(config: Config) -> bool:
    return config.storage_backend is storeconfig.StorageBackend.S3


def published_dir(config: Config) -> Path:
    """Where the pages are read from: ``web/``, or with an object store its local record."""
    return config.directory / (RECORD_DIR if on_s3(config) else "web")


def url_policy(config: Config) -> UrlPolicy:
    return UrlPolicy.for_master(config.master, config.download_hosts, config.allow_non_https)


def build_master(config: Config, *, spool_dir: Path, workers: int | None = None, attempts: int = 3) -> Master:
    """The master of ``config``, always with its network settings (proxy, CA bundle)."""
    return Master(
        config.master, timeout=config.timeout, workers=workers or config.workers,
        max_page_bytes=config.max_page_bytes, policy=url_policy(config), spool_dir=spool_dir,
        global_timeout=config.global_timeout, max_file_bytes=config.max_file_bytes, attempts=attempts,
        network=config.network, download_mirror=download_mirror(config),
    )


def download_mirror(config: Config) -> DownloadMirror | None:
    """``[mirror] download-mirror``, where files are asked first; None when unset."""
    if config.download_mirror is None:
        return None
    return DownloadMirror(config.download_mirror, no_fallback=config.download_mirror_no_fallback)


def open_store(config: Config, staging: Path, workers: int | None = None) -> Store:
    """The bare store of ``config`` (callers put it behind a ``Gate``); an S3 bucket is asked once
    now (StoreRefused for wrong credentials or bucket)."""
    if not on_s3(config):
        return FilesystemStore(config.directory / "web", staging)
    assert config.s3 is not None, "config.load sets [s3] with storage-backend = s3"
    staging.mkdir(parents=True, exist_ok=True)
    return open_s3(config.s3, config.directory, staging, workers or config.workers, config.timeout)


def build_selection(config: Config, now: Callable[[], float] = time.time) -> Selection:
    """What a command mirrors: the filters, and the cooling-off window read on the clock ``now``
    (tests give one they move instead of sleeping)."""
    return Selection(config.filters, Window(config.hold_back, now))


def status_master(config: Config, spool_dir: Path) -> Master:
    """``status``'s master: one request at most (it must answer now), spooled outside the mirror."""
    return build_master(config, spool_dir=spool_dir, workers=1, attempts=1)


def audit_parts(config: Config, spool_dir: Path) -> tuple[Master, RootIndex]:
    """``verify --upstream``'s master (one request in flight, its network settings as always) and the
    root index as published (on S3, its local record's copy), only read."""
    root = RootIndex(published_dir(config) / "simple", spool_dir, config.hash_index)
    return build_master(config, spool_dir=spool_dir, workers=1), root


def stats_store(config: Config) -> Gate:
    """``update-stats``' store: its own staging directory, one worker."""
    return Gate(open_store(config, staging_dir(config.directory, "stats"), workers=1))


@dataclass
class Runtime:
    """What one ``mirror`` or ``verify`` run works with, built by ``create``."""

    config: Config
    staging: Path
    layout: Layout
    store: Gate
    policy: UrlPolicy
    master: Master
    changes: Changes
    root: RootIndex

    @classmethod
    def create(cls, config: Config, *, master: Master | None = None, spool_dir: Path | None = None,
               diff_file: bool = True, allow_mass_removal: bool = False,
               command: str = ALLOW_MASS_REMOVAL) -> Runtime:
        """``master``: one made by the caller (tests); ``spool_dir``: where the master spools its
        answers (default: the staging directory); ``diff_file``: record the run's changes when the
        configuration asks for a diff-file; ``command``: what the removal limits' message says to run."""
        staging = staging_dir(config.directory, "mirror")
        layout = Layout(published_dir(config), staging, config.hash_index)
        bare = open_store(config, staging)
        # An object store's keys are listed as URLs, a filesystem's as paths below web/.
        url = bare.remote_url()
        remote = None if url is None else (url, lambda key: bare.stat(key) is not None)
        spool = config.directory / SPOOL_NAME if diff_file and config.diff_file is not None else None
        changes = Changes(spool, staging, layout.web, remote=remote)
        store = Gate(bare, changes=changes)
        root = RootIndex(layout.simple, staging, config.hash_index, store=store,
                         marks=config.directory / ROOT_MARKS)
        store.budget = _budget(config, root, allow_mass_removal, command)
        return cls(config, staging, layout, store, url_policy(config),
                   master or build_master(config, spool_dir=spool_dir or staging), changes, root)

    def project_sync(self, *, force_check: bool, selection: Selection,
                     records: DependencyRecords | None, tally: Tally | None = None,
                     json_api: bool = False) -> ProjectSync:
        """The project sync of this run; ``json_api``: keep the JSON API copies as configured."""
        config = self.config
        return ProjectSync(
            self.master, self.layout, self.policy,
            workers=config.workers, delete_packages=config.delete_packages, force_check=force_check,
            selection=selection, records=records, require_hashes=config.require_hashes,
            tally=tally,
            json_api=JsonApi(self.store, config.hash_index, enabled=config.json and json_api,
                             root_uri=config.root_uri),
            store=self.store, core_metadata=config.core_metadata,
            release_files=config.release_files, root_uri=config.root_uri,
        )


def dry_run(config: Config, *, spool_dir: Path, force_check: bool = False, allow_mass_removal: bool = False,
            master: Master | None = None) -> DryRun:
    """``mirror --dry-run``'s parts: views of the mirror that only read, a master spooling in ``spool_dir``
    (outside the mirror), a feed that saves no validators, dependency records kept in memory.

    The staging path is the run's, for the reads' confinement checks; nothing creates it.
    """
    staging = staging_dir(config.directory, "mirror")
    layout = Layout(published_dir(config), staging, config.hash_index)
    reader = FilesystemStore(layout.web, staging)  # an S3 mirror's pages are read from its local record
    root = RootIndex(layout.simple, staging, config.hash_index, store=reader)
    master = master or build_master(config, spool_dir=spool_dir)
    feed = feed_for(config.api_method, master, root.mirrored, config.directory, staging, record=False)
    selection = build_selection(config)  # held files show as the hold_back plugin's exclusions
    records = UnwrittenRecords(config.directory / "deps", staging) if selection.with_dependencies else None
    limits = Limits(None, None, lambda: 0, lambda: 0) if allow_mass_removal else Limits(
        RemovalLimit(config.max_removals, config.max_removals_percent),
        FileRemovalLimit(config.max_file_removals, config.max_file_removals_percent),
        project_count=lambda: sum(1 for _ in root.names()), file_count=lambda: _file_count(config))
    return DryRun(config, master=master, feed=feed, reader=reader, layout=layout, root=root,
                  state=StateFiles(config.directory, staging), selection=selection, records=records,
                  policy=url_policy(config), limits=limits, force_check=force_check)


def _file_count(config: Config) -> int:
    """How many files the mirror holds, as the ``counts`` record says (0: no record)."""
    counts = read_counts(config.directory)
    return counts.totals.files if counts is not None else 0


def _budget(config: Config, root: RootIndex, allow: bool, command: str) -> RemovalBudget:
    """The run's removal budget; the mirror's size is the root index's names and the ``counts`` record."""
    if allow:
        return RemovalBudget.unlimited()

    def files() -> int:
        counts = read_counts(config.directory)
        return counts.totals.files if counts is not None else 0

    return RemovalBudget(
        RemovalLimit(config.max_removals, config.max_removals_percent),
        FileRemovalLimit(config.max_file_removals, config.max_file_removals_percent),
        project_count=lambda: sum(1 for _ in root.names()), file_count=files, command=command)
