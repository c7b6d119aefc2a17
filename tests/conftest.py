"""Fixtures for the fake upstream and the static mirror server.

Each test gets its own fresh, running :class:`fakepypi.Upstream` so fault
switches and serials never leak between tests; the distributions it serves
are built once per session (``fakepypi`` caches them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakepypi import SampleCorpus, Upstream, populate_sample
from static_server import StaticServer


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A running fake PyPI at ``upstream.url``; stopped after the test."""
    with Upstream() as server:
        yield server


@pytest.fixture
def sample_corpus(upstream: Upstream) -> SampleCorpus:
    """The upstream filled with :func:`fakepypi.populate_sample`'s small corpus."""
    return populate_sample(upstream)


@pytest.fixture
def serve_static() -> Iterator[Callable[[str | Path], StaticServer]]:
    """A factory starting a :class:`StaticServer` on a directory; all stopped at teardown."""
    started: list[StaticServer] = []

    def start(web_dir: str | Path) -> StaticServer:
        server = StaticServer(web_dir)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
