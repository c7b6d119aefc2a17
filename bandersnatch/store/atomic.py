"""The only module that writes the mirror: confined paths and atomic files.

Every file a client can see under ``web/`` appears by ``os.replace`` of a
complete, fsynced temporary file, so a reader sees the old bytes or the new
bytes and never a half-written file.  Temporary files live in a staging
directory of their own (``<directory>/tmp/<owner>/``) on the same filesystem,
so a run can clear what a killed run left behind without walking the tree.

No symbolic link inside the mirror directory is ever followed by a write or
a delete.  A link there is damage, or the work of someone who can write the
tree; following it would write, delete or empty directories elsewhere, as
root under the README's cron example.  So every write and delete reaches its
directory from the mirror directory one component at a time with
``O_NOFOLLOW`` and then works relative to that directory's descriptor: a
link is found where it is, and cannot be swapped in between a check and the
use.  Only the mirror directory itself and its ``web/`` may be links, which
is how an admin puts them on another volume (``/srv/pypi -> /data/pypi``).
Each function finds the mirror directory from the staging directory it is
given: the staging directory's grandparent.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import secrets
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from ..errors import BandersnatchError, LinkInMirror, StorageError, UnsafePath, shown
from ..formats.segment import check_segment

# Linux's PATH_MAX, counting the terminating NUL: a longer path fails every system call with
# ENAMETOOLONG, however short each of its components is.
PATH_MAX = 4096

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_INSIDE = _DIRECTORY | os.O_NOFOLLOW
_NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# The mirror directory's entries an admin may make links (see the module docstring).
_ADMIN_LINKS = ("web",)
# Failures of one path rather than of the disk: one path needed as a file and as a
# directory (two upstream URLs), or a name this filesystem cannot hold.  They fail the
# project that wants the path; any other error is the disk's and stops the run.
_PATH_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY,
                          errno.ENAMETOOLONG, errno.EILSEQ})


def confined(base: Path, parts: Sequence[str], room: int = 0) -> Path:
    """Join ``parts`` below ``base``, refusing anything that could leave it or be too long to use.

    ``room``: bytes the caller will append to the last component (a suffix).
    """
    if not parts:
        raise UnsafePath("refusing an empty path")
    for part in parts:
        check_segment(part)
    # One join: pathlib parses the whole tail once instead of once per segment ("/" after
    # "/"), and a checked segment holds no separator, so the result is the same path.
    path = base.joinpath(*parts)
    length = len(os.fsencode(path)) + room
    if length >= PATH_MAX:
        raise UnsafePath(f"refusing a path of {length} bytes below {shown(str(base))}: "
                         f"the system's limit is {PATH_MAX - 1}")
    return path


def staging_dir(directory: Path, owner: str) -> Path:
    """Where ``owner`` (``mirror``, ``stats``) stages its temporary files below the mirror ``directory``."""
    return directory / "tmp" / owner


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- reaching a directory without links


# Below these entries of the mirror directory lies what clients read (web/, or an object
# store's local record, recordedstore.RECORD_DIR): a link there is the operator's to fix, the
# same for every command (LinkInMirror, exit 2), and is neither followed nor deleted.
_PUBLISHED = ("web", "s3-pages")


def _published(path: Path, root: Path) -> bool:
    return any(str(path).startswith(f"{root}/{top}/") for top in _PUBLISHED)


def _link_refused(path: Path, root: Path) -> StorageError:
    kind = LinkInMirror if _published(path, root) else StorageError
    return kind(
        f"{path} is a symbolic link: bandersnatch follows no link inside the mirror directory {root} "
        "(only the directory itself and its web/ may be links); put what it points to in its place, "
        "or remove it, and run again"
    )


def link_refused(path: Path, root: Path) -> StorageError:
    """The error for a link found at ``path`` below the mirror directory ``root`` (by a walk)."""
    return _link_refused(path, root)


class _Vanished(Exception):
    """A directory being written into was removed meanwhile: another thread pruned it while empty."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def _open_dir(path: Path, staging: Path, *, create: bool, purpose: Path | None = None) -> int | None:
    """A descriptor of the directory ``path``, reached from the mirror directory without following links.

    With ``create``, missing directories are made on the way; without, None
    when one is missing or is not a directory.  ``purpose`` is the file the
    caller means to store: a file in its way fails that one file (UnsafePath,
    two upstream URLs clashing); a file where one of our own directories
    belongs is damage (StorageError).
    """
    try:
        return _walk_to_dir(path, staging, create, purpose)
    except _Vanished:
        pass  # a concurrent prune_empty_dirs removed a directory on the way: make it again, once
    try:
        return _walk_to_dir(path, staging, create, purpose)
    except _Vanished as exc:
        raise StorageError(f"cannot write {exc.path}: removed twice while being made") from None


