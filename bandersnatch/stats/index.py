"""Which project a downloaded file belongs to, asked of the mirror's own index.

The index cannot be searched by file name and PyPI has hundreds of thousands
of projects, so no page is read unless the file name proposes its project
(:func:`bandersnatch.stats.filenames.candidate_projects`).  A candidate is
confirmed when its PEP 691 page lists the file; file names are unique across
PyPI, so a listed file name settles it.  Pages are read at most once per run.

The mirror may rewrite pages while we read them; it replaces them atomically,
so a read sees a whole old page or a whole new one, never a torn one.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..formats.layout import page_path as layout_page_path
from ..formats.pagerecord import filenames_from_bytes as page_filenames
from .filenames import candidate_projects, guess_project

logger = logging.getLogger(__name__)

MAX_CACHED_PAGES = 4096


def page_path(simple_dir: Path, project: str, hash_index: bool) -> Path:
    """Where the mirror keeps the JSON page of the normalized name ``project``."""
    return layout_page_path(simple_dir, project, hash_index)


class ProjectIndex:
    """File name → project via the mirror's pages, falling back to the file name."""

    def __init__(self, simple_dir: Path, hash_index: bool) -> None:
        self.simple_dir = simple_dir
        self.hash_index = hash_index
        self._pages: dict[str, frozenset[str]] = {}
        self.pages_read = 0

    def files_of(self, project: str) -> frozenset[str]:
        """File names the mirror lists for ``project`` (empty when it has no usable page)."""
        files = self._pages.get(project)
        if files is not None:
            return files
        path = page_path(self.simple_dir, project, self.hash_index)
        try:
            files = page_filenames(path.read_bytes())
            self.pages_read += 1
        except FileNotFoundError:
            files = frozenset()
        except (OSError, ValueError) as exc:
            logger.debug("cannot use %s to attribute downloads: %s", path, exc)
            files = frozenset()
        if len(self._pages) >= MAX_CACHED_PAGES:
            self._pages.clear()
        self._pages[project] = files
        return files

    def project_for(self, filename: str) -> str | None:
        """The normalized project of ``filename``, or None when it is no distribution."""
        for candidate in candidate_projects(filename):
            if filename in self.files_of(candidate):
                return candidate
        return guess_project(filename)
