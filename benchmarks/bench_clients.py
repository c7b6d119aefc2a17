"""The two mirror clients ``bench_mirror.py`` compares, run as measured child processes.

- ours: ``python -m bandersnatch`` from this checkout (``PYTHONPATH`` = repo root);
- the peer: ``bandersnatch==8.2.0`` from PyPI, in a throw-away venv built with
  Python >= 3.12 and an isolated pip (no machine pip configuration, PyPI only).

Each run's wall time, user+sys CPU and peak RSS come from ``os.wait4`` on the
child, so they cover exactly that process.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import filelock

REPO = Path(__file__).resolve().parent.parent
PEER_VERSION = "8.2.0"
PEER_MIN_PYTHON = (3, 12)
DEFAULT_PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
_READY_MARKER = ".bench-ready"
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class PeerUnavailable(Exception):
    """bandersnatch 8.2.0 cannot be installed or run here; the message says why."""


@dataclass
class ChildResult:
    """One measured process run; ``started``/``ended`` are time.monotonic() values."""

    exit_code: int
    wall: float
    cpu_user: float
    cpu_sys: float
    maxrss_mb: float
    log: Path
    timed_out: bool
    started: float
    ended: float

    @property
    def cpu(self) -> float:
        return self.cpu_user + self.cpu_sys


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a client: no proxies (loopback only), no machine pip settings."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("PIP_") and k.lower() not in _PROXY_VARS and k != "PYTHONPATH"
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["LC_ALL"] = env.get("LC_ALL") or "C.UTF-8"
    env.update(extra or {})
    return env


class Spawner:
    """The small launcher process (``bench_spawn.py``) that starts and measures every client.

    Start it before building a corpus: a child's peak RSS can never read
    lower than its launcher's, and this one stays at a few MiB.
    """

    def __init__(self, python: str = sys.executable) -> None:
        script = Path(__file__).resolve().parent / "bench_spawn.py"
        self.proc = subprocess.Popen([python, "-I", "-S", str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        json.loads(self._readline())  # ready
        self.floor_mb = self._floor()

    def _floor(self) -> float:
        """Peak RSS reported for a process that uses almost none: what any child reads at least."""
        true = shutil.which("true") or "/bin/true"
        log = Path(os.devnull)
        return self.run([true], env={}, log=log, timeout=30, cwd=Path("/")).maxrss_mb

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark's launcher process (bench_spawn.py) died")
        return line

    def run(self, cmd: list[str], *, env: dict[str, str], log: Path, timeout: float,
            cwd: Path = REPO) -> ChildResult:
        """Run ``cmd`` to completion (SIGTERM, then SIGKILL, after ``timeout``) and measure it."""
        assert self.proc.stdin is not None
        job = {"cmd": cmd, "env": env, "cwd": str(cwd), "log": str(log), "timeout": timeout}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        done = json.loads(self._readline())
        return ChildResult(
            exit_code=done["exit_code"], wall=done["ended"] - done["started"], cpu_user=done["user"],
            cpu_sys=done["sys"], maxrss_mb=done["maxrss_kb"] / 1024, log=log, timed_out=done["timed_out"],
            started=done["started"], ended=done["ended"],
        )

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ------------------------------------------------------------------ clients


@dataclass
class Client:
    """How to configure and start one mirror client."""

    key: str  # "ours" or "peer"
    label: str
    program: list[str]
    extra_env: dict[str, str]

    def write_config(self, root: Path, url: str, workers: int, timeout: float) -> Path:
        """A config file for a mirror in ``root/mirror``; returns its path."""
        lines = _OURS_OPTIONS if self.key == "ours" else _PEER_OPTIONS
        values = {"directory": str(root / "mirror"), "master": url, "workers": str(workers),
                  "timeout": f"{timeout:g}"}
        config = root / "bandersnatch.conf"
        config.write_text("[mirror]\n" + "".join(f"{line.format(**values)}\n" for line in lines))
        return config

    def command(self, config: Path) -> list[str]:
        return [*self.program, "-c", str(config), "mirror"]

    def run(self, spawner: Spawner, config: Path, log: Path, timeout: float) -> ChildResult:
        return spawner.run(self.command(config), env=child_env(self.extra_env), log=log, timeout=timeout)


_COMMON = (
    "directory = {directory}",
    "master = {master}",
    "allow-non-https = true",
    "workers = {workers}",
    "timeout = {timeout}",
    "stop-on-error = false",
    "hash-index = false",
)
_OURS_OPTIONS = (*_COMMON, "download-hosts =", "delete-packages = true")
# bandersnatch 8.x: a plain-http master needs allow-non-https = true (else "Master URL ... is
# not https scheme"); json = false skips web/json; core-metadata = true fetches <file url>.metadata
# for each file whose /pypi/<p>/json entry has "core-metadata": {"sha256": ...}, as the fake's has.
_PEER_OPTIONS = (
    *_COMMON, "storage-backend = filesystem", "json = false", "release-files = true",
    "core-metadata = true", "simple-format = ALL", "global-timeout = 3600",
)


def our_client(python: str) -> Client:
    return Client("ours", "ours", [python, "-m", "bandersnatch"], {"PYTHONPATH": str(REPO)})


def peer_client(venv: Path) -> Client:
    return Client("peer", f"bandersnatch {PEER_VERSION}", [str(venv / "bin" / "bandersnatch")], {})


# ------------------------------------------------------------------ the peer's venv


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=20, env=child_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def python_candidates() -> list[str]:
    """Interpreters that might be >= 3.12: pyenv's real binaries first, then PATH."""
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3.*")), reverse=True)
    found = [p for p in found if Path(p).name.count(".") == 1 and not p.endswith("-config")]
    for name in ("python3.14", "python3.13", "python3.12", "python3"):
        path = shutil.which(name)
        if path:
            found.append(path)
    return found


