"""The root index, ``web/simple/index.html`` and ``index.v1_json``: read it, patch it, rebuild it.

Both files list one project per line, sorted by name (``simple.iter_root_*``).
The JSON line carries the project's ``_last-serial`` (the serial of the page we
wrote), and the head of the JSON (``meta._last-serial``) and the end of the HTML
(``<!--SERIAL n-->``) carry the mirror's serial, so that another mirror or a
monitor can follow ours as it follows PyPI.  When a run syncs, adds or removes
a few projects, each new file is the old one with those lines put in, replaced
or left out, under the new serial: every change is located by bisecting the old
file, and the unchanged byte ranges between changes are copied by the kernel
(``os.copy_file_range``).  Syncing a project of a 750,000-project index costs
a few dozen small reads and a copy of the file, not a parse and a render of
750,000 lines.  An index in any other layout (another tool's, an older one
without per-project serials, or damaged) is rewritten from a streamed merge
instead, taking each serial it lacks from the project's own JSON page, and one
that cannot be read at all is rebuilt from the project directories.

Every run first checks that both files are whole, from their first and last
bytes only: a file cut short (a full disk under another tool, a bad restore)
is rebuilt from the project directories at once, even when nothing changed.
Damage inside a file (lines lost, duplicated or altered, first and last intact)
is told by its mark (``rootmarks.Mark``), kept in the mirror directory beside ``state``:
what the file was on disk when this mirror last wrote it (inode, size, times)
and what it held (its project lines: how many, and a digest of them that a
patch updates line by line).  The ``fstat`` of the file opened for its ends
proves it unchanged; only a file changed since (damaged, or merely copied or
restored) is read once more, whole, to compare its lines with the mark.  A
file without a mark (written before marks were kept) is read once, whole, to
take one.
Names are read back from ``index.v1_json`` only when the whole file is proven
to be an index (its ends, every line, sorted order): a partial read is never
trusted to say which projects the mirror has.

Like every other page, a new index replaces the old one whole: each new file
is written into an upload of the mirror's store (``RootIndex.publish``), which a
filesystem store renames into place.  Reading, bisecting and patching work on
the files below ``simple`` and so are a filesystem store's capability; an object
store can only take the whole new file through the same point.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import heapq
import itertools
import logging
import operator
import os
import re
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from operator import methodcaller
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..formats import pagerecord
from ..formats.layout import PAGE_HTML, PAGE_JSON, has_pages, has_pages_in, key_dir
from ..formats.simple import (
    ROOT_JSON_TAIL,
    iter_root_html,
    iter_root_json,
    root_entries,
    root_html_head_tail,
    root_html_line,
    root_html_line_name,
    root_json_head,
    root_json_line,
    root_json_line_entry,
)
from ..names import is_valid_project_name
from ..store.filesystem import FilesystemStore
from ..store.protocol import Store, Upload
from ..upstream.feeds import MirroredProjects
from .rootmarks import DIGEST_MOD, Tally, line_hash, read_marks, save_marks

logger = logging.getLogger(__name__)

_MAX_LINE = 1 << 16  # a project line is a few hundred bytes at most; longer is not our layout
_COPY_CHUNK = 1 << 20


class _NotOurLayout(Exception):
    """The old file is not a line-per-project index this module wrote: merge by names instead."""


class _Shape(enum.Enum):
    """What the first and last bytes of a root file say about it."""

    WHOLE = "whole"  # begins and ends as this module writes it
    UNSERIALED = "unserialed"  # whole, but written before project lines carried their serial
    CUT = "cut"  # begins as ours but does not end so: cut short, or damaged at its end
    FOREIGN = "foreign"  # another layout (another tool's), or damaged at its head
    MISSING = "missing"


_ENDS = 256  # bytes read from each end of a root file to check that it is whole
_HTML_SERIAL = re.compile(rb"<!--SERIAL [0-9]+-->\n\Z")  # after the tail when the serial is known
_JSON_HEAD = b'{"meta":'
_JSON_PROJECTS = b'"projects":['
# A project line of each root file exactly as this module writes a plain name (groups: the line without
# its terminator, the name, in JSON the serial), every JSON line with the comma all but the last carry:
# 750,000 lines are read with one ``findall`` per block instead of a call per line (``_scan``); a
# file with a line of any other shape is read the general way.
_PLAIN_JSON = re.compile(r'(\{"name":"([^"\\\x00-\x1f]+)","_last-serial":([0-9]{1,18})\}),\n')
_LINE_HASH = partial(hashlib.blake2b, digest_size=8)  # as ``rootmarks.line_hash``, without a call per line
_FROM_BYTES = partial(int.from_bytes, byteorder="big")
_PLAIN_HTML = re.compile(r"(    <a [^\n]*>([^<>&\n]+)</a><br/>)\n")
_SCAN_BLOCK = 1 << 20



class Entry(NamedTuple):
    """A project the index lists, and the serial of its page."""

    name: str
    serial: int


def _entries(directory: str) -> Iterator[os.DirEntry[str]]:
    """What ``Path.iterdir`` lists, one at a time (nothing for a file or a vanished directory)."""
    try:
        with os.scandir(directory) as entries:
            yield from entries
    except (FileNotFoundError, NotADirectoryError):
        return


def _is_file(path: str) -> bool:
    """``Path.is_file`` on a string: False for the errors it takes as "no file" (missing, a link loop...)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False
        raise


