"""Sort a text file of lines too large for memory: sorted runs on disk, then one streamed merge.

``verify`` lists every file every page links (ten million lines on PyPI) and
must compare that list with a walk of the disk in the same order.  Sorting in
memory would cost gigabytes; this holds one run of about ``run_bytes`` at a time
(counted as Python holds the lines, not as the file does) and one buffered line
per run during the merge.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, cast

# A run is cut by the memory its lines take, not by their count: 200,000 lines were ~15 MB
# of project names but ~50 MB of verify's ~200-byte spool lines.  24 MiB keeps the merge
# at 100-150 runs (open files) for ten million such lines.
RUN_BYTES = 24 << 20
_LINE_OVERHEAD = 57  # a str's header (49 bytes for ASCII) and its slot in the batch list


def open_text(path: Path, mode: str = "r") -> TextIO:
    """A spool file: UTF-8, names from disk that are not UTF-8 kept as they are, ``\\n`` lines."""
    return cast(TextIO, open(path, mode, encoding="utf-8", errors="surrogateescape", newline="\n"))  # noqa: SIM115


def _write_run(lines: list[str], path: Path) -> None:
    lines.sort()
    with open_text(path, "w") as out:
        out.writelines(lines)


def sort_lines(src: Path, dst: Path, scratch: Path, run_lines: int | None = None,
               run_bytes: int = RUN_BYTES) -> int:
    """Write the lines of ``src`` to ``dst`` in code point order; return how many there are.

    Every line must end with ``\\n``.  ``scratch`` holds the sorted runs and is
    emptied again before returning.  A run ends at ``run_bytes`` of lines in memory,
    or (when given) at ``run_lines`` lines, whichever comes first.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    runs: list[Path] = []
    count = 0
    with open_text(src, "r") as f:
        batch: list[str] = []
        held = 0
        for line in f:
            batch.append(line)
            held += len(line) + _LINE_OVERHEAD
            if held >= run_bytes or (run_lines is not None and len(batch) >= run_lines):
                runs.append(scratch / f"run-{len(runs):06d}")
                _write_run(batch, runs[-1])
                count += len(batch)
                batch, held = [], 0
        count += len(batch)
        if batch or not runs:
            runs.append(scratch / f"run-{len(runs):06d}")
            _write_run(batch, runs[-1])
    try:
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context(open_text(run, "r")) for run in runs]
            tmp = dst.with_name(dst.name + ".part")
            with open_text(tmp, "w") as out:
                out.writelines(heapq.merge(*files))
            os.replace(tmp, dst)
    finally:
        for run in runs:
            with contextlib.suppress(FileNotFoundError):
                run.unlink()
    return count


def read_lines(path: Path, skip_through: str | None = None) -> Iterator[str]:
    """The lines of ``path`` without their ``\\n``; with ``skip_through``, only those sorting after it."""
    with open_text(path, "r") as f:
        for line in f:
            line = line[:-1]
            if skip_through is not None and line <= skip_through:
                continue
            yield line
