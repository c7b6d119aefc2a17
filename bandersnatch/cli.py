"""Command line: ``bandersnatch [-c CONFIG] [-v|-q] {mirror,update-stats} [-c CONFIG] [-v|-q]``.

Turns expected failures into one log line and an exit code; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import configparser
import logging
import logging.config
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import notices
from .config import settings as config
from .errors import (
    EXIT_CONFIG,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    BandersnatchError,
    ConfigError,
    ConfigErrors,
    LinkInMirror,
    LockHeld,
    StorageError,
    StoreRefused,
    exit_code_for,
)
from .progress import Progress, StatusStream

logger = logging.getLogger("bandersnatch")

# The exit codes (errors.EXIT_*), named here too for callers of main().
__all__ = ["EXIT_CONFIG", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_LOCKED", "EXIT_OK", "main"]
DEFAULT_CONFIG = config.DEFAULT_CONFIG_PATH


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """-c, -v and -q, accepted before the command and after it (``bandersnatch mirror -c FILE``).

    After the command they default to SUPPRESS: absent there, what came before it stays.
    """
    parser.add_argument(
        "-c", "--config", type=Path, default=DEFAULT_CONFIG if top else argparse.SUPPRESS,
        help=f"configuration file (default: {DEFAULT_CONFIG}; `mirror` writes it with defaults if missing)",
    )
    flag: object = False if top else argparse.SUPPRESS
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", default=flag, help="log debug details too")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=flag,
                           help="log warnings and errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandersnatch",
        description="PyPI mirror client: keeps a verified copy of PyPI (or a part of it) under a directory.",
        epilog="Exit codes: 0 complete, 1 incomplete (failed projects are retried next run), "
               "2 usage or configuration error, 3 another run holds the lock, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"bandersnatch {__version__}")
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mirror = commands.add_parser(
        "mirror", help="bring the mirror up to date with the master",
        description="Bring the mirror up to date with the master: fetch what changed since the last "
                    "run (the first run fetches everything), verify every file, then publish its pages.",
        epilog=parser.epilog,
    )
    mirror.add_argument("--force-check", action="store_true",
                        help="list every project upstream and re-hash every file on disk")
    mirror.add_argument("--allow-mass-removal", action="store_true",
                        help="let this run remove more projects and delete more files than [mirror] "
                             "max-removals, max-file-removals and their percentages allow")
    mirror.add_argument("--dry-run", action="store_true",
                        help="say what this run would fetch, delete and exclude (and by which filter), then "
                             "stop: no lock, nothing written under the directory, no file downloaded")
    mirror.add_argument("--json", action="store_true", help="with --dry-run: print one JSON document")
    stats = commands.add_parser(
        "update-stats", help="turn the web server's access logs into download statistics",
        description="Count downloads per file from the web server's access logs ([statistics] "
                    "access-log-pattern) and publish them under web/local-stats/.",
    )
    status = commands.add_parser(
        "status", help="say how current the mirror is (read-only: safe while mirror runs)",
        description="Reads the mirror's bookkeeping (no lock, no walk of the disk, nothing written under "
                    "the mirror directory) and asks the upstream for its serial once. Exit 0 when the "
                    "mirror is current (nothing owed or failed, the last run complete), 1 when not, "
                    "2 on a usage or configuration error.")
    status.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    status.add_argument("--offline", action="store_true", help="do not ask the upstream (no request at all)")
    status.add_argument("--prometheus", type=Path, metavar="FILE",
                        help="also write the figures to FILE in Prometheus text format, atomically "
                             "(for node_exporter's textfile collector: FILE ending in .prom)")
    checker = commands.add_parser(
        "verify", help="check every page, link and file of the mirror; exit 1 when something is wrong",
        description="Check that every file each page links is there with its recorded size and sha256, "
                    "that both pages of each project agree, that the root index names exactly the projects "
                    "with pages, and find orphans. Problems are printed one per line. A killed verify "
                    "resumes where it stopped.")
    mode = checker.add_mutually_exclusive_group()
    mode.add_argument("--repair", action="store_true",
                      help="mend what is found: fetch bad files again, re-sync damaged projects, delete "
                           "orphans and ghosts, rebuild the root index (takes the mirror's lock)")
    mode.add_argument("--upstream", action="store_true",
                      help="instead, compare the mirror's projects with upstream's list (one request): "
                           "missing, extra and behind ones (exit 1), and changes after the last sync "
                           "(pending, not wrong)")
    reading = checker.add_mutually_exclusive_group()
    reading.add_argument("--fast", action="store_true",
                         help="do not read files whose size and mtime are as when they were verified "
                              "(an S3 mirror's files are never read without --hash)")
    reading.add_argument("--hash", action="store_true",
                         help="S3 mirror: read every file (one GET each) and check its sha256, instead of "
                              "a HEAD against its recorded size and ETag (a filesystem mirror's files are "
                              "always read, unless --fast)")
    checker.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    checker.add_argument("--allow-mass-removal", action="store_true",
                         help="let --repair remove more projects and delete more files than [mirror] "
                              "max-removals, max-file-removals and their percentages allow")
    for command in (mirror, stats, status, checker):
        _common_options(command, top=False)
    return parser


def setup_logging(verbose: bool, quiet: bool) -> StatusStream | None:
    """Log lines to stderr; on a terminal (and not -q) also a live status line below them."""
    status = StatusStream(sys.stderr) if sys.stderr.isatty() and not quiet else None
    handler = logging.StreamHandler(status or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    handler.set_name("bandersnatch-cli")
    root = logging.getLogger()
    # Replace only our own handler, so calling main() twice (tests) does not log twice.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "bandersnatch-cli"] + [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    # urllib3 logs every new connection at debug; that is noise even with -v. boto3 and botocore
    # say "Found credentials in environment variables." at info on every command: cron mail.
    for library in ("urllib3", "filelock", "boto3", "botocore", "s3transfer"):
        logging.getLogger(library).setLevel(logging.WARNING)
    return status


def apply_log_config(path: Path, config_path: Path) -> None:
    """``[mirror] log-config``: a ``logging.config.fileConfig`` file replaces our logging, as in 8.x."""
    if not path.is_file():
        raise ConfigError(str(config_path), "mirror", "log-config", f"{path} is not a readable file")
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except (configparser.Error, KeyError, ValueError, TypeError, AttributeError, ImportError,
            OSError, RuntimeError) as exc:
        raise ConfigError(str(config_path), "mirror", "log-config",
                          f"{path} is not a usable logging configuration: {_log_config_why(exc)}",
                          ) from None


def _log_config_why(exc: Exception) -> str:
    """What is wrong with a log-config file, without quoting it: the path may name any file."""
    inner = exc.__cause__ or exc.__context__  # fileConfig wraps configparser's error in a RuntimeError
    if isinstance(exc, RuntimeError) and isinstance(inner, configparser.Error):
        exc = inner
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno} comes before any [section] header"
    if isinstance(exc, configparser.ParsingError):
        return "cannot parse line " + ", ".join(str(number) for number, _ in exc.errors[:5])
    if isinstance(exc, KeyError):
        return f"missing section or option {exc}"  # a name fileConfig looked for, not the file's text
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__} (see the logging.config.fileConfig format)"


def write_default_config(path: Path) -> int:
    """A first run: write the default file and say what to do with it (guidance, not an error)."""
    config.write_default(path)
    logger.warning("%s did not exist: wrote the default configuration there. Set [mirror] directory "
                   "(commented out until you choose one), review the rest, then run again", path)
    return EXIT_CONFIG


def run_mirror(cfg: config.Config, args: argparse.Namespace, status: StatusStream | None) -> int:
    from .sync.mirror import Mirror

    fresh = show_warnings(cfg, remembered=True)
    try:
        mirror = Mirror(cfg, force_check=args.force_check, progress=Progress(status),
                        allow_mass_removal=args.allow_mass_removal)
        return mirror.run().exit_code
    finally:
        if fresh:
            notices.remember(cfg.directory, cfg.warnings)  # the run made the directory, if it could


def run_dry(cfg: config.Config, args: argparse.Namespace) -> int:
    """``mirror --dry-run``: the plan on stdout; exit 0 once it is computed."""
    from .runtime import dry_run
    from .sync.dryplan import render_json, render_text

    # The master spools outside the mirror: nothing is written under it.
    dry = dry_run(cfg, spool_dir=Path(tempfile.gettempdir()), force_check=args.force_check,
                  allow_mass_removal=args.allow_mass_removal)
    try:
        plan = dry.plan()
    finally:
        dry.close()
    sys.stdout.write(render_json(plan) if args.json else render_text(plan))
    return EXIT_OK


def show_warnings(cfg: config.Config, remembered: bool) -> bool:
    """Log the configuration's warnings: under ``mirror`` when they changed since it last showed them,
    else at debug level only (a cron job's mail must not repeat them on every run).

    Returns True when they were shown and should be remembered.
    """
    fresh = remembered and not notices.already_shown(cfg.directory, cfg.warnings)
    for warning in cfg.warnings:
        logger.log(logging.WARNING if fresh else logging.DEBUG, "%s", warning)
    if cfg.warnings and not fresh:
        logger.debug("%d configuration warning(s) as last shown by mirror", len(cfg.warnings))
    return fresh


def run_update_stats(cfg: config.Config) -> int:
    from .stats.command import update_stats
    from .stats.errors import MirrorMissing

    try:
        from .runtime import published_dir, stats_store

        # The store of every command, from one place; stats keeps its own staging directory.
        update_stats(cfg, store=stats_store(cfg), record=published_dir(cfg).name)
    except MirrorMissing as exc:
        logger.error("%s", exc)
        return exit_code_for(exc)
    return EXIT_OK


def run_status(cfg: config.Config, as_json: bool, offline: bool, prometheus: Path | None) -> int:
    from .runtime import status_master
    from .upstream.feeds import upstream_serial_for
    from .verify import status

    # One request at most, spooled outside the mirror (nothing is written under it); the same
    # proxy and CA bundle as the mirror run.
    master = None if offline else status_master(cfg, Path(tempfile.gettempdir()))
    try:
        asker = upstream_serial_for(cfg.api_method, master, cfg.directory) if master else None
        found = status.gather(cfg, asker)
    finally:
        if master is not None:
            master.close()
    if prometheus is not None:
        try:
            status.write_prometheus(prometheus, status.render_prometheus(found))
        except BandersnatchError as exc:
            logger.error("%s; check the --prometheus path", exc)
            return EXIT_CONFIG
    sys.stdout.write(status.render_json(found) if as_json else status.render_text(found))
    return found.exit_code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose and args.quiet:
        build_parser().error("-v/--verbose and -q/--quiet exclude each other")
    if args.command == "verify" and args.upstream and (args.fast or args.hash or args.allow_mass_removal):
        # They say how files are read or repaired: verify --upstream reads none and mends nothing.
        build_parser().error("verify --upstream checks no file: --fast, --hash and --allow-mass-removal "
                             "do not apply")
    if args.command == "mirror" and args.json and not args.dry_run:
        build_parser().error("--json goes with --dry-run (a run's record is in the status command's --json)")
    status = setup_logging(args.verbose, args.quiet)
    if threading.current_thread() is not threading.main_thread():
        return _dispatch(args, status)
    # systemd and timeout(1) send SIGTERM: stop like Ctrl-C, with progress saved.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _dispatch(args, status)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace, status: StatusStream | None) -> int:
    try:
        dry = args.command == "mirror" and args.dry_run
        if not args.config.exists():
            if args.command == "mirror" and not dry:
                return write_default_config(args.config)
            # A typo in -c must not leave a stray default file behind a read-only command.
            named = "mirror --dry-run" if dry else args.command
            raise ConfigError(str(args.config), None, None,
                              f"no such file; {named} reads the mirror's configuration: give its path "
                              "with -c (bandersnatch mirror writes a default one for a new mirror)")
        # status and plain verify only read the mirror: a user who may only read it may run them.
        read_only = _reads_only(args)
        cfg = config.load(args.config, os.environ, writable=not read_only)
        if cfg.log_config is not None:
            apply_log_config(cfg.log_config, cfg.path)
        if dry:
            show_warnings(cfg, remembered=False)
            return run_dry(cfg, args)
        if args.command == "mirror":
            return run_mirror(cfg, args, status)
        show_warnings(cfg, remembered=False)
        if args.command == "status":
            return run_status(cfg, args.json, args.offline, args.prometheus)
        if args.command == "verify" and args.upstream:
            from .verify.audit import command as audit

            return audit(cfg, as_json=args.json, out=sys.stdout)
        if args.command == "verify":
            from .verify.verifier import command

            return command(cfg, repair=args.repair, fast=args.fast, as_json=args.json,
                           progress=Progress(status), out=sys.stdout, read=args.hash,
                           allow_mass_removal=args.allow_mass_removal)
        return run_update_stats(cfg)
    except (BandersnatchError, KeyboardInterrupt) as exc:
        report(exc, changes=not _reads_only(args))
        return exit_code_for(exc)  # the same table last-run records from


def _reads_only(args: argparse.Namespace) -> bool:
    """Whether the command only reads the mirror (status, verify without --repair, a dry run)."""
    dry = args.command == "mirror" and args.dry_run
    return bool(args.command == "status" or args.command == "verify" and not args.repair or dry)


def report(exc: BandersnatchError | KeyboardInterrupt, changes: bool = True) -> None:
    """The one line (or lines) an operator reads for an expected failure; its exit code is the table's.

    ``changes``: the command writes the mirror, so a failure leaves a run to finish; a command that
    only reads (a dry run, status, verify) began none.
    """
    if isinstance(exc, ConfigErrors):
        for problem in exc.problems:
            logger.error("configuration error: %s", problem)
        logger.error("%s: %d configuration problems; fix them all, then run again", exc.path,
                     len(exc.problems))
    elif isinstance(exc, ConfigError):
        logger.error("configuration error: %s", exc)
    elif isinstance(exc, LockHeld):
        # Expected whenever cron starts a run while a long one goes on: not an error, exit 3 says it.
        logger.info("%s", exc)
    elif isinstance(exc, (LinkInMirror, StoreRefused)):
        # A link nothing followed or deleted, wrong credentials or bucket: only the operator can act.
        logger.error("%s", exc)
    elif isinstance(exc, StorageError):
        # A full disk or a permission: running again changes nothing until that is fixed.
        logger.error("%s; the run is incomplete: once that is fixed, the next run finishes it", exc)
    elif isinstance(exc, BandersnatchError) and not changes:
        logger.error("%s; nothing was changed", exc)
    elif isinstance(exc, BandersnatchError):
        logger.error("%s; the run is incomplete, run again to finish", exc)
    else:
        logger.error("interrupted; progress is saved, run again to finish")

if __name__ == "__main__":
    sys.exit(main())
