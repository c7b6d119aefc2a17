"""Release files: which version each belongs to, and what ``[blocklist] platforms`` drops."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.version import Version

from bandersnatch.formats.dists import ACCEPTED, PlatformFilter, file_version, version_text

# ---------------------------------------------------------------- file_version


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        # wheels: packaging's grammar, build tags and compressed tag sets included
        ("numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "numpy", "1.26.4"),
        ("numpy-1.26.4-cp312-cp312-win_amd64.whl", "numpy", "1.26.4"),
        ("cryptography-42.0.5-cp39-abi3-macosx_10_12_universal2.whl", "cryptography", "42.0.5"),
        ("six-1.16.0-py2.py3-none-any.whl", "six", "1.16.0"),
        ("pkg-1.0-1-cp311-cp311-manylinux_2_17_x86_64.whl", "pkg", "1.0"),
        ("Django-4.2-py3-none-any.whl", "django", "4.2"),
        ("pkg-1.0RC1-py3-none-any.whl", "pkg", "1.0rc1"),
        ("Foo__Bar-2.0-py3-none-any.whl", "foo-bar", "2.0"),  # a name packaging refuses; version still clear
        ("pkg-1.0-py3-none.whl", "pkg", None),
        ("pkg-notaversion-py3-none-any.whl", "pkg", None),
        ("bad.whl", "pkg", None),
        # sdists of every extension, names with dashes, dots and underscores
        ("requests-2.31.0.tar.gz", "requests", "2.31.0"),
        ("my-project-1.0.tar.gz", "my-project", "1.0"),
        ("my_project-1.0.tar.gz", "my-project", "1.0"),
        ("My.Project-1.0rc1.zip", "my-project", "1.0rc1"),
        ("foo-bar-baz-2.0.post1.tar.bz2", "foo-bar-baz", "2.0.post1"),
        ("zope.interface-6.0.tar.xz", "zope-interface", "6.0"),
        ("pkg-1.0.tgz", "pkg", "1.0"),
        ("pkg-1.0.TAR.GZ", "pkg", "1.0"),
        ("pkg-1!2.0+local.tar.gz", "pkg", "1!2.0+local"),
        ("pkg-1.0-beta.tar.gz", "pkg", "1.0b0"),  # old tools: a dash inside the version
        ("pkg-1.0.linux-x86_64.tar.gz", "pkg", "1.0"),  # bdist_dumb
        ("pkg-1.0.macosx-10.6-x86_64.zip", "pkg", "1.0"),
        ("other-1.0.tar.gz", "pkg", None),
        ("pkg-extra-1.0.tar.gz", "pkg", None),  # another project's file
        ("pkg.tar.gz", "pkg", None),
        ("pkg-.tar.gz", "pkg", None),
        ("pkg-latest.tar.gz", "pkg", None),
        # eggs: name-version[-pyX.Y[-platform]].egg
        ("pkg-1.0-py2.7.egg", "pkg", "1.0"),
        ("pkg-1.0-py3.11-linux-x86_64.egg", "pkg", "1.0"),
        ("setuptools-0.6c11-py2.4.egg", "setuptools", "0.6rc11"),
        ("pkg-1.0.egg", "pkg", "1.0"),
        ("my_pkg-1.0_dev-py2.6-macosx-10.9-x86_64.egg", "my-pkg", "1.0.dev0"),
        # bdist_wininst / bdist_msi: name-version.platform[-pyX.Y]
        ("pywin32-227.win-amd64-py3.8.exe", "pywin32", "227"),
        ("numpy-1.6.0.win32-py2.7.exe", "numpy", "1.6.0"),
        ("PyYAML-3.10.win32-py2.7.exe", "pyyaml", "3.10"),
        ("Twisted-12.0.0.win32-py2.7.msi", "twisted", "12.0.0"),
        ("pkg-1.0.win32.exe", "pkg", "1.0"),
        # bdist_rpm: name-version-release.arch
        ("python-foo-1.0-1.noarch.rpm", "python-foo", "1.0"),
        ("pkg-2.1-3.src.rpm", "pkg", "2.1"),
        ("pkg-2.1-1.x86_64.rpm", "pkg", "2.1"),
        # macOS installers
        ("numpy-1.6.0-py2.7-python.org-macosx10.3.dmg", "numpy", "1.6.0"),
        ("pkg-1.0.tar", "pkg", "1.0"),  # an uncompressed sdist, rare but on PyPI
        # not release files
        ("pkg-1.0.deb", "pkg", None),
        ("pkg-1.0.tar.gz.asc", "pkg", None),
        ("README", "pkg", None),
    ],
)
def test_file_version(filename: str, project: str, version: str | None) -> None:
    got = file_version(filename, project)
    assert got == (None if version is None else Version(version))
    assert version_text(filename, project) == version


def test_version_text_is_the_normal_form_pep_700_lists() -> None:
    assert version_text("pkg-1.0.0-RC.1.tar.gz", "pkg") == "1.0.0rc1"
    assert version_text("pkg-01.02-py3-none-any.whl", "pkg") == "1.2"


# ---------------------------------------------------------------- PlatformFilter.parse


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["windows"], PlatformFilter(families=frozenset({"windows"}))),
        (["WIN", "MacOSX"], PlatformFilter(families=frozenset({"windows", "macos"}))),
        (["macos", "freebsd", "linux"], PlatformFilter(families=frozenset({"macos", "freebsd", "linux"}))),
        (["py2"], PlatformFilter(majors=frozenset({2}))),
        (["py3"], PlatformFilter(majors=frozenset({3}))),
        (["py2.4", "py2.7"], PlatformFilter(pythons=frozenset({(2, 4), (2, 7)}))),
        (["py3.0", "py3.14", "py3.15"], PlatformFilter(pythons=frozenset({(3, 0), (3, 14), (3, 15)}))),
        (["  linux_armv7l "], PlatformFilter(tags=frozenset({"linux_armv7l"}))),
        (["win32", "win_amd64"], PlatformFilter(tags=frozenset({"win32", "win_amd64"}))),
        (["manylinux2014_aarch64"], PlatformFilter(tags=frozenset({"manylinux2014_aarch64"}))),
        (["macosx_11_0_arm64"], PlatformFilter(tags=frozenset({"macosx_11_0_arm64"}))),
        ([], PlatformFilter()),
    ],
)
def test_parse_accepts_bandersnatch_values(values: list[str], expected: PlatformFilter) -> None:
    assert PlatformFilter.parse(values) == expected


@pytest.mark.parametrize(
    "value", ["windoze", "py3.x", "py2.3", "py4", "python3", "any", "linux-x86_64", "py3.8-linux", ""]
)
def test_parse_refuses_an_unknown_value_naming_it_and_the_accepted_ones(value: str) -> None:
    with pytest.raises(ValueError) as info:
        PlatformFilter.parse(["linux", value])
    assert str(info.value).startswith(f"{value!r} ")
    assert ACCEPTED in str(info.value)


# ---------------------------------------------------------------- PlatformFilter.excludes

WIN = ["windows"]
MAC = ["macos"]
LINUX = ["linux"]
BSD = ["freebsd"]


@pytest.mark.parametrize(
    ("values", "filename", "reason"),
    [
        # families, from the parsed platform tag
        (WIN, "numpy-1.26.4-cp311-cp311-win_amd64.whl", "platform windows (win_amd64)"),
        (WIN, "numpy-1.26.4-cp311-cp311-win32.whl", "platform windows (win32)"),
        (WIN, "numpy-1.26.4-cp311-cp311-win_arm64.whl", "platform windows (win_arm64)"),
        (WIN, "cryptography-42.0.5-cp39-abi3-win_amd64.whl", "platform windows (win_amd64)"),
        (WIN, "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", None),
        (WIN, "six-1.16.0-py2.py3-none-any.whl", None),
        (WIN, "winpkg-1.0-py3-none-any.whl", None),  # "win" in the name is not a platform
        (MAC, "cryptography-42.0.5-cp39-abi3-macosx_10_12_universal2.whl",
         "platform macos (macosx_10_12_universal2)"),
        (MAC, "numpy-1.26.4-cp312-cp312-macosx_11_0_arm64.whl", "platform macos (macosx_11_0_arm64)"),
        (MAC, "numpy-1.26.4-cp312-cp312-win_amd64.whl", None),
        (LINUX, "numpy-1.26.4-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
         "platform linux (manylinux2014_aarch64)"),
        (LINUX, "numpy-1.26.4-cp312-cp312-musllinux_1_1_x86_64.whl", "platform linux (musllinux_1_1_x86_64)"),
        (LINUX, "numpy-1.16.0-cp27-cp27mu-manylinux1_x86_64.whl", "platform linux (manylinux1_x86_64)"),
        (LINUX, "pkg-1.0-cp36-cp36m-linux_armv7l.whl", "platform linux (linux_armv7l)"),
        (LINUX, "pkg-1.0-py3-none-macosx_10_9_x86_64.whl", None),
        (BSD, "pkg-1.0-cp39-cp39-freebsd_13_0_amd64.whl", "platform freebsd (freebsd_13_0_amd64)"),
        (BSD, "pkg-1.0-cp39-cp39-manylinux1_x86_64.whl", None),
        # a wheel with tags for two families survives until both are excluded
        (MAC, "pkg-1.0-py3-none-macosx_10_9_x86_64.win_amd64.whl", None),
        (["macos", "windows"], "pkg-1.0-py3-none-macosx_10_9_x86_64.win_amd64.whl",
         "platform macos (macosx_10_9_x86_64)"),
        # python versions
        (["py2"], "six-1.16.0-py2.py3-none-any.whl", None),
        (["py2"], "pkg-1.0-py2-none-any.whl", "python 2 (py2)"),
        (["py2"], "numpy-1.16.0-cp27-cp27mu-manylinux1_x86_64.whl", "python 2 (cp27)"),
        (["py2.7"], "numpy-1.16.0-cp27-cp27mu-manylinux1_x86_64.whl", "python 2.7 (cp27)"),
        (["py2.7"], "pkg-1.0-py2-none-any.whl", None),  # py2 also serves 2.6
        (["py2.7"], "pkg-1.0-pp27-pypy_73-manylinux2010_x86_64.whl", "python 2.7 (pp27)"),
        (["py3.8"], "numpy-1.24.0-cp38-cp38-win_amd64.whl", "python 3.8 (cp38)"),
        (["py3.8"], "numpy-1.24.0-cp39-cp39-win_amd64.whl", None),
        (["py3.10"], "numpy-1.26.4-cp310-cp310-win_amd64.whl", "python 3.10 (cp310)"),
        (["py3.1"], "numpy-1.26.4-cp310-cp310-win_amd64.whl", None),
        (["py3.8"], "cryptography-42.0.5-cp38-abi3-win_amd64.whl", None),  # abi3 serves 3.9 onwards too
        (["py3"], "cryptography-42.0.5-cp38-abi3-win_amd64.whl", "python 3 (cp38)"),
        (["py3"], "pkg-1.0-py3-none-any.whl", "python 3 (py3)"),
        (["py3"], "six-1.16.0-py2.py3-none-any.whl", None),
        (["py2", "py3"], "six-1.16.0-py2.py3-none-any.whl", "python 2 (py2)"),
        (["py3.8"], "pkg-1.0-py38-none-any.whl", "python 3.8 (py38)"),
        (["py3.8"], "pkg-1.0-ip38-none-any.whl", "python 3.8 (ip38)"),
        (["py3.8"], "pkg-1.0-pp38-pypy38_pp73-win_amd64.whl", "python 3.8 (pp38)"),
        (["py3"], "pkg-1.0-cp3-none-any.whl", "python 3 (cp3)"),
        (["py3"], "pkg-1.0-graalpy311-graalpy242_311_native-any.whl", None),  # unreadable: kept
        # python and platform together: a tag dies of either
        (["windows", "py2"], "numpy-1.16.0-cp27-cp27m-manylinux1_x86_64.whl", "python 2 (cp27)"),
        (["windows", "py2"], "numpy-1.16.0-cp37-cp37m-win_amd64.whl", "platform windows (win_amd64)"),
        (["windows", "py2"], "numpy-1.16.0-cp37-cp37m-manylinux1_x86_64.whl", None),
        # exact platform tags kill only that platform
        (["win32"], "numpy-1.26.4-cp311-cp311-win32.whl", "platform win32"),
        (["win32"], "numpy-1.26.4-cp311-cp311-win_amd64.whl", None),
        (["manylinux2014_aarch64"], "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
         None),
        (["manylinux2014_aarch64", "manylinux_2_17_aarch64"],
         "pkg-1.0-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
         "platform manylinux2014_aarch64"),
        (["macosx_11_0_arm64"], "numpy-1.26.4-cp312-cp312-macosx_11_0_arm64.whl",
         "platform macosx_11_0_arm64"),
        (["macosx_11_0_arm64"], "numpy-1.26.4-cp312-cp312-macosx_10_9_x86_64.whl", None),
        (["linux_armv7l"], "pkg-1.0-cp36-cp36m-linux_armv7l.whl", "platform linux_armv7l"),
        (["linux_armv7l"], "pkg-1.0-cp36-cp36m-linux_x86_64.whl", None),
        # sdists are never dropped
        (WIN + MAC + LINUX + BSD + ["py2", "py3"], "numpy-1.26.4.tar.gz", None),
        (WIN + ["py2"], "pkg-1.0.zip", None),
        (LINUX, "pkg-1.0.tar.bz2", None),
        (LINUX, "pkg-1.0.tar.xz", None),
        (LINUX, "pkg-1.0.tgz", None),
        (LINUX, "pkg-1.0.linux-x86_64.tar.gz", None),  # bdist_dumb shares the sdist extensions
        # installers
        (WIN, "pywin32-227.win-amd64-py3.8.exe", "platform windows (.exe)"),
        (WIN, "Twisted-12.0.0.win32-py2.7.msi", "platform windows (.msi)"),
        (LINUX, "pywin32-227.win-amd64-py3.8.exe", None),
        (["py3.8"], "pywin32-227.win-amd64-py3.8.exe", "python 3.8 (py3.8)"),
        (["py2"], "numpy-1.6.0.win32-py2.7.exe", "python 2 (py2.7)"),
        (["py2"], "pkg-1.0.win32.exe", None),
        (["win_amd64"], "pywin32-227.win-amd64-py3.8.exe", "platform win_amd64"),
        (["win_amd64"], "numpy-1.6.0.win32-py2.7.exe", None),
        (MAC, "numpy-1.6.0-py2.7-python.org-macosx10.3.dmg", "platform macos (.dmg)"),
        (["py2.7"], "numpy-1.6.0-py2.7-python.org-macosx10.3.dmg", "python 2.7 (py2.7)"),
        (WIN, "numpy-1.6.0-py2.7-python.org-macosx10.3.dmg", None),
        (LINUX, "python-foo-1.0-1.noarch.rpm", "platform linux (.rpm)"),
        (WIN, "python-foo-1.0-1.noarch.rpm", None),
        # eggs: by their python and their platform part
        (["py2"], "pkg-1.0-py2.7.egg", "python 2 (py2.7)"),
        (["py2.6"], "pkg-1.0-py2.7.egg", None),
        (WIN, "pkg-1.0-py2.7.egg", None),
        (WIN, "pkg-1.0-py2.7-win32.egg", "platform windows (win32)"),
        (WIN, "pkg-1.0-py2.7-win-amd64.egg", "platform windows (win_amd64)"),
        (MAC, "pkg-1.0-py2.7-macosx-10.9-x86_64.egg", "platform macos (macosx_10_9_x86_64)"),
        (LINUX, "pkg-1.0-py3.11-linux-x86_64.egg", "platform linux (linux_x86_64)"),
        (["macosx_10_9_x86_64"], "pkg-1.0-py2.7-macosx-10.9-x86_64.egg", "platform macosx_10_9_x86_64"),
        (LINUX, "pkg-1.0.egg", None),
        # what the filter does not understand it keeps
        (WIN, "pkg-1.0-py3-none.whl", None),
        (WIN, "pkg-1.0.deb", None),
        ([], "numpy-1.26.4-cp311-cp311-win_amd64.whl", None),
    ],
)  # fmt: skip
def test_excludes(values: list[str], filename: str, reason: str | None) -> None:
    assert PlatformFilter.parse(values).excludes(filename) == reason


# ---------------------------------------------------------------- PlatformFilter.environments


def holds_somewhere(marker: str, values: list[str]) -> bool:
    envs = PlatformFilter.parse(values).environments()
    return any(Marker(marker).evaluate({**env, "extra": ""}) for env in envs)


@pytest.mark.parametrize(
    ("marker", "values", "holds"),
    [
        ('sys_platform == "win32"', [], True),
        ('sys_platform == "win32"', WIN, False),
        ('platform_system == "Windows"', WIN, False),
        ('os_name == "nt"', WIN, False),
        ('os_name == "nt"', MAC, True),
        ('sys_platform == "darwin"', MAC, False),
        ('platform_system == "Darwin"', WIN, True),
        ('sys_platform == "linux"', LINUX, False),
        ('sys_platform == "linux2"', [], True),  # what Python 2 on Linux reports
        ('sys_platform == "linux2"', ["py2"], True),  # Python 3.0 to 3.2 too
        ('sys_platform == "linux2"', ["py2", "py3.0", "py3.1", "py3.2"], False),
        ('"freebsd" in sys_platform', BSD, False),
        ('"freebsd" in sys_platform', [], True),
        ('os_name == "posix"', LINUX + MAC + BSD, False),
        ('python_version < "3"', [], True),
        ('python_version < "3"', ["py2"], False),
        ('python_version < "3"', ["py2.7"], False),
        ('python_version < "3"', ["py3"], True),
        ('python_version >= "3"', ["py3"], False),
        ('python_version >= "3.8"', [], True),
        ('python_version >= "3.14"', [], True),
        ('python_version >= "3.15"', [], False),
        ('python_version == "3.8"', ["py3.8"], False),
        ('python_version == "3.9"', ["py3.8"], True),
        ('python_full_version >= "3.8.0"', [], True),
        ('implementation_name == "pypy"', [], False),
        ('platform_python_implementation == "PyPy"', [], False),
        ('implementation_name == "cpython"', [], True),
        ('platform_machine == "aarch64"', [], True),
        ('platform_machine == "arm64" and sys_platform == "darwin"', [], True),
        ('platform_machine == "AMD64"', WIN, False),
        ('platform_machine == "x86_64"', [], True),
        ('sys_platform == "win32" and python_version < "3"', ["py2"], False),
        ('sys_platform == "win32" and python_version < "3"', WIN, False),
        ('sys_platform == "win32" and python_version < "3"', ["py3"], True),
        ('sys_platform == "cygwin"', [], False),
    ],
)
def test_environments_decide_markers(marker: str, values: list[str], holds: bool) -> None:
    assert holds_somewhere(marker, values) is holds


def test_environments_are_full_pep_508_environments() -> None:
    keys = {
        "os_name", "sys_platform", "platform_system", "platform_machine", "platform_release",
        "platform_version", "python_version", "python_full_version", "implementation_name",
        "implementation_version", "platform_python_implementation",
    }  # fmt: skip
    envs = PlatformFilter().environments()
    assert envs and all(set(env) == keys for env in envs)
    assert {env["python_version"] for env in envs} == {"2.7", *(f"3.{m}" for m in range(15))}
    assert {env["platform_system"] for env in envs} == {"Linux", "Darwin", "Windows", "FreeBSD"}
    assert len(set(map(lambda e: tuple(sorted(e.items())), envs))) == len(envs)


def test_environments_minus_a_family_and_a_python() -> None:
    envs = PlatformFilter.parse(["windows", "py3.8"]).environments()
    assert "Windows" not in {env["platform_system"] for env in envs}
    assert "3.8" not in {env["python_version"] for env in envs}
    assert "3.9" in {env["python_version"] for env in envs}


def test_exact_tags_do_not_narrow_the_environments() -> None:
    assert PlatformFilter.parse(["win32"]).environments() == PlatformFilter().environments()
