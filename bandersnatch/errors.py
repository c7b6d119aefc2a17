"""The exceptions bandersnatch raises on purpose.

Each carries a message an operator can act on; the CLI prints it as one line
and maps the class to an exit code.  Anything else escaping is a bug.
"""

from __future__ import annotations


def shown(text: str, limit: int = 200) -> str:
    """``text`` from upstream made safe for one log line: escapes for what a terminal would obey.

    Control characters (ESC, C1 such as CSI, line breaks, bidi overrides, lone
    surrogates) become Python-style escapes, and so does a backslash, so an
    escape on the line is always ours.  Printable non-ASCII stays readable.
    Longer texts are cut at ``limit`` characters, with "..." to say so.
    """
    cut = text[:limit]
    if not (cut.isprintable() and "\\" not in cut):
        cut = "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
                      for c in cut)
    return cut + "..." if len(text) > limit else cut


class BandersnatchError(Exception):
    """Base class: an expected failure with an operator-facing message."""


class ConfigError(BandersnatchError):
    """The configuration cannot be used."""

    def __init__(self, path: str, section: str | None, option: str | None, why: str) -> None:
        self.path = path
        self.section = section
        self.option = option
        self.why = why
        where = path
        if section:
            where += f": [{section}]"
        if option:
            where += f" {option}"
        super().__init__(f"{where}: {why}")


class LockHeld(BandersnatchError):
    """Another bandersnatch process holds the mirror's lock."""


class UnsafePath(BandersnatchError):
    """A name or URL from upstream would map outside the mirror, or onto a path it cannot take.

    The second: two URLs need one path as a file and as a directory.  That
    fails the project that wants the path, never the run, unlike StorageError.
    """


class UpstreamError(BandersnatchError):
    """The upstream answered badly (HTTP error, malformed reply, too large)."""


class StalePage(UpstreamError):
    """The upstream served a page older than the serial we need (stale CDN)."""


class HashMismatch(UpstreamError):
    """Downloaded bytes do not match the hash the upstream advertised."""


class StorageError(BandersnatchError):
    """The mirror directory cannot be written (full disk, permissions)."""


class NotFound(UpstreamError):
    """The upstream answered 404."""


class UpstreamUnreachable(UpstreamError):
    """Request after request got no answer at all: the upstream is down or cut off, so the run stops."""


class Cancelled(BandersnatchError):
    """The run was interrupted: a request in flight was abandoned, and no new one is sent."""
