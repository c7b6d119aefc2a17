"""``[mirror] storage-backend`` and the ``[s3]`` section: accepted values, and one line per mistake.

bandersnatch 8's ``[s3]`` spelling is accepted as it is (region_name,
aws_access_key_id, endpoint_url, signature_version, config_param_*); its
bucket came from ``[mirror] directory``, which here stays local, so the
message for a missing bucket says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bandersnatch.config.settings import load, parse
from bandersnatch.errors import ConfigError, ConfigErrors
from bandersnatch.store.s3settings import S3Settings

CONF = Path("/etc/bandersnatch-s3.conf")


def s3_text(*lines: str, backend: str = "s3") -> str:
    head = ["[mirror]", "directory = /srv/pypi", f"storage-backend = {backend}", "[s3]"]
    return "\n".join([*head, *lines]) + "\n"


def refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, CONF)
    assert not isinstance(info.value, ConfigErrors), str(info.value)
    assert "\n" not in str(info.value)
    return info.value


def test_the_filesystem_is_the_default_backend_and_no_s3_settings_are_made() -> None:
    cfg = parse("[mirror]\ndirectory = /srv/pypi\n", CONF)
    assert (cfg.storage_backend, cfg.s3) == ("filesystem", None)


def test_a_full_s3_section_is_read_into_typed_settings() -> None:
    cfg = parse(s3_text("endpoint_url = https://s3.example.org:8333/", "bucket = pypi-mirror",
                        "prefix = /mirrors/pypi/", "region_name = eu-west-1",
                        "aws_access_key_id = AKIAEXAMPLE", "aws_secret_access_key = s3cr3t/+="), CONF)
    assert cfg.storage_backend == "s3"
    assert cfg.s3 == S3Settings(bucket="pypi-mirror", endpoint_url="https://s3.example.org:8333",
                                prefix="mirrors/pypi", region_name="eu-west-1",
                                aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="s3cr3t/+=")
    assert cfg.s3.credentials == ("AKIAEXAMPLE", "s3cr3t/+=")
    assert "s3cr3t" not in repr(cfg.s3)


def test_only_a_bucket_is_needed_and_credentials_then_come_from_the_aws_chain() -> None:
    cfg = parse(s3_text("bucket = pypi", "region_name =", "prefix ="), CONF)
    assert cfg.s3 == S3Settings(bucket="pypi") and cfg.s3.credentials is None


def test_a_bandersnatch_8_s3_section_is_accepted_with_its_own_spelling() -> None:
    """8.x's documented example, with the bucket it took from [mirror] directory moved to [s3]."""
    cfg = parse(s3_text("bucket = my-s3-bucket", "prefix = prefix/web", "region_name = us-east-1",
                        "aws_access_key_id = AKIAEXAMPLE", "aws_secret_access_key = secret",
                        "endpoint_url = http://minio.local:9000", "signature_version = s3v4",
                        "config_param_ServerSideEncryption = aws:kms", "config_param_SSEKMSKeyId = my-key"),
                CONF)
    assert cfg.s3 is not None and cfg.s3.signature_version == "s3v4"
    assert cfg.s3.extra_args == (("SSEKMSKeyId", "my-key"), ("ServerSideEncryption", "aws:kms"))
    assert cfg.warnings == ()


