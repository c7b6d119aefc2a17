"""Checks that stop a run from doing what an operator cannot have meant.

- The simple index keeps one layout: ``hash-index`` changed on a mirror that has
  pages is refused (a split layout leaves stale pages the root index still links).
- Its pages keep one ``release-files`` mode: a switch on a mirror that has pages is
  refused (pages written in two modes would link files in two places).
- A run does not take more than a bounded share of the mirror off it unless told to.
- A permission problem is one line naming the path, its owner and the likely fix.

Each check is cheap: a few stats and small reads, never a walk of the mirror.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from ..config.values import ReleaseFiles
from ..errors import ConfigError, StorageError
from ..formats.layout import PAGE_HTML, PAGE_JSON
from ..store.atomic import atomic_write

LAYOUT_RECORD = "simple-layout"
RELEASE_FILES_RECORD = "release-files"  # <directory>/release-files: the mode the pages were written in
FLAT = "flat"
HASHED = "hash-index"
_PROBES = 32  # directories of web/simple/ looked at to tell its layout


def _setting(layout: str) -> str:
    return f"hash-index = {'true' if layout == HASHED else 'false'}"


def _shape(layout: str) -> str:
    return "web/simple/<p>/<project>/" if layout == HASHED else "web/simple/<project>/"


def _has_a_page(path: Path) -> bool:
    """Either page: a mirror adopted from bandersnatch 8 may have only ``index.html``."""
    return (path / PAGE_HTML).is_file() or (path / PAGE_JSON).is_file()


def infer_layout(simple: Path) -> str | None:
    """The layout of the project pages under ``simple``, from its first directories; None: no pages seen.

    A flat index has the pages right in ``simple/<project>/``; a hashed one has
    them one level down, below one-character directories.
    """
    try:
        with os.scandir(simple) as entries:
            seen = 0
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                if _has_a_page(path):
                    return FLAT
                if len(entry.name) == 1:
                    with os.scandir(path) as inner:
                        for sub, _ in zip(inner, range(_PROBES), strict=False):
                            if sub.is_dir(follow_symlinks=False) and _has_a_page(Path(sub.path)):
                                return HASHED
                seen += 1
                if seen >= _PROBES:
                    return None
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None


def check_layout(directory: Path, simple: Path, hash_index: bool, config_path: Path, staging: Path) -> None:
    """Refuse a ``hash-index`` that differs from the pages' layout on disk; record the layout.

    The record (``<directory>/simple-layout``) is written once the mirror has a
    layout; a mirror from before it is judged from ``web/simple/``'s shape.
    Without any project pages there is nothing to split, and any setting goes.
    """
    wanted = HASHED if hash_index else FLAT
    record = directory / LAYOUT_RECORD
    try:
        recorded: str | None = record.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        recorded = None
    actual = infer_layout(simple)
    if actual is None and recorded in (FLAT, HASHED) and _has_directories(simple):
        actual = recorded  # its first directories did not tell (a killed run's leftovers): trust the record
    if actual is not None and actual != wanted:
        raise ConfigError(
            str(config_path), "mirror", "hash-index",
            f"{simple} holds the {'hashed' if actual == HASHED else 'flat'} layout ({_shape(actual)}) but "
            f"the configuration says {_setting(wanted)}; a mixed index would serve stale pages. Set "
            f"{_setting(actual)} again, or to switch: stop serving the mirror, delete {simple}, run "
            f"`bandersnatch mirror` (every page is fetched again, files on disk are checked, not "
            f"downloaded again), then map the web server's URLs to {_shape(wanted)}",
        )
    if recorded != wanted:
        atomic_write(record, f"{wanted}\n".encode(), staging)


_AFTER_SWITCH = {
    ReleaseFiles.FALSE: "",
    ReleaseFiles.TRUE: "; files on disk are checked, not downloaded again",
    ReleaseFiles.ON_DEMAND: "; files on disk stay, served as fetched ones",
}


def check_release_files(directory: Path, web: Path, wanted: ReleaseFiles, config_path: Path,
                        staging: Path, *, adopting: bool = False) -> None:
    """Refuse a ``release-files`` other than the one the mirror's pages were written in; record it.

    A mirror with pages and no record predates the option's other modes: it is ``true``,
    unless it is a bandersnatch 8 mirror being adopted, whose configuration says what its
    pages link (8.x's index-only mirror is ``false``).  Without pages, any mode goes (a
    first run, or the operator followed the steps).
    """
    record = directory / RELEASE_FILES_RECORD
    try:
        raw = record.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        raw = None
    has_pages = infer_layout(web / "simple") is not None
    recorded = next((mode for mode in ReleaseFiles if mode.value == raw), None)
    if has_pages and recorded is None:
        recorded = wanted if adopting else ReleaseFiles.TRUE
    if has_pages and recorded is not wanted:
        # To false: the files kept so far would be linked by no page, so they go with the pages.
        doomed = web if wanted is ReleaseFiles.FALSE else web / "simple"
        raise ConfigError(
            str(config_path), "mirror", "release-files",
            f"the pages under {web / 'simple'} were written with release-files = {recorded} but the "
            f"configuration says {wanted}; pages of two modes would link files in two places. Set "
            f"release-files = {recorded} again, or to switch: stop serving the mirror, delete {doomed}, "
            f"run `bandersnatch mirror` (a full sync writes every page anew"
            f"{_AFTER_SWITCH[wanted]}"
            f"), then serve it as README says for release-files = {wanted}")
    if raw != wanted.value:
        atomic_write(record, f"{wanted}\n".encode(), staging)


def _has_directories(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(e.is_dir(follow_symlinks=False) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def permission_problem(exc: OSError, directory: Path, what: str | None = None) -> StorageError:
    """One line for a file or directory this run may not write: whose it is and what to do.

    ``what`` replaces the first part of the message (an existing StorageError's text).
    """
    name = exc.filename2 if exc.filename2 is not None else exc.filename  # a rename: its target
    path = Path(os.fsdecode(name)) if name is not None else directory
    me = os.geteuid()
    try:
        owner = path.lstat().st_uid if path.exists() else path.parent.stat().st_uid
    except OSError:
        owner = me
    if owner != me:
        fix = (f"it belongs to {_user(owner)} and this run is {_user(me)}: run bandersnatch as "
               f"{_user(owner)}, or give the mirror to this user (chown -R {_user(me)} {directory})")
    else:
        fix = ("check its permissions, its attributes (lsattr: immutable?) and whether the filesystem "
               "is mounted read-only")
    return StorageError(f"{what or f'cannot write {path}: {exc.strerror or exc}'}; {fix}")


def explained(exc: StorageError, directory: Path) -> StorageError:
    """``exc`` with the likely fix added when a permission caused it; else ``exc`` itself."""
    cause = exc.__cause__
    if isinstance(cause, PermissionError):
        return permission_problem(cause, directory, str(exc))
    return exc