def _has_pages_at(path: str) -> bool:
    """``layout.has_pages`` of a project directory given as a string (``RootIndex.scan``)."""
    return has_pages(lambda page: _is_file(f"{path}/{page}"))


@dataclass(frozen=True)
class _Format:
    """How one of the two root files is laid out around its project lines."""

    head: bytes  # the new file's head
    tail: bytes  # the new file's tail
    line: Callable[[str, int], str]  # a project's line, without its terminator
    entry_of: Callable[[bytes], tuple[str, int | None] | None]  # None: not a project line
    inner: bytes  # ends every line but the last
    last: bytes  # ends the last line
    empty: bytes  # the body when no project is listed
    # (fd, size) of the old file -> its body [start, end) and where its head ends
    body: Callable[[int, int], tuple[int, int, int]]
    serials: bool  # whether a line carries its project's serial


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise _NotOurLayout("file shorter than expected")
    return data


def _ends(fd: int) -> tuple[bytes, bytes]:
    """The first and the last ``_ENDS`` bytes of a file (overlapping when it is short)."""
    size = os.fstat(fd).st_size
    return os.pread(fd, _ENDS, 0), os.pread(fd, _ENDS, max(0, size - _ENDS))


def _html_shape(first: bytes, last: bytes) -> _Shape:
    head, tail = root_html_head_tail(None)
    if not first.startswith(head[:_ENDS]):
        return _Shape.CUT if head.startswith(first) else _Shape.FOREIGN
    serial = _HTML_SERIAL.search(last)
    if serial is not None:
        last = last[:serial.start()]
    # The head ends with a line break, so even an index without projects has one before the tail.
    return _Shape.WHOLE if last.endswith(b"\n" + tail) else _Shape.CUT


def _json_shape(first: bytes, last: bytes) -> _Shape:
    if not last.rstrip().endswith(b"}"):
        return _Shape.CUT  # every layout of a JSON document ends with its closing brace
    newline = first.find(b"\n")
    if not first.startswith(_JSON_HEAD) or newline < 0 or not first[:newline].endswith(_JSON_PROJECTS):
        return _Shape.FOREIGN  # e.g. the whole document on one line
    # The last project line has no comma; without projects, the head's line is followed by an empty one.
    if last.endswith(_JSON_PROJECTS + b"\n\n" + ROOT_JSON_TAIL):
        return _Shape.WHOLE
    if not last.endswith(b"}\n" + ROOT_JSON_TAIL):
        return _Shape.CUT
    return _Shape.WHOLE if _serialed(first, last) else _Shape.UNSERIALED


def _serialed(first: bytes, last: bytes) -> bool:
    """Whether the first and the last project line carry a serial: older indexes had none on any line."""
    lines = [first.split(b"\n")[1], last[:-len(ROOT_JSON_TAIL) - 1].rsplit(b"\n", 1)[-1]]
    for line in lines:
        try:
            entry = root_json_line_entry(line)
        except ValueError:
            continue  # longer than the bytes read, or damaged: the patch finds out
        if entry is not None and entry[1] is None:
            return False
    return True


