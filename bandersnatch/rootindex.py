"""The root index, ``web/simple/index.html`` and ``index.v1_json``: read it, patch it, rebuild it.

Both files list one project per line, sorted by name (``simple.iter_root_*``).
When a run adds or removes a few projects, each new file is the old one with
those lines put in or left out: every change is located by bisecting the old
file, and the unchanged byte ranges between changes are copied by the kernel
(``os.copy_file_range``).  Adding a project to a 750,000-project index costs
a few dozen small reads and a copy of the file, not a parse and a render of
750,000 lines.  An index in any other layout (another tool's, or damaged) is
rewritten from a streamed merge instead, and one that cannot be read at all is
rebuilt from the project directories.

Every run first checks that both files are whole, from their first and last
bytes only: a file cut short (a full disk under another tool, a bad restore)
is rebuilt from the project directories at once, even when nothing changed.
Names are read back from ``index.v1_json`` only when the whole file is proven
to be an index (its ends, every line, sorted order): a partial read is never
trusted to say which projects the mirror has.

Like every other page, a new index replaces the old one by an atomic rename.
"""

from __future__ import annotations

import enum
import heapq
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .difffile import Changes
from .layout import PAGE_HTML, PAGE_JSON, key_dir
from .simple import (
    ROOT_JSON_TAIL,
    iter_root_html,
    iter_root_json,
    root_html_head_tail,
    root_html_line,
    root_html_line_name,
    root_json_head,
    root_json_line,
    root_json_line_name,
    root_names,
)
from .storage import atomic_write, staged

logger = logging.getLogger(__name__)

_MAX_LINE = 1 << 16  # a project line is a few hundred bytes at most; longer is not our layout
_COPY_CHUNK = 1 << 20


class _NotOurLayout(Exception):
    """The old file is not a line-per-project index this module wrote: merge by names instead."""


class _Shape(enum.Enum):
    """What the first and last bytes of a root file say about it."""

    WHOLE = "whole"  # begins and ends as this module writes it
    CUT = "cut"  # begins as ours but does not end so: cut short, or damaged at its end
    FOREIGN = "foreign"  # another layout (another tool's), or damaged at its head
    MISSING = "missing"


_ENDS = 256  # bytes read from each end of a root file to check that it is whole
_HTML_SERIAL = re.compile(rb"<!--SERIAL [0-9]+-->\n\Z")  # after the tail when the serial is known
_JSON_HEAD = b'{"meta":'
_JSON_PROJECTS = b'"projects":['


def has_pages(page_dir: Path) -> bool:
    """Both pages of a project are there: the root index may name it (a killed run may leave one)."""
    return (page_dir / PAGE_JSON).is_file() and (page_dir / PAGE_HTML).is_file()


@dataclass(frozen=True)
class _Format:
    """How one of the two root files is laid out around its project lines."""

    head: bytes  # the new file's head
    tail: bytes  # the new file's tail
    line: Callable[[str], str]  # a project's line, without its terminator
    name_of: Callable[[bytes], str | None]
    inner: bytes  # ends every line but the last
    last: bytes  # ends the last line
    empty: bytes  # the body when no project is listed
    body: Callable[[int, int], tuple[int, int]]  # (fd, size) of the old file -> its body [start, end)


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise _NotOurLayout("file shorter than expected")
    return data


def _ends(fd: int) -> tuple[bytes, bytes]:
    """The first and the last ``_ENDS`` bytes of a file (overlapping when it is short)."""
    size = os.fstat(fd).st_size
    return os.pread(fd, _ENDS, 0), os.pread(fd, _ENDS, max(0, size - _ENDS))


def _html_shape(fd: int) -> _Shape:
    head, tail = root_html_head_tail(None)
    first, last = _ends(fd)
    if not first.startswith(head[:_ENDS]):
        return _Shape.CUT if head.startswith(first) else _Shape.FOREIGN
    serial = _HTML_SERIAL.search(last)
    if serial is not None:
        last = last[:serial.start()]
    # The head ends with a line break, so even an index without projects has one before the tail.
    return _Shape.WHOLE if last.endswith(b"\n" + tail) else _Shape.CUT


