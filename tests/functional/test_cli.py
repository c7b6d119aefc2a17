"""The command line: exit codes and one-line errors an operator can act on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import write_config

from bandersnatch import __version__, cli
from bandersnatch.config import settings as config


def bandersnatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bandersnatch", *args],
                          capture_output=True, text=True, timeout=60)


def test_version_is_printed() -> None:
    result = bandersnatch("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"bandersnatch {__version__}"


def test_version_sorts_above_every_bandersnatch_on_pypi() -> None:
    """Else ``pip install -U bandersnatch`` would replace this code with bandersnatch 8."""
    from packaging.version import Version

    assert Version(__version__) > Version("8.2.0")  # the newest release on PyPI when this was written
    assert Version(__version__) >= Version("10.0.0.dev0")  # leaves 9.x to upstream


def test_missing_config_is_written_with_defaults_and_the_run_stops(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "bandersnatch.conf"
    result = bandersnatch("-c", str(path), "mirror")
    assert result.returncode == 2
    assert path.read_text() == config.default_config_text()
    (line,) = result.stderr.strip().splitlines()
    assert str(path) in line and "Set [mirror] directory" in line and "review" in line
    assert " WARNING: " in line and "ERROR" not in line  # guidance for a first run, not a failure


@pytest.mark.parametrize("command", [["status"], ["status", "--offline"], ["verify"], ["update-stats"],
                                     ["mirror", "--dry-run"]])
def test_a_missing_config_for_a_command_other_than_mirror_is_exit_2_naming_it_and_writes_nothing(
        tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "etc" / "bandersnach.conf"  # a typo'd -c
    result = bandersnatch("-c", str(path), *command)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}: no such file" in line and "-c" in line and "ERROR" in line
    shown = "mirror --dry-run" if "--dry-run" in command else command[0]
    assert f"; {shown} reads the mirror's configuration" in line
    assert not path.exists() and not path.parent.exists()


def test_an_unedited_default_config_starts_no_sync(tmp_path: Path) -> None:
    path = tmp_path / "bandersnatch.conf"
    assert bandersnatch("-c", str(path), "mirror").returncode == 2
    result = bandersnatch("-c", str(path), "mirror")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "[mirror] directory: missing" in line
    assert "\n# directory = /srv/pypi\n" in path.read_text()


@pytest.mark.parametrize("args", [
    ["mirror", "-c", "{path}"],
    ["mirror", "--config", "{path}", "--force-check"],
    ["-q", "update-stats", "-c", "{path}"],
])
def test_config_may_follow_the_command(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "b.conf"
    path.write_text("[mirror]\ndirectory = {}\nwokers = 3\n".format(tmp_path / "m"))
    result = bandersnatch(*(a.format(path=path) for a in args))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(path) in line and "wokers" in line


def test_a_config_after_the_command_wins_over_one_before_it(tmp_path: Path) -> None:
    path = tmp_path / "b.conf"
    path.write_text("[mirror]\ndirectory = {}\nwokers = 3\n".format(tmp_path / "m"))
    result = bandersnatch("-c", str(tmp_path / "other.conf"), "mirror", "-c", str(path))
    assert result.returncode == 2 and str(path) in result.stderr
    assert not (tmp_path / "other.conf").exists()


@pytest.mark.parametrize("command", [[], ["mirror"], ["update-stats"]],
                         ids=["main", "mirror", "update-stats"])
def test_every_command_has_help_text(command: list[str]) -> None:
    result = bandersnatch(*command, "--help")
    assert result.returncode == 0
    assert "--config" in result.stdout
    described = {"main": "PyPI mirror client", "mirror": "Bring the mirror up to date",
                 "update-stats": "Count downloads per file"}
    assert described[command[0] if command else "main"] in result.stdout


def test_mirror_help_names_allow_mass_removal_and_the_exit_codes() -> None:
    result = bandersnatch("mirror", "--help")
    assert "--allow-mass-removal" in result.stdout and "3 another run holds the lock" in result.stdout


def test_a_held_lock_is_one_info_line_and_exit_3(tmp_path: Path) -> None:
    import filelock

    path = tmp_path / "b.conf"
    path.write_text(VALID.format(dir=tmp_path / "m"))
    (tmp_path / "m").mkdir()
    with filelock.FileLock(str(tmp_path / "m" / ".lock")):
        result = bandersnatch("-c", str(path), "mirror")
        quiet = bandersnatch("-q", "-c", str(path), "mirror")
    assert result.returncode == quiet.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert " INFO: " in line and "holds" in line  # cron every few minutes must not log errors
    assert quiet.stderr == ""


VALID = "[mirror]\ndirectory = {dir}\nmaster = https://pypi.org\n"
INVALID = [
    ("[mirror]\ndirectory = {dir}\nwokers = 3\n", "wokers"),
    ("[mirror]\ndirectory = {dir}\nworkers = many\n", "workers"),
    ("[mirror]\ndirectory = {dir}\nworkers = 0\n", "workers"),
    ("[mirror]\ndirectory = {dir}\nworkers = 51\n", "workers"),
    ("[mirror]\ndirectory = {dir}\nmaster = ftp://pypi.org\n", "master"),
    ("[mirror]\ndirectory = {dir}\nmaster = not a url\n", "master"),
    ("[mirror]\ndirectory = {dir}\nmaster = http://pypi.org\n", "master"),
    ("[mirror]\ndirectory = {dir}\ntimeout = -1\n", "timeout"),
    ("[mirror]\ndirectory = {dir}\nstop-on-error = perhaps\n", "stop-on-error"),
    ("[mirror]\ndirectory = {conf}/mirror\n", "directory"),  # below a regular file
    ("[mirror]\n", "directory"),
]


@pytest.mark.parametrize(("text", "option"), INVALID)
def test_invalid_config_is_one_line_naming_file_section_and_option_exit_2(
    tmp_path: Path, text: str, option: str
) -> None:
    path = tmp_path / "b.conf"
    path.write_text(text.format(dir=tmp_path / "mirror", conf=path))
    result = bandersnatch("-c", str(path), "mirror")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and "[mirror]" in lines[0] and option in lines[0]
    assert not (tmp_path / "mirror").exists()


SECRET = "root:$6$hunter2hash:19000:0:99999:7:::"


@pytest.mark.parametrize("option", ["requirements", "log-config"])
def test_a_config_error_never_quotes_a_file_the_config_points_at(tmp_path: Path, option: str) -> None:
    """``requirements_path = /etc`` once printed a line of /etc/shadow: other files are named, not shown."""
    shadow = tmp_path / "shadow"
    shadow.write_text(SECRET + "\n")
    text = f"[mirror]\ndirectory = {tmp_path / 'm'}\n"
    if option == "log-config":
        text += f"log-config = {shadow}\n"
    else:
        text += (f"[plugins]\nenabled = project_requirements\n[allowlist]\nrequirements_path = {tmp_path}\n"
                 "requirements = shadow\n")
    path = tmp_path / "b.conf"
    path.write_text(text)
    result = bandersnatch("-c", str(path), "mirror")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(shadow) in line and "line 1" in line
    assert "hunter2" not in result.stderr and "root:" not in result.stderr


def test_a_config_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    result = bandersnatch("-c", str(tmp_path), "mirror")
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    assert bandersnatch("frobnicate").returncode == 2


def test_quiet_run_against_an_unreachable_master_is_one_error_line_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "b.conf"
    # Port 9 on loopback: connection refused at once, no traffic leaves the machine.
    path.write_text(VALID.format(dir=tmp_path / "m").replace(
        "https://pypi.org", "http://127.0.0.1:9") + "allow-non-https = true\ntimeout = 2\n")
    result = subprocess.run([sys.executable, "-m", "bandersnatch", "-q", "-c", str(path), "mirror"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "XML-RPC" in result.stderr and "Traceback" not in result.stderr


def test_exit_codes_are_distinct() -> None:
    codes = [cli.EXIT_OK, cli.EXIT_INCOMPLETE, cli.EXIT_CONFIG, cli.EXIT_LOCKED, cli.EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes)


def test_config_warnings_are_shown_by_mirror_once_per_change_and_never_by_status(
        tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    """cron mails a run's output: the same 8.x option warning on every run is mail that never stops."""
    upstream.add_sdist("one", "1.0")
    mirror = write_config(tmp_path, upstream.url, verifiers="8")

    def warnings_of(*args: str) -> list[str]:
        caplog.clear()
        assert cli.main(["-c", str(mirror.config), *args]) in (0, 1)
        return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    first = warnings_of("mirror")
    assert len(first) == 1 and "[mirror] verifiers" in first[0]
    assert warnings_of("mirror") == []
    assert warnings_of("-q", "status", "--offline") == []
    assert warnings_of("status", "--offline") == []
    # A change: the new set is shown, once.
    mirror = write_config(tmp_path, upstream.url, verifiers="8", compare_method="stat")
    assert sorted(w.split(": ")[1] for w in warnings_of("mirror")) == [
        "[mirror] compare-method", "[mirror] verifiers"]
    assert warnings_of("mirror") == []
    mirror = write_config(tmp_path, upstream.url)  # none left: nothing said, the record goes
    assert warnings_of("mirror") == []
    mirror = write_config(tmp_path, upstream.url, verifiers="8")  # and the old one is news again
    assert len(warnings_of("mirror")) == 1


def test_boto3_finding_credentials_is_not_in_our_log(tmp_path: Path) -> None:
    """botocore logs "Found credentials in environment variables." at info whenever a client is made."""
    code = ("from bandersnatch import cli; cli.setup_logging(False, False)\n"
            "import boto3\n"
            "boto3.session.Session().client('s3', endpoint_url='http://127.0.0.1:9',\n"
            "                               region_name='us-east-1')\n"
            "import logging; logging.getLogger('bandersnatch').info('ours still shows')\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "example-secret", "PYTHONPATH": str(Path(cli.__file__).parent.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "ours still shows" in result.stderr and "credentials" not in result.stderr
