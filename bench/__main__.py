"""`python -m bench`: run the load sweep against the built pyz, print a table, write JSON.

`make bench` runs the whole sweep; `make bench-quick` (and CI, through
tests/test_bench.py) runs `--quick`, a few seconds that prove the bench works and loses
nothing. Exit codes: 0 done; 1 `--check` found lost deliveries, failed logins or a fast
path that disagreed with JSON (`--quick` implies `--check`); 2 bad arguments; 3 the bench
could not run (no pyz, the server did not start).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from bench import runner
from bench.runner import BenchError, Options, Scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

SWEEP = [
    Scenario("c50-r10", clients=50, rate=10, duration=10),
    Scenario("c200-r50", clients=200, rate=50, duration=10),
    Scenario("c1000-r100", clients=1000, rate=100, duration=10),
    Scenario("c1000-idle", clients=1000, rate=0, duration=10),
]
STRETCH = [Scenario("c5000-r20", clients=5000, rate=20, duration=10)]
QUICK = [
    Scenario("quick-c20-r20", clients=20, rate=20, duration=2),
    Scenario("quick-c20-idle", clients=20, rate=0, duration=1),
]
ALL = {s.name: s for s in SWEEP + STRETCH + QUICK}

# (column title, result key, format) — the table and docs/benchmark.md agree on these.
COLUMNS = [
    ("scenario", "scenario", "{}"),
    ("clients", "logged_in", "{}"),
    ("login s", "login_s", "{:.2f}"),
    ("offered/s", "offered_msg_s", "{:g}"),
    ("deliv/s", "deliveries_s", "{:.0f}"),
    ("lost", "lost", "{}"),
    ("p50 ms", "latency_p50_ms", "{:.2f}"),
    ("p99 ms", "latency_p99_ms", "{:.2f}"),
    ("max ms", "latency_max_ms", "{:.1f}"),
    ("srv ms/1k", "server_cpu_ms_per_1000", "{:.2f}"),
    ("srv CPU%", "server_cpu_pct", "{:.1f}"),
    ("RSS MiB", "server_peak_rss_mib", "{:.1f}"),
    ("threads", "server_threads_peak", "{}"),
    ("gen CPU%", "gen_cpu_pct", "{:.0f}"),
    ("gen lag ms", "read_lag_p99_ms", "{:.1f}"),
    ("other CPU%", "other_cpu_pct", "{:.0f}"),
]


def build_parser() -> argparse.ArgumentParser:
    """The bench's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load-test the lanchat server built into the pyz, on 127.0.0.1 only.",
    )
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run (CI)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(ALL),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(ALL)}",
    )
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="CLIENTS:RATE",
        help="run an extra scenario: CLIENTS clients, RATE room messages/s (0: idle); "
        "repeatable, e.g. --load 1000:50",
    )
    parser.add_argument(
        "--stretch", action="store_true", help="add 5000 clients at 20 msg/s to the sweep"
    )
    parser.add_argument(
        "--pyz", type=Path, default=ROOT / "dist" / "lanchat.pyz", help="(default %(default)s)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs the pyz (default: this one)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        metavar="PORT",
        help="server's base port (default: one the OS says is free)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS,
        help="where the JSON goes (default bench/results)",
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="override every scenario's duration"
    )
    parser.add_argument(
        "--login-concurrency",
        type=int,
        default=100,
        metavar="N",
        help="logins in flight at once (default %(default)s)",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="append ARG to the server's command line (repeatable), e.g. --server-arg=--no-history",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also JSON-decode every line and count fast-path disagreements (slow)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 on lost deliveries or failed logins (implied by --quick)",
    )
    return parser


def parse_load(text: str) -> Scenario:
    """An ad-hoc scenario from `CLIENTS:RATE` (10 s, like the sweep's)."""
    clients, _, rate = text.partition(":")
    try:
        n, r = int(clients), float(rate)
    except ValueError:
        raise ValueError(f"--load {text!r}: expected CLIENTS:RATE, e.g. 1000:50") from None
    if n < 1 or r < 0:
        raise ValueError(f"--load {text!r}: need at least 1 client and a rate of 0 or more")
    name = f"c{n}-r{r:g}" if r else f"c{n}-idle"
    return Scenario(name, clients=n, rate=r, duration=10)


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft open-files limit toward the hard one; the server child inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _cell(result: Dict[str, Any], key: str, fmt: str) -> str:
    value = result.get(key)
    if value is None:
        return "-"
    return fmt.format(value)


