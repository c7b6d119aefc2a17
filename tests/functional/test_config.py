"""The configuration file: what is accepted, what is refused, and how the refusal reads.

Every refusal must name the file, the section and the option, because the
operator reading a one-line cron mail has nothing else to go on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bandersnatch.config import filters as filterconfig
from bandersnatch.config import settings as config
from bandersnatch.config import storage as storeconfig
from bandersnatch.config.settings import Config, default_config_text, load, parse, write_default
from bandersnatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONF = Path("/etc/bandersnatch-test.conf")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def mirror_text(*lines: str, directory: str = "/srv/pypi") -> str:
    """A config whose [mirror] holds ``directory`` plus ``lines``."""
    return "\n".join(["[mirror]", f"directory = {directory}", *lines]) + "\n"


def refused(text: str) -> ConfigError:
    """The ConfigError ``parse`` raises for ``text`` (failing the test if it accepts it)."""
    with pytest.raises(ConfigError) as info:
        parse(text, CONF)
    return info.value


def assert_names(error: ConfigError, section: str | None, option: str | None) -> None:
    """The message starts with 'file: [section] option:' exactly as an operator will read it."""
    assert error.path == str(CONF)
    assert error.section == section
    assert error.option == option
    prefix = str(CONF)
    if section:
        prefix += f": [{section}]"
    if option:
        prefix += f" {option}"
    assert str(error).startswith(prefix + ": "), str(error)
    assert "\n" not in str(error)


# ---------------------------------------------------------------------------
# Accepted files
# ---------------------------------------------------------------------------


def test_only_directory_given_yields_every_documented_default() -> None:
    cfg = parse(mirror_text(), CONF)
    assert cfg == Config(
        path=CONF,
        directory=Path("/srv/pypi"),
        master="https://pypi.org",
        timeout=20.0,
        workers=3,
        stop_on_error=False,
        delete_packages=True,
        hash_index=False,
        allow_non_https=False,
        download_hosts=("files.pythonhosted.org",),
        max_page_bytes=64 * 1024 * 1024,
        access_log_pattern="/var/log/nginx/access.log*",
        max_file_bytes=32 * 1024**3,
        global_timeout=18000.0,
    )


def test_full_config_with_every_option_changed_round_trips_into_the_dataclass() -> None:
    text = """
# a comment
[mirror]
directory = /data/mirror/
master = http://Mirror.Example.org:8080/pypi/
timeout = 2.5
workers = 50
stop-on-error = yes
delete-packages = off
hash-index = 1
allow-non-https = TRUE
download-hosts = Files.Example.org, cdn.example.org:8443
    other.example.org
max-page-size = 512K

