"""bandersnatch 8 configurations: accepted as they are, with one warning per option we do differently,
and every problem of a file reported by one run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import write_config

from bandersnatch import cli
from bandersnatch.config.settings import parse
from bandersnatch.errors import ConfigError, ConfigErrors

CONF = Path("/etc/bandersnatch.conf")

# The shape of bandersnatch 8's shipped default.conf, as an operator would have it after editing.
EIGHT = """\
[mirror]
; The directory where the mirror data will be stored.
directory = /srv/pypi
; Save JSON metadata into the web tree
json = false
; Download release files
release-files = true
; Cleanup legacy non PEP 503 normalized named simple directories
cleanup = false
master = https://pypi.org
timeout = 10
global-timeout = 1800
workers = 3
hash-index = false
simple-format = ALL
stop-on-error = false
storage-backend = filesystem
verifiers = 3
compare-method = hash
digest_name = sha256
keep_index_versions = 0
; log-config = /etc/bandersnatch-log.conf
; root_uri = https://example.com
diff-file = {{mirror_directory}}/mirrored-files
diff-append-epoch = true

[plugins]
enabled =
    blocklist_project

[blocklist]
packages =
    example1
    example2
"""


def test_a_bandersnatch_8_config_at_8x_defaults_is_accepted_as_it_is_without_a_warning() -> None:
    cfg = parse(EIGHT, CONF)
    assert (cfg.directory, cfg.master, cfg.timeout, cfg.global_timeout, cfg.workers) == (
        Path("/srv/pypi"), "https://pypi.org", 10.0, 1800.0, 3)
    assert (cfg.json, cfg.cleanup, cfg.hash_index, cfg.stop_on_error) == (False, False, False, False)
    assert cfg.diff_file == Path("/srv/pypi/mirrored-files") and cfg.diff_append_epoch
    assert cfg.filters.uses("blocklist_project")
    assert cfg.warnings == ()  # compare-method = hash and verifiers = 3 are 8.x's own defaults


@pytest.mark.parametrize(("line", "option", "says"), [
    ("root_uri = https://example.com", "root_uri", "relatively"),
    ("simple-format = HTML", "simple-format", "both index.html and index.v1_json"),
    ("keep_index_versions = 5", "keep_index_versions", "no page versions are kept"),
    ("keep-index-versions = 5", "keep-index-versions", "no page versions are kept"),
    ("download-mirror-no-fallback = true", "download-mirror-no-fallback", "ignored without download-mirror"),
    ("digest_name = md5", "digest_name", "sha256"),
    ("compare-method = stat", "compare-method", "size and mtime"),
    ("verifiers = 8", "verifiers", "not use"),
    ("storage-filesystem-manage-permissions = false", "storage-filesystem-manage-permissions",
     "readable by all"),
    ("delete_missing_packages = false", "delete_missing_packages", "delete-packages = false"),
])
def test_each_8x_option_done_differently_gets_exactly_one_warning_saying_what_we_do(
        line: str, option: str, says: str) -> None:
    cfg = parse(f"[mirror]\ndirectory = /srv/pypi\n{line}\n", CONF)
    assert len(cfg.warnings) == 1
    assert cfg.warnings[0].startswith(f"{CONF}: [mirror] {option}: ") and says in cfg.warnings[0]


@pytest.mark.parametrize("line", ["json = true", "cleanup = true", "release-files = true",
                                  "release-files = false",
                                  "simple-format = all", "storage-backend = filesystem",
                                  "keep_index_versions = 0", "digest_name = sha256",
                                  "log-config = /etc/bandersnatch-log.conf",
                                  "proxy = http://proxy.example.com:3128",
                                  "compare-method = hash", "verifiers = 3", "core-metadata = true",
                                  "core-metadata = false", "cleanup_todo = false", "cleanup_todo = true",
                                  "delete_missing_packages = true",
                                  "delete_missing_packages = false\ndelete-packages = false",
                                  "storage-filesystem-manage-permissions = true",
                                  "download-mirror = https://mirror.example.com",
                                  "download-mirror = https://mirror.example.com\n"
                                  "download-mirror-no-fallback = true"])
def test_8x_options_honoured_or_at_their_default_are_accepted_silently(line: str) -> None:
    assert parse(f"[mirror]\ndirectory = /srv/pypi\n{line}\n", CONF).warnings == ()


# Every [mirror] option bandersnatch 8.2.0 documents (its example.conf and defaults.conf), at 8.2's
# default, as an operator's file carries them over.
EIGHT_TWO_DEFAULTS = """\
[mirror]
directory = /srv/pypi
master = https://pypi.org
proxy =
download-mirror =
download-mirror-no-fallback = false
allow-non-https = false
json = false
release-files = true
core-metadata = true
hash-index = false
simple-format = ALL
compare-method = hash
digest_name = sha256
keep_index_versions = 0
keep-index-versions = 0
cleanup = false
cleanup_todo = false
delete_missing_packages = false
stop-on-error = false
timeout = 10
global-timeout = 1800
workers = 3
verifiers = 3
root_uri =
diff-file =
diff-append-epoch = false
log-config =
api-method = xmlrpc
storage-backend = filesystem
storage-filesystem-manage-permissions = true
"""


def test_every_documented_8_2_mirror_option_at_its_default_is_accepted_unchanged() -> None:
    cfg = parse(EIGHT_TWO_DEFAULTS, CONF)
    assert (cfg.directory, cfg.master, cfg.timeout, cfg.global_timeout, cfg.workers) == (
        Path("/srv/pypi"), "https://pypi.org", 10.0, 1800.0, 3)
    assert cfg.core_metadata and not cfg.json and cfg.diff_file is None and cfg.log_config is None
    # The one difference an operator could regret is said (once per change, see test_cli): 8.2 kept
    # serving a project upstream deleted; here delete-packages (default true) removes it.
    assert [w.split(": ")[1] for w in cfg.warnings] == ["[mirror] delete_missing_packages"]
    quiet = parse(EIGHT_TWO_DEFAULTS.replace("delete_missing_packages = false\n", ""), CONF)
    assert quiet.warnings == ()


def test_core_metadata_false_is_read_for_the_run() -> None:
    assert parse("[mirror]\ndirectory = /srv/pypi\ncore-metadata = false\n", CONF).core_metadata is False
    assert parse("[mirror]\ndirectory = /srv/pypi\n", CONF).core_metadata is True


def test_delete_missing_packages_true_with_delete_packages_false_is_refused_as_a_contradiction() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[mirror]\ndirectory = /srv/pypi\ndelete_missing_packages = true\ndelete-packages = no\n", CONF)
    assert info.value.option == "delete_missing_packages" and "contradicts" in str(info.value)


def test_an_unknown_mirror_option_lists_every_option_that_is_accepted() -> None:
    with pytest.raises(ConfigError) as info:
        parse("[mirror]\ndirectory = /srv/pypi\nzzzzqqqq = 1\n", CONF)
    known = str(info.value).split("known: ", 1)[1].split(", ")
    for option in EIGHT_TWO_DEFAULTS.splitlines()[1:]:
        assert option.split(" =", 1)[0] in known


def test_json_and_log_config_are_read_for_the_run() -> None:
    cfg = parse("[mirror]\ndirectory = /srv/pypi\njson = yes\nlog-config = /etc/log.conf\n", CONF)
    assert cfg.json is True and cfg.log_config == Path("/etc/log.conf")


@pytest.mark.parametrize(("line", "option", "says"), [
    ("storage-backend = swift", "storage-backend", "swift is not supported"),
    ("storage-backend = tape", "storage-backend", "not a storage backend; use filesystem or s3"),
    ("release-files = sometimes", "release-files", "not true, false or on-demand"),
    ("diff-file = mirrored-files", "diff-file", "relative"),
    ("diff-file = {{mirror_master}}/x", "diff-file", "only {{mirror_directory}}"),
    ("simple-format = XML", "simple-format", "not ALL, HTML or JSON"),
    ("compare-method = mtime", "compare-method", "not hash or stat"),
])
def test_8x_options_that_would_do_what_nobody_asked_are_refused_in_one_line(
        line: str, option: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(f"[mirror]\ndirectory = /srv/pypi\n{line}\n", CONF)
    assert not isinstance(info.value, ConfigErrors)
    assert (info.value.section, info.value.option) == ("mirror", option)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_a_storage_plugin_section_unused_by_the_backend_is_accepted_with_a_warning() -> None:
    cfg = parse("[mirror]\ndirectory = /srv/pypi\n[s3]\nregion_name = us-east-1\n", CONF)
    assert cfg.warnings == (f"{CONF}: [s3]: ignored: the mirror is kept on the filesystem",)


FIVE_MISTAKES = """\
[mirror]
directory = /srv/pypi
workers = many
timeout = -1
stop-on-eror = true
storage-backend = swift
master = https://pypi.org/simple
"""


def test_five_mistakes_are_all_reported_by_one_parse_each_naming_its_option() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse(FIVE_MISTAKES, CONF)
    problems = info.value.problems
    assert sorted(p.option or "" for p in problems) == [
        "master", "stop-on-eror", "storage-backend", "timeout", "workers"]
    assert all(p.path == str(CONF) and p.section == "mirror" for p in problems)
    assert "did you mean stop-on-error?" in str(info.value)


def test_five_mistakes_are_five_error_lines_and_a_last_line_from_one_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = tmp_path / "bandersnatch.conf"
    conf.write_text(FIVE_MISTAKES.replace("/srv/pypi", str(tmp_path / "mirror")))
    with caplog.at_level(logging.ERROR):
        assert cli.main(["-c", str(conf), "mirror"]) == cli.EXIT_CONFIG
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 6
    assert all(line.startswith(f"configuration error: {conf}: [mirror] ") for line in lines[:5])
    assert lines[5] == f"{conf}: 5 configuration problems; fix them all, then run again"


def test_a_syntax_error_and_an_unknown_option_are_reported_together() -> None:
    with pytest.raises(ConfigErrors) as info:
        parse("[mirror]\ndirectory = /srv/pypi\nthis line has no equals sign\nworkerz = 3\n", CONF)
    assert [(p.option, "line 3" in p.why) for p in info.value.problems] == [(None, True), ("workerz", False)]


def test_log_config_replaces_the_logging_setup(tmp_path: Path) -> None:
    log_file = tmp_path / "bandersnatch.log"
    log_conf = tmp_path / "log.conf"
    log_conf.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=file\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=INFO\nhandlers=file\n"
        f"[handler_file]\nclass=FileHandler\nlevel=INFO\nformatter=plain\nargs=({str(log_file)!r},)\n"
        "[formatter_plain]\nformat=%(levelname)s %(message)s\n")
    conf = tmp_path / "bandersnatch.conf"
    conf.write_text(f"[mirror]\ndirectory = {tmp_path / 'mirror'}\nlog-config = {log_conf}\n"
                    "compare-method = stat\n[statistics]\naccess-log-pattern = /nonexistent/access.log*\n")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        cli.main(["-c", str(conf), "update-stats"])
        for handler in root.handlers:
            handler.flush()
        # update-stats keeps the 8.x option warnings at debug (mirror shows them, once per change).
        assert "ERROR mirror directory" in log_file.read_text()
        assert "compare-method" not in log_file.read_text()
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:], root.level = saved[0], saved[1]


def test_an_unusable_log_config_is_a_configuration_error(tmp_path: Path) -> None:
    log_conf = tmp_path / "log.conf"
    log_conf.write_text("[loggers]\nkeys=root\n")
    conf = tmp_path / "bandersnatch.conf"
    conf.write_text(f"[mirror]\ndirectory = {tmp_path / 'mirror'}\nlog-config = {log_conf}\n")
    assert cli.main(["-c", str(conf), "mirror"]) == cli.EXIT_CONFIG


def advertised(web: Path) -> list[str]:
    """Every trace of PEP 658/714 metadata in the mirror's pages and JSON API copy."""
    found = []
    pages = [*web.glob("simple/*/index.html"), *web.glob("simple/*/index.v1_json"), *web.glob("pypi/*/json")]
    for page in pages:
        text = page.read_text()
        found += [f"{page}: {word}" for word in ("data-core-metadata", "data-dist-info-metadata",
                                                 '"core-metadata": {', '"core-metadata": true',
                                                 '"dist-info-metadata": {') if word in text]
    return found


