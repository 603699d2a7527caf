"""Rooms (4.2) in the built pyz client against the built pyz server: the window in a real
pseudo-terminal (the room bar, unread counts, switching with Alt and Ctrl-X, one bell
for a mention in another room) and plain mode (lines that carry their room, /join that
switches, rooms kept over a server restart). The other people are raw protocol clients
that speak rooms, so each test also sees what the client sends."""

from __future__ import annotations

import curses
import json
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import drivers
import pytest
from conftest import free_port
from drivers import WAIT, PipedClient, PtyClient, client_argv, start_server, stop_server
from wire import RawClient

pytestmark = pytest.mark.pyz

server = drivers.server
clients = drivers.clients

ALT_RIGHT = curses.tigetstr("kRIT3")  # terminfo was set up for drivers.TERM by drivers
CTRL_X = b"\x18"
BAR_ROW = 22  # in a terminal of 24 rows: the row above the input line
STAMP = r"\d\d:\d\d "


def speaker(address: Tuple[str, int], name: str, rooms: Sequence[str]) -> RawClient:
    """A raw client that speaks rooms, logged in and in `rooms`."""
    client = RawClient(address, timeout=WAIT)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.2.0", "rooms": list(rooms)})
    client.expect("welcome", name=name)
    for room in rooms:
        client.expect("joined", room=room)
    return client


