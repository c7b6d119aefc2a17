"""Where the mirror is published: ``[mirror] storage-backend`` and the ``[s3]`` section, checked.

Pure: raw values in, ``S3Settings`` out, a ConfigError naming the option for
each bad or missing value.  Nothing here needs boto3; ``config.load`` checks
that it is installed when the backend is s3.

The option names are bandersnatch 8's, so its ``[s3]`` sections keep working,
with one difference: 8.x took the bucket and prefix from ``[mirror]
directory = /bucket/prefix`` and wrote below ``prefix/web/``.  Here
``directory`` stays the local directory of the mirror's bookkeeping, and
``[s3] bucket`` and ``prefix`` say where the published objects go (set
``prefix = <8.x prefix>/web`` to keep 8.x's object names).
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from collections.abc import Mapping
from enum import Enum

from ..errors import ConfigError, Problems, UnsafePath
from ..formats.segment import check_segment
from ..store.s3settings import S3Settings
from .values import MIRROR

S3 = "s3"  # the section's name, and the backend's


class StorageBackend(str, Enum):
    """``[mirror] storage-backend``: a str, so comparisons and messages read as the config value."""

    FILESYSTEM = "filesystem"
    S3 = "s3"

    def __str__(self) -> str:
        return self.value


FILESYSTEM = StorageBackend.FILESYSTEM

S3_OPTIONS = ("endpoint_url", "bucket", "prefix", "region_name", "aws_access_key_id",
              "aws_secret_access_key", "signature_version")
"""The ``[s3]`` options besides bandersnatch 8's ``config_param_<Name>`` ones."""

CONFIG_PARAM = "config_param_"
# 8.x handed config_param_<Name> = value to boto3's calls.  These are the ones that mean something
# for a PUT (configparser lower-cases option names, so boto3's spelling is kept here).
CONFIG_PARAMS = {name.lower(): name for name in
                 ("ServerSideEncryption", "SSEKMSKeyId", "StorageClass", "ACL", "CacheControl")}
SIGNATURE_VERSIONS = ("s3v4", "s3")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,253}[a-z0-9]$", re.IGNORECASE)
_TOKEN = re.compile(r"^[A-Za-z0-9._:/+=-]+$")


def parse_backend(raw: str | None, where: str) -> StorageBackend:
    """``[mirror] storage-backend``: filesystem (the default) or s3."""
    backend = (raw or FILESYSTEM).lower()
    if backend == "swift":
        raise ConfigError(where, MIRROR, "storage-backend",
                          "swift is not supported: use filesystem or s3 (Swift speaks S3 through its s3api)")
    try:
        return StorageBackend(backend)
    except ValueError:
        raise ConfigError(where, MIRROR, "storage-backend",
                          f"{raw!r} is not a storage backend; use filesystem or s3") from None


def parse_s3(values: Mapping[str, str], where: str) -> S3Settings:
    """The ``[s3]`` section's raw values (empty when it is absent) checked into S3Settings."""
    problems = Problems()

    def bad(option: str, why: str) -> None:
        problems.add(ConfigError(where, S3, option, why))

    for option in values:
        if option not in S3_OPTIONS and not option.startswith(CONFIG_PARAM):
            close = [known for known in S3_OPTIONS if _similar(option, known)]
            bad(option, "unknown option" + (f"; did you mean {close[0]}?" if close else
                                            "; known: " + ", ".join(S3_OPTIONS)))
    take = problems.take
    bucket = take(_bucket, values.get("bucket"), where, fallback="")
    key_id = _optional(values.get("aws_access_key_id"))
    secret = _optional(values.get("aws_secret_access_key"))
    if (key_id is None) != (secret is None):
        given, missing = ("aws_access_key_id", "aws_secret_access_key") if key_id else (
            "aws_secret_access_key", "aws_access_key_id")
        bad(missing, f"missing while {given} is set: give both, or neither to use the AWS environment "
                     "variables and credential files")
    if key_id is not None and not _TOKEN.match(key_id):
        bad("aws_access_key_id", "contains a space or a character no access key id has")
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=take(_endpoint, values.get("endpoint_url"), where, fallback=None),
        prefix=take(_prefix, values.get("prefix"), where, fallback=""),
        region_name=take(_region, values.get("region_name"), where, fallback=None),
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        signature_version=take(_signature, values.get("signature_version"), where, fallback=None),
        extra_args=take(_extra_args, values, where, fallback=()),
    )
    problems.raise_any()
    return settings