def _json_shape(fd: int) -> _Shape:
    first, last = _ends(fd)
    if not last.rstrip().endswith(b"}"):
        return _Shape.CUT  # every layout of a JSON document ends with its closing brace
    newline = first.find(b"\n")
    if not first.startswith(_JSON_HEAD) or newline < 0 or not first[:newline].endswith(_JSON_PROJECTS):
        return _Shape.FOREIGN  # e.g. the whole document on one line
    # The last project line has no comma; without projects, the head's line is followed by an empty one.
    whole = last.endswith(b"}\n" + ROOT_JSON_TAIL) or last.endswith(_JSON_PROJECTS + b"\n\n" + ROOT_JSON_TAIL)
    return _Shape.WHOLE if whole else _Shape.CUT


def _shape(path: Path, check: Callable[[int], _Shape]) -> _Shape:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return _Shape.MISSING
    try:
        return check(fd)
    finally:
        os.close(fd)


def _html_format(serial: int | None, href: Callable[[str], str]) -> _Format:
    head, tail = root_html_head_tail(serial)
    end_mark = b"  </body>\n"

    def body(fd: int, size: int) -> tuple[int, int]:
        if size < len(head) or _pread_exact(fd, len(head), 0) != head:
            raise _NotOurLayout("unexpected head")
        window = min(size - len(head), 4096)
        at = _pread_exact(fd, window, size - window).rfind(end_mark)
        if at < 0:
            raise _NotOurLayout("no end of body")
        return len(head), size - window + at

    return _Format(head, tail, lambda name: root_html_line(name, href(name)), root_html_line_name,
                   b"\n", b"\n", b"", body)


def _json_format(serial: int | None) -> _Format:
    def body(fd: int, size: int) -> tuple[int, int]:
        first = os.pread(fd, min(size, 4096), 0)
        newline = first.find(b"\n")
        if newline < 0 or not (first.startswith(b'{"meta":') and first[:newline].endswith(b'"projects":[')):
            raise _NotOurLayout("unexpected head")
        start, end = newline + 1, size - len(ROOT_JSON_TAIL)
        if end <= start or _pread_exact(fd, len(ROOT_JSON_TAIL), end) != ROOT_JSON_TAIL:
            raise _NotOurLayout("unexpected tail")
        if _pread_exact(fd, 1, end - 1) != b"\n":
            raise _NotOurLayout("unexpected end of body")
        return (end, end) if end - start == 1 else (start, end)  # a lone "\n": no project

    return _Format(root_json_head(serial), ROOT_JSON_TAIL, root_json_line, root_json_line_name,
                   b",\n", b"\n", b"\n", body)


