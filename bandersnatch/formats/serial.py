"""The bound of a PyPI serial, shared by the upstream parsers that read serials and the ledger
that keeps them (it is a fact of PyPI's data, not of the XML-RPC parser that used to hold it)."""

from __future__ import annotations

from typing import TypeGuard

# PyPI's serials travel as XML-RPC <int>, which is 32 bits signed.  A larger one could never
# be sent back (changelog_since_serial), so it is refused on the way in and, found in the
# mirror's own files, treated as damage.  The one bound for every serial bandersnatch keeps.
MAX_SERIAL = 2**31 - 1


def is_serial(value: object) -> TypeGuard[int]:
    """True for an integer (not a boolean) from 0 to ``MAX_SERIAL``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SERIAL
