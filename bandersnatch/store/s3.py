"""The mirror published to an S3-compatible bucket (AWS S3, SeaweedFS, Ceph RGW, MinIO).

One implementation of ``store.Store``.  An object appears whole because S3
makes it so: a single PUT, or a multipart upload that becomes visible only
when it is completed.  Bytes are staged locally first (``upload``), so a
release file is downloaded and hashed before anything is sent.

This module is imported only when ``storage-backend = s3``: boto3 is an
optional dependency (``pip install bandersnatch[s3]``), and config.load
refuses the backend in one line when it is missing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
import botocore.config
import botocore.exceptions

from .. import __version__
from ..errors import StorageError, StoreRefused, StoreUnreachable, UnsafePath, shown
from ..formats.segment import check_segment
from .protocol import ObjectStat, content_type
from .s3settings import S3Settings

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB  # S3: every part but the last is at least 5 MiB
MAX_PARTS = 10_000  # S3: at most 10,000 parts per upload
PART_BYTES = 16 * MIB  # one part in memory per worker; objects up to this size go up in one PUT
# A staged file above this size is streamed from disk by its PUT: botocore then sends
# "Expect: 100-continue" and waits for the server's go-ahead, a round trip worth paying
# only where holding the file in memory is not.
STREAM_FROM = 1 * MIB
MAX_KEY_BYTES = 1024  # S3's limit on an object key, prefix included
ATTEMPTS = 4  # each request, first try included (botocore's "standard" retry mode, bounded)

_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
                     "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ProxyConnectionError)


def part_size(size: int, least: int = PART_BYTES) -> int:
    """The part size for ``size`` bytes: ``least``, or more to stay within MAX_PARTS parts."""
    needed = -(-size // MAX_PARTS)
    return max(least, -(-needed // MIB) * MIB)


class S3Store:
    """The published side of a mirror in ``bucket`` (below ``prefix``), reached at ``endpoint_url``.

    ``credentials`` is (key id, secret), or None for boto3's own chain (the
    AWS_* environment variables, ~/.aws/credentials, an instance role).
    ``staging`` is a local directory for uploads being written; ``workers`` sizes
    the connection pool so every worker thread has a connection.  Creating the
    store asks the bucket once (HEAD), so a wrong endpoint, credentials or
    bucket name is one StorageError before the run does anything.
    """

    def __init__(self, *, bucket: str, staging: Path, endpoint_url: str | None = None, prefix: str = "",
                 region: str | None = None, credentials: tuple[str, str] | None = None,
                 workers: int = 1, timeout: float = 60.0, signature_version: str | None = None,
                 extra_args: Mapping[str, str] | None = None, attempts: int = ATTEMPTS,
                 part_bytes: int = PART_BYTES, check: bool = True) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes {part_bytes} is below S3's minimum of {MIN_PART_BYTES}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = "/".join(check_segment(s) for s in prefix.strip("/").split("/")) if prefix.strip("/") \
            else ""
        self.staging = staging
        self.extra_args = dict(extra_args or {})
        self.part_bytes = part_bytes
        settings = botocore.config.Config(
            # A connection for every thread that may call at once: a sync publishes files from its
            # 2 x workers download threads and pages from its workers project threads, the root
            # index from the main one.  With fewer, urllib3 opens a connection past the full pool
            # for each call and closes it after (a TCP, and on AWS a TLS, handshake per object).
            max_pool_connections=max(10, 3 * workers + 1),
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
            user_agent_extra=f"bandersnatch/{__version__}",
            signature_version=signature_version,
            # Path-style works on every S3-compatible server; virtual hosts need DNS for each bucket.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # Servers other than AWS (older Ceph, MinIO, SeaweedFS) may not take the CRC trailers
            # botocore sends by default since 1.36; S3 needs no checksum beyond what TLS/SigV4 give.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=credentials[0] if credentials else None,
            aws_secret_access_key=credentials[1] if credentials else None,
            region_name=region,
        )
        found = session.get_credentials()
        self.key_id = found.access_key if found is not None else None
        self.client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=settings)
        if check:
            self.check()

    @classmethod
    def from_settings(cls, settings: S3Settings, staging: Path, workers: int, timeout: float) -> S3Store:
        """The store a configuration's ``[s3]`` section describes (asks the bucket once, see ``check``)."""
        return cls(bucket=settings.bucket, staging=staging, endpoint_url=settings.endpoint_url,
                   prefix=settings.prefix, region=settings.region_name, credentials=settings.credentials,
                   workers=workers, timeout=timeout, signature_version=settings.signature_version,
                   extra_args=dict(settings.extra_args))

    def description(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def check(self) -> None:
        """One HEAD on the bucket: a missing bucket, refused credentials or a dead endpoint fail now.

        Needed besides the errors of later calls because S3 answers HEAD of an
        object in a missing bucket with a bare 404, which would read as "no object".
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - every botocore failure becomes one operator line
            raise self._failure(exc, "reaching the bucket", "", bucket_check=True) from None

    # ------------------------------------------------------------ keys

    def object_key(self, key: str) -> str:
        """The bucket key of store key ``key``: each segment checked, joined below the prefix."""
        if not key:
            raise UnsafePath("refusing an empty key")
        joined = "/".join(check_segment(segment) for segment in key.split("/"))
        full = f"{self.prefix}/{joined}" if self.prefix else joined
        if len(full.encode("utf-8")) > MAX_KEY_BYTES:
            raise UnsafePath(f"refusing a key of {len(full.encode('utf-8'))} bytes: "
                             f"S3's limit is {MAX_KEY_BYTES}")
        return full

    # ------------------------------------------------------------ capabilities

    def local_path(self, key: str) -> None:
        """No object is a local file (the key is still checked, as by every call)."""
        self.object_key(key)
        return None

    def remote_url(self) -> str:
        """``s3://bucket/prefix``: where the diff-file lists keys."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def clients_store(self) -> S3Store:
        return self

    # ------------------------------------------------------------ writing

    @contextmanager
    def upload(self, key: str) -> Iterator[_Upload]:
        """A local temporary file for ``key``; ``commit()`` sends it, leaving without it discards it."""
        self.object_key(key)  # refuse a bad key before anything is written
        fd, name = tempfile.mkstemp(dir=self.staging, prefix=".s3-upload-")
        file = os.fdopen(fd, "w+b")
        try:
            yield _Upload(self, key, file)
        finally:
            file.close()
            os.unlink(name)

    def publish_page(self, key: str, data: bytes | Iterable[bytes]) -> ObjectStat:
        """Replace ``key`` with ``data``: one PUT when it fits one part, else a multipart upload, streamed."""
        return self._send(key, [data] if isinstance(data, bytes) else data, self.part_bytes)

    def _send(self, key: str, chunks: Iterable[bytes], size_of_part: int) -> ObjectStat:
        args = self._put_args(key)
        buffer = bytearray()
        multipart: _Multipart | None = None
        total = 0
        try:
            for chunk in chunks:
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= size_of_part + 1:  # keep a remainder: the last part may not be empty
                    if multipart is None:
                        multipart = _Multipart(self.client, args)
                    multipart.send(bytes(buffer[:size_of_part]))
                    del buffer[:size_of_part]
            if multipart is None:
                etag = self.client.put_object(Body=bytes(buffer), **args)["ETag"]
            else:
                multipart.send(bytes(buffer))
                etag = multipart.complete()
        except BaseException as exc:
            failure = self._given_up(exc, multipart, key)
            if failure is exc:
                raise
            raise failure from None
        return ObjectStat(total, _stamp(etag))

    def _send_file(self, key: str, file: BinaryIO, size: int) -> ObjectStat:
        """A staged file of ``size`` bytes, read from its start, with no more of it in memory than a part.

        Up to ``STREAM_FROM`` bytes it goes up as bytes read at once; above, botocore streams
        the PUT from the file itself (and rewinds it for a retry); above a part, each part is
        read and sent in turn.  ``_send`` would gather the file in a buffer and copy it twice
        more: four parts of memory per upload thread.
        """
        args = self._put_args(key)
        part = part_size(size, self.part_bytes)
        multipart: _Multipart | None = None
        try:
            if size <= part:
                body: bytes | BinaryIO = file.read() if size <= STREAM_FROM else file
                etag = self.client.put_object(Body=body, **args)["ETag"]
            else:
                multipart = _Multipart(self.client, args)
                for _ in range(-(-size // part)):
                    multipart.send(file.read(part))
                etag = multipart.complete()
        except BaseException as exc:
            failure = self._given_up(exc, multipart, key)
            if failure is exc:
                raise
            raise failure from None
        return ObjectStat(size, _stamp(etag))

    def _put_args(self, key: str) -> dict[str, Any]:
        return {"Bucket": self.bucket, "Key": self.object_key(key), "ContentType": content_type(key),
                **self.extra_args}

    def _given_up(self, exc: BaseException, multipart: _Multipart | None, key: str) -> BaseException:
        """What to raise for ``exc`` ending an upload: its parts sent so far are dropped first."""
        if multipart is not None:
            multipart.abort()
        if isinstance(exc, _S3_ERRORS):  # not a failure of whatever produced the bytes
            return self._failure(exc, "publishing", key)
        return exc

    # ------------------------------------------------------------ reading

    def read(self, key: str) -> bytes | None:
        name = self.object_key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in _MISSING:
                return None
            raise self._failure(exc, "reading", key) from None

    def open_read(self, key: str) -> _Body | None:
        name = self.object_key(key)
        try:
            return _Body(self, key, self.client.get_object(Bucket=self.bucket, Key=name)["Body"])
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in _MISSING:
                return None
            raise self._failure(exc, "reading", key) from None

    def stat(self, key: str) -> ObjectStat | None:
        name = self.object_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except Exception as exc:  # noqa: BLE001
            if _code(exc) in _MISSING:
                return None
            raise self._failure(exc, "checking", key) from None
        return ObjectStat(head["ContentLength"], _stamp(head["ETag"]))

    def delete(self, key: str) -> ObjectStat | None:
        """Remove ``key``.  S3's DELETE answers 204 whether or not the key existed, so a HEAD tells first."""
        existed = self.stat(key)
        if existed is not None:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
            except Exception as exc:  # noqa: BLE001
                raise self._failure(exc, "deleting", key) from None
        return existed

    def iterate(self, prefix: str) -> Iterator[str]:
        """Every key below the directory ``prefix``, page by page."""
        directory = prefix.removesuffix("/")
        below = self.object_key(directory) + "/" if directory else (f"{self.prefix}/" if self.prefix else "")
        cut = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=below)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][cut:]
        except Exception as exc:  # noqa: BLE001
            raise self._failure(exc, "listing", prefix) from None

    # ------------------------------------------------------------ errors

    def _failure(self, exc: BaseException, action: str, key: str, bucket_check: bool = False) -> StorageError:
        """One operator line for what botocore raised while ``action`` ``key``."""
        where = f"s3://{self.bucket}/{self.prefix}/{key}" if self.prefix else f"s3://{self.bucket}/{key}"
        endpoint = self.endpoint_url or "the AWS S3 endpoint"
        if isinstance(exc, _UNREACHABLE):
            return StoreUnreachable(f"S3 endpoint {endpoint} is unreachable ({type(exc).__name__}) while "
                                f"{action} {where}: check [s3] endpoint_url and that the server is running")
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return StoreRefused(f"no S3 credentials for {where}: set [s3] aws_access_key_id and "
                                "aws_secret_access_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        code = _code(exc)
        if code in _DENIED:
            return StoreRefused(f"S3 refused key id {shown(self.key_id or '(none)')} ({code}) while {action} "
                                f"{where}: check [s3] aws_access_key_id/aws_secret_access_key and the "
                                "bucket's policy")
        if code == "NoSuchBucket" or (bucket_check and code in _MISSING):
            return StoreRefused(f"no bucket {shown(self.bucket)} at {endpoint}: create it or fix [s3] bucket")
        if isinstance(exc, botocore.exceptions.ClientError):
            message = exc.response.get("Error", {}).get("Message", "")
            return StorageError(f"S3 answered {code} {shown(message, 120)} while {action} {where}")
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return StorageError(f"S3 failed while {action} {where}: {shown(str(exc), 160)}")
        return StorageError(f"S3 failed while {action} {where}: {type(exc).__name__}: {shown(str(exc), 160)}")


class _Upload:
    """One object staged in a local temporary file; ``commit()`` sends it (see store.Upload)."""

    def __init__(self, store: S3Store, key: str, file: BinaryIO) -> None:
        self.store = store
        self.key = key
        self.file = file

    def commit(self) -> ObjectStat:
        self.file.flush()
        size = os.fstat(self.file.fileno()).st_size
        self.file.seek(0)
        return self.store._send_file(self.key, self.file, size)


class _Body:
    """An object's response body being read (see store.Reader): botocore's errors become StorageError."""

    def __init__(self, store: S3Store, key: str, body: StreamingBody) -> None:
        self.store = store
        self.key = key
        self.body = body

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self.body.read(None if size < 0 else size)
        except Exception as exc:  # noqa: BLE001 - a connection lost mid-body, a timeout
            raise self.store._failure(exc, "reading", self.key) from None

    def close(self) -> None:
        self.body.close()


class _Multipart:
    """A multipart upload under way: parts sent in order, completed or aborted."""

    def __init__(self, client: S3Client, args: Mapping[str, Any]) -> None:
        self.client = client
        self.bucket: str = args["Bucket"]
        self.key: str = args["Key"]
        self.upload_id = client.create_multipart_upload(**args)["UploadId"]
        self.parts: list[CompletedPartTypeDef] = []

    def send(self, data: bytes) -> None:
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise StorageError(f"s3://{self.bucket}/{self.key} needs more than {MAX_PARTS} parts")
        etag = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                       PartNumber=number, Body=data)["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})

    def complete(self) -> str:
        done = self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts})
        return done["ETag"]

    def abort(self) -> None:
        """Drop the parts sent so far; a failure here is only logged (a lifecycle rule cleans up after)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not abort the multipart upload of s3://%s/%s: %s", self.bucket, self.key,
                           shown(str(exc), 160))


def _code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _stamp(etag: str) -> str:
    return etag.strip('"')

