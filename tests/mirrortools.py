"""Helpers for tests that run ``bandersnatch mirror`` against the fake upstream.

``assert_mirror_matches`` is the definition of a correct mirror used across the
suite: it reads ``web/`` the way pip does (root index, project pages in both
formats, every link) and compares it with what the upstream currently serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag

import lxml.html
from fakepypi import Upstream, normalize

from bandersnatch import cli


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

    def run_subprocess(self, *extra: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start ``bandersnatch mirror`` as a separate process (for kills and locks)."""
        return subprocess.Popen(
            [sys.executable, "-m", "bandersnatch", "-c", str(self.config), "mirror", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,  # type: ignore[call-overload]
        )


def write_config(root: Path, upstream_url: str, **options: str) -> MirrorSetup:
    lines = {
        "directory": str(root / "mirror"),
        "master": upstream_url,
        "allow-non-https": "true",
        "download-hosts": "",
        "workers": "3",
        "timeout": "10",
    }
    lines.update({k.replace("_", "-"): v for k, v in options.items()})
    config = root / "bandersnatch.conf"
    config.write_text("[mirror]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items()))
    return MirrorSetup(root / "mirror", config)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page_dir(web: Path, name: str, hash_index: bool = False) -> Path:
    norm = normalize(name)
    return web / "simple" / norm[0] / norm if hash_index else web / "simple" / norm


def html_links(page: Path) -> dict[str, str]:
    """filename -> href of every anchor on one of our HTML pages."""
    doc = lxml.html.fromstring(page.read_bytes())
    return {a.text_content(): a.get("href") for a in doc.iter("a")}


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
    root_html = {a.text_content() for a in lxml.html.fromstring(
        (web / "simple" / "index.html").read_bytes()).iter("a")}
    assert root_html == set(current)
    referenced: set[Path] = set()
    for norm, snapshot in current.items():
        directory = page_dir(web, norm, hash_index)
        doc = json.loads((directory / "index.v1_json").read_bytes())
        expected = {f.filename: f for f in snapshot.files or ()}
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
