"""Which new files the cooling-off window holds back, and until when.

``decide`` is the pure deciding function: a file's PEP 700 ``upload-time``, the clock and the
window in, a typed verdict out.  ``Window`` applies it for one run with the operator's
exemptions and a clock the caller gives (tests move it instead of sleeping).
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..config.holdback import HoldBackConfig, describe
from ..config.plugins import matches_any, specifiers

logger = logging.getLogger(__name__)

# PEP 700 says ISO 8601; PyPI sends 2024-01-02T03:04:05.678901Z.  Parsed by hand: Python 3.10's
# fromisoformat takes neither the Z nor a fraction of other than 3 or 6 digits.
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                  r"(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)


class Timing(enum.Enum):
    """What the window makes of one file."""

    RIPE = "uploaded before the window"
    HELD = "uploaded within the window"
    UNTIMED = "no usable upload-time: not held back"


@dataclass(frozen=True)
class Verdict:
    timing: Timing
    matures: float | None = None  # Unix time the file leaves the window (HELD only)


def upload_epoch(text: str | None) -> float | None:
    """A PEP 700 ``upload-time`` as Unix time; None when absent or not ISO 8601 (no zone: UTC)."""
    if not text:
        return None
    match = _ISO.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    offset = timedelta()
    if zone and zone.upper() != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError:
        return None
    return moment.timestamp() + (float("0." + fraction) if fraction else 0.0)


def decide(upload_time: str | None, now: float, window: float) -> Verdict:
    """Whether a file uploaded at ``upload_time`` is held at ``now`` by a window of ``window`` seconds.

    A file without a usable upload-time is not held: the window cannot say when it would end.
    """
    uploaded = upload_epoch(upload_time)
    if uploaded is None:
        return Verdict(Timing.UNTIMED)
    matures = uploaded + window
    return Verdict(Timing.HELD, matures) if matures > now else Verdict(Timing.RIPE)


def when(epoch: float) -> str:
    """Unix time as an operator reads it: UTC, to the second."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Window:
    """The cooling-off window of one run: its settings, its exemptions and its clock."""

    def __init__(self, cfg: HoldBackConfig, now: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.now = now
        self._whole = frozenset(p.key for p in cfg.exempt if not p.specifier)
        self._releases: dict[str, list[SpecifierSet]] = specifiers(cfg.exempt)
        self._untimed_said = False
        self._lock = threading.Lock()

    def exempt(self, key: str, version: Version | None) -> bool:
        """``[hold-back] exempt`` names the project, or a specifier the release matches."""
        if key in self._whole:
            return True
        sets = self._releases.get(key)
        if not sets or version is None:
            return False
        return matches_any(version, sets)

    def decide(self, key: str, upload_time: str | None, version: Version | None, now: float) -> Verdict:
        """``decide`` for one file of ``key``, its exemptions applied."""
        if self.exempt(key, version):
            return Verdict(Timing.RIPE)
        return decide(upload_time, now, self.cfg.seconds)

    def reason(self, verdict: Verdict) -> str:
        """What a held file's exclusion says (the dry run and the debug log show it)."""
        assert verdict.matures is not None
        return f"uploaded less than {describe(self.cfg.seconds)} ago; held back until {when(verdict.matures)}"

    def untimed(self, key: str, filename: str) -> None:
        """Say once per run that files without an upload-time are not held back."""
        with self._lock:
            if self._untimed_said:
                return
            self._untimed_said = True
        logger.info("%s: %s has no upload-time (PEP 700) upstream: such files are not held back by "
                    "hold-back (said once per run)", key, filename[:120])
