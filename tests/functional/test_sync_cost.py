"""What a full sync costs per project beyond its request and its two pages (the 750,000-project case)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from support.fakepypi import Upstream
from support.mirrortools import assert_mirror_matches, write_config

import bandersnatch.sync.package
from bandersnatch.ledger.counts import Totals
from bandersnatch.store.protocol import Store
from bandersnatch.sync.package import Known, Layout


def test_new_projects_without_files_remove_no_intents_file_and_check_no_page(
    tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.add_wheel("has-files", "1.0")  # one project writes (and clears) an intents file
    upstream.add_bulk_projects(40)
    mirror = write_config(tmp_path, upstream.url, delete_packages="true")
    removed: list[str] = []
    checked: list[str] = []
    real_remove = bandersnatch.sync.package.remove_file
    real_has_pages, real_totals = bandersnatch.sync.package.has_pages, bandersnatch.sync.package.page_totals

    def remove_file(path: Path, staging: Path) -> bool:
        removed.append(path.name)
        return real_remove(path, staging)

    def has_pages(store: Store, layout: Layout, name: str) -> bool:
        checked.append(name)
        return real_has_pages(store, layout, name)

    def page_totals(store: Store, page_key: str, known: Mapping[str, Known] | None = None) -> Totals:
        checked.append(page_key)
        return real_totals(store, page_key, known)

    monkeypatch.setattr(bandersnatch.sync.package, "remove_file", remove_file)
    monkeypatch.setattr(bandersnatch.sync.package, "has_pages", has_pages)
    monkeypatch.setattr(bandersnatch.sync.package, "page_totals", page_totals)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    # Only the project with a file wrote an intents file, so only it removes one; no project
    # that had no JSON page yet asks the disk again whether it has pages.
    assert removed == ["has-files"]
    assert checked == []
