"""README's nginx block, for real: pip and uv install from a synced mirror served by nginx."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup, clean_pip_env, write_config
from support.nginx_server import Nginx, nginx_binary, run_nginx

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)")

PIP_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
              "text/html; q=0.01")


def uv_binary() -> str | None:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def clean_uv_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in clean_pip_env().items() if not k.startswith("UV_")}
    env.update(UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_PYTHON_DOWNLOADS="never")
    return env


@pytest.fixture(params=[False, True], ids=["flat", "hash-index"])
def nginx_mirror(request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream,
                 sample_corpus: SampleCorpus) -> Iterator[tuple[MirrorSetup, Nginx]]:
    hash_index = request.param
    mirror = write_config(tmp_path, upstream.url, hash_index=str(hash_index).lower())
    assert mirror.run() == 0
    upstream.stop()
    with run_nginx(mirror.web, tmp_path / "nginx", hash_index=hash_index) as nginx:
        yield mirror, nginx


def test_nginx_negotiates_json_for_pip_and_html_for_browsers(nginx_mirror: tuple[MirrorSetup, Nginx]) -> None:
    _, nginx = nginx_mirror
    as_pip = requests.get(f"{nginx.url}/simple/alpha-lib/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert as_pip.status_code == 200
    assert as_pip.headers["Content-Type"].startswith("application/vnd.pypi.simple.v1+json")
    assert as_pip.json()["name"] == "alpha-lib"
    as_browser = requests.get(f"{nginx.url}/simple/alpha-lib/", headers={"Accept": "text/html"}, timeout=10)
    assert as_browser.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Links for alpha-lib" in as_browser.text
    root = requests.get(f"{nginx.url}/simple/", headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert {p["name"] for p in root.json()["projects"]} >= {"alpha-lib", "beta"}


def test_pip_installs_through_nginx(nginx_mirror: tuple[MirrorSetup, Nginx], tmp_path: Path) -> None:
    _, nginx = nginx_mirror
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--no-cache-dir", "install", "--index-url",
         f"{nginx.url}/simple/", "--target", str(tmp_path / "pip-site"), "beta"],
        env=clean_pip_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "pip-site" / "alpha_lib").is_dir()


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed (requirements-test.txt has it)")
def test_uv_installs_through_nginx(nginx_mirror: tuple[MirrorSetup, Nginx], tmp_path: Path) -> None:
    _, nginx = nginx_mirror
    uv = uv_binary()
    assert uv is not None
    result = subprocess.run(
        [uv, "pip", "install", "--python", sys.executable, "--target", str(tmp_path / "uv-site"),
         "--index-url", f"{nginx.url}/simple/", "beta"],
        env=clean_uv_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "uv-site" / "alpha_lib").is_dir()
    agents = nginx.access_log.read_text()
    assert '"uv/' in agents


def test_update_stats_counts_pip_and_uv_downloads_from_nginx_log(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    import bz2
    from datetime import datetime, timezone

    uv = uv_binary()
    if uv is None:
        pytest.skip("uv is not installed")
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    upstream.stop()
    with run_nginx(mirror.web, tmp_path / "nginx") as nginx:
        pip_run = subprocess.run(
            [sys.executable, "-m", "pip", "--isolated", "--no-cache-dir", "install", "--index-url",
             f"{nginx.url}/simple/", "--target", str(tmp_path / "pip-site"), "beta"],
            env=clean_pip_env(), capture_output=True, text=True, timeout=300,
        )
        assert pip_run.returncode == 0, pip_run.stderr
        uv_run = subprocess.run(
            [uv, "pip", "install", "--python", sys.executable, "--target", str(tmp_path / "uv-site"),
             "--index-url", f"{nginx.url}/simple/", "zope.interface_x"],
            env=clean_uv_env(tmp_path), capture_output=True, text=True, timeout=300,
        )
        assert uv_run.returncode == 0, uv_run.stderr
    conf = mirror.config.read_text() + f"[statistics]\naccess-log-pattern = {nginx.access_log}*\n"
    mirror.config.write_text(conf)
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), "update-stats"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    rows = bz2.decompress((mirror.web / "local-stats" / "days" / f"{day}.bz2").read_bytes()).decode()
    lines = rows.splitlines()
    assert lines[0] == "# package,filename,useragent,count"
    counts = {(p, f, a.split("/")[0]): int(c) for p, f, a, c in (row.split(",") for row in lines[1:])}
    # pip fetched beta's wheel and alpha-lib 2.0's wheel (its metadata came from PEP 658, not counted);
    # uv fetched zope.interface_x's wheel.
    assert counts[("beta", "beta-0.5-py3-none-any.whl", "pip")] == 1
    assert counts[("alpha-lib", "alpha_lib-2.0-py3-none-any.whl", "pip")] == 1
    assert counts[("zope-interface-x", "zope_interface_x-3.1-py3-none-any.whl", "uv")] == 1
    assert sum(counts.values()) == 3
    assert (mirror.web / "local-stats" / "index.html").is_file()
    # Rerunning counts nothing twice.
    again = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(mirror.config), "update-stats"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert bz2.decompress((mirror.web / "local-stats" / "days" / f"{day}.bz2").read_bytes()).decode() == rows


def test_readme_block_loads_without_warnings_and_redirects_names_that_are_not_normalized(
    nginx_mirror: tuple[MirrorSetup, Nginx]
) -> None:
    _, nginx = nginx_mirror
    assert "duplicate" not in nginx.error_log.read_text(), nginx.error_log.read_text()
    for asked in ("zope.interface_x", "zope__interface-x", "zope.-_interface.x"):
        moved = requests.get(f"{nginx.url}/simple/{asked}/", headers={"Accept": PIP_ACCEPT}, timeout=10)
        assert moved.status_code == 200, asked
        assert moved.url == f"{nginx.url}/simple/zope-interface-x/"
        assert moved.history and all(r.status_code == 301 for r in moved.history)
        assert moved.json()["name"] == "zope-interface-x"


@pytest.fixture(params=[False, True], ids=["flat", "hash-index"])
def nginx_json_mirror(request: pytest.FixtureRequest, tmp_path: Path, upstream: Upstream,
                      sample_corpus: SampleCorpus) -> Iterator[tuple[MirrorSetup, Nginx]]:
    hash_index = request.param
    mirror = write_config(tmp_path, upstream.url, hash_index=str(hash_index).lower(), json="true")
    assert mirror.run() == 0
    upstream.stop()
    with run_nginx(mirror.web, tmp_path / "nginx", hash_index=hash_index) as nginx:
        yield mirror, nginx


def test_nginx_serves_the_json_api_as_application_json_and_its_urls_reach_the_files(
    nginx_json_mirror: tuple[MirrorSetup, Nginx]
) -> None:
    _, nginx = nginx_json_mirror
    url = f"{nginx.url}/pypi/alpha-lib/json"
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].split(";")[0] == "application/json"
    doc = answer.json()
    assert doc["info"]["version"] == "2.0"
    for entry in doc["urls"]:
        fetched = requests.get(urljoin(url, entry["url"]), timeout=10)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == entry["digests"]["sha256"]
    root = requests.get(f"{nginx.url}/simple/", headers={"Accept": PIP_ACCEPT}, timeout=10).json()
    assert {p["name"]: p["_last-serial"] for p in root["projects"]}["alpha-lib"] == doc["last_serial"]
    assert requests.get(f"{nginx.url}/pypi/no-such-project/json", timeout=10).status_code == 404
