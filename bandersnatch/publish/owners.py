"""Which project pages link a file under ``web/packages/``: asked before any delete or overwrite.

A file may be linked by more than one project's page: upstream pages may name
any URL, and a hostile page may name another project's file.  Deleting a file
one page drops, or overwriting it with the bytes one page asks for, must not
break another page.  At PyPI scale (750,000 projects, ~10 million files) a
record per file, or a walk of the tree to find the other pages, is too dear,
and almost every file is linked by one project only.  So:

* **Ownership is implicit in the file name.**  A project *owns* a file when
  its name is one of the file name's candidate projects
  (:func:`bandersnatch.filenames.candidate_projects`: ``good-1.0.tar.gz`` ->
  ``good``).  That is a pure function of the name: no record.  Its linkage is
  read from the owner's own JSON page (our record of what it links) and its
  intents file (what an interrupted sync may have left linked).
* **Every other link is an exception, recorded.**  A project whose page links
  a file it does not own lists that file in ``<directory>/claims/<project>``
  (one path below ``web/packages/`` per line), written *before* the page that
  links it and shrunk only *after* the page stops linking it (or is removed).
  All claims files are read once per run into an in-memory reverse map; on
  PyPI they are few (files renamed projects kept), and a hostile page costs
  one small file for its own project.  A sync writes its claims file only
  when its set of foreign links changes, so per-project cost stays flat.
* **In-flight syncs are registered in memory.**  From planning to its end, a
  sync registers every path its old or new pages may link, so another sync of
  the same run cannot delete or overwrite them between its own checks.

Why nothing linked is ever deleted: a page P links path H only if (1) P's
project owns H (then its page or intents file says so, and every owner of H
is computable from H's name), or (2) H is in P's claims file (written before P
linked it, kept until P stops), or (3) P's sync is in flight (registered).
:meth:`Links.delete_if_unlinked` checks all three for every project but the
one letting go, under one lock that registration also takes, so no link can
appear between the check and the unlink.  The grammar only decides how often
the exception is taken, never whether a link is seen: a name it gets wrong
costs a claims line, not a file.  Limits: a claims file or page edited or
removed by hand is trusted as it is.

Why a verified file is never overwritten with other bytes: before a sync
downloads over (or into) path H, :meth:`Links.others` lists the other pages
linking H with the sha256 they recorded; when one differs from what this page
asks for (or this page gives no sha256 to compare), the download is refused
for this project.  A per-path lock makes check, download and rename one step.

What is published beside a file (its PEP 658 ``.metadata``, our copy of its
PEP 740 ``.provenance``) is the file's owner's: :meth:`Links.sidecar_holder`
names the project whose pages alone may write or delete it.  That is a project
owning the file by name while its pages link the file (or its sync may), and
only when none does, whichever page links it by claim (a renamed project's
page): the first of them to publish beside it, recorded as a ``+<path>`` line
in its claims file and kept while its pages link the file.  A page that
merely shares the file may link what the holder published but never changes
it, so another project cannot put its own provenance or metadata beside
someone else's file.  A sidecar is deleted only when no page links it
(:meth:`Links.delete_sidecar_if_unlinked`); a sync in flight counts as
linking every sidecar of its files until it has verified them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote

from ..formats.filenames import candidate_projects
from ..names import is_valid_project_name
from ..store.atomic import atomic_write, remove_file

logger = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata"  # PEP 658: a file's core metadata is at its URL plus this
# PEP 740 lets the provenance live at any URL; ours keeps it beside the file under this suffix.
PROVENANCE_SUFFIX = ".provenance"
SIDECARS = (METADATA_SUFFIX, PROVENANCE_SUFFIX)  # kept beside a file, and deleted with it

# A claims line "+<path>": this project, linking <path> by claim, holds what is published beside it.
# Paths below packages/ are percent-encoded (``layout.file_href``), so none starts with "+".
_HOLDS = "+"


@dataclass(frozen=True)
class Linked:
    """How one page links a file: the sha256 it recorded for the file and for its metadata (None: unknown)."""

    sha256: str | None
    metadata_sha256: str | None
    # The suffixes (".metadata", ".provenance") of what the page links beside the file;
    # None: not known yet (a sync in flight may still publish and link one).
    sidecars: frozenset[str] | None = None

    def links_sidecar(self, suffix: str) -> bool:
        """The page links (or, not known yet, may link) the file's sidecar ``suffix``."""
        return self.sidecars is None or suffix in self.sidecars


