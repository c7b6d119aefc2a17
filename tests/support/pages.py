"""Whole root indexes rendered and read back in one piece, for tests (the mirror streams them)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from bandersnatch.formats.simple import iter_root_html, iter_root_json


def render_root_html(projects: Iterable[tuple[str, str]], serial: int | None) -> bytes:
    return b"".join(iter_root_html(projects, serial))


def render_root_json(projects: Iterable[tuple[str, int]], serial: int | None) -> bytes:
    return b"".join(iter_root_json(projects, serial))


def root_names(data: bytes) -> list[str]:
    """Project names listed in a root ``index.v1_json`` (any layout of the JSON)."""
    doc = json.loads(data)
    return [p["name"] for p in doc["projects"]]
