"""The bench's IRC scenario: IRC clients through lanchat's gateway, beside ngircd.

`quick-c20-r20-irc` runs at small size against the built pyz (its gateway on a free
port, the bench's channel as the default room) and, as the peer, against the stand-in
for ngircd (bench/fakeircd.py: no ngircd in CI): every message must reach every other
member of the channel exactly once on both. (The gateway's relayed lines on the
generator's fast path are in tests/test_bench_peer.py, with ngircd's.) Counts are
asserted, never timings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from test_bench import run_bench, scenarios

from bench import ircgen
from bench.__main__ import parse_load, targets
from bench.runner import Scenario

FAKE_IRCD = f"{sys.executable} -m bench.fakeircd"  # started from the repository's root
QUICK_IRC = "quick-c20-r20-irc"
CLIENTS = 20


def test_the_gateways_join_without_a_colon_is_a_join() -> None:
    assert ircgen.IrcLoadGen.JOIN.match(b":b3!b3@lanchat JOIN #bench\r")
    assert not ircgen.IrcLoadGen.JOIN.match(b":b3!b3@lanchat JOIN #general\r")


def test_irc_scenarios_have_one_channel() -> None:
    with pytest.raises(ValueError, match="one channel"):
        Scenario("x", clients=40, rate=20, duration=2, rooms=4, transport="irc")


def test_load_option_takes_a_transport() -> None:
    assert parse_load("1000:10:irc") == Scenario(
        "c1000-r10-irc", clients=1000, rate=10, duration=10, transport="irc"
    )
    assert parse_load("50:5").transport == "tcp"
    with pytest.raises(ValueError):
        parse_load("50:5:udp")


@pytest.mark.pyz
def test_quick_irc_scenario_runs_through_the_gateway_and_beside_the_peer(
    pyz: Path, tmp_path: Path
) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", QUICK_IRC, "--pyz", str(pyz), "--duration", "1"),
        *("--peer", "ngircd", "--ngircd", FAKE_IRCD, "--check", "--verify"),
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    gateway, peer = scenarios(document)
    assert (gateway["server"], peer["server"]) == (pyz.stem, "ngircd")
    argv = gateway["server_argv"]
    assert "--irc-port" in argv
    assert argv[argv.index("--default-room") + 1] == "#bench"
    for row in (gateway, peer):
        assert (row["scenario"], row["protocol"], row["transport"]) == (QUICK_IRC, "irc", "irc")
        assert row["logged_in"] == CLIENTS
        assert row["errors"] == {} and row["disconnects"] == {}
        # Each sees its own JOIN and every later one's, in the one channel.
        assert row["joins_seen"] == CLIENTS * (CLIENTS + 1) // 2
        assert row["copies_per_message"] == CLIENTS - 1  # no echo without echo-message
        assert row["received"] == row["expected"] == row["sent"] * (CLIENTS - 1) > 0
        assert row["lost"] == row["misrouted"] == row["duplicates"] == 0
        assert row["verify_mismatches"] == row["repeats"] == row["foreign_messages"] == 0
        assert row["server_cpu_ms_per_1000"] is not None
        assert row["latency_p99_ms"] is not None
    table = proc.stdout.split("\n\n")[1]  # side by side in one table
    assert f"{QUICK_IRC}  {pyz.stem}" in table and f"{QUICK_IRC}  ngircd" in table


def target_row(scenario: str, server: str, protocol: str, p99: float) -> Dict[str, Any]:
    """The figures `targets` reads from a row."""
    return {
        "scenario": scenario,
        "server": server,
        "protocol": protocol,
        "server_threads_peak": 5,
        "server_peak_rss_mib": 38.0,
        "server_cpu_ms_per_1000": 5.0,
        "latency_p99_ms": p99,
    }


def test_lanchat_with_gateway_rows_is_still_read_against_the_peer() -> None:
    """lanchat's IRC rows do not make it the peer: its p99 line still names ngircd's."""
    rows = [
        target_row("c1000-r100", "lanchat", "lanchat", 90.0),
        target_row("c1000-r100", "ngircd", "irc", 120.0),
        target_row("c1000-r100-irc", "lanchat", "irc", 900.0),
        target_row("c1000-r100-irc", "ngircd", "irc", 130.0),
    ]
    lines = targets(rows)
    p99 = [line for line in lines if "p99" in line]
    assert len(p99) == 2
    assert p99[0].endswith("90.0 ms (ngircd 120.0 ms in this run)")  # lanchat's
    assert p99[1].endswith(": 120.0 ms")  # ngircd's own, without a note