@functools.lru_cache(maxsize=16)
def _mirror_dir(staging: Path) -> tuple[Path, str]:
    """The mirror directory of a staging directory (``<directory>/tmp/<owner>``), and as text.

    Asked by every walk (two per page written): the same few staging paths all run long,
    so the two ``parent`` steps and their formatting are done once each.
    """
    root = staging.parent.parent
    return root, str(root)


def _parts_below(path: Path, top: str) -> list[str]:
    """``path.relative_to(top).parts``, by string: every page write walks here (pathlib is slow at it)."""
    text = str(path)
    if text == top:
        return []
    prefix = top if top.endswith("/") else top + "/"
    if not text.startswith(prefix):
        raise ValueError(f"{path} is not below {top}")  # a caller's bug, never upstream data
    return text[len(prefix):].split("/")


def _walk_to_dir(path: Path, staging: Path, create: bool, purpose: Path | None) -> int | None:
    root, top = _mirror_dir(staging)
    parts = _parts_below(path, top)
    base = top  # strings, not Paths, on the way: building a Path per step is slow
    if parts[:1] and parts[0] in _ADMIN_LINKS:
        base, parts = f"{top}/{parts[0]}", parts[1:]
    try:
        try:
            fd = os.open(base, _DIRECTORY)
        except FileNotFoundError:
            if not create:
                return None
            make_readable_dirs(Path(base))
            fd = os.open(base, _DIRECTORY)
    except OSError as exc:
        raise StorageError(f"cannot write {base}: {exc.strerror or exc}") from exc
    here = base  # for error messages only
    try:
        for part in parts:
            here = f"{here}/{part}"
            child = _open_child(fd, part, here, root, create, purpose)
            os.close(fd)
            fd = -1
            if child is None:
                return None
            fd = child
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def _open_child(fd: int, name: str, path: str, root: Path, create: bool, purpose: Path | None) -> int | None:
    for attempt in range(2):
        try:
            return os.open(name, _INSIDE, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                return None
            if attempt:
                raise _Vanished(Path(path)) from None  # made just now, and already pruned
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
            if _is_link(fd, name):
                raise _link_refused(Path(path), root) from None
            if not create:
                return None
            if purpose is None:  # one of our own directories: damage, not upstream's doing
                raise StorageError(f"cannot write {path}: it is a file, not a directory") from None
            raise UnsafePath(f"cannot store {purpose}: {path} is a file, not a directory") from None
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
            _readable_by_all(fd, name)
        except FileExistsError:
            pass  # another thread made it first; or it is a file, which the next open tells
        except FileNotFoundError:
            raise _Vanished(Path(path).parent) from None  # the directory ``fd`` was pruned since we opened it
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return None


def make_readable_dirs(path: Path) -> None:
    """``mkdir -p`` whose new directories are 0755 whatever the umask (see ``_readable_by_all``);
    directories that exist are the operator's and keep their mode."""
    missing = []
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue
        os.chmod(directory, 0o755)


def _readable_by_all(dir_fd: int, name: str) -> None:
    """Give a directory just made its 0755: mkdir's mode is cut by the umask, and an operator's
    ``umask 077`` would hide ``web/`` from the web server's user (files get 0644 the same way)."""
    made = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fchmod(made, 0o755)
    finally:
        os.close(made)


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _failure(action: str, path: Path, exc: OSError) -> BandersnatchError:
    """The disk's failure (stops the run) or one path's (fails the project that wants it)."""
    if exc.errno == errno.EISDIR:
        return UnsafePath(f"cannot {action} {path}: it is a directory, not a file")
    if exc.errno in _PATH_ERRNOS:
        return UnsafePath(f"cannot {action} {path}: {exc.strerror or exc}")
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc}")


