"""What only the S3 store does, on a real SeaweedFS (the shared contract is in ``test_store_contract.py``).

Content-Type on the objects, multipart uploads, errors an operator sees, the
key prefix and anonymous reads for a web server in front.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support import s3tools
from support.seaweedfs import Seaweed, free_ports

from bandersnatch.errors import StorageError, UnsafePath
from bandersnatch.store import protocol as contract
from bandersnatch.store.filesystem import FilesystemStore
from bandersnatch.store.recorded import RECORD_DIR, RecordedStore

s3store = pytest.importorskip("bandersnatch.store.s3")  # boto3 is the optional extra [s3]
MIB = 1024 * 1024

MakeStore = Callable[..., Any]


@pytest.fixture
def make_s3_store(seaweed: Seaweed, tmp_path: Path) -> MakeStore:
    """S3Store factory on the session's SeaweedFS, each store below a fresh prefix unless one is given."""
    return functools.partial(s3tools.make_s3_store, seaweed, tmp_path / "staging")


@pytest.fixture
def store(make_s3_store: MakeStore) -> Any:
    """An S3Store below a fresh prefix."""
    return make_s3_store()


@pytest.fixture
def raw(seaweed: Seaweed) -> Any:
    """A plain boto3 client on the same bucket, to look at objects as S3 keeps them."""
    import boto3

    return boto3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
                        aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key)


# ---------------------------------------------------------------- S3 only


@pytest.mark.parametrize(("key", "expected"), [
    ("simple/foo/index.html", "text/html; charset=utf-8"),
    ("simple/foo/index.v1_json", "application/vnd.pypi.simple.v1+json"),
    ("pypi/foo/json", "application/json"),
    ("packages/ab/cd/foo-1.0-py3-none-any.whl.metadata", "text/plain; charset=utf-8"),
    ("packages/ab/cd/foo-1.0-py3-none-any.whl.provenance", "application/json"),
    ("last-modified", "text/plain; charset=utf-8"),
    ("packages/ab/cd/foo-1.0.tar.gz", "application/octet-stream"),
])
def test_each_object_is_sent_and_stored_with_the_content_type_clients_need(
        store: Any, raw: Any, key: str, expected: str) -> None:
    sent: list[str] = []
    store.client.meta.events.register("before-send.s3.PutObject",
                                      lambda request, **_: sent.append(_header(request, "Content-Type")))
    store.publish_page(key, b"body")
    with store.upload(key + "-2") as upload:  # the same kind of name through an upload
        upload.file.write(b"body")
        upload.commit()
    assert sent == [expected, contract.content_type(key + "-2")]
    stored = raw.head_object(Bucket=store.bucket, Key=store.object_key(key))["ContentType"]
    # SeaweedFS takes application/octet-stream as "unknown" and stores a type guessed from the
    # name (application/gzip for .tar.gz); any server keeps the types pages need as sent.
    assert stored == expected or expected == contract.BINARY


def _header(request: Any, name: str) -> str:
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def test_a_file_above_the_part_size_goes_up_as_a_multipart_upload(make_s3_store: MakeStore, raw: Any) -> None:
    store = make_s3_store(part_bytes=5 * MIB)
    data = os.urandom(11 * MIB + 5)
    with store.upload("packages/ab/cd/big-1.0.tar.gz") as upload:
        upload.file.write(data)
        stat = upload.commit()
    head = raw.head_object(Bucket=store.bucket, Key=store.object_key("packages/ab/cd/big-1.0.tar.gz"))
    assert head["ETag"].strip('"').endswith("-3")  # S3 names a multipart object's ETag by its part count
    assert stat == contract.ObjectStat(len(data), head["ETag"].strip('"'))
    assert store.read("packages/ab/cd/big-1.0.tar.gz") == data


