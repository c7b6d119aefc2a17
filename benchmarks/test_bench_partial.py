"""Smoke test of ``bench_partial.py``: its closure model, and one small run whose checks all hold.

Run from the repository root: ``venv/bin/python -m pytest -q benchmarks/test_bench_partial.py``
(the default ``pytest`` run does not collect ``benchmarks/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_partial  # noqa: E402


def test_the_model_follows_markers_extras_and_cycles_as_the_issue_specifies() -> None:
    graph = bench_partial.build_graph(5)
    selected = bench_partial.closure(graph)
    assert {"win-only", "py2-only", "cyc-a", "cyc-b", "ghost-dependency"} <= set(selected)
    assert {"xtra-speed", "xtra-deep", "xtra-deeper", "xtra-fancy"} <= set(selected)
    assert not {"pypy-only", "xtra-docs", "xtra-other", "unrelated-0"} & set(selected)
    assert selected["xtra-deep"] == {"deep"} and selected["root-03"] == {"fancy"}


@pytest.mark.slow
def test_a_small_run_meets_every_expectation(tmp_path: Path) -> None:
    # Requests and contents are checked exactly; the no-op's wall target is left to real runs,
    # since interpreter start-up alone can take a second on a loaded test machine.
    argv = ["--projects", "300", "--roots", "5", "--latency", "0", "--noop-runs", "1", "--noop-wall", "60",
            "--workdir", str(tmp_path / "work")]
    assert bench_partial.main(argv) == 0
