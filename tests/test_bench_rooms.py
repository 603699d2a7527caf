"""The bench's rooms scenario: each message is due to the members of its room, and only them.

With `rooms` a scenario's clients speak rooms (protocol 4.2): client i logs in to room
`#bench<i mod rooms>` and says its messages there. The bench counts every delivery
against the room of the client that got it, so the accounting is exact per room: a
message is due to its room's members, a copy anywhere else is `misrouted`, and in
`--verify` mode a client that gets one message twice counts as a `repeat`. As in
tests/test_bench.py, counts are asserted, never timings.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from test_bench import FAKE_SERVER, run_bench, scenarios

from bench import ircgen, loadgen

QUICK_ROOMS = "quick-c40-r20-rooms4"  # 40 clients in 4 rooms: 10 members a room
CLIENTS, ROOMS = 40, 4
MEMBERS = CLIENTS // ROOMS
FAKE_IRCD = f"{sys.executable} -m bench.fakeircd"


def assert_each_message_reached_its_room_exactly(row: Dict[str, Any], copies: int) -> None:
    """Every message sent reached `copies` members of its room, once each, and no one else."""
    assert row["rooms"] == ROOMS
    assert row["logged_in"] == CLIENTS
    assert row["copies_per_message"] == copies
    assert row["expected"] == row["sent"] * copies > 0
    assert row["received"] == row["expected"]
    assert (row["lost"], row["duplicates"], row["misrouted"], row["repeats"]) == (0, 0, 0, 0)
    assert row["verify_mismatches"] == 0  # each frame named the receiver's own room
    assert row["foreign_messages"] == 0


@pytest.mark.pyz
def test_rooms_scenario_against_the_pyz_delivers_each_message_to_its_room_only(
    pyz: Path, tmp_path: Path
) -> None:
    proc, document = run_bench(
        tmp_path, "--scenario", QUICK_ROOMS, "--pyz", str(pyz), "--check", "--verify"
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    [row] = scenarios(document)
    # A lanchat client gets its own message back: all 10 members of the room.
    assert_each_message_reached_its_room_exactly(row, copies=MEMBERS)
    assert row["sent"] == CLIENTS  # 20 msg/s for 2 s: every client spoke once
    # Each member saw a `join` (with its room) for every later member of its room only.
    assert row["joins_seen"] == row["joins_expected"] == ROOMS * MEMBERS * (MEMBERS - 1) // 2
    assert row["rooms_joined"] == CLIENTS  # one `joined` each, for its own room
    assert row["errors"] == {}


def test_a_server_that_ignores_rooms_is_caught_delivering_outside_them(tmp_path: Path) -> None:
    """The stand-in server knows no rooms: it relays every message to all 40 clients."""
    proc, document = run_bench(
        tmp_path, "--scenario", QUICK_ROOMS, "--pyz", FAKE_SERVER, "--check", "--verify"
    )
    assert proc.returncode == 1
    assert "deliveries outside the message's room" in proc.stderr
    [row] = scenarios(document)
    assert row["received"] == row["expected"] == row["sent"] * MEMBERS > 0
    assert row["lost"] == 0
    assert row["misrouted"] == row["sent"] * (CLIENTS - MEMBERS)  # the 3 other rooms
    assert row["joins_seen"] == CLIENTS * (CLIENTS - 1) // 2 != row["joins_expected"]
    assert row["rooms_joined"] == 0
    assert row["verify_mismatches"] > 0  # its frames name no room


def test_irc_peer_joins_one_channel_a_room(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", QUICK_ROOMS, "--pyz", FAKE_SERVER),
        *("--peer", "ngircd", "--ngircd", FAKE_IRCD, "--verify"),
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    rows = scenarios(document)  # the stand-in lanchat server's row is the test above
    irc = next(row for row in rows if row["protocol"] == "irc")
    # No echo on IRC: the 9 other members of the channel.
    assert_each_message_reached_its_room_exactly(irc, copies=MEMBERS - 1)
    # Each client saw its own JOIN and every later one of its channel.
    assert irc["joins_seen"] == irc["joins_expected"] == ROOMS * MEMBERS * (MEMBERS + 1) // 2
    assert "ngircd" in proc.stdout


def login_sent(gen: loadgen.LoadGen, index: int) -> Dict[str, Any]:
    """The login the generator answers a server's hello with, for its client `index`."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        conn = loadgen.Conn(index, f"b{index}", ours, index % gen.rooms if gen.rooms else 0)
        gen._slow(conn, b'{"type":"hello","app":"lanchat","version":"4.2.0"}', 0)
        theirs.settimeout(5)
        line = theirs.recv(65536)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    frame: Dict[str, Any] = json.loads(line)
    return frame


def test_a_client_without_rooms_logs_in_as_before() -> None:
    with loadgen.LoadGen("127.0.0.1", 9, 1) as gen:
        assert login_sent(gen, 0) == {"type": "login", "name": "b0", "version": "4.0.0"}


def test_a_client_with_rooms_logs_in_to_its_room() -> None:
    with loadgen.LoadGen("127.0.0.1", 9, 30, rooms=20) as gen:
        login = login_sent(gen, 27)
    assert login == {"type": "login", "name": "b27", "version": "4.2.0", "rooms": ["#bench7"]}


def test_say_frame_to_a_room_names_the_room() -> None:
    frame = json.loads(loadgen.say_frame(42, 1764000000123456789, "#bench3"))
    assert frame == {
        "type": "say",
        "room": "#bench3",
        "text": "lcb/42/1764000000123456789",
        "ref": 42,
    }


def test_rooms_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        loadgen.LoadGen("127.0.0.1", 9, 1, rooms=-1)


@pytest.mark.parametrize(
    ("line", "stamp"),
    [
        (b":b1!~b1@127.0.0.1 PRIVMSG #bench3 :lcb/12/345\r", (12, 345)),
        (b":b1!~b1@127.0.0.1 PRIVMSG #bench19 :lcb/0/5", (0, 5)),
        (b":b1!~b1@127.0.0.1 PRIVMSG #benchx :lcb/1/2\r", None),
        (b":b1!~b1@127.0.0.1 PRIVMSG #bench3x :lcb/1/2\r", None),
    ],
)
def test_irc_fast_path_reads_the_bench_channels_as_a_full_parse_does(
    line: bytes, stamp: Any
) -> None:
    assert ircgen.message_stamp(line) == ircgen.line_stamp(line) == stamp
