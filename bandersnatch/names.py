"""Project name normalization (PEP 503), in one place."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_.]+")
# PEP 508 / core metadata: ASCII letters and digits, with . _ - inside.
# re.ASCII: without it IGNORECASE lets U+017F and U+212A match [A-Z]; fullmatch: "$" accepts a final "\n".
_VALID = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE | re.ASCII)
MAX_NAME_LENGTH = 200


def normalize(name: str) -> str:
    """PEP 503 normalized form: runs of ``-_.`` become one ``-``, lower case."""
    return _SEPARATORS.sub("-", name).lower()


def is_valid_project_name(name: str) -> bool:
    """True for names PyPI could have registered; False for path tricks and junk."""
    return len(name) <= MAX_NAME_LENGTH and _VALID.fullmatch(name) is not None
