"""README's nginx block for a bucket, for real: nginx in front of a SeaweedFS bucket serves pip and uv.

The bucket is filled by ``bandersnatch mirror`` itself (``storage-backend = s3``)
from the fake PyPI, flat and with ``hash-index``: pip and uv install what the
mirror published, read through README's nginx block.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from support.fakepypi import SampleCorpus, Upstream, populate_sample
from support.mirrortools import clean_pip_env, write_config
from support.nginx_server import Nginx, nginx_binary, readme_server_block, run_nginx_site
from support.s3tools import s3_section
from support.seaweedfs import Seaweed
from test_mirror_s3 import client
from test_nginx import PIP_ACCEPT, clean_uv_env, uv_binary

from bandersnatch import cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)"),
]
pytest.importorskip("bandersnatch.store.s3")  # boto3 is the optional extra [s3]

SECTION = "Serving a bucket with nginx"
README_ENDPOINT = "http://s3.example.org:8333"
README_BUCKET = "set $pypi_bucket /pypi-bucket/web;"
# The machine's proxy settings must not reach the in-process sync (conftest clears them per test).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def bucket_site(port: int, endpoint: str, bucket_path: str, hash_index: bool) -> str:
    """README's block with only what an operator edits changed: port, endpoint, bucket/prefix, hash-index."""
    block = readme_server_block(SECTION)
    assert block.count(README_ENDPOINT) == 3 and block.count(README_BUCKET) == 1, "README's block changed"
    block = block.replace("listen 80;", f"listen 127.0.0.1:{port};")
    block = block.replace(README_ENDPOINT, endpoint)
    block = block.replace(README_BUCKET, f"set $pypi_bucket {bucket_path};")
    if hash_index:
        block = block.replace("# rewrite ^/simple/", "rewrite ^/simple/")
        block = block.replace("# rewrite ^/pypi/", "rewrite ^/pypi/")
    return block


@dataclass
class BucketMirror:
    nginx: Nginx
    seaweed: Seaweed
    prefix: str
    corpus: SampleCorpus
    hash_index: bool

    @property
    def simple(self) -> str:
        return f"{self.nginx.url}/simple/"


