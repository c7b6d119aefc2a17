"""The exceptions bandersnatch raises on purpose.

Each carries a message an operator can act on; the CLI prints it as one line
and gives the exit code the class carries (``exit_code_for``, the one table
read by the CLI and by ``last-run``).  Anything else escaping is a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

_T = TypeVar("_T")

# The exit codes of the CLI; ``last-run`` records the same ones for the same outcomes.
EXIT_OK = 0
EXIT_INCOMPLETE = 1  # run again to finish (also a bug's traceback: Python exits 1)
EXIT_CONFIG = 2  # running again changes nothing until the operator changes something
EXIT_LOCKED = 3  # another run holds the lock: expected under cron, not an error
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM, progress saved


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

    exit_code: ClassVar[int] = EXIT_INCOMPLETE  # a subclass that needs the operator says so


def exit_code_for(exc: BaseException) -> int:
    """The exit code of a run that ended with ``exc``: the CLI's and the one ``last-run`` records."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BandersnatchError):
        return exc.exit_code
    return EXIT_INCOMPLETE  # a bug: the CLI shows the traceback


class ConfigError(BandersnatchError):
    """The configuration cannot be used."""

    exit_code = EXIT_CONFIG

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


class ConfigErrors(ConfigError):
    """Several problems in one configuration file, all reported by one run.

    Each problem keeps its own file, section and option; the message lists
    them one per line after a count, so the operator fixes them all at once.
    """

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = tuple(problems)
        listing = "".join(f"\n  {problem}" for problem in self.problems)
        path = problems[0].path if problems else ""
        super().__init__(path, None, None, f"{len(self.problems)} problems:{listing}")


class Problems:
    """The ConfigErrors found so far in one file; ``take`` runs one check and keeps its error."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        """Note ``error``; an option already noted is not noted again (its value was dropped)."""
        for each in error.problems if isinstance(error, ConfigErrors) else (error,):
            where = (each.path, each.section, each.option)
            if each.option is None or not any((e.path, e.section, e.option) == where for e in self.found):
                self.found.append(each)

    def take(self, check: Callable[..., _T], *args: Any, fallback: _T) -> _T:
        """``check(*args)``, or ``fallback`` once its ConfigError is noted (the value is never used)."""
        try:
            return check(*args)
        except ConfigError as exc:
            self.add(exc)
            return fallback

    def raise_any(self) -> None:
        """Raise what was found: one problem as itself, several as one ConfigErrors."""
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise ConfigErrors(self.found)


class LockHeld(BandersnatchError):
    """Another bandersnatch process holds the mirror's lock."""

    exit_code = EXIT_LOCKED


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


class LinkInMirror(StorageError):
    """A symbolic link below ``web/``: nothing follows or deletes it; the operator must (exit 2)."""

    exit_code = EXIT_CONFIG


class RemovalsHeldBack(BandersnatchError):
    """Deleting this would take the run past the removal limits: held back, still owed (see ``gate``)."""


class StoreRefused(StorageError):
    """The object store refused the credentials, or has no such bucket: the configuration must change."""

    exit_code = EXIT_CONFIG


class StoreUnreachable(StorageError):
    """The object store gave no answer (after retries): every publish of the run fails alike."""


class NotFound(UpstreamError):
    """The upstream answered 404."""


class UpstreamUnreachable(UpstreamError):
    """Request after request got no answer at all: the upstream is down or cut off, so the run stops."""


class NoAnswer(UpstreamError):
    """No try of one request got any answer (refused, DNS, timeouts): the host is out of reach for now,
    so asking it something else (another endpoint, another protocol) would only wait as long again."""


class Cancelled(BandersnatchError):
    """The run was interrupted: a request in flight was abandoned, and no new one is sent."""


class NoXmlRpc(UpstreamError):
    """The master answered an XML-RPC call as a server without XML-RPC does (403, 404, a fault, HTML)."""
