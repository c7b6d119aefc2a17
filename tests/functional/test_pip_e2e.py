"""Real pip installs from the mirror, served over HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, clean_pip_env, write_config
from support.static_server import StaticServer


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--no-cache-dir", *args],
        env=clean_pip_env(), capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def served_mirror(tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus,
                  serve_static: Callable[[str | Path], StaticServer]) -> StaticServer:
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.stop()  # from here on, only the mirror can answer
    return serve_static(mirror.web)


def test_pip_installs_a_project_and_its_dependency_from_the_mirror(
    tmp_path: Path, served_mirror: StaticServer
) -> None:
    target = tmp_path / "site"
    result = pip("install", "--index-url", served_mirror.url + "/simple/", "--target", str(target), "beta")
    assert result.returncode == 0, result.stderr + result.stdout
    installed = {p.name for p in target.iterdir()}
    assert any(n.startswith("beta-0.5.dist-info") for n in installed)
    assert any(n.startswith("alpha_lib-2.0.dist-info") for n in installed)
    assert "WARNING" not in result.stderr.replace("WARNING: Target directory", "")
    paths = [r.path for r in served_mirror.requests]
    assert any(p.startswith("/packages/") for p in paths)
    # pip used PEP 658 metadata for alpha-lib 2.0 instead of downloading the wheel to resolve
    assert any(p.endswith(".whl.metadata") for p in paths)


def test_pip_download_fetches_the_sdist_and_verifies_its_hash(
    tmp_path: Path, served_mirror: StaticServer
) -> None:
    dest = tmp_path / "dl"
    result = pip("download", "--no-deps", "--no-binary", ":all:", "--index-url",
                 served_mirror.url + "/simple/", "--dest", str(dest), "beta==0.5")
    assert result.returncode == 0, result.stderr + result.stdout
    assert [p.name for p in dest.iterdir()] == ["beta-0.5.tar.gz"]


def test_pip_uses_the_json_pages_when_it_asks_for_them(
    tmp_path: Path, served_mirror: StaticServer
) -> None:
    result = pip("download", "--no-deps", "--index-url", served_mirror.url + "/simple/",
                 "--dest", str(tmp_path / "dl"), "zope.interface_x")
    assert result.returncode == 0, result.stderr + result.stdout
    pages = [r for r in served_mirror.requests if r.path.startswith("/simple/zope-interface-x/")]
    assert pages and all(r.status == 200 for r in pages)
    assert all(r.content_type == "application/vnd.pypi.simple.v1+json" for r in pages)


def test_pip_installs_from_the_html_pages_too(
    tmp_path: Path, upstream: Upstream, synced: MirrorSetup
) -> None:
    # pip reads index.html for a file:// index: our PEP 503 pages, links and hashes, on their own.
    upstream.stop()
    target = tmp_path / "site"
    result = pip("install", "--index-url", (synced.web / "simple").as_uri() + "/",
                 "--target", str(target), "beta")
    assert result.returncode == 0, result.stderr + result.stdout
    assert (target / "alpha_lib").is_dir()


@pytest.mark.slow
def test_pip_installs_from_a_mirror_of_api_1_4_pages_and_finds_nothing_of_a_quarantined_project(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus,
    serve_static: Callable[[str | Path], StaticServer],
) -> None:
    # Provenance links, project-status and api-version 1.4 on our pages, in both forms.
    upstream.add_provenance("Alpha-Lib", "alpha_lib-2.0-py3-none-any.whl")
    upstream.set_status("Alpha-Lib", "archived", "no further releases")
    upstream.set_status("zope.interface_x", "quarantined")
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.stop()
    served = serve_static(mirror.web)
    for index in (served.url + "/simple/", (mirror.web / "simple").as_uri() + "/"):
        target = tmp_path / f"site-{len(index)}"
        result = pip("install", "--index-url", index, "--target", str(target), "beta")
        assert result.returncode == 0, result.stderr + result.stdout
        assert (target / "alpha_lib").is_dir()
        result = pip("download", "--no-deps", "--index-url", index, "--dest", str(tmp_path / "dl"),
                     "zope.interface_x")
        assert result.returncode != 0
        assert "No matching distribution found for zope.interface_x" in result.stderr
