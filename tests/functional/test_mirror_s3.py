"""``storage-backend = s3``: the mirror published to a real SeaweedFS bucket (no mock).

Every test syncs the same fake upstream into a filesystem mirror and into the
bucket (below a fresh prefix) and holds the bucket to what the filesystem
backend wrote into ``web/``: key for key, byte for byte, with the Content-Type
clients need.  Store requests are counted with a botocore event hook on the
mirror's own client.
"""

from __future__ import annotations

import collections
import hashlib
import json
import posixpath
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import lxml.html
import pytest
from support import seaweedfs
from support.fakepypi import SIMPLE_JSON, Upstream, populate_sample
from support.mirrortools import MirrorSetup, write_config
from support.s3tools import s3_section
from test_crash import ChangingCorpus, expected_requests, kill_at_random_moment
from test_dependencies_sync import graph as graph  # a fixture
from test_dependencies_sync import with_deps

from bandersnatch import cli
from bandersnatch.store import protocol as contract

boto3 = pytest.importorskip("boto3")  # the optional extra [s3]


def s3_mirror(root: Path, upstream: Upstream, server: seaweedfs.Seaweed, prefix: str,
              secret: str | None = None, **options: str) -> MirrorSetup:
    return write_config(root, upstream.url, storage_backend="s3", timeout="3",
                        sections=s3_section(server, prefix, secret=secret), **options)


def client(server: seaweedfs.Seaweed) -> Any:
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)


