"""Build real, installable distributions in memory for the fake upstream.

The mirror must be tested against files that pip can actually install, not
against placeholder bytes: a mirror that corrupts or renames a file is only
caught when an installer refuses it.  Everything here is stdlib-only and
deterministic (fixed timestamps, sorted members), so a test that builds the
same wheel twice gets the same bytes and the same sha256.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Iterable, Mapping

# 1980-01-01 is the earliest date a zip entry can carry.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# The sdist members' mtime (2020-01-01): any fixed value keeps bytes stable.
TAR_MTIME = 1577836800

WHEEL_TAG = "py3-none-any"

_ESCAPE = re.compile(r"[-_.]+")


def escape_name(name: str) -> str:
    """The distribution name as it appears in file names (wheel spec, PEP 625).

    Runs of ``-_.`` collapse to one ``_`` and the result is lower case, so
    ``Foo.Bar-baz`` becomes ``foo_bar_baz`` in both wheel and sdist names.
    """
    return _ESCAPE.sub("_", name).lower()


def escape_version(version: str) -> str:
    """The version as it appears in a file name: a dash would split the name."""
    return version.replace("-", "_")


def record_hash(data: bytes) -> str:
    """A RECORD-style digest: ``sha256=`` + urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def core_metadata(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    summary: str | None = None,
) -> bytes:
    """Core metadata 2.1 (METADATA / PKG-INFO), the file PEP 658 serves.

    Kept minimal but complete enough for pip's resolver: Requires-Dist and
    Requires-Python are what it reads from a ``.metadata`` file.
    """
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {summary or f'Test distribution {name}'}",
    ]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    requires = list(requires)
    # Installers ignore an extra the metadata does not declare: declare each one a marker names.
    extras = sorted({m for req in requires for m in re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)})
    lines.extend(f"Provides-Extra: {extra}" for extra in extras)
    lines.extend(f"Requires-Dist: {req}" for req in requires)
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def default_modules(name: str, version: str) -> dict[str, str]:
    """One importable package named after the distribution, carrying its version.

    An installed wheel is then checkable with ``import <escaped name>``.
    """
    package = escape_name(name)
    return {f"{package}/__init__.py": f'"""Test package {name}."""\n\n__version__ = "{version}"\n'}


def wheel_filename(name: str, version: str, tag: str = WHEEL_TAG) -> str:
    """``<escaped name>-<version>-<tag>.whl`` (``py3-none-any`` unless told)."""
    return f"{escape_name(name)}-{escape_version(version)}-{tag}.whl"


def sdist_filename(name: str, version: str) -> str:
    """``<escaped name>-<version>.tar.gz`` (PEP 625)."""
    return f"{escape_name(name)}-{escape_version(version)}.tar.gz"


def _wheel_file(tag: str = WHEEL_TAG) -> bytes:
    """The WHEEL file of a pure-python wheel (its tag may still name a platform, for filter tests)."""
    text = f"Wheel-Version: 1.0\nGenerator: distbuild\nRoot-Is-Purelib: true\nTag: {tag}\n\n"
    return text.encode("utf-8")


