"""S3 stores on the session's SeaweedFS, and the ``[s3]`` config section of a mirror publishing there."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.seaweedfs import Seaweed

if TYPE_CHECKING:
    from bandersnatch.store.s3 import S3Store


def make_s3_store(seaweed: Seaweed, staging: Path, **overrides: Any) -> S3Store:
    """An S3Store on ``seaweed``'s bucket below a fresh ``test-...`` prefix unless ``prefix`` is given."""
    from bandersnatch.store.s3 import S3Store  # boto3 is the optional extra [s3]

    staging.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "bucket": seaweed.bucket, "staging": staging, "endpoint_url": seaweed.endpoint,
        "prefix": f"test-{uuid.uuid4().hex[:12]}", "region": "us-east-1",
        "credentials": (seaweed.access_key, seaweed.secret_key), "workers": 4, "timeout": 10.0,
    }
    settings.update(overrides)
    return S3Store(**settings)


def s3_section(server: Seaweed, prefix: str, *, secret: str | None = None) -> str:
    """The ``[s3]`` section for a mirror publishing to ``server``'s bucket below ``prefix``."""
    return (f"[s3]\nendpoint_url = {server.endpoint}\nbucket = {server.bucket}\nprefix = {prefix}\n"
            f"region_name = us-east-1\naws_access_key_id = {server.access_key}\n"
            f"aws_secret_access_key = {secret or server.secret_key}\n")