@pytest.fixture(scope="module", params=[False, True], ids=["flat", "hash-index"])
def bucket_mirror(request: pytest.FixtureRequest, seaweed: Seaweed,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[BucketMirror]:
    """The sample corpus mirrored (json = true) into the bucket, and README's nginx block in front."""
    hash_index: bool = request.param
    root = tmp_path_factory.mktemp("s3serve")
    prefix = f"serve-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        with Upstream() as upstream:
            corpus = populate_sample(upstream)
            mirror = write_config(root, upstream.url, hash_index=str(hash_index).lower(), json="true",
                                  storage_backend="s3", sections=s3_section(seaweed, prefix))
            assert mirror.run() == 0
    assert not mirror.web.exists()  # what nginx serves came from the bucket alone
    path = f"/{seaweed.bucket}/{prefix}"
    with run_nginx_site(lambda port: bucket_site(port, seaweed.endpoint, path, hash_index),
                        root / "nginx") as nginx:
        yield BucketMirror(nginx, seaweed, prefix, corpus, hash_index)


def get(url: str, accept: str | None = None, **kwargs: object) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return requests.get(url, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_bucket_behind_nginx_negotiates_json_for_pip_and_html_for_browsers(
        bucket_mirror: BucketMirror) -> None:
    as_pip = get(f"{bucket_mirror.simple}alpha-lib/", PIP_ACCEPT)
    assert as_pip.status_code == 200
    assert as_pip.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    assert as_pip.json()["name"] == "alpha-lib"
    assert "Accept" in as_pip.headers["Vary"]
    assert as_pip.headers["Cache-Control"] == "max-age=60"
    as_browser = get(f"{bucket_mirror.simple}alpha-lib/", "text/html")
    assert as_browser.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Links for alpha-lib" in as_browser.text
    assert get(f"{bucket_mirror.simple}alpha-lib/").headers["Content-Type"].startswith("text/html")
    root = get(bucket_mirror.simple, PIP_ACCEPT)
    assert {p["name"] for p in root.json()["projects"]} >= {"alpha-lib", "beta", "empty-project"}
    assert "beta" in get(bucket_mirror.simple, "text/html").text
    log = bucket_mirror.nginx.error_log.read_text()
    assert "[warn]" not in log and "[emerg]" not in log, log  # README's block loads cleanly


def test_bucket_behind_nginx_answers_head_and_conditional_requests_like_web(
        bucket_mirror: BucketMirror) -> None:
    url = f"{bucket_mirror.simple}beta/"
    full = get(url, PIP_ACCEPT)
    head = requests.head(url, headers={"Accept": PIP_ACCEPT}, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(full.content))
    assert head.headers["ETag"] == full.headers["ETag"]
    again = requests.get(url, headers={"Accept": PIP_ACCEPT, "If-None-Match": full.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304


def test_bucket_behind_nginx_redirects_names_that_are_not_normalized_and_bare_project_urls(
        bucket_mirror: BucketMirror) -> None:
    for asked in ("zope.interface_x/", "zope__interface-x/", "zope-interface-x"):
        moved = get(f"{bucket_mirror.simple}{asked}", PIP_ACCEPT)
        assert moved.status_code == 200, asked
        assert moved.url == f"{bucket_mirror.simple}zope-interface-x/"
        assert moved.history and all(r.status_code == 301 for r in moved.history)
        assert moved.json()["name"] == "zope-interface-x"


def test_bucket_behind_nginx_serves_files_and_their_metadata_with_long_caching(
        bucket_mirror: BucketMirror) -> None:
    page = get(f"{bucket_mirror.simple}alpha-lib/", PIP_ACCEPT)
    files = {f["filename"]: f for f in page.json()["files"]}
    wheel = files["alpha_lib-2.0-py3-none-any.whl"]
    assert wheel["core-metadata"]
    url = requests.compat.urljoin(page.url, wheel["url"])
    answer = get(url)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "max-age=315360000"
    metadata = get(url.split("#")[0] + ".metadata")
    assert metadata.status_code == 200
    assert metadata.text.startswith("Metadata-Version:") and "Name: Alpha-Lib" in metadata.text
    assert metadata.headers["Content-Type"] == "text/plain; charset=utf-8"
    json_api = get(f"{bucket_mirror.nginx.url}/pypi/alpha-lib/json")
    assert json_api.status_code == 200 and json_api.json()["info"]["version"] == "2.0"
    assert json_api.headers["Content-Type"] == "application/json"
    assert get(f"{bucket_mirror.nginx.url}/last-modified").status_code == 200


def test_bucket_behind_nginx_answers_404_for_what_is_not_there(bucket_mirror: BucketMirror) -> None:
    base = bucket_mirror.nginx.url
    for url in (f"{base}/simple/no-such-project/", f"{base}/packages/ab/cd/missing-1.0.tar.gz",
                f"{base}/pypi/no-such-project/json", f"{base}/simple/alpha-lib/index.missing"):
        answer = get(url, PIP_ACCEPT)
        assert answer.status_code == 404, url
        # S3's error document (naming bucket and key) stays behind nginx.
        assert bucket_mirror.seaweed.bucket not in answer.text and "NoSuchKey" not in answer.text, url


def test_bucket_behind_nginx_lists_nothing_and_takes_no_query_commands_or_writes(
        bucket_mirror: BucketMirror) -> None:
    base = bucket_mirror.nginx.url
    bucket = bucket_mirror.seaweed.bucket
    for path in ("/", "/?list-type=2", f"/{bucket}/", f"/{bucket}/?list-type=2", "/packages/",
                 "/packages/?list-type=2", f"/packages/?prefix={bucket_mirror.prefix}",
                 "/local-stats/days/", "/../", "/simple/../"):
        answer = get(base + path)
        assert "ListBucketResult" not in answer.text and "<Contents>" not in answer.text, path
        assert answer.status_code in (400, 404), path
    # A query string never reaches S3: ?acl on an object is the object itself, not its ACL.
    page = get(f"{bucket_mirror.simple}beta/", "text/html")
    assert get(f"{bucket_mirror.simple}beta/?acl", "text/html").text == page.text
    root = get(bucket_mirror.simple, "text/html")
    assert get(f"{bucket_mirror.simple}?list-type=2", "text/html").text == root.text
    for method in ("PUT", "POST", "DELETE"):
        answer = requests.request(method, f"{base}/packages/evil.whl", data=b"x", timeout=10)
        assert answer.status_code == 405, method
    assert get(f"{base}/packages/evil.whl").status_code == 404


def test_a_page_deleted_from_the_bucket_is_a_404_through_nginx_until_verify_repair_publishes_it(
        seaweed: Seaweed, upstream: Upstream, sample_corpus: SampleCorpus, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    prefix = f"repair-{uuid.uuid4().hex[:12]}"
    mirror = write_config(tmp_path, upstream.url, storage_backend="s3", sections=s3_section(seaweed, prefix))
    assert mirror.run() == 0
    site = lambda port: bucket_site(port, seaweed.endpoint, f"/{seaweed.bucket}/{prefix}", False)  # noqa: E731
    with run_nginx_site(site, tmp_path / "nginx") as nginx:
        url = f"{nginx.url}/simple/beta/"
        assert get(url, PIP_ACCEPT).status_code == 200
        client(seaweed).delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/simple/beta/index.v1_json")
        assert get(url, PIP_ACCEPT).status_code == 404  # pip and uv can no longer install beta
        capsys.readouterr()
        assert cli.main(["-c", str(mirror.config), "verify"]) == 1
        assert capsys.readouterr().out.startswith("page-missing: simple/beta/index.v1_json: ")
        assert cli.main(["-c", str(mirror.config), "verify", "--repair"]) == 0
        again = get(url, PIP_ACCEPT)
        assert again.status_code == 200 and again.json()["name"] == "beta"


def _installed(site: Path) -> set[str]:
    return {p.name.split("-")[0] for p in site.glob("*.dist-info")}


def _file_requests(nginx: Nginx) -> list[str]:
    paths = re.findall(r'"GET (\S+) HTTP', nginx.access_log.read_text())
    return [urlsplit(p).path for p in paths if p.startswith("/packages/")]


def test_pip_installs_a_project_and_its_dependency_from_the_bucket_through_nginx(
        bucket_mirror: BucketMirror, tmp_path: Path) -> None:
    site = tmp_path / "pip-site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--no-cache-dir", "install", "--index-url",
         bucket_mirror.simple, "--target", str(site), "beta"],
        env=clean_pip_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(site) == {"alpha_lib", "beta"}
    # pip chose alpha-lib 2.0 from its PEP 658 .metadata, served from the bucket.
    fetched = _file_requests(bucket_mirror.nginx)
    assert any(p.endswith("alpha_lib-2.0-py3-none-any.whl.metadata") for p in fetched)


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed (requirements-test.txt has it)")
def test_uv_installs_a_project_and_its_dependency_from_the_bucket_through_nginx(
        bucket_mirror: BucketMirror, tmp_path: Path) -> None:
    uv = uv_binary()
    assert uv is not None
    site = tmp_path / "uv-site"
    result = subprocess.run(
        [uv, "pip", "install", "--no-cache", "--python", sys.executable, "--target", str(site),
         "--index-url", bucket_mirror.simple, "beta"],
        env=clean_uv_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(site) == {"alpha_lib", "beta"}
    assert '"uv/' in bucket_mirror.nginx.access_log.read_text()
