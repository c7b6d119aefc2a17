"""``<directory>/last-run``: how the last ``mirror`` run ended, for ``bandersnatch status``.

One small JSON record, replaced atomically by each run that took the lock:
when it started and ended (UTC), its exit code, what it did, and when the
last complete run (exit 0) ended, carried over from the record before.  A run
killed with SIGKILL writes nothing: the record then still describes the run
before it.  A run that stops on Ctrl-C or SIGTERM records what it did until
then, and the ``todo.journal`` it leaves for the next run to resume
(``journal``): ``status`` tells such a run from one going on now, or killed,
by that journal being still the same file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

# The exit codes and their table are errors' (one table for the CLI and for this record); the run
# reaches them here too.
from ..errors import EXIT_INCOMPLETE as EXIT_INCOMPLETE
from ..errors import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ..errors import exit_code_for as exit_code_for
from ..store.atomic import atomic_write

FILENAME = "last-run"
LAST_MODIFIED = "last-modified"  # the store's key (below web/) of when the last complete run ended


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LastRun:
    started: str  # UTC, ISO 8601 to the second
    ended: str
    exit_code: int
    serial: int | None  # the serial the mirror has caught up to after the run
    synced: int = 0
    removed: int = 0
    files: int = 0  # downloaded by the run
    bytes: int = 0
    failed: int = 0
    stop_reason: str | None = None
    last_success: str | None = None  # when the last run with exit code 0 ended (this one or earlier)
    journal: str | None = None  # the todo.journal an interrupted run left (journal_id), for status

    @property
    def interrupted(self) -> bool:
        return self.exit_code == EXIT_INTERRUPTED


def journal_id(path: Path) -> str | None:
    """Which ``todo.journal`` is on disk now (inode, size, mtime); None when there is none."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def render(run: LastRun) -> bytes:
    return (json.dumps(asdict(run), indent=1) + "\n").encode()


def parse(data: bytes) -> LastRun | None:
    """The record, or None when it is damaged or not one."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    expected = {f.name for f in fields(LastRun)}
    values = {k: v for k, v in doc.items() if k in expected}
    if not all(isinstance(values.get(k), str) for k in ("started", "ended")):
        return None
    if not isinstance(values.get("exit_code"), int):
        return None
    try:
        return LastRun(**values)
    except TypeError:
        return None


def read(directory: Path) -> LastRun | None:
    try:
        return parse((directory / FILENAME).read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None


def write(directory: Path, run: LastRun, staging: Path) -> None:
    atomic_write(directory / FILENAME, render(run), staging)


def read_last_modified(web: Path) -> str | None:
    """``web/last-modified`` (written when a run completes): the last success before ``last-run`` existed."""
    try:
        data = (web / LAST_MODIFIED).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parse_last_modified(data)


def parse_last_modified(data: bytes | None) -> str | None:
    """The stamp in ``last-modified``'s bytes (None: there is none)."""
    if data is None:
        return None
    return data.decode("ascii", errors="replace").strip() or None
