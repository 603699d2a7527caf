"""The bench side by side: its IRC mode (for ngircd), several builds, batched presence.

No ngircd in CI: the IRC mode runs against bench/fakeircd.py, a stand-in that takes
ngircd's command line. As in tests/test_bench.py, counts are asserted, never timings.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from test_bench import BENCH_TIMEOUT, FAKE_SERVER, ROOT, run_bench, scenarios

from bench import ircgen, loadgen
from bench.__main__ import labels

FAKE_IRCD = f"{sys.executable} -m bench.fakeircd"  # started from the repository's root


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (":a!b@c PRIVMSG #bench :lcb/1/2", ("a!b@c", "PRIVMSG", ["#bench", "lcb/1/2"])),
        ("PING :tok en", ("", "PING", ["tok en"])),
        (":srv 366 b1 #bench :End of NAMES", ("srv", "366", ["b1", "#bench", "End of NAMES"])),
        (":b1!~b1@h JOIN :#bench", ("b1!~b1@h", "JOIN", ["#bench"])),
        (":srv 005 b1 A=B C :are supported", ("srv", "005", ["b1", "A=B", "C", "are supported"])),
        ("join #bench", ("", "JOIN", ["#bench"])),
        ("", ("", "", [])),
    ],
)
def test_irc_line_parses_into_prefix_command_and_params(line: str, parsed: Any) -> None:
    assert ircgen.parse_line(line) == parsed


IRC_STAMPED = [
    b":b1!~b1@127.0.0.1 PRIVMSG #bench :lcb/12/1764000000123456789\r",
    b":b1!~b1@127.0.0.1 PRIVMSG #bench :lcb/0/5",
    # lanchat's gateway relays a one-word text without the trailing parameter's colon.
    b":b1!b1@lanchat PRIVMSG #bench lcb/12/1764000000123456789\r",
    b":b1!b1@lanchat PRIVMSG #bench lcb/0/5",
]
IRC_UNSTAMPED = [
    b":b1!~b1@127.0.0.1 PRIVMSG #bench :lcb/12/345 and more\r",
    b":b1!~b1@127.0.0.1 PRIVMSG #other :lcb/1/2\r",
    b":b1!~b1@127.0.0.1 PRIVMSG b2 :lcb/1/2\r",
    b":b1!~b1@127.0.0.1 NOTICE #bench :lcb/1/2\r",
    b":b1!~b1@127.0.0.1 PRIVMSG #bench :lcb/1_2/5\r",
    b":b1!~b1@127.0.0.1 JOIN :#bench\r",
    b"PING :lcb/1/2\r",
    b":b1!b1@lanchat PRIVMSG #bench lcb/12/345 more\r",  # two words: not ours
    b":b1!b1@lanchat PRIVMSG #bench lcb/12/\r",
    b":b1!b1@lanchat PRIVMSG #general lcb/1/2\r",
    b":lanchat 366 b1 #bench :End of /NAMES list\r",
]


@pytest.mark.parametrize("line", IRC_STAMPED + IRC_UNSTAMPED)
def test_irc_fast_path_agrees_with_a_full_parse(line: bytes) -> None:
    fast = ircgen.message_stamp(line)
    assert fast == ircgen.line_stamp(line)
    assert (fast is not None) == (line in IRC_STAMPED)


def test_presence_frames_count_as_the_joins_and_leaves_they_carry() -> None:
    changes: List[Dict[str, Any]] = [
        {"type": "join", "name": "a", "ts": 1.0},
        {"type": "join", "name": "c", "ts": 1.05},
        {"type": "leave", "name": "b", "ts": 1.1, "reason": "quit"},
    ]
    line = json.dumps({"type": "presence", "changes": changes}).encode()
    with loadgen.LoadGen("127.0.0.1", 9, 1) as gen, socket.socket() as sock:
        gen._slow(loadgen.Conn(0, "b0", sock), line, 0)
        assert (gen.joins, gen.leaves, gen.presence_frames) == (2, 1, 1)
        gen._slow(loadgen.Conn(0, "b0", sock), b'{"type":"presence","changes":7}', 0)
        assert gen.bad_lines == 1


def test_presence_must_be_single_or_batch() -> None:
    with pytest.raises(ValueError):
        loadgen.LoadGen("127.0.0.1", 9, 1, presence="bulk")


def test_batched_presence_settles_on_presence_frames(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", "quick-c20-r20", "--pyz", FAKE_SERVER),
        *("--presence", "batch", "--duration", "1", "--check", "--verify"),
    )
    assert proc.returncode == 0, proc.stderr
    [row] = scenarios(document)
    assert row["presence"] == "batch"
    assert row["presence_frames"] >= 1
    assert row["joins_seen"] == 20 * 19 // 2  # each client saw every later login
    assert not [note for note in row["notes"] if "join" in note]
    assert row["lost"] == 0


def test_irc_peer_runs_the_same_load_and_expects_no_echo(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", "quick-c20-r20", "--pyz", FAKE_SERVER),
        *("--peer", "ngircd", "--ngircd", FAKE_IRCD, "--duration", "1", "--check", "--verify"),
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lanchat, irc = scenarios(document)
    assert (lanchat["server"], lanchat["protocol"]) == ("fakeserver", "lanchat")
    assert (irc["server"], irc["protocol"]) == ("ngircd", "irc")
    assert lanchat["expected"] == lanchat["sent"] * 20 > 0
    assert irc["copies_per_message"] == 19  # IRC does not echo a PRIVMSG to its sender
    assert irc["expected"] == irc["sent"] * 19 > 0
    assert irc["received"] == irc["expected"]
    assert irc["lost"] == 0
    assert irc["logged_in"] == 20
    assert irc["joins_seen"] == 20 * 21 // 2  # every later login, and its own JOIN
    assert irc["pings_answered"] == 20  # the stand-in pings each client once
    assert irc["verify_mismatches"] == 0
    assert "fakeserver" in proc.stdout and "ngircd" in proc.stdout


def test_peer_without_ngircd_installed_exits_3_and_says_how_to_install(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-ngircd-here")
    argv = ["--quick", "--pyz", FAKE_SERVER, "--peer", "ngircd", "--ngircd", missing]
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--results-dir", str(tmp_path), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [
        "bench: ngircd is not installed: apt-get install ngircd"
    ]


def test_several_builds_run_side_by_side_in_turn(tmp_path: Path) -> None:
    other = tmp_path / "before.py"
    shutil.copy(FAKE_SERVER, other)
    proc, document = run_bench(
        tmp_path / "results",
        *("--scenario", "quick-c20-r20", "--scenario", "quick-c20-idle"),
        *("--pyz", FAKE_SERVER, "--pyz", str(other), "--duration", "1", "--check"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = scenarios(document)
    assert [(row["scenario"], row["server"]) for row in rows] == [
        ("quick-c20-r20", "fakeserver"),
        ("quick-c20-r20", "before"),
        ("quick-c20-idle", "fakeserver"),
        ("quick-c20-idle", "before"),
    ]


def test_builds_with_the_same_file_name_are_told_apart_by_path() -> None:
    assert labels([Path("a/lanchat.pyz"), Path("b/old.pyz")]) == ["lanchat", "old"]
    assert labels([Path("a/lanchat.pyz"), Path("b/lanchat.pyz")]) == [
        "a/lanchat.pyz",
        "b/lanchat.pyz",
    ]


def test_a_login_timeout_opens_no_more_connections() -> None:
    """Clients still logging in when time runs out fail, and none starts in their place."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never says hello
        port = silent.getsockname()[1]
        with loadgen.LoadGen("127.0.0.1", port, 5, login_concurrency=2) as gen:
            report = gen.login(timeout=0.3)
            assert (report.logged_in, report.failed) == (0, 5)
            assert len(gen.conns) == 2  # only the two in flight were ever opened
            assert gen.drops == {"login_timeout": 2}