# project, path below packages/ -> how that project's pages link it, or None when they do not
PageLookup = Callable[[str, str], Linked | None]


def sidecar_of(rel: str) -> tuple[str, str] | None:
    """(the file, the suffix) when ``rel`` names what we publish beside a file; None for a file itself.

    A distribution never has such a name: pages listing one are refused (``package._plan_files``).
    """
    for suffix in SIDECARS:
        if rel.endswith(suffix) and len(rel) > len(suffix):
            return rel[: -len(suffix)], suffix
    return None


def owners_of(rel: str) -> list[str]:
    """Projects that may link ``rel`` (a path below ``web/packages/``) without a claim."""
    return candidate_projects(unquote(rel.rsplit("/", 1)[-1]))


class Links:
    """The claims files, their reverse map and this run's in-flight syncs; safe across threads."""

    def __init__(self, directory: Path, staging: Path, lookup: PageLookup) -> None:
        self.directory = directory  # <directory>/claims
        self.staging = staging
        self.lookup = lookup
        self._lock = threading.Lock()
        self._claims: dict[str, set[str]] | None = None  # project -> its claimed paths (lazy)
        self._claimants: dict[str, set[str]] = {}  # path -> projects claiming it
        self._inflight: dict[str, dict[str, Linked]] = {}  # path -> project -> how it links it
        self._registered: dict[str, set[str]] = {}  # project -> its paths in _inflight
        self._path_locks: dict[str, tuple[threading.Lock, int]] = {}

    # ------------------------------------------------------------ the persistent claims

    def _loaded(self) -> dict[str, set[str]]:
        """The claims files, read on first use (caller holds the lock)."""
        if self._claims is None:
            self._claims = {}
            try:
                entries = list(os.scandir(self.directory))
            except FileNotFoundError:
                entries = []
            for entry in entries:
                if not is_valid_project_name(entry.name):
                    continue
                paths = set(Path(entry.path).read_text(encoding="utf-8").split())
                self._claims[entry.name] = paths
                for rel in paths:
                    self._claimants.setdefault(rel, set()).add(entry.name)
        return self._claims

    def _set_claims(self, key: str, paths: set[str]) -> None:
        """Make ``key``'s claims file say ``paths`` (caller holds the lock)."""
        claims = self._loaded()
        old = claims.get(key, set())
        if paths == old:
            return
        if paths:
            lines = "".join(f"{p}\n" for p in sorted(paths))
            atomic_write(self.directory / key, lines.encode(), self.staging)
            claims[key] = set(paths)
        else:
            remove_file(self.directory / key, self.staging)
            claims.pop(key, None)
        for rel in old - paths:
            holders = self._claimants.get(rel)
            if holders is not None:
                holders.discard(key)
                if not holders:
                    del self._claimants[rel]
        for rel in paths - old:
            self._claimants.setdefault(rel, set()).add(key)

    @staticmethod
    def foreign(key: str, paths: Iterable[str]) -> set[str]:
        """The paths of ``paths`` that ``key`` does not own by name."""
        return {rel for rel in paths if key not in owners_of(rel)}

    # ------------------------------------------------------------ one sync's lifetime

    def begin(self, key: str, linked: Mapping[str, Linked], wanted: Iterable[str]) -> None:
        """Register a sync whose pages link ``linked`` now and will link ``wanted``; claim the foreign ones.

        Written before anything is downloaded or any page rewritten.
        """
        with self._lock:
            claims = self._loaded()
            new = self.foreign(key, wanted) - claims.get(key, set())
            if new:
                self._set_claims(key, claims.get(key, set()) | new)
            registered = self._registered.setdefault(key, set())
            for rel, how in linked.items():  # its sidecars unknown until verified: it may add one
                self._inflight.setdefault(rel, {})[key] = replace(how, sidecars=None)
                registered.add(rel)
            for rel in wanted:
                self._inflight.setdefault(rel, {}).setdefault(key, Linked(None, None))
                registered.add(rel)

    def settle(self, key: str, linked: Iterable[str]) -> None:
        """``key``'s pages now link exactly ``linked`` (empty: removed); shrink its claims to match."""
        with self._lock:
            foreign = self.foreign(key, linked)
            held = {c for c in self._loaded().get(key, set()) if c.startswith(_HOLDS) and c[1:] in foreign}
            self._set_claims(key, foreign | held)

    def end(self, key: str) -> None:
        """The sync of ``key`` is over, whether it succeeded or not."""
        with self._lock:
            for rel in self._registered.pop(key, ()):
                holders = self._inflight[rel]
                del holders[key]
                if not holders:
                    del self._inflight[rel]

    # ------------------------------------------------------------ questions

    def others(self, key: str, rel: str) -> dict[str, Linked]:
        """Every project but ``key`` whose pages link (or may soon link) ``rel``, with what they recorded."""
        with self._lock:
            return self._others(key, rel)

    def _others(self, key: str, rel: str) -> dict[str, Linked]:
        self._loaded()
        found = {p: how for p, how in self._inflight.get(rel, {}).items() if p != key}
        for project in self._claimants.get(rel, set()) | set(owners_of(rel)):
            if project == key or project in found:
                continue
            how = self.lookup(project, rel)
            if how is not None:
                found[project] = how
        return found

    def delete_if_unlinked(self, key: str, rel: str, delete: Callable[[], None]) -> str | None:
        """Call ``delete`` unless a project other than ``key`` links ``rel``; return such a project."""
        with self._lock:
            others = self._others(key, rel)
            if others:
                return sorted(others)[0]
            delete()
            return None

    # ------------------------------------------------------------ what is published beside a file

    def sidecar_holder(self, key: str, rel: str) -> str | None:
        """The project whose pages alone may write or delete ``rel``'s sidecars, when it is not ``key``.

        None: ``key`` may (it owns ``rel`` by name, or, linking it by claim, it holds it: no
        project owning it by name links it and no other claimant held it first; a claimant
        told so takes the hold, in its claims file).  Costs nothing for the common case, a
        project's own file.  Asked by a sync whose pages will link ``rel``, after ``begin``.
        """
        names = owners_of(rel)
        if key in names:
            return None
        with self._lock:
            others = self._others(key, rel)
            owners = sorted(p for p in others if p in names)
            if owners:
                return owners[0]
            claims = self._loaded()
            holders = sorted(p for p in self._claimants.get(_HOLDS + rel, set()) if p != key and p in others)
            if holders:
                return holders[0]
            if _HOLDS + rel not in claims.get(key, set()):  # the first claimant to publish beside it
                self._set_claims(key, claims.get(key, set()) | {_HOLDS + rel})
            return None

    def sidecar_linkers(self, key: str, rel: str, suffix: str) -> list[str]:
        """Projects but ``key`` whose pages link (or may soon link) ``rel``'s sidecar ``suffix``."""
        with self._lock:
            return self._sidecar_linkers(key, rel, suffix)

    def _sidecar_linkers(self, key: str, rel: str, suffix: str) -> list[str]:
        return sorted(p for p, how in self._others(key, rel).items() if how.links_sidecar(suffix))

    def delete_sidecar_if_unlinked(self, key: str, rel: str, suffix: str,
                                   delete: Callable[[], None]) -> str | None:
        """Call ``delete`` unless another project links ``rel``'s ``suffix``; else return one that does."""
        with self._lock:
            linkers = self._sidecar_linkers(key, rel, suffix)
            if linkers:
                return linkers[0]
            delete()
            return None

    @contextlib.contextmanager
    def exclusive(self, rel: str) -> Iterator[None]:
        """Hold ``rel`` alone: its check, download and rename happen as one step across threads."""
        with self._lock:
            lock, users = self._path_locks.get(rel, (threading.Lock(), 0))
            self._path_locks[rel] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._path_locks[rel]
                if users == 1:
                    del self._path_locks[rel]
                else:
                    self._path_locks[rel] = (lock, users - 1)

    def verified(self, key: str, rel: str, how: Linked) -> None:
        """``key`` has verified ``rel`` on disk as ``how``: later checks compare against it."""
        with self._lock:
            holders = self._inflight.get(rel)
            if holders is not None and key in holders:
                holders[key] = how