def peer_version(venv: Path) -> str | None:
    """What ``bandersnatch --version`` of that venv prints ("8.2.0"), or None if it does not run."""
    try:
        out = subprocess.run([str(venv / "bin" / "bandersnatch"), "--version"], capture_output=True,
                             text=True, timeout=60, env=child_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = out.stdout.split()
    return words[-1] if out.returncode == 0 and words else None


def find_peer_python(explicit: str | None) -> str:
    """A Python >= 3.12 for the peer, or PeerUnavailable naming what was tried."""
    tried = [explicit] if explicit else python_candidates()
    for python in tried:
        version = _version_of(python)
        if version is not None and version >= PEER_MIN_PYTHON:
            return python
    raise PeerUnavailable(
        f"bandersnatch {PEER_VERSION} needs Python >= 3.12 and none was found (tried: "
        f"{', '.join(tried) or 'nothing'}); pass --peer-python /path/to/python3.12"
    )


def ensure_peer_venv(venv: Path, python_hint: str | None, log: Path) -> Path:
    """The venv with bandersnatch 8.2.0: reused while it runs and says so, else built afresh.

    A lock file beside it keeps two benchmark runs from rebuilding it under each other.
    """
    venv.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(venv.parent / f"{venv.name}.lock"), timeout=1800):
        if (venv / _READY_MARKER).is_file() and peer_version(venv) == PEER_VERSION:
            return venv
        return _build_peer_venv(venv, python_hint, log)


def _build_peer_venv(venv: Path, python_hint: str | None, log: Path) -> Path:
    python = find_peer_python(python_hint)
    shutil.rmtree(venv, ignore_errors=True)
    steps = (
        [python, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", "--isolated",
         "--index-url", "https://pypi.org/simple", f"bandersnatch=={PEER_VERSION}"],
    )
    with log.open("ab") as out:
        for step in steps:
            out.write(f"\n$ {' '.join(step)}\n".encode())
            out.flush()
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, env=child_env(), timeout=900)
            if done.returncode != 0:
                command = " ".join(step[:4])
                raise PeerUnavailable(f"'{command} ...' failed (exit {done.returncode}):\n{tail(log)}")
    if peer_version(venv) != PEER_VERSION:
        raise PeerUnavailable(f"{venv}/bin/bandersnatch --version does not say {PEER_VERSION}")
    (venv / _READY_MARKER).write_text(f"bandersnatch=={PEER_VERSION} with {python}\n")
    return venv


# ------------------------------------------------------------------ mirror checks and seeding


