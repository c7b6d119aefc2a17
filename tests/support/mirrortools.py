"""Helpers for tests that run ``bandersnatch mirror`` against the fake upstream.

``assert_mirror_matches`` is the definition of a correct mirror used across the
suite: it reads ``web/`` the way pip does (root index, project pages in both
formats, every link) and compares it with what the upstream currently serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urldefrag

import lxml.html
import pytest

from bandersnatch import cli
from support.fakepypi import Upstream, normalize
from support.todo import read_todo


@dataclass
class MirrorSetup:
    """A mirror directory and the config file pointing it at an upstream."""

    root: Path
    config: Path

    @property
    def web(self) -> Path:
        return self.root / "web"

    def run(self, *args: str) -> int:
        """Run ``bandersnatch mirror`` in-process; returns the exit code."""
        return cli.main(["-c", str(self.config), "mirror", *args])

    def run_subprocess(self, *extra: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``bandersnatch mirror`` as a separate process (for kills and locks)."""
        return subprocess.Popen(
            [sys.executable, "-m", "bandersnatch", "-c", str(self.config), "mirror", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
        )


def write_config(root: Path, upstream_url: str, *, sections: str = "", **options: str) -> MirrorSetup:
    """A config for a mirror under ``root``; ``sections`` is more INI text (filters) after [mirror]."""
    lines = {
        "directory": str(root / "mirror"),
        "master": upstream_url,
        "allow-non-https": "true",
        "download-hosts": "",
        "workers": "3",
        "timeout": "10",
    }
    lines.update({k.replace("_", "-"): v for k, v in options.items()})
    root.mkdir(parents=True, exist_ok=True)
    config = root / "bandersnatch.conf"
    config.write_text("[mirror]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()) + "\n" + sections)
    return MirrorSetup(root / "mirror", config)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page_dir(web: Path, name: str, hash_index: bool = False) -> Path:
    norm = normalize(name)
    return web / "simple" / norm[0] / norm if hash_index else web / "simple" / norm


def anchors_in(html: bytes) -> list[lxml.html.HtmlElement]:
    """Every ``<a>`` of an HTML page, in order (lxml's stubs type ``iter`` as yielding plain elements)."""
    return [cast(lxml.html.HtmlElement, a) for a in lxml.html.fromstring(html).iter("a")]


def html_links(page: Path) -> dict[str, str]:
    """filename -> href of every anchor on one of our HTML pages (each has an href)."""
    return {a.text_content(): a.attrib["href"] for a in anchors_in(page.read_bytes())}


def resolve(page: Path, href: str) -> tuple[Path, str]:
    """The local file an href on ``page`` points to, and the sha256 its fragment names."""
    url, fragment = urldefrag(href)
    return (page.parent / unquote(url)).resolve(), fragment.partition("=")[2]


def check_page_links(page_html: Path) -> list[str]:
    """Problems with one HTML page: links to missing files or files with another hash."""
    problems = []
    for filename, href in html_links(page_html).items():
        target, sha = resolve(page_html, href)
        if not target.is_file():
            problems.append(f"{page_html}: {filename} links a missing file")
        elif sha256_of(target) != sha:
            problems.append(f"{page_html}: {filename} has another sha256 than its link")
    return problems


def assert_mirror_matches(upstream: Upstream, web: Path, hash_index: bool = False) -> None:
    """The mirror serves exactly what upstream serves now, and every link resolves with its hash."""
    current = {normalize(s.name): s for s in upstream.all_current()}
    root = json.loads((web / "simple" / "index.v1_json").read_bytes())
    assert sorted(p["name"] for p in root["projects"]) == sorted(current)
    root_html = {a.text_content() for a in anchors_in((web / "simple" / "index.html").read_bytes())}
    assert root_html == set(current)
    referenced: set[Path] = set()
    for norm, snapshot in current.items():
        directory = page_dir(web, norm, hash_index)
        doc = json.loads((directory / "index.v1_json").read_bytes())
        expected = {f.filename: f for f in snapshot.offered}
        assert {f["filename"] for f in doc["files"]} == set(expected), norm
        for entry in doc["files"]:
            upstream_file = expected[entry["filename"]]
            path = (directory / unquote(entry["url"])).resolve()
            assert sha256_of(path) == entry["hashes"]["sha256"] == upstream_file.sha256
            assert entry["yanked"] == upstream_file.yanked_value
            referenced.add(path)
            if upstream_file.metadata is not None:
                meta = path.with_name(path.name + ".metadata")
                assert sha256_of(meta) == entry["core-metadata"]["sha256"] == upstream_file.metadata_sha256
                referenced.add(meta)
            if "provenance" in entry:  # PEP 740: our copy beside the file, as upstream served it
                provenance = (directory / unquote(entry["provenance"])).resolve()
                assert provenance.read_bytes() == upstream_file.provenance
                referenced.add(provenance)
        assert check_page_links(directory / "index.html") == []
    on_disk = {p.resolve() for p in (web / "packages").rglob("*") if p.is_file()}
    assert on_disk == referenced, f"unreferenced files: {sorted(map(str, on_disk - referenced))[:5]}"


def temp_files(root: Path) -> list[Path]:
    """Files in the staging area: there must be none once a run has ended."""
    staging = root / "tmp"
    return [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []


def clean_pip_env() -> dict[str, str]:
    """An environment in which pip sees no configuration of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


# ---------------------------------------------------------------- fault, crash and hostile tests


def tree_snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[str, int, int]]:
    """Every entry below ``root`` (except ``skip`` and what is below it): kind, size, mtime.

    Compare two snapshots to prove a run wrote nothing outside its directory.
    """
    entries: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None:
            dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in dirnames + filenames:
            path = here / name
            if path == skip:
                continue
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            entries[str(path.relative_to(root))] = (kind, 0 if kind == "dir" else st.st_size,
                                                    0 if kind == "dir" else st.st_mtime_ns)
    return entries


def pending_work(root: Path) -> dict[str, int]:
    """What the mirror still owes: its todo minus the journal (normalized name -> serial)."""
    from bandersnatch.ledger.state import StateFiles

    todo = read_todo(StateFiles(root, root / "tmp" / "probe"))
    return {key: serial for key, (_, serial) in todo.pending.items()} if todo else {}


class _Unparseable(Exception):
    pass


class WebReader:
    """Reads ``web/`` the way pip and uv do and reports what a client would trip over.

    Only what a correct writer can never show counts as a problem: a root index
    naming a project whose page is missing, a page linking a missing file or a
    file with another sha256, a page that does not parse (half-written).  A
    writer legitimately deletes a file after the page stopped linking it and a
    page after the root stopped naming it, so a suspected problem is re-read a
    few times, root (or page) first, and reported only if it stays.
    """

    RECHECKS = 3

    def __init__(self, web: Path, hash_index: bool = False) -> None:
        self.web = web
        self.simple = web / "simple"
        self.hash_index = hash_index
        self._hashes: dict[tuple[str, int, int, int], str] = {}
        self.pages_read = 0
        self.files_checked = 0

    # -------------------------------------------------------- reading

    def sha256(self, path: Path) -> str | None:
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
                if key not in self._hashes:
                    h = hashlib.sha256()
                    while chunk := f.read(1 << 16):
                        h.update(chunk)
                    self._hashes[key] = h.hexdigest()
                self.files_checked += 1
                return self._hashes[key]
        except (FileNotFoundError, NotADirectoryError):
            return None

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def root_names(self) -> dict[str, set[str]] | None:
        """Project directory names each root page links (None: no root index yet)."""
        names: dict[str, set[str]] = {}
        data = self._read(self.simple / "index.v1_json")
        if data is not None:
            try:
                names["index.v1_json"] = {self._dir(p["name"]) for p in json.loads(data)["projects"]}
            except (ValueError, KeyError, TypeError) as exc:
                raise _Unparseable(f"root index.v1_json does not parse: {exc}") from None
        data = self._read(self.simple / "index.html")
        if data is not None:
            if b"</html>" not in data:
                raise _Unparseable("root index.html is incomplete")
            hrefs = [a.get("href") or "" for a in lxml.html.fromstring(data).iter("a")]
            names["index.html"] = {unquote(h.rstrip("/")) for h in hrefs}
        return names or None

    def _dir(self, name: str) -> str:
        """A project's directory under ``simple/``: ``foo`` or, with hash-index, ``f/foo``."""
        key = normalize(name)
        return f"{key[0]}/{key}" if self.hash_index else key

    def _project_dirs(self) -> set[str]:
        """Project directories on disk, as ``_dir`` spells them; directories may vanish meanwhile."""
        found: set[str] = set()
        try:
            tops = [d for d in self.simple.iterdir() if d.is_dir()]
        except FileNotFoundError:
            return found
        if not self.hash_index:
            return {d.name for d in tops}
        for top in tops:
            try:
                found |= {f"{top.name}/{d.name}" for d in top.iterdir() if d.is_dir()}
            except FileNotFoundError:
                continue
        return found

    def links(self, project: str, page: str) -> set[tuple[str, Path, str]] | None:
        """(what, file, sha256) of every link on one page; None when the page does not exist."""
        directory = self.simple / project
        data = self._read(directory / page)
        if data is None:
            return None
        self.pages_read += 1
        found: set[tuple[str, Path, str]] = set()
        if page == "index.v1_json":
            try:
                doc = json.loads(data)
                for entry in doc["files"]:
                    path = (directory / unquote(entry["url"])).resolve()
                    found.add((entry["filename"], path, entry["hashes"]["sha256"]))
                    meta = entry.get("core-metadata")
                    if isinstance(meta, dict):
                        found.add((entry["filename"] + ".metadata", path.with_name(path.name + ".metadata"),
                                   meta["sha256"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise _Unparseable(f"{project}/{page} does not parse: {exc}") from None
            return found
        if b"</html>" not in data:
            raise _Unparseable(f"{project}/{page} is incomplete")
        for anchor in anchors_in(data):
            path, sha = resolve(directory / page, anchor.get("href") or "")
            found.add((anchor.text_content(), path, sha))
            meta = anchor.get("data-core-metadata", "")
            if meta.startswith("sha256="):
                found.add((anchor.text_content() + ".metadata", path.with_name(path.name + ".metadata"),
                           meta.partition("=")[2]))
        return found

    # -------------------------------------------------------- checking

    def _stays(self, bad: Callable[..., bool], *args: object) -> bool:
        return all(bad(*args) for _ in range(self.RECHECKS))

    def sweep(self) -> list[str]:
        """One pass over the whole mirror; the problems found (empty when all is well)."""
        try:
            return self._sweep()
        except _Unparseable as exc:
            return [str(exc)]

    def _sweep(self) -> list[str]:
        problems: list[str] = []
        roots = self.root_names() or {}
        listed = set().union(*roots.values()) if roots else set()
        on_disk = self._project_dirs()
        for project in sorted(listed | on_disk):
            for page in ("index.html", "index.v1_json"):
                links = self.links(project, page)
                if links is None:
                    if project in listed and self._stays(self._root_names_missing, project, page):
                        problems.append(f"a root index names {project} but its {page} is missing")
                    continue
                for what, path, sha in links:
                    if self.sha256(path) == sha:
                        continue
                    if self._stays(self._link_broken, project, page, what, path, sha):
                        state = "missing" if not path.exists() else "of another sha256"
                        problems.append(f"{project}/{page} links {what}, which is {state}")
        return problems

    def _root_names_missing(self, project: str, page: str) -> bool:
        roots = self.root_names() or {}
        return any(project in names for names in roots.values()) and self.links(project, page) is None

    def _link_broken(self, project: str, page: str, what: str, path: Path, sha: str) -> bool:
        links = self.links(project, page)
        return links is not None and (what, path, sha) in links and self.sha256(path) != sha


class MirrorChecker(threading.Thread):
    """A :class:`WebReader` sweeping ``web/`` over and over until :meth:`stop`."""

    def __init__(self, web: Path, pause: float = 0.002, hash_index: bool = False) -> None:
        super().__init__(daemon=True, name="mirror-checker")
        self.reader = WebReader(web, hash_index)
        self.pause = pause
        self.sweeps = 0
        self.problems: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.problems.extend(self.reader.sweep())
            self.sweeps += 1
            self._stop_event.wait(self.pause)

    def stop(self) -> list[str]:
        self._stop_event.set()
        self.join(timeout=60)
        return self.problems


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str, *options: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted at ``mountpoint`` for the block; always unmounted after.

    Skips the test (with the reason) where mounting is not permitted (not root, a container).
    """
    mountpoint.mkdir(parents=True, exist_ok=True)
    opts = ",".join([f"size={size}", *options])
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def remount(mountpoint: Path, *options: str) -> None:
    subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(mountpoint)], check=True)