def _shape(path: Path, check: Callable[[bytes, bytes], _Shape]
           ) -> tuple[_Shape, bytes, bytes, os.stat_result | None]:
    """The shape of a root file, its first and last bytes (empty when it is missing) and its stat."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return _Shape.MISSING, b"", b"", None
    try:
        first, last = _ends(fd)
        st = os.fstat(fd)  # the mark's check: no read beyond the ends
    finally:
        os.close(fd)
    return check(first, last), first, last, st


def _html_entry(line: bytes) -> tuple[str, int | None] | None:
    name = root_html_line_name(line)
    return (name, None) if name is not None else None


def _html_format(serial: int | None, href: Callable[[str], str]) -> _Format:
    head, tail = root_html_head_tail(serial)
    end_mark = b"  </body>\n"

    def body(fd: int, size: int) -> tuple[int, int, int]:
        if size < len(head) or _pread_exact(fd, len(head), 0) != head:
            raise _NotOurLayout("unexpected head")
        window = min(size - len(head), 4096)
        at = _pread_exact(fd, window, size - window).rfind(end_mark)
        if at < 0:
            raise _NotOurLayout("no end of body")
        return len(head), size - window + at, len(head)

    return _Format(head, tail, lambda name, _: root_html_line(name, href(name)), _html_entry,
                   b"\n", b"\n", b"", body, serials=False)


def _json_format(serial: int | None) -> _Format:
    def body(fd: int, size: int) -> tuple[int, int, int]:
        first = os.pread(fd, min(size, 4096), 0)
        newline = first.find(b"\n")
        if newline < 0 or not (first.startswith(b'{"meta":') and first[:newline].endswith(b'"projects":[')):
            raise _NotOurLayout("unexpected head")
        start, end = newline + 1, size - len(ROOT_JSON_TAIL)
        if end <= start or _pread_exact(fd, len(ROOT_JSON_TAIL), end) != ROOT_JSON_TAIL:
            raise _NotOurLayout("unexpected tail")
        if _pread_exact(fd, 1, end - 1) != b"\n":
            raise _NotOurLayout("unexpected end of body")
        return ((end, end) if end - start == 1 else (start, end)) + (start,)  # a lone "\n": no project

    return _Format(root_json_head(serial), ROOT_JSON_TAIL, root_json_line, root_json_line_entry,
                   b",\n", b"\n", b"\n", body, serials=True)


class _OldIndex:
    """Reads project lines of an old root file by offset, never the whole file."""

    def __init__(self, fd: int, fmt: _Format) -> None:
        self.fd, self.fmt = fd, fmt
        size = os.fstat(fd).st_size
        self.start, self.end, head_end = fmt.body(fd, size)
        self.dropped: list[tuple[int, int]] = []  # the old lines ``plan`` leaves out: [start, end)
        # Its serial is in its head (JSON) or its tail (HTML): unchanged, nothing else need be.
        self.same_ends = (_pread_exact(fd, head_end, 0) == fmt.head and size - self.end == len(fmt.tail)
                          and _pread_exact(fd, len(fmt.tail), self.end) == fmt.tail)

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

    def line_at(self, pos: int) -> tuple[str, int | None, int]:
        """The name and serial on the line starting at ``pos``, and where the next line starts."""
        after = self._newline_from(pos) + 1
        try:
            entry = self.fmt.entry_of(os.pread(self.fd, after - pos, pos))
        except ValueError:  # a damaged entry (bad JSON or UTF-8)
            entry = None
        if entry is None:
            raise _NotOurLayout(f"not a project line at byte {pos}")
        return entry[0], entry[1], after

    def bisect(self, name: str, lo: int) -> tuple[int, bool]:
        """Start of the first line from ``lo`` on naming ``name`` or later; and whether it names ``name``."""
        hi = self.end
        while lo < hi:
            mid = (lo + hi) // 2
            probe = lo if mid == lo else self._newline_from(mid - 1) + 1
            if probe >= hi:  # no line starts in [mid, hi): decide on the line at lo
                probe = lo
            found, _, after = self.line_at(probe)
            if found >= name:
                hi = probe
            else:
                lo = after
        return lo, lo < self.end and self.line_at(lo)[0] == name

    def plan(self, synced: list[Entry], removed: list[str]) -> list[tuple[int, int] | Entry] | None:
        """The new body: byte ranges of the old one to keep and entries to render; None: no change.

        A synced project not listed yet is put in; one listed with another serial
        has its line replaced (in HTML, whose lines carry no serial, it stays).
        """
        events: list[tuple[int, str, int | None, int | None]] = []  # offset, name, end of old line, serial
        pos = self.start
        for name, serial in synced:
            pos, present = self.bisect(name, pos)
            if not present:
                events.append((pos, name, None, serial))
            elif self.fmt.serials:
                _, old_serial, after = self.line_at(pos)
                if old_serial != serial:
                    events.append((pos, name, after, serial))
        pos = self.start
        for name in removed:
            pos, present = self.bisect(name, pos)
            if present:
                events.append((pos, name, self.line_at(pos)[2], None))
        if not events:
            return None
        self.dropped = [(offset, old_end) for offset, _, old_end, _ in events if old_end is not None]
        events.sort(key=lambda e: (e[0], e[1]))
        segments: list[tuple[int, int] | Entry] = []
        cursor = self.start
        for offset, name, old_end, line_serial in events:
            if offset > cursor:
                segments.append((cursor, offset))
                cursor = offset
            if line_serial is not None:
                segments.append(Entry(name, line_serial))
            if old_end is not None:
                cursor = old_end
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


def _line_key(line: bytes) -> bytes:
    """A body line without its terminator ("\n", or ",\n" between JSON entries): what ``line_hash`` takes."""
    line = line.rstrip(b"\n")
    return line[:-1] if line.endswith(b",") else line


def _patch(path: Path, fmt: _Format, synced: list[Entry], removed: list[str],
           publish: Callable[[], AbstractContextManager[Upload]]) -> Tally | None:
    """Publish ``path`` anew with ``synced`` in (under their serials), ``removed`` out; None: no change.

    Returns what the change did to the file's project lines (their count and digest).
    """
    src = os.open(path, os.O_RDONLY)
    try:
        old = _OldIndex(src, fmt)
        segments = old.plan(synced, removed)
        if segments is None:
            if old.same_ends:
                return None
            segments = [(old.start, old.end)] if old.end > old.start else []  # only the serial moves
        delta = Tally(0, 0)
        for start, end in old.dropped:  # a few small reads: only the lines taken out or replaced
            delta = delta.plus(Tally(-1, -line_hash(_line_key(_pread_exact(src, end - start, start)))))
        with publish() as out:
            out.file.flush()
            dst = out.file.fileno()
            _write_all(dst, fmt.head)
            if not segments:
                _write_all(dst, fmt.empty)
            for i, segment in enumerate(segments):
                term = fmt.last if i == len(segments) - 1 else fmt.inner
                if isinstance(segment, Entry):
                    line = fmt.line(segment.name, segment.serial).encode("utf-8", errors="replace")
                    delta = delta.plus(Tally(1, line_hash(line)))
                    _write_all(dst, line + term)
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
        return delta
    finally:
        os.close(src)


def _tally(path: Path, fmt: _Format) -> Tally | None:
    """The project lines of a whole root file, read once; None unless each is one, in order."""
    try:
        with path.open("rb") as f:
            fast = _scan(f, fmt, digest=True)
            if fast is not None:
                return Tally(fast.count, fast.digest)
            fd = f.fileno()
            start, end, _ = fmt.body(fd, os.fstat(fd).st_size)
            count, digest, last = 0, 0, None
            for _, line in _body_lines(f, start, end):
                entry = fmt.entry_of(line)
                if entry is None or (last is not None and entry[0] <= last):
                    return None
                last = entry[0]
                count += 1
                digest = (digest + line_hash(_line_key(line))) % DIGEST_MOD
            return Tally(count, digest)
    except (OSError, ValueError, _NotOurLayout):
        return None


def _body_lines(f: BinaryIO, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """An index body's lines between byte offsets ``start`` and ``end``, each with the offset after it."""
    f.seek(start)
    pos = start
    for line in f:
        if pos >= end:
            return
        pos += len(line)
        yield pos, line


