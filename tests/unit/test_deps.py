"""Requirements of a release and the dependency closure of an allowlist."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import tarfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from support.distbuild import core_metadata, make_sdist, make_wheel

from bandersnatch.formats.dists import PlatformFilter
from bandersnatch.selection.requirements import (
    MAX_REQUIREMENT_LENGTH,
    MAX_REQUIREMENTS,
    Checked,
    Dependency,
    Need,
    checked_requirements,
    closure,
    dependencies,
    requires_dist,
    sdist_pkg_info,
    sdist_requires_dist,
    wheel_metadata,
)

ALL = PlatformFilter().environments()
UNIX = ("linux", "macos", "freebsd")

# ---------------------------------------------------------------- requires_dist


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (
            core_metadata("p", "1.0", requires=["a>=1", 'b; python_version < "3"']),
            ("a>=1", 'b; python_version < "3"'),
        ),
        (core_metadata("p", "1.0"), ()),
        (b"Metadata-Version: 2.1\r\nName: p\r\nRequires-Dist: a\r\nRequires-Dist: b\r\n\r\n", ("a", "b")),
        (b"Metadata-Version: 2.1\rRequires-Dist: a\r\r", ("a",)),
        (b"Requires-Dist: a;\n  python_version < '3'\nRequires-Dist: b\n", ("a; python_version < '3'", "b")),
        (b"requires-dist: a\nREQUIRES-DIST:  b  \n", ("a", "b")),
        (b"Name: p\nRequires-Dist: a\n\nRequires-Dist: from-the-description\n", ("a",)),
        (b"Name: p\nSummary: caf\xe9 \xff\nRequires-Dist: a\n", ("a",)),
        (b"\xef\xbb\xbfRequires-Dist: a\n", ("a",)),
        (b"Requires-Dist:\nRequires-Dist: a\n", ("a",)),
        (b"Name: p\nnot a header line\nRequires-Dist: a\n", ("a",)),
        (b"", ()),
    ],
)
def test_requires_dist(metadata: bytes, expected: tuple[str, ...]) -> None:
    assert requires_dist(metadata) == expected


@pytest.mark.parametrize(
    ("pkg_info", "expected"),
    [
        (b"Metadata-Version: 2.1\nName: p\nRequires-Dist: a\n", ("a",)),
        (b"Metadata-Version: 1.2\nName: p\nRequires-Dist: a\n", ("a",)),
        (b"Metadata-Version: 2.1\nName: p\n", None),  # before PEP 643: absent says nothing
        (b"Metadata-Version: 1.0\nName: p\n", None),
        (b"Name: p\n", None),
        (b"Metadata-Version: two\nName: p\n", None),
        (b"Metadata-Version: 2.2\nName: p\n", ()),  # PEP 643: declared, and there are none
        (b"Metadata-Version: 2.4\nName: p\nRequires-Dist: a\nRequires-Dist: b[x]\n", ("a", "b[x]")),
        (b"Metadata-Version: 2.2\nName: p\nDynamic: Requires-Dist\n", None),
        (b"Metadata-Version: 2.2\nName: p\nDynamic: requires-dist\nRequires-Dist: a\n", None),
        (b"Metadata-Version: 2.3\nName: p\nDynamic: Requires-Python\n", ()),
    ],
)
def test_sdist_requires_dist_is_none_when_pkg_info_does_not_declare_them(
    pkg_info: bytes, expected: tuple[str, ...] | None
) -> None:
    assert sdist_requires_dist(pkg_info) == expected


# ---------------------------------------------------------------- wheel_metadata


def write_zip(path: Path, members: Iterable[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": some tests want exactly that
        for name, data in members:
            archive.writestr(name, data)
    return path


def test_wheel_metadata_reads_the_dist_info_metadata(tmp_path: Path) -> None:
    filename, data, metadata = make_wheel("Dep.Root", "1.0", requires=["dep-leaf>=1"])
    (tmp_path / filename).write_bytes(data)
    got = wheel_metadata(tmp_path / filename)
    assert got == metadata
    assert requires_dist(got) == ("dep-leaf>=1",)


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([("p/__init__.py", b"")], id="no-dist-info"),
        pytest.param([("p-1.0.dist-info/RECORD", b"")], id="dist-info-without-METADATA"),
        pytest.param(
            [("p-1.0.dist-info/METADATA", b"A"), ("q-1.0.dist-info/METADATA", b"B")], id="two-dist-infos"
        ),
        pytest.param(
            [("p-1.0.dist-info/METADATA", b"A"), ("p-1.0.dist-info/METADATA", b"B")], id="duplicate-member"
        ),
        pytest.param([("vendored/p-1.0.dist-info/METADATA", b"A")], id="nested-only"),
        pytest.param([("p-1.0.dist-info/metadata", b"A")], id="wrong-case"),
    ],
)
def test_wheel_metadata_is_none_without_exactly_one_top_level_metadata(
    tmp_path: Path, members: list[tuple[str, bytes]]
) -> None:
    path = write_zip(tmp_path / "p-1.0-py3-none-any.whl", members)
    assert wheel_metadata(path) is None


def test_wheel_metadata_ignores_a_nested_metadata_next_to_the_real_one(tmp_path: Path) -> None:
    members = [
        ("p-1.0.dist-info/METADATA", b"Name: p\n"),
        ("vendored/q-1.0.dist-info/METADATA", b"Name: q\n"),
    ]
    assert wheel_metadata(write_zip(tmp_path / "p.whl", members)) == b"Name: p\n"


def test_wheel_metadata_zip_bomb_is_refused_by_its_declared_size(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p.whl", [("p-1.0.dist-info/METADATA", bytes(64 * 1024 * 1024))])
    assert path.stat().st_size < 1024 * 1024
    assert wheel_metadata(path) is None
    assert wheel_metadata(path, max_bytes=64 * 1024 * 1024) is not None


def _lie_about_size(data: bytes, real: int, claimed: int) -> bytes:
    """Rewrite the uncompressed size in the local and central headers from ``real`` to ``claimed``."""
    old, new = real.to_bytes(4, "little"), claimed.to_bytes(4, "little")
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = out.index(signature) + offset
        assert out[at : at + 4] == old
        out[at : at + 4] = new
    return bytes(out)


def test_wheel_metadata_zip_bomb_with_a_lying_size_is_refused(tmp_path: Path) -> None:
    real = 8 * 1024 * 1024
    path = write_zip(tmp_path / "p.whl", [("p-1.0.dist-info/METADATA", bytes(real))])
    path.write_bytes(_lie_about_size(path.read_bytes(), real, 100))
    assert wheel_metadata(path) is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"not a zip at all", id="not-a-zip"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: data.replace(b"Requires-Dist", b"Requires-Dust"), id="stored-crc-mismatch"),
    ],
)
def test_wheel_metadata_is_none_for_a_damaged_archive(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "p.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("p-1.0.dist-info/METADATA", core_metadata("p", "1.0", requires=["a"]))
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    assert wheel_metadata(path) is None


def test_wheel_metadata_of_a_missing_file_is_the_callers_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        wheel_metadata(tmp_path / "gone.whl")


# ---------------------------------------------------------------- sdist_pkg_info

PKG_INFO = core_metadata("p", "1.0", requires=["a"])


def tar_bytes(members: Iterable[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if symlink is not None:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return raw.getvalue()


COMPRESS = {
    ".tar.gz": gzip.compress,
    ".tgz": gzip.compress,
    ".tar.bz2": bz2.compress,
    ".tar.xz": lzma.compress,
}


def write_sdist(path: Path, members: list[tuple[str, bytes]], **kwargs: str) -> Path:
    if path.name.endswith(".zip"):
        return write_zip(path, members)
    ext = next(ext for ext in COMPRESS if path.name.endswith(ext))
    path.write_bytes(COMPRESS[ext](tar_bytes(members, **kwargs)))
    return path


def test_sdist_pkg_info_reads_a_real_sdist(tmp_path: Path) -> None:
    filename, data = make_sdist("Dep.Root", "1.0", requires=['dep-leaf; extra == "x"'])
    (tmp_path / filename).write_bytes(data)
    got = sdist_pkg_info(tmp_path / filename)
    assert got is not None
    assert sdist_requires_dist(got) == ('dep-leaf; extra == "x"',)
    assert requires_dist(got) == ('dep-leaf; extra == "x"',)


@pytest.mark.parametrize("ext", [".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".TAR.GZ"])
def test_sdist_pkg_info_of_every_extension(tmp_path: Path, ext: str) -> None:
    members = [("p-1.0/setup.py", b""), ("p-1.0/PKG-INFO", PKG_INFO), ("p-1.0/p/__init__.py", b"")]
    path = write_sdist(tmp_path / f"p-1.0{ext.lower()}", members)
    path = path.rename(tmp_path / f"p-1.0{ext}")
    assert sdist_pkg_info(path) == PKG_INFO


@pytest.mark.parametrize("ext", [".tar.gz", ".zip"])
@pytest.mark.parametrize(
    ("members", "found"),
    [
        pytest.param([("./p-1.0/PKG-INFO", PKG_INFO)], PKG_INFO, id="dot-slash-prefix"),
        pytest.param([("p-1.0/p.egg-info/PKG-INFO", b"nested")], None, id="only-nested"),
        pytest.param([("PKG-INFO", PKG_INFO)], None, id="no-top-directory"),
        pytest.param([("p-1.0/p.egg-info/PKG-INFO", b"nested"), ("p-1.0/PKG-INFO", PKG_INFO)], PKG_INFO,
                     id="nested-then-top"),
        pytest.param([("p-1.0/a.py", b"x" * 100_000), ("p-1.0/PKG-INFO", PKG_INFO)], PKG_INFO,
                     id="written-last-like-hatchling"),
        pytest.param([("p-1.0/README", b"")], None, id="missing"),
    ],
)  # fmt: skip
def test_sdist_pkg_info_takes_only_the_top_level_one(
    tmp_path: Path, ext: str, members: list[tuple[str, bytes]], found: bytes | None
) -> None:
    assert sdist_pkg_info(write_sdist(tmp_path / f"p-1.0{ext}", members)) == found


def test_sdist_pkg_info_zip_with_two_top_level_pkg_infos_is_ambiguous(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "p-1.0.zip", [("p-1.0/PKG-INFO", PKG_INFO), ("q-1.0/PKG-INFO", b"Name: q\n")])
    assert sdist_pkg_info(path) is None


def test_sdist_pkg_info_symlink_is_not_followed(tmp_path: Path) -> None:
    path = write_sdist(tmp_path / "p-1.0.tar.gz", [("p-1.0/setup.py", b"")], symlink="p-1.0/PKG-INFO")
    assert sdist_pkg_info(path) is None


@pytest.mark.parametrize("ext", [".tar.gz", ".zip"])
def test_sdist_pkg_info_larger_than_max_bytes_is_refused(tmp_path: Path, ext: str) -> None:
    path = write_sdist(tmp_path / f"p-1.0{ext}", [("p-1.0/PKG-INFO", PKG_INFO + bytes(2048))])
    assert sdist_pkg_info(path, max_bytes=1024) is None
    assert sdist_pkg_info(path, max_bytes=4096) is not None


@pytest.mark.parametrize("ext", [".tar.gz", ".tar.bz2", ".tar.xz"])
def test_sdist_bomb_before_pkg_info_stops_at_the_scan_limit(tmp_path: Path, ext: str) -> None:
    members = [("p-1.0/bomb", bytes(8 * 1024 * 1024)), ("p-1.0/PKG-INFO", PKG_INFO)]
    path = write_sdist(tmp_path / f"p-1.0{ext}", members)
    assert path.stat().st_size < 512 * 1024
    assert sdist_pkg_info(path, max_scan=1024 * 1024) is None
    assert sdist_pkg_info(path) == PKG_INFO


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("p-1.0.tar.gz", gzip.compress(tar_bytes([("p-1.0/PKG-INFO", PKG_INFO)]))[:-40],
                     id="truncated-tar-gz"),
        pytest.param("p-1.0.tar.gz", gzip.compress(b"this is not a tar archive" * 50), id="gzip-of-junk"),
        pytest.param("p-1.0.tar.gz", b"\x1f\x8b\x08\x00garbage", id="broken-gzip"),
        pytest.param("p-1.0.tar.bz2", b"BZh9garbage", id="broken-bz2"),
        pytest.param("p-1.0.tar.xz", b"\xfd7zXZ\x00garbage", id="broken-xz"),
        pytest.param("p-1.0.tar.gz", tar_bytes([("p-1.0/PKG-INFO", PKG_INFO)]), id="uncompressed-named-gz"),
        pytest.param("p-1.0.zip", b"PK\x03\x04garbage", id="broken-zip"),
        pytest.param("p-1.0.tar.gz", b"", id="empty"),
        pytest.param("p-1.0.tar", tar_bytes([("p-1.0/PKG-INFO", PKG_INFO)]), id="not-an-sdist-extension"),
        pytest.param("p-1.0-py3-none-any.whl", b"", id="a-wheel"),
    ],
)  # fmt: skip
def test_sdist_pkg_info_is_none_for_damaged_archives(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    assert sdist_pkg_info(tmp_path / name) is None


# ---------------------------------------------------------------- dependencies


def joined(line: str, extras: Iterable[str] = (), platforms: Iterable[str] = ()) -> bool:
    envs = PlatformFilter.parse(platforms).environments()
    deps, bad = dependencies([line], frozenset(extras), envs)
    assert not bad
    return bool(deps)


@pytest.mark.parametrize(
    ("line", "extras", "platforms", "joins"),
    [
        ("colorama", (), ("windows",), True),
        ('colorama; sys_platform == "win32"', (), (), True),
        ('colorama; sys_platform == "win32"', (), ("windows",), False),
        ('colorama; platform_system == "Windows"', (), ("win",), False),
        ('pywin32; os_name == "nt"', (), ("windows",), False),
        ('appnope; sys_platform == "darwin"', (), ("windows", "linux"), True),
        ('appnope; sys_platform == "darwin"', (), ("macos",), False),
        ('futures; python_version < "3"', (), (), True),
        ('futures; python_version < "3"', (), ("py2",), False),
        ('futures; python_version < "3"', (), ("py2.7",), False),
        ('futures; python_version == "2.6"', (), (), False),
        ('tomli; python_version < "3.11"', (), ("py2",), True),
        ('typing-extensions; python_version >= "3.8"', (), (), True),
        ('exceptiongroup; python_full_version < "3.11.0a7"', (), (), True),
        ('cffi; implementation_name == "pypy"', (), (), False),
        ('greenlet; platform_python_implementation == "CPython"', (), (), True),
        ('uvloop; sys_platform != "win32" and implementation_name == "cpython"', (), UNIX, False),
        ('pkg; platform_machine == "aarch64"', (), (), True),
        ('pkg; platform_machine == "aarch64"', (), ("linux",), False),
        # extras: only when requested, compared PEP 685-normalized
        ('fancy-dep; extra == "fancy"', (), (), False),
        ('fancy-dep; extra == "fancy"', ("fancy",), (), True),
        ('fancy-dep; extra == "fancy"', ("other",), (), False),
        ('fancy-dep; extra == "Fancy_Thing"', ("fancy-thing",), (), True),
        ('fancy-dep; extra == "fancy.thing"', ("Fancy_Thing",), (), True),
        ('win-dep; extra == "x" and sys_platform == "win32"', ("x",), (), True),
        ('win-dep; extra == "x" and sys_platform == "win32"', ("x",), ("windows",), False),
        ('both; extra == "x" or python_version >= "3"', (), (), True),
        # a comparison packaging cannot decide joins rather than goes missing
        ('odd; python_version ~= "3"', (), (), True),
    ],
)  # fmt: skip
def test_a_requirement_joins_when_its_marker_holds_in_some_target_environment(
    line: str, extras: tuple[str, ...], platforms: tuple[str, ...], joins: bool
) -> None:
    assert joined(line, extras, platforms) is joins


@pytest.mark.parametrize(
    ("line", "dependency"),
    [
        ("requests", Dependency("requests", frozenset(), "requests")),
        ("Foo.Bar_baz>=1.0", Dependency("foo-bar-baz", frozenset(), "Foo.Bar_baz>=1.0")),
        ("  spaced >= 1  ", Dependency("spaced", frozenset(), "spaced >= 1")),
        ("dep[Bar,baz_Qux]>=2", Dependency("dep", frozenset({"bar", "baz-qux"}), "dep[Bar,baz_Qux]>=2")),
        ("dep (>=1.0)", Dependency("dep", frozenset(), "dep (>=1.0)")),
        (
            "dep @ https://example.invalid/dep.whl",
            Dependency("dep", frozenset(), "dep @ https://example.invalid/dep.whl"),
        ),
    ],
)
def test_a_dependency_carries_its_normalized_name_and_extras(line: str, dependency: Dependency) -> None:
    assert dependencies([line], frozenset(), ALL) == ([dependency], [])


@pytest.mark.parametrize(
    "line",
    [
        "foo >>> 1",
        "foo; python_version <",
        "[bad]",
        "foo; nonsense == 'x'",
        "foo bar",
        "-e .",
        "foo[",
        "fo\x00o",
    ],
)
def test_a_malformed_line_is_reported_not_raised(line: str) -> None:
    deps, bad = dependencies(["good", line, "other"], frozenset(), ALL)
    assert [dep.key for dep in deps] == ["good", "other"]
    assert bad == [line.strip()]


@pytest.mark.parametrize(
    "line",
    ["x" * 201, "x" * 199 + "._y[extra]; os_name != 'nt'",
     "ok; python_version > '" + "3" * MAX_REQUIREMENT_LENGTH + "'"],
    ids=["name-over-200", "normalized-over-200", "line-over-limit"],
)
def test_a_requirement_no_project_can_satisfy_is_malformed(line: str) -> None:
    # PEP 508 bounds neither: a name over 200 characters names no project (and no deps/ file).
    deps, bad = dependencies(["good", line], frozenset(), ALL)
    assert [dep.key for dep in deps] == ["good"] and bad == [line]
    assert checked_requirements(["good", line]) == Checked(("good",), 1, line)


def test_checked_requirements_parse_a_bounded_number_of_lines_and_count_the_rest() -> None:
    # A good line past the bound is skipped unread too: a file of 10,000 lines is no real file.
    lines = ["good", *(f"bad {i} ;;" for i in range(MAX_REQUIREMENTS + 500)), "late-but-fine"]
    checked = checked_requirements(lines)
    assert checked.lines == ("good",)
    assert checked.skipped == MAX_REQUIREMENTS + 501 and checked.first_skipped == "bad 0 ;;"
    assert checked.unread


def test_blank_lines_are_neither_dependencies_nor_bad() -> None:
    assert dependencies(["", "   "], frozenset(), ALL) == ([], [])


def test_no_environments_admits_only_unconditional_requirements() -> None:
    deps, _ = dependencies(["a", 'b; python_version >= "3"'], frozenset(), ())
    assert [dep.key for dep in deps] == ["a"]


# ---------------------------------------------------------------- closure


def run(
    graph: Mapping[str, list[str] | None],
    roots: Mapping[str, Iterable[str]],
    *,
    platforms: Iterable[str] = (),
    blocked: Iterable[str] = (),
) -> dict[str, Need]:
    refused = set(blocked)
    return closure(
        {name: frozenset(extras) for name, extras in roots.items()},
        lambda key: graph.get(key),
        PlatformFilter.parse(platforms).environments(),
        lambda key: key not in refused,
    )


def test_closure_follows_requires_dist_transitively_recording_why() -> None:
    graph = {"dep-root": ["dep-mid>=1"], "dep-mid": ["dep-leaf"], "dep-leaf": []}
    assert run(graph, {"dep-root": ()}) == {
        "dep-root": Need("dep-root", frozenset(), "allowlist", None),
        "dep-mid": Need("dep-mid", frozenset(), "dep-mid>=1", "dep-root"),
        "dep-leaf": Need("dep-leaf", frozenset(), "dep-leaf", "dep-mid"),
    }


def test_closure_extras_are_transitive() -> None:
    graph = {
        "dep-root": ['dep-mid[x]; extra == "fancy"', "dep-plain"],
        "dep-mid": ['dep-leaf; extra == "x"', "dep-base"],
        "dep-leaf": [],
        "dep-base": [],
        "dep-plain": [],
    }
    assert list(run(graph, {"dep-root": ()})) == ["dep-root", "dep-plain"]
    fancy = run(graph, {"dep-root": ("Fancy",)})
    assert list(fancy) == ["dep-root", "dep-mid", "dep-plain", "dep-base", "dep-leaf"]
    assert fancy["dep-mid"] == Need("dep-mid", frozenset({"x"}), 'dep-mid[x]; extra == "fancy"', "dep-root")
    assert fancy["dep-leaf"].parent == "dep-mid"


def test_closure_reached_again_with_more_extras_expands_them() -> None:
    graph = {
        "root": ["a", "b"],
        "b": ["a[x]"],
        "a": ['leaf; extra == "x"', "base"],
        "leaf": ['deeper; extra == "y"', "leaf-base"],
        "base": [],
    }
    needs = run(graph, {"root": ()})
    assert needs["a"] == Need("a", frozenset({"x"}), "a", "root")
    assert needs["leaf"] == Need("leaf", frozenset(), 'leaf; extra == "x"', "a")
    assert "leaf-base" in needs
    assert "deeper" not in needs


def test_closure_extras_of_a_root_and_of_a_requirement_unite() -> None:
    graph = {"r": ["a[y]"], "a": ['x-dep; extra == "x"', 'y-dep; extra == "y"']}
    needs = run(graph, {"r": (), "a": ("x",)})
    assert needs["a"].extras == {"x", "y"}
    assert needs["a"].requirement == "allowlist"
    assert {"x-dep", "y-dep"} <= set(needs)


def test_closure_cycles_terminate() -> None:
    graph = {"dep-cycle-a": ["Dep.Cycle_B"], "dep-cycle-b": ["dep_cycle_a[x]"], "dep-self": ["dep-self"]}
    graph["dep-cycle-a"].append('dep-cycle-c; extra == "x"')
    needs = run(graph, {"Dep.Cycle_A": (), "dep-self": ()})
    assert list(needs) == ["dep-cycle-a", "dep-self", "dep-cycle-b", "dep-cycle-c"]
    assert needs["dep-cycle-a"] == Need("dep-cycle-a", frozenset({"x"}), "allowlist", None)
    assert needs["dep-self"].parent is None


@pytest.mark.parametrize("root", ["Dep.Cycle_A", "dep-cycle-a", "DEP_CYCLE_A", "dep..cycle--a"])
def test_closure_names_are_pep_503_normalized(root: str) -> None:
    needs = run({"dep-cycle-a": ["DEP.cycle_b"]}, {root: ()})
    assert list(needs) == ["dep-cycle-a", "dep-cycle-b"]


def test_closure_roots_that_normalize_alike_merge_their_extras() -> None:
    needs = run({}, {"Dep.Root": ("a",), "dep_root": ("B",)})
    assert needs == {"dep-root": Need("dep-root", frozenset({"a", "b"}), "allowlist", None)}


def test_closure_records_the_shortest_chain() -> None:
    graph = {"root": ["a", "c>=2"], "a": ["b"], "b": ["c"]}
    needs = run(graph, {"root": ()})
    assert needs["c"] == Need("c", frozenset(), "c>=2", "root")


def test_closure_marker_excluded_dependencies_stay_out() -> None:
    graph = {"root": ['colorama; sys_platform == "win32"', 'futures; python_version < "3"', "six"]}
    assert list(run(graph, {"root": ()})) == ["root", "colorama", "futures", "six"]
    assert list(run(graph, {"root": ()}, platforms=["windows", "py2"])) == ["root", "six"]


def test_closure_admits_false_stops_the_branch() -> None:
    graph = {"root": ["blocked", "ok"], "blocked": ["beyond"], "ok": ["shared"], "beyond": ["shared"]}
    needs = run(graph, {"root": ()}, blocked=["blocked"])
    assert list(needs) == ["root", "ok", "shared"]
    assert run(graph, {"blocked": ()}, blocked=["blocked"]) == {}


def test_closure_unknown_requirements_keep_the_project_without_expanding_it() -> None:
    graph: dict[str, list[str] | None] = {"root": ["unsynced"], "unsynced": None}
    assert list(run(graph, {"root": ()})) == ["root", "unsynced"]


def test_closure_asks_each_project_once_and_reports_bad_lines_once() -> None:
    asked: list[str] = []
    bad: list[tuple[str, str]] = []
    graph = {"root": ["a", "b"], "a": ["c", "c >>> 1"], "b": ["a[x]"], "c": []}

    def requirements_of(key: str) -> list[str] | None:
        asked.append(key)
        return graph.get(key)

    needs = closure(
        {"root": frozenset()}, requirements_of, ALL, lambda key: True, lambda k, line: bad.append((k, line))
    )
    assert list(needs) == ["root", "a", "b", "c"]
    assert sorted(asked) == ["a", "b", "c", "root"]
    assert bad == [("a", "c >>> 1")]


def test_closure_order_does_not_depend_on_the_order_requirements_come_in() -> None:
    graph = {"root": ["z", "m", "a"], "z": ["y"], "a": ["b"], "m": []}
    shuffled = {key: list(reversed(value)) for key, value in graph.items()}
    assert (
        list(run(graph, {"root": ()}))
        == list(run(shuffled, {"root": ()}))
        == ["root", "a", "m", "z", "b", "y"]
    )


@pytest.mark.slow
def test_closure_of_ten_thousand_projects_with_fifty_requirements_each() -> None:
    rng = random.Random(9)
    size = 10_000
    markers = ["", '; python_version >= "3.8"', '; sys_platform == "win32"', '; extra == "x"']
    graph = {
        f"p{i}": [f"P{rng.randrange(size)}{rng.choice(markers)}" for _ in range(50)] + [f"p{(i + 1) % size}"]
        for i in range(size)
    }
    needs = run(graph, {"p0": ()})
    assert len(needs) == size
    assert needs["p1"].parent == "p0"
    assert all(need.parent is None or need.parent in needs for need in needs.values())
    windows_only = run(graph, {"p0": ()}, platforms=["linux", "macos", "freebsd"])
    assert len(windows_only) == size
