"""``download-mirror``: its URL checked as ``master``'s, where a file is asked on it, the count per host."""

from __future__ import annotations

from pathlib import Path

import pytest

from bandersnatch.config.settings import parse
from bandersnatch.errors import ConfigError, ConfigErrors
from bandersnatch.upstream.downloadmirror import GIVE_UP_AFTER, DownloadMirror, Fallback, mirror_url

CONF = Path("/etc/bandersnatch.conf")


def _config(lines: str) -> tuple[str | None, bool]:
    config = parse(f"[mirror]\ndirectory = /srv/pypi\n{lines}\n", CONF)
    return config.download_mirror, config.download_mirror_no_fallback


@pytest.mark.parametrize(("base", "file_url", "expected"), [
    # 8.2: the mirror's URL plus the path of upstream's file URL.
    ("https://m.example", "https://files.pythonhosted.org/packages/ab/cd/ef/a-1.0.tar.gz",
     "https://m.example/packages/ab/cd/ef/a-1.0.tar.gz"),
    ("https://m.example/pypi", "https://files.pythonhosted.org/packages/ab/cd/ef/a-1.0.whl",
     "https://m.example/pypi/packages/ab/cd/ef/a-1.0.whl"),
    # Escapes stay as upstream spells them; its query and fragment stay upstream's.
    ("https://m.example", "https://f.example/packages/a/b/c/a%2Bb-1.0.whl?x=1#sha256=00",
     "https://m.example/packages/a/b/c/a%2Bb-1.0.whl"),
])
def test_a_file_is_asked_at_the_same_path_below_the_download_mirror(
        base: str, file_url: str, expected: str) -> None:
    assert mirror_url(base, file_url) == expected


@pytest.mark.parametrize(("line", "expected"), [
    ("download-mirror = https://Mirror.Example/", ("https://mirror.example", False)),
    ("download-mirror = https://m.example/pypi/\ndownload-mirror-no-fallback = true",
     ("https://m.example/pypi", True)),
    ("download-mirror =", (None, False)),  # 8.2's default: unset
    ("download-mirror =\ndownload-mirror-no-fallback = true", (None, False)),  # 8.2: ignored without it
    ("download-mirror = http://m.example\nallow-non-https = true", ("http://m.example", False)),
])
def test_download_mirror_values_read_as_bandersnatch_8_reads_them(
        line: str, expected: tuple[str | None, bool]) -> None:
    assert _config(line) == expected


@pytest.mark.parametrize(("line", "says"), [
    ("download-mirror = http://m.example", "plain http"),
    ("download-mirror = ftp://m.example", "must start with https://"),
    ("download-mirror = https://user:secret@m.example", "credentials"),
    ("download-mirror = https://m.example/?a=1", "query string"),
    ("download-mirror = https://m.example:99999", "invalid port"),
    ("download-mirror = https:// m.example", "whitespace"),
    ("download-mirror = https://m.example\ndownload-mirror-no-fallback = maybe", "not a boolean"),
])
def test_a_bad_download_mirror_is_one_config_error_naming_the_option(line: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(line)
    assert "download-mirror" in str(caught.value) and says in str(caught.value)


def test_the_summary_names_the_download_mirror_first_then_upstream_hosts_and_the_fallbacks() -> None:
    source = DownloadMirror("https://m.example/", no_fallback=False)
    assert source.summary() is None
    for _ in range(3):
        source.served_by_mirror()
    source.served_by_upstream("https://files.example/packages/a/b/c/x.whl", fallback=Fallback.FAILED)
    source.served_by_upstream("https://files.example/packages/a/b/c/y.whl", fallback=None)
    assert source.summary() == "files from m.example 3, files.example 2 (1 after the download mirror failed)"
    assert source.counts() == {"m.example": 3, "files.example": 2}


def test_the_summary_words_each_fallback_by_its_cause_a_404_is_no_failure() -> None:
    source = DownloadMirror("https://m.example/", no_fallback=False)
    for cause in (Fallback.NOT_THERE, Fallback.NOT_THERE, Fallback.OTHER_BYTES, Fallback.FAILED):
        source.served_by_upstream("https://files.example/packages/a/b/c/x.whl", fallback=cause)
    assert source.summary() == ("files from files.example 4 (2 not on the download mirror, 1 with other "
                                "bytes on it, 1 after it failed)")
    only = DownloadMirror("https://m.example/", no_fallback=False)
    only.served_by_upstream("https://files.example/packages/a/b/c/x.whl", fallback=Fallback.NOT_THERE)
    assert only.summary() == "files from files.example 1 (1 not on the download mirror)"


def test_a_download_mirror_failing_file_after_file_is_given_up_for_the_run_once(
        caplog: pytest.LogCaptureFixture) -> None:
    source = DownloadMirror("https://m.example", no_fallback=False)
    for _ in range(GIVE_UP_AFTER - 1):
        source.failed("HTTP 503")
    source.answered_without_file()  # a 404 is an answer: the run of failures starts again
    for _ in range(GIVE_UP_AFTER - 1):
        source.failed("HTTP 503")
    assert not source.given_up
    source.failed("no answer")
    source.failed("no answer")
    assert source.given_up
    assert [r.getMessage() for r in caplog.records] == [
        f"download mirror m.example failed {GIVE_UP_AFTER} files in a row (last: no answer): files come "
        "from upstream for the rest of this run"]


def test_without_a_fallback_the_download_mirror_is_never_given_up() -> None:
    source = DownloadMirror("https://m.example", no_fallback=True)
    for _ in range(GIVE_UP_AFTER * 2):
        source.failed("no answer")
    assert not source.given_up


def test_a_bad_no_fallback_value_without_a_download_mirror_is_said_once() -> None:
    with pytest.raises(ConfigError) as caught:
        _config("download-mirror-no-fallback = maybe")
    assert not isinstance(caught.value, ConfigErrors)  # one problem, not the same one twice
    assert "download-mirror-no-fallback" in str(caught.value) and "not a boolean" in str(caught.value)


@pytest.mark.parametrize("line", [
    "download-mirror = https://user:s3cret@m.example",
    "download-mirror = ftp://user:s3cret@m.example",
    "master = https://user:s3cret@pypi.example.org",
    "master = https://user:s3cret@pypi.example.org/simple",
])
def test_a_url_with_a_password_is_refused_without_repeating_the_password(line: str) -> None:
    # The message goes to the log and cron's mail: it names the user, never the secret.
    with pytest.raises(ConfigError) as caught:
        _config(line)
    assert "s3cret" not in str(caught.value) and "user:***@" in str(caught.value)
