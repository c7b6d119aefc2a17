"""The PEP 381 per-day file: bzip2-compressed CSV, one row per (project, file, client).

Layout, as PyPI published it for mirrors::

    # package,filename,useragent,count
    requests,requests-2.32.3-py3-none-any.whl,pip/24.2,17

Rows are sorted so the same counts always give the same bytes.  The file is
also our record of what was counted for that day: new counts are added to
the rows already there, which is why a day never shrinks when the logs it
came from are rotated away.
"""

from __future__ import annotations

import bz2
import csv
import io

from .aggregate import DayCounts

HEADER = "# package,filename,useragent,count"


def format_row(project: str, filename: str, client: str, count: int) -> str:
    """One CSV row without its newline, quoted only where a field needs it."""
    row = f"{project},{filename},{client},{count}"
    if row.count(",") == 3 and '"' not in row and "\n" not in row and "\r" not in row:
        return row
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow((project, filename, client, count))
    return out.getvalue()


def format_day(counts: DayCounts) -> bytes:
    """The uncompressed CSV text of ``counts``, rows sorted as text (so by project first)."""
    rows = [
        format_row(project, filename, client, count) for (project, filename, client), count in counts.items()
    ]
    rows.sort()
    rows.insert(0, HEADER)
    rows.append("")
    return "\n".join(rows).encode("utf-8")


# bzip2's smallest block size: about 40% faster than the default 9 for files
# some 15% larger, and today's file is rewritten on every run.
COMPRESS_LEVEL = 1


def encode_day(counts: DayCounts) -> bytes:
    """``counts`` as the bytes of a day file."""
    return bz2.compress(format_day(counts), COMPRESS_LEVEL)


def parse_day(text: str) -> DayCounts:
    """Counts from a day file's CSV text; raises ValueError on a row that is not one."""
    counts: DayCounts = {}
    for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) != 4:
            raise ValueError(f"line {number}: expected 4 fields, found {len(row)}")
        project, filename, client, raw = row
        try:
            count = int(raw)
        except ValueError:
            raise ValueError(f"line {number}: count {raw[:20]!r} is not a number") from None
        if count < 0:
            raise ValueError(f"line {number}: negative count {count}")
        key = (project, filename, client)
        counts[key] = counts.get(key, 0) + count
    return counts


def decode_day(data: bytes) -> DayCounts:
    """Counts from the bytes of a day file; raises ValueError when they are not one."""
    try:
        text = bz2.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a bzip2-compressed UTF-8 CSV file: {exc}") from None
    return parse_day(text)