[statistics]
access-log-pattern = /var/log/apache2/access_%Y.log*
"""
    cfg = parse(text, CONF)
    assert cfg.path == CONF
    assert cfg.directory == Path("/data/mirror")
    assert cfg.master == "http://mirror.example.org:8080/pypi"
    assert cfg.timeout == 2.5
    assert cfg.workers == 50
    assert cfg.stop_on_error is True
    assert cfg.delete_packages is False
    assert cfg.hash_index is True
    assert cfg.allow_non_https is True
    assert cfg.download_hosts == ("files.example.org", "cdn.example.org:8443", "other.example.org")
    assert cfg.max_page_bytes == 512 * 1024
    assert cfg.access_log_pattern == "/var/log/apache2/access_%Y.log*"


def test_config_is_frozen() -> None:
    cfg = parse(mirror_text(), CONF)
    with pytest.raises(AttributeError):
        cfg.workers = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://pypi.org", "https://pypi.org"),
        ("https://pypi.org/", "https://pypi.org"),
        ("HTTPS://PyPI.org///", "https://pypi.org"),
        ("https://example.org/mirror/", "https://example.org/mirror"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_master_is_stored_without_trailing_slash_and_with_lower_case_scheme_and_host(
    raw: str, expected: str
) -> None:
    assert parse(mirror_text(f"master = {raw}"), CONF).master == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        ("files.pythonhosted.org", ("files.pythonhosted.org",)),
        ("A.example , b.example:81,,c.example", ("a.example", "b.example:81", "c.example")),
        ("a.example a.example", ("a.example",)),
        ("[::1]:8080 127.0.0.1", ("[::1]:8080", "127.0.0.1")),
    ],
)
def test_download_hosts_are_split_on_whitespace_and_commas_lower_cased_and_may_be_empty(
    raw: str, expected: tuple[str, ...]
) -> None:
    assert parse(mirror_text(f"download-hosts = {raw}"), CONF).download_hosts == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("67108864", 64 * 1024**2),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("64M", 64 * 1024**2),
        ("64MiB", 64 * 1024**2),
        ("64 MB", 64 * 1024**2),
        ("1G", 1024**3),
    ],
)
def test_max_page_size_accepts_bytes_and_binary_suffixes(raw: str, expected: int) -> None:
    assert parse(mirror_text(f"max-page-size = {raw}"), CONF).max_page_bytes == expected


@pytest.mark.parametrize(("word", "value"), [("true", True), ("On", True), ("1", True), ("NO", False)])
def test_booleans_take_configparser_words_in_any_case(word: str, value: bool) -> None:
    assert parse(mirror_text(f"hash-index = {word}"), CONF).hash_index is value


def test_max_file_size_and_global_timeout_are_read() -> None:
    cfg = parse(mirror_text("max-file-size = 1M", "global-timeout = 2.5"), CONF)
    assert (cfg.max_file_bytes, cfg.global_timeout) == (1 << 20, 2.5)


def test_timeout_and_workers_accept_their_boundaries() -> None:
    low = parse(mirror_text("timeout = 0.001", "workers = 1"), CONF)
    high = parse(mirror_text("timeout = 3600", "workers = 50"), CONF)
    assert (low.timeout, low.workers) == (0.001, 1)
    assert (high.timeout, high.workers) == (3600.0, 50)


def test_option_names_are_case_insensitive_but_values_keep_their_case() -> None:
    cfg = parse("[mirror]\nDirectory = /Srv/PyPI\n", CONF)
    assert cfg.directory == Path("/Srv/PyPI")


def test_percent_signs_are_not_interpolated() -> None:
    cfg = parse(mirror_text("[statistics]", "access-log-pattern = /var/log/%(x)s/a.log"), CONF)
    assert cfg.access_log_pattern == "/var/log/%(x)s/a.log"


def test_http_master_is_accepted_with_allow_non_https() -> None:
    cfg = parse(mirror_text("master = http://127.0.0.1:8000", "allow-non-https = true"), CONF)
    assert cfg.master == "http://127.0.0.1:8000"


# ---------------------------------------------------------------------------
# Refused values: each message names file, section and option
# ---------------------------------------------------------------------------

INVALID_VALUES = [
    # (option, raw value, a fragment of the reason)
    *[("workers", raw, "1 to 50") for raw in ["0", "51", "-1", "+3", "3.0", "three", "3_0", "", "1e1"]],
    *[("timeout", raw, "greater than 0") for raw in ["0", "-5", "abc", "nan", "inf", "3601", ""]],
    *[
        (option, raw, "not a boolean")
        for option in ["stop-on-error", "delete-packages", "hash-index", "allow-non-https"]
        for raw in ["maybe", "", "2"]
    ],
    ("master", "ftp://pypi.org", "https://"),
    ("master", "pypi.org", "https://"),
    ("master", "https://", "no host"),
    ("master", "https:///simple", "no host"),
    ("master", "https://user:secret@pypi.org", "credentials"),
    ("master", "https://token@pypi.org", "credentials"),
    ("master", "https://pypi.org/?a=1", "query"),
    ("master", "https://pypi.org?", "query"),
    ("master", "https://pypi.org/#top", "fragment"),
    ("master", "https://pypi.org:99999", "port"),
    ("master", "https://pypi.org:http", "port"),
    ("master", "", "not a URL"),
    ("master", "https://py pi.org", "not a URL"),
    ("master", "http://pypi.org", "allow-non-https"),
    ("download-hosts", "https://files.pythonhosted.org", "not a host"),
    ("download-hosts", "files.pythonhosted.org/packages", "not a host"),
    ("download-hosts", "host:0", "not a host"),
    ("download-hosts", "host:65536", "not a host"),
    ("download-hosts", "bad_host.example", "not a host"),
    ("max-page-size", "0", "greater than 0"),
    ("max-page-size", "0K", "greater than 0"),
    ("max-page-size", "-1", "greater than 0"),
    ("max-page-size", "lots", "greater than 0"),
    ("max-page-size", "64T", "greater than 0"),
    ("max-page-size", "", "greater than 0"),
    *[("max-file-size", raw, "greater than 0") for raw in ["0", "lots", "1T", ""]],
    *[("global-timeout", raw, "at most 604800") for raw in ["0", "-1", "inf", "nan", "604801", "5h", ""]],
    *[("max-removals", raw, "whole number") for raw in ["-1", "many", "1.5", ""]],
    *[("max-removals-percent", raw, "from 0 to 100") for raw in ["-1", "101", "half", "1e1", ""]],
    *[("api-method", raw, "not one of auto, xmlrpc, simple") for raw in ["json", "listing", ""]],
    ("master", "https://pypi.org/simple", "give the base URL https://pypi.org"),
    ("master", "https://pypi.org/simple/", "without /simple"),
    ("master", "https://mirror.example.org/pypi/simple", "give the base URL https://mirror.example.org/pypi"),
    ("master", "https://pypi.org/pypi", "give the base URL https://pypi.org"),
    ("master", "https://pypi.org/pypi/", "without /pypi"),
    ("root_uri", "pypi-mirror.example.org", "not an http(s) URL"),
    ("root_uri", "ftp://pypi-mirror.example.org/", "not an http(s) URL"),
    ("root_uri", "https://pypi-mirror.example.org/?x=1", "plain base URL"),
    ("root_uri", "https://user:pw@pypi-mirror.example.org/", "plain base URL"),
    ("json", "maybe", "true or false"),
]


@pytest.mark.parametrize(
    ("option", "raw", "why"), INVALID_VALUES, ids=[f"{o}={r!r}" for o, r, _ in INVALID_VALUES]
)
def test_invalid_mirror_value_is_rejected_naming_file_section_and_option(
    option: str, raw: str, why: str
) -> None:
    error = refused(mirror_text(f"{option} = {raw}"))
    assert_names(error, "mirror", option)
    assert why in str(error)


@pytest.mark.parametrize("raw", ["0", "51", "abc"])
def test_workers_outside_1_to_50_is_rejected_naming_the_option(raw: str) -> None:
    error = refused(mirror_text(f"workers = {raw}"))
    assert str(error) == f"{CONF}: [mirror] workers: {raw!r} is not a whole number from 1 to 50"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[mirror]\nworkers = 3\n", "missing"),
        ("[mirror]\ndirectory =\n", "missing"),
        ("[statistics]\n", "missing"),
        ("", "missing"),
        (mirror_text(directory="srv/pypi"), "relative"),
        (mirror_text(directory="./pypi"), "relative"),
        (mirror_text(directory="~/pypi"), "relative"),
    ],
    ids=["absent", "empty", "no-mirror-section", "empty-file", "relative", "dot-relative", "tilde"],
)
def test_directory_missing_or_relative_is_rejected(text: str, why: str) -> None:
    error = refused(text)
    assert_names(error, "mirror", "directory")
    assert why in str(error)


@pytest.mark.parametrize("raw", ["access.log", "logs/*.log", "~/access.log"])
def test_relative_access_log_pattern_is_rejected(raw: str) -> None:
    error = refused(mirror_text("[statistics]", f"access-log-pattern = {raw}"))
    assert_names(error, "statistics", "access-log-pattern")


@pytest.mark.parametrize(
    ("section_lines", "section", "option", "hint"),
    [
        (["wokers = 3"], "mirror", "wokers", "did you mean workers?"),
        (["stop_on_error = true"], "mirror", "stop_on_error", "did you mean stop-on-error?"),
        (["hashindex = true"], "mirror", "hashindex", "did you mean hash-index?"),
        (["xyzzy = 1"], "mirror", "xyzzy", "known: directory, master"),
        (["access-log-pattern = /x"], "mirror", "access-log-pattern", "belongs in [statistics]"),
        (["[statistics]", "acces-log-pattern = /x"], "statistics", "acces-log-pattern", "access-log-pattern"),
        (["[statistics]", "workers = 3"], "statistics", "workers", "belongs in [mirror]"),
    ],
)
def test_unknown_option_is_rejected_suggesting_the_closest_known_name(
    section_lines: list[str], section: str, option: str, hint: str
) -> None:
    error = refused(mirror_text(*section_lines))
    assert_names(error, section, option)
    assert "unknown option" in str(error)
    assert hint in str(error)


@pytest.mark.parametrize(
    ("header", "hint"),
    [("[mirorr]", "did you mean [mirror]?"), ("[stats]", "[statistics]"), ("[DEFAULT]", "known: [mirror]")],
)
def test_unknown_section_is_rejected_naming_it(header: str, hint: str) -> None:
    error = refused(mirror_text(header, "x = 1"))
    assert_names(error, header.strip("[]"), None)
    assert "unknown section" in str(error)
    assert hint in str(error)


def test_option_set_twice_is_rejected_naming_section_option_and_line() -> None:
    error = refused(mirror_text("workers = 3", "workers = 4"))
    assert_names(error, "mirror", "workers")
    assert "line 4" in str(error)


def test_section_given_twice_is_rejected_naming_it() -> None:
    error = refused(mirror_text("[mirror]"))
    assert_names(error, "mirror", None)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("directory = /srv/pypi\n[mirror]\n", "line 1"),
        ("[mirror]\ndirectory = /srv/pypi\nthis is not an option\n", "line 3"),
        ("[mirror\ndirectory = /srv/pypi\n", "line 1"),
    ],
    ids=["before-header", "no-equals", "broken-header"],
)
def test_syntax_error_is_reported_with_file_and_line(text: str, line: str) -> None:
    error = refused(text)
    assert str(error).startswith(f"{CONF}: ")
    assert line in str(error)
    assert "\n" not in str(error)


# ---------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    path = tmp_path / "mirror"
    path.mkdir()
    return path


def write_conf(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "bandersnatch.conf"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_validates_and_keeps_the_path(tmp_path: Path, mirror_dir: Path) -> None:
    path = write_conf(tmp_path, mirror_text("workers = 7", directory=str(mirror_dir)))
    cfg = load(path)
    assert cfg.path == path
    assert cfg.directory == mirror_dir
    assert cfg.workers == 7


def test_load_accepts_a_utf8_byte_order_mark(tmp_path: Path, mirror_dir: Path) -> None:
    path = write_conf(tmp_path, b"\xef\xbb\xbf" + mirror_text(directory=str(mirror_dir)).encode())
    assert load(path).directory == mirror_dir


def test_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "absent.conf"
    with pytest.raises(ConfigError, match="no such file") as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_directory_given_as_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory") as info:
        load(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: ")


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    # A path through a regular file cannot be read even by root.
    blocker = write_conf(tmp_path, "x")
    with pytest.raises(ConfigError, match="cannot read") as info:
        load(blocker / "bandersnatch.conf")
    assert str(info.value).startswith(f"{blocker / 'bandersnatch.conf'}: ")


def test_file_that_is_not_utf8_is_reported_with_its_line(tmp_path: Path, mirror_dir: Path) -> None:
    path = write_conf(tmp_path, mirror_text(directory=str(mirror_dir)).encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"line 3: not UTF-8 \(byte 0xe9\)") as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")


# ---------------------------------------------------------------------------
# The mirror directory on disk
# ---------------------------------------------------------------------------


def load_with_directory(tmp_path: Path, directory: Path) -> Config:
    return load(write_conf(tmp_path, mirror_text(directory=str(directory))))


def test_existing_writable_directory_is_accepted(tmp_path: Path, mirror_dir: Path) -> None:
    assert load_with_directory(tmp_path, mirror_dir).directory == mirror_dir


def test_missing_directory_with_writable_ancestor_is_accepted_and_not_created(tmp_path: Path) -> None:
    target = tmp_path / "not" / "yet" / "there"
    assert load_with_directory(tmp_path, target).directory == target
    assert not (tmp_path / "not").exists()


def test_directory_that_is_a_regular_file_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ConfigError, match="not a directory") as info:
        load_with_directory(tmp_path, target)
    assert info.value.section == "mirror"
    assert info.value.option == "directory"


def test_directory_below_a_regular_file_cannot_be_created_and_is_rejected(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=f"cannot be created: {blocker} is not a directory") as info:
        load_with_directory(tmp_path, blocker / "sub" / "mirror")
    assert (info.value.section, info.value.option) == ("mirror", "directory")


def test_directory_as_dangling_symlink_is_rejected(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="symbolic link") as info:
        load_with_directory(tmp_path, link)
    assert (info.value.section, info.value.option) == ("mirror", "directory")


@pytest.mark.skipif(IS_ROOT, reason="root ignores permission bits; os.access is simulated in the next test")
@pytest.mark.parametrize("exists", [True, False], ids=["existing", "to-be-created"])
def test_unwritable_directory_is_rejected_by_permission_bits(tmp_path: Path, exists: bool) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked if exists else locked / "mirror"
    locked.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="not writable") as info:
            load_with_directory(tmp_path, target)
    finally:
        locked.chmod(0o755)
    assert (info.value.section, info.value.option) == ("mirror", "directory")


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "to-be-created"])
def test_unwritable_directory_is_rejected_as_os_access_reports_it(
    tmp_path: Path, exists: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # os.access is what reports a read-only filesystem, even to root; simulate its answer.
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked if exists else locked / "mirror"
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(str(path)) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(ConfigError, match="not writable") as info:
        load_with_directory(tmp_path, target)
    assert (info.value.section, info.value.option) == ("mirror", "directory")
    assert str(info.value).startswith(f"{tmp_path / 'bandersnatch.conf'}: [mirror] directory: ")


# ---------------------------------------------------------------------------
# The shipped default.conf
# ---------------------------------------------------------------------------


def test_default_config_text_is_the_top_level_default_conf() -> None:
    assert default_config_text() == (REPO / "default.conf").read_text(encoding="utf-8")


def test_default_conf_parses_to_the_documented_defaults() -> None:
    text = default_config_text().replace("\n# directory = /srv/pypi\n", "\ndirectory = /srv/pypi\n")
    assert parse(text, CONF) == parse(mirror_text(directory="/srv/pypi"), CONF)


def test_default_conf_unedited_is_refused_until_a_directory_is_set() -> None:
    """An unedited rerun must not start a full sync of PyPI into a directory nobody chose."""
    error = refused(default_config_text())
    assert_names(error, "mirror", "directory")
    assert "set it" in str(error)


def test_default_conf_documents_every_option() -> None:
    text = default_config_text()
    for section, options in config.SCHEMA.items():
        # Filter sections are documented commented out: present, they would select a part of PyPI.
        commented = "# " if section in filterconfig.SCHEMA else ""
        assert f"\n{commented}[{section}]" in text, section
        for option in options:
            # directory too: it stays commented out until the operator chooses one.
            shown = "# " if option == "directory" else commented
            assert f"\n{shown}{option} =" in text, option


def test_default_conf_loads_once_its_directory_is_writable(tmp_path: Path, mirror_dir: Path) -> None:
    text = default_config_text().replace("# directory = /srv/pypi", f"directory = {mirror_dir}")
    assert load(write_conf(tmp_path, text)).directory == mirror_dir


def test_write_default_writes_the_shipped_text_creating_parents(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "sub" / "bandersnatch.conf"
    write_default(path)
    assert path.read_text(encoding="utf-8") == default_config_text()


def test_write_default_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "mine")
    with pytest.raises(ConfigError, match="already exists"):
        write_default(path)
    assert path.read_text() == "mine"


def test_write_default_failure_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = blocker / "bandersnatch.conf"
    with pytest.raises(ConfigError, match="cannot write the default configuration") as info:
        write_default(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.slow
def test_build_ships_default_conf_inside_the_package(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    build = tmp_path / "build"
    src = tmp_path / "src"
    # Build from a copy of what the build reads, so the checkout gains no debris.
    shutil.copytree(REPO / "bandersnatch", src / "bandersnatch", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "default.conf", "README.rst", "requirements.txt"):
        shutil.copy2(REPO / name, src / name)
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=120,
    )
    shipped = build / "bandersnatch" / "default.conf"
    assert shipped.read_text(encoding="utf-8") == (REPO / "default.conf").read_text(encoding="utf-8")


def test_master_ending_in_pypi_off_pypi_org_is_a_mirror_prefix_and_accepted() -> None:
    # A mirror served under /pypi (its index at /pypi/simple/, as mirrors.aliyun.com) is a base URL.
    assert parse(mirror_text("master = https://mirror.example.org/pypi"), CONF).master == (
        "https://mirror.example.org/pypi")


def test_api_method_defaults_to_auto_and_takes_bandersnatch_8_values_in_any_case() -> None:
    assert parse(mirror_text(), CONF).api_method == "auto"
    assert parse(mirror_text("api-method = Simple"), CONF).api_method == "simple"
    assert parse(mirror_text("api-method = xmlrpc"), CONF).api_method == "xmlrpc"


def test_removal_limits_default_to_100_projects_and_5_percent() -> None:
    cfg = parse(mirror_text(), CONF)
    assert (cfg.max_removals, cfg.max_removals_percent) == (100, 5.0)
    cfg = parse(mirror_text("max-removals = 0", "max-removals-percent = 100"), CONF)
    assert (cfg.max_removals, cfg.max_removals_percent) == (0, 100.0)


@pytest.mark.parametrize(
    ("line", "option"),
    [
        ("workers = 3 # more is rude", "workers"),
        ("hash-index = true\t# ext3", "hash-index"),
        ("directory = /srv/pypi  # the big disk", "directory"),
        ("[allowlist]\npackages =\n    requests  # pinned below", "packages"),
    ],
)
def test_a_value_ending_in_a_comment_is_refused_with_a_hint(line: str, option: str) -> None:
    text = mirror_text(line) if not line.startswith("directory") else f"[mirror]\n{line}\n"
    if line.startswith("["):
        text = mirror_text("[plugins]", "enabled = allowlist_project", line)
    error = refused(text)
    assert error.option == option
    assert "comments must be on a line of their own" in str(error)


def test_a_hash_inside_a_value_without_a_space_before_it_is_not_a_comment() -> None:
    cfg = parse(mirror_text("[statistics]", "access-log-pattern = /var/log/#nginx/access.log*"), CONF)
    assert cfg.access_log_pattern == "/var/log/#nginx/access.log*"


def test_readme_names_every_option_and_its_option_table_only_options_that_exist() -> None:
    readme = (REPO / "README.rst").read_text(encoding="utf-8")
    for section in ("mirror", "statistics"):
        for option in config.SCHEMA[section]:
            assert f"``{option}``" in readme, option
    table = readme.split("\nConfiguration\n", 1)[1].split("\nPartial mirrors\n", 1)[0]
    rows = re.findall(r"^``([a-z-]+)``", table, re.M)
    accepted = set(config.SCHEMA["mirror"]) | set(config.SCHEMA["statistics"])
    accepted |= {"storage-backend", *storeconfig.S3_OPTIONS}  # read by storeconfig, not the schema
    accepted |= {"release-files"}  # bandersnatch 8's, read by compat
    assert rows and set(rows) <= accepted


@pytest.mark.parametrize(("raw", "stored"), [("https://m.example.org", "https://m.example.org/"),
                                             ("https://m.example.org/pypi/", "https://m.example.org/pypi/"),
                                             ("", None)])
def test_json_api_options_are_bandersnatch_s_json_and_root_uri(raw: str, stored: str | None) -> None:
    cfg = parse(mirror_text("json = true", f"root_uri = {raw}"), CONF)
    assert (cfg.json, cfg.root_uri) == (True, stored)
    assert (parse(mirror_text(), CONF).json, parse(mirror_text(), CONF).root_uri) == (False, None)