def bucket_objects(server: seaweedfs.Seaweed, prefix: str) -> dict[str, tuple[bytes, str]]:
    """key (below ``prefix``) -> (bytes, Content-Type) of every object there (the test may list)."""
    s3 = client(server)
    found: dict[str, tuple[bytes, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=server.bucket, Key=item["Key"])
            found[item["Key"][len(prefix) + 1:]] = (got["Body"].read(), got["ContentType"])
    return found


def web_files(web: Path) -> dict[str, bytes]:
    return {p.relative_to(web).as_posix(): p.read_bytes() for p in sorted(web.rglob("*")) if p.is_file()}


def comparable(key: str, data: bytes) -> bytes:
    """What must be equal across stores: a JSON page without its private store stamps (mtime vs ETag)."""
    if key == "last-modified":
        return b"(a time)"
    if key.endswith("/index.v1_json") and key.count("/") >= 2:
        doc = json.loads(data)
        for entry in doc.get("files", []):
            entry.pop("_on-disk", None)
        return json.dumps(doc, sort_keys=True).encode()
    return data


def assert_bucket_equals_web(server: seaweedfs.Seaweed, prefix: str, web: Path) -> None:
    objects = bucket_objects(server, prefix)
    files = web_files(web)
    assert sorted(objects) == sorted(files)
    for key, data in files.items():
        body, kind = objects[key]
        assert comparable(key, body) == comparable(key, data), key
        # SeaweedFS stores a type guessed from the name for application/octet-stream (see
        # test_store_contract_s3); the types pages need are kept as sent.
        assert kind == contract.content_type(key) or contract.content_type(key) == contract.BINARY, key


Counter = collections.Counter[str]


@pytest.fixture
def s3_requests(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Every S3 operation the mirror's clients call (PutObject, HeadObject, ...), counted as sent."""
    counts: Counter = collections.Counter()
    original = boto3.session.Session.client

    def counting_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if "bandersnatch" not in (getattr(kwargs.get("config"), "user_agent_extra", None) or ""):
            return made  # the test's own client, looking at the bucket

        def count(model: Any, **_: Any) -> None:
            counts[model.name] += 1

        made.meta.events.register("before-call.s3", count)
        return made

    monkeypatch.setattr(boto3.session.Session, "client", counting_client)
    return counts


@pytest.fixture
def prefix() -> str:
    return f"mirror-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def twin(tmp_path: Path, upstream: Upstream, seaweed: seaweedfs.Seaweed,
         prefix: str) -> Callable[[], tuple[MirrorSetup, MirrorSetup]]:
    """A filesystem mirror and an S3 mirror of the same upstream (with pypi/<p>/json)."""

    def make() -> tuple[MirrorSetup, MirrorSetup]:
        return (write_config(tmp_path / "fs", upstream.url, json="true", delete_packages="true"),
                s3_mirror(tmp_path / "s3", upstream, seaweed, prefix, json="true", delete_packages="true"))

    return make


def change_upstream(upstream: Upstream) -> None:
    """New releases, a removed file, a removed project, a yank."""
    upstream.add_wheel("Alpha-Lib", "3.0", with_metadata=True)
    upstream.add_wheel("gamma", "1.0", with_metadata=True, requires=["beta"])
    upstream.remove_file("beta", upstream.files("beta")[-1].filename)
    upstream.remove_project("zope.interface_x")
    upstream.yank("Alpha-Lib", upstream.files("Alpha-Lib")[0].filename, reason="broken")


def test_full_then_incremental_syncs_leave_the_bucket_equal_to_the_filesystem_mirror(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str,
    twin: Callable[[], tuple[MirrorSetup, MirrorSetup]], s3_requests: Counter,
) -> None:
    populate_sample(upstream)
    fs, s3 = twin()
    assert fs.run() == 0
    assert s3.run() == 0
    assert_bucket_equals_web(seaweed, prefix, fs.web)
    assert not (s3.root / "web").exists()  # nothing clients read is written locally
    assert "ListObjectsV2" not in s3_requests and "GetObject" not in s3_requests
    change_upstream(upstream)
    s3_requests.clear()
    assert fs.run() == 0
    assert s3.run() == 0
    assert_bucket_equals_web(seaweed, prefix, fs.web)
    assert s3_requests["DeleteObject"] > 0  # the removed file and project went
    assert "ListObjectsV2" not in s3_requests and "GetObject" not in s3_requests


def test_a_no_op_run_on_s3_sends_no_put_or_delete_but_last_modified(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path, s3_requests: Counter,
) -> None:
    populate_sample(upstream)
    s3 = s3_mirror(tmp_path, upstream, seaweed, prefix)
    assert s3.run() == 0
    s3_requests.clear()
    assert s3.run() == 0
    # last-modified is the heartbeat monitoring reads: rewritten by every complete run, as on disk.
    assert dict(s3_requests) == {"HeadBucket": 1, "PutObject": 1}


def test_force_check_on_s3_fetches_every_page_and_downloads_only_objects_missing_or_changed(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path, s3_requests: Counter,
) -> None:
    # Reading an object back to hash it costs what a download costs: force-check on S3 trusts an
    # object whose HEAD matches the size and ETag recorded when it was verified (verify --hash reads).
    corpus = populate_sample(upstream)
    s3 = s3_mirror(tmp_path, upstream, seaweed, prefix, delete_packages="true")
    assert s3.run() == 0
    upstream.reset_requests()
    s3_requests.clear()
    assert s3.run("--force-check") == 0
    assert upstream.count_requests("/packages/") == 0
    assert upstream.count_requests("/simple/") >= len(corpus.projects)  # every page fetched again
    assert "GetObject" not in s3_requests  # nothing read back but what has no hash on the page
    keys = sorted(k for k in bucket_objects(seaweed, prefix) if k.startswith("packages/"))
    gone = next(k for k in keys if k.endswith(corpus.files_of("Alpha-Lib")[0].filename))
    flipped = next(k for k in keys if k.endswith(corpus.files_of("beta")[0].filename))
    behind: Any = client(seaweed)  # damage done behind the mirror's back
    behind.delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{gone}")
    data = bytearray(behind.get_object(Bucket=seaweed.bucket, Key=f"{prefix}/{flipped}")["Body"].read())
    data[len(data) // 2] ^= 0x10  # same size, a new ETag
    behind.put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{flipped}", Body=bytes(data))
    behind.delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/simple/beta/index.html")
    upstream.reset_requests()
    assert s3.run("--force-check") == 0
    assert upstream.count_requests("/packages/") == 2  # the deleted object and the replaced one
    assert broken_links(seaweed, prefix) == []  # and every page published again


def test_force_check_on_s3_does_not_trust_a_kept_object_whose_page_now_gives_another_sha256(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path,
) -> None:
    # Hostile: upstream's page names another sha256 for the same URL; the ETag our record holds
    # vouches only for the bytes verified then, so the object is fetched again and refused.
    populate_sample(upstream)
    s3 = s3_mirror(tmp_path, upstream, seaweed, prefix)
    assert s3.run() == 0
    entry = upstream.get_file("beta", "beta-0.5.tar.gz")
    key = next(k for k in bucket_objects(seaweed, prefix) if k.endswith("/beta-0.5.tar.gz"))
    before = client(seaweed).head_object(Bucket=seaweed.bucket, Key=f"{prefix}/{key}")["ETag"]
    body = json.dumps({
        "meta": {"api-version": "1.1"}, "name": "beta",
        "files": [{"filename": entry.filename, "url": upstream.url + quote(entry.path),
                   "hashes": {"sha256": "0" * 64}, "size": entry.size}],
    }).encode()
    upstream.raw_page("beta", body, SIMPLE_JSON, upstream.touch("beta"))
    upstream.reset_requests()
    assert s3.run("--force-check") == 1
    assert upstream.count_requests(quote(entry.path)) == 1  # not trusted by its ETag: downloaded, refused
    assert client(seaweed).head_object(Bucket=seaweed.bucket, Key=f"{prefix}/{key}")["ETag"] == before
    assert broken_links(seaweed, prefix) == []


def test_wrong_s3_credentials_are_one_line_exit_2_and_nothing_published(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    populate_sample(upstream)
    s3 = s3_mirror(tmp_path, upstream, seaweed, prefix, secret="not-the-secret")
    upstream.reset_requests()
    assert s3.run() == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "aws_secret_access_key" in lines[0], err
    assert "Traceback" not in err
    assert bucket_objects(seaweed, prefix) == {}
    assert upstream.count_requests() == 0


def broken_links(server: seaweedfs.Seaweed, prefix: str) -> list[str]:
    """What a reader of the bucket would trip on: a root index naming a project without pages, a page
    link to a missing object or to bytes other than its #sha256 says."""
    objects = bucket_objects(server, prefix)
    problems = []
    root = objects.get("simple/index.v1_json")
    if root is not None:
        for project in json.loads(root[0])["projects"]:
            page = f"simple/{project['name']}/index.html"
            if page not in objects:
                problems.append(f"root index names {project['name']}, which has no page")
    for key, (body, _) in objects.items():
        if not (key.startswith("simple/") and key.endswith("/index.html") and key.count("/") == 2):
            continue
        for anchor in lxml.html.fromstring(body).iter("a"):
            href, _, fragment = anchor.get("href", "").partition("#")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(key), unquote(href)))
            if target not in objects:
                problems.append(f"{key} links missing {target}")
            elif fragment.startswith("sha256=") and \
                    hashlib.sha256(objects[target][0]).hexdigest() != fragment[len("sha256="):]:
                problems.append(f"{key} links {target} with other bytes")
    return problems


@pytest.mark.slow  # about 10 s
def test_sigkill_mid_run_on_s3_leaves_no_page_linking_a_missing_object_and_the_next_run_finishes(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path,
) -> None:
    rng = random.Random(12)
    corpus = ChangingCorpus(upstream, rng)
    for _ in range(12):
        corpus.new_project()
    s3 = s3_mirror(tmp_path / "s3", upstream, seaweed, prefix, delete_packages="true")
    kills = 0
    for iteration in range(14):
        if iteration:
            corpus.change()
        upstream.latency = 0.01
        expected = expected_requests(s3, upstream)
        upstream.reset_requests()
        proc = s3.run_subprocess()
        if kill_at_random_moment(proc, upstream, rng, expected):
            kills += 1
        else:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, 1), err.decode(errors="replace")
        assert broken_links(seaweed, prefix) == []
    upstream.latency = 0.0
    assert s3.run() == 0
    assert kills >= 6
    assert broken_links(seaweed, prefix) == []
    fs = write_config(tmp_path / "fs", upstream.url)
    assert fs.run() == 0
    assert_bucket_equals_web(seaweed, prefix, fs.web)


