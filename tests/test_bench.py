"""The load bench runs, counts every delivery and loses nothing — never its timings.

The bench's own figures (latency, CPU) are reported by `make bench` and never asserted
here: CI machines are too noisy for that. What is tested: the fast path that finds a
bench message's stamp in raw bytes agrees with a full JSON decode; the bench counts
losses (against a stand-in server that drops deliveries on purpose); and
`python -m bench --quick` against the built pyz exits 0 with a JSON result that lost
nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from bench import fakeserver, loadgen

ROOT = Path(__file__).resolve().parent.parent
FAKE_SERVER = fakeserver.__file__  # run as the "pyz": it takes the server's command line
BENCH_TIMEOUT = 180  # seconds for one bench subprocess; the quick run takes a few

RESULT_KEYS = {
    "scenario",
    "clients",
    "logged_in",
    "login_failed",
    "login_s",
    "offered_msg_s",
    "deliveries_s",
    "expected",
    "received",
    "lost",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "server_cpu_ms_per_1000",
    "server_cpu_pct",
    "server_peak_rss_mib",
    "server_threads_peak",
    "gen_cpu_pct",
    "gen_saturated",
}


def compact(frame: Dict[str, Any]) -> bytes:
    """A frame as lanchat's server encodes it (compact, UTF-8), without the newline."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()


def message(text: str, **extra: Any) -> Dict[str, Any]:
    """A relayed room message frame with the server's field order."""
    frame: Dict[str, Any] = {"type": "message", "id": 7, "ts": 1764000000.25, "from": "b1"}
    frame["text"] = text
    frame.update(extra)
    return frame


STAMPED_LINES = [
    compact(message("lcb/12/1764000000123456789")),
    compact(message("lcb/0/5", ref=0)),
    compact({"type": "message", "text": "lcb/3/4", "id": 1, "ts": 1.5, "from": "x"}),
]

UNSTAMPED_LINES = [
    b"",
    compact({"type": "join", "name": "b1", "ts": 1.0}),
    compact(message("hello")),
    compact(message("lcb/12/345 and more")),
    compact(message("lcb/12/")),
    compact(message("lcb/-1/5")),
    compact(message("lcb/1_2/5")),
    compact(message("lcb/ 1/5")),
    compact(message("lcb/١/5")),  # an Arabic-Indic digit: a digit to str.isdigit only
    # Somebody's text that quotes a bench frame: its quotes are escaped, so no match.
    compact(message('x","text":"lcb/1/2"')),
    # A welcome whose history holds bench messages: they are not deliveries.
    compact({"type": "welcome", "name": "b1", "online": [], "history": [message("lcb/1/2")]}),
    # Spaced JSON: not the compact encoding, so left to the JSON path.
    json.dumps(message("lcb/1/2")).encode(),
    b"not json at all",
]


@pytest.mark.parametrize("line", STAMPED_LINES)
def test_fast_path_finds_the_stamp_json_finds(line: bytes) -> None:
    stamp = loadgen.message_stamp(line)
    assert stamp is not None
    assert stamp == loadgen.frame_stamp(json.loads(line))


@pytest.mark.parametrize("line", UNSTAMPED_LINES)
def test_fast_path_passes_other_lines_to_json(line: bytes) -> None:
    assert loadgen.message_stamp(line) is None


@pytest.mark.parametrize("line", STAMPED_LINES + UNSTAMPED_LINES)
def test_fast_path_never_disagrees_with_json(line: bytes) -> None:
    """A fast-path hit is exactly what a full decode would count; a miss costs only time."""
    fast = loadgen.message_stamp(line)
    try:
        slow = loadgen.frame_stamp(json.loads(line))
    except ValueError:
        slow = None
    assert fast is None or fast == slow


def test_say_frame_is_a_say_the_server_would_relay_with_its_stamp() -> None:
    frame = json.loads(loadgen.say_frame(42, 1764000000123456789))
    assert frame == {"type": "say", "text": "lcb/42/1764000000123456789", "ref": 42}
    assert loadgen.text_stamp(frame["text"]) == (42, 1764000000123456789)


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert loadgen.percentile(values, 0.5) == 50
    assert loadgen.percentile(values, 0.99) == 99
    assert loadgen.percentile(values, 1.0) == 100
    assert loadgen.percentile([], 0.5) == 0


def run_bench(results: Path, *args: str, env: Optional[Dict[str, str]] = None) -> Any:
    """Run `python -m bench` with these arguments; return (process, the one JSON result)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--results-dir", str(results), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT,
        check=False,
    )
    files = sorted(results.glob("*.json"))
    assert len(files) == 1, f"{files}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc, json.loads(files[0].read_text("utf-8"))


def scenarios(document: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The per-scenario rows of a bench result, each with every expected key."""
    rows = document["scenarios"]
    for row in rows:
        assert RESULT_KEYS <= set(row), RESULT_KEYS - set(row)
    return rows


def test_bench_counts_every_delivery_of_a_server_that_loses_none(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path, "--scenario", "quick-c20-r20", "--pyz", FAKE_SERVER, "--check", "--verify"
    )
    assert proc.returncode == 0, proc.stderr
    [row] = scenarios(document)
    assert row["logged_in"] == 20
    assert row["expected"] == row["sent"] * 20 > 0
    assert row["received"] == row["expected"]
    assert row["lost"] == 0
    assert row["verify_mismatches"] == 0


def test_bench_counts_the_deliveries_a_server_drops(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        "--scenario",
        "quick-c20-r20",
        "--pyz",
        FAKE_SERVER,
        "--check",
        env={"LANCHAT_FAKE_DROP_EVERY": "7"},  # the stand-in skips every 7th delivery
    )
    assert proc.returncode == 1
    assert "deliveries lost" in proc.stderr
    [row] = scenarios(document)
    assert row["lost"] == row["expected"] // 7
    assert row["received"] + row["lost"] == row["expected"]


@pytest.mark.pyz
def test_quick_bench_against_the_pyz_loses_nothing(pyz: Path, tmp_path: Path) -> None:
    proc, document = run_bench(tmp_path, "--quick", "--pyz", str(pyz))
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    rows = scenarios(document)
    assert [row["scenario"] for row in rows] == [
        "quick-c20-r20",
        "quick-c20-idle",
        "quick-c40-r20-rooms4",
        "quick-c20-r20-ws",
        "quick-c20-r20-tls",
        "quick-c20-r20-irc",
    ]
    for row in rows:
        assert row["logged_in"] == row["clients"]
        assert row["lost"] == 0
        assert row["verify_mismatches"] == 0
    assert rows[0]["received"] == rows[0]["expected"] > 0
