"""S3 stores on the session's SeaweedFS, and a bucket filled from a filesystem mirror's ``web/``.

``upload_web`` stands in for ``bandersnatch mirror`` with ``storage-backend =
s3`` until the mirror publishes to a bucket itself: it puts every file of a
synced ``web/`` under the same key, through the store (so each object carries
``store.content_type``).  A test that uses it can switch to a real s3 run
without changing what it checks.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaweedfs import Seaweed

if TYPE_CHECKING:
    from bandersnatch.s3store import S3Store


def make_s3_store(seaweed: Seaweed, staging: Path, **overrides: Any) -> S3Store:
    """An S3Store on ``seaweed``'s bucket below a fresh ``test-...`` prefix unless ``prefix`` is given."""
    from bandersnatch.s3store import S3Store  # boto3 is the optional extra [s3]

    staging.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "bucket": seaweed.bucket, "staging": staging, "endpoint_url": seaweed.endpoint,
        "prefix": f"test-{uuid.uuid4().hex[:12]}", "region": "us-east-1",
        "credentials": (seaweed.access_key, seaweed.secret_key), "workers": 4, "timeout": 10.0,
    }
    settings.update(overrides)
    return S3Store(**settings)


def upload_web(web: Path, store: S3Store) -> list[str]:
    """Publish every file below ``web`` to ``store`` under its relative path; return the keys, sorted."""
    keys = sorted(path.relative_to(web).as_posix() for path in web.rglob("*")
                  if path.is_file() and not path.is_symlink())
    for key in keys:
        with store.upload(key) as upload, (web / key).open("rb") as source:
            while chunk := source.read(1024 * 1024):
                upload.file.write(chunk)
            upload.commit()
    return keys
