"""Specification of the root index: patched by lines, byte-identical to a full rewrite, never partial."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
from support.pages import render_root_html, render_root_json, root_names

from bandersnatch.formats.layout import key_dir
from bandersnatch.formats.simple import ProjectPage, render_project_json
from bandersnatch.sync import rootindex
from bandersnatch.sync.rootindex import RootIndex
from bandersnatch.sync.rootmarks import Tally

LINE = 3  # the serial of every project line a test does not give one


def synced(names: Iterable[str], serial: int = LINE) -> dict[str, int]:
    return dict.fromkeys(names, serial)


def entries(names: Iterable[str] | Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(names.items() if isinstance(names, Mapping) else synced(names).items())


def render(index: RootIndex, names: Iterable[str] | Mapping[str, int],
           serial: int | None) -> tuple[bytes, bytes]:
    listed = entries(names)
    return (render_root_html([(n, index.href(n)) for n, _ in listed], serial),
            render_root_json(listed, serial))


def make_index(tmp_path: Path, names: Iterable[str] | Mapping[str, int], *, serial: int = 1,
               hash_index: bool = False) -> RootIndex:
    simple, staging = tmp_path / "web" / "simple", tmp_path / "tmp" / "mirror"
    simple.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    index = RootIndex(simple, staging, hash_index)
    html, data = render(index, names, serial)
    index.html.write_bytes(html)
    index.json.write_bytes(data)
    return index


def expected(index: RootIndex, names: Iterable[str] | Mapping[str, int], serial: int) -> tuple[bytes, bytes]:
    return render(index, names, serial)


def with_pages(index: RootIndex, names: Iterable[str] | Mapping[str, int]) -> None:
    """What is really on disk: both pages of each project, the JSON one with its serial."""
    for name, serial in entries(names):
        page_dir = index.simple.joinpath(*key_dir(name, index.hash_index))
        page_dir.mkdir(parents=True, exist_ok=True)
        (page_dir / "index.html").write_text("x")
        (page_dir / "index.v1_json").write_bytes(render_project_json(ProjectPage(name, ()), serial))


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
    index.update(synced(added), removed, 9)
    assert written(index) == expected(index, (set(OLD) - removed) | added, 9)


def test_projects_added_to_an_empty_index(tmp_path: Path) -> None:
    index = make_index(tmp_path, [])
    index.update(synced({"one", "two"}), set(), 5)
    assert written(index) == expected(index, ["one", "two"], 5)


def test_removing_the_only_project_leaves_an_empty_index(tmp_path: Path) -> None:
    index = make_index(tmp_path, ["only"])
    index.update({}, {"only"}, 5)
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
    index = make_index(tmp_path, OLD, serial=9)
    before = (index.html.stat().st_ino, index.json.stat().st_ino)
    index.update(synced(added), removed, 9)
    assert (index.html.stat().st_ino, index.json.stat().st_ino) == before
    assert written(index) == expected(index, OLD, 9)


@pytest.mark.parametrize("seed", range(12))
def test_random_changes_to_a_large_index_match_a_full_rewrite(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    universe = sorted({f"{rng.choice('abcxyz')}{rng.randrange(10**6)}-p" for _ in range(6000)})
    old = {name: rng.randrange(1, 900) for name in rng.sample(universe, 4000)}
    index = make_index(tmp_path, old, hash_index=bool(seed % 2))
    # Synced: new projects, listed ones at a new serial, listed ones at the serial they have.
    changed = {name: rng.randrange(1, 1000) for name in rng.sample(universe, rng.randrange(0, 60))}
    removed = set(rng.sample(sorted(old), rng.randrange(0, 40))) - changed.keys()
    index.update(changed, removed, 1000 + seed)
    now = {name: serial for name, serial in old.items() if name not in removed} | changed
    assert written(index) == expected(index, now, 1000 + seed)
    assert list(index.names()) == sorted(now)


@pytest.mark.parametrize(
    ("changed", "removed"),
    [
        pytest.param({"alpha": 7}, set(), id="first"),
        pytest.param({"delta": 7}, set(), id="middle"),
        pytest.param({"omega": 7}, set(), id="last"),
        pytest.param(dict.fromkeys(OLD, 7), set(), id="all"),
        pytest.param({"beta": 7, "charlie": 8}, {"delta"}, id="next-to-added-and-removed"),
        pytest.param({"gamma": 7}, {"omega"}, id="before-removed-last"),
        pytest.param({"alpha": LINE, "beta": 2}, set(), id="one-same-one-lower"),
    ],
)
@pytest.mark.parametrize("hash_index", [False, True], ids=["flat", "hash-index"])
def test_a_synced_project_s_line_takes_its_new_serial_byte_identical_to_a_full_rewrite(
    tmp_path: Path, changed: dict[str, int], removed: set[str], hash_index: bool
) -> None:
    index = make_index(tmp_path, OLD, hash_index=hash_index)
    index.update(changed, removed, 9)
    assert written(index) == expected(index, {n: LINE for n in OLD if n not in removed} | changed, 9)
    assert json.loads(index.json.read_bytes())["meta"]["_last-serial"] == 9


@pytest.mark.parametrize("names", [OLD, []], ids=["projects", "empty"])
def test_a_run_that_only_moves_the_serial_rewrites_both_files_under_it(
    tmp_path: Path, names: list[str]
) -> None:
    index = make_index(tmp_path, names, serial=5)
    index.update({}, set(), 6)
    assert written(index) == expected(index, names, 6)
    assert index.html.read_bytes().endswith(b"</html>\n<!--SERIAL 6-->\n")


def old_layout(index: RootIndex, names: list[str], serial: int) -> None:
    """The root index as versions before per-project serials wrote it."""
    head = json.dumps({"api-version": "1.1", "_last-serial": serial}, separators=(",", ":"))
    lines = ",\n".join(json.dumps({"name": n}, separators=(",", ":")) for n in names)
    index.json.write_text(f'{{"meta":{head},"projects":[\n{lines}\n]}}\n')


def test_an_index_without_project_serials_is_upgraded_once_from_the_pages(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD, serial=8)
    old_layout(index, OLD, 8)
    pages = {name: 100 + i for i, name in enumerate(OLD)}
    with_pages(index, pages)
    index.update({}, set(), 8)  # a run with nothing to sync still upgrades it
    assert written(index) == expected(index, pages, 8)
    before = (index.html.stat().st_ino, index.json.stat().st_ino)
    index.update({}, set(), 8)
    assert (index.html.stat().st_ino, index.json.stat().st_ino) == before


def test_an_upgraded_index_keeps_the_names_it_listed_and_takes_this_run_s_changes(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD, serial=8)
    old_layout(index, OLD, 8)
    with_pages(index, {"alpha": 11, "beta": 12})  # pages the others lack (or cannot be read): serial 0
    (index.simple / "gamma").mkdir()
    (index.simple / "gamma" / "index.v1_json").write_text('{"name":"gamma","meta":{"_last-serial":13}}')
    index.update({"charlie": 20, "beta": 21}, {"omega"}, 9)
    assert written(index) == expected(
        index, {"alpha": 11, "beta": 21, "charlie": 20, "delta": 0, "gamma": 13}, 9)


def test_an_index_without_project_serials_is_told_from_its_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"p{i:06d}" for i in range(100_000)]
    index = make_index(tmp_path, names)
    old_layout(index, names, 1)
    rewrites: list[object] = []
    monkeypatch.setattr(RootIndex, "_merge", lambda *args: rewrites.append(args))
    index.update({}, set(), 1)
    assert len(rewrites) == 1


def test_a_rebuild_takes_each_project_s_serial_from_its_page(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD, hash_index=True)
    with_pages(index, {"alpha": 4, "zeta": 40})
    index.update(None, set(), 50)
    assert written(index) == expected(index, {"alpha": 4, "zeta": 40}, 50)


def test_a_copy_the_kernel_refuses_falls_back_to_reads_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    names = [f"p{i:05d}" for i in range(3000)]
    index = make_index(tmp_path, names)
    index.update(synced({"p01500x"}), {"p00000", "p02999"}, 2)
    assert written(index) == expected(index, (set(names) - {"p00000", "p02999"}) | {"p01500x"}, 2)


def test_names_that_need_escaping_round_trip(tmp_path: Path) -> None:
    # Our own names are normalized and plain; an index from elsewhere may not be.
    odd = ["a&b", "caf\u00e9", 'quo"te', "x<y"]
    index = make_index(tmp_path, odd)
    index.update(synced({"b-plain"}), {"caf\u00e9"}, 3)
    assert written(index) == expected(index, ["a&b", "b-plain", 'quo"te', "x<y"], 3)


def test_another_tools_json_layout_is_rewritten_in_ours(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, OLD)  # the serials it lacks come from the pages
    index.json.write_text(json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in OLD]},
                                     indent=2))
    index.update(synced({"charlie"}), {"omega"}, 4)
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
    index.update(synced({"charlie"}), set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)


def test_a_damaged_json_index_is_rebuilt_from_the_project_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "charlie"])  # what is really on disk
    index.json.write_bytes(index.json.read_bytes().replace(b'{"name":"delta",', b'{"name":delta,'))
    index.update(synced({"charlie"}), set(), 4)
    assert written(index) == expected(index, ["alpha", "charlie"], 4)


def test_a_missing_index_is_rebuilt_from_the_project_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.json.unlink()
    with_pages(index, ["solo"])
    (index.simple / "half").mkdir()  # a killed run left one page only: not listed
    (index.simple / "half" / "index.html").write_text("x")
    index.update({}, set(), 6)
    assert written(index) == expected(index, ["solo"], 6)


def test_a_patch_leaves_no_temporary_file_behind(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    index.update(synced({"charlie"}), {"omega"}, 4)
    assert list((tmp_path / "tmp" / "mirror").iterdir()) == []


def test_names_of_an_index_damaged_part_way_are_not_used_the_directories_are(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "charlie", "zeta"])
    index.json.write_bytes(index.json.read_bytes().replace(b'{"name":"delta",', b'{"name":delta,'))
    # Nothing read before the damage is believed either (beta is listed, but has no pages).
    assert list(index.names()) == ["alpha", "charlie", "zeta"]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b.replace(b'{"name":"delta",', b'{"name":"zzz",'), id="out-of-order"),
        pytest.param(lambda b: b.replace(b'{"name":"delta","_last-serial":3},', b'"delta",'),
                     id="not-a-project-line"),
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
        index.update({}, set(), 7)
        assert written(index) == expected(index, [*OLD, "zeta"], 7), f"cut at byte {cut}"


def test_a_json_index_cut_at_a_line_end_is_not_merged_from_the_names_it_still_lists(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, [*OLD, "charlie"])
    index.json.write_bytes(b"".join(index.json.read_bytes().splitlines(keepends=True)[:3]))  # head, 2 names
    index.update(synced({"charlie"}), set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)


def test_an_html_index_without_its_end_is_rebuilt_from_the_directories(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "beta"])
    index.html.write_bytes(index.html.read_bytes().replace(b"</body>", b"</bod>"))
    index.update(synced({"beta"}), set(), 4)
    assert written(index) == expected(index, ["alpha", "beta"], 4)


@pytest.mark.parametrize("serial", [None, 12])
def test_a_whole_index_passes_the_check_with_and_without_a_serial_and_when_empty(
    tmp_path: Path, serial: int | None
) -> None:
    for names in (OLD, []):
        index = make_index(tmp_path / str(len(names)), names)
        listed = sorted(names)
        index.html.write_bytes(render_root_html([(n, index.href(n)) for n in listed], serial))
        index.json.write_bytes(render_root_json([(n, LINE) for n in listed], serial))
        before = (index.html.stat().st_ino, index.json.stat().st_ino)
        index.update({}, set(), serial)
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
    index.update({}, set(), 1)
    assert 0 < sum(read) <= 4 * 256


def test_another_tools_json_on_one_line_is_read_by_its_parser(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, OLD)
    index.json.write_text(json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in OLD]},
                                     separators=(",", ":")))
    index.update(synced({"charlie"}), set(), 4)
    assert written(index) == expected(index, [*OLD, "charlie"], 4)


# ---------------------------------------------------------------- damage inside a file (issue 18, case 8)


def _marked(tmp_path: Path, names: list[str]) -> RootIndex:
    """An index written by update() with its marks kept beside it, as a mirror run keeps them."""
    index = make_index(tmp_path, [])
    index = RootIndex(index.simple, index.staging, False, marks=tmp_path / "root-index")
    with_pages(index, names)
    index.update(None, set(), 5)
    return index


def test_a_marked_index_is_checked_without_reading_more_than_its_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _marked(tmp_path, [f"p{i:05d}" for i in range(1_500)])
    read: list[int] = []
    real_pread, real_read = os.pread, os.read
    monkeypatch.setattr(os, "pread", lambda fd, n, at: read.append(n) or real_pread(fd, n, at))
    monkeypatch.setattr(os, "read", lambda fd, n: read.append(n) or real_read(fd, n))
    monkeypatch.setattr("bandersnatch.sync.rootindex._tally", lambda *a: pytest.fail("read the whole file"))
    index.update({}, set(), 5)
    assert 0 < sum(read) <= 4 * 256


def test_marks_follow_patches_so_a_patched_index_is_not_taken_for_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = _marked(tmp_path, OLD)
    for step, (add, drop) in enumerate([({"charlie": 7}, set()), ({}, {"beta"}), ({"alpha": 9}, {"omega"})]):
        with_pages(index, add)
        index.update(add, drop, 10 + step)
    assert "rebuilding" not in caplog.text
    marks = (tmp_path / "root-index").read_text()
    index.html.chmod(0o644)  # the file's ctime moves: read once, found the same, marked anew
    index.update({}, set(), 12)
    assert "rebuilding" not in caplog.text and (tmp_path / "root-index").read_text() != marks
    assert written(index) == expected(index, {"alpha": 9, "charlie": 7, "delta": LINE, "gamma": LINE}, 12)


def _drop_middle(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join([*lines[:3], *lines[-3:]])


def _repeat_line(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join([*lines[:4], lines[3], *lines[4:]])


def _alter_line(data: bytes) -> bytes:
    """One letter of one name, the size kept; the file's mtime is put back after (see below)."""
    at = data.index(b"p00010")
    return data[:at] + b"q" + data[at + 1:]


