"""Real pip against a partial mirror served over HTTP: the closure installs, the platform filter holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import distbuild
from support.fakepypi import Upstream
from support.mirrortools import write_config
from support.static_server import StaticServer
from test_dependencies_sync import with_deps
from test_filters_sync import mirrored
from test_pip_e2e import pip

pytestmark = pytest.mark.slow

TAGS = {
    "win": "cp311-cp311-win_amd64",
    "mac": "cp311-cp311-macosx_11_0_arm64",
    "linux": "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "py2": "cp27-cp27mu-manylinux1_x86_64",
}


@pytest.fixture
def served(tmp_path: Path, upstream: Upstream,
           serve_static: Callable[[str | Path], StaticServer]) -> StaticServer:
    """A partial mirror of app (and what it needs), without Windows and Python 2 files."""
    upstream.add_wheel("app", "1.0", with_metadata=True, requires=("Lib-A>=1", 'winonly; os_name == "nt"'))
    upstream.add_wheel("app", "2.0", with_metadata=True, requires=("lib_a>=2", "native[speed]"))
    upstream.add_wheel("lib-a", "1.0", with_metadata=True)
    upstream.add_wheel("lib-a", "2.0", with_metadata=True, requires=("lib-b",))
    upstream.add_sdist("lib-b", "1.0")  # sdist only: PKG-INFO declares no dependencies
    upstream.add_wheel("native", "1.0", requires=('speedup; extra == "speed"',))
    upstream.add_wheel("speedup", "1.0")
    upstream.add_wheel("winonly", "1.0")
    upstream.add_wheel("unrelated", "1.0")
    for tag in TAGS.values():
        upstream.add_wheel("native", "1.0", tag=tag, requires=('speedup; extra == "speed"',))
    mirror = write_config(tmp_path, upstream.url, sections=with_deps(
        "app", enabled=("allowlist_project", "exclude_platform"),
        blocklist="platforms =\n    windows\n    py2"))
    assert mirror.run() == 0
    upstream.stop()  # from here on only the mirror can answer
    return serve_static(mirror.web)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_pip_installs_every_mirrored_release_of_the_root_with_its_dependencies(
    tmp_path: Path, served: StaticServer, version: str
) -> None:
    target = tmp_path / "site"
    result = pip("install", "--index-url", served.url + "/simple/", "--target", str(target),
                 f"app=={version}")
    assert result.returncode == 0, result.stderr + result.stdout
    installed = {p.name.split("-")[0] for p in target.iterdir() if p.name.endswith(".dist-info")}
    # app 1.0 needs lib-a>=1, whose newest release (2.0) needs lib-b; winonly is Windows-only.
    expected = {"app", "lib_a", "lib_b"} | ({"native", "speedup"} if version == "2.0" else set())
    assert installed == expected


def test_the_unselected_project_is_not_on_the_mirror(served: StaticServer, tmp_path: Path) -> None:
    result = pip("download", "--no-deps", "--index-url", served.url + "/simple/",
                 "--dest", str(tmp_path / "dl"), "unrelated")
    assert result.returncode != 0
    assert "No matching distribution" in result.stderr


@pytest.mark.parametrize(
    ("platform", "python", "found"),
    [
        ("manylinux2014_x86_64", "3.11",
         "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        ("macosx_11_0_arm64", "3.11", "native-1.0-cp311-cp311-macosx_11_0_arm64.whl"),
        ("win_amd64", "3.11", "native-1.0-py3-none-any.whl"),  # the Windows wheel was filtered out
        ("manylinux1_x86_64", "2.7", None),  # nor is there a Python 2 wheel any more
    ],
)
def test_the_platform_filter_keeps_and_drops_the_right_wheels(
    tmp_path: Path, served: StaticServer, platform: str, python: str, found: str | None
) -> None:
    dest = tmp_path / "dl"
    result = pip("download", "--no-deps", "--only-binary=:all:", "--platform", platform,
                 "--python-version", python, "--implementation", "cp",
                 "--index-url", served.url + "/simple/", "--dest", str(dest), "native==1.0")
    if found is None:
        assert result.returncode != 0
        assert "No matching distribution" in result.stderr
    else:
        assert result.returncode == 0, result.stderr + result.stdout
        assert [p.name for p in dest.iterdir()] == [found]


def test_dependencies_come_from_the_metadata_pip_reads_not_the_wheels_own(
    tmp_path: Path, upstream: Upstream, serve_static: Callable[[str | Path], StaticServer]
) -> None:
    # The page advertises PEP 658 metadata that differs from the wheel's METADATA: pip resolves
    # from the advertised one, so the closure must follow it, not what is inside the wheel.
    name, data, own = distbuild.make_wheel("root", "1.0", requires=("dep-wheel",))
    served_metadata = own.replace(b"Requires-Dist: dep-wheel", b"Requires-Dist: dep-meta")
    upstream.add_file("root", name, data, version="1.0", metadata=served_metadata)
    upstream.add_wheel("dep-wheel", "1.0")
    upstream.add_wheel("dep-meta", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=with_deps("root"))
    assert mirror.run() == 0
    assert set(mirrored(mirror)) == {"root", "dep-meta"}
    upstream.stop()
    served = serve_static(mirror.web)
    result = pip("download", "--index-url", served.url + "/simple/", "--dest", str(tmp_path / "dl"), "root")
    assert result.returncode == 0, result.stderr + result.stdout
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "dl").iterdir()) == ["dep_meta", "root"]
