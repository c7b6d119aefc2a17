"""Distribution file name -> project name, without the index (pure).

The mirror's own index is authoritative (see :mod:`bandersnatch.stats.index`),
but it cannot be searched by file name without reading every project page.
So the file name proposes candidate project names (the grammar is the core's,
:mod:`bandersnatch.filenames`), the index confirms one, and when the index
knows none of them the best guess here is used.
"""

from __future__ import annotations

import re

from ..formats.filenames import candidate_projects, raw_candidates, split_suffix
from ..names import normalize

__all__ = ["candidate_projects", "guess_project", "split_suffix"]

_DOTTED_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)+")


def guess_project(filename: str) -> str | None:
    """The (normalized) project ``filename`` most likely belongs to when the index cannot say.

    Like :func:`candidate_projects` but a name that itself ends in a dotted
    version (``foo-1.0`` from ``foo-1.0-1.tar.gz``) is taken only when nothing
    else fits: that shape is far more often a legacy ``version-build``.
    """
    candidates = raw_candidates(filename)
    for name in candidates:
        if "-" in name and _DOTTED_VERSION.fullmatch(name.rsplit("-", 1)[-1]):
            continue
        return normalize(name)
    return normalize(candidates[0]) if candidates else None