class _OldIndex:
    """Reads project lines of an old root file by offset, never the whole file."""

    def __init__(self, fd: int, fmt: _Format) -> None:
        self.fd, self.fmt = fd, fmt
        self.start, self.end = fmt.body(fd, os.fstat(fd).st_size)

    def _newline_from(self, pos: int) -> int:
        size = 256
        while True:
            chunk = os.pread(self.fd, min(size, self.end - pos), pos)
            at = chunk.find(b"\n")
            if at >= 0:
                return pos + at
            if pos + len(chunk) >= self.end or size >= _MAX_LINE:
                raise _NotOurLayout("no line end")
            size *= 4

    def line_at(self, pos: int) -> tuple[str, int]:
        """The name on the line starting at ``pos``, and where the next line starts."""
        after = self._newline_from(pos) + 1
        try:
            name = self.fmt.name_of(os.pread(self.fd, after - pos, pos))
        except ValueError:  # a damaged entry (bad JSON or UTF-8)
            name = None
        if name is None:
            raise _NotOurLayout(f"not a project line at byte {pos}")
        return name, after

    def bisect(self, name: str, lo: int) -> tuple[int, bool]:
        """Start of the first line from ``lo`` on naming ``name`` or later; and whether it names ``name``."""
        hi = self.end
        while lo < hi:
            mid = (lo + hi) // 2
            probe = lo if mid == lo else self._newline_from(mid - 1) + 1
            if probe >= hi:  # no line starts in [mid, hi): decide on the line at lo
                probe = lo
            found, after = self.line_at(probe)
            if found >= name:
                hi = probe
            else:
                lo = after
        return lo, lo < self.end and self.line_at(lo)[0] == name

    def plan(self, added: list[str], removed: list[str]) -> list[tuple[int, int] | str] | None:
        """The new body: byte ranges of the old one to keep and names to render; None: no change."""
        events: list[tuple[int, str, int | None]] = []  # (offset, name, end of a removed line)
        pos = self.start
        for name in added:
            pos, present = self.bisect(name, pos)
            if not present:
                events.append((pos, name, None))
        pos = self.start
        for name in removed:
            pos, present = self.bisect(name, pos)
            if present:
                events.append((pos, name, self.line_at(pos)[1]))
        if not events:
            return None
        events.sort(key=lambda e: (e[0], e[1]))
        segments: list[tuple[int, int] | str] = []
        cursor = self.start
        for offset, name, removed_end in events:
            if offset > cursor:
                segments.append((cursor, offset))
                cursor = offset
            if removed_end is None:
                segments.append(name)
            else:
                cursor = removed_end
        if cursor < self.end:
            segments.append((cursor, self.end))
        return segments


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_range(src: int, dst: int, start: int, end: int) -> None:
    while start < end:
        try:
            copied = os.copy_file_range(src, dst, end - start, start)
        except (AttributeError, OSError):  # no such call here, or not between these files
            chunk = os.pread(src, min(end - start, _COPY_CHUNK), start)
            _write_all(dst, chunk)
            copied = len(chunk)
        if copied == 0:
            raise _NotOurLayout("file shrank while copying")
        start += copied


def _patch(path: Path, fmt: _Format, added: list[str], removed: list[str], staging: Path) -> bool:
    """Write ``path`` with ``added`` in and ``removed`` out; False when that changes nothing."""
    src = os.open(path, os.O_RDONLY)
    try:
        old = _OldIndex(src, fmt)
        segments = old.plan(added, removed)
        if segments is None:
            return False
        with staged(path, staging) as out:
            out.file.flush()
            dst = out.file.fileno()
            _write_all(dst, fmt.head)
            if not segments:
                _write_all(dst, fmt.empty)
            for i, segment in enumerate(segments):
                term = fmt.last if i == len(segments) - 1 else fmt.inner
                if isinstance(segment, str):
                    _write_all(dst, (fmt.line(segment).encode("utf-8", errors="replace") + term))
                    continue
                start, end = segment
                old_term = fmt.last if end == old.end else fmt.inner
                if os.pread(src, len(old_term), end - len(old_term)) != old_term:
                    raise _NotOurLayout(f"unexpected line end before byte {end}")
                if old_term == term:
                    _copy_range(src, dst, start, end)
                else:
                    _copy_range(src, dst, start, end - len(old_term))
                    _write_all(dst, term)
            _write_all(dst, fmt.tail)
            out.commit()
        return True
    finally:
        os.close(src)