def test_a_file_between_the_stream_threshold_and_a_part_goes_up_in_one_put_streamed_from_disk(
        make_s3_store: MakeStore) -> None:
    store = make_s3_store(part_bytes=5 * MIB)
    data = os.urandom(s3store.STREAM_FROM + 1024)
    bodies: list[object] = []
    store.client.meta.events.register("before-parameter-build.s3.PutObject",
                                      lambda params, **_: bodies.append(params["Body"]))
    with store.upload("packages/ab/cd/mid-1.0.tar.gz") as upload:
        upload.file.write(data)
        stat = upload.commit()
        assert bodies == [upload.file]  # the staged file itself, not a copy of its bytes in memory
    assert "-" not in str(stat.stamp) and stat.size == len(data)
    assert store.read("packages/ab/cd/mid-1.0.tar.gz") == data


def test_a_streamed_root_index_above_the_part_size_goes_up_in_parts(make_s3_store: MakeStore) -> None:
    store = make_s3_store(part_bytes=5 * MIB)
    lines = [f'<a href="p{i}/">p{i}</a><br/>\n'.encode() for i in range(400_000)]
    stat = store.publish_page("simple/index.html", iter(lines))
    assert str(stat.stamp).endswith("-3") and stat.size == sum(map(len, lines))
    assert store.read("simple/index.html") == b"".join(lines)


def test_a_stream_failing_midway_aborts_its_upload_and_leaves_the_old_page(
        make_s3_store: MakeStore, raw: Any) -> None:
    store = make_s3_store(part_bytes=5 * MIB)
    store.publish_page("simple/index.html", b"old")

    def broken() -> Iterator[bytes]:
        yield b"x" * (6 * MIB)
        raise OSError("the state file went away")

    with pytest.raises(OSError):
        store.publish_page("simple/index.html", broken())
    assert store.read("simple/index.html") == b"old"
    pending = raw.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get("Uploads", [])
    assert pending == []


def test_part_size_grows_so_no_object_needs_more_than_ten_thousand_parts() -> None:
    assert s3store.part_size(10 * MIB) == s3store.PART_BYTES
    assert s3store.part_size(500 * 1024**3) * s3store.MAX_PARTS >= 500 * 1024**3
    assert s3store.part_size(500 * 1024**3) % MIB == 0


def test_keys_are_joined_below_the_prefix_whatever_its_slashes(make_s3_store: MakeStore, raw: Any) -> None:
    base = f"test-{uuid.uuid4().hex[:12]}"
    store = make_s3_store(prefix=f"/{base}/pypi/")
    store.publish_page("simple/index.html", b"x")
    assert raw.head_object(Bucket=store.bucket, Key=f"{base}/pypi/simple/index.html")["ContentLength"] == 1
    assert list(store.iterate("")) == ["simple/index.html"]
    assert store.description().startswith(f"s3://{store.bucket}/{base}/pypi")


def test_a_store_is_made_from_the_configured_s3_settings(seaweed: Seaweed, tmp_path: Path, raw: Any) -> None:
    from bandersnatch.store.s3settings import S3Settings

    base = f"test-{uuid.uuid4().hex[:12]}"
    settings = S3Settings(bucket=seaweed.bucket, endpoint_url=seaweed.endpoint, prefix=base,
                          region_name="us-east-1", aws_access_key_id=seaweed.access_key,
                          aws_secret_access_key=seaweed.secret_key, signature_version="s3v4",
                          extra_args=(("CacheControl", "max-age=600"),))
    store = s3store.S3Store.from_settings(settings, tmp_path, workers=3, timeout=10.0)
    store.publish_page("simple/index.html", b"x")
    head = raw.head_object(Bucket=seaweed.bucket, Key=f"{base}/simple/index.html")
    assert head["CacheControl"] == "max-age=600"  # 8.x's config_param_* reach every PUT


def test_an_unsafe_prefix_is_refused(make_s3_store: MakeStore) -> None:
    with pytest.raises(UnsafePath):
        make_s3_store(prefix="a/../b")


def test_wrong_credentials_are_one_storage_error_naming_the_key_id_not_the_secret(
        make_s3_store: MakeStore) -> None:
    with pytest.raises(StorageError) as info:
        make_s3_store(credentials=("WRONGKEYID", "wrong-secret-value"))
    message = str(info.value)
    assert "WRONGKEYID" in message and "wrong-secret-value" not in message and "\n" not in message
    assert "aws_access_key_id" in message


