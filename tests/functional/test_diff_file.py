"""``diff-file``: the list of files each run wrote (and, beside it, deleted), for downstream rsync."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import page_dir, write_config

from bandersnatch.publish.difffile import SPOOL_NAME, Changes


def listed(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_diff_file_lists_what_each_run_wrote_and_its_companion_what_it_deleted(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    diff = tmp_path / "mirrored-files"
    mirror = write_config(tmp_path, upstream.url, diff_file=str(diff))
    assert mirror.run() == 0
    first = listed(diff)
    on_disk = sorted(str(p) for p in mirror.web.rglob("*") if p.is_file())
    assert sorted(first) == on_disk  # a first sync wrote every file under web/, each listed once
    assert all(Path(p).is_absolute() for p in first)
    assert listed(tmp_path / "mirrored-files.deleted") == []
    assert not (mirror.root / SPOOL_NAME).exists()

    gone = sample_corpus.files_of("Alpha-Lib")[0]
    upstream.remove_file("Alpha-Lib", gone.filename)
    new = upstream.add_wheel("beta", "0.6")
    upstream.remove_project("zope.interface_x")
    assert mirror.run() == 0
    written, deleted = listed(diff), listed(tmp_path / "mirrored-files.deleted")
    web = mirror.web
    beta, alpha, zope = (page_dir(web, n) for n in ("beta", "alpha-lib", "zope-interface-x"))
    new_file = next(str(p) for p in web.rglob(new.filename))
    assert sorted(written) == sorted([
        new_file,
        str(beta / "index.v1_json"), str(beta / "index.html"),
        str(alpha / "index.v1_json"), str(alpha / "index.html"),
        str(web / "simple" / "index.html"), str(web / "simple" / "index.v1_json"),
        str(web / "last-modified"),
    ])
    assert any(p.endswith("/" + gone.filename) for p in deleted)
    assert str(zope / "index.html") in deleted and str(zope / "index.v1_json") in deleted
    assert not any(Path(p).exists() for p in deleted)

    # A no-op run rewrites the list: nothing but last-modified.
    assert mirror.run() == 0
    assert listed(diff) == [str(web / "last-modified")]


def test_diff_file_feeds_rsync_files_from(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    rsync = subprocess.run(["which", "rsync"], capture_output=True).stdout.strip()
    if not rsync:
        pytest.skip("rsync is not installed")
    diff = tmp_path / "mirrored-files"
    mirror = write_config(tmp_path, upstream.url, diff_file=str(diff))
    assert mirror.run() == 0
    upstream.add_wheel("beta", "0.6")
    assert mirror.run() == 0
    dest = tmp_path / "downstream"
    subprocess.run([rsync, "-a", f"--files-from={diff}", "/", str(dest)], check=True)
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == sorted(p.lstrip("/") for p in listed(diff))


def test_diff_file_in_a_directory_with_epoch_gets_8x_names(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    mirror = write_config(tmp_path, upstream.url, diff_file="{{mirror_directory}}",
                          diff_append_epoch="true")
    assert mirror.run() == 0
    lists = sorted(p.name for p in mirror.root.glob("mirrored-files*"))
    assert len(lists) == 2
    stamp = lists[0].removeprefix("mirrored-files-")
    assert stamp.isdigit() and lists[1] == f"mirrored-files.deleted-{stamp}"
    assert str(mirror.web / "last-modified") in listed(mirror.root / lists[0])


def test_a_killed_runs_writes_are_carried_into_the_next_list(
    tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus
) -> None:
    diff = tmp_path / "mirrored-files"
    mirror = write_config(tmp_path, upstream.url, diff_file=str(diff))
    assert mirror.run() == 0
    web = mirror.web
    # What a run killed before publishing left: a spooled path, the last line cut short.
    earlier = next(p for p in web.rglob("*.whl"))
    (mirror.root / SPOOL_NAME).write_text(f"{earlier}\n{web}/simple/half")
    assert mirror.run() == 0
    assert listed(diff) == [str(earlier), str(web / "last-modified")]


def test_without_diff_file_nothing_is_spooled(tmp_path: Path) -> None:
    changes = Changes(None)
    changes.written(tmp_path / "x")
    changes.deleted(tmp_path / "y")
    assert changes.publish(tmp_path / "list", False, 0.0, tmp_path / "tmp" / "mirror") is None
    assert list(tmp_path.iterdir()) == []
