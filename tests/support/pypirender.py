"""The fake PyPI's pages from its records: the root and project pages of the simple API in
both formats (PEP 503 HTML, PEP 691 JSON), the legacy JSON API, and the canned error bodies.
Pure: records in, bytes out.
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any
from urllib.parse import quote

from support.pypirecords import API_VERSION, SIMPLE_JSON, FileEntry, Response, Snapshot, iso_time, normalize


def _json_body(data: Any) -> bytes:
    return json.dumps(data, sort_keys=False).encode("utf-8")


def render_root(snapshots: list[Snapshot], serial: int, content_type: str) -> bytes:
    """The ``/simple/`` index in HTML or PEP 691 JSON."""
    return render_root_rows([(s.name, s.serial) for s in snapshots], serial, content_type)


def render_root_rows(rows: list[tuple[str, int]], serial: int, content_type: str) -> bytes:
    """:func:`render_root` from ``(display name, last serial)`` rows, already in index order."""
    if content_type == SIMPLE_JSON:
        projects = [{"name": name, "_last-serial": last} for name, last in rows]
        return _json_body(
            {"meta": {"api-version": API_VERSION, "_last-serial": serial}, "projects": projects}
        )
    links = "".join(
        f'<a href="/simple/{html.escape(normalize(name))}/">{html.escape(name)}</a>\n' for name, _ in rows
    )
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "<title>Simple index</title>\n</head>\n<body>\n"
        f"{links}</body>\n</html>\n"
    ).encode()


def _file_json(entry: FileEntry, base_url: str) -> dict[str, Any]:
    """One PEP 691/700 file object."""
    data: dict[str, Any] = {
        "filename": entry.filename,
        "url": base_url + quote(entry.path),
        "hashes": {"sha256": entry.sha256},
    }
    if entry.requires_python is not None:
        data["requires-python"] = entry.requires_python
    metadata = {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False
    data["yanked"] = entry.yanked_value
    data["core-metadata"] = metadata
    data["dist-info-metadata"] = metadata
    data["size"] = entry.size
    data["upload-time"] = iso_time(entry.upload_time)
    data["provenance"] = base_url + quote(entry.provenance_path) if entry.provenance is not None else None
    return data


def _file_anchor(entry: FileEntry, base_url: str) -> str:
    """One PEP 503 ``<a>`` with its data- attributes, escaped."""
    href = f"{base_url}{quote(entry.path)}#sha256={entry.sha256}"
    attributes = [f'href="{html.escape(href)}"']
    if entry.requires_python is not None:
        attributes.append(f'data-requires-python="{html.escape(entry.requires_python)}"')
    if entry.yanked:
        attributes.append(f'data-yanked="{html.escape(entry.yanked_reason)}"')
    if entry.metadata_sha256:
        value = f"sha256={entry.metadata_sha256}"
        attributes.append(f'data-core-metadata="{value}"')
        attributes.append(f'data-dist-info-metadata="{value}"')
    if entry.provenance is not None:
        attributes.append(f'data-provenance="{html.escape(base_url + quote(entry.provenance_path))}"')
    return f"<a {' '.join(attributes)}>{html.escape(entry.filename)}</a><br/>\n"


def render_project(snapshot: Snapshot, base_url: str, content_type: str) -> bytes:
    """A project's simple page in HTML (PEP 503) or JSON (PEP 691), API 1.4 with PEP 740 and 792."""
    files = snapshot.offered
    name = normalize(snapshot.name)
    status: dict[str, str] = {"status": snapshot.status}
    if snapshot.status_reason is not None:
        status["reason"] = snapshot.status_reason
    if content_type == SIMPLE_JSON:
        return _json_body(
            {
                "meta": {"api-version": API_VERSION, "_last-serial": snapshot.serial},
                "name": name,
                "project-status": status,
                "versions": snapshot.versions() if files else [],
                "files": [_file_json(entry, base_url) for entry in files],
            }
        )
    title = html.escape(name)
    anchors = "".join(_file_anchor(entry, base_url) for entry in files)
    metas = "".join(f'<meta name="pypi:project-{"status" if k == "status" else "status-reason"}" '
                    f'content="{html.escape(v)}">\n' for k, v in status.items())
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"{metas}"
        f"<title>Links for {title}</title>\n</head>\n<body>\n"
        f"<h1>Links for {title}</h1>\n{anchors}</body>\n</html>\n"
        f"<!--SERIAL {snapshot.serial}-->\n"
    ).encode()


def _legacy_file(entry: FileEntry, base_url: str) -> dict[str, Any]:
    """One file dict of the legacy ``/pypi/<name>/json`` API."""
    return {
        "comment_text": "",
        "digests": {"blake2b_256": entry.blake2b_256, "md5": entry.md5, "sha256": entry.sha256},
        "downloads": -1,
        "filename": entry.filename,
        "has_sig": False,
        "md5_digest": entry.md5,
        "packagetype": entry.packagetype,
        "python_version": entry.python_version,
        "requires_python": entry.requires_python,
        "size": entry.size,
        "upload_time": entry.upload_time.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": iso_time(entry.upload_time),
        "url": base_url + quote(entry.path),
        "yanked": entry.yanked,
        "yanked_reason": entry.yanked_reason or None,
        # PEP 658/714 in the JSON API, as PyPI serves it: bandersnatch 8.x mirrors <url>.metadata by it.
        "core-metadata": {"sha256": entry.metadata_sha256} if entry.metadata_sha256 else False,
    }


def render_legacy_json(snapshot: Snapshot, base_url: str, version: str | None = None) -> bytes | None:
    """The legacy JSON API document; ``version`` selects a release (None = latest)."""
    files = snapshot.files or ()
    versions = snapshot.versions()
    chosen = version if version is not None else (versions[-1] if versions else None)
    if version is not None and version not in versions:
        return None
    releases = {v: [_legacy_file(e, base_url) for e in files if e.version == v] for v in versions}
    latest = [e for e in files if e.version == chosen]
    info = {
        "name": snapshot.name,
        "version": chosen,
        "summary": f"Test project {snapshot.name}",
        "requires_python": latest[0].requires_python if latest else None,
        "yanked": bool(latest) and all(e.yanked for e in latest),
        "yanked_reason": None,
        "project_url": f"{base_url}/project/{snapshot.name}/",
    }
    data: dict[str, Any] = {"info": info, "last_serial": snapshot.serial}
    if version is None:
        data["releases"] = releases
    data["urls"] = [_legacy_file(e, base_url) for e in latest]
    data["vulnerabilities"] = []
    return _json_body(data)


def _corrupted(content: bytes) -> bytes:
    """Different bytes of the same length, so only a hash check can notice."""
    if not content:
        return b"\x00"
    return content[:-1] + bytes([content[-1] ^ 0xFF])


def _html_type(content_type: str) -> str:
    """Content-Type header value: HTML types carry a charset."""
    return f"{content_type}; charset=utf-8" if content_type != SIMPLE_JSON else content_type


def _plain(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
    headers = {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}
    return Response(status, headers, (message + "\n").encode("utf-8"))
