"""User agents are reduced to the tool that downloaded, as PEP 381 statistics did."""

from __future__ import annotations

import pytest

from bandersnatch.stats.agents import simplify

PIP_JSON = (
    'pip/24.2 {"ci":null,"cpu":"x86_64","distro":{"name":"Ubuntu","version":"22.04"},'
    '"implementation":{"name":"CPython","version":"3.11.4"},"installer":{"name":"pip","version":"24.2"},'
    '"setuptools_version":"68.0.0","system":{"name":"Linux","release":"5.15.0"}}'
)


@pytest.mark.parametrize(
    ("agent", "client"),
    [
        (PIP_JSON, "pip/24.2"),
        (PIP_JSON.replace('"', r"\x22"), "pip/24.2"),  # as nginx logs it
        ("pip/1.5.6 CPython/2.7.6 Linux/3.13.0-24-generic", "pip/1.5.6"),
        ('uv/0.5.1 {"installer":{"name":"uv","version":"0.5.1"}}', "uv/0.5.1"),
        ("Python-urllib/2.7 setuptools/0.6c11", "setuptools/0.6c11"),
        ("setuptools/68.0.0 Python-urllib/3.11", "setuptools/68.0.0"),
        ("Python-urllib/3.11", "Python-urllib/3.11"),
        ("bandersnatch/6.5.0 (cpython 3.11.4-final0, Linux x86_64)", "bandersnatch/6.5.0"),
        ("poetry/1.8.3", "poetry/1.8.3"),
        ("pdm/2.15.0", "pdm/2.15.0"),
        ("curl/8.4.0", "curl/8.4.0"),
        ("Wget/1.21.2 (linux-gnu)", "Wget/1.21.2"),
        ("python-requests/2.31.0", "python-requests/2.31.0"),
        ("Go-http-client/1.1", "Go-http-client/1.1"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "browser",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "browser"),
        ("Opera/9.80 (Windows NT 6.1) Presto/2.12.388 Version/12.16", "browser"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("Mozilla/5.0 (compatible; bingbot/2.0)", "bot"),
        ("SomeTool/3", "SomeTool/3"),
        ("", "other"),
        ("-", "other"),
        (None, "other"),
        ("just words", "other"),
        ('"><script>alert(1)</script>', "other"),
        ("evil,tool/1.0", "other"),
    ],
)
def test_simplify(agent: str | None, client: str) -> None:
    assert simplify(agent) == client


def test_simplified_clients_are_safe_in_csv_and_html() -> None:
    for agent in ('a/1,2"<>', "x/" + "9" * 500, "tool/1.0\u202e", "naïve/1"):
        client = simplify(agent)
        assert not set(client) & set(',"<>&\n\r\u202e'), client
        assert len(client) <= 81
