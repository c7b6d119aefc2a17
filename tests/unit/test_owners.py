"""``owners.Links``' answers about what is published beside a file (the gate asks these too)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bandersnatch.publish.owners import Linked, Links, sidecar_of

WHEEL = "ab/cd/good-1.0-py3-none-any.whl"


@pytest.mark.parametrize(("rel", "expected"), [
    (WHEEL, None),
    (WHEEL + ".metadata", (WHEEL, ".metadata")),
    (WHEEL + ".provenance", (WHEEL, ".provenance")),
    (".provenance", None),
    (WHEEL + ".PROVENANCE", None),  # ours are spelled exactly so
])
def test_sidecar_of_names_the_file_and_the_suffix(rel: str, expected: tuple[str, str] | None) -> None:
    assert sidecar_of(rel) == expected


def links(tmp_path: Path, pages: dict[str, dict[str, Linked]]) -> Links:
    """Links whose published pages are ``pages`` (project -> path -> how it links it)."""
    return Links(tmp_path / "claims", tmp_path / "staging",
                 lambda project, rel: pages.get(project, {}).get(rel))


def test_the_owner_by_name_holds_a_files_sidecars_while_its_page_links_it(tmp_path: Path) -> None:
    pages: dict[str, dict[str, Linked]] = {"good": {WHEEL: Linked("a" * 64, None, frozenset())}}
    registry = links(tmp_path, pages)
    registry.begin("thief", {}, [WHEEL])
    assert registry.sidecar_holder("thief", WHEEL) == "good"
    assert registry.sidecar_holder("good", WHEEL) is None
    pages.clear()  # good's page no longer links it: thief, linking it by claim, takes the hold
    assert registry.sidecar_holder("thief", WHEEL) is None
    assert (tmp_path / "claims" / "thief").read_text().split() == ["+" + WHEEL, WHEEL]


def test_of_two_claimants_the_first_to_ask_holds_until_its_pages_let_go(tmp_path: Path) -> None:
    rel = "ab/cd/oldname-1.0.tar.gz"  # no project "oldname": both pages link it by claim
    pages: dict[str, dict[str, Linked]] = {}
    registry = links(tmp_path, pages)
    registry.begin("newname", {}, [rel])
    assert registry.sidecar_holder("newname", rel) is None
    pages["newname"] = {rel: Linked(None, None, frozenset({".provenance"}))}
    registry.settle("newname", [rel])
    registry.end("newname")
    assert (tmp_path / "claims" / "newname").read_text().split() == ["+" + rel, rel]
    registry.begin("thief", {}, [rel])
    assert registry.sidecar_holder("thief", rel) == "newname"
    assert links(tmp_path, pages).sidecar_holder("thief", rel) == "newname"  # the next run knows it too
    del pages["newname"]
    registry.settle("newname", [])
    assert not (tmp_path / "claims" / "newname").exists()
    assert registry.sidecar_holder("thief", rel) is None


def test_a_sidecar_goes_only_when_no_other_page_links_it(tmp_path: Path) -> None:
    pages = {"good": {WHEEL: Linked("a" * 64, None, frozenset({".metadata"}))}}
    registry = links(tmp_path, pages)
    deleted: list[str] = []
    for suffix in (".metadata", ".provenance"):
        registry.delete_sidecar_if_unlinked("thief", WHEEL, suffix, functools.partial(deleted.append, suffix))
    assert deleted == [".provenance"]  # good's page links its metadata
    registry.begin("other", {}, [WHEEL])  # a sync in flight may still publish one: kept
    assert registry.sidecar_linkers("thief", WHEEL, ".provenance") == ["other"]
