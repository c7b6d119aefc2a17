"""Specification of project names: PEP 503 normalization and which names we accept at all."""

from __future__ import annotations

import pytest

from bandersnatch.names import MAX_NAME_LENGTH, is_valid_project_name, normalize


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("requests", "requests"),
        ("Django", "django"),
        ("SQLAlchemy", "sqlalchemy"),
        ("zope.interface", "zope-interface"),
        ("typing_extensions", "typing-extensions"),
        ("backports.ssl_match_hostname", "backports-ssl-match-hostname"),
        ("Foo-Bar", "foo-bar"),
        ("foo--bar", "foo-bar"),
        ("foo__bar", "foo-bar"),
        ("foo..bar", "foo-bar"),
        ("foo-_.-bar", "foo-bar"),
        ("FOO._-._BAR_baz", "foo-bar-baz"),
        ("a", "a"),
        ("A1", "a1"),
        ("1", "1"),
        ("already-normal-1", "already-normal-1"),
    ],
)
def test_normalize_collapses_separator_runs_to_one_dash_and_lowercases(name: str, normalized: str) -> None:
    assert normalize(name) == normalized


@pytest.mark.parametrize("name", ["Foo.Bar", "foo_bar", "FOO-BAR", "foo-_-bar"])
def test_normalize_is_idempotent(name: str) -> None:
    assert normalize(normalize(name)) == normalize(name)


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "Z",
        "0",
        "requests",
        "Django",
        "zope.interface",
        "typing_extensions",
        "backports.ssl-match-hostname",
        "foo--bar",
        "foo__bar",
        "foo..bar",
        "python-dateutil",
        "3to2",
        "x" * MAX_NAME_LENGTH,
    ],
)
def test_names_pypi_could_have_registered_are_valid(name: str) -> None:
    assert is_valid_project_name(name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dotdot"),
        pytest.param("/x", id="leading-slash"),
        pytest.param("a/b", id="slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("a\0b", id="nul"),
        pytest.param("x" * (MAX_NAME_LENGTH + 1), id="201-chars"),
        pytest.param("-foo", id="leading-dash"),
        pytest.param("foo-", id="trailing-dash"),
        pytest.param(".foo", id="leading-dot"),
        pytest.param("_foo", id="leading-underscore"),
        pytest.param("foo bar", id="inner-space"),
        pytest.param(" foo", id="leading-space"),
        pytest.param("foo ", id="trailing-space"),
        pytest.param("café", id="non-ascii-letter"),
        pytest.param("ﬁle", id="ligature"),
        pytest.param("\u017f", id="long-s-casefolds-to-s"),
        pytest.param("\u212a", id="kelvin-sign-casefolds-to-k"),
        pytest.param("foo\n", id="trailing-newline"),
        pytest.param("\nfoo", id="leading-newline"),
        pytest.param("foo\tbar", id="tab"),
        pytest.param("%2e%2e", id="percent-encoded-dotdot"),
        pytest.param("foo%2fbar", id="percent-encoded-slash"),
        pytest.param("foo:bar", id="colon"),
    ],
)
def test_path_tricks_and_junk_are_not_valid_names(name: str) -> None:
    assert not is_valid_project_name(name)
