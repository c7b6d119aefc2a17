"""The settings of an S3 store, as the store needs them (config/storage.py parses ``[s3]`` into
this record; the store does not read the configuration)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class S3Settings:
    """The validated ``[s3]`` section."""

    bucket: str
    endpoint_url: str | None = None  # None: AWS itself
    prefix: str = ""  # below which the keys go, without leading or trailing slash
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    signature_version: str | None = None
    extra_args: tuple[tuple[str, str], ...] = ()  # 8.x's config_param_*: added to every PUT

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(key id, secret) when both are set; None leaves them to boto3's chain (AWS_* variables, files)."""
        if self.aws_access_key_id and self.aws_secret_access_key:
            return self.aws_access_key_id, self.aws_secret_access_key
        return None
