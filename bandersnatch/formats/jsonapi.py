"""A copy of PyPI's JSON API, ``web/pypi/<project>/json``, for the projects on the mirror.

Warehouse's ``/pypi/<project>/json`` is not a standard, but tools read it
(vulnerability scanners, dependency bots, bandersnatch's own ``verify``).  We
can only say what the simple page says: the files, their versions, digests,
sizes, upload times and yanks.  So ``info`` carries the name and the latest
version, not the descriptions and authors PyPI adds from core metadata.

Rendering is pure (records in, bytes out); ``sync/jsoncopy.py`` writes and removes
the objects through the mirror's store.  File URLs point into the mirror: relative
to ``/pypi/<project>/json`` by default, or below ``root_uri`` when one is set
(bandersnatch's option of that name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.version import Version

from .dists import SDIST_EXTENSIONS, parse_version, version_text
from .filenames import split_suffix
from .simple import DistFile

JSON_API_FILE = "json"
# PyPI's packagetype by suffix; the sdist extensions are dists.SDIST_EXTENSIONS.
_BDIST_TYPES = {".whl": "bdist_wheel", ".egg": "bdist_egg", ".exe": "bdist_wininst", ".msi": "bdist_msi",
                ".rpm": "bdist_rpm", ".dmg": "bdist_dmg"}
_EGG_PYTHON = re.compile(r"-py(\d+\.\d+)(?:-|$)")
# Digests PyPI's JSON API lists: sha256 we verified; the others only as upstream's page gave them.
_EXTRA_DIGESTS = ("md5", "blake2b_256")


def packagetype(filename: str) -> str:
    parts = split_suffix(filename)
    suffix = parts[1].lower() if parts is not None else ""
    if suffix in _BDIST_TYPES:
        return _BDIST_TYPES[suffix]
    return "sdist" if suffix in SDIST_EXTENSIONS else "bdist_dumb"


def python_version(filename: str) -> str:
    """PyPI's ``python_version``: a wheel's Python tag, an egg's ``X.Y``, ``source`` for an sdist."""
    kind = packagetype(filename)
    if kind == "sdist":
        return "source"
    if kind == "bdist_wheel":
        parts = filename[:-len(".whl")].split("-")
        return parts[-3] if len(parts) >= 5 else "any"
    found = _EGG_PYTHON.search(filename[:-4]) if kind == "bdist_egg" else None
    return found.group(1) if found else "any"


def latest_version(versions: Sequence[str]) -> str | None:
    """The newest final release (PyPI's ``info.version``), else the newest pre-release."""
    parsed: list[tuple[Version, str]] = []
    for text in versions:
        version = parse_version(text)
        if version is not None:
            parsed.append((version, text))
    finals = [p for p in parsed if not p[0].is_prerelease]
    if finals or parsed:
        return max(finals or parsed)[1]
    return max(versions) if versions else None  # none is PEP 440: the best we can tell


def _iso(upload_time: str | None) -> tuple[str | None, str | None]:
    """(``upload_time``, ``upload_time_iso_8601``) as PyPI writes them, from PEP 700's ``upload-time``."""
    if upload_time is None:
        return None, None
    return upload_time.rstrip("Z").split(".")[0], upload_time


def _file_entry(local: DistFile, upstream: DistFile, url: str) -> dict[str, Any]:
    digests = {algo: upstream.hashes[algo] for algo in _EXTRA_DIGESTS if algo in upstream.hashes}
    digests["sha256"] = local.hashes["sha256"]
    uploaded, uploaded_iso = _iso(local.upload_time)
    metadata = local.core_metadata
    return {
        "comment_text": None,
        "core-metadata": dict(metadata) if isinstance(metadata, Mapping) else metadata,
        "digests": digests,
        "filename": local.filename,
        "has_sig": False,
        "md5_digest": digests.get("md5"),
        "packagetype": packagetype(local.filename),
        "python_version": python_version(local.filename),
        "requires_python": local.requires_python,
        "size": local.size,
        "upload_time": uploaded,
        "upload_time_iso_8601": uploaded_iso,
        "url": url,
        "yanked": local.yanked is not False,
        "yanked_reason": local.yanked if isinstance(local.yanked, str) and local.yanked else None,
    }


def render_project(name: str, key: str, versions: Sequence[str],
                   files: Sequence[tuple[DistFile, DistFile, str]], serial: int) -> bytes:
    """The JSON API document of one project.

    ``files`` are (our record of the file, upstream's, its URL), in page order;
    ``versions`` every version the project has, files or not (PEP 700).
    """
    releases: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
    for local, upstream, url in files:
        version = version_text(local.filename, key)
        if version is not None:
            releases.setdefault(version, []).append(_file_entry(local, upstream, url))
    latest = latest_version(list(releases))
    urls = releases.get(latest, []) if latest is not None else []
    info: dict[str, Any] = {
        "name": name,
        "version": latest,
        "requires_python": next((f["requires_python"] for f in urls if f["requires_python"]), None),
        "yanked": bool(urls) and all(f["yanked"] for f in urls),
        "yanked_reason": next((f["yanked_reason"] for f in urls if f["yanked_reason"]), None),
    }
    doc = {"info": info, "last_serial": serial, "releases": releases, "urls": urls, "vulnerabilities": []}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="replace")


def jsonapi_files(doc: Mapping[str, object]) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Upstream's JSON API document read back: each file's name -> (its release, its entry).

    Whatever upstream sent: entries that are not objects with a string ``filename`` are left out.
    """
    releases = doc.get("releases")
    out: dict[str, tuple[str, Mapping[str, Any]]] = {}
    if not isinstance(releases, dict):
        return out
    for version, entries in releases.items():
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
                out.setdefault(entry["filename"], (str(version), entry))
    return out
