"""``bandersnatch verify [--hash] [--repair]`` on an S3 mirror, against a real SeaweedFS (no mock).

The pages come from the mirror's local record (``s3-pages/``); each file they
link is asked for by key: a HEAD against the recorded size and ETag, or with
``--hash`` one streamed GET through sha256.  The bucket is never listed.
Damage is done behind the mirror's back with the test's own client; store
requests are counted with the ``s3_requests`` hook of ``test_mirror_s3``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import seaweedfs
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import MirrorSetup
from test_mirror_s3 import Counter, broken_links, bucket_objects, client, s3_mirror
from test_mirror_s3 import prefix as prefix  # a fixture
from test_mirror_s3 import s3_requests as s3_requests  # a fixture

from bandersnatch import cli

pytest.importorskip("boto3")  # the optional extra [s3]


@pytest.fixture
def synced(tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, seaweed: seaweedfs.Seaweed,
           prefix: str) -> MirrorSetup:
    mirror = s3_mirror(tmp_path, upstream, seaweed, prefix, delete_packages="true")
    assert mirror.run() == 0
    return mirror


def verify(mirror: MirrorSetup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = cli.main(["-c", str(mirror.config), "verify", *args])
    return code, capsys.readouterr().out.splitlines()


def linked_keys(seaweed: seaweedfs.Seaweed, prefix: str) -> list[str]:
    """Every file and .metadata the pages link (what verify checks; a provenance copy is not)."""
    return sorted(k for k in bucket_objects(seaweed, prefix)
                  if k.startswith("packages/") and not k.endswith(".provenance"))


def key_of(seaweed: seaweedfs.Seaweed, prefix: str, filename: str) -> str:
    return next(k for k in linked_keys(seaweed, prefix) if k.endswith("/" + filename))


def replace_object(seaweed: seaweedfs.Seaweed, prefix: str, key: str, same_size: bool) -> None:
    s3: Any = client(seaweed)
    data = bytearray(s3.get_object(Bucket=seaweed.bucket, Key=f"{prefix}/{key}")["Body"].read())
    if same_size:
        data[len(data) // 2] ^= 0x10
    else:
        data += b"more"
    s3.put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{key}", Body=bytes(data))


def assert_repaired(mirror: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str,
                    capsys: pytest.CaptureFixture[str], *args: str) -> None:
    code, lines = verify(mirror, capsys, "--repair", *args)
    assert code == 0, lines
    assert verify(mirror, capsys, "--hash") == (0, [])
    assert broken_links(seaweed, prefix) == []


def test_a_clean_s3_mirror_verifies_with_one_head_per_file_and_with_hash_one_get(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str, s3_requests: Counter,
        sample_corpus: SampleCorpus, capsys: pytest.CaptureFixture[str]) -> None:
    files = len(linked_keys(seaweed, prefix))
    pages = 2 * len(sample_corpus.projects) + 2  # both pages of every project, and the root index's
    s3_requests.clear()
    assert verify(synced, capsys) == (0, [])
    assert dict(s3_requests) == {"HeadBucket": 1, "HeadObject": files + pages}  # no GET, no listing
    s3_requests.clear()
    assert verify(synced, capsys, "--hash") == (0, [])
    assert dict(s3_requests) == {"HeadBucket": 1, "GetObject": files, "HeadObject": pages}
    print(f"\nverify of {files} files: HEAD only, then --hash: one GET per file; a HEAD per page")
    assert not (synced.root / "tmp" / "verify").exists()  # nothing left to resume


def test_objects_deleted_or_cut_behind_the_mirror_are_found_by_head_and_fetched_again(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str, sample_corpus: SampleCorpus,
        s3_requests: Counter, capsys: pytest.CaptureFixture[str]) -> None:
    gone = key_of(seaweed, prefix, sample_corpus.files_of("Alpha-Lib")[0].filename)
    longer = key_of(seaweed, prefix, sample_corpus.files_of("beta")[0].filename)
    client(seaweed).delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{gone}")
    replace_object(seaweed, prefix, longer, same_size=False)
    s3_requests.clear()
    code, lines = verify(synced, capsys)
    assert code == 1
    assert sorted(lines) == sorted([f"missing: {gone}: linked by alpha-lib but not in the store",
                                    f"size: {longer}: {lines_size(lines, longer)}"])
    assert "GetObject" not in s3_requests and "ListObjectsV2" not in s3_requests
    assert_repaired(synced, seaweed, prefix, capsys)


def lines_size(lines: list[str], key: str) -> str:
    line = next(line for line in lines if line.startswith(f"size: {key}: "))
    detail = line.split(": ", 2)[2]
    assert detail.endswith("recorded by beta")
    return detail


def test_same_size_replacement_is_found_by_its_etag_and_with_hash_by_its_sha256(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str, sample_corpus: SampleCorpus,
        s3_requests: Counter, capsys: pytest.CaptureFixture[str]) -> None:
    victim = key_of(seaweed, prefix, sample_corpus.files_of("beta")[0].filename)
    replace_object(seaweed, prefix, victim, same_size=True)
    s3_requests.clear()
    code, lines = verify(synced, capsys)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"changed: {victim}: ETag "), lines
    assert "GetObject" not in s3_requests
    code, lines = verify(synced, capsys, "--hash")
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"hash: {victim}: sha256 "), lines
    assert_repaired(synced, seaweed, prefix, capsys)


def test_same_size_replacement_of_a_file_recorded_without_etag_is_found_only_with_hash(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str, sample_corpus: SampleCorpus,
        upstream: Upstream, capsys: pytest.CaptureFixture[str]) -> None:
    # A page recorded before stamps were kept, or by another tool: the size is all a HEAD can check.
    page = synced.root / "s3-pages" / "simple" / "beta" / "index.v1_json"
    doc = json.loads(page.read_bytes())
    for entry in doc["files"]:
        entry.get("_on-disk", {}).pop("etag", None)
    page.write_text(json.dumps(doc))
    client(seaweed).put_object(Bucket=seaweed.bucket, Key=f"{prefix}/simple/beta/index.v1_json",
                               Body=page.read_bytes())  # what clients read is that page too
    victim = key_of(seaweed, prefix, sample_corpus.files_of("beta")[0].filename)
    replace_object(seaweed, prefix, victim, same_size=True)
    assert verify(synced, capsys) == (0, [])
    code, lines = verify(synced, capsys, "--hash")
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"hash: {victim}: sha256 "), lines
    upstream.reset_requests()
    assert_repaired(synced, seaweed, prefix, capsys, "--hash")
    assert upstream.count_requests("/packages/") == 1  # the bad file alone: its size vouches for nothing


def test_repair_on_s3_downloads_only_the_broken_objects_of_a_project(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus, seaweed: seaweedfs.Seaweed,
        prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    for version in ("3.0", "4.0", "5.0"):
        upstream.add_wheel("Alpha-Lib", version, with_metadata=True)
    mirror = s3_mirror(tmp_path, upstream, seaweed, prefix, delete_packages="true")
    assert mirror.run() == 0
    keys = [k for k in linked_keys(seaweed, prefix) if "/alpha_lib-" in k and k.endswith(".whl")]
    assert len(keys) == 5
    client(seaweed).delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{keys[0]}")
    replace_object(seaweed, prefix, keys[1], same_size=True)
    assert verify(mirror, capsys)[0] == 1
    upstream.reset_requests()
    code, lines = verify(mirror, capsys, "--repair")
    assert code == 0, lines
    assert upstream.count_requests("/packages/") == 2  # the two broken wheels; 3 wheels, 5 .metadata kept
    assert verify(mirror, capsys, "--hash") == (0, [])
    assert broken_links(seaweed, prefix) == []


@pytest.mark.parametrize("page", ["simple/beta/index.html", "simple/beta/index.v1_json"])
def test_a_page_object_deleted_from_the_bucket_is_page_missing_and_repair_publishes_it_again(
        synced: MirrorSetup, upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str, page: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The local record still holds the page; clients (nginx in front of the bucket) get a 404.
    client(seaweed).delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{page}")
    expected = [f"page-missing: {page}: in the mirror's record but not in the bucket"]
    assert verify(synced, capsys) == (1, expected)
    assert verify(synced, capsys, "--hash") == (1, expected)
    upstream.reset_requests()
    assert_repaired(synced, seaweed, prefix, capsys)
    assert upstream.count_requests("/packages/") == 0  # the page again, no file downloaded
    assert client(seaweed).head_object(Bucket=seaweed.bucket, Key=f"{prefix}/{page}")["ContentLength"] > 0


def test_a_page_object_cut_short_in_the_bucket_is_page_damaged_and_repaired(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    page = "simple/alpha-lib/index.html"
    s3: Any = client(seaweed)
    body = s3.get_object(Bucket=seaweed.bucket, Key=f"{prefix}/{page}")["Body"].read()
    s3.put_object(Bucket=seaweed.bucket, Key=f"{prefix}/{page}", Body=body[: len(body) // 2])
    code, lines = verify(synced, capsys)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"page-damaged: {page}: "), lines
    assert_repaired(synced, seaweed, prefix, capsys)


@pytest.mark.parametrize("root", ["simple/index.html", "simple/index.v1_json"])
def test_a_root_index_object_deleted_from_the_bucket_is_root_damaged_and_rebuilt(
        synced: MirrorSetup, seaweed: seaweedfs.Seaweed, prefix: str, root: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    client(seaweed).delete_object(Bucket=seaweed.bucket, Key=f"{prefix}/{root}")
    code, lines = verify(synced, capsys)
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"root-damaged: {root}: "), lines
    assert_repaired(synced, seaweed, prefix, capsys)
    assert client(seaweed).head_object(Bucket=seaweed.bucket, Key=f"{prefix}/{root}")["ContentLength"] > 0


def test_verify_with_wrong_s3_credentials_is_one_line_exit_2(
        synced: MirrorSetup, upstream: Upstream, seaweed: seaweedfs.Seaweed, prefix: str,
        capfd: pytest.CaptureFixture[str]) -> None:
    wrong = s3_mirror(synced.root.parent, upstream, seaweed, prefix, secret="not-the-secret")
    capfd.readouterr()
    assert cli.main(["-c", str(wrong.config), "verify"]) == 2
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "aws_secret_access_key" in lines[0], err
    assert out == "" and "Traceback" not in err


def test_fast_and_hash_exclude_each_other(synced: MirrorSetup, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["-c", str(synced.config), "verify", "--fast", "--hash"])
    assert stopped.value.code == 2
