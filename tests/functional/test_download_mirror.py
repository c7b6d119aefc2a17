"""``download-mirror`` (bandersnatch 8's meaning): files come from a second fake PyPI first.

The download mirror is another ``Upstream`` holding the same corpus: its files sit at the
same paths (``/packages/<blake2b>/<name>``), as a bandersnatch mirror's ``web/`` holds PyPI's.
Every file it serves is checked against the master's page; the master is asked for a file
only when the download mirror has it missing, failing or wrong (never with no-fallback).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakepypi import SampleCorpus, Upstream, populate_sample
from support.mirrortools import MirrorSetup, assert_mirror_matches, sha256_of, write_config

FILE = "beta-0.5-py3-none-any.whl"


@pytest.fixture
def nearby(upstream: Upstream, sample_corpus: SampleCorpus) -> Iterator[Upstream]:
    """A download mirror with the sample corpus at the same paths as the master's."""
    with Upstream() as server:
        populate_sample(server)
        assert {e.path for e in server.files("beta")} == {e.path for e in upstream.files("beta")}
        yield server


def _mirror(tmp_path: Path, upstream: Upstream, nearby: Upstream, **options: str) -> MirrorSetup:
    return write_config(tmp_path, upstream.url, download_mirror=nearby.url + "/", **options)


def _beta_path(upstream: Upstream) -> str:
    return upstream.get_file("beta", FILE).path


def test_every_file_comes_from_the_download_mirror_and_the_summary_counts_them(
        tmp_path: Path, upstream: Upstream, nearby: Upstream, sample_corpus: SampleCorpus,
        caplog: pytest.LogCaptureFixture) -> None:
    mirror = _mirror(tmp_path, upstream, nearby)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    files = len(sample_corpus.files)
    assert upstream.count_requests("/packages/") == 0  # the master serves pages only
    assert nearby.count_requests("/packages/", "GET") == files
    assert nearby.count_requests("/simple/") == 0 and nearby.count_requests("/pypi") == 0
    # The same session as the master's: its User-Agent (and proxy, CA bundle, timeouts).
    agents = {r.user_agent for r in upstream.requests} | {r.user_agent for r in nearby.requests}
    assert len(agents) == 1 and next(iter(agents), "").startswith("bandersnatch/")
    summary = [r.getMessage() for r in caplog.records if "mirror complete" in r.getMessage()]
    assert f"(files from {nearby.url.split('//')[1]} {files})" in summary[0], summary


def test_a_file_missing_on_the_download_mirror_comes_from_upstream(
        tmp_path: Path, upstream: Upstream, nearby: Upstream, sample_corpus: SampleCorpus,
        caplog: pytest.LogCaptureFixture) -> None:
    nearby.fail(_beta_path(upstream), 404, times=None)
    mirror = _mirror(tmp_path, upstream, nearby)
    with caplog.at_level(logging.INFO):
        assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/packages/") == 1
    assert nearby.count_requests(_beta_path(upstream)) == 1  # one try: upstream is its retry
    summary = next(r.getMessage() for r in caplog.records if "mirror complete" in r.getMessage())
    host = upstream.url.split("//")[1]
    assert f"{host} 1 (1 not on the download mirror)" in summary, summary  # an answer, not a failure


def test_wrong_bytes_on_the_download_mirror_are_never_published_and_come_from_upstream(
        tmp_path: Path, upstream: Upstream, nearby: Upstream, sample_corpus: SampleCorpus) -> None:
    nearby.corrupt(None, FILE)  # same length, other bytes: only the hash can tell
    mirror = _mirror(tmp_path, upstream, nearby)
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert ("corrupt", _beta_path(upstream)) in nearby.fault_log
    assert upstream.count_requests("/packages/") == 1
    published = mirror.web / _beta_path(upstream).lstrip("/")
    assert sha256_of(published) == sample_corpus.files[FILE].sha256


def test_no_fallback_and_a_404_fails_the_project_publishes_nothing_wrong_and_never_asks_upstream(
        tmp_path: Path, upstream: Upstream, nearby: Upstream, sample_corpus: SampleCorpus) -> None:
    nearby.fail(_beta_path(upstream), 404, times=None)
    mirror = _mirror(tmp_path, upstream, nearby, download_mirror_no_fallback="true")
    assert mirror.run() == 1
    assert upstream.count_requests("/packages/") == 0
    assert not (mirror.web / _beta_path(upstream).lstrip("/")).exists()
    assert not (mirror.web / "simple" / "beta").exists()  # no page links what is not there
    assert (mirror.web / "simple" / "alpha-lib" / "index.v1_json").is_file()
    # The download mirror has it again: the next run finishes the project.
    nearby.clear_faults()
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/packages/") == 0


def test_a_download_mirror_that_is_down_leaves_every_file_to_upstream_and_the_run_complete(
        tmp_path: Path, upstream: Upstream, nearby: Upstream, sample_corpus: SampleCorpus) -> None:
    mirror = _mirror(tmp_path, upstream, nearby)
    nearby.stop()  # connections refused: no answer, never counted as the master being unreachable
    assert mirror.run() == 0
    assert_mirror_matches(upstream, mirror.web)
    assert upstream.count_requests("/packages/") == len(sample_corpus.files)