@pytest.mark.parametrize("which", ["html", "json"])
@pytest.mark.parametrize("damage", [_drop_middle, _repeat_line, _alter_line], ids=["lines-lost", "repeated",
                                                                                    "altered-same-size"])
def test_a_root_file_damaged_inside_its_intact_ends_is_rebuilt_from_the_directories(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, which: str, damage: Callable[[bytes], bytes]
) -> None:
    names = [f"p{i:05d}" for i in range(22)]
    index = _marked(tmp_path, names)
    path = index.html if which == "html" else index.json
    st = path.stat()
    with path.open("r+b") as f:  # in place, as an editor or a bad restore would: same inode
        data = damage(f.read())
        f.seek(0)
        f.truncate()
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # hostile: even the mtime put back
    index.update({}, set(), 5)
    assert written(index) == expected(index, names, 5)
    warned = [r.getMessage() for r in caplog.records if "rebuilding the root index" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0]
    caplog.clear()
    index.update({}, set(), 5)  # rebuilt and marked: the next run finds nothing to say
    assert "rebuilding" not in caplog.text


def test_an_index_written_before_marks_were_kept_is_read_once_to_mark_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_index(tmp_path, OLD)  # no marks file: an index from before they were kept
    index = RootIndex(old.simple, old.staging, False, marks=tmp_path / "root-index")
    index.update({}, set(), 1)
    assert written(index) == expected(index, OLD, 1)  # trusted as it is, not rebuilt
    assert (tmp_path / "root-index").read_text().count("\n") == 2
    monkeypatch.setattr("bandersnatch.sync.rootindex._tally",
                        lambda *a: pytest.fail("read the whole file again"))
    index.update({}, set(), 1)
    index.update(synced({"charlie"}), set(), 2)  # a patch updates the marks without reading the file
    monkeypatch.undo()
    with_pages(index, [*OLD, "charlie"])
    index.html.write_bytes(_drop_middle(index.html.read_bytes()))
    index.update({}, set(), 2)
    assert written(index) == expected(index, [*OLD, "charlie"], 2)


