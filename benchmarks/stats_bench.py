"""Benchmark ``bandersnatch update-stats`` on a generated access log.

Writes a realistic nginx/Apache combined log (downloads of wheels and sdists
by pip, uv, browsers and friends, mixed with simple-page requests, 304s,
404s, range requests, HEADs, PEP 658 metadata fetches, vhost-prefixed and
malformed lines) plus a small mirror index into a temporary directory, runs
the real update-stats path in-process and reports lines per second::

    python benchmarks/stats_bench.py                 # 2,000,000 lines
    python benchmarks/stats_bench.py --lines 500000 --gzip --hash-index

Only the update-stats call is timed, not the generation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bandersnatch.names import normalize  # noqa: E402
from bandersnatch.stats.command import update_stats  # noqa: E402

logger = logging.getLogger("stats_bench")

FAMOUS = [
    "requests",
    "numpy",
    "Django",
    "djangorestframework",
    "jinja2-time",
    "zope.interface",
    "typing_extensions",
    "boto3",
    "py-3to2",
    "python-dateutil",
    "urllib3",
    "setuptools",
    "pip",
    "six",
    "PyYAML",
    "charset-normalizer",
]

AGENTS = [
    'pip/24.2 {"ci":null,"cpu":"x86_64","distro":{"name":"Ubuntu","version":"22.04"},'
    '"implementation":{"name":"CPython","version":"3.11.%d"},"installer":{"name":"pip","version":"24.2"},'
    '"openssl_version":"OpenSSL 3.0.2 15 Mar 2022","python":"3.11.%d","setuptools_version":"68.%d.0",'
    '"system":{"name":"Linux","release":"5.15.0-%d-generic"}}',
    'pip/23.0.1 {"ci":true,"cpu":"aarch64","implementation":{"name":"CPython","version":"3.%d.%d"},'
    '"installer":{"name":"pip","version":"23.0.1"},"python":"3.10.%d","system":{"name":"Linux","release":"6.%d"}}',
    'uv/0.5.1 {"installer":{"name":"uv","version":"0.5.1"},"python":"3.12.%d","implementation":'
    '{"name":"CPython","version":"3.12.%d"},"system":{"name":"Linux","release":"6.%d.%d"}}',
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/12%d.0.%d.%d Safari/537.%d",
    "curl/8.%d.%d (x86_64-pc-linux-gnu) libcurl/8.%d.%d",
    "Wget/1.21.%d (linux-gnu) %d%d%d",
    "bandersnatch/6.%d.%d (cpython 3.11.%d-final0, Linux x86_64) %d",
    "poetry/1.8.%d (%d%d%d)",
    "python-requests/2.3%d.%d %d%d",
]


@dataclass(frozen=True)
class BenchConfig:
    """The attributes update-stats reads from a configuration."""

    directory: Path
    hash_index: bool
    access_log_pattern: str
    path: Path


def build_index(web: Path, projects: int, hash_index: bool, rng: random.Random) -> list[tuple[str, str]]:
    """Write PEP 691 pages for ``projects`` projects; return their (filename, URL path) pairs."""
    extra = max(0, projects - len(FAMOUS))
    names = FAMOUS + [f"project-{i}{'-2fa' if i % 7 == 0 else ''}" for i in range(extra)]
    files: list[tuple[str, str]] = []
    for name in names:
        norm = normalize(name)
        escaped = name.replace("-", "_").replace(".", "_")
        page_files = []
        for major in range(1, 6):
            version = f"{major}.{rng.randrange(20)}.{rng.randrange(10)}"
            digest = f"{rng.getrandbits(240):060x}"
            for filename in (
                f"{escaped}-{version}-py3-none-any.whl",
                f"{name}-{version}.tar.gz",
                f"{escaped}-{version}-cp311-cp311-manylinux_2_17_x86_64.whl",
            ):
                url_path = f"/packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{filename}"
                files.append((filename, url_path))
                page_files.append({"filename": filename, "url": "../.." + url_path, "hashes": {}})
        parts = [norm[0], norm] if hash_index else [norm]
        page_dir = web.joinpath("simple", *parts)
        page_dir.mkdir(parents=True, exist_ok=True)
        page = {"meta": {"api-version": "1.1"}, "name": norm, "files": page_files}
        (page_dir / "index.v1_json").write_text(json.dumps(page))
    return files


def generate_log(
    path: Path, lines: int, files: list[tuple[str, str]], gz: bool, apache: bool, rng: random.Random
) -> int:
    """Write ``lines`` access log lines to ``path``; return how many are downloads.

    Compressed with gzip when ``gz``; quotes escaped as Apache does when ``apache``.
    """
    # A busy mirror's day and a bit (about 20 requests a second at the default
    # size), in a zone west of UTC so the lines span two UTC days.
    start = datetime(2024, 10, 10, 6, 0, 0)
    seconds = 26 * 3600
    stamps = [(start + timedelta(seconds=s)).strftime("%d/%b/%Y:%H:%M:%S -0700") for s in range(seconds)]
    agents = []
    for template in AGENTS:
        for _ in range(40):
            agent = template % tuple(rng.randrange(10) for _ in range(template.count("%d")))
            # The servers escape quotes inside fields: nginx as \x22, Apache as \".
            agents.append(agent.replace('"', '\\"' if apache else "\\x22"))
    weights = [1.0 / (i + 1) for i in range(len(files))]  # popularity: a long tail
    popular = rng.choices(files, weights=weights, k=50_000)
    ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(5000)]
    out: list[str] = []
    downloads = 0
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") if gz else raw as handle:
        for n in range(lines):
            stamp = stamps[n * seconds // lines]
            ip = rng.choice(ips)
            agent = rng.choice(agents)
            roll = rng.random()
            filename, url = rng.choice(popular)
            status, method, size = "200", "GET", rng.randrange(10_000, 5_000_000)
            if roll < 0.10:
                url = f"/simple/{normalize(filename.split('-')[0])}/"
            elif roll < 0.14:
                status = "304"
            elif roll < 0.16:
                status, url = "404", url + "x"
            elif roll < 0.18:
                status = "206"
            elif roll < 0.19:
                method = "HEAD"
            elif roll < 0.20:
                url += ".metadata"
            elif roll < 0.21:
                url += "?sha256=abc"
            if 0.20 <= roll <= 0.995:
                downloads += 1
            if roll > 0.995:
                out.append(f"garbage \x00\x01 line {n}\n")
            elif roll > 0.98:
                out.append(
                    f'mirror.example.org:443 {ip} - - [{stamp}] "{method} {url} HTTP/1.1" {status} {size} '
                    f'"-" "{agent}" 0.{rng.randrange(999):03d}\n'
                )
            else:
                out.append(f'{ip} - - [{stamp}] "{method} {url} HTTP/1.1" {status} {size} "-" "{agent}"\n')
            if len(out) >= 10_000:
                handle.write("".join(out).encode())
                out.clear()
        handle.write("".join(out).encode())
    return downloads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=2_000_000, help="log lines (default 2,000,000)")
    parser.add_argument("--projects", type=int, default=300, help="projects in the index (default 300)")
    parser.add_argument("--gzip", action="store_true", help="write the log gzip-compressed (access.log.2.gz)")
    parser.add_argument("--apache", action="store_true", help="escape quotes as Apache does, not as nginx")
    parser.add_argument("--hash-index", action="store_true", help="lay the index out with hash-index")
    parser.add_argument("--seed", type=int, default=381)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as temp:
        root = Path(temp)
        directory = root / "mirror"
        logs = root / "logs"
        logs.mkdir()
        files = build_index(directory / "web", args.projects, args.hash_index, rng)
        log_path = logs / ("access.log.2.gz" if args.gzip else "access.log")
        began = time.perf_counter()
        expected = generate_log(log_path, args.lines, files, args.gzip, args.apache, rng)
        logger.info(
            "generated %d lines (%d MB) in %.1fs",
            args.lines,
            log_path.stat().st_size // 1_000_000,
            time.perf_counter() - began,
        )
        pattern = str(logs / "access.log*")
        config = BenchConfig(directory, args.hash_index, pattern, root / "bandersnatch.conf")
        began = time.perf_counter()
        summary = update_stats(config, now=datetime(2024, 10, 12, tzinfo=timezone.utc))
        elapsed = time.perf_counter() - began
        rate = summary.lines_read / elapsed
        logger.info(
            "update-stats: %s lines, %s downloads, %s malformed, %d days in %.2fs = %s lines/s",
            f"{summary.lines_read:,}",
            f"{summary.downloads:,}",
            f"{summary.malformed:,}",
            len(summary.days_updated),
            elapsed,
            f"{rate:,.0f}",
        )
        if summary.downloads != expected:
            logger.error("counted %d downloads, the log holds %d", summary.downloads, expected)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
