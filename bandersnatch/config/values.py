"""The value parsers every part of the configuration shares (booleans, sizes, the root URL), below
settings.py, compat.py and filters.py so that each of them imports these and none imports another."""

from __future__ import annotations

import configparser
import re
import urllib.parse

from ..errors import ConfigError

MIRROR = "mirror"

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^(\d+)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)


def parse_bool(raw: str | None, default: bool, where: str, section: str, option: str) -> bool:
    """configparser's boolean words (yes/no, true/false, on/off, 1/0), any case."""
    if raw is None:
        return default
    try:
        return configparser.ConfigParser.BOOLEAN_STATES[raw.lower()]
    except KeyError:
        raise ConfigError(
            where, section, option, f"{raw!r} is not a boolean; use true or false (or yes/no, on/off, 1/0)"
        ) from None


def parse_root_uri(raw: str | None, where: str) -> str | None:
    """Where clients reach the mirror's web/ (bandersnatch's root_uri), ending with a slash; None: unset."""
    if raw is None or raw == "":
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in raw):
        raise ConfigError(where, MIRROR, "root_uri", f"{raw!r} is not an http(s) URL such as "
                          "https://pypi-mirror.example.org/")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(where, MIRROR, "root_uri", f"{raw!r} must be a plain base URL: no user:password@, "
                          "query string or fragment")
    return raw.rstrip("/") + "/"


def size_bytes(raw: str, *, terabytes: bool = True) -> int | None:
    """A byte count such as ``67108864``, ``512K``, ``64M``, ``1G`` or ``1T`` (binary units, an
    optional ``B``/``iB``); None when ``raw`` is not one or is 0 (each option says why in its own words).

    ``terabytes=False`` refuses ``T``: no page or file is that large, so there it is a typo, while
    bandersnatch 8's ``max_package_size`` (a whole project) took it.
    """
    match = _SIZE.match(raw)
    if match is None or (not terabytes and match.group(2).lower() == "t"):
        return None
    value = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return value if value > 0 else None


def has_space_or_control(raw: str) -> bool:
    """True when ``raw`` holds whitespace or a control character: never part of a URL we accept."""
    return any(c.isspace() or ord(c) < 32 for c in raw)


def http_url_fault(parts: urllib.parse.SplitResult, scheme_why: str) -> str | None:
    """The first check every http(s) URL option makes that ``parts`` fails, said as the end of a
    message (``scheme_why`` for a scheme other than http or https); None: it passes them all."""
    if parts.scheme.lower() not in ("http", "https"):
        return scheme_why
    if not parts.hostname:
        return "has no host name"
    try:
        parts.port  # noqa: B018 - urllib only validates the port when it is read
    except ValueError:
        return "has an invalid port"
    return None