@pytest.mark.slow  # starts its own SeaweedFS twice
def test_the_endpoint_going_away_mid_run_stops_it_nonzero_and_a_run_against_the_restarted_store_finishes(
    upstream: Upstream, tmp_path: Path, prefix: str, capfd: pytest.CaptureFixture[str],
) -> None:
    if seaweedfs.weed_binary() is None:
        pytest.skip("weed is not installed")
    for i in range(30):
        upstream.add_wheel(f"proj-{i:02d}", "1.0", with_metadata=True)
    (tmp_path / "weed").mkdir()
    server = seaweedfs.start(tmp_path / "weed")
    try:
        s3 = s3_mirror(tmp_path / "s3", upstream, server, prefix, workers="2")
        upstream.latency = 0.05
        proc = s3.run_subprocess()
        deadline = time.monotonic() + 30
        while upstream.count_requests() < 12 and time.monotonic() < deadline:
            time.sleep(0.005)
        server.stop()
        _, err = proc.communicate(timeout=120)
        text = err.decode(errors="replace")
        assert proc.returncode == 1, text
        assert "Traceback" not in text
        assert "unreachable" in text.splitlines()[-1], text
        errors = [line for line in text.splitlines() if " ERROR: " in line]
        assert len(errors) == 1, errors
    finally:
        server.stop()
    upstream.latency = 0.0
    server = seaweedfs.start(tmp_path / "weed")
    try:
        s3 = s3_mirror(tmp_path / "s3", upstream, server, prefix, workers="2")
        assert s3.run() == 0
        assert broken_links(server, prefix) == []
        assert sum(1 for k in bucket_objects(server, prefix) if k.endswith(".whl")) == 30
    finally:
        server.stop()