@pytest.mark.parametrize(("lines", "option", "says"), [
    ((), "bucket", "missing: name the bucket"),
    (("bucket = s3://pypi/mirror",), "bucket", "the bucket's name only"),
    (("bucket = pypi/mirror",), "bucket", "the bucket's name only"),
    (("bucket = a",), "bucket", "not a bucket name"),
    (("bucket = pypi", "endpoint_url = s3.example.org"), "endpoint_url", "not an http(s) URL"),
    (("bucket = pypi", "endpoint_url = https://key:secret@s3.example.org"), "endpoint_url", "credentials"),
    (("bucket = pypi", "endpoint_url = https://s3.example.org:99999"), "endpoint_url", "invalid port"),
    (("bucket = pypi", "endpoint_url = https://s3.example.org/?x=1"), "endpoint_url", "query string"),
    (("bucket = pypi", "prefix = a/../b"), "prefix", "refusing path component"),
    (("bucket = pypi", "region_name = us east"), "region_name", "not a region name"),
    (("bucket = pypi", "aws_access_key_id = AKIA"), "aws_secret_access_key",
     "missing while aws_access_key_id"),
    (("bucket = pypi", "aws_secret_access_key = x"), "aws_access_key_id",
     "missing while aws_secret_access_key"),
    (("bucket = pypi", "signature_version = v2"), "signature_version", "not one of s3v4, s3"),
    (("bucket = pypi", "config_param_Expires = 1"), "config_param_expires", "not supported"),
    (("bucket = pypi", "config_param_ACL ="), "config_param_acl", "is empty"),
    (("bucket = pypi", "endpoint = https://s3.example.org"), "endpoint", "did you mean endpoint_url?"),
])
def test_each_bad_or_missing_s3_value_is_one_line_naming_it(
        lines: tuple[str, ...], option: str, says: str) -> None:
    error = refused(s3_text(*lines))
    assert (error.path, error.section, error.option) == (str(CONF), "s3", option)
    assert says in str(error)
    assert str(error).startswith(f"{CONF}: [s3] {option}: ")


def test_the_secret_is_never_part_of_a_message() -> None:
    error = refused(s3_text("bucket = pypi", "aws_secret_access_key = hunter2-secret"))
    assert "hunter2" not in str(error)


@pytest.mark.parametrize(("value", "says"), [("tape", "not a storage backend; use filesystem or s3"),
                                              ("swift", "swift is not supported")])
def test_an_unknown_backend_is_one_line_naming_storage_backend(value: str, says: str) -> None:
    error = refused(f"[mirror]\ndirectory = /srv/pypi\nstorage-backend = {value}\n")
    assert (error.section, error.option) == ("mirror", "storage-backend") and says in str(error)


def test_the_backend_is_read_in_any_case() -> None:
    assert parse(s3_text("bucket = pypi", backend="S3"), CONF).storage_backend == "s3"


def test_an_s3_section_beside_the_filesystem_backend_is_only_warned_about() -> None:
    cfg = parse(s3_text("bucket = pypi", "nonsense = 1", backend="filesystem"), CONF)
    assert cfg.s3 is None
    assert cfg.warnings == (f"{CONF}: [s3]: ignored: the mirror is kept on the filesystem",)


def test_all_s3_mistakes_of_a_file_are_reported_by_one_parse() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse(s3_text("endpoint_url = ftp://x", "region_name = a b", "aws_access_key_id = K"), CONF)
    assert sorted(p.option or "" for p in info.value.problems) == [
        "aws_secret_access_key", "bucket", "endpoint_url", "region_name"]


def test_without_boto3_the_s3_backend_is_one_line_naming_the_extra_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "b.conf"
    path.write_text(s3_text("bucket = pypi").replace("/srv/pypi", str(tmp_path / "mirror")))
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now fails as if it were not installed
    with pytest.raises(ConfigError) as info:
        load(path)
    assert (info.value.section, info.value.option) == ("mirror", "storage-backend")
    assert "pip install bandersnatch[s3]" in str(info.value) and "\n" not in str(info.value)


def test_bandersnatch_runs_without_boto3_on_the_filesystem_backend(tmp_path: Path) -> None:
    """boto3 blocked at import: loading a filesystem config and the CLI's modules never need it."""
    path = tmp_path / "b.conf"
    path.write_text(f"[mirror]\ndirectory = {tmp_path / 'mirror'}\n")
    code = ("import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None\n"
            "from pathlib import Path\n"
            "from bandersnatch import cli\n"
            "from bandersnatch.config import settings as config, storage as storeconfig\n"
            "from bandersnatch.store import protocol as store\n"
            "from bandersnatch.sync import mirror\n"
            f"print(config.load(Path({str(path)!r})).storage_backend)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "filesystem"


def test_verify_of_an_s3_mirror_never_synced_is_one_line_exit_2_before_asking_the_bucket(
        tmp_path: Path) -> None:
    path = tmp_path / "b.conf"
    path.write_text(s3_text("bucket = pypi").replace("/srv/pypi", str(tmp_path / "mirror")))
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-c", str(path), "verify"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "[mirror] directory" in line and "no s3-pages/simple/" in line and "run mirror first" in line