def make_dirs(path: Path, staging: Path) -> None:
    """Create the directory ``path`` and its parents below the mirror directory, through no link."""
    fd = _open_dir(path, staging, create=True)
    if fd is not None:
        os.close(fd)


# ---------------------------------------------------------------- atomic files


class StagedFile:
    """A temporary file that becomes ``target`` on ``commit()`` and vanishes otherwise."""

    def __init__(self, target: Path, staging: Path) -> None:
        self.target = target
        self.staging = staging
        self._dir: int | None = _open_dir(staging, staging, create=True)
        assert self._dir is not None, "created above"
        try:
            while True:
                name = f"stage-{secrets.token_hex(8)}"
                try:
                    fd = os.open(name, _NEW_FILE, 0o600, dir_fd=self._dir)
                    break
                except FileExistsError:
                    continue
        except BaseException:
            self._close_dir()
            raise
        self.temp_name = name
        # Readable: a download is inspected before commit.  A buffer size given: io.open then
        # skips its isatty() probe, one ioctl per staged file.
        self.file: BinaryIO = os.fdopen(fd, "w+b", buffering=io.DEFAULT_BUFFER_SIZE)
        self.committed = False

    @property
    def temp(self) -> Path:
        """The temporary file's path (made when asked: most staged files never need it)."""
        return self.staging / self.temp_name

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            os.fchmod(self.file.fileno(), 0o644)
            self.file.close()
        except OSError as exc:
            self.discard()
            raise StorageError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
        assert self._dir is not None, "open until committed"
        try:
            _replace_into(self._dir, self.temp_name, self.target, self.staging)
        except OSError as exc:
            self.discard()
            raise _failure("store", self.target, exc) from exc
        except BaseException:
            self.discard()
            raise
        self.committed = True
        self._close_dir()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if self._dir is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_name, dir_fd=self._dir)
        self._close_dir()

    def _close_dir(self) -> None:
        if self._dir is not None:
            fd, self._dir = self._dir, None
            os.close(fd)


@contextlib.contextmanager
def staged(target: Path, staging: Path) -> Iterator[StagedFile]:
    """Context manager: write into ``.file``, call ``.commit()``; anything else discards."""
    try:
        f = StagedFile(target, staging)
    except OSError as exc:
        raise StorageError(f"cannot create a temporary file in {staging}: {exc.strerror or exc}") from exc
    try:
        yield f
    except OSError as exc:
        f.discard()
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        f.discard()
        raise
    if not f.committed:
        f.discard()


def atomic_write(target: Path, data: bytes | Iterable[bytes], staging: Path) -> None:
    """Replace ``target`` with ``data`` (bytes or chunks) atomically: temp in ``staging``, fsync, rename."""
    with staged(target, staging) as f:
        write_all(f.file, data)
        f.commit()


def write_all(file: BinaryIO, data: bytes | Iterable[bytes]) -> None:
    """Write ``data``, bytes or chunks of them, into ``file`` (what every publish of a page takes)."""
    if isinstance(data, bytes):
        file.write(data)
    else:
        for chunk in data:
            file.write(chunk)


