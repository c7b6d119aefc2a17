"""bandersnatch 8's ``[mirror]`` options that are not ours: each honoured, warned about or refused.

An 8.x configuration must work as it is.  Every option 8.x documents is
known here and given one of three fates, decided per option (README,
"Migrating from bandersnatch 8", has the table):

- honoured with 8.x's meaning: read into ``Settings`` and used by the run;
- accepted with one warning line saying what this client does instead
  (the option changes nothing that could surprise: no data is lost or added);
- refused with one line, when going on would do something the operator did
  not ask for (Swift).

``storage-backend`` and the ``[s3]`` section are read by ``storeconfig``.

Pure: the values in, ``Settings`` out, ConfigErrors for what is refused.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, Problems
from .values import MIRROR, ReleaseFiles, parse_bool, parse_release_files, parse_root_uri

MIRROR_OPTIONS = (
    "json",
    "release-files",
    "root_uri",
    "simple-format",
    "keep_index_versions",
    "keep-index-versions",
    "cleanup",
    "log-config",
    "storage-backend",
    "compare-method",
    "digest_name",
    "verifiers",
    "core-metadata",
    "cleanup_todo",
    "delete_missing_packages",
    "storage-filesystem-manage-permissions",
)
"""bandersnatch 8 ``[mirror]`` options accepted besides config.SCHEMA's own."""

STORAGE_SECTIONS = ("s3", "swift")
"""Sections of bandersnatch 8's storage plugins."""

DIFF_FILE_IN_DIRECTORY = "mirrored-files"  # 8.x's name when diff-file is a directory
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9]+)_([A-Za-z0-9_-]+)\s*\}\}")

Warn = Callable[[str, str], None]


@dataclass(frozen=True)
class Settings:
    """What the run uses of bandersnatch 8's own options, and the warnings for the others."""

    diff_file: Path | None = None
    diff_append_epoch: bool = False
    json: bool = False
    root_uri: str | None = None  # the JSON API copy's file URLs; with release-files = false, the pages' too
    release_files: ReleaseFiles = ReleaseFiles.TRUE
    log_config: Path | None = None
    cleanup: bool = False
    core_metadata: bool = True  # false: no <file>.metadata fetched or advertised, as in 8.2
    warnings: tuple[str, ...] = ()


def parse_mirror(values: Mapping[str, str], directory: Path, where: str,
                 sections: tuple[str, ...] = ()) -> Settings:
    """``[mirror]``'s raw values (and the file's section names) read for the 8.x options."""
    problems = Problems()
    warnings: list[str] = []

    def warn(option: str, text: str) -> None:
        warnings.append(f"{where}: [{MIRROR}] {option}: {text}")

    def boolean(option: str, default: bool) -> bool:
        return problems.take(parse_bool, values.get(option), default, where, MIRROR, option, fallback=default)

    def refuse(option: str, why: str) -> None:
        problems.add(ConfigError(where, MIRROR, option, why))

    diff_file = problems.take(_diff_file, values.get("diff-file"), directory, where, fallback=None)
    log_config = problems.take(_absolute, values.get("log-config"), "log-config", where, fallback=None)
    release_files = problems.take(parse_release_files, values.get("release-files"), where,
                                  fallback=ReleaseFiles.TRUE)
    if (release_files is ReleaseFiles.ON_DEMAND
            and (values.get("storage-backend") or "").strip().lower() == "s3"):
        refuse("release-files", "on-demand needs the web server to keep what it fetches below web/packages/, "
                                "which a bucket cannot do: use true or false with storage-backend = s3")
    root_uri = problems.take(parse_root_uri, values.get("root_uri"), where, fallback=None)
    if root_uri and not boolean("json", False) and release_files is not ReleaseFiles.FALSE:
        warn("root_uri", "ignored without json = true: pages link files relatively (../../packages/...), "
                         "which works under any host name and prefix")
    _simple_format(values.get("simple-format"), where, problems, warn)
    for option in ("keep_index_versions", "keep-index-versions"):
        _keep_index_versions(values.get(option), option, where, problems, warn)
    # The value itself is checked with download-mirror (settings): here only a true one is spoken of.
    no_fallback = (values.get("download-mirror-no-fallback") or "").lower()
    if not values.get("download-mirror") and configparser.ConfigParser.BOOLEAN_STATES.get(no_fallback):
        warn("download-mirror-no-fallback", "ignored without download-mirror: files come from the URLs "
                                            "the master's pages give")
    for section in sections:
        if section in STORAGE_SECTIONS and section != (values.get("storage-backend") or "").lower():
            warnings.append(f"{where}: [{section}]: ignored: the mirror is kept on the filesystem")
    compare = (values.get("compare-method") or "hash").lower()
    if compare not in ("hash", "stat"):
        refuse("compare-method", f"{compare!r} is not hash or stat")
    elif compare != "hash":  # 8.x's default says nothing worth a warning
        warn("compare-method", "ignored: a file is trusted while its size and mtime match the record made "
                               "when it was verified, and hashed when not (mirror --force-check hashes all)")
    digest = (values.get("digest_name") or "sha256").lower()
    if digest not in ("sha256", "md5"):
        refuse("digest_name", f"{digest!r} is not sha256 or md5")
    elif digest != "sha256":
        warn("digest_name", "ignored: files are verified with sha256 (or the strongest hash the index gives)")
    verifiers = values.get("verifiers")
    if verifiers is not None and not re.fullmatch(r"[0-9]{1,4}", verifiers):
        refuse("verifiers", f"{verifiers!r} is not a whole number")
    elif verifiers is not None and int(verifiers) != 3:  # 3: 8.x's default
        warn("verifiers", "ignored: it sized bandersnatch 8's verify, which this client does not use")
    boolean("cleanup_todo", False)  # either way a resumed project upstream deleted is finished (removed)
    _delete_missing_packages(values, boolean, warn, refuse)
    if not boolean("storage-filesystem-manage-permissions", True):
        warn("storage-filesystem-manage-permissions",
             "false is not followed: published files are always made readable by all (0644, "
             "directories 0755), so the web server can serve them")
    settings = Settings(
        diff_file=diff_file,
        diff_append_epoch=boolean("diff-append-epoch", False),
        json=boolean("json", False),
        root_uri=root_uri,
        log_config=log_config,
        cleanup=boolean("cleanup", False),
        core_metadata=boolean("core-metadata", True),
        release_files=release_files,
        warnings=tuple(warnings),
    )
    problems.raise_any()
    return settings