# ---------------------------------------------------------------- one read of a whole index (_scan)

Read = tuple[list[tuple[str, int | None]], Tally | None, Tally | None]
SIXTY = b"9" * 60


def read_line_by_line(index: RootIndex) -> Read:
    """What the general readers find: entries(), and each file's tally for its mark."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rootindex, "_scan", lambda *args, **kwargs: None)
        return read_fast(index)


def read_fast(index: RootIndex) -> Read:
    known = index.mirrored()
    entries = [(name, None if serial < 0 else serial)
               for name, serial in zip(known.names, known.serials, strict=True)]
    return (entries, rootindex._tally(index.html, rootindex._html_format(None, index.href)),
            rootindex._tally(index.json, rootindex._json_format(None)))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b, id="as-written"),
        pytest.param(lambda b: b.replace(b'{"name":"delta",', b'{"name":"zzz",'), id="out-of-order"),
        pytest.param(lambda b: b.replace(b'"gamma","_last-serial":3}', b'"gamma","_last-serial":3} '),
                     id="trailing-space"),
        pytest.param(lambda b: b.replace(b'"beta","_last-serial":3}', b'"beta","_last-serial":003}'),
                     id="leading-zeros"),
        pytest.param(lambda b: b.replace(b'3},\n{"name":"delta', b'3}\n{"name":"delta'), id="comma-missing"),
        pytest.param(lambda b: b.replace(b'"omega","_last-serial":3}\n', b'"omega",' b'"_last-serial":3},\n'),
                     id="comma-after-last"),
        pytest.param(lambda b: b.replace(b'"delta","_last-serial":3}', b'"delta","_last-serial":%s}' % SIXTY),
                     id="serial-past-64-bits"),
        pytest.param(lambda b: b.replace(b'"delta","_last-serial":3}', b'"delta"}'),
                     id="a-line-without-serial"),
        pytest.param(lambda b: b.replace(b'{"name":"delta",', b'{"name":"del\\u0074a",'),
                     id="escape"),
        pytest.param(lambda b: b.replace(b'{"name":"delta",', b'{"name":"d\xe9lta",'), id="not-utf-8"),
        pytest.param(lambda b: b.replace(b'{"name":"delta",', b'{"name":"de\x01lta",'),
                     id="control-character"),
        pytest.param(lambda b: b.replace(b',\n', b',\n\n', 1), id="empty-line"),
    ],
)
def test_one_read_of_the_json_index_finds_what_the_line_by_line_readers_find(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    index = make_index(tmp_path, OLD)
    with_pages(index, ["alpha", "charlie"])
    index.json.write_bytes(damage(index.json.read_bytes()))
    assert read_fast(index) == read_line_by_line(index)


@pytest.mark.parametrize(
    "names",
    [
        pytest.param([], id="empty"),
        pytest.param(["a"], id="one"),
        pytest.param(["a&b", "caf\u00e9", 'quo"te', "x<y", "\u65e5\u672c"], id="names-that-need-escaping"),
        pytest.param([f"p{i:06d}" for i in range(2_000)], id="many"),
        pytest.param(["n" * 70_000, "z"], id="a-line-longer-than-ours"),
    ],
)
@pytest.mark.parametrize("hash_index", [False, True], ids=["flat", "hash-index"])
@pytest.mark.parametrize("block", [1 << 20, 100], ids=["one-block", "small-blocks"])
def test_one_read_of_any_index_finds_what_the_line_by_line_readers_find(
    tmp_path: Path, names: list[str], hash_index: bool, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rootindex, "_SCAN_BLOCK", block)
    index = make_index(tmp_path, {name: i * 7 for i, name in enumerate(names)}, hash_index=hash_index)
    assert read_fast(index) == read_line_by_line(index)
    assert read_fast(index)[0] == list(index.entries())


def test_an_index_of_plain_names_is_read_once_without_the_general_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index(tmp_path, {f"p{i:04d}": i for i in range(500)})
    monkeypatch.setattr(RootIndex, "entries", lambda self: pytest.fail("read line by line"))
    monkeypatch.setattr(rootindex, "_body_lines", lambda *args: pytest.fail("read line by line"))
    entries, html_tally, json_tally = read_fast(index)
    assert entries == [(f"p{i:04d}", i) for i in range(500)]
    assert html_tally is not None and json_tally is not None and html_tally.count == json_tally.count == 500


@pytest.mark.parametrize("which", ["html", "json"])
def test_one_read_of_a_cut_index_finds_what_the_line_by_line_readers_find(tmp_path: Path, which: str) -> None:
    index = make_index(tmp_path, {"alpha": 1, "beta": 22, "gamma": 333})
    path = index.html if which == "html" else index.json
    whole = path.read_bytes()
    for cut in cuts(whole):
        path.write_bytes(whole[:cut])
        assert read_fast(index) == read_line_by_line(index), cut


def test_an_index_without_project_serials_is_read_the_general_way(tmp_path: Path) -> None:
    index = make_index(tmp_path, OLD, serial=8)
    old_layout(index, OLD, 8)
    assert read_fast(index) == read_line_by_line(index)
    assert read_fast(index)[0] == [(name, None) for name in OLD]
