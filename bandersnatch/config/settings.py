"""Reading and validating the configuration file.

Everything an operator can get wrong in the file is caught here, before any
network traffic or disk writes, and reported as one ``ConfigError`` line that
names the file, the section and the option.  ``parse`` is pure (text in,
``Config`` out) so it is cheap to test; ``load`` adds the two things that need
the disk: reading the file and checking that the mirror directory is writable.

The shipped ``default.conf`` is the single source of the default text: the
build copies it into the package, and a source checkout reads it from the
top of the tree.
"""

from __future__ import annotations

import configparser
import dataclasses
import difflib
import importlib.resources
import importlib.util
import math
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..errors import ConfigError, Problems
from ..store.s3settings import S3Settings
from . import compat, metadatarules
from . import filters as filterconfig
from . import holdback as holdbackconfig
from . import network as netsettings
from . import storage as storeconfig
from .filters import FilterConfig
from .holdback import HOLD_BACK, HoldBackConfig
from .network import Network
from .storage import StorageBackend
from .values import MIRROR, ReleaseFiles, has_space_or_control, http_url_fault, parse_bool, size_bytes

DEFAULT_CONFIG_PATH = Path("/etc/bandersnatch.conf")
"""Where the CLI looks when ``-c`` is not given (and where the README points)."""

DEFAULT_MASTER = "https://pypi.org"
PYPI_HOSTS = frozenset({"pypi.org", "test.pypi.org", "pypi.python.org"})
DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 3600.0
# bandersnatch's own default: five hours for one request, body included, is room for
# PyPI's largest files on a slow link while still ending a download that crawls for ever.
DEFAULT_GLOBAL_TIMEOUT = 18000.0
MAX_GLOBAL_TIMEOUT = 7 * 86400.0
DEFAULT_WORKERS = 3
MIN_WORKERS = 1
MAX_WORKERS = 50
DEFAULT_DOWNLOAD_HOSTS = ("files.pythonhosted.org",)
DEFAULT_MAX_PAGE_BYTES = 64 * 1024 * 1024
# PyPI's largest files are several GiB; the cap only stops an unsized body that never ends.
DEFAULT_MAX_FILE_BYTES = 32 * 1024**3
DEFAULT_ACCESS_LOG_PATTERN = "/var/log/nginx/access.log*"
# A run that would take more projects off the mirror than both of these stops before deleting.
DEFAULT_MAX_REMOVALS = 100
DEFAULT_MAX_REMOVALS_PERCENT = 5.0
DEFAULT_MAX_FILE_REMOVALS = 1000
DEFAULT_MAX_FILE_REMOVALS_PERCENT = 5.0

STATISTICS = "statistics"


class ApiMethod(str, Enum):
    """``[mirror] api-method``, where changes come from: bandersnatch 8's two values plus ``auto``.
    A str, so comparisons and messages read as the config value."""

    AUTO = "auto"
    XMLRPC = "xmlrpc"
    SIMPLE = "simple"  # the PEP 691 root listing

    def __str__(self) -> str:
        return self.value


SCHEMA: Mapping[str, tuple[str, ...]] = {
    MIRROR: (
        "directory",
        "master",
        "timeout",
        "workers",
        "stop-on-error",
        "delete-packages",
        "hash-index",
        "allow-non-https",
        "download-hosts",
        "download-mirror",
        "download-mirror-no-fallback",
        "max-page-size",
        "max-file-size",
        "global-timeout",
        "require-hashes",
        "max-removals",
        "max-removals-percent",
        "max-file-removals",
        "max-file-removals-percent",
        "diff-file",
        "diff-append-epoch",
        "proxy",
        "api-method",
        HOLD_BACK,
    ),
    STATISTICS: ("access-log-pattern",),
    **filterconfig.SCHEMA,
    **holdbackconfig.SCHEMA,
}
"""Every section and option the file may contain; anything else is a typo we report."""