def _zip_member(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    """Add one member with a fixed date and mode, so the zip is reproducible."""
    info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


def build_wheel_bytes(
    name: str, version: str, metadata: bytes, modules: Mapping[str, str | bytes], tag: str = WHEEL_TAG
) -> tuple[str, bytes]:
    """Assemble a wheel from ready-made METADATA and module files.

    Shared by :func:`make_wheel` and mirrored by the sdist's in-tree backend,
    so an sdist built into a wheel looks like the wheel uploaded next to it.
    """
    dist_info = f"{escape_name(name)}-{escape_version(version)}.dist-info"
    members: list[tuple[str, bytes]] = []
    for path in sorted(modules):
        content = modules[path]
        members.append((path, content.encode("utf-8") if isinstance(content, str) else content))
    members.append((f"{dist_info}/METADATA", metadata))
    members.append((f"{dist_info}/WHEEL", _wheel_file(tag)))
    record_lines = [f"{path},{record_hash(data)},{len(data)}" for path, data in members]
    record_lines.append(f"{dist_info}/RECORD,,")
    members.append((f"{dist_info}/RECORD", ("\n".join(record_lines) + "\n").encode("utf-8")))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in members:
            _zip_member(archive, path, data)
    return wheel_filename(name, version, tag), buffer.getvalue()


def make_wheel(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    modules: Mapping[str, str] | None = None,
    tag: str = WHEEL_TAG,
) -> tuple[str, bytes, bytes]:
    """A pip-installable pure-python wheel: ``(filename, wheel bytes, METADATA bytes)``.

    ``modules`` maps archive paths (``"pkg/__init__.py"``, ``"mod.py"``) to
    source text; by default one package named after the distribution.  The
    METADATA bytes are returned separately because they are exactly what a
    PEP 658 ``.metadata`` file must contain.
    """
    metadata = core_metadata(name, version, requires=requires, requires_python=requires_python)
    files = dict(modules) if modules is not None else default_modules(name, version)
    filename, data = build_wheel_bytes(name, version, metadata, files, tag)
    return filename, data, metadata


# ------------------------------------------------------------------ sdists

PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""

# The in-tree PEP 517 backend.  It reads PKG-INFO for the metadata and packs
# every other file of the source tree into a wheel, with the stdlib only, so
# pip can build the sdist with no index at all (build isolation installs
# nothing because ``requires = []``).
BACKEND = '''\
"""Minimal in-tree PEP 517 backend for test sdists (stdlib only)."""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIP = {"PKG-INFO", "pyproject.toml", "backend.py"}
_TAG = "py3-none-any"


def _metadata():
    with open(os.path.join(_HERE, "PKG-INFO"), "rb") as handle:
        return handle.read()


def _field(metadata, key):
    for line in metadata.decode("utf-8").splitlines():
        if line.startswith(key + ": "):
            return line[len(key) + 2:]
    raise ValueError("PKG-INFO lacks " + key)


def _escaped():
    metadata = _metadata()
    name = re.sub(r"[-_.]+", "_", _field(metadata, "Name")).lower()
    return name, _field(metadata, "Version").replace("-", "_")


def _dist_info():
    name, version = _escaped()
    return name + "-" + version + ".dist-info"


def _wheel_text():
    text = "Wheel-Version: 1.0\\nGenerator: backend\\nRoot-Is-Purelib: true\\n"
    return (text + "Tag: " + _TAG + "\\n\\n").encode()


def _sources():
    found = []
    for root, dirs, files in os.walk(_HERE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for filename in sorted(files):
            path = os.path.join(root, filename)
            relative = os.path.relpath(path, _HERE).replace(os.sep, "/")
            if relative in _SKIP or filename.endswith(".pyc"):
                continue
            with open(path, "rb") as handle:
                found.append((relative, handle.read()))
    return found


def _record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = _dist_info()
    target = os.path.join(metadata_directory, dist_info)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, "METADATA"), "wb") as handle:
        handle.write(_metadata())
    with open(os.path.join(target, "WHEEL"), "wb") as handle:
        handle.write(_wheel_text())
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version = _escaped()
    dist_info = _dist_info()
    members = _sources()
    members.append((dist_info + "/METADATA", _metadata()))
    members.append((dist_info + "/WHEEL", _wheel_text()))
    record = [p + "," + _record_hash(d) + "," + str(len(d)) for p, d in members]
    record.append(dist_info + "/RECORD,,")
    members.append((dist_info + "/RECORD", ("\\n".join(record) + "\\n").encode()))
    filename = name + "-" + version + "-" + _TAG + ".whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in members:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    name, version = _escaped()
    base = name + "-" + version
    filename = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as archive:
        for relative in ["PKG-INFO", "pyproject.toml", "backend.py"] + [p for p, _ in _sources()]:
            archive.add(os.path.join(_HERE, relative), arcname=base + "/" + relative)
    return filename
'''


def _tar_member(archive: tarfile.TarFile, path: str, data: bytes) -> None:
    """Add one regular file with fixed owner, mode and mtime (reproducibility)."""
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mtime = TAR_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def _gzip_tar(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A ``.tar.gz`` whose gzip header carries no name and no time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, data in members:
            _tar_member(archive, path, data)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as compressed:
        compressed.write(raw.getvalue())
    return out.getvalue()


def make_sdist(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    requires_python: str | None = None,
    modules: Mapping[str, str] | None = None,
) -> tuple[str, bytes]:
    """A ``.tar.gz`` sdist pip can build offline: ``(filename, bytes)``.

    It ships PKG-INFO, a ``pyproject.toml`` pointing at the in-tree
    ``backend.py`` (:data:`BACKEND`) and the module files.  Building needs no
    index: the backend has no build requirements and uses only the stdlib.
    """
    metadata = core_metadata(name, version, requires=requires, requires_python=requires_python)
    files = dict(modules) if modules is not None else default_modules(name, version)
    base = f"{escape_name(name)}-{escape_version(version)}"
    members = [
        (f"{base}/PKG-INFO", metadata),
        (f"{base}/pyproject.toml", PYPROJECT.encode("utf-8")),
        (f"{base}/backend.py", BACKEND.encode("utf-8")),
    ]
    members.extend((f"{base}/{path}", files[path].encode("utf-8")) for path in sorted(files))
    return sdist_filename(name, version), _gzip_tar(members)
