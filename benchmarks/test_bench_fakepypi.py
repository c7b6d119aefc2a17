"""The fake upstream's benchmark helpers: bulk projects, traffic counters, request-log switch.

Run from the repository root: ``venv/bin/python -m pytest -q benchmarks/test_bench_fakepypi.py``
(pyproject puts ``tests/`` on the path; the default ``pytest`` run does not collect this file).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.fakepypi import SIMPLE_HTML, SIMPLE_JSON, Upstream  # noqa: E402


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def _without_timestamps(rows: list[list[Any]]) -> list[list[Any]]:
    return [[name, version, action, serial] for name, version, _, action, serial in rows]


def test_bulk_projects_are_listed_journaled_and_served(upstream: Upstream) -> None:
    upstream.add_project("Before")
    serials = upstream.add_bulk_projects(1000, prefix="bulk-", width=4)
    upstream.add_project("after")
    assert (serials[0], serials[-1]) == (upstream.serial - 1000, upstream.serial - 1)
    listing = upstream.list_packages_with_serial()
    assert len(listing) == 1002 and listing["bulk-0007"] == serials[7]
    rows = upstream.changelog_since_serial(serials[-3])
    assert _without_timestamps(rows) == [
        ["bulk-0998", None, "create", serials[-2]], ["bulk-0999", None, "create", serials[-1]],
        ["after", None, "create", upstream.serial],
    ]
    page = requests.get(f"{upstream.url}/simple/bulk-0005/", headers={"Accept": SIMPLE_JSON}, timeout=5)
    assert page.json()["files"] == [] and page.headers["X-PyPI-Last-Serial"] == str(serials[5])
    assert requests.get(f"{upstream.url}/simple/bulk-1000/", timeout=5).status_code == 404
    assert requests.get(f"{upstream.url}/pypi/bulk-0005/json", timeout=5).json()["last_serial"] == serials[5]


def test_changed_bulk_project_gets_a_real_history(upstream: Upstream) -> None:
    serials = upstream.add_bulk_projects(10, prefix="b-", width=2)
    upstream.add_file("b-03", "b_03-1.0.tar.gz", b"content", version="1.0")
    assert upstream.list_packages_with_serial()["b-03"] == upstream.serial
    assert [f.filename for f in upstream.files("b-03")] == ["b_03-1.0.tar.gz"]
    assert upstream.snapshot("b-03", stale=True).serial == serials[3]  # the bulk state, one change back
    upstream.touch("b-04", "update classifiers")
    assert upstream.changelog[-1].action == "update classifiers"
    upstream.remove_project("b-03")
    assert "b-03" not in upstream.list_packages_with_serial()
    assert requests.get(f"{upstream.url}/simple/b-03/", timeout=5).status_code == 404
    assert [s.name for s in upstream.all_current()][:4] == ["b-00", "b-01", "b-02", "b-04"]


def test_bulk_upstream_looks_exactly_like_one_built_project_by_project() -> None:
    with Upstream() as bulk, Upstream() as plain:
        bulk.add_bulk_projects(50, prefix="p-", width=3)
        for i in range(50):
            plain.add_project(f"p-{i:03d}")
        for server in (bulk, plain):
            server.add_project("Zed.Project")
            server.add_file("p-010", "p_010-1.0.tar.gz", b"x" * 10, version="1.0")
        assert bulk.list_packages_with_serial() == plain.list_packages_with_serial()
        assert _without_timestamps(bulk.changelog_since_serial(0)) == _without_timestamps(
            plain.changelog_since_serial(0))
        for accept in (SIMPLE_JSON, SIMPLE_HTML):
            pages = [requests.get(f"{s.url}/simple/", headers={"Accept": accept}, timeout=5)
                     for s in (bulk, plain)]
            assert pages[0].content == pages[1].content
            assert pages[0].headers["X-PyPI-Last-Serial"] == pages[1].headers["X-PyPI-Last-Serial"]


def test_root_page_cache_follows_the_serial(upstream: Upstream) -> None:
    upstream.add_bulk_projects(3, prefix="c-", width=1)
    first = requests.get(f"{upstream.url}/simple/", headers={"Accept": SIMPLE_JSON}, timeout=5).json()
    upstream.remove_project("c-1")
    second = requests.get(f"{upstream.url}/simple/", headers={"Accept": SIMPLE_JSON}, timeout=5).json()
    assert [p["name"] for p in first["projects"]] == ["c-0", "c-1", "c-2"]
    assert [p["name"] for p in second["projects"]] == ["c-0", "c-2"]


def test_bulk_names_must_be_new_and_normalized(upstream: Upstream) -> None:
    upstream.add_project("x-5")
    with pytest.raises(ValueError):
        upstream.add_bulk_projects(10, prefix="x-", width=1)  # x-5 exists
    with pytest.raises(ValueError):
        upstream.add_bulk_projects(10, prefix="Y_", width=1)
    upstream.add_bulk_projects(10, prefix="y-", width=1)
    with pytest.raises(ValueError):
        upstream.add_bulk_projects(10, prefix="y-", width=2)


def test_traffic_counters_and_request_log_switch(upstream: Upstream) -> None:
    upstream.add_file("demo", "demo-1.0.tar.gz", b"z" * 1000, version="1.0")
    url = upstream.file_url(upstream.files("demo")[0])
    page = requests.get(f"{upstream.url}/simple/demo/", headers={"Accept": SIMPLE_JSON}, timeout=5)
    requests.get(url, timeout=5)
    requests.head(url, timeout=5)
    assert upstream.traffic["page"] == [1, len(page.content)]
    assert upstream.traffic["file"] == [2, 1000]  # HEAD sends no body
    assert [r.sent for r in upstream.requests] == [len(page.content), 1000, 0]
    # ``finished`` is stamped after the answer is written, so the client may read it first.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not all(r.finished for r in upstream.requests):
        time.sleep(0.005)
    time.sleep(0.01)  # and the busy time added just after
    assert all(r.finished >= r.started > 0 for r in upstream.requests)
    assert upstream.busy_seconds > 0
    upstream.reset_requests()
    upstream.record_requests = False
    requests.get(url, timeout=5)
    assert upstream.requests == [] and upstream.traffic_total() == (1, 1000)


def test_json_api_advertises_core_metadata_that_its_url_serves(upstream: Upstream) -> None:
    # PyPI's /pypi/<p>/json file entries carry "core-metadata": {"sha256": ...} or false;
    # bandersnatch 8.2's `core-metadata = true` reads it and fetches <file url>.metadata.
    upstream.add_file("demo", "demo-1.0.tar.gz", b"sdist", version="1.0")
    wheel = upstream.add_wheel("demo", "1.0", with_metadata=True)
    data = requests.get(f"{upstream.url}/pypi/demo/json", timeout=5).json()
    for entries in (data["urls"], data["releases"]["1.0"]):
        by_name = {e["filename"]: e for e in entries}
        assert by_name["demo-1.0.tar.gz"]["core-metadata"] is False
        advertised = by_name[wheel.filename]["core-metadata"]
        assert advertised == {"sha256": wheel.metadata_sha256}
        served = requests.get(by_name[wheel.filename]["url"] + ".metadata", timeout=5)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == advertised["sha256"]
    assert upstream.traffic["metadata"][0] == 2