def _optional(raw: str | None) -> str | None:
    return raw if raw else None


def _similar(option: str, known: str) -> bool:
    return difflib.SequenceMatcher(None, option.replace("-", "_"), known).ratio() >= 0.75


def _bucket(raw: str | None, where: str) -> str:
    if not raw:
        raise ConfigError(where, S3, "bucket", "missing: name the bucket the mirror is published to "
                          "(bandersnatch 8 took it from [mirror] directory = /bucket/prefix; here directory "
                          "stays local and [s3] bucket and prefix say where objects go)")
    if raw.lower().startswith(("s3://", "http://", "https://")) or "/" in raw:
        raise ConfigError(where, S3, "bucket", f"{raw!r}: give the bucket's name only; the path below it "
                          "goes in prefix and the server in endpoint_url")
    if not _BUCKET.match(raw):
        raise ConfigError(where, S3, "bucket", f"{raw!r} is not a bucket name (3 to 255 letters, digits, "
                          "dots, hyphens or underscores, starting and ending with a letter or digit)")
    return raw


def _endpoint(raw: str | None, where: str) -> str | None:
    if not raw:
        return None

    def bad(why: str) -> ConfigError:
        return ConfigError(where, S3, "endpoint_url", f"{raw!r} {why}")

    if any(c.isspace() or ord(c) < 32 for c in raw):
        raise bad("contains whitespace")
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad("is not an http(s) URL such as https://s3.example.org or http://127.0.0.1:8333")
    if "@" in parts.netloc:
        raise bad("contains credentials; put them in aws_access_key_id and aws_secret_access_key")
    if parts.query or parts.fragment:
        raise bad("has a query string or fragment; give the server's base URL")
    try:
        parts.port  # noqa: B018 - urllib only validates the port when it is read
    except ValueError:
        raise bad("has an invalid port") from None
    return raw.rstrip("/")


def _prefix(raw: str | None, where: str) -> str:
    stripped = (raw or "").strip().strip("/")
    if not stripped:
        return ""
    try:
        return "/".join(check_segment(segment) for segment in stripped.split("/"))
    except UnsafePath as exc:
        raise ConfigError(where, S3, "prefix", f"{raw!r}: {exc}") from None


def _region(raw: str | None, where: str) -> str | None:
    if not raw:
        return None  # 8.x: "can be empty if IAM are set"
    if not re.fullmatch(r"[a-z0-9-]{1,64}", raw, re.IGNORECASE):
        raise ConfigError(where, S3, "region_name", f"{raw!r} is not a region name such as us-east-1")
    return raw


def _signature(raw: str | None, where: str) -> str | None:
    if not raw:
        return None
    if raw.lower() not in SIGNATURE_VERSIONS:
        raise ConfigError(where, S3, "signature_version",
                          f"{raw!r} is not one of {', '.join(SIGNATURE_VERSIONS)}")
    return raw.lower()


def _extra_args(values: Mapping[str, str], where: str) -> tuple[tuple[str, str], ...]:
    problems = Problems()
    found: list[tuple[str, str]] = []
    for option, value in values.items():
        if not option.startswith(CONFIG_PARAM):
            continue
        name = CONFIG_PARAMS.get(option[len(CONFIG_PARAM):])
        if name is None:
            problems.add(ConfigError(where, S3, option, "not supported; bandersnatch 8's config_param_ "
                                     "options known here: " + ", ".join(
                                         CONFIG_PARAM + n for n in CONFIG_PARAMS.values())))
        elif not value:
            problems.add(ConfigError(where, S3, option, "is empty"))
        else:
            found.append((name, value))
    problems.raise_any()
    return tuple(sorted(found))
