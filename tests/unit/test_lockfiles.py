"""Lock files as allowlists: pylock.toml (PEP 751) and uv.lock read into pins, pure parsing first,
then ``[allowlist] lockfiles`` in the configuration (globs, warnings, the fingerprint, bad files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bandersnatch.config.settings import load
from bandersnatch.errors import ConfigError
from bandersnatch.formats.lockfiles import Locked, NotALock, parse
from bandersnatch.formats.simple import DistFile, ProjectPage
from bandersnatch.selection.policy import Selection

# Shaped as pip lock writes it (PEP 751): index entries carry sdist/wheels, others another source.
PYLOCK = """\
lock-version = "1.0"
created-by = "pip"
requires-python = ">=3.10"

[[packages]]
name = "attrs"
version = "25.1.0"
index = "https://pypi.org/simple"
sdist = { name = "attrs-25.1.0.tar.gz", url = "https://files.example/a.tar.gz", hashes = { sha256 = "aa" } }
wheels = [{ name = "attrs-25.1.0-py3-none-any.whl", url = "https://x/a.whl", hashes = { sha256 = "b" } }]

[[packages]]
name = "numpy"
version = "2.2.0"
marker = "python_version >= '3.11'"
wheels = [{ url = "https://files.example/n.whl", hashes = { sha256 = "cc" } }]

[[packages]]
name = "numpy"
version = "2.0.2"
marker = "python_version < '3.11'"
wheels = [{ url = "https://files.example/n2.whl", hashes = { sha256 = "dd" } }]

[[packages]]
name = "from-git"
version = "1.0"
vcs = { type = "git", url = "https://git.example/x.git", commit-id = "abc" }

[[packages]]
name = "local-tree"
directory = { path = "./src", editable = true }

[[packages]]
name = "an-archive"
version = "2.0"
archive = { url = "https://files.example/x.zip", hashes = { sha256 = "ee" } }

[[packages]]
name = "unversioned"
sdist = { url = "https://files.example/u.tar.gz", hashes = { sha256 = "ff" } }
"""

# Shaped as uv writes it: the project itself is virtual or editable, its locked deps from a registry.
UVLOCK = """\
version = 1
revision = 2
requires-python = ">=3.12"

[[package]]
name = "Idna"
version = "3.10"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.example/idna-3.10.tar.gz", hash = "sha256:aa", size = 1 }

[[package]]
name = "me"
version = "0.1.0"
source = { virtual = "." }

[[package]]
name = "plugin"
version = "0.2.0"
source = { editable = "plugins/plugin" }

[[package]]
name = "forked"
version = "1.1"
source = { git = "https://git.example/forked?rev=main#abc" }

[[package]]
name = "vendored"
version = "3.0"
source = { path = "vendor/vendored-3.0.whl" }

