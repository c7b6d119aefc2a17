"""Distribution file names propose the project they belong to."""

from __future__ import annotations

import pytest

from bandersnatch.stats.filenames import candidate_projects, guess_project


@pytest.mark.parametrize(
    ("filename", "candidates"),
    [
        ("requests-2.32.3-py3-none-any.whl", ["requests"]),
        ("zope.interface-6.0-cp311-cp311-manylinux_2_17_x86_64.whl", ["zope-interface"]),
        ("typing_extensions-4.12.2-py3-none-any.whl", ["typing-extensions"]),
        ("jinja2_time-0.2.0-py2.py3-none-any.whl", ["jinja2-time"]),
        ("torch-2.1.0+cpu-cp311-cp311-linux_x86_64.whl", ["torch"]),
        ("requests-2.32.3.tar.gz", ["requests"]),
        ("Django-4.2.7.tar.gz", ["django"]),
        ("jinja2-time-0.2.0.tar.gz", ["jinja2-time"]),
        ("foo-2-bar-1.0.tar.gz", ["foo-2-bar", "foo"]),
        ("py-3to2-1.1.1.zip", ["py-3to2", "py"]),
        ("django-2fa-0.1.tar.gz", ["django-2fa", "django"]),
        ("foo-1.0-1.tar.gz", ["foo-1-0", "foo"]),
        ("backports.zoneinfo-0.2.1.tar.bz2", ["backports-zoneinfo"]),
        ("simplejson-3.19.2.tgz", ["simplejson"]),
        ("pkg-1.0.tar.xz", ["pkg"]),
        ("setuptools-0.6c11-py2.7.egg", ["setuptools"]),
        ("pywin32-306.win32-py3.11.exe", ["pywin32"]),
        ("foo_bar-1.0.tar.gz", ["foo-bar"]),
        ("3to2-1.1.1.zip", ["3to2"]),
        # Not distributions: never downloads.
        ("requests-2.32.3-py3-none-any.whl.metadata", []),
        ("requests-2.32.3.tar.gz.asc", []),
        ("README", []),
        (".whl", []),
        ("noversion.tar.gz", []),
        ("-1.0.tar.gz", []),
        ("../../etc-1.0.tar.gz", []),
    ],
)
def test_candidate_projects(filename: str, candidates: list[str]) -> None:
    assert candidate_projects(filename) == candidates


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        ("requests-2.32.3-py3-none-any.whl", "requests"),
        ("jinja2-time-0.2.0.tar.gz", "jinja2-time"),
        ("foo-1.0-1.tar.gz", "foo"),  # legacy version-build, not project "foo-1.0"
        ("foo-2-bar-1.0.tar.gz", "foo-2-bar"),
        ("requests-2.32.3-py3-none-any.whl.metadata", None),
        ("index.html", None),
    ],
)
def test_guess_project_without_the_index(filename: str, project: str | None) -> None:
    assert guess_project(filename) == project