def _replace_into(src_dir: int, name: str, target: Path, staging: Path) -> None:
    """Rename ``name`` (below ``src_dir``) to ``target``, making its directory if missing.

    Another thread pruning that directory while it is still empty (it deleted the
    last other file there) may remove it between our open and the rename: the
    rename then fails with ENOENT though our file is there, and is tried once more.
    FileNotFoundError otherwise means ``name`` is gone.
    """
    for attempt in range(2):
        parent = _open_dir(target.parent, staging, create=True, purpose=target)
        assert parent is not None, "created above"
        try:
            os.replace(name, target.name, src_dir_fd=src_dir, dst_dir_fd=parent)
            return
        except FileNotFoundError:
            if attempt or not _exists(src_dir, name):
                raise
        finally:
            os.close(parent)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def publish_file(target: Path, data: Iterable[bytes], staging: Path) -> None:
    """Replace ``target``, which may lie outside the mirror (an operator's diff-file), atomically.

    Inside the mirror directory this is ``atomic_write``.  Elsewhere the path
    is the operator's own choice, so its links are followed as for any other
    program's output; the temporary file sits beside it, so the rename stays
    on one filesystem.
    """
    root = staging.parent.parent
    if target.is_relative_to(root):
        atomic_write(target, data, staging)
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    replace_outside(target, data)


def replace_outside(target: Path, data: Iterable[bytes]) -> None:
    """Replace ``target``, an operator's file outside any mirror, atomically (links followed).

    The temporary file beside it is named ``.<name>.<random>``: hidden, and not
    ending as ``target`` does (a Prometheus textfile collector ignores it).
    """
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o644)
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def move_staged(source: Path, target: Path, staging: Path) -> bool:
    """Rename ``source``, a complete file below ``staging``, to ``target``; False when ``source`` is gone."""
    src_dir = _open_dir(source.parent, staging, create=False)
    if src_dir is None:
        return False
    try:
        _replace_into(src_dir, source.name, target, staging)
    except FileNotFoundError:
        if _exists(src_dir, source.name):
            raise StorageError(f"cannot store {target}: its directory was removed twice while being "
                               "written into") from None
        return False
    except OSError as exc:
        raise _failure("store", target, exc) from exc
    finally:
        os.close(src_dir)
    return True