@dataclass
class MirrorCheck:
    """How a mirror's web/ differs from what the upstream serves now."""

    missing_files: int
    extra_files: int
    missing_pages: int
    extra_pages: int
    metadata: MetadataCheck | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing_files or self.extra_files or self.missing_pages or self.extra_pages)

    def describe(self) -> str:
        if self.ok:
            return "yes"
        parts = [f"{n} {what}" for n, what in (
            (self.missing_files, "files missing"), (self.extra_files, "stale files"),
            (self.missing_pages, "pages missing"), (self.extra_pages, "stale pages")) if n]
        return "NO: " + ", ".join(parts)


@dataclass
class MetadataCheck:
    """The PEP 658 ``.metadata`` files on disk against those the upstream advertises now, by sha256."""

    on_disk: int
    missing: int
    extra: int
    wrong: int  # on disk and advertised, but with other bytes

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.wrong)

    def describe(self) -> str:
        if self.ok:
            return "yes"
        parts = [f"{n} {what}" for n, what in (
            (self.missing, "missing"), (self.extra, "stale"), (self.wrong, "wrong bytes")) if n]
        return "NO: " + ", ".join(parts)


def files_on_disk(packages: Path) -> set[str]:
    """Release files under web/packages as paths relative to it (PEP 658 .metadata left out)."""
    found: set[str] = set()
    for folder, _, names in os.walk(packages):
        rel = os.path.relpath(folder, packages)
        found.update(os.path.normpath(os.path.join(rel, n)) for n in names if not n.endswith(".metadata"))
    return found


def pages_on_disk(simple: Path) -> set[str]:
    """Project directories under web/simple that hold an index.html."""
    if not simple.is_dir():
        return set()
    with os.scandir(simple) as entries:
        dirs = [e.name for e in entries if e.is_dir()]
    return {d for d in dirs if os.path.exists(os.path.join(simple, d, "index.html"))}


def metadata_on_disk(packages: Path) -> set[str]:
    """PEP 658 ``.metadata`` files under web/packages, as paths relative to it."""
    found: set[str] = set()
    for folder, _, names in os.walk(packages):
        rel = os.path.relpath(folder, packages)
        found.update(os.path.normpath(os.path.join(rel, n)) for n in names if n.endswith(".metadata"))
    return found


def check_metadata(expected: dict[str, str], packages: Path) -> MetadataCheck:
    """``expected`` maps each advertised ``.metadata`` path (relative to web/packages) to its sha256."""
    on_disk = metadata_on_disk(packages)
    wrong = 0
    for rel in on_disk & expected.keys():
        wrong += hashlib.sha256((packages / rel).read_bytes()).hexdigest() != expected[rel]
    return MetadataCheck(len(on_disk), len(expected.keys() - on_disk), len(on_disk - expected.keys()), wrong)


def check_mirror(expected_files: set[str], expected_pages: set[str], web: Path,
                 expected_metadata: dict[str, str] | None = None) -> MirrorCheck:
    """Compare web/ with the upstream's current files and projects (and ``.metadata`` files, if given)."""
    files = files_on_disk(web / "packages")
    pages = pages_on_disk(web / "simple")
    metadata = check_metadata(expected_metadata, web / "packages") if expected_metadata is not None else None
    return MirrorCheck(len(expected_files - files), len(files - expected_files),
                       len(expected_pages - pages), len(pages - expected_pages), metadata)


def seed_peer_mirror(ours: Path, peer: Path, serial: int) -> float:
    """Give the peer the state a finished 8.x full sync to ``serial`` would leave; returns seconds.

    ``status`` and ``generation`` as 8.x writes them, a ``web/simple/<project>/``
    directory per project (8.x rebuilds its root index by listing them) with
    our ``index.html`` in it, and ``web/packages`` hard-linked from our mirror
    (same layout; 8.x checks a file by size and sha256 before downloading it
    again, and replaces files by rename, so the links never change our copy).
    """
    started = time.perf_counter()
    simple = peer / "web" / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    with os.scandir(ours / "web" / "simple") as entries:
        for entry in entries:
            if entry.is_dir():
                os.mkdir(simple / entry.name)
                # 8.x replaces pages by rename, so sharing the inode with our mirror is safe.
                os.link(os.path.join(entry.path, "index.html"), simple / entry.name / "index.html")
    source = ours / "web" / "packages"
    for folder, _, names in os.walk(source):
        target = peer / "web" / "packages" / os.path.relpath(folder, source)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.link(os.path.join(folder, name), target / name)
    (peer / "generation").write_text("5")
    (peer / "status").write_text(str(serial))
    return time.perf_counter() - started
