"""Failures of update-stats that an operator has to act on."""

from __future__ import annotations

from ..errors import EXIT_CONFIG, BandersnatchError


class MirrorMissing(BandersnatchError):
    """The mirror directory does not exist, so there is nothing to count for."""

    exit_code = EXIT_CONFIG


class StatsStateError(BandersnatchError):
    """The statistics state or an existing day file cannot be used safely.

    Guessing here would count requests twice or drop counts already made, so
    the run stops and the message says what to move aside.
    """
