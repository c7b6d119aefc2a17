"""The value parsers every part of the configuration shares (booleans, sizes, the root URL), below
settings.py, compat.py and filters.py so that each of them imports these and none imports another."""

from __future__ import annotations

import configparser
import enum
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


class ReleaseFiles(str, enum.Enum):
    """``[mirror] release-files``: which distribution files ``mirror`` keeps (a str: reads as the value)."""

    TRUE = "true"  # every file its pages link, downloaded and verified
    FALSE = "false"  # bandersnatch 8's index-only mirror: pages link upstream's files, nothing is kept
    ON_DEMAND = "on-demand"  # pages link our /packages/; the web server fetches a file when first asked

    def __str__(self) -> str:
        return self.value

    @property
    def downloads(self) -> bool:
        """``mirror`` downloads the distribution files its pages link."""
        return self is ReleaseFiles.TRUE


def parse_release_files(raw: str | None, where: str) -> ReleaseFiles:
    """``release-files``: a boolean (bandersnatch 8's) or ``on-demand``."""
    if raw is not None and raw.strip().lower() == ReleaseFiles.ON_DEMAND.value:
        return ReleaseFiles.ON_DEMAND
    try:
        kept = parse_bool(raw, True, where, MIRROR, "release-files")
    except ConfigError:
        raise ConfigError(where, MIRROR, "release-files",
                          f"{raw!r} is not true, false or on-demand") from None
    return ReleaseFiles.TRUE if kept else ReleaseFiles.FALSE


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