def test_a_wrong_secret_for_a_known_key_id_is_refused_too(make_s3_store: MakeStore, seaweed: Seaweed) -> None:
    with pytest.raises(StorageError) as info:
        make_s3_store(credentials=(seaweed.access_key, "not-the-secret"))
    assert seaweed.access_key in str(info.value) and "not-the-secret" not in str(info.value)


def test_a_missing_bucket_is_one_storage_error_naming_it(make_s3_store: MakeStore) -> None:
    with pytest.raises(StorageError) as info:
        make_s3_store(bucket="no-such-bucket-here")
    assert "no bucket no-such-bucket-here" in str(info.value) and "\n" not in str(info.value)


def test_an_endpoint_that_is_gone_is_one_storage_error_for_every_call(make_s3_store: MakeStore) -> None:
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(StorageError) as info:
        make_s3_store(endpoint_url=dead, attempts=1)
    assert f"S3 endpoint {dead} is unreachable" in str(info.value) and "\n" not in str(info.value)
    store = make_s3_store(endpoint_url=dead, attempts=1, check=False)
    calls: list[Callable[[], object]] = [
        lambda: store.publish_page("simple/index.html", b"x"), lambda: store.read("last-modified"),
        lambda: store.stat("last-modified"), lambda: store.delete("last-modified"),
        lambda: list(store.iterate("simple/")),
    ]
    for call in calls:
        with pytest.raises(StorageError, match="unreachable"):
            call()


def test_requests_carry_a_user_agent_naming_bandersnatch_and_the_pool_fits_the_workers(
        make_s3_store: MakeStore) -> None:
    store = make_s3_store(workers=40)
    seen: list[str] = []
    lock = threading.Lock()

    def record(request: Any, **_: Any) -> None:
        with lock:
            seen.append(_header(request, "User-Agent"))

    store.client.meta.events.register("before-send.s3", record)
    store.stat("last-modified")
    assert seen and all("bandersnatch/" in agent for agent in seen)
    assert store.client.meta.config.max_pool_connections >= 40


def test_anonymous_clients_can_read_objects_but_not_list_or_write(store: Any, seaweed: Seaweed) -> None:
    store.publish_page("simple/foo/index.v1_json", b'{"name": "foo"}')
    base = f"{seaweed.endpoint}/{seaweed.bucket}"
    answer = requests.get(f"{base}/{store.object_key('simple/foo/index.v1_json')}", timeout=10)
    assert answer.status_code == 200 and answer.content == b'{"name": "foo"}'
    assert answer.headers["Content-Type"] == "application/vnd.pypi.simple.v1+json"
    head = requests.head(f"{base}/{store.object_key('simple/foo/index.v1_json')}", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == "15"
    assert requests.get(f"{base}/?list-type=2", timeout=10).status_code == 403
    assert requests.put(f"{base}/{store.prefix}/evil", data=b"x", timeout=10).status_code == 403
    assert store.stat("evil") is None


# ---------------------------------------------------------------- the recorded store (an S3 mirror's)


def test_the_recorded_store_answers_pages_from_its_record_and_the_rest_from_the_bucket(
        make_s3_store: MakeStore, tmp_path: Path) -> None:
    """The difference from the other stores that the contract allows: what the mirror reads back of its
    pages is what it published, even when the bucket was changed behind it (verify asks the bucket)."""
    bucket = make_s3_store()
    store = RecordedStore(bucket, FilesystemStore(tmp_path / RECORD_DIR, tmp_path / "staging"))
    for key in ("simple/foo/index.html", "packages/ab/foo.whl"):
        published = store.publish_page(key, b"published")
        bucket.publish_page(key, b"changed behind the store")
        assert store.clients_store() is bucket and bucket.read(key) == b"changed behind the store"
        if key.startswith("simple/"):
            assert store.read(key) == b"published"
            assert store.stat(key) == published  # the record's stat, as publish_page gave it
            assert store.delete(key) == published
        else:
            assert store.read(key) == b"changed behind the store"
            assert store.stat(key) == bucket.stat(key)
    assert store.remote_url() == bucket.remote_url() == f"s3://{bucket.bucket}/{bucket.prefix}"
    assert store.local_path("simple/foo/index.html") is None  # the record is a copy, not what is served
