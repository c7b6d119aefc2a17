"""User agent simplification, as PEP 381 statistics did it.

A raw user agent is nearly unique per machine (pip appends a JSON blob with
the distribution, CPU, OpenSSL and CI flags), which would make one CSV row
per client instead of per tool.  The statistics want to know *which tool*
downloaded: ``pip/24.2``, ``uv/0.5.1``, ``setuptools/...``, ``curl/8.4.0``,
with every browser collapsed to ``browser`` and crawlers to ``bot``.

The result only ever contains ``[A-Za-z0-9._+-/]``, so it is safe in a CSV
field and an HTML page whatever the client sent.
"""

from __future__ import annotations

import re

OTHER = "other"
BROWSER = "browser"
BOT = "bot"

_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._+-]{0,39})/([A-Za-z0-9][A-Za-z0-9._+-]{0,39})")

# Tools that install or mirror Python packages.  When one of them appears
# anywhere in the agent it wins over a generic HTTP library token, so
# setuptools' old "Python-urllib/2.7 setuptools/0.6c11" counts as setuptools.
# Keys are lower case; values are the spelling reported.
INSTALLERS = {
    name: name
    for name in (
        "pip",
        "uv",
        "setuptools",
        "distribute",
        "bandersnatch",
        "pdm",
        "poetry",
        "pipenv",
        "pipx",
        "pex",
        "hatch",
        "rye",
        "twine",
        "conda",
        "devpi-server",
        "zc.buildout",
        "buildout",
        "easy_install",
        "pypi-mirror",
        "z3c.pypimirror",
    )
}

_BROWSER_PRODUCTS = frozenset({"mozilla", "opera"})
_BOT_WORDS = ("bot", "crawl", "spider", "slurp")


def simplify(agent: str | None) -> str:
    """``product/version`` of the tool behind ``agent``; ``browser``, ``bot`` or ``other`` otherwise."""
    if not agent:
        return OTHER
    agent = agent.strip()
    if not agent or agent == "-":
        return OTHER
    first = _PRODUCT.match(agent)
    if first is not None:
        name = first.group(1).lower()
        if name in INSTALLERS:
            return f"{INSTALLERS[name]}/{first.group(2)}"
    for product in _PRODUCT.finditer(agent):
        name = product.group(1).lower()
        if name in INSTALLERS:
            return f"{INSTALLERS[name]}/{product.group(2)}"
    if first is not None and first.group(1).lower() in _BROWSER_PRODUCTS:
        lowered = agent.lower()
        return BOT if any(word in lowered for word in _BOT_WORDS) else BROWSER
    if first is not None:
        return first.group(0)
    return OTHER