def awaited(client: RawClient, kind: str, **fields: Any) -> Dict[str, Any]:
    """The first frame of this type with these fields, the others before it skipped;
    fails if none comes within WAIT."""
    deadline = time.monotonic() + WAIT
    while True:
        frame = client.recv(max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


def say(client: RawClient, room: str, text: str) -> None:
    """Say `text` in `room` and wait for the echo (so the order is the server's)."""
    client.send({"type": "say", "room": room, "text": text, "ref": text})
    awaited(client, "message", text=text, room=room)


def room_bar(lines: List[str]) -> str:
    return lines[BAR_ROW].strip()


def reversed_at(client: PtyClient, row: int, text: str) -> bool:
    """True if `text` on that row is drawn highlighted (reverse video)."""
    with client._lock:
        line = client.screen.display[row]
        assert text in line, line
        return bool(client.screen.buffer[row][line.index(text)].reverse)


def bells(client: PtyClient) -> int:
    with client._lock:
        return client.output.count(b"\x07")


def test_the_room_bar_counts_unread_marks_a_mention_and_switches_rooms(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    alice = speaker(address, "alice", ["#general", "#dev"])
    bob = clients(address, "bob")
    bob.wait_for("you are bob on testlab")
    assert room_bar(bob.wait_for(lambda lines: room_bar(lines) == "1:#general"))
    awaited(alice, "join", name="bob", room="#general")

    bob.line("/join dev")
    bob.wait_for(lambda lines: room_bar(lines) == "1:#general  2:#dev")
    awaited(alice, "join", name="bob", room="#dev")
    lines = bob.wait_for("you joined #dev (2 here)")
    assert reversed_at(bob, BAR_ROW, "2:#dev") and not reversed_at(bob, BAR_ROW, "1:#general")
    side = [line.rsplit("|", 1)[-1].strip() for line in lines[1:4]]
    assert side == ["online (2)", "alice", "bob"], "the side list is the room shown"

    before = bells(bob)
    say(alice, "#general", "news one")
    say(alice, "#general", "news two")
    bob.wait_for(lambda lines: room_bar(lines) == "1:#general(2)  2:#dev")
    assert bells(bob) == before, "no bell for a room's chatter"
    say(alice, "#general", "bob, have a look")
    bob.wait_for(lambda lines: room_bar(lines) == "1:#general(3!)  2:#dev")
    assert bells(bob) == before + 1
    say(alice, "#general", "bob?")
    bob.wait_for(lambda lines: room_bar(lines) == "1:#general(4!)  2:#dev")
    assert bells(bob) == before + 1, "one bell until the room is looked at"
    assert "news one" not in bob.text(), "#dev is shown"

    bob.type(b"\x1b1")  # Alt-1
    lines = bob.wait_for(lambda lines: room_bar(lines) == "1:#general  2:#dev")
    assert reversed_at(bob, BAR_ROW, "1:#general")
    assert "alice: news one" in "\n".join(lines) and "alice: bob?" in "\n".join(lines)
    bob.line("hello general")
    awaited(alice, "message", text="hello general", room="#general", **{"from": "bob"})

    bob.type(ALT_RIGHT)
    bob.wait_for(lambda lines: reversed_at(bob, BAR_ROW, "2:#dev"))
    bob.line("hello dev")
    awaited(alice, "message", text="hello dev", room="#dev", **{"from": "bob"})
    bob.type(CTRL_X + b"p")
    bob.wait_for(lambda lines: reversed_at(bob, BAR_ROW, "1:#general"))
    bob.type(CTRL_X + b"n")
    bob.wait_for(lambda lines: reversed_at(bob, BAR_ROW, "2:#dev"))

    bob.line("/part")
    awaited(alice, "leave", name="bob", room="#dev", reason="part")
    bob.wait_for(
        lambda lines: room_bar(lines) == "1:#general" and "you left #dev" in "\n".join(lines)
    )
    bob.line("/part")
    bob.wait_for("!! #general: You cannot leave")  # last_room, as the server words it


def test_plain_lines_carry_their_room_and_join_switches_the_room_typed_to(
    pyz: Path, server: tuple
) -> None:
    _, address = server
    alice = speaker(address, "alice", ["#general", "#dev"])
    say(alice, "#general", "morning")
    bot = PipedClient(client_argv(pyz, address, "bot"))
    try:
        bot.wait_line("-- you are bot on testlab")
        bot.write("/join dev\nhello devs\n")
        awaited(alice, "message", text="hello devs", room="#dev", **{"from": "bot"})
        joined = bot.wait_line("you joined #dev")
        assert re.fullmatch(STAMP + r"#dev -- you joined #dev \(2 here\)", joined), joined
        echo = bot.wait_line("bot: hello devs")
        assert re.fullmatch(STAMP + "#dev bot: hello devs", echo), echo
        say(alice, "#general", "meanwhile in general")
        line = bot.wait_line("meanwhile in general")
        assert re.fullmatch(STAMP + "#general alice: meanwhile in general", line), line
        alice.send({"type": "topic", "room": "#dev", "text": "ship it"})
        line = bot.wait_line("set the topic")
        assert re.fullmatch(STAMP + "#dev -- alice set the topic: ship it", line), line
        alice.send({"type": "part", "room": "#dev"})
        line = bot.wait_line("alice left")
        assert re.fullmatch(STAMP + "#dev -- alice left #dev", line), line
        bot.write("/rooms\n")
        bot.wait_line("rooms (2):")
        assert bot.wait_line("#dev (1)").strip() == "#dev (1): ship it"
        bot.close_stdin()
        code, out, err = bot.finish()
        assert code == 0, err
        first = [line for line in out.splitlines() if "morning" in line]
        assert len(first) == 1 and re.fullmatch(STAMP + "#general alice: morning", first[0])
    finally:
        bot.kill()


def test_the_rooms_are_kept_over_a_server_restart(pyz: Path) -> None:
    port = free_port()
    proc, address = start_server(pyz, port)
    bot = PipedClient(client_argv(pyz, address, "bot"))
    try:
        bot.wait_line("-- you are bot on testlab")
        bot.write("/join dev\n")
        bot.wait_line("you joined #dev")
        stop_server(proc, signal.SIGTERM)
        proc, again = start_server(pyz, port)
        if again != address:
            pytest.skip(f"port {port} was taken while the server was down")
        bot.wait_line("-- back online as bot")
        alice = speaker(address, "alice", ["#dev"])
        bot.write("still here\n")
        awaited(alice, "message", text="still here", room="#dev", **{"from": "bot"})
        say(alice, "#dev", "welcome back")
        line = bot.wait_line("welcome back")
        assert re.fullmatch(STAMP + "#dev alice: welcome back", line), line
    finally:
        bot.kill()
        proc.kill()
        proc.communicate(timeout=10)


class OldServer:
    """The server side of one connection, played by the test as a 4.1 server would."""

    def __init__(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT)
        self.conn = conn
        self.buffer = b""

    def send(self, frame: Dict[str, Any]) -> None:
        self.conn.sendall(json.dumps(frame).encode() + b"\n")

    def expect(self, kind: str) -> Dict[str, Any]:
        """The next frame of this type from the client (others skipped), within WAIT."""
        deadline = time.monotonic() + WAIT
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                frame: Dict[str, Any] = json.loads(line)
                if frame["type"] == kind:
                    return frame
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind!r} from the client; buffered {self.buffer!r}")
            data = self.conn.recv(65536)
            if not data:
                raise AssertionError(f"the client closed before sending {kind!r}")
            self.buffer += data


def test_a_server_without_rooms_sees_the_client_of_before(pyz: Path) -> None:
    """The client against a 4.1 server (no `rooms` in its welcome), played by the test:
    room commands say so, lines go to the one room and read as before."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    bot = PipedClient(client_argv(pyz, listener.getsockname()[:2], "bot"))
    try:
        conn, _ = listener.accept()
        old = OldServer(conn)
        old.send({"type": "hello", "app": "lanchat", "version": "4.1.0", "server": "old",
                  "online": [], "auth": "none"})  # fmt: skip
        login = old.expect("login")
        assert login["rooms"] == [], "the client says it speaks rooms, and is in none yet"
        old.send(
            {
                "type": "welcome",
                "name": "bot",
                "online": ["bot"],
                "history": [
                    {"type": "message", "id": 1, "ts": 1764000000.0, "from": "alice", "text": "hi"}
                ],
            }
        )
        bot.write("/join dev\nhello\n")
        assert bot.wait_line("this server has no rooms") == "this server has no rooms"
        say_frame = old.expect("say")
        assert say_frame == {"type": "say", "text": "hello", "ref": say_frame["ref"]}
        line = bot.wait_line("alice: hi")
        assert re.fullmatch(STAMP + "alice: hi", line), line
        conn.close()
    finally:
        bot.kill()
        listener.close()