# A section name nobody writes, so that ``[DEFAULT]`` is an ordinary (unknown,
# hence rejected) section instead of configparser's silent fallback for all.
_NO_DEFAULT_SECTION = "\0no-default-section"

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(
    rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?|\[[0-9a-f:.]+\])(?::(\d{{1,5}}))?$",
)
_HOST_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Config:
    """The validated settings of one configuration file."""

    path: Path
    directory: Path
    master: str
    timeout: float
    workers: int
    stop_on_error: bool
    delete_packages: bool
    hash_index: bool
    allow_non_https: bool
    download_hosts: tuple[str, ...]
    max_page_bytes: int
    access_log_pattern: str
    filters: FilterConfig = FilterConfig()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    global_timeout: float = DEFAULT_GLOBAL_TIMEOUT
    require_hashes: bool = False
    max_removals: int = DEFAULT_MAX_REMOVALS
    max_removals_percent: float = DEFAULT_MAX_REMOVALS_PERCENT
    max_file_removals: int = DEFAULT_MAX_FILE_REMOVALS
    max_file_removals_percent: float = DEFAULT_MAX_FILE_REMOVALS_PERCENT
    diff_file: Path | None = None  # where each run lists the files it wrote (bandersnatch's diff-file)
    diff_append_epoch: bool = False
    json: bool = False  # bandersnatch's `json`: keep a JSON API copy under web/pypi/<project>/json
    log_config: Path | None = None  # a logging.config.fileConfig file replacing the default logging
    cleanup: bool = False  # remove non-normalized project directories when adopting an 8.x mirror
    core_metadata: bool = True  # 8.x's core-metadata: false fetches and advertises no <file>.metadata
    root_uri: str | None = None  # bandersnatch's root_uri: base of the JSON API copy's file URLs
    # bandersnatch 8's download-mirror: files are asked there first (same path as on upstream's
    # file URL), checked against upstream's page, and fetched from upstream when that fails
    # (never, with download-mirror-no-fallback).  No trailing slash.
    download_mirror: str | None = None
    download_mirror_no_fallback: bool = False
    # Which distribution files mirror keeps: all (true), none (false: pages link upstream's, or root_uri's),
    # or those the web server fetched when first asked (on-demand; README has the nginx block).
    release_files: ReleaseFiles = ReleaseFiles.TRUE
    warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    """One line per bandersnatch 8 option accepted but not applied as 8.x would (see compat)."""
    proxy: str | None = None  # [mirror] proxy, credentials and all: never log it
    network: Network = Network()  # proxy and the environment's proxies and CA bundle, set by load()
    api_method: ApiMethod = ApiMethod.AUTO  # where changes come from
    storage_backend: StorageBackend = StorageBackend.FILESYSTEM  # where web/ is published
    s3: S3Settings | None = None  # the [s3] section, set when storage_backend is s3
    hold_back: HoldBackConfig = HoldBackConfig()  # the cooling-off window for new files (off by default)


# --------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------


def load(path: Path, environ: Mapping[str, str] | None = None, *, writable: bool = True) -> Config:
    """Read, parse and validate ``path``, including that the mirror directory is usable.

    ``environ`` is the process environment, read here once for proxies and CA
    certificates (the CLI passes ``os.environ``); None means an empty one.
    ``writable`` False: the command only reads the mirror (``status``, plain ``verify``),
    so a user who may only read it is served.
    """
    config = parse(read_text(path), path)
    if writable:
        check_directory_writable(config.directory, path)
    if config.storage_backend is StorageBackend.S3 and importlib.util.find_spec("boto3") is None:
        raise ConfigError(str(path), MIRROR, "storage-backend",
                          "s3 needs boto3, which is not installed: pip install bandersnatch[s3]")
    network = netsettings.from_environment(environ or {}, config.proxy)
    netsettings.check_ca_bundle(network)
    filters = filterconfig.read_requirement_files(config.filters)
    # A lock entry the mirror cannot serve is a warning like an 8.x option: shown once per change.
    return dataclasses.replace(config, filters=filters, network=network,
                               warnings=config.warnings + filters.lock_notes)


