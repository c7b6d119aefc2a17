"""bandersnatch 8 configurations: accepted as they are, with one warning per option we do differently,
and every problem of a file reported by one run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bandersnatch import cli
from bandersnatch.config import parse
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


def test_a_bandersnatch_8_config_is_accepted_as_it_is_with_one_warning_per_option_done_differently() -> None:
    cfg = parse(EIGHT, CONF)
    assert (cfg.directory, cfg.master, cfg.timeout, cfg.global_timeout, cfg.workers) == (
        Path("/srv/pypi"), "https://pypi.org", 10.0, 1800.0, 3)
    assert (cfg.json, cfg.cleanup, cfg.hash_index, cfg.stop_on_error) == (False, False, False, False)
    assert cfg.diff_file == Path("/srv/pypi/mirrored-files") and cfg.diff_append_epoch
    assert cfg.filters.uses("blocklist_project")
    assert [w.split(": ")[1] for w in cfg.warnings] == ["[mirror] compare-method", "[mirror] verifiers"]
    assert all(w.startswith(f"{CONF}: [mirror] ") and "\n" not in w for w in cfg.warnings)


@pytest.mark.parametrize(("line", "option", "says"), [
    ("root_uri = https://example.com", "root_uri", "relatively"),
    ("simple-format = HTML", "simple-format", "both index.html and index.v1_json"),
    ("keep_index_versions = 5", "keep_index_versions", "no page versions are kept"),
    ("keep-index-versions = 5", "keep-index-versions", "no page versions are kept"),
    ("download-mirror = https://mirror.example.com", "download-mirror", "URLs the master's pages give"),
    ("digest_name = md5", "digest_name", "sha256"),
])
def test_each_8x_option_done_differently_gets_exactly_one_warning_saying_what_we_do(
        line: str, option: str, says: str) -> None:
    cfg = parse(f"[mirror]\ndirectory = /srv/pypi\n{line}\n", CONF)
    assert len(cfg.warnings) == 1
    assert cfg.warnings[0].startswith(f"{CONF}: [mirror] {option}: ") and says in cfg.warnings[0]


@pytest.mark.parametrize("line", ["json = true", "cleanup = true", "release-files = true",
                                  "simple-format = all", "storage-backend = filesystem",
                                  "keep_index_versions = 0", "digest_name = sha256",
                                  "log-config = /etc/bandersnatch-log.conf",
                                  "proxy = http://proxy.example.com:3128"])
def test_8x_options_honoured_or_at_their_default_are_accepted_silently(line: str) -> None:
    assert parse(f"[mirror]\ndirectory = /srv/pypi\n{line}\n", CONF).warnings == ()


def test_json_and_log_config_are_read_for_the_run() -> None:
    cfg = parse("[mirror]\ndirectory = /srv/pypi\njson = yes\nlog-config = /etc/log.conf\n", CONF)
    assert cfg.json is True and cfg.log_config == Path("/etc/log.conf")


@pytest.mark.parametrize(("line", "option", "says"), [
    ("storage-backend = swift", "storage-backend", "swift is not supported"),
    ("storage-backend = tape", "storage-backend", "not a storage backend; use filesystem or s3"),
    ("release-files = false", "release-files", "index-only mirror"),
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
        assert "WARNING " + f"{conf}: [mirror] compare-method: ignored" in log_file.read_text()
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
