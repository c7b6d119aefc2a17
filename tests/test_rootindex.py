"""Specification of the root index: patched by lines, byte-identical to a full rewrite, never partial."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from bandersnatch.rootindex import RootIndex
from bandersnatch.simple import render_root_html, render_root_json, root_names


def make_index(tmp_path: Path, names: Iterable[str], *, serial: int = 1,
               hash_index: bool = False) -> RootIndex:
    simple, staging = tmp_path / "web" / "simple", tmp_path / "tmp" / "mirror"
    simple.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    index = RootIndex(simple, staging, hash_index)
    listed = sorted(names)
    index.html.write_bytes(render_root_html([(n, index.href(n)) for n in listed], serial))
    index.json.write_bytes(render_root_json([(n, index.href(n)) for n in listed], serial))
    return index


def expected(index: RootIndex, names: Iterable[str], serial: int) -> tuple[bytes, bytes]:
    listed = sorted(names)
    return (render_root_html([(n, index.href(n)) for n in listed], serial),
            render_root_json([(n, index.href(n)) for n in listed], serial))


def written(index: RootIndex) -> tuple[bytes, bytes]:
    return index.html.read_bytes(), index.json.read_bytes()


OLD = ["alpha", "beta", "delta", "gamma", "omega"]


@pytest.mark.parametrize(
    ("added", "removed"),
    [
        pytest.param({"aaa"}, set(), id="add-first"),
        pytest.param({"charlie"}, set(), id="add-middle"),
        pytest.param({"zzz"}, set(), id="add-last"),
        pytest.param({"aaa", "charlie", "epsilon", "zzz"}, set(), id="add-several"),
        pytest.param(set(), {"alpha"}, id="remove-first"),
        pytest.param(set(), {"delta"}, id="remove-middle"),
        pytest.param(set(), {"omega"}, id="remove-last"),
        pytest.param(set(), set(OLD), id="remove-all"),
        pytest.param({"charlie"}, {"delta"}, id="add-next-to-removed"),
        pytest.param({"zzz"}, {"omega"}, id="replace-last"),
        pytest.param({"aaa"}, {"alpha"}, id="replace-first"),
    ],
)
@pytest.mark.parametrize("hash_index", [False, True], ids=["flat", "hash-index"])
def test_a_patched_index_is_byte_identical_to_a_full_rewrite(
    tmp_path: Path, added: set[str], removed: set[str], hash_index: bool
) -> None:
    index = make_index(tmp_path, OLD, hash_index=hash_index)
    index.update(added, removed, 9)
    assert written(index) == expected(index, (set(OLD) - removed) | added, 9)


def test_projects_added_to_an_empty_index(tmp_path: Path) -> None:
    index = make_index(tmp_path, [])
    index.update({"one", "two"}, set(), 5)
    assert written(index) == expected(index, ["one", "two"], 5)


def test_removing_the_only_project_leaves_an_empty_index(tmp_path: Path) -> None:
    index = make_index(tmp_path, ["only"])
    index.update(set(), {"only"}, 5)
    assert written(index) == expected(index, [], 5)
    assert root_names(index.json.read_bytes()) == []


@pytest.mark.parametrize(
    ("added", "removed"),
    [({"beta"}, set()), (set(), {"nothere"}), ({"beta"}, {"beta"}), (set(), set())],
    ids=["already-listed", "absent-removed", "added-and-removed-stays", "nothing"],
)
def test_a_change_that_changes_nothing_writes_nothing(
    tmp_path: Path, added: set[str], removed: set[str]
) -> None:
    index = make_index(tmp_path, OLD)
    before = (index.html.stat().st_ino, index.json.stat().st_ino)
    index.update(added, removed, 9)
    assert (index.html.stat().st_ino, index.json.stat().st_ino) == before
    assert written(index) == expected(index, OLD, 1)  # the serial too is left alone


@pytest.mark.parametrize("seed", range(12))
def test_random_changes_to_a_large_index_match_a_full_rewrite(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    universe = sorted({f"{rng.choice('abcxyz')}{rng.randrange(10**6)}-p" for _ in range(6000)})
    old = set(rng.sample(universe, 4000))
    index = make_index(tmp_path, old, hash_index=bool(seed % 2))
    added = set(rng.sample(universe, rng.randrange(0, 40)))
    removed = set(rng.sample(sorted(old), rng.randrange(0, 40)))
    index.update(added, removed, 1000 + seed)
    assert written(index) == expected(index, (old - removed) | added, 1000 + seed)
    assert list(index.names()) == sorted((old - removed) | added)


def test_a_copy_the_kernel_refuses_falls_back_to_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    names = [f"p{i:05d}" for i in range(3000)]
    index = make_index(tmp_path, names)
    index.update({"p01500x"}, {"p00000", "p02999"}, 2)
    assert written(index) == expected(index, (set(names) - {"p00000", "p02999"}) | {"p01500x"}, 2)


def test_names_that_need_escaping_round_trip(tmp_path: Path) -> None:
    # Our own names are normalized and plain; an index from elsewhere may not be.
    odd = ["a&b", "caf\u00e9", 'quo"te', "x<y"]
    index = make_index(tmp_path, odd)
    index.update({"b-plain"}, {"caf\u00e9"}, 3)
    assert written(index) == expected(index, ["a&b", "b-plain", 'quo"te', "x<y"], 3)


def test_another_tools_json_layout_is_rewritten_in_ours(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.json.write_text(json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in OLD]},
                                     indent=2))
    index.update({"charlie"}, {"omega"}, 4)
    assert written(index) == expected(index, ["alpha", "beta", "charlie", "delta", "gamma"], 4)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b.replace(b"<h1>", b"<h2>"), id="html-head"),
        pytest.param(lambda b: b.replace(b'<a href="delta/">delta</a>', b"<p>delta</p>"), id="html-odd-line"),
    ],
)
def test_an_html_index_not_in_our_layout_is_rewritten_from_the_json_names(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    index = make_index(tmp_path, OLD)
    index.html.write_bytes(damage(index.html.read_bytes()))
    index.update({"charlie"}, set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)


def test_a_damaged_json_index_is_rebuilt_from_the_project_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    for name in ["alpha", "charlie"]:  # what is really on disk
        (index.simple / name).mkdir()
        (index.simple / name / "index.html").write_text("x")
        (index.simple / name / "index.v1_json").write_text("{}")
    index.json.write_bytes(index.json.read_bytes().replace(b'{"name":"delta"}', b'{"name":delta}'))
    index.update({"charlie"}, set(), 4)
    assert written(index) == expected(index, ["alpha", "charlie"], 4)


def test_a_missing_index_is_rebuilt_from_the_project_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.json.unlink()
    (index.simple / "solo").mkdir()
    (index.simple / "solo" / "index.html").write_text("x")
    (index.simple / "solo" / "index.v1_json").write_text("{}")
    (index.simple / "half").mkdir()  # a killed run left one page only: not listed
    (index.simple / "half" / "index.html").write_text("x")
    index.update(set(), set(), 6)
    assert written(index) == expected(index, ["solo"], 6)


def test_a_patch_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.update({"charlie"}, {"omega"}, 4)
    assert list((tmp_path / "tmp" / "mirror").iterdir()) == []


def with_pages(index: RootIndex, names: Iterable[str]) -> None:
    """What is really on disk: both pages of each project."""
    for name in names:
        (index.simple / name).mkdir(exist_ok=True)
        (index.simple / name / "index.html").write_text("x")
        (index.simple / name / "index.v1_json").write_text("{}")


def test_names_of_an_index_damaged_part_way_are_not_used_the_directories_are(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "charlie", "zeta"])
    index.json.write_bytes(index.json.read_bytes().replace(b'{"name":"delta"}', b'{"name":delta}'))
    # Nothing read before the damage is believed either (beta is listed, but has no pages).
    assert list(index.names()) == ["alpha", "charlie", "zeta"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b.replace(b'{"name":"delta"}', b'{"name":"zzz"}'), id="out-of-order"),
        pytest.param(lambda b: b.replace(b'{"name":"delta"},', b'"delta",'), id="not-a-project-line"),
    ],
)
def test_names_are_believed_only_when_every_line_is_a_project_in_order(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "charlie"])
    index.json.write_bytes(damage(index.json.read_bytes()))
    assert list(index.names()) == ["alpha", "charlie"]


def cuts(data: bytes) -> list[int]:
    """Where to cut a root file: at every line end and in the middle of every line."""
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")][:-1]
    return sorted({0, *ends, *(e - 3 for e in ends if e > 3)})


@pytest.mark.parametrize("which", ["html", "json"])
def test_a_root_file_cut_anywhere_is_rebuilt_from_the_directories_even_with_nothing_to_change(
    tmp_path: Path, which: str
) -> None:
    for n, cut in enumerate(cuts(make_index(tmp_path / "probe", OLD).__getattribute__(which).read_bytes())):
        index = make_index(tmp_path / str(n), OLD)
        with_pages(index, [*OLD, "zeta"])  # the directories have one more: proof of where names came from
        path = index.html if which == "html" else index.json
        path.write_bytes(path.read_bytes()[:cut])
        if path.read_bytes().endswith(b"</html>\n"):
            continue  # only the serial comment is gone: every link is there, the page is whole
        index.update(set(), set(), 7)
        assert written(index) == expected(index, [*OLD, "zeta"], 7), f"cut at byte {cut}"


def test_a_json_index_cut_at_a_line_end_is_not_merged_from_the_names_it_still_lists(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, [*OLD, "charlie"])
    index.json.write_bytes(b"".join(index.json.read_bytes().splitlines(keepends=True)[:3]))  # head, 2 names
    index.update({"charlie"}, set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)


def test_an_html_index_without_its_end_is_rebuilt_from_the_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "beta"])
    index.html.write_bytes(index.html.read_bytes().replace(b"</body>", b"</bod>"))
    index.update({"beta"}, set(), 4)
    assert written(index) == expected(index, ["alpha", "beta"], 4)


@pytest.mark.parametrize("serial", [None, 12])
def test_a_whole_index_passes_the_check_with_and_without_a_serial_and_when_empty(
    tmp_path: Path, serial: int | None
) -> None:
    for names in (OLD, []):
        index = make_index(tmp_path / str(len(names)), names)
        listed = sorted(names)
        index.html.write_bytes(render_root_html([(n, index.href(n)) for n in listed], serial))
        index.json.write_bytes(render_root_json([(n, index.href(n)) for n in listed], serial))
        before = (index.html.stat().st_ino, index.json.stat().st_ino)
        index.update(set(), set(), 99)
        assert (index.html.stat().st_ino, index.json.stat().st_ino) == before


def test_the_check_that_both_files_are_whole_reads_only_their_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index(tmp_path, [f"p{i:06d}" for i in range(100_000)])
    read: list[int] = []
    real_pread, real_read = os.pread, os.read

    def pread(fd: int, length: int, offset: int) -> bytes:
        read.append(length)
        return real_pread(fd, length, offset)

    def counted_read(fd: int, length: int) -> bytes:
        read.append(length)
        return real_read(fd, length)

    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(os, "read", counted_read)
    index.update(set(), set(), 2)
    assert 0 < sum(read) <= 4 * 256


def test_another_tools_json_on_one_line_is_read_by_its_parser(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.json.write_text(json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in OLD]},
                                     separators=(",", ":")))
    index.update({"charlie"}, set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)