class RootIndex:
    """``web/simple/index.html`` and ``index.v1_json`` of one mirror."""

    def __init__(self, simple: Path, staging: Path, hash_index: bool, changes: Changes | None = None) -> None:
        self.simple, self.staging, self.hash_index = simple, staging, hash_index
        self.changes = changes or Changes(None)  # what this run wrote, for diff-file
        self.html, self.json = simple / PAGE_HTML, simple / PAGE_JSON

    def href(self, name: str) -> str:
        # Names in our own index were checked before they got there: format, don't re-check.
        return "/".join(key_dir(name, self.hash_index)) + "/"

    def names(self) -> Iterator[str]:
        """The names the index lists now, sorted, streamed from the line-per-project JSON.

        Only a file proven whole is believed: without it, or when any part of it
        is not an index (cut short, a damaged line, names out of order), the
        project directories are the list.  The proof is a streaming pass over
        the file before the one that yields: names() serves a full sync or a
        rewrite, which read the whole index anyway.
        """
        if not self.json.is_file():
            yield from self.scan()
            return
        try:
            for _ in self._read_names():
                pass
        except (OSError, ValueError, KeyError, TypeError, _NotOurLayout) as exc:
            logger.warning("%s is damaged (%s); listing the projects from their directories", self.json, exc)
            yield from self.scan()
            return
        yield from self._read_names()

    def entries(self) -> Iterator[tuple[str, int | None]]:
        """As ``names()``, each with the ``_last-serial`` its line records (None: this index records none)."""
        return ((name, None) for name in self.names())

    def _read_names(self) -> Iterator[str]:
        """Every name of ``index.v1_json``, checked; raises at the first sign it is not whole."""
        with self.json.open("rb") as f:
            fd = f.fileno()
            shape = _json_shape(fd)
            if shape is _Shape.FOREIGN:  # another tool's layout: read once, whole, the parser proves it
                yield from sorted(root_names(f.read()))
                return
            if shape is not _Shape.WHOLE:
                raise _NotOurLayout("cut short")
            start, end = _json_format(None).body(fd, os.fstat(fd).st_size)
            f.seek(start)
            pos, last = start, None
            for line in f:
                if pos >= end:
                    break
                pos += len(line)
                name = root_json_line_name(line)
                if name is None or (last is not None and name <= last):
                    raise _NotOurLayout(f"not a project line, or out of order, before byte {pos}")
                last = name
                yield name

    def end_names(self) -> tuple[str, ...] | None:
        """The first and the last project ``index.v1_json`` names, from a few small reads.

        ``()`` when it is whole and names none (filters may select no project).
        None when it is missing or not whole in our layout: then nothing cheap
        can be said, and the caller looks at the directories instead.
        """
        try:
            fd = os.open(self.json, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            if _json_shape(fd) is not _Shape.WHOLE:
                return None
            old = _OldIndex(fd, _json_format(None))
            if old.start >= old.end:
                return ()
            first, _ = old.line_at(old.start)
            window = min(old.end - old.start, _MAX_LINE)
            body_end = os.pread(fd, window, old.end - window)
            at = body_end.rfind(b"\n", 0, len(body_end) - 1)  # the break before the last line
            last, _ = old.line_at(old.end - window + at + 1 if at >= 0 else old.start)
            return first, last
        except (OSError, _NotOurLayout):
            return None
        finally:
            os.close(fd)

    def any_pages(self, probes: int = 32) -> bool | None:
        """Whether project pages are on disk, from the first few directories of ``simple/``.

        True as soon as one has both pages; False when ``simple/`` holds no directory at
        all; None when the first ``probes`` directories had none (a killed run's leftovers).
        """
        try:
            with os.scandir(self.simple) as entries:
                seen = 0
                for entry in entries:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    seen += 1
                    inner = [Path(entry.path)]
                    if self.hash_index:
                        with os.scandir(entry.path) as sub:
                            inner = [Path(e.path) for e, _ in zip(sub, range(probes), strict=False)]
                    if any(has_pages(d) for d in inner):
                        return True
                    if seen >= probes:
                        return None
                return False if seen == 0 else None
        except FileNotFoundError:
            return False

    def json_names(self) -> Iterator[str]:
        """Every name ``index.v1_json`` lists, checked as it streams; ValueError at any sign of damage."""
        try:
            yield from self._read_names()
        except FileNotFoundError:
            raise ValueError("missing") from None
        except (OSError, KeyError, TypeError, _NotOurLayout) as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None

    def html_names(self) -> Iterator[str]:
        """Every name ``index.html`` lists, each line as this module writes it (the layout's href) and
        in order; ValueError at the first sign of damage or of another layout."""
        try:
            with self.html.open("rb") as f:
                fd = f.fileno()
                shape = _html_shape(fd)
                if shape is not _Shape.WHOLE:
                    raise ValueError("cut short" if shape is _Shape.CUT else "not in bandersnatch's layout")
                start, end = _html_format(None, self.href).body(fd, os.fstat(fd).st_size)
                f.seek(start)
                pos, last = start, None
                for line in f:
                    if pos >= end:
                        break
                    pos += len(line)
                    name = root_html_line_name(line)
                    if name is None or (last is not None and name <= last) \
                            or line.rstrip(b"\n") != root_html_line(name, self.href(name)).encode():
                        raise ValueError(f"not a project line, out of order or another layout's link, "
                                         f"before byte {pos}")
                    last = name
                    yield name
        except FileNotFoundError:
            raise ValueError("missing") from None
        except (OSError, _NotOurLayout) as exc:
            raise ValueError(str(exc)) from None

    def scan(self) -> list[str]:
        """Only when the index must be rebuilt: the projects whose pages are both on disk."""
        if not self.simple.is_dir():
            return []
        dirs = (p for d in self.simple.iterdir() if d.is_dir() for p in d.iterdir()) if self.hash_index \
            else self.simple.iterdir()
        return sorted(d.name for d in dirs if has_pages(d))

    def update(self, added: set[str] | None, removed: set[str], serial: int | None) -> None:
        """Name ``added`` and stop naming ``removed``; ``added`` None: rebuild from the directories.

        Both files are checked to be whole first (their ends: a few hundred
        bytes); a run that only updated projects writes nothing here unless one
        is not.  HTML goes first: a run killed between the two writes leaves
        the JSON index, which later runs read names from, still out of date.
        """
        shapes = {self.html: _shape(self.html, _html_shape), self.json: _shape(self.json, _json_shape)}
        for path, shape in shapes.items():
            if shape is _Shape.CUT:
                logger.warning("%s does not end as bandersnatch writes it (cut short?); rebuilding the root "
                               "index from the project directories", path)
        if added is None or any(shape in (_Shape.CUT, _Shape.MISSING) for shape in shapes.values()):
            rebuilt = [name for name in self.scan() if name not in removed]
            self._write(lambda: rebuilt, serial)
            return
        new = sorted(added)
        if _Shape.FOREIGN in shapes.values():
            logger.info("Root index not in the expected layout; rewriting it")
            self._merge(new, removed, serial)
            return
        if not added and not removed:
            return
        gone = sorted(removed - added)
        try:
            html = _patch(self.html, _html_format(serial, self.href), new, gone, self.staging)
            if html:
                self.changes.written(self.html)
            json = _patch(self.json, _json_format(serial), new, gone, self.staging)
            if json:
                self.changes.written(self.json)
            changed = html or json
        except _NotOurLayout as exc:
            logger.info("Root index not in the expected layout (%s); rewriting it", exc)
            self._merge(new, removed, serial)
            return
        if changed:
            logger.info("Root index updated: %d new and %d removed project(s)", len(new), len(gone))

    def _merge(self, new: list[str], removed: set[str], serial: int | None) -> None:
        """Rewrite both files from the names listed now (``names()``: proven whole, or the directories)."""
        added = set(new)

        def merged() -> Iterator[str]:
            return heapq.merge((n for n in self.names() if n not in removed and n not in added), new)
        self._write(merged, serial)

    def _write(self, names: Callable[[], Iterable[str]], serial: int | None) -> None:
        """Rewrite both files from sorted ``names()``: HTML and JSON each stream over them once."""
        count = 0

        def projects() -> Iterator[tuple[str, str]]:
            nonlocal count
            count = 0
            for name in names():
                count += 1
                yield name, self.href(name)

        atomic_write(self.html, iter_root_html(projects(), serial), self.staging)
        self.changes.written(self.html)
        atomic_write(self.json, iter_root_json(projects(), serial), self.staging)
        self.changes.written(self.json)
        logger.info("Root index: %d project(s)", count)