def test_requests_to_the_store_per_project_for_a_full_sync_and_a_no_op(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path, s3_requests: Counter,
) -> None:
    """A wheel with its .metadata and an sdist per project: one PUT per object, no HEAD before a new
    file (nothing is read back), no listing; a no-op run asks only the bucket and writes last-modified."""
    projects = 10
    for i in range(projects):
        upstream.add_wheel(f"req-{i}", "1.0", with_metadata=True)
        upstream.add_sdist(f"req-{i}", "1.0")
    s3 = s3_mirror(tmp_path, upstream, seaweed, prefix)
    assert s3.run() == 0
    # per project: wheel, .metadata, sdist, two pages; then the root index (2) and last-modified
    assert dict(s3_requests) == {"HeadBucket": 1, "PutObject": 5 * projects + 3}
    print(f"\nfull sync of {projects} projects: {dict(s3_requests)}")
    s3_requests.clear()
    upstream.add_wheel("req-0", "2.0", with_metadata=True)
    assert s3.run() == 0
    # the changed project: HEADs of the three files it keeps, PUTs of the new wheel, its .metadata
    # and both pages; then the root index (2) and last-modified
    assert dict(s3_requests) == {"HeadBucket": 1, "HeadObject": 3, "PutObject": 7}
    print(f"one changed project: {dict(s3_requests)}")


def test_update_stats_on_s3_reads_logs_locally_and_publishes_day_files_and_pages_to_the_bucket(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path, s3_requests: Counter,
) -> None:
    populate_sample(upstream)
    logs = tmp_path / "logs"
    logs.mkdir()
    s3 = s3_mirror(tmp_path / "s3", upstream, seaweed, prefix)
    with s3.config.open("a") as conf:
        conf.write(f"\n[statistics]\naccess-log-pattern = {logs}/access.log*\n")
    assert s3.run() == 0
    wheel = upstream.files("beta")[0].filename
    (logs / "access.log").write_text(
        f'203.0.113.9 - - [10/Oct/2024:09:00:00 +0000] "GET /packages/ab/cd/{wheel} HTTP/1.1" 200 9 "-" '
        '"pip/24.2"\n')
    s3_requests.clear()
    assert cli.main(["-c", str(s3.config), "update-stats"]) == 0
    objects = bucket_objects(seaweed, prefix)
    assert "local-stats/days/2024-10-10.bz2" in objects
    assert objects["local-stats/index.html"][1] == contract.HTML
    assert objects["local-stats/summary.json"][1] == contract.JSON
    assert not (s3.root / "web").exists()
    assert "GetObject" not in s3_requests and "ListObjectsV2" not in s3_requests


