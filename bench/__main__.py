"""`python -m bench`: run the load sweep against the built pyz, print a table, write JSON.

Every scenario can run against several servers in the same sitting, one after the other
and side by side in the table: several lanchat builds (`--pyz` repeated) and the IRC peer
ngircd (`--peer ngircd`). `make bench` runs the whole sweep; `make bench-quick` (and CI, through
tests/test_bench.py) runs `--quick`, a few seconds that prove the bench works and loses
nothing. Exit codes: 0 done; 1 `--check` found lost deliveries, deliveries outside the
message's room (or, with `--verify`, twice to one client), failed logins or a fast path
that disagreed with JSON (`--quick` implies `--check`); 2 bad arguments; 3 the bench could
not run (no pyz, no ngircd, the server did not start).
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

from bench import ngircd, runner
from bench.loadgen import PRESENCE_MODES
from bench.runner import TRANSPORTS, BenchError, Options, Scenario, Target

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

SWEEP = [
    Scenario("c50-r10", clients=50, rate=10, duration=10),
    Scenario("c200-r50", clients=200, rate=50, duration=10),
    Scenario("c1000-r100", clients=1000, rate=100, duration=10),
    # The same load over WebSocket to the web port, as a roomful of web pages.
    Scenario("c1000-r100-ws", clients=1000, rate=100, duration=10, transport="ws"),
    # The same load over TLS (`lanchat server --tls`): what encryption costs.
    Scenario("c1000-r100-tls", clients=1000, rate=100, duration=10, transport="tls"),
    # The same clients and messages, spread over 20 rooms: 50 members a room.
    Scenario("c1000-r100-rooms20", clients=1000, rate=100, duration=10, rooms=20),
    # The same load from IRC clients through the gateway (`--irc-port`), as irssi users.
    Scenario("c1000-r100-irc", clients=1000, rate=100, duration=10, transport="irc"),
    Scenario("c1000-idle", clients=1000, rate=0, duration=10),
]
# The rest of the targets: logging 5000 in (100 at a time) and holding 10,000.
STRETCH = [
    Scenario("c5000-login", clients=5000, rate=0, duration=2),
    Scenario("c10000-idle", clients=10000, rate=0, duration=10),
    Scenario("c5000-r20", clients=5000, rate=20, duration=10),
]
QUICK = [
    Scenario("quick-c20-r20", clients=20, rate=20, duration=2),
    Scenario("quick-c20-idle", clients=20, rate=0, duration=1),
    Scenario("quick-c40-r20-rooms4", clients=40, rate=20, duration=2, rooms=4),
    Scenario("quick-c20-r20-ws", clients=20, rate=20, duration=2, transport="ws"),
    Scenario("quick-c20-r20-tls", clients=20, rate=20, duration=2, transport="tls"),
    Scenario("quick-c20-r20-irc", clients=20, rate=20, duration=2, transport="irc"),
]
ALL = {s.name: s for s in SWEEP + STRETCH + QUICK}
# The scenarios whose rows the targets are read from.
TARGET_SCENARIOS = ("c1000-r100", "c5000-login", "c5000-r20", "c10000-idle")

# (column title, result key, format) — the table and docs/benchmark.md agree on these.
COLUMNS = [
    ("scenario", "scenario", "{}"),
    ("server", "server", "{}"),
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
        metavar="CLIENTS:RATE[:TRANSPORT]",
        help="run an extra scenario: CLIENTS clients, RATE room messages/s (0: idle), over "
        f"TRANSPORT ({', '.join(TRANSPORTS)}; default tcp); repeatable, e.g. --load 1000:50 "
        "--load 1000:10:irc",
    )
    parser.add_argument(
        "--stretch",
        action="store_true",
        help="add c5000-login, c10000-idle and c5000-r20 (5000 clients at 20 msg/s)",
    )
    parser.add_argument(
        "--pyz",
        type=Path,
        action="append",
        help="the lanchat build to load; repeat to run several side by side "
        "(default dist/lanchat.pyz)",
    )
    parser.add_argument(
        "--peer",
        choices=["ngircd"],
        help="also run every scenario against this IRC server, side by side",
    )
    parser.add_argument(
        "--ngircd",
        default="ngircd",
        metavar="COMMAND",
        help="how to start ngircd for --peer (default %(default)s)",
    )
    parser.add_argument(
        "--presence",
        choices=PRESENCE_MODES,
        default="single",
        help="lanchat clients ask for batched presence frames (protocol 4.1) or take one "
        "join frame per login (default %(default)s)",
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
        "--login-timeout",
        type=float,
        metavar="SECONDS",
        help="give up logging in (and, again, waiting for the joins) after this long; the "
        "row then shows how many got in (default: 30 s, more for thousands of clients)",
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
        help="exit 1 on lost or misrouted deliveries or failed logins (implied by --quick)",
    )
    return parser


def parse_load(text: str) -> Scenario:
    """An ad-hoc scenario from `CLIENTS:RATE[:TRANSPORT]` (10 s, like the sweep's)."""
    clients, _, rest = text.partition(":")
    rate, _, transport = rest.partition(":")
    try:
        n, r = int(clients), float(rate)
    except ValueError:
        raise ValueError(f"--load {text!r}: expected CLIENTS:RATE, e.g. 1000:50") from None
    if n < 1 or r < 0:
        raise ValueError(f"--load {text!r}: need at least 1 client and a rate of 0 or more")
    transport = transport or "tcp"
    if transport not in TRANSPORTS:
        raise ValueError(f"--load {text!r}: the transport is one of {', '.join(TRANSPORTS)}")
    name = f"c{n}-r{r:g}" if r else f"c{n}-idle"
    if transport != "tcp":
        name += f"-{transport}"
    return Scenario(name, clients=n, rate=r, duration=10, transport=transport)


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
        # The names (scenario, server) to the left, the figures to the right.
        cells = [c.ljust(w) for c, w in zip(row[:2], widths[:2])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        for note in r.get("notes", []):
            lines.append(f"  {r['scenario']} on {r['server']}: {note}")
    return "\n".join(lines)


def targets(results: Sequence[Dict[str, Any]]) -> List[str]:
    """The issue's targets for each server, each with the measured figure and met / MISSED."""
    out = []
    for server in dict.fromkeys(r["server"] for r in results):
        rows = {r["scenario"]: r for r in results if r["server"] == server}
        # The IRC peer hears IRC in every row; lanchat only in its gateway's.
        peer = all(r["protocol"] == "irc" for r in rows.values())
        goals = _goals(rows, "" if peer else _peer_p99(results))
        if goals:
            out.append(f"  {server}:")
            out += goals
    return out


def _peer_p99(results: Sequence[Dict[str, Any]]) -> str:
    """The IRC peer's p99 at 1000 x 100 msg/s in the same run, as a note ('' if none)."""
    for r in results:
        if r["scenario"] == "c1000-r100" and r["protocol"] == "irc" and r["latency_p99_ms"]:
            return f" (ngircd {r['latency_p99_ms']:.1f} ms in this run)"
    return ""


def _goals(rows: Dict[str, Dict[str, Any]], peer_p99: str) -> List[str]:
    """One server's rows against the targets of the issue (reported, never asserted)."""
    out = []

    def line(goal: str, ok: bool, figure: str) -> None:
        out.append(f"    [{'met' if ok else 'MISSED'}] {goal}: {figure}")

    if not any(name in rows for name in TARGET_SCENARIOS):
        return out
    threads = max(r["server_threads_peak"] for r in rows.values())
    line("threads, any number of clients <= 64", threads <= 64, f"{threads} at most")
    load = rows.get("c1000-r100")
    if load:
        rss = load["server_peak_rss_mib"]
        line("RSS, 1000 clients at 100 msg/s <= 40 MiB", rss <= 40, f"{rss} MiB")
        cost = load["server_cpu_ms_per_1000"]
        line(
            "CPU per 1000 deliveries, 1000 x 100 msg/s <= 4.5 ms",
            cost is not None and cost <= 4.5,
            f"{cost} ms",
        )
        p99 = load["latency_p99_ms"] or 0.0
        line(
            "p99 latency, 1000 x 100 msg/s no worse than today's 91 ms",
            0 < p99 <= 91,
            f"{p99:.1f} ms{peer_p99}",
        )
    crowd = rows.get("c5000-login") or rows.get("c5000-r20")
    if crowd:
        rss = crowd["server_peak_rss_mib"]
        line("RSS, 5000 clients <= 96 MiB", rss <= 96, f"{rss} MiB ({crowd['scenario']})")
        line(
            "5000 clients logged in (100 in flight) <= 10 s",
            crowd["logged_in"] == 5000 and crowd["login_s"] <= 10,
            f"{crowd['logged_in']} in {crowd['login_s']:.1f} s",
        )
    idle = rows.get("c10000-idle")
    if idle:
        held = idle["online_at_end"]
        line(
            "10,000 idle logged-in clients held, <= 1 % CPU",
            held == 10000 and idle["server_cpu_pct"] <= 1,
            f"{held} held, {idle['server_cpu_pct']:.2f} %",
        )
    return out


def failures(result: Dict[str, Any]) -> List[str]:
    """What `--check` fails a scenario for (never timings)."""
    out = []
    if result.get("lost"):
        out.append(f"{result['lost']} deliveries lost")
    if result.get("misrouted"):
        out.append(f"{result['misrouted']} deliveries outside the message's room")
    if result.get("repeats"):
        out.append(f"{result['repeats']} deliveries a client had had already")
    if result.get("login_failed"):
        out.append(f"{result['login_failed']} logins failed")
    if result.get("verify_mismatches"):
        out.append(f"{result['verify_mismatches']} fast-path mismatches")
    return out


def results_path(directory: Path, quick: bool) -> Path:
    """Where this run's JSON goes: named after the run's start, in UTC."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return directory / f"{'quick' if quick else 'bench'}-{now:%Y%m%dT%H%M%SZ}.json"


def write_results(results: List[Dict[str, Any]], path: Path, args: List[str]) -> None:
    """Write the figures so far as JSON (after each row: a stopped run keeps its rows)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def summary(result: Dict[str, Any]) -> str:
    """One progress line for a finished row, for long runs."""
    return (
        f"    {result['logged_in']} logged in, {result['login_s']:.1f} s; "
        f"RSS {result['server_peak_rss_mib']} MiB, {result['server_threads_peak']} threads, "
        f"CPU {result['server_cpu_pct']:.1f} %, {result['lost']} lost"
    )


def labels(pyzs: Sequence[Path]) -> List[str]:
    """Names for the `server` column: each build's file stem, or its path when stems clash."""
    stems = [pyz.stem for pyz in pyzs]
    return [stem if stems.count(stem) == 1 else str(pyz) for stem, pyz in zip(stems, pyzs)]


def port_range_note(clients: int) -> Optional[str]:
    """A warning when the ephemeral port range is too narrow for this many clients."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return None
    if high - low + 1 >= clients + 100:
        return None
    return f"only {high - low + 1} ephemeral ports for {clients} clients: logins will fail"


def main(argv: Optional[List[str]] = None) -> int:
    """Run the chosen scenarios against every server; return the exit code."""
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
    pyzs: List[Path] = args.pyz or [ROOT / "dist" / "lanchat.pyz"]
    for pyz in pyzs:
        if not pyz.is_file():
            print(f"bench: {pyz} is missing: run 'make pyz'", file=sys.stderr)
            return 3
    servers = [Target(label, pyz=pyz) for label, pyz in zip(labels(pyzs), pyzs)]
    if args.peer == "ngircd":
        command = ngircd.find(args.ngircd)
        if command is None:
            print(f"bench: ngircd is not installed: {ngircd.INSTALL_HINT}", file=sys.stderr)
            return 3
        servers.append(Target("ngircd", peer_command=tuple(command)))
    most = max(s.clients for s in chosen)
    limit = raise_fd_limit(most * 2 + 100)
    options = Options(
        python=args.python,
        base_port=args.base_port,
        login_concurrency=args.login_concurrency,
        verify=args.verify or args.quick,
        duration=args.duration,
        server_args=tuple(args.server_arg),
        presence=args.presence,
        login_timeout=args.login_timeout,
    )
    check = args.check or args.quick
    names = ", ".join(f"{t.label} ({t.pyz or ' '.join(t.peer_command)})" for t in servers)
    print(f"bench: {len(chosen)} scenarios against {names}, open-files limit {limit}")
    if limit < most + 100:
        print(f"bench: warning: {limit} open files are too few for {most} clients")
    narrow = port_range_note(most)
    if narrow:
        print(f"bench: warning: {narrow}")
    path = results_path(args.results_dir, args.quick)
    argv_used = sys.argv[1:] if argv is None else argv
    results: List[Dict[str, Any]] = []
    bad: List[str] = []
    for scenario in chosen:
        for server in servers:  # alternating, so a busy spell on the machine hits both
            if (scenario.websocket or scenario.tls) and server.pyz is None:
                continue  # the IRC peer speaks no WebSocket, and is not set up for TLS
            print(f"  {scenario.name} on {server.label}: {scenario.clients} clients, ", end="")
            print(f"{scenario.rate:g} msg/s" if scenario.rate else "idle", flush=True)
            try:
                result = runner.run(scenario, server, options)
            except BenchError as exc:
                print(f"bench: {scenario.name} on {server.label}: {exc}", file=sys.stderr)
                return 3
            results.append(result)
            write_results(results, path, argv_used)
            print(summary(result), flush=True)
            bad += [f"{scenario.name} on {server.label}: {why}" for why in failures(result)]
    print()
    print(table(results))
    goals = targets(results)
    if goals:
        print("\ntargets (reported, never asserted):")
        print("\n".join(goals))
    print(f"\nresults: {path}")
    if check and bad:
        print("bench: check failed: " + "; ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
