"""A live status line for a terminal: projects done/total, files, bytes, rate, ETA.

Under cron (no TTY) there is no status line; instead a long run logs the same
text as an INFO line every few minutes, so a multi-day sync shows how far it
is and when it should end.  On a
terminal, log lines and the status line share stderr: ``StatusStream`` erases
the status before each log line and draws it again after, so neither garbles
the other.  Hand-written (a few dozen lines) rather than a new runtime
dependency for one line of text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TextIO

logger = logging.getLogger(__name__)

LOG_EVERY = 300.0  # seconds between progress lines when there is no terminal

ERASE = "\r\x1b[K"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def status_text(done: int, total: int, files: int, nbytes: int, elapsed: float, unit: str = "projects",
                resumed: int = 0) -> str:
    """The status line for the given counters (pure, for tests).

    ``resumed`` of ``done`` were done by an earlier, interrupted run: the ETA uses this run's pace.
    """
    rate = nbytes / elapsed if elapsed > 0 else 0.0
    counted = f"{human_bytes(nbytes)}" if unit == "files" else f"{files} files, {human_bytes(nbytes)}"
    text = f"{done}/{total} {unit}, {counted}, {human_bytes(rate)}/s"
    if resumed < done < total and elapsed > 0:
        text += f", ETA {human_duration(elapsed / (done - resumed) * (total - done))}"
    return text


class StatusStream:
    """Wraps a terminal stream: log text goes above, the status line stays at the bottom."""

    def __init__(self, stream: TextIO, min_interval: float = 0.2) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self.status = ""
        self._drawn = 0.0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.stream.write(ERASE + text if self.status else text)
            if self.status and text.endswith("\n"):
                self.stream.write(self.status)
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def show(self, status: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.min_interval:
            return
        with self._lock:
            self.status = status
            self._drawn = now
            self.stream.write(ERASE + status)
            self.stream.flush()

    def clear(self) -> None:
        with self._lock:
            if self.status:
                self.stream.write(ERASE)
                self.stream.flush()
            self.status = ""


class Progress:
    """Counters of one run: shown on a StatusStream when there is one, else logged now and then."""

    def __init__(self, stream: StatusStream | None, log_every: float = LOG_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.log_every = log_every
        self.clock = clock
        self.total = self.done = self.files = self.bytes = 0
        self.started = self._logged = clock()
        self.unit = "projects"
        self._resumed = 0  # done before this run (a resumed verify): not part of the rate

    def start(self, total: int, done: int = 0, unit: str = "projects") -> None:
        """Count ``total`` ``unit``, ``done`` of which an earlier, interrupted run already did."""
        self.total, self.unit = total, unit
        self.started = self._logged = self.clock()
        self.done = self._resumed = done
        self.files = self.bytes = 0

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.done += 1
        self.files += files
        self.bytes += nbytes
        now = self.clock()
        if self.stream is not None:
            self.stream.show(self._text(now), force=self.done == self.total)
        elif now - self._logged >= self.log_every and self.done < self.total:
            self._logged = now
            logger.info("Progress: %s", self._text(now))

    def _text(self, now: float) -> str:
        return status_text(self.done, self.total, self.files, self.bytes, now - self.started, self.unit,
                           self._resumed)

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.clear()
