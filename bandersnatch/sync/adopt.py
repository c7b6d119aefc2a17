"""Adopting a bandersnatch 8 mirror directory: what 8.x left that this client does not keep current.

``state`` takes over 8.x's ``status`` serial (see ``state``).  Besides its
pages and files, an 8.x mirror may hold:

- ``web/json/<project>`` and ``web/pypi/<project>/json`` (8.x's ``json =
  true``; the latter a link to the former): removed, since nothing here keeps
  that copy current.  With ``json = true`` this client writes
  ``web/pypi/<project>/json`` itself, and the adoption plans a full sync
  (pages fetched again, files reused) so every project gets one;
- ``simple/<project>/index.v1_html`` and ``simple/index.v1_html`` (8.x's
  PEP 691 HTML copy) and ``simple/<project>/versions/`` (``keep_index_versions``):
  removed, as nothing keeps them current;
- with ``cleanup = true``, project directories under a non-normalized name
  (bandersnatch before 4.0): removed, as 8.x's cleanup did;
- projects upstream deleted that 8.x kept: found by comparing the project
  directories with upstream's listing once, and put in the work list, where
  their pages answer 404 and they leave through the ordinary removal path,
  under the removal limit (``publish.budget.RemovalLimit``).

The walk runs in the adopting run, before planning; the ``adopting`` marker
stays until the work list is written, so a killed adoption starts again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ..formats.layout import PAGE_HTML, PAGE_JSON
from ..names import normalize
from ..publish.difffile import Changes
from ..store.atomic import atomic_write, remove_tree

logger = logging.getLogger(__name__)

LEGACY_HTML = "index.v1_html"
LEGACY_VERSIONS = "versions"


def remove_leftovers(web: Path, hash_index: bool, cleanup: bool, staging: Path, changes: Changes) -> int:
    """Remove what 8.x wrote that this client does not keep current; return how many entries went."""
    removed = 0
    for path in (web / "json", web / "pypi", web / "simple" / LEGACY_HTML):
        if remove_tree(path, staging):
            changes.deleted(path)
            removed += 1
    for page_dir in project_dirs(web / "simple", hash_index):
        if cleanup and normalize(page_dir.name) != page_dir.name:
            if remove_tree(page_dir, staging):
                logger.info("removed %s: not under its normalized name (cleanup = true)", page_dir)
                changes.deleted(page_dir)
                removed += 1
            continue
        _unlink_page(page_dir / PAGE_HTML, staging, changes)
        for name in (LEGACY_HTML, LEGACY_VERSIONS):
            if remove_tree(page_dir / name, staging):
                changes.deleted(page_dir / name)
                removed += 1
    if removed:
        logger.info("Adopting a bandersnatch 8 mirror: removed %d entr%s nothing keeps current (web/json, "
                    "web/pypi, index.v1_html, versions/)", removed, "y" if removed == 1 else "ies")
    return removed


def _unlink_page(page: Path, staging: Path, changes: Changes) -> None:
    """Make 8.x's ``index.html -> versions/index_<serial>_<time>.html`` (keep_index_versions) a file.

    Only a link into the project's own ``versions/`` is followed: any other link is damage,
    and the project's next sync replaces it.
    """
    try:
        target = os.readlink(page)
    except OSError:
        return  # not a link (or gone)
    parts = Path(target).parts
    if len(parts) != 2 or parts[0] != LEGACY_VERSIONS or parts[1] in ("..", "."):
        return
    try:
        data = (page.parent / target).read_bytes()
    except OSError:
        return  # a dangling link: the project counts as without pages and is synced again
    atomic_write(page, data, staging)
    changes.written(page)  # a downstream copy of the link would dangle once versions/ goes


def project_dirs(simple: Path, hash_index: bool) -> Iterator[Path]:
    """Every project directory under ``simple/`` holding at least one page, streamed."""
    for entry in _subdirs(simple):
        inner = _subdirs(entry) if hash_index else iter((entry,))
        for page_dir in inner:
            if any(os.path.lexists(page_dir / page) for page in (PAGE_HTML, PAGE_JSON, LEGACY_HTML)):
                yield page_dir


def _subdirs(path: Path) -> Iterator[Path]:
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    yield Path(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        return
