"""Writes and removes the JSON API copy (``web/pypi/<project>/json``) through the run's store;
the format itself is formats/jsonapi.py's."""

from __future__ import annotations

from collections.abc import Sequence

from ..formats.jsonapi import JSON_API_FILE, render_project
from ..formats.layout import key_dir
from ..formats.simple import DistFile
from ..store.protocol import Store


class JsonApi:
    """``web/pypi/<project>/json`` of one mirror (under ``<first letter>/`` with hash-index)."""

    def __init__(self, store: Store, hash_index: bool, *, enabled: bool,
                 root_uri: str | None) -> None:
        self.store, self.hash_index = store, hash_index  # the run's gate records what changes
        self.enabled = enabled
        # From /pypi/<project>/json, ../../ is the root the mirror is served at.
        self.base = root_uri.rstrip("/") + "/" if root_uri else "../../"

    def key(self, key: str) -> str:
        """The store key of a project's copy (``pypi/<project>/json``)."""
        return "/".join(["pypi", *key_dir(key, self.hash_index), JSON_API_FILE])

    def file_url(self, packages_path: str) -> str:
        """URL of a file by its (quoted) path below ``web/packages/``."""
        return f"{self.base}packages/{packages_path}"

    def write(self, name: str, key: str, versions: Sequence[str],
              files: Sequence[tuple[DistFile, DistFile, str]], serial: int) -> None:
        if self.enabled:
            store_key = self.key(key)
            self.store.publish_page(store_key, render_project(name, key, versions, files, serial))

    def remove(self, key: str) -> None:
        """Whether or not the copy is enabled now: an earlier run may have written one."""
        self.store.delete(self.key(key))  # and the directories that leaves empty