def table(results: Sequence[Dict[str, Any]]) -> str:
    """The results as an aligned text table, one scenario a row, notes below it."""
    rows = [[title for title, _, _ in COLUMNS]]
    rows += [[_cell(r, key, fmt) for _, key, fmt in COLUMNS] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        for note in r.get("notes", []):
            lines.append(f"  {r['scenario']}: {note}")
    return "\n".join(lines)


def targets(results: Sequence[Dict[str, Any]]) -> List[str]:
    """The issue's targets, each with the measured figure and met / MISSED."""
    by_name = {r["scenario"]: r for r in results}
    out = []

    def line(goal: str, ok: bool, figure: str) -> None:
        out.append(f"  [{'met' if ok else 'MISSED'}] {goal}: {figure}")

    load = by_name.get("c1000-r100")
    if load:
        line(
            "1000 clients logged in within 5 s",
            load["logged_in"] == 1000 and load["login_s"] <= 5,
            f"{load['logged_in']} in {load['login_s']:.2f} s",
        )
        line("1000 at 100 msg/s: 0 lost", load["lost"] == 0, f"{load['lost']} lost")
        line(
            "1000 at 100 msg/s: p99 <= 20 ms",
            load["latency_p99_ms"] <= 20,
            f"p99 {load['latency_p99_ms']:.2f} ms",
        )
        per_1000 = load.get("server_cpu_ms_per_1000")
        line(
            "server CPU <= 5 ms per 1000 deliveries",
            per_1000 is not None and per_1000 <= 5,
            f"{per_1000} ms",
        )
        line(
            "peak RSS <= 64 MiB with 1000 clients",
            load["server_peak_rss_mib"] <= 64,
            f"{load['server_peak_rss_mib']} MiB",
        )
    idle = by_name.get("c1000-idle")
    if idle:
        line(
            "idle server with 1000 clients <= 1 % CPU",
            idle["server_cpu_pct"] <= 1,
            f"{idle['server_cpu_pct']:.2f} %",
        )
    stretch = by_name.get("c5000-r20")
    if stretch:
        line(
            "stretch: 5000 clients at 20 msg/s, 0 lost",
            stretch["logged_in"] == 5000 and stretch["lost"] == 0,
            f"{stretch['logged_in']} logged in, {stretch['lost']} lost",
        )
    return out


def failures(result: Dict[str, Any]) -> List[str]:
    """What `--check` fails a scenario for (never timings)."""
    out = []
    if result.get("lost"):
        out.append(f"{result['lost']} deliveries lost")
    if result.get("login_failed"):
        out.append(f"{result['login_failed']} logins failed")
    if result.get("verify_mismatches"):
        out.append(f"{result['verify_mismatches']} fast-path mismatches")
    return out


def write_results(
    results: List[Dict[str, Any]], directory: Path, quick: bool, args: List[str]
) -> Path:
    """Write the run's figures as JSON; return the file's path."""
    now = datetime.datetime.now(datetime.timezone.utc)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{'quick' if quick else 'bench'}-{now:%Y%m%dT%H%M%SZ}.json"
    document = {
        "generated": now.isoformat(timespec="seconds"),
        "argv": args,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "scenarios": results,
    }
    tmp = path.with_suffix(".tmp")  # whole or nothing: readers never see half a file
    tmp.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    tmp.replace(path)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    """Run the chosen scenarios; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        extra = [parse_load(text) for text in args.load]
    except ValueError as exc:
        build_parser().error(str(exc))
    if args.scenario or extra:
        chosen = [ALL[name] for name in args.scenario or []] + extra
    elif args.quick:
        chosen = QUICK
    else:
        chosen = SWEEP + (STRETCH if args.stretch else [])
    if not args.pyz.is_file():
        print(f"bench: {args.pyz} is missing: run 'make pyz'", file=sys.stderr)
        return 3
    limit = raise_fd_limit(max(s.clients for s in chosen) * 2 + 100)
    options = Options(
        pyz=args.pyz,
        python=args.python,
        base_port=args.base_port,
        login_concurrency=args.login_concurrency,
        verify=args.verify or args.quick,
        duration=args.duration,
        server_args=tuple(args.server_arg),
    )
    check = args.check or args.quick
    print(f"bench: {len(chosen)} scenarios against {args.pyz}, open-files limit {limit}")
    results: List[Dict[str, Any]] = []
    bad: List[str] = []
    for scenario in chosen:
        print(f"  {scenario.name}: {scenario.clients} clients, ", end="", flush=True)
        print(f"{scenario.rate:g} msg/s" if scenario.rate else "idle", flush=True)
        try:
            result = runner.run(scenario, options)
        except BenchError as exc:
            print(f"bench: {scenario.name}: {exc}", file=sys.stderr)
            return 3
        results.append(result)
        bad += [f"{scenario.name}: {why}" for why in failures(result)]
    path = write_results(
        results, args.results_dir, args.quick, sys.argv[1:] if argv is None else argv
    )
    print()
    print(table(results))
    goals = targets(results)
    if goals:
        print("\ntargets:")
        print("\n".join(goals))
    print(f"\nresults: {path}")
    if check and bad:
        print("bench: check failed: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
