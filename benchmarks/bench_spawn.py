"""Starts the benchmarked clients on behalf of ``bench_mirror.py`` and measures them.

Why a separate, small process: on Linux a process's peak RSS (``ru_maxrss``)
carries over ``execve`` from the process it was forked from.  A client forked
from the benchmark (which holds the whole corpus in memory) would report the
benchmark's size as its own peak.  Forked from this launcher instead, a
client's figure is its own, with this launcher's few MiB as the floor.

Protocol: one JSON object per line on stdin
(``cmd``, ``env``, ``cwd``, ``log``, ``timeout``); one JSON result per line on
stdout.  The first line written is ``{"ready": true}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any


def _stop_later(pid: int, timeout: float, exited: threading.Event, timed_out: threading.Event) -> None:
    if exited.wait(timeout):
        return
    timed_out.set()
    try:
        os.kill(pid, signal.SIGTERM)
        if not exited.wait(10):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one command to completion; wall clock, CPU and peak RSS of that process alone."""
    exited, timed_out = threading.Event(), threading.Event()
    with open(job["log"], "ab") as out:
        out.write(("\n$ " + " ".join(job["cmd"]) + "\n").encode())
        out.flush()
        started = time.monotonic()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        threading.Thread(target=_stop_later, args=(proc.pid, job["timeout"], exited, timed_out),
                         daemon=True).start()
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.monotonic()
        exited.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "started": started, "ended": ended,
            "user": usage.ru_utime, "sys": usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
            "timed_out": timed_out.is_set()}


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