@dataclass
class _Scanned:
    """A root file's project lines, read by ``_scan``."""

    names: list[str]
    serials: array[int]  # JSON only
    count: int = 0
    digest: int = 0


def _scan(f: BinaryIO, fmt: _Format, *, digest: bool) -> _Scanned | None:
    """Every project line of an open root file, in one read, when each is as this module writes a
    plain name and the names are strictly in order; None otherwise (nothing is believed of a part).

    What it returns is what a line-by-line read (``_read_entries``, ``_tally``) finds in such a file.
    """
    pattern, term = (_PLAIN_JSON, b",\n") if fmt.serials else (_PLAIN_HTML, b"\n")
    found = _Scanned([], array("q"))
    try:
        fd = f.fileno()
        start, end, _ = fmt.body(fd, os.fstat(fd).st_size)
        f.seek(start)
        left, carry = end - start, b""
        while left > 0:
            block = f.read(min(left, _SCAN_BLOCK))
            if not block:
                return None  # shrank while read
            left -= len(block)
            block = carry + block
            cut = block.rfind(b"\n") + 1 if left else len(block)
            block, carry = block[:cut], block[cut:]
            if len(carry) > _MAX_LINE:
                return None
            if not left and fmt.serials:  # the last JSON line has no comma: give it one, as the others
                if not block.endswith(b"}\n"):
                    return None
                block = block[:-1] + term
            if not _scan_block(block.decode("utf-8"), pattern, len(term), found, digest):
                return None
    except (OSError, ValueError, _NotOurLayout):
        return None
    if any(map(operator.ge, found.names, itertools.islice(found.names, 1, None))):
        return None
    return found


