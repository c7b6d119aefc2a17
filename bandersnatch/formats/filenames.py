"""Distribution file name -> the project names it may belong to (pure).

The one filename grammar of the package: the mirror uses it to decide which
pages link a file without a record (``owners``), and ``update-stats`` to
attribute downloads.

* Wheels (PEP 427) and eggs escape ``-`` in the name, so the name is
  everything before the first ``-``.
* Sdists and the old binary formats are ``name-version.ext`` where both
  name and version may contain ``-``.  Every ``-`` followed by a digit is a
  possible split; longer names are tried first because a name such as
  ``jinja2-time`` or ``py-3to2`` contains ``-<digit>`` while a version rarely
  contains ``-`` at all.

Anything else under ``/packages/`` (PEP 658 ``.metadata`` files, ``.asc``
signatures, provenance) is not a distribution and has no candidates.
"""

from __future__ import annotations

from ..names import is_valid_project_name, normalize

WHEEL_SUFFIXES = (".whl", ".egg")
SDIST_SUFFIXES = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tar.Z",
    ".tgz",
    ".tbz",
    ".tar",
    ".zip",
)
LEGACY_SUFFIXES = (".exe", ".msi", ".rpm", ".dmg", ".deb")


def split_suffix(filename: str) -> tuple[str, str] | None:
    """(stem, suffix) for a distribution file name, None for anything else."""
    lowered = filename.lower()
    for suffix in WHEEL_SUFFIXES + SDIST_SUFFIXES + LEGACY_SUFFIXES:
        if lowered.endswith(suffix.lower()) and len(filename) > len(suffix):
            return filename[: -len(suffix)], suffix
    return None


def raw_candidates(filename: str) -> list[str]:
    """Candidate names as spelled in ``filename``, valid and distinct once normalized, most likely first."""
    parts = split_suffix(filename)
    if parts is None:
        return []
    stem, suffix = parts
    if suffix in WHEEL_SUFFIXES:
        raw = [stem.split("-", 1)[0]] if "-" in stem else []
    else:
        splits = [i for i in range(1, len(stem) - 1) if stem[i] == "-" and stem[i + 1].isdigit()]
        raw = [stem[:i] for i in reversed(splits)]
    seen: set[str] = set()
    names: list[str] = []
    for name in raw:
        if is_valid_project_name(name) and normalize(name) not in seen:
            seen.add(normalize(name))
            names.append(name)
    return names


def candidate_projects(filename: str) -> list[str]:
    """PEP 503-normalized names ``filename`` may belong to, most likely first."""
    return [normalize(name) for name in raw_candidates(filename)]
