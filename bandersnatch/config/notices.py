"""Configuration warnings are shown once per change of what they say.

cron mails whatever a run prints: a warning repeated by every run (and every
``status``) is a mail that never stops, and soon nobody reads it.  ``mirror``
shows the file's warnings when they differ from those it last showed, and
records their digest in the mirror directory; other commands only log them at
debug level (``status`` writes nothing there).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import StorageError
from ..store.atomic import atomic_write, staging_dir

RECORD = "config-warnings"
"""The digest of the warnings ``mirror`` last showed, in the mirror directory."""


def digest(warnings: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(warnings).encode()).hexdigest()


def already_shown(directory: Path, warnings: tuple[str, ...]) -> bool:
    """True when ``mirror`` showed exactly these warnings before (no record: none were shown)."""
    try:
        recorded = (directory / RECORD).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return not warnings
    return recorded == digest(warnings)


def remember(directory: Path, warnings: tuple[str, ...]) -> None:
    """Record that these warnings were shown (best effort: at worst they are shown once more)."""
    if not directory.is_dir():
        return
    try:
        if not warnings:  # none now: the next warning, even one shown before, is news again
            (directory / RECORD).unlink(missing_ok=True)
            return
        atomic_write(directory / RECORD, (digest(warnings) + "\n").encode(), staging_dir(directory, "mirror"))
    except (StorageError, OSError):
        pass
