"""What a first ``bandersnatch mirror --dry-run`` costs on a PyPI-sized listing with a 50-root allowlist.

The fake upstream lists 750,000 projects (``--projects``; all but the roots are
empty bulk projects) and 50 allowlisted roots (``--roots``) with two wheels
each; every request waits 30 ms (``--latency``); 3 workers, timeout 120 s (an XML-RPC listing
of 750,000 projects built by the fake under load can take longer than 30 s).  Into an empty
directory, timed with ``/usr/bin/time`` (wall, peak RSS), ``--repeat`` times each:

- ``ours dry run (xml-rpc)``: ``api-method = auto`` (the master has XML-RPC): ``list_packages_with_serial``;
- ``ours dry run (listing)``: ``api-method = simple``: the PEP 691 JSON root listing;
- ``ours first sync`` and ``bandersnatch 8.2.0 first sync``: the runs themselves, once each, for what a
  dry run spares (8.2 has no dry run: it tells what a run does by doing it).

Each row gives the upstream requests by kind; a dry run must cost the listing plus the 50 pages and
nothing else, leave the directory empty, and plan 50 projects to add with 100 files: the exit status
is 0 only when all of that holds::

    venv/bin/python benchmarks/bench_dryrun.py [--projects 750000] [--repeat 3] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from bench_clients import (  # noqa: E402
    DEFAULT_PEER_VENV,
    PEER_VERSION,
    Client,
    PeerUnavailable,
    child_env,
    ensure_peer_venv,
    our_client,
    peer_client,
)
from support.fakepypi import Upstream, traffic_kind  # noqa: E402


@dataclass
class Figure:
    label: str
    exit: int
    walls: list[float]
    rss_kb: int
    requests: Counter[str]
    ok: bool

    def row(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.requests.items()))
        wall = statistics.median(self.walls)
        spread = f" (of {', '.join(f'{w:.2f}' for w in self.walls)})" if len(self.walls) > 1 else ""
        return (f"{self.label:<34} exit {self.exit}  median {wall:6.2f} s wall{spread}, "
                f"{self.rss_kb / 1024:.0f} MB peak RSS; {sum(self.requests.values())} requests: {kinds}"
                f"{'' if self.ok else '  CHECK FAILED'}")


def allowlist(roots: list[str]) -> str:
    return ("\n[plugins]\nenabled =\n    allowlist_project\n\n[allowlist]\npackages =\n"
            + "".join(f"    {r}\n" for r in roots))


def timed(upstream: Upstream, command: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """Exit, wall seconds and peak RSS (KB) of ``command``, and its stdout; the upstream's counters reset."""
    upstream.reset_requests()
    result = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *command], env=env, capture_output=True,
                            text=True, check=False)
    line = next((x for x in reversed(result.stderr.splitlines()) if x.startswith("TIME ")), "TIME 0 0")
    _, wall, rss = line.split()
    return result.returncode, float(wall), int(rss), result.stdout


def kinds(upstream: Upstream) -> Counter[str]:
    return Counter(traffic_kind(r.method, r.path) for r in upstream.requests)


def dry_run(upstream: Upstream, client: Client, config: Path, label: str, repeat: int,
            roots: int) -> Figure:
    walls, rss, code, requests, ok = [], 0, 0, Counter[str](), True
    for _ in range(repeat):
        code, wall, peak, out = timed(upstream, [*client.command(config), "--dry-run", "--json"],
                                      child_env(client.extra_env))
        walls.append(wall)
        rss = max(rss, peak)
        requests = kinds(upstream)
        totals = json.loads(out)["totals"] if code == 0 else {}
        pages = sum(n for kind, n in requests.items() if kind not in ("index", "xmlrpc"))
        ok = ok and code == 0 and totals.get("projects_to_add") == roots \
            and totals.get("files_to_fetch") == 2 * roots and pages == roots \
            and sum(requests.values()) == roots + 1 \
            and not any(config.parent.joinpath("mirror").iterdir())
    return Figure(label, code, walls, rss, requests, ok)


def real_run(upstream: Upstream, client: Client, config: Path, label: str) -> Figure:
    code, wall, rss, _ = timed(upstream, client.command(config), child_env(client.extra_env))
    return Figure(label, code, [wall], rss, kinds(upstream), code == 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=750_000)
    parser.add_argument("--roots", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.030)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument("--peer-python", help="a Python >= 3.12 for the peer's venv")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        peer: Client | None = None
        if not args.no_peer:
            try:
                peer = peer_client(ensure_peer_venv(DEFAULT_PEER_VENV, args.peer_python,
                                                    work / "peer-install.log"))
            except PeerUnavailable as why:
                print(f"bandersnatch {PEER_VERSION} is not available, ours alone: {why}")
        ours = our_client(sys.executable)
        upstream = Upstream()
        upstream.add_bulk_projects(args.projects)
        roots = [f"root-{i:02d}" for i in range(args.roots)]
        for root in roots:
            upstream.add_wheel(root, "1.0", with_metadata=True)
            upstream.add_wheel(root, "2.0", with_metadata=True)
        upstream.start()
        upstream.latency = args.latency
        figures: list[Figure] = []
        try:
            for method in ("auto", "simple"):
                root = work / f"dry-{method}"
                (root / "mirror").mkdir(parents=True)
                config = ours.write_config(root, upstream.url, 3, 120)
                config.write_text(config.read_text() + f"api-method = {method}\n" + allowlist(roots))
                label = f"ours dry run ({'xml-rpc' if method == 'auto' else 'listing'})"
                figures.append(dry_run(upstream, ours, config, label, args.repeat, args.roots))
            for client in (ours, peer):
                if client is None:
                    continue
                root = work / f"sync-{client.key}"
                root.mkdir()
                config = client.write_config(root, upstream.url, 3, 120)
                config.write_text(config.read_text() + allowlist(roots))
                figures.append(real_run(upstream, client, config, f"{client.label} first sync"))
        finally:
            upstream.stop()
        load = os.getloadavg()
        print(f"{args.projects:,} listed projects, {args.roots} allowlisted roots with 2 wheels each, "
              f"{args.latency * 1000:g} ms latency, 3 workers; load average {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f} on {os.cpu_count()} CPUs")
        for figure in figures:
            print(figure.row())
        return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
