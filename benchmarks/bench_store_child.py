"""Runs one ``bandersnatch`` command for ``bench_store.py`` and counts what it asks of its store.

Usage: ``bench_store_child.py COUNTS.json s3|filesystem -c CONFIG mirror``.

- ``s3``: every S3 operation the mirror's boto3 clients send (PutObject,
  HeadObject, UploadPart, ...), counted by a botocore ``before-parameter-build``
  hook as the call is made (a retry inside botocore is not counted again);
- ``filesystem``: every call of the store interface on ``FilesystemStore``
  (an upload committed, a read, a stat, a delete), under the S3 operation it
  stands for (an iteration as ``iterate``).  The root index, patched in place on a filesystem,
  is not a store call there.

The counts go to ``COUNTS.json`` as ``{kind: {key: n}}`` when the command
ends, whatever its exit status.  Nothing is counted but calls: the hook costs
a dictionary update per request, so wall, CPU and RSS stay those of a plain
``bandersnatch`` run (the ``s3`` run imports boto3, as a plain one does).
"""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

FS_KINDS = {"commit": "PutObject", "publish_page": "PutObject", "read": "GetObject", "stat": "HeadObject",
            "delete": "DeleteObject", "iterate": "iterate"}

_counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
_lock = threading.Lock()


def count(kind: str, key: str) -> None:
    with _lock:
        _counts[kind][key] += 1


def hook_s3() -> None:
    """Count every operation of each boto3 client made from now on."""
    import boto3.session

    original = boto3.session.Session.client

    def counting_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        made = original(self, *args, **kwargs)

        def counted(params: dict[str, Any], model: Any, **_: Any) -> None:
            count(model.name, str(params.get("Key", "")))

        made.meta.events.register("before-parameter-build.s3", counted)
        return made

    boto3.session.Session.client = counting_client  # type: ignore[method-assign]


def hook_filesystem() -> None:
    """Count the store calls of every FilesystemStore (the mirror's ``web/``)."""
    from bandersnatch.store import filesystem as fsstore

    def wrap(owner: type, name: str, key_of: Callable[[Any, tuple[Any, ...]], str]) -> None:
        original = getattr(owner, name)

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            count(FS_KINDS[name], key_of(self, args))
            return original(self, *args, **kwargs)

        setattr(owner, name, counted)

    wrap(fsstore._Upload, "commit", lambda up, _: str(up.key))
    # publish_page stages its file itself (no upload() behind it), so it is a PUT of its own.
    for name in ("publish_page", "read", "stat", "delete", "iterate"):
        wrap(fsstore.FilesystemStore, name, lambda _, args: str(args[0]))


def main(argv: list[str]) -> int:
    out, mode, *command = argv
    (hook_s3 if mode == "s3" else hook_filesystem)()
    from bandersnatch import cli

    try:
        return cli.main(command)
    finally:
        with _lock:
            Path(out).write_text(json.dumps(_counts), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