def test_core_metadata_false_fetches_and_advertises_none_and_a_change_reconciles_the_pages(
        tmp_path: Path, upstream: Upstream) -> None:
    upstream.add_wheel("meta", "1.0", with_metadata=True)
    upstream.add_wheel("meta", "2.0", with_metadata=True)
    upstream.add_sdist("plain", "1.0")
    # Hostile: metadata that matches no advertised hash would fail the project if it were fetched.
    upstream.corrupt("meta", "meta-2.0-py3-none-any.whl.metadata")
    mirror = write_config(tmp_path, upstream.url, core_metadata="false", json="true")
    assert mirror.run() == 0
    assert [p.name for p in mirror.web.rglob("*.metadata")] == []
    assert advertised(mirror.web) == []
    assert not [r for r in upstream.requests if r.path.endswith(".metadata")]
    # Turned on: the next run (nothing changed upstream) writes every page again with the metadata.
    upstream.clear_faults()
    mirror = write_config(tmp_path, upstream.url, core_metadata="true", json="true")
    assert mirror.run() == 0
    assert len(list(mirror.web.rglob("*.metadata"))) == 2
    assert any("data-core-metadata" in a for a in advertised(mirror.web))
    assert mirror.run() == 0  # and then a no-op
    # Off again: the pages stop advertising it at once.
    mirror = write_config(tmp_path, upstream.url, core_metadata="false", json="true")
    assert mirror.run() == 0
    assert advertised(mirror.web) == []
