"""``bandersnatch verify --upstream``: is the mirror what upstream has, minus what the filters drop?

One request for upstream's list of projects with their serials, then per project:

- missing: upstream has it, the filters keep it, the mirror has no page for it;
- extra: the mirror has it and upstream does not list it, or the filters exclude it;
- behind: the mirror's recorded serial is older than upstream's, and upstream's is at or
  below the mirror's last synced serial (the mirror claims to have seen that change);
- pending: an upstream change above the last synced serial (the next run brings it): not wrong.

``diff`` is pure (entries in, ``Audit`` out) and keeps both sides as sorted arrays
of 64-bit name digests (``ledger.state.name_hash``, as the change feeds do), so a
750,000-project mirror costs about 12 MB, not a dict of strings; each name is
hashed and looked up once per side.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from ..config.settings import ApiMethod, Config
from ..errors import BandersnatchError, NoAnswer, UpstreamError, UpstreamUnreachable
from ..formats.layout import has_pages_in, page_path
from ..formats.serial import MAX_SERIAL
from ..ledger import excluded as excluded_ledger
from ..ledger.excluded import Recorded
from ..ledger.state import StateFiles, name_hash
from ..names import normalize
from ..runtime import audit_parts, published_dir
from ..selection.closure import DependencyTracker
from ..selection.policy import Exclusion, Selection
from ..selection.records import DependencyRecords
from ..store.atomic import staging_dir
from ..sync.rootindex import RootIndex
from ..upstream.projectlist import ProjectList

logger = logging.getLogger(__name__)

SHOWN = 20  # per kind, for humans; --json lists all
GONE = "gone upstream"

Excluded = Callable[[str, str | None], Exclusion | None]
"""Why the filters do not keep a project (normalized name, name as listed if known); None: kept."""


@dataclass(frozen=True)
class Missing:
    name: str
    upstream_serial: int


@dataclass(frozen=True)
class Extra:
    name: str
    why: str  # "gone upstream", or the filter's "plugin: reason"


@dataclass(frozen=True)
class Behind:
    name: str
    serial: int  # the mirror's recorded serial
    upstream_serial: int


@dataclass(frozen=True)
class Pending:
    name: str
    serial: int | None  # the mirror's recorded serial (None: not on the mirror)
    upstream_serial: int


@dataclass
class Audit:
    """The differences, and the counts the summary line gives."""

    last_synced: int | None
    upstream_projects: int = 0
    mirror_projects: int = 0
    unserialed: int = 0  # mirror projects whose root index line records no serial: not comparable
    excluded: int = 0  # upstream projects the filters exclude, by name or as the run recorded (pages)
    missing: list[Missing] = field(default_factory=list)
    extra: list[Extra] = field(default_factory=list)
    behind: list[Behind] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.missing or self.extra or self.behind)


def diff(upstream: Iterable[tuple[str, int]], ours: Callable[[], Iterable[tuple[str, int | None]]],
         last_synced: int | None, excluded: Excluded,
         recorded: Mapping[str, Recorded] | None = None) -> Audit:
    """Compare upstream's ``(name, serial)`` with the mirror's root index entries (``ours``: read twice).

    ``last_synced`` None (no sync ever finished) leaves nothing pending: every difference counts.
    ``recorded``: the exclusions the run made once it saw a page (``ledger.excluded``); one counts
    while upstream has not changed the project since it was judged.
    Each name is hashed once per side and looked up once (``_Digests``).
    """
    recorded = recorded or {}
    audit = Audit(last_synced)
    seen = MAX_SERIAL if last_synced is None else last_synced
    mine = _Digests((name_hash(key), serial) for key, serial in ours())
    listed: array[int] = array("Q")
    for name, serial in upstream:
        key = normalize(name)
        digest = name_hash(key)
        listed.append(digest)
        audit.upstream_projects += 1
        if excluded(key, name) is not None:
            audit.excluded += 1
            continue  # filtered out: fine when absent, and an extra below when present
        found, ours_serial = mine.find(digest)
        if found and ours_serial is None:
            continue  # no serial recorded: cannot be compared (counted below)
        if ours_serial is not None and ours_serial >= serial:
            continue
        judged = recorded.get(key) if not found else None
        if judged is not None and judged.serial >= serial:
            audit.excluded += 1
            continue  # the run saw this page and its filters excluded it
        if serial > seen:
            audit.pending.append(Pending(key, ours_serial, serial))
        elif ours_serial is None:
            audit.missing.append(Missing(key, serial))
        else:
            audit.behind.append(Behind(key, ours_serial, serial))
    names = _Digests((digest, None) for digest in listed)
    del listed
    for key, our_serial in ours():
        audit.mirror_projects += 1
        audit.unserialed += our_serial is None
        why = excluded(key, None)
        if why is not None:
            audit.extra.append(Extra(key, f"not selected: {why}"))
        elif not names.find(name_hash(key))[0]:
            audit.extra.append(Extra(key, GONE))
    for found_items in (audit.missing, audit.behind, audit.pending):
        found_items.sort(key=lambda item: item.name)  # upstream's order is its own; ours is sorted already
    return audit


_UNRECORDED = 2**64 - 1  # a serial no project has: "none recorded"
_MASK = 2**64 - 1  # the low 64 bits: the serial


class _Digests:
    """Names as sorted 64-bit digests (``ledger.state.name_hash``), each with a serial or none: 16
    bytes a project instead of a dict of strings; a collision costs at most one difference unseen."""

    def __init__(self, entries: Iterable[tuple[int, int | None]]) -> None:
        packed = sorted((digest << 64) | (_UNRECORDED if serial is None else min(serial, _UNRECORDED - 1))
                        for digest, serial in entries)
        self._digests = array("Q", (value >> 64 for value in packed))
        self._serials = array("Q", (value & _MASK for value in packed))

    def find(self, digest: int) -> tuple[bool, int | None]:
        """Whether the digest is there, and its serial (None: none recorded, or not there)."""
        i = bisect.bisect_left(self._digests, digest)
        if i == len(self._digests) or self._digests[i] != digest:
            return False, None
        serial = self._serials[i]
        return True, None if serial == _UNRECORDED else serial


# ---------------------------------------------------------------- the command


def command(config: Config, *, as_json: bool, out: TextIO) -> int:
    """``verify --upstream``: the differences on ``out`` (lines, or one JSON document); 1 when any."""
    with contextlib.ExitStack() as stack:
        try:
            return _audit(config, _spool_dir(config.directory, stack), as_json, out)
        except BandersnatchError as exc:
            if as_json:  # a machine always gets a document; the CLI still logs the line and exits non-zero
                doc = {"equal": False, "error": str(exc)}
                out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
                out.flush()
            raise


def _spool_dir(directory: Path, stack: contextlib.ExitStack) -> Path:
    """Where the listing is spooled (tens of megabytes): verify's directory below the mirror, or for a
    user who may only read the mirror a temporary one (not /tmp's RAM, when the mirror's is usable)."""
    usual = staging_dir(directory, "verify")
    with contextlib.suppress(OSError):
        usual.mkdir(parents=True, exist_ok=True)
        if os.access(usual, os.W_OK | os.X_OK):
            return usual
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bandersnatch-audit-")))


def _published(config: Config, root: RootIndex) -> Callable[[], Iterator[tuple[str, int | None]]]:
    """The root index's entries whose pages are there: a project whose directory is gone is missing,
    whatever the index still says (two stats a project: seconds for PyPI's 750,000)."""
    simple = published_dir(config) / "simple"
    return lambda: ((key, serial) for key, serial in root.entries()
                    if has_pages_in(page_path(simple, key, config.hash_index).parent))


def _audit(config: Config, spool: Path, as_json: bool, out: TextIO) -> int:
    master, root = audit_parts(config, spool)
    ours = _published(config, root)
    try:
        last_synced = StateFiles(config.directory, spool).read_serial()
        excluded = _excluded(config, spool)
        recorded = _recorded(config)
        listed = ProjectList(master, xmlrpc=config.api_method is ApiMethod.XMLRPC)
        try:
            audit = diff(listed, ours, last_synced, excluded, recorded)
        except (UpstreamUnreachable, NoAnswer):
            raise  # upstream out of reach, not without a listing: XML-RPC would only wait as long again
        except UpstreamError as exc:
            if config.api_method is not ApiMethod.AUTO:
                raise
            # A master without a PEP 691 listing (or without serials in it): its XML-RPC list instead.
            logger.info("No usable root listing (%s): asking XML-RPC list_packages_with_serial", exc)
            listed = ProjectList(master, xmlrpc=True)
            audit = diff(listed, ours, last_synced, excluded, recorded)
    finally:
        master.close()
    _say(audit, listed, as_json, out)
    return 1 if audit.differs else 0


def _recorded(config: Config) -> Mapping[str, Recorded]:
    """What the runs excluded once they saw a page; an older mirror has no record (said once)."""
    recorded = excluded_ledger.read(config.directory)
    if recorded is not None:
        return recorded
    if Selection(config.filters).judges_pages:
        logger.warning("%s: no record of the projects the filters excluded on their page or metadata "
                       "(a mirror older than this release): they count as missing until the next full "
                       "run (bandersnatch mirror --force-check) records them", config.directory)
    return {}


def _excluded(config: Config, staging: Path) -> Excluded:
    """The filters' verdict by name, as a run's planning gives it (the closure's reach included)."""
    selection = Selection(config.filters)
    tracker = None
    if selection.with_dependencies:
        tracker = DependencyTracker(selection, DependencyRecords(config.directory / "deps", staging))

    def excluded(key: str, name: str | None) -> Exclusion | None:
        why = selection.project(key, name)
        if why is not None and tracker is not None and selection.blocks(key, name) is None \
                and tracker.admits(key):
            return None  # a dependency of the allowlist
        return why

    return excluded


def _say(audit: Audit, listed: ProjectList, as_json: bool, out: TextIO) -> None:
    summary = (f"verify --upstream: upstream lists {audit.upstream_projects} project(s) (serial "
               f"{listed.serial}, {listed.source}), the mirror {audit.mirror_projects} (last synced serial "
               f"{audit.last_synced}): {len(audit.missing)} missing, {len(audit.extra)} extra, "
               f"{len(audit.behind)} behind, {len(audit.pending)} pending, {audit.excluded} excluded by "
               "the filters")
    if audit.unserialed:
        summary += f"; {audit.unserialed} without a recorded serial (not compared)"
    if as_json:
        doc = {"equal": not audit.differs, "upstream": {"projects": audit.upstream_projects,
                                                         "serial": listed.serial, "source": listed.source,
                                                         "excluded": audit.excluded},
               "mirror": {"projects": audit.mirror_projects, "last_synced_serial": audit.last_synced,
                          "unserialed": audit.unserialed},
               **{kind: [asdict(item) for item in getattr(audit, kind)]
                  for kind in ("missing", "extra", "behind", "pending")}}
        out.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    else:
        out.writelines(line + "\n" for line in _lines(audit))
    out.flush()
    logger.log(logging.ERROR if audit.differs else logging.INFO, "%s", summary)


def _lines(audit: Audit) -> list[str]:
    """One line per difference, at most ``SHOWN`` per kind."""
    kinds: list[tuple[str, list[str]]] = [
        ("missing", [f"{m.name} (upstream serial {m.upstream_serial})" for m in audit.missing]),
        ("extra", [f"{e.name} ({e.why})" for e in audit.extra]),
        ("behind", [f"{b.name} (serial {b.serial}, upstream {b.upstream_serial})" for b in audit.behind]),
        ("pending", [f"{p.name} (upstream serial {p.upstream_serial}, after the last sync)"
                     for p in audit.pending]),
    ]
    lines: list[str] = []
    for kind, items in kinds:
        lines.extend(f"{kind}: {item}" for item in items[:SHOWN])
        if len(items) > SHOWN:
            lines.append(f"{kind}: ... and {len(items) - SHOWN} more (--json lists them all)")
    return lines
