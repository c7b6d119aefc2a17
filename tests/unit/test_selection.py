"""The selection policy on its own: records in, decisions (with the plugin and reason) out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bandersnatch.config.settings import parse
from bandersnatch.formats.simple import DistFile, ProjectPage
from bandersnatch.selection.policy import Selection


def selection(*sections: str) -> Selection:
    text = "[mirror]\ndirectory = /srv/pypi\n\n" + "\n\n".join(sections) + "\n"
    return Selection(parse(text, Path("/etc/b.conf")).filters)


def page(*filenames: str, versions: tuple[str, ...] | None = None, size: int = 100,
         times: dict[str, str] | None = None) -> ProjectPage:
    files = tuple(DistFile(filename=f, url=f"https://files.example/{f}", hashes={"sha256": "0" * 64},
                           size=size, upload_time=(times or {}).get(f)) for f in filenames)
    return ProjectPage(name="foo", files=files, last_serial=1, versions=versions)


FOO = ("foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl", "foo-2.0rc1-py3-none-any.whl",
       "foo-2.0-py3-none-any.whl", "foo-2.0-cp311-cp311-win_amd64.whl", "foo-3.0.dev1.tar.gz")


def kept(sel: Selection, p: ProjectPage | None = None) -> list[str]:
    return [f.filename for f in sel.plan_files("foo", p or page(*FOO)).files]


def test_no_plugins_select_everything_and_change_nothing() -> None:
    sel = selection()
    assert not sel.active
    assert sel.project("anything") is None
    p = page(*FOO, versions=("1.0", "2.0"))
    plan = sel.plan_files("foo", p)
    assert plan.files == p.files and plan.versions == ("1.0", "2.0") and plan.dropped == ()


@pytest.mark.parametrize(
    ("sections", "name", "plugin"),
    [
        (("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages = Foo.Bar"), "foo-bar", None),
        (("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages = foo-bar"), "other",
         "allowlist_project"),
        (("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = evil"), "evil",
         "blocklist_project"),
        # A blocklist line with specifiers drops releases, not the project.
        (("[plugins]\nenabled = blocklist_project", "[blocklist]\npackages = evil==1.0"), "evil", None),
        (("[plugins]\nenabled = regex_project", "[filter_regex]\npackages = .+-nightly$"), "x-nightly",
         "regex_project"),
        (("[plugins]\nenabled = regex_project", "[filter_regex]\npackages = .+-nightly$"), "nightly-x", None),
        # The blocklist wins over the allowlist.
        (("[plugins]\nenabled =\n    allowlist_project\n    blocklist_project",
          "[allowlist]\npackages = evil", "[blocklist]\npackages = evil"), "evil", "blocklist_project"),
    ],
)
def test_names_entering_the_work_list(sections: tuple[str, ...], name: str, plugin: str | None) -> None:
    why = selection(*sections).project(name)
    assert (why.plugin if why else None) == plugin


def test_an_exclusion_says_which_plugin_and_why() -> None:
    why = selection("[plugins]\nenabled = allowlist_project", "[allowlist]\npackages = a").project("b")
    assert str(why) == "allowlist_project: not in the allowlist"


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        (("[plugins]\nenabled =\n    allowlist_project\n    allowlist_release",
          "[allowlist]\npackages = foo>=2"),  # 2.0rc1 comes before 2.0 (PEP 440); 3.0.dev1 after it
         ["foo-2.0-py3-none-any.whl", "foo-2.0-cp311-cp311-win_amd64.whl", "foo-3.0.dev1.tar.gz"]),
        (("[plugins]\nenabled = blocklist_release", "[blocklist]\npackages = foo<2"),
         ["foo-2.0rc1-py3-none-any.whl", "foo-2.0-py3-none-any.whl", "foo-2.0-cp311-cp311-win_amd64.whl",
          "foo-3.0.dev1.tar.gz"]),
        (("[plugins]\nenabled = regex_release", "[filter_regex]\nreleases = .*rc\\d"),
         ["foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl", "foo-2.0-py3-none-any.whl",
          "foo-2.0-cp311-cp311-win_amd64.whl", "foo-3.0.dev1.tar.gz"]),
        (("[plugins]\nenabled = prerelease_release",),
         ["foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl", "foo-2.0-py3-none-any.whl",
          "foo-2.0-cp311-cp311-win_amd64.whl"]),
        (("[plugins]\nenabled = prerelease_release", "[filter_prerelease]\npackages = other"), list(FOO)),
        (("[plugins]\nenabled = latest_release", "[latest_release]\nkeep = 1"), ["foo-3.0.dev1.tar.gz"]),
        (("[plugins]\nenabled =\n    latest_release\n    prerelease_release", "[latest_release]\nkeep = 1"),
         ["foo-2.0-py3-none-any.whl", "foo-2.0-cp311-cp311-win_amd64.whl"]),
        (("[plugins]\nenabled = exclude_platform", "[blocklist]\nplatforms = windows"),
         [f for f in FOO if "win_amd64" not in f]),
    ],
)
def test_release_and_file_filters(sections: tuple[str, ...], expected: list[str]) -> None:
    assert kept(selection(*sections)) == expected


def test_latest_release_by_time_keeps_the_most_recently_uploaded() -> None:
    sel = selection("[plugins]\nenabled = latest_release", "[latest_release]\nkeep = 1\nsort_by = time")
    p = page("foo-1.0.tar.gz", "foo-2.0.tar.gz",
             times={"foo-1.0.tar.gz": "2026-01-02T00:00:00Z", "foo-2.0.tar.gz": "2025-01-01T00:00:00Z"})
    assert kept(sel, p) == ["foo-1.0.tar.gz"]


def test_versions_list_only_releases_that_keep_files_in_upstream_order() -> None:
    sel = selection("[plugins]\nenabled = blocklist_release", "[blocklist]\npackages = foo==2.0")
    plan = sel.plan_files("foo", page(*FOO, versions=("0.9", "1.0", "2.0rc1", "2.0", "3.0.dev1")))
    assert plan.versions == ("1.0", "2.0rc1", "3.0.dev1")
    assert {name for name, _ in plan.dropped} == {"foo-2.0-py3-none-any.whl",
                                                  "foo-2.0-cp311-cp311-win_amd64.whl"}
    assert all(why.plugin == "blocklist_release" for _, why in plan.dropped)


def test_a_file_whose_version_cannot_be_read_is_kept_unless_releases_are_limited() -> None:
    odd = page("foo-installer.exe", "foo-1.0.tar.gz")
    assert kept(selection("[plugins]\nenabled = prerelease_release"), odd) == ["foo-installer.exe",
                                                                                "foo-1.0.tar.gz"]
    limited = selection("[plugins]\nenabled =\n    allowlist_project\n    allowlist_release",
                        "[allowlist]\npackages = foo>=1")
    assert kept(limited, odd) == ["foo-1.0.tar.gz"]


@pytest.mark.parametrize(
    ("sections", "excluded"),
    [
        (("[plugins]\nenabled = size_project_metadata", "[size_project_metadata]\nmax_package_size = 500"),
         True),  # 6 files of 100 bytes
        (("[plugins]\nenabled = size_project_metadata", "[size_project_metadata]\nmax_package_size = 600"),
         False),
        # The allowlist exempts from the size limit unless allowlist_project is enabled (then: both).
        (("[plugins]\nenabled = size_project_metadata", "[size_project_metadata]\nmax_package_size = 500",
          "[allowlist]\npackages = foo"), False),
        (("[plugins]\nenabled =\n    size_project_metadata\n    allowlist_project",
          "[size_project_metadata]\nmax_package_size = 500", "[allowlist]\npackages = foo"), True),
        (("[plugins]\nenabled = versions_count_project_metadata",
          "[versions_count_project_metadata]\nmin_versions = 5"), True),  # 4 versions
        (("[plugins]\nenabled = versions_count_project_metadata",
          "[versions_count_project_metadata]\nmax_versions = 3"), True),
        (("[plugins]\nenabled = versions_count_project_metadata",
          "[versions_count_project_metadata]\nmin_versions = 4\nmax_versions = 4"), False),
    ],
)
def test_project_wide_limits_need_the_page(sections: tuple[str, ...], excluded: bool) -> None:
    assert (selection(*sections).project_page("foo", page(*FOO)) is not None) == excluded


def test_roots_carry_the_extras_asked_for() -> None:
    sel = selection("[plugins]\nenabled = allowlist_project",
                    "[allowlist]\npackages =\n    Dep_Root[Fancy]\n    dep-root[other]\n"
                    "with-dependencies = true")
    assert sel.with_dependencies
    assert sel.roots == {"dep-root": frozenset({"fancy", "other"})}
