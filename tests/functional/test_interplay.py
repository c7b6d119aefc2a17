"""Features that each work alone, checked together: filters, guards, counts, diff-file, dependencies."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream
from support.mirrortools import page_dir, write_config
from test_adopt import make_8x_mirror
from test_filters_sync import plugins


def test_filters_selecting_no_project_leave_the_mirror_up_to_date_on_the_next_run(
        tmp_path: Path, upstream: Upstream, caplog: pytest.LogCaptureFixture) -> None:
    upstream.add_wheel("alpha", "1.0")
    mirror = write_config(tmp_path, upstream.url, sections=plugins(
        "allowlist_project", allowlist="packages =\n    nothing-here"))
    assert mirror.run() == 0
    upstream.reset_requests()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert "content was lost" not in caplog.text
    assert "Mirror is up to date" in caplog.text


def test_json_true_writes_the_json_api_copy_the_readme_promises(tmp_path: Path, upstream: Upstream) -> None:
    upstream.add_wheel("alpha", "1.0")
    mirror = write_config(tmp_path, upstream.url, json="true")
    assert mirror.run() == 0
    assert (mirror.web / "pypi" / "alpha" / "json").is_file()


def test_adoption_lists_the_page_it_turns_from_a_link_into_a_file_in_the_diff_file(
        tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus) -> None:
    # Downstream copied 8.x's index.html as a link into versions/, which adoption deletes: the
    # plain file that replaces the link must reach it, or its copy of the page dangles.
    diff = tmp_path / "changes.txt"
    mirror = write_config(tmp_path, upstream.url, diff_file=str(diff))
    assert mirror.run() == 0
    make_8x_mirror(mirror, upstream.serial)
    assert mirror.run() == 0
    page = page_dir(mirror.web, "alpha-lib") / "index.html"
    assert not page.is_symlink()
    assert str(page) in diff.read_text().splitlines()


def test_the_diff_file_spool_is_never_written_through_a_symlink(tmp_path: Path, upstream: Upstream) -> None:
    upstream.add_wheel("alpha", "1.0")
    outside = tmp_path / "precious"
    outside.write_bytes(b"keep me\n")
    mirror = write_config(tmp_path, upstream.url, diff_file=str(tmp_path / "changes.txt"))
    mirror.root.mkdir()
    (mirror.root / "diff-file.pending").symlink_to(outside)
    assert mirror.run() == 1
    assert outside.read_bytes() == b"keep me\n"