def _delete_missing_packages(values: Mapping[str, str], boolean: Callable[[str, bool], bool], warn: Warn,
                             refuse: Callable[[str, str], None]) -> None:
    """8.2's ``delete_missing_packages``: our ``delete-packages`` removes what upstream removed.

    ``true`` is what ours does by default; ``false`` (8.2 kept serving such a project) is said
    once when ours would remove it, since that is the one difference an operator could regret.
    """
    if "delete_missing_packages" not in values:
        return
    wanted = boolean("delete_missing_packages", False)
    ours = boolean("delete-packages", True)
    if wanted and not ours:
        refuse("delete_missing_packages", "true contradicts delete-packages = false (which keeps every "
                                          "project and file); remove one of the two")
    elif not wanted and ours:
        warn("delete_missing_packages", "false is not followed: a project upstream deletes is removed from "
                                        "the mirror too (delete-packages = true, the default); set "
                                        "delete-packages = false to keep serving such projects")


def _absolute(raw: str | None, option: str, where: str) -> Path | None:
    if raw is None or raw == "":
        return None
    if any(ord(c) < 32 for c in raw):
        raise ConfigError(where, MIRROR, option, f"{raw!r} contains a control character")
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(where, MIRROR, option, f"{raw!r} is relative; give an absolute path")
    return path


def _diff_file(raw: str | None, directory: Path, where: str) -> Path | None:
    """``diff-file``: a path; ``{{mirror_directory}}`` stands for the mirror directory (8.x's syntax)."""
    if raw is None or raw == "":
        return None
    for match in _REFERENCE.finditer(raw):
        if (match.group(1).lower(), match.group(2).lower()) != ("mirror", "directory"):
            raise ConfigError(where, MIRROR, "diff-file",
                              f"{match.group(0)!r}: only {{{{mirror_directory}}}} can be referred to")
    return _absolute(_REFERENCE.sub(lambda _: str(directory), raw), "diff-file", where)


def _simple_format(raw: str | None, where: str, problems: Problems, warn: Warn) -> None:
    value = (raw or "ALL").upper()
    if value not in ("ALL", "HTML", "JSON"):
        problems.add(ConfigError(where, MIRROR, "simple-format", f"{raw!r} is not ALL, HTML or JSON"))
    elif value != "ALL":
        warn("simple-format", "ignored: every project gets both index.html and index.v1_json (PEP 691 "
                              "content negotiation needs both)")


def _keep_index_versions(raw: str | None, option: str, where: str, problems: Problems, warn: Warn) -> None:
    if raw is None or raw == "":
        return
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        problems.add(ConfigError(where, MIRROR, option, f"{raw!r} is not a whole number of 0 or more"))
    elif int(raw):
        warn(option, "ignored: no page versions are kept; a page is replaced atomically, and only after "
                     "every file it links is verified, so it is never published blank")