def open_new_text(path: Path, staging: Path) -> TextIO:
    """``path`` emptied (or created) for writing text, refusing a link in its place."""
    fd = _open_file(path, staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    return os.fdopen(fd, "w", encoding="utf-8")


def open_appending(path: Path, staging: Path) -> BinaryIO:
    """``path`` (created if missing) for reading and appending bytes, refusing a link in its place."""
    fd = _open_file(path, staging, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    return os.fdopen(fd, "ab+")


def _open_file(path: Path, staging: Path, flags: int) -> int:
    parent = _open_dir(path.parent, staging, create=True, purpose=path)
    assert parent is not None, "created above"
    try:
        return os.open(path.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_refused(path, staging.parent.parent) from None
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(parent)


# ---------------------------------------------------------------- reading without links


def open_regular(path: Path, staging: Path) -> BinaryIO | None:
    """The regular file ``path`` open for reading, reached without following a link; None when missing.

    A link on the way or in its place raises (``_link_refused``): what a link shows
    is not the mirror's, and judging it would let a repair delete or trust it.
    """
    fd = _open_dir(path.parent, staging, create=False)
    if fd is None:
        return None
    try:
        file = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_refused(path, _mirror_dir(staging)[0]) from None
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file).st_mode):  # a directory where a file is asked for
        os.close(file)
        return None
    return os.fdopen(file, "rb")


def stat_regular(path: Path, staging: Path) -> os.stat_result | None:
    """``os.stat`` of the regular file ``path``, following no link (as ``open_regular``); None: none there."""
    fd = _open_dir(path.parent, staging, create=False)
    if fd is None:
        return None
    try:
        info = os.stat(path.name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    finally:
        os.close(fd)
    if stat.S_ISLNK(info.st_mode):
        raise _link_refused(path, _mirror_dir(staging)[0])
    return info if stat.S_ISREG(info.st_mode) else None


# ---------------------------------------------------------------- deleting


def clear_staging(staging: Path) -> int:
    """Remove what a killed run left in ``staging``; return how many entries went."""
    fd = _open_dir(staging, staging, create=False)
    if fd is None:
        return 0
    try:
        return _empty_dir(fd)
    finally:
        os.close(fd)


def _empty_dir(fd: int) -> int:
    """Remove everything in the directory open as ``fd``; return how many entries went."""
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        _remove_tree(fd, name)
    return len(names)


def _remove_tree(dir_fd: int, name: str) -> None:
    """Remove ``name`` below ``dir_fd``: a file or a link itself, a directory with all it holds."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    with contextlib.suppress(OSError):
        fd = os.open(name, _INSIDE, dir_fd=dir_fd)
        try:
            _empty_dir(fd)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)


def remove_tree(path: Path, staging: Path) -> bool:
    """Delete ``path`` (a file, a link itself, or a directory with all it holds); False when absent."""
    fd = _open_dir(path.parent, staging, create=False)
    if fd is None:
        return False
    try:
        try:
            os.lstat(path.name, dir_fd=fd)
        except FileNotFoundError:
            return False
        _remove_tree(fd, path.name)
    finally:
        os.close(fd)
    return True


def remove_file(path: Path, staging: Path) -> bool:
    """Delete the file ``path`` if present; pruning now-empty parent directories is the caller's job.

    A link in the published tree is refused (LinkInMirror), not deleted: pages may still
    be served through it.
    """
    fd = _open_dir(path.parent, staging, create=False)
    if fd is None:
        return False
    try:
        root = _mirror_dir(staging)[0]
        if _published(path, root) and _is_link(fd, path.name):
            raise _link_refused(path, root)
        os.unlink(path.name, dir_fd=fd)
    except (FileNotFoundError, IsADirectoryError):
        return False
    except OSError as exc:
        raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return True


def prune_empty_dirs(start: Path, stop: Path, staging: Path) -> None:
    """Remove ``start`` and its parents while they are empty, never ``stop`` or above."""
    try:
        parts = start.relative_to(stop).parts
    except ValueError:
        return
    if not parts or ".." in parts:
        return
    fd = _open_dir(stop, staging, create=False)
    if fd is None:
        return
    fds = [fd]
    try:
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _INSIDE, dir_fd=fds[-1]))
            except OSError:
                return
        for parent, name in zip(reversed(fds), reversed(parts), strict=True):
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError:
                return
    finally:
        for each in fds:
            os.close(each)


# ---------------------------------------------------------------- walking


def walk_files(top: Path, staging: Path) -> Iterator[tuple[str, ...]]:
    """Every regular file below the directory ``top``, as its segments below ``top``, following no link.

    Links, and whatever they point to, are not listed; nothing when ``top`` is missing.
    Names come sorted within each directory.
    """
    fd = _open_dir(top, staging, create=False)
    if fd is None:
        return
    yield from _walk_fd(fd, ())


def _walk_fd(fd: int, here: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """The files below the directory open as ``fd`` (closed at the end)."""
    try:
        with os.scandir(fd) as scan:
            entries = sorted((entry.name, entry.is_dir(follow_symlinks=False),
                              entry.is_file(follow_symlinks=False)) for entry in scan)
        for name, is_dir, is_file in entries:
            if is_file:
                yield (*here, name)
            elif is_dir:
                try:
                    child = os.open(name, _INSIDE, dir_fd=fd)
                except OSError:
                    continue  # removed meanwhile, or swapped for a link: not ours to follow
                yield from _walk_fd(child, (*here, name))
    finally:
        os.close(fd)