[[package]]
name = "idna"
version = "3.7"
source = { registry = "https://pypi.org/simple" }
"""


def test_a_pylock_pins_each_index_entry_and_a_name_may_appear_with_several_versions() -> None:
    lock = parse(PYLOCK)
    assert lock.kind == "pylock.toml"
    assert lock.pins == (Locked("attrs", "25.1.0"), Locked("numpy", "2.2.0"), Locked("numpy", "2.0.2"))


def test_a_pylock_entry_from_another_source_or_without_a_version_is_skipped_with_one_line_each() -> None:
    assert parse(PYLOCK).skipped == (
        "from-git: locked from vcs, not from an index",
        "local-tree: locked from directory, not from an index",
        "an-archive: locked from archive, not from an index",
        "unversioned: no version",
    )


def test_a_uv_lock_pins_registry_packages_and_skips_the_rest() -> None:
    lock = parse(UVLOCK)
    assert lock.kind == "uv.lock"
    assert lock.pins == (Locked("idna", "3.10"), Locked("idna", "3.7"))
    assert lock.skipped == (
        "me: locked from virtual, not from an index",
        "plugin: locked from editable, not from an index",
        "forked: locked from git, not from an index",
        "vendored: locked from path, not from an index",
    )


@pytest.mark.parametrize(("text", "why"), [
    ("[[packages]\nname = 'x'", "not valid TOML"),
    ("[tool.poetry]\nname = 'x'\n", "not a lock file"),
    ("lock-version = '2.0'\n", "lock-version '2.0' is not supported"),
    ("lock-version = '1.0'\npackages = 'x'\n", "packages is not an array of tables"),
    ("version = 1\npackage = [1, 2]\n", "package is not an array of tables"),
])
def test_a_file_that_is_not_a_lock_says_why(text: str, why: str) -> None:
    with pytest.raises(NotALock, match=why):
        parse(text)


@pytest.mark.parametrize(("entry", "why"), [
    ("name = '../../etc'\nversion = '1'\nwheels = []", "no valid project name"),
    ("version = '1'\nwheels = []", "no valid project name"),
    ("name = 'x'\nversion = 'not a version'\nwheels = []", "not a PEP 440 version"),
    ("name = 'x'\nversion = 3\nwheels = []", "no version"),
    ("name = 'x'\nversion = '1'", "no sdist or wheels"),
])
def test_a_pylock_entry_the_mirror_cannot_pin_is_skipped(entry: str, why: str) -> None:
    lock = parse(f"lock-version = '1.0'\n[[packages]]\n{entry}\n")
    assert lock.pins == () and len(lock.skipped) == 1 and why in lock.skipped[0]


# --------------------------------------------------------------------------
# [allowlist] lockfiles in the configuration
# --------------------------------------------------------------------------


def config(tmp_path: Path, plugins: str, allowlist: str) -> Path:
    path = tmp_path / "b.conf"
    path.write_text(f"[mirror]\ndirectory = {tmp_path / 'mirror'}\n\n[plugins]\nenabled =\n    {plugins}\n\n"
                    f"[allowlist]\nrequirements_path = {tmp_path}\n{allowlist}\n")
    return path


def test_lockfiles_join_the_requirements_as_pins_and_their_skips_are_warnings(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text(PYLOCK)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "uv.lock").write_text(UVLOCK)
    (tmp_path / "req.txt").write_text("extra-root\n")
    cfg = load(config(tmp_path, "project_requirements\n    project_requirements_pinned",
                      "requirements = req.txt\nlockfiles =\n    pylock.toml\n    locks/*.lock"))
    pins = cfg.filters.requirements
    assert [(p.key, p.specifier) for p in pins] == [
        ("extra-root", ""), ("attrs", "==25.1.0"), ("numpy", "==2.2.0"), ("numpy", "==2.0.2"),
        ("idna", "==3.10"), ("idna", "==3.7")]
    assert len(cfg.warnings) == 8 and all("skipped" in w for w in cfg.warnings)
    assert f"{tmp_path}/pylock.toml: from-git: locked from vcs" in cfg.warnings[0]
    selection = Selection(cfg.filters)
    assert set(selection.roots) == {"extra-root", "attrs", "numpy", "idna"}
    # The union of the locked versions: both numpys, nothing else.
    page = ProjectPage("numpy", tuple(DistFile(f"numpy-{v}.tar.gz", f"https://x/numpy-{v}.tar.gz")
                                      for v in ("2.0.1", "2.0.2", "2.2.0", "2.2.1")))
    assert [f.filename for f in selection.plan_files("numpy", page).files] == [
        "numpy-2.0.2.tar.gz", "numpy-2.2.0.tar.gz"]


def test_lockfiles_alone_enable_project_requirements(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UVLOCK)
    cfg = load(config(tmp_path, "project_requirements", "lockfiles = uv.lock"))
    assert {p.key for p in cfg.filters.requirements} == {"idna"}


def test_a_changed_lock_changes_the_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UVLOCK)
    path = config(tmp_path, "project_requirements_pinned\n    project_requirements", "lockfiles = uv.lock")
    before = load(path).filters.fingerprint()
    assert load(path).filters.fingerprint() == before
    (tmp_path / "uv.lock").write_text(UVLOCK.replace('"3.7"', '"3.8"'))
    assert load(path).filters.fingerprint() != before


@pytest.mark.parametrize(("content", "why"), [
    ("[[packages]\n", "not valid TOML"),
    ("alpha==1.0\n", "not valid TOML"),
    ("[tool.poetry]\nname = 'x'\n", "not a lock file"),
    (b"\xff\xfe", "cannot read"),
])
def test_a_malformed_lock_is_a_config_error_naming_the_file(tmp_path: Path, content: str | bytes,
                                                             why: str) -> None:
    lock = tmp_path / "pylock.toml"
    if isinstance(content, bytes):
        lock.write_bytes(content)
    else:
        lock.write_text(content)
    with pytest.raises(ConfigError) as info:
        load(config(tmp_path, "project_requirements", "lockfiles = pylock.toml"))
    assert (info.value.section, info.value.option) == ("allowlist", "lockfiles")
    assert str(lock) in str(info.value) and why in str(info.value) and "\n" not in str(info.value)


def test_a_lockfiles_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="matches no file"):
        load(config(tmp_path, "project_requirements", "lockfiles = pylock.*.toml"))


def test_lockfiles_without_a_requirements_plugin_are_refused(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UVLOCK)
    with pytest.raises(ConfigError, match="no enabled plugin reads it"):
        load(config(tmp_path, "allowlist_project", "packages = foo\nlockfiles = uv.lock"))
