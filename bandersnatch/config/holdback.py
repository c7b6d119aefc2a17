"""The cooling-off window: ``[mirror] hold-back`` and ``[hold-back] exempt``.

Malicious uploads are usually taken off PyPI within hours or days, so an operator may choose
to mirror a file only once it has been upstream for a while (its PEP 700 ``upload-time``).
Parsing is pure: text in, a frozen ``HoldBackConfig`` out.  What is held is decided in
``selection.holdback``; the ``HoldBack`` class below is the name an exclusion carries, so a
held file is reported like any other file a filter leaves out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar

from ..errors import ConfigError
from .filters import lines, parse_pin
from .plugins import FilterPlugin, Option, Pin
from .values import MIRROR

HOLD_BACK = "hold-back"  # the [mirror] option, and the section of its exemptions
SCHEMA: dict[str, tuple[str, ...]] = {HOLD_BACK: ("exempt",)}

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$", re.IGNORECASE)
# Longer than any sensible window: a typo such as 72d for 72h would hold back nearly everything new.
MAX_WINDOW = 365 * 86400.0


class HoldBack(FilterPlugin):
    """Not a filter an operator enables: the name a held file's ``Exclusion`` carries.

    It is configured by ``[mirror] hold-back`` (never by ``[plugins] enabled``), so it is not in
    the filter registry; its options are fingerprinted by ``HoldBackConfig.fingerprint``.
    """

    name = "hold_back"
    reads: ClassVar[tuple[Option, ...]] = ((MIRROR, HOLD_BACK), (HOLD_BACK, "exempt"))


@dataclass(frozen=True)
class HoldBackConfig:
    """How long a new file waits before the mirror takes it, and who skips the wait."""

    seconds: float = 0.0  # 0: off (the default)
    exempt: tuple[Pin, ...] = ()  # [hold-back] exempt: projects, or releases by specifier

    @property
    def active(self) -> bool:
        return self.seconds > 0

    def fingerprint(self) -> str | None:
        """What decides which files are held; None when off, so a mirror without it keeps its record."""
        if not self.active:
            return None
        exempt = ",".join(sorted(f"{p.key}{p.specifier}" for p in self.exempt))
        return hashlib.sha256(f"{self.seconds:g}\n{exempt}".encode()).hexdigest()[:16]


def parse_window(raw: str | None, where: str) -> float:
    """``72h``, ``3d``, ``90m``, ``3600s`` or plain seconds; absent or 0: off."""
    if raw is None or raw == "":
        return 0.0
    match = _DURATION.match(raw.strip())
    if match is None:
        raise ConfigError(where, MIRROR, HOLD_BACK, f"{raw!r} is not a duration such as 72h, 3d, 90m or "
                          "259200 (seconds); 0 turns the window off")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds > MAX_WINDOW:
        raise ConfigError(where, MIRROR, HOLD_BACK, f"{raw!r} is more than a year: no new file would be "
                          "mirrored for that long; did you mean hours (h) rather than days (d)?")
    return seconds


def parse(raw_window: str | None, section: dict[str, str] | None, where: str) -> HoldBackConfig:
    """The window from ``[mirror] hold-back``, the exemptions from the ``[hold-back]`` section."""
    seconds = parse_window(raw_window, where)
    exempt_lines = lines((section or {}).get("exempt"))
    if exempt_lines and not seconds:
        raise ConfigError(where, HOLD_BACK, "exempt", "set, but [mirror] hold-back is off, so it would be "
                          "ignored; set hold-back (such as 72h) or delete the option")
    exempt = tuple(parse_pin(line, where, HOLD_BACK, "exempt") for line in exempt_lines)
    return HoldBackConfig(seconds, exempt)


def describe(seconds: float) -> str:
    """A window as an operator wrote it: ``72h``, ``3d``, ``90m``, ``45s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