def read_text(path: Path) -> str:
    """The file's text, or a ConfigError saying why it cannot be had (missing, a directory, not UTF-8)."""
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(where, None, None, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(where, None, None, "is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(where, None, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        # utf-8-sig: an editor's byte-order mark must not turn into an unknown section.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        why = f"line {line}: not UTF-8 (byte 0x{bad}); save the file as UTF-8"
        raise ConfigError(where, None, None, why) from None


def parse(text: str, path: Path) -> Config:
    """Validate the configuration ``text`` (read from ``path``, used in messages only) into a Config.

    Every problem is collected before anything is refused, so one run names
    them all: a single problem is raised as itself, several as ConfigErrors.
    Touches no disk, so whatever it accepts may still fail the directory check in ``load``.
    """
    where = str(path)
    problems = Problems()
    parser = _read_ini(text, where, problems)
    _check_names(parser, where, problems)
    mirror = _section_values(parser, MIRROR, where, problems)
    stats = _section_values(parser, STATISTICS, where, problems)
    take = problems.take

    def boolean(option: str, default: bool) -> bool:
        return take(parse_bool, mirror.get(option), default, where, MIRROR, option, fallback=default)

    allow_non_https = boolean("allow-non-https", False)
    master = take(parse_master, mirror.get("master"), where, fallback=DEFAULT_MASTER)
    if master.startswith("http://") and not allow_non_https:
        problems.add(ConfigError(
            where,
            MIRROR,
            "master",
            f"{master} is plain http: anyone on the path could alter what is mirrored; "
            "use https or set allow-non-https = true",
        ))
    download_mirror = take(parse_download_mirror, mirror.get("download-mirror"), allow_non_https, where,
                           fallback=None)
    no_fallback = boolean("download-mirror-no-fallback", False)
    directory = take(parse_directory, mirror.get("directory"), where, fallback=Path("/"))
    eight = take(compat.parse_mirror, mirror, directory, where, tuple(parser.sections()),
                 fallback=compat.Settings())
    backend = take(storeconfig.parse_backend, mirror.get("storage-backend"), where,
                   fallback=storeconfig.FILESYSTEM)
    s3 = take(storeconfig.parse_s3, _section_values(parser, storeconfig.S3, where, problems), where,
              fallback=None) if backend is StorageBackend.S3 else None
    filter_values = {section: _section_values(parser, section, where, problems)
                     for section in filterconfig.SCHEMA if parser.has_section(section)}
    config = Config(
        path=path,
        directory=directory,
        master=master,
        timeout=take(parse_timeout, mirror.get("timeout"), where, fallback=DEFAULT_TIMEOUT),
        workers=take(parse_workers, mirror.get("workers"), where, fallback=DEFAULT_WORKERS),
        stop_on_error=boolean("stop-on-error", False),
        delete_packages=boolean("delete-packages", True),
        hash_index=boolean("hash-index", False),
        allow_non_https=allow_non_https,
        download_hosts=take(parse_download_hosts, mirror.get("download-hosts"), where,
                            fallback=DEFAULT_DOWNLOAD_HOSTS),
        max_page_bytes=take(parse_size, mirror.get("max-page-size"), where, fallback=DEFAULT_MAX_PAGE_BYTES),
        access_log_pattern=take(parse_access_log_pattern, stats.get("access-log-pattern"), where,
                                fallback=DEFAULT_ACCESS_LOG_PATTERN),
        filters=take(filterconfig.parse, filter_values, where, fallback=FilterConfig()),
        max_file_bytes=take(parse_size, mirror.get("max-file-size"), where, "max-file-size",
                            DEFAULT_MAX_FILE_BYTES, fallback=DEFAULT_MAX_FILE_BYTES),
        global_timeout=take(parse_timeout, mirror.get("global-timeout"), where, "global-timeout",
                            DEFAULT_GLOBAL_TIMEOUT, MAX_GLOBAL_TIMEOUT, fallback=DEFAULT_GLOBAL_TIMEOUT),
        require_hashes=boolean("require-hashes", False),
        max_removals=take(parse_count, mirror.get("max-removals"), where, "max-removals",
                          DEFAULT_MAX_REMOVALS, fallback=DEFAULT_MAX_REMOVALS),
        max_removals_percent=take(parse_percent, mirror.get("max-removals-percent"), where,
                                  "max-removals-percent", DEFAULT_MAX_REMOVALS_PERCENT,
                                  fallback=DEFAULT_MAX_REMOVALS_PERCENT),
        max_file_removals=take(parse_count, mirror.get("max-file-removals"), where, "max-file-removals",
                               DEFAULT_MAX_FILE_REMOVALS, fallback=DEFAULT_MAX_FILE_REMOVALS),
        max_file_removals_percent=take(parse_percent, mirror.get("max-file-removals-percent"), where,
                                       "max-file-removals-percent", DEFAULT_MAX_FILE_REMOVALS_PERCENT,
                                       fallback=DEFAULT_MAX_FILE_REMOVALS_PERCENT),
        diff_file=eight.diff_file,
        diff_append_epoch=eight.diff_append_epoch,
        json=eight.json,
        root_uri=eight.root_uri,
        download_mirror=download_mirror,
        download_mirror_no_fallback=no_fallback and download_mirror is not None,
        release_files=eight.release_files,
        log_config=eight.log_config,
        cleanup=eight.cleanup,
        core_metadata=eight.core_metadata,
        warnings=eight.warnings,
        proxy=take(parse_proxy, mirror.get("proxy"), where, fallback=None),
        api_method=take(parse_api_method, mirror.get("api-method"), where, fallback=ApiMethod.AUTO),
        storage_backend=backend,
        s3=s3,
        hold_back=take(holdbackconfig.parse, mirror.get(HOLD_BACK),
                       _section_values(parser, HOLD_BACK, where, problems), where, fallback=HoldBackConfig()),
    )
    problems.raise_any()
    return config


class _IniParser(configparser.ConfigParser):
    """configparser, except that an option may start with metadata rule tags (``not-null:info.x``):
    bandersnatch 8 splits on '=' alone, ours on ':' too, which would cut such an option at its
    first tag.  Every other line is split as before."""

    OPTCRE = re.compile(
        rf"(?P<option>{metadatarules.TAGGED_OPTION}?|.*?)\s*(?P<vi>[=:])\s*(?P<value>.*)$")


def _read_ini(text: str, where: str, problems: Problems) -> configparser.ConfigParser:
    """Run configparser over ``text``, turning its syntax errors into one-line ConfigErrors."""
    parser = _IniParser(
        interpolation=None,  # '%' is common in URLs and log patterns; never expand it
        default_section=_NO_DEFAULT_SECTION,
        strict=True,
    )
    try:
        parser.read_string(text, source=where)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            where, None, None, f"line {exc.lineno}: {exc.line.strip()!r} comes before any [section] header"
        ) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(where, exc.section, None, f"line {exc.lineno}: section appears twice") from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(where, exc.section, exc.option, f"line {exc.lineno}: option is set twice") from None
    except configparser.ParsingError as exc:
        # configparser read the whole file first: every bad line is named, and the rest is checked.
        for lineno, line in exc.errors:
            problems.add(ConfigError(
                where, None, None, f"line {lineno}: cannot parse {line.strip()!r}; expected 'option = value'"
            ))
    except configparser.Error as exc:
        raise ConfigError(where, None, None, f"syntax error: {exc.message}") from None
    return parser


def _check_names(parser: configparser.ConfigParser, where: str, problems: Problems) -> None:
    """Note unknown sections and options, suggesting what was probably meant.

    bandersnatch 8's options are known (``compat``); an unknown one is dropped
    from the parser once noted, so no later check reads it again.
    """
    for section in parser.sections():
        if section in filterconfig.REFUSED and section not in SCHEMA:
            problems.add(ConfigError(where, section, None,
                                     f"plugin {section} is not supported: {filterconfig.REFUSED[section]}"))
            continue
        if section in compat.STORAGE_SECTIONS:
            continue  # [s3] is read by storeconfig when storage-backend = s3; compat warns otherwise
        if section not in SCHEMA:
            problems.add(ConfigError(
                where, section, None, "unknown section" + _suggest(section, list(SCHEMA), "[{}]")
            ))
            continue
        if section in filterconfig.FREE_FORM:
            continue  # each option is a rule, checked when it is parsed
        known = (*SCHEMA[section], *compat.MIRROR_OPTIONS) if section == MIRROR else SCHEMA[section]
        for option in parser.options(section):
            if option not in known:
                problems.add(ConfigError(where, section, option, _unknown_option_why(section, option, known)))
                parser.remove_option(section, option)


def _unknown_option_why(section: str, option: str, known: tuple[str, ...]) -> str:
    """Explain an unknown option: a typo of a known one, or a known one in the wrong section."""
    for other, options in SCHEMA.items():
        if other != section and option in options:
            return f"unknown option here; it belongs in [{other}]"
    return "unknown option" + _suggest(option, list(known), "{}")


def _suggest(word: str, candidates: list[str], form: str) -> str:
    """A ``; did you mean ...?`` tail naming the closest candidate, or nothing."""
    close = difflib.get_close_matches(word.lower().replace("_", "-"), candidates, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {form.format(close[0])}?"
    return "; known: " + ", ".join(form.format(c) for c in candidates)


# configparser keeps ``value  # note`` whole: the note would become part of the value.
_TRAILING_COMMENT = re.compile(r"\s#")


def _section_values(parser: configparser.ConfigParser, section: str, where: str,
                    problems: Problems | None = None) -> dict[str, str]:
    """The raw, stripped values of ``section`` (empty when the section is absent).

    A value with a ``#`` after a space is refused: ``workers = 3  # be gentle``
    means a comment to whoever wrote it, but not to configparser.
    """
    if not parser.has_section(section):
        return {}
    values = {option: parser.get(section, option).strip() for option in parser.options(section)}
    for option, value in list(values.items()):
        for line in value.splitlines():
            if _TRAILING_COMMENT.search(line):
                error = ConfigError(
                    where, section, option,
                    f"{line.strip()[:80]!r} has a comment after the value; comments must be on a line of "
                    "their own (configparser would read the comment as part of the value)",
                )
                if problems is None:
                    raise error
                problems.add(error)
                del values[option]  # noted: not checked again as a value
                break
    return values


# --------------------------------------------------------------------------
# One function per kind of value.  ``raw`` is None when the option is absent.
# --------------------------------------------------------------------------


def parse_api_method(raw: str | None, where: str) -> ApiMethod:
    """Where changes come from: ``auto`` (default), ``xmlrpc`` or ``simple`` (the PEP 691 root listing)."""
    if raw is None:
        return ApiMethod.AUTO
    try:
        return ApiMethod(raw.lower())
    except ValueError:
        raise ConfigError(where, MIRROR, "api-method",
                          f"{raw!r} is not one of auto, xmlrpc, simple") from None


def parse_directory(raw: str | None, where: str) -> Path:
    """The mirror directory: required and absolute, so cron's working directory never matters."""
    if raw is None or raw == "":
        raise ConfigError(
            where, MIRROR, "directory", "missing: set it to the absolute path the mirror is kept in"
        )
    if any(ord(c) < 32 for c in raw):
        raise ConfigError(where, MIRROR, "directory", f"{raw!r} contains a control character")
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(
            where, MIRROR, "directory", f"{raw!r} is relative; give an absolute path such as /srv/pypi"
        )
    return path


# The password of ``scheme://user:password@host``, so a refused URL is quoted without it.
_URL_PASSWORD = re.compile(r"^([^/]*//[^/@:]*):[^/@]*@")


def _quoted_url(raw: str) -> str:
    """``raw`` for a message: ``repr`` with any password replaced by ``***`` (logs go to cron's mail)."""
    return repr(_URL_PASSWORD.sub(r"\1:***@", raw))


def parse_master(raw: str | None, where: str) -> str:
    """The upstream's base URL: http(s), a host, nothing secret or ambiguous; no trailing slash."""
    if raw is None:
        return DEFAULT_MASTER

    def bad(why: str) -> ConfigError:
        return ConfigError(where, MIRROR, "master", f"{_quoted_url(raw)} {why}")

    if raw == "" or has_space_or_control(raw):
        raise bad("is not a URL (empty or contains whitespace)")
    parts = urllib.parse.urlsplit(raw)
    fault = http_url_fault(parts, "must start with https:// (or http://)")
    if fault is not None:
        raise bad(fault)
    if "@" in parts.netloc:
        raise bad("contains credentials; bandersnatch does not send them, remove the user:password@ part")
    if "?" in raw:
        raise bad("has a query string; give only the base URL")
    if "#" in raw:
        raise bad("has a fragment (#...); give only the base URL")
    scheme = parts.scheme.lower()
    base = f"{scheme}://{parts.netloc.lower()}{parts.path}".rstrip("/")
    path = parts.path.rstrip("/")
    # pip's index URL (.../simple) and PyPI's API path are common mix-ups: with either, XML-RPC
    # may answer while every project page is a 404, which reads as "everything was deleted".
    # Elsewhere a path ending in /pypi is a mirror's own prefix (mirrors.aliyun.com/pypi).
    on_pypi = (parts.hostname or "").lower() in PYPI_HOSTS  # a host: checked above
    for suffix, wrong in (("/simple", path.lower().endswith("/simple")),
                          ("/pypi", on_pypi and path.lower() == "/pypi")):
        if wrong:
            raise bad(f"ends in {suffix}: give the base URL {base[: -len(suffix)]} (without {suffix}); "
                      "bandersnatch adds /simple/ and /pypi itself")
    return base


def parse_download_mirror(raw: str | None, allow_non_https: bool, where: str) -> str | None:
    """bandersnatch 8's ``download-mirror``: a base URL checked as ``master`` is; None when unset or empty.

    A file's path on upstream's URL is appended to it (``https://files.pythonhosted.org/packages/
    ab/..`` is asked at ``<download-mirror>/packages/ab/..``), so it is the mirror's root, the
    directory above its ``packages/``.
    """
    if raw is None or raw == "":
        return None

    def bad(why: str) -> ConfigError:
        return ConfigError(where, MIRROR, "download-mirror", f"{_quoted_url(raw)} {why}")

    if has_space_or_control(raw):
        raise bad("is not a URL (contains whitespace)")
    parts = urllib.parse.urlsplit(raw)
    fault = http_url_fault(parts, "must start with https:// (or http://)")
    if fault is not None:
        raise bad(fault)
    if "@" in parts.netloc:
        raise bad("contains credentials; bandersnatch does not send them, remove the user:password@ part")
    if "?" in raw or "#" in raw:
        raise bad("has a query string or fragment; give only the base URL")
    if parts.scheme.lower() == "http" and not allow_non_https:
        raise bad("is plain http: anyone on the path could swap the files (each is checked against "
                  "upstream's hash, but a swapped one costs a second download); use https or set "
                  "allow-non-https = true")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}".rstrip("/")


def parse_proxy(raw: str | None, where: str) -> str | None:
    """bandersnatch 8's ``proxy``: one HTTP proxy for every request; ``user:password@`` allowed."""
    if raw is None or raw == "":
        return None
    return netsettings.parse_proxy_url(raw, where, MIRROR, "proxy")


def parse_timeout(raw: str | None, where: str, option: str = "timeout", default: float = DEFAULT_TIMEOUT,
                  maximum: float = MAX_TIMEOUT) -> float:
    """Seconds to wait for the upstream; positive and finite so a hung connection ends."""
    if raw is None:
        return default
    why = f"{raw!r} is not a number of seconds greater than 0 and at most {maximum:g}"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(where, MIRROR, option, why) from None
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise ConfigError(where, MIRROR, option, why)
    return value


def parse_workers(raw: str | None, where: str) -> int:
    """Parallel downloads: a plain whole number in a range PyPI tolerates."""
    if raw is None:
        return DEFAULT_WORKERS
    # int() would also take '+3', '3_0' and ' 3'; an operator means none of those.
    if not re.fullmatch(r"[0-9]+", raw) or not MIN_WORKERS <= int(raw) <= MAX_WORKERS:
        raise ConfigError(
            where, MIRROR, "workers", f"{raw!r} is not a whole number from {MIN_WORKERS} to {MAX_WORKERS}"
        )
    return int(raw)


def parse_count(raw: str | None, where: str, option: str, default: int) -> int:
    """A plain whole number, 0 or more."""
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise ConfigError(where, MIRROR, option, f"{raw!r} is not a whole number of 0 or more")
    return int(raw)


def parse_percent(raw: str | None, where: str, option: str, default: float) -> float:
    """A share of the mirror in percent, ``5`` or ``5%`` or ``2.5``, from 0 to 100."""
    if raw is None:
        return default
    match = re.fullmatch(r"([0-9]{1,3}(?:\.[0-9]+)?)\s*%?", raw)
    if match is None or float(match.group(1)) > 100:
        raise ConfigError(where, MIRROR, option, f"{raw!r} is not a percentage from 0 to 100")
    return float(match.group(1))


def parse_download_hosts(raw: str | None, where: str) -> tuple[str, ...]:
    """Hosts (``host`` or ``host:port``) besides the master's that release files may come from."""
    if raw is None:
        return DEFAULT_DOWNLOAD_HOSTS
    hosts: list[str] = []
    for item in _HOST_SEPARATORS.split(raw.lower()):
        if not item:
            continue
        match = _HOST.match(item)
        if match is None or (match.group(1) is not None and not 0 < int(match.group(1)) <= 65535):
            raise ConfigError(
                where,
                MIRROR,
                "download-hosts",
                f"{item!r} is not a host name or host:port (no scheme, no path)",
            )
        if item not in hosts:
            hosts.append(item)
    return tuple(hosts)


def parse_size(raw: str | None, where: str, option: str = "max-page-size",
               default: int = DEFAULT_MAX_PAGE_BYTES) -> int:
    """A byte count such as ``67108864``, ``512K``, ``64M`` or ``1G`` (binary units)."""
    if raw is None:
        return default
    value = size_bytes(raw, terabytes=False)
    if value is None:
        raise ConfigError(
            where, MIRROR, option, f"{raw!r} is not a size greater than 0 such as 64M, 512K or 1G"
        )
    return value


def parse_access_log_pattern(raw: str | None, where: str) -> str:
    """The glob of web server logs that update-stats reads; must be absolute like the directory."""
    if raw is None:
        return DEFAULT_ACCESS_LOG_PATTERN
    if not raw.startswith("/"):
        raise ConfigError(
            where,
            STATISTICS,
            "access-log-pattern",
            f"{raw!r} must be an absolute glob such as {DEFAULT_ACCESS_LOG_PATTERN}",
        )
    return raw


# --------------------------------------------------------------------------
# The disk
# --------------------------------------------------------------------------


def check_directory_writable(directory: Path, config_path: Path) -> None:
    """Fail now, not hours into a sync, if the mirror directory cannot be written or created.

    An existing directory must be a writable directory; a missing one needs its
    nearest existing ancestor to be a writable directory so it can be created.
    ``os.access`` also reports a read-only filesystem, even for root.
    """

    def bad(why: str) -> ConfigError:
        return ConfigError(str(config_path), MIRROR, "directory", why)

    target = _existing_or_none(directory, bad)
    if target is not None:
        if not stat.S_ISDIR(target.st_mode):
            raise bad(f"{directory} exists but is not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise bad(f"{directory} is not writable by this user (or is on a read-only filesystem)")
        return
    if os.path.islink(directory):
        raise bad(f"{directory} is a symbolic link to a missing target")
    for ancestor in directory.parents:
        found = _existing_or_none(ancestor, bad)
        if found is None:
            continue
        if not stat.S_ISDIR(found.st_mode):
            raise bad(f"{directory} cannot be created: {ancestor} is not a directory")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise bad(
                f"{directory} does not exist and cannot be created: {ancestor} is not writable "
                "by this user (or is on a read-only filesystem)"
            )
        return
    raise bad(f"{directory} cannot be created: no parent directory exists")  # pragma: no cover


def _existing_or_none(path: Path, bad: Callable[[str], ConfigError]) -> os.stat_result | None:
    """stat() ``path`` following links; None when it does not exist, ConfigError when we cannot tell."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise bad(f"cannot check {path}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------
# The default file
# --------------------------------------------------------------------------


def default_config_text() -> str:
    """The text of ``default.conf`` as shipped: the package's copy, else the source checkout's."""
    shipped = importlib.resources.files("bandersnatch") / "default.conf"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "default.conf"
    try:
        return checkout.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            str(checkout), None, None, f"the default configuration is missing from this installation: {exc}"
        ) from None


def write_default(path: Path) -> None:
    """Create ``path`` holding the default configuration, for a first run to edit.

    Never overwrites: an existing file is the operator's, even if it failed to load.
    """
    text = default_config_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir raises FileExistsError when a parent is a regular file: not "already exists".
        raise ConfigError(
            str(path), None, None, f"cannot write the default configuration: {exc.strerror or exc}"
        ) from None
    try:
        with path.open("x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        raise ConfigError(str(path), None, None, "already exists; not overwriting it") from None
    except OSError as exc:
        raise ConfigError(
            str(path), None, None, f"cannot write the default configuration: {exc.strerror or exc}"
        ) from None
