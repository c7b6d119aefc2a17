"""What one path segment (a store key's component, a file or directory name) may be: pure, below
the stores that confine their paths with it and the formats and settings that name keys."""

from __future__ import annotations

import re

from ..errors import UnsafePath

MAX_SEGMENT_BYTES = 255

# A path separator (either kind) or a control character (NUL included): one search per segment.
_SEPARATOR_OR_CONTROL = re.compile(r"[\x00-\x1f/\\]")


def check_segment(segment: str) -> str:
    """Return ``segment`` when it is a safe single path component, else raise UnsafePath."""
    if segment in ("", ".", ".."):
        raise UnsafePath(f"refusing path component {segment!r}")
    if _SEPARATOR_OR_CONTROL.search(segment):
        raise UnsafePath(f"refusing path component {segment[:100]!r}: separator or control character")
    try:
        encoded = segment.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath(f"refusing path component {segment[:100]!r}: not valid UTF-8") from None
    if len(encoded) > MAX_SEGMENT_BYTES:
        raise UnsafePath(f"refusing path component {segment[:40]!r}...: longer than 255 bytes")
    return segment