def test_with_dependencies_on_s3_reads_requirements_from_the_downloads_and_matches_the_filesystem(
    graph: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path, s3_requests: Counter,
) -> None:
    """Wheels without .metadata and an sdist's PKG-INFO are read before they are published: the
    closure on S3 is the filesystem's, with nothing read back from the bucket."""
    sections = with_deps("dep-root")
    fs = write_config(tmp_path / "fs", graph.url, sections=sections)
    s3 = write_config(tmp_path / "s3", graph.url, storage_backend="s3", timeout="3",
                      sections=sections + "\n" + s3_section(seaweed, prefix))
    assert fs.run() == 0
    assert s3.run() == 0
    assert_bucket_equals_web(seaweed, prefix, fs.web)
    root = json.loads(bucket_objects(seaweed, prefix)["simple/index.v1_json"][0])
    # dep-cycle-a comes through mid's sdist PKG-INFO, dep-cycle-b through dep-cycle-a's wheel
    assert {"mid", "dep-cycle-a", "dep-cycle-b"} <= {p["name"] for p in root["projects"]}
    assert "GetObject" not in s3_requests


def test_diff_file_on_s3_lists_s3_urls_of_what_the_run_wrote_and_deleted(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path,
) -> None:
    populate_sample(upstream)
    diff = tmp_path / "changed.txt"
    s3 = s3_mirror(tmp_path / "s3", upstream, seaweed, prefix, diff_file=str(diff))
    assert s3.run() == 0
    gone = upstream.files("beta")[-1]
    upstream.remove_file("beta", gone.filename)
    assert s3.run() == 0
    base = f"s3://{seaweed.bucket}/{prefix}/"
    written = diff.read_text().splitlines()
    deleted = (tmp_path / "changed.txt.deleted").read_text().splitlines()
    assert f"{base}simple/beta/index.html" in written and f"{base}simple/index.v1_json" in written
    assert f"{base}last-modified" in written
    assert [url for url in deleted if url.endswith(gone.filename)]
    assert all(url.startswith(base) for url in deleted)


@pytest.fixture
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[tuple[str, str]]:
    """Every (operation, bucket key) the mirror's clients send, counted as sent."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    original = boto3.session.Session.client

    def counting_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)
        if "bandersnatch" in (getattr(kwargs.get("config"), "user_agent_extra", None) or ""):
            def count(model: Any, params: Any, **_: Any) -> None:
                counts[model.name, params.get("Key", "")] += 1

            made.meta.events.register("before-parameter-build.s3", count)  # params: the call's own
        return made

    monkeypatch.setattr(boto3.session.Session, "client", counting_client)
    return counts


def test_a_deleted_file_and_each_diff_file_line_cost_one_head_each(
    upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, tmp_path: Path,
    s3_keys: collections.Counter[tuple[str, str]],
) -> None:
    upstream.add_wheel("req-0", "1.0", with_metadata=True)
    gone = upstream.add_sdist("req-0", "1.0").filename
    s3 = s3_mirror(tmp_path / "s3", upstream, seaweed, prefix, diff_file=str(tmp_path / "changed.txt"),
                   delete_packages="true")
    assert s3.run() == 0
    upstream.remove_file("req-0", gone)
    new = upstream.add_wheel("req-0", "2.0", with_metadata=True).filename
    s3_keys.clear()
    assert s3.run() == 0
    heads = {key: n for (op, key), n in s3_keys.items() if op == "HeadObject"}
    gone_key = next(key for key in heads if key.endswith("/" + gone))
    assert s3_keys["DeleteObject", gone_key] == 1
    # One HEAD before its DELETE (its size is counted from it), one sorting it into changed.txt.deleted;
    # every other key (kept files, sidecars that were not there, new files listed in changed.txt) once.
    assert heads[gone_key] == 2, heads
    assert {key: n for key, n in heads.items() if n != 1 and key != gone_key} == {}
    assert any(key.endswith("/" + new) for key in heads)
