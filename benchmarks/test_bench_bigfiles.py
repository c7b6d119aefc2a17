"""How ``bench_bigfiles.py`` counts the throughput while every worker is busy (the tail left out).

Run from the repository root: ``venv/bin/python -m pytest -q benchmarks/test_bench_bigfiles.py``
(the default ``pytest`` run does not collect ``benchmarks/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bigfiles import busy_throughput  # noqa: E402


def test_the_tail_after_the_first_worker_runs_out_of_files_is_left_out() -> None:
    # Two workers at 10 bytes/s each: files 0-10 s and 0-5 s, then 5-20 s; the window ends at
    # 10 s (after it one file is left), when 100 + 50 + 50 bytes have been sent.
    transfers = [(0.0, 10.0, 100), (0.0, 5.0, 50), (5.0, 20.0, 150)]
    assert busy_throughput(transfers, 2) == pytest.approx(20.0)


def test_fewer_transfers_than_workers_give_no_figure() -> None:
    assert busy_throughput([(0.0, 1.0, 10)], 2) is None
