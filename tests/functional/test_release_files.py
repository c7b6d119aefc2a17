"""``release-files = false`` (pages link upstream's files) and ``on-demand`` (README's nginx block
fetches a file from upstream the first time it is asked and keeps it), against the fake PyPI."""

from __future__ import annotations

import bz2
import functools
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, clean_pip_env, page_dir, write_config
from support.nginx_server import nginx_binary, on_demand_site_config, run_nginx_site
from test_nginx import clean_uv_env, uv_binary

from bandersnatch import cli

needs_nginx = pytest.mark.skipif(nginx_binary() is None,
                                 reason="nginx is not installed (.ci/run installs it)")


def file_requests(upstream: Upstream) -> list[str]:
    """Paths of the distribution files (and .metadata) upstream was asked for, in order."""
    return [r.path for r in upstream.requests if r.path.startswith("/packages/")]


def kept(mirror: MirrorSetup) -> set[str]:
    return {p.name for p in (mirror.web / "packages").rglob("*") if p.is_file()}


def settled(mirror: MirrorSetup, name: str) -> Path:
    """The kept copy of ``name``: nginx renames it into place as the answer ends, maybe after the client
    has read the last byte, so it is waited for a moment."""
    deadline = time.monotonic() + 10
    while not (found := list((mirror.web / "packages").rglob(name))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, f"nginx kept no {name}"
    return found[0]


def verify(mirror: MirrorSetup, *args: str) -> int:
    return cli.main(["-c", str(mirror.config), "verify", *args])


def test_index_only_pages_link_upstream_s_files_keep_none_and_refuse_a_switch(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus,
        caplog: pytest.LogCaptureFixture) -> None:
    mirror = write_config(tmp_path, upstream.url, release_files="false")
    assert mirror.run() == 0
    doc = json.loads((page_dir(mirror.web, "beta") / "index.v1_json").read_bytes())
    assert {f["filename"]: f["url"] for f in doc["files"]} == {
        f.filename: f.url for f in sample_corpus.files.values() if f.project == "beta"}
    assert f'href="{sample_corpus.files["beta-0.5.tar.gz"].url}#sha256=' in (
        page_dir(mirror.web, "beta") / "index.html").read_text()
    assert kept(mirror) == set() and file_requests(upstream) == []
    assert verify(mirror) == 0  # the pages are the mirror: nothing linked is missing
    assert (mirror.root / "release-files").read_text() == "false\n"
    mirror.config.write_text(mirror.config.read_text().replace("release-files = false",
                                                               "release-files = on-demand"))
    assert mirror.run() == 2
    assert f"delete {mirror.web / 'simple'}" in caplog.text and "release-files = false again" in caplog.text


@pytest.mark.parametrize("mode", ["on-demand", "false"])
def test_with_dependencies_the_closure_is_read_from_metadata_and_no_file_is_downloaded(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, mode: str) -> None:
    upstream.add_wheel("gamma", "1.0", requires=["alpha-lib>=2"], with_metadata=True)
    mirror = write_config(tmp_path, upstream.url, release_files=mode,
                          sections="[plugins]\nenabled = allowlist_project\n"
                                   "[allowlist]\npackages =\n    gamma\nwith-dependencies = true\n")
    assert mirror.run() == 0
    assert page_dir(mirror.web, "alpha-lib").is_dir() and not page_dir(mirror.web, "beta").exists()
    assert file_requests(upstream) and all(p.endswith(".metadata") for p in file_requests(upstream))
    assert kept(mirror) == set()


@needs_nginx
def test_on_demand_behind_nginx_fetches_a_file_once_keeps_it_and_verify_checks_what_it_keeps(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    mirror = write_config(tmp_path, upstream.url, release_files="on-demand")
    assert mirror.run() == 0
    assert kept(mirror) == set() and file_requests(upstream) == []
    assert verify(mirror) == 0  # files nginx has not fetched yet are not missing
    site = functools.partial(on_demand_site_config, mirror.web, upstream=upstream.url,
                             temp=mirror.root / "tmp" / "nginx-fetch")
    with run_nginx_site(site, tmp_path / "nginx") as nginx:
        index = f"{nginx.url}/simple/"

        def pip(*args: str) -> None:
            result = subprocess.run([sys.executable, "-m", "pip", "--isolated", "--no-cache-dir", *args,
                                     "--index-url", index], env=clean_pip_env(), capture_output=True,
                                    text=True, timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr

        pip("download", "--no-deps", "--dest", str(tmp_path / "pip"), "beta==0.5", "--only-binary", ":all:")
        beta = "/packages/" + sample_corpus.files["beta-0.5-py3-none-any.whl"].url.split("/packages/")[1]
        assert file_requests(upstream) == [beta]  # the first request fetched it from upstream
        wheel = settled(mirror, "beta-0.5-py3-none-any.whl")
        assert kept(mirror) == {wheel.name}
        assert (tmp_path / "pip" / wheel.name).read_bytes() == wheel.read_bytes()
        uv = uv_binary()
        assert uv is not None, "uv is not installed (requirements-test.txt has it)"
        result = subprocess.run(
            [uv, "pip", "install", "--python", sys.executable, "--target", str(tmp_path / "uv-site"),
             "--index-url", index, "beta"],
            env=clean_uv_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert (tmp_path / "uv-site" / "alpha_lib").is_dir()
        assert file_requests(upstream).count(beta) == 1  # the second request was served from disk
        settled(mirror, "alpha_lib-2.0-py3-none-any.whl")
        fetched = len(file_requests(upstream))
        # nginx checks no hash: verify does, and --repair deletes what differs; the next request fetches it.
        wheel.write_bytes(b"not the wheel")
        assert verify(mirror) == 1
        assert verify(mirror, "--repair") == 0
        assert not wheel.exists() and verify(mirror) == 0
        again = requests.get(nginx.url + beta, timeout=30)
        assert again.status_code == 200 and again.content == settled(mirror, wheel.name).read_bytes()
        assert again.content == (tmp_path / "pip" / wheel.name).read_bytes()
        assert file_requests(upstream)[fetched:] == [beta]
    # update-stats counts what nginx served, fetched first or kept, as from any mirror.
    mirror.config.write_text(mirror.config.read_text()
                             + f"[statistics]\naccess-log-pattern = {nginx.access_log}*\n")
    assert cli.main(["-c", str(mirror.config), "update-stats"]) == 0
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    rows = bz2.decompress((mirror.web / "local-stats" / "days" / f"{day}.bz2").read_bytes()).decode()
    fields = (row.split(",") for row in rows.splitlines()[1:])
    counts = {(f, a.split("/")[0]): int(c) for _, f, a, c in fields}
    assert counts[(wheel.name, "pip")] == counts[(wheel.name, "uv")] == 1
    # A kept file of a removed release leaves with it, through the gate (the diff-file lists it).
    upstream.remove_file("beta", wheel.name)
    assert mirror.run() == 0
    assert not wheel.exists() and "alpha_lib-2.0-py3-none-any.whl" in kept(mirror)