def _scan_block(text: str, pattern: re.Pattern[str], term: int, found: _Scanned, digest: bool) -> bool:
    """Add the project lines of ``text`` (whole lines) to ``found``; False unless every character
    of it is in one of them.

    The matches never overlap, so they cover ``text`` when their lengths add up to its own.
    """
    lines = pattern.findall(text)
    keys = list(map(operator.itemgetter(0), lines))
    if sum(map(len, keys)) + len(lines) * term != len(text):
        return False
    found.names.extend(map(operator.itemgetter(1), lines))
    if pattern is _PLAIN_JSON:
        found.serials.extend(map(int, map(operator.itemgetter(2), lines)))
    found.count += len(lines)
    if digest:  # ``line_hash`` of each line, in C: 750,000 Python calls were most of a mark's cost
        hashes = map(methodcaller("digest"), map(_LINE_HASH, map(str.encode, keys)))
        found.digest = (found.digest + sum(map(_FROM_BYTES, hashes))) % DIGEST_MOD
    return True


class RootIndex:
    """``web/simple/index.html`` and ``index.v1_json`` of one mirror."""

    def __init__(self, simple: Path, staging: Path, hash_index: bool, *,
                 store: Store | None = None, marks: Path | None = None) -> None:
        """``simple``: ``web/simple`` of the filesystem store ``store`` (by default, one on its parent);
        the run's store is its gate, which records what is published for diff-file.

        ``marks``: the bookkeeping file of both files' ``Mark`` (None: damage in the middle of a
        file is not looked for, as for an index another tool wrote).
        """
        self.simple, self.staging, self.hash_index = simple, staging, hash_index
        self.marks = marks
        self._unmarked: set[str] = set()
        self.html, self.json = simple / PAGE_HTML, simple / PAGE_JSON
        self.store: Store = store or FilesystemStore(simple.parent, staging)

    def publish(self, page: str) -> AbstractContextManager[Upload]:
        """The one point where a new root file (``page``: PAGE_HTML or PAGE_JSON) reaches clients.

        Write the whole new file into the upload's ``file`` and ``commit()`` it; leaving
        without a commit leaves the old one.
        """
        return self.store.upload(self._key(page))

    def _key(self, page: str) -> str:
        return f"{self.simple.name}/{page}"

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
        return (name for name, _ in self.entries())

    def entries(self) -> Iterator[tuple[str, int | None]]:
        """As ``names()``, each with the ``_last-serial`` its line records (None: the line, or the
        directory when the index is not believed, records none)."""
        if not self.json.is_file():
            yield from ((name, None) for name in self.scan())
            return
        try:
            for _ in self._read_entries():
                pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError, _NotOurLayout) as exc:
            logger.warning("%s is damaged (%s); listing the projects from their directories", self.json, exc)
            yield from ((name, None) for name in self.scan())
            return
        yield from self._read_entries()

    def mirrored(self) -> MirroredProjects:
        """What ``entries()`` lists, held for the listing feed's diff, reading ``index.v1_json`` once.

        An index in our layout is scanned whole, its lines checked and its order proven in
        that one pass; anything else the fast scan does not take (another layout, a line of
        another shape, damage) is left to ``entries()``, which says what it found.
        """
        found = None
        try:
            with self.json.open("rb") as f:
                if _json_shape(*_ends(f.fileno())) is _Shape.WHOLE:
                    found = _scan(f, _json_format(None), digest=False)
        except OSError:
            pass
        if found is None:
            return MirroredProjects.from_entries(self.entries())
        return MirroredProjects(found.names, found.serials)

    def _read_entries(self) -> Iterator[tuple[str, int | None]]:
        """Every entry of ``index.v1_json``, checked; raises at the first sign it is not whole."""
        with self.json.open("rb") as f:
            fd = f.fileno()
            shape = _json_shape(*_ends(fd))
            if shape is _Shape.FOREIGN:  # another tool's layout: read once, whole, the parser proves it
                yield from sorted(root_entries(f.read()), key=lambda e: e[0])
                return
            if shape not in (_Shape.WHOLE, _Shape.UNSERIALED):
                raise _NotOurLayout("cut short")
            start, end, _ = _json_format(None).body(fd, os.fstat(fd).st_size)
            last = None
            for pos, line in _body_lines(f, start, end):
                entry = root_json_line_entry(line)
                if entry is None or (last is not None and entry[0] <= last):
                    raise _NotOurLayout(f"not a project line, or out of order, before byte {pos}")
                last = entry[0]
                yield entry

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
            if _json_shape(*_ends(fd)) not in (_Shape.WHOLE, _Shape.UNSERIALED):
                return None
            old = _OldIndex(fd, _json_format(None))
            if old.start >= old.end:
                return ()
            first, _, _ = old.line_at(old.start)
            window = min(old.end - old.start, _MAX_LINE)
            body_end = os.pread(fd, window, old.end - window)
            at = body_end.rfind(b"\n", 0, len(body_end) - 1)  # the break before the last line
            last, _, _ = old.line_at(old.end - window + at + 1 if at >= 0 else old.start)
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
                    if any(has_pages_in(d) for d in inner):
                        return True
                    if seen >= probes:
                        return None
                return False if seen == 0 else None
        except FileNotFoundError:
            return False

    def json_names(self) -> Iterator[str]:
        """Every name ``index.v1_json`` lists, checked as it streams; ValueError at any sign of damage."""
        try:
            yield from (name for name, _ in self._read_entries())
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
                shape = _html_shape(*_ends(fd))
                if shape is not _Shape.WHOLE:
                    raise ValueError("cut short" if shape is _Shape.CUT else "not in bandersnatch's layout")
                start, end, _ = _html_format(None, self.href).body(fd, os.fstat(fd).st_size)
                last = None
                for pos, line in _body_lines(f, start, end):
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
        # By strings and scandir, not Paths: a full sync's first run rebuilds the index from
        # every project's directory, and building Paths was most of the rebuild's CPU.
        top = str(self.simple)
        dirs = (entry for d in _entries(top) if d.is_dir() for entry in _entries(d.path)) if self.hash_index \
            else _entries(top)
        return sorted(d.name for d in dirs if _has_pages_at(d.path))

    def page_serial(self, name: str) -> int:
        """The ``_last-serial`` of a project's own JSON page; 0 when it has none or cannot be read.

        Read when an index is rebuilt or lacks serials: our pages begin with their
        meta, so the first few kilobytes nearly always tell.
        """
        if not is_valid_project_name(name):
            return 0
        path = "/".join([str(self.simple), *key_dir(name, self.hash_index), PAGE_JSON])
        try:
            # One unbuffered read of the head: no Path, no buffered reader (and its isatty probe).
            with open(path, "rb", buffering=0) as f:
                head = f.read(pagerecord.HEAD_BYTES)
                found = pagerecord.serial_from_head(head)
                return found if found is not None else pagerecord.serial_from_bytes(head + f.readall())
        except (OSError, ValueError, RecursionError):
            return 0

    def update(self, synced: Mapping[str, int] | None, removed: set[str], serial: int | None) -> None:
        """List ``synced`` (name -> its page's serial) and stop listing ``removed``, under ``serial``.

        ``synced`` None: rebuild from the directories.  Both files are checked
        to be whole first (their ends: a few hundred bytes); when nothing was
        synced or removed and both already carry ``serial``, nothing more is
        read or written.  HTML goes first: a run killed between the two writes
        leaves the JSON index, which later runs read names from, still out of date.
        """
        (html_shape, _, html_end, html_st), (json_shape, json_start, _, json_st) = (
            _shape(self.html, _html_shape), _shape(self.json, _json_shape))
        shapes = {self.html: html_shape, self.json: json_shape}
        for path, shape in shapes.items():
            if shape is _Shape.CUT:
                logger.warning("%s does not end as bandersnatch writes it (cut short?); rebuilding the root "
                               "index from the project directories", path)
        known: dict[str, Tally | None] = {}
        if synced is not None and not any(shape in (_Shape.CUT, _Shape.MISSING) for shape in shapes.values()):
            known = self._check_marks({PAGE_HTML: html_st, PAGE_JSON: json_st})
            if not known:
                synced = None  # damaged inside: said by _check_marks
        if synced is None or any(shape in (_Shape.CUT, _Shape.MISSING) for shape in shapes.values()):
            rebuilt = [name for name in self.scan() if name not in removed]
            self._write(((name, self.page_serial(name)) for name in rebuilt), serial)
            return
        new = sorted(Entry(name, last) for name, last in synced.items())
        if json_shape is _Shape.UNSERIALED:
            logger.info("Root index written without per-project serials (an older bandersnatch); rewriting "
                        "it once with the serial of each project's page")
            self._merge(new, removed, serial)
            return
        if _Shape.FOREIGN in shapes.values():
            logger.info("Root index not in the expected layout; rewriting it")
            self._merge(new, removed, serial)
            return
        gone = sorted(removed - synced.keys())
        if not new and not gone and json_start.startswith(root_json_head(serial)) \
                and html_end.endswith(root_html_head_tail(serial)[1]):
            self._remember(known, {})
            return
        try:
            html_delta = _patch(self.html, _html_format(serial, self.href), new, gone,
                                lambda: self.publish(PAGE_HTML))
            json_delta = _patch(self.json, _json_format(serial), new, gone, lambda: self.publish(PAGE_JSON))
            changed = html_delta is not None or json_delta is not None
        except _NotOurLayout as exc:
            logger.info("Root index not in the expected layout (%s); rewriting it", exc)
            self._merge(new, removed, serial)
            return
        deltas = {PAGE_HTML: html_delta, PAGE_JSON: json_delta}
        self._remember(known, {page: delta for page, delta in deltas.items() if delta is not None})
        if changed:
            logger.info("Root index updated: %d project(s) synced, %d removed; serial %s",
                        len(new), len(gone), serial)

    # ------------------------------------------------------------ marks (damage inside a file)

    def _formats(self) -> dict[str, _Format]:
        return {PAGE_HTML: _html_format(None, self.href), PAGE_JSON: _json_format(None)}

    def _check_marks(self, stats: Mapping[str, os.stat_result | None]) -> dict[str, Tally | None]:
        """Each file's project lines as its mark records them (None: no mark); {} when one is damaged.

        A file its mark says is unchanged on disk (its stat, already taken) is not read.
        One changed since (an edit, a copy, a restore) is read once, whole: the same lines
        as recorded mean only its place on disk moved, and the mark is written anew.
        """
        if self.marks is None:
            return {PAGE_HTML: None, PAGE_JSON: None}
        marks, formats = read_marks(self.marks), self._formats()
        known: dict[str, Tally | None] = {}
        self._unmarked = set(stats)  # whose mark is missing or stale: written by _remember
        damaged = []
        for page, st in stats.items():
            mark = marks.get(page)
            if mark is None or st is None:
                known[page] = None
                continue
            recorded = Tally(mark.count, mark.digest)
            if mark.same_file(st):
                known[page] = recorded
                self._unmarked.discard(page)
                continue
            found = _tally(self.simple / page, formats[page])
            if found == recorded:
                known[page] = found  # the same lines elsewhere on disk: marked anew
            elif found is None:
                damaged.append(f"{self.simple / page} is not one project line per name in order")
            else:
                other = "" if found.count != mark.count else " but other ones"
                damaged.append(f"{self.simple / page} holds {found.count} project line(s) where this mirror "
                               f"wrote {mark.count}{other}")
        if damaged:
            logger.warning("%s (lines lost, repeated or altered since this mirror wrote it); rebuilding the "
                           "root index from the project directories", "; ".join(damaged))
            return {}
        return known

    def _remember(self, known: Mapping[str, Tally | None], deltas: Mapping[str, Tally]) -> None:
        """Write both files' marks when they moved: after a change, or when one was missing or stale.

        ``known``: the lines each file held before (None: unknown, so it is read once now);
        ``deltas``: what this run's patches changed.
        """
        if self.marks is None or not known:
            return
        fresh: dict[str, Tally] = {}
        for page, before in known.items():
            if page not in deltas and page not in self._unmarked:
                continue  # unchanged and marked: nothing to write
            tally = before.plus(deltas.get(page, Tally(0, 0))) if before is not None \
                else _tally(self.simple / page, self._formats()[page])
            if tally is None:
                return  # not ours to mark (another layout); the next rewrite marks it
            fresh[page] = tally
        if fresh:
            self._save_marks(fresh)

    def _save_marks(self, tallies: Mapping[str, Tally]) -> None:
        """Record ``tallies`` with each file's identity on disk now (just written, or just checked)."""
        if self.marks is not None:
            save_marks(self.marks, self.simple, tallies, self.staging)

    def _merge(self, new: list[Entry], removed: set[str], serial: int | None) -> None:
        """Rewrite both files from the entries listed now (``entries()``: proven whole, or the dirs)."""
        synced = {entry.name for entry in new}
        kept = ((name, last if last is not None else self.page_serial(name))
                for name, last in self.entries() if name not in removed and name not in synced)
        self._write(heapq.merge(kept, new), serial)

    def _write(self, entries: Iterable[tuple[str, int]], serial: int | None) -> None:
        """Rewrite both files from sorted ``entries`` in one pass over them (a serial may cost a read)."""
        count, html_digest, json_digest = 0, 0, 0
        marking = self.marks is not None

        def counted() -> Iterator[tuple[str, int]]:
            nonlocal count, html_digest, json_digest
            for entry in entries:
                count += 1
                if marking:  # each line as the renderers write it, for the files' marks
                    name, last = entry
                    html_digest += line_hash(root_html_line(name, self.href(name)).encode("utf-8", "replace"))
                    json_digest += line_hash(root_json_line(name, last).encode("utf-8", "replace"))
                yield entry

        # Both renderers take the same 4096-entry batches in step, so the tee never holds more than one.
        for_html, for_json = itertools.tee(counted())
        html_chunks = iter_root_html(((name, self.href(name)) for name, _ in for_html), serial)
        json_chunks = iter_root_json(for_json, serial)
        with self.publish(PAGE_HTML) as html, self.publish(PAGE_JSON) as js:
            for html_chunk, json_chunk in itertools.zip_longest(html_chunks, json_chunks, fillvalue=b""):
                html.file.write(html_chunk)
                js.file.write(json_chunk)
            html.commit()
            js.commit()
        self._save_marks({PAGE_HTML: Tally(count, html_digest % DIGEST_MOD),
                          PAGE_JSON: Tally(count, json_digest % DIGEST_MOD)})
        logger.info("Root index: %d project(s)", count)
