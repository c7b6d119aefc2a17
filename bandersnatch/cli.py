"""Command line: ``bandersnatch [-c CONFIG] [-v|-q] {mirror,update-stats}``.

Turns expected failures into one log line and an exit code; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__, config
from .errors import BandersnatchError, ConfigError, LockHeld
from .progress import Progress, StatusStream

logger = logging.getLogger("bandersnatch")

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = config.DEFAULT_CONFIG_PATH


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bandersnatch",
        description="PyPI mirror client: keeps a verified copy of PyPI (or a part of it) under a directory.",
        epilog="Exit codes: 0 complete, 1 incomplete (failed projects are retried next run), "
               "2 usage or configuration error, 3 another run holds the lock, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"bandersnatch {__version__}")
    parser.add_argument(
        "-c", "--config", type=Path, default=DEFAULT_CONFIG,
        help=f"configuration file (default: {DEFAULT_CONFIG}; written with defaults if missing)",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log debug details too")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mirror = commands.add_parser("mirror", help="bring the mirror up to date with the master")
    mirror.add_argument("--force-check", action="store_true",
                        help="list every project upstream and re-hash every file on disk")
    commands.add_parser("update-stats", help="turn the web server's access logs into download statistics")
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
    # urllib3 logs every new connection at debug; that is noise even with -v.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("filelock").setLevel(logging.WARNING)
    return status


def load_config(path: Path) -> config.Config:
    if not path.exists():
        config.write_default(path)
        raise ConfigError(str(path), None, None,
                          "did not exist; wrote the default configuration there: review it "
                          "(at least [mirror] directory) and run again")
    return config.load(path)


def run_mirror(cfg: config.Config, force_check: bool, status: StatusStream | None) -> int:
    from .mirror import Mirror

    return Mirror(cfg, force_check=force_check, progress=Progress(status)).run().exit_code


def run_update_stats(cfg: config.Config) -> int:
    from .stats.command import update_stats
    from .stats.errors import MirrorMissing

    try:
        update_stats(cfg)
    except MirrorMissing as exc:
        logger.error("%s", exc)
        return EXIT_CONFIG
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        cfg = load_config(args.config)
        if args.command == "mirror":
            return run_mirror(cfg, args.force_check, status)
        return run_update_stats(cfg)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return EXIT_CONFIG
    except LockHeld as exc:
        logger.error("%s", exc)
        return EXIT_LOCKED
    except BandersnatchError as exc:
        logger.error("%s; the run is incomplete, run again to finish", exc)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        logger.error("interrupted; progress is saved, run again to finish")
        return EXIT_INTERRUPTED

if __name__ == "__main__":
    sys.exit(main())
