"""`lanchat.pyz server --console` in a real pseudo-terminal, read with pyte.

The console is the built pyz's server, run as an operator runs it; raw clients
(`tests/wire.py`) log in over real sockets from other loopback addresses, and the test
types commands on the console and polls its screen and the clients, with deadlines.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import ptyprocess
import pytest
from conftest import free_port
from drivers import CTRL_C, KEYS, WAIT, PtyClient, client_env
from wire import Frame, RawClient, login_frame

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
LISTENING = re.compile(r"listening on (127\.0\.0\.1):(\d+)")


class Console:
    """The console's pty and the address its server listens on."""

    def __init__(self, pyz: Path, *options: str) -> None:
        argv = [sys.executable, str(pyz), "server", "--console", "--bind", "127.0.0.1",
                "--port", str(free_port()), "--no-discovery", "--name", "lab",
                *options]  # fmt: skip
        self.pty = PtyClient(argv, rows=30, cols=120, env=client_env())
        lines = self.pty.wait_for(lambda rows: bool(LISTENING.search(rows[0])))
        found = LISTENING.search(lines[0])
        assert found is not None
        self.address: Address = (found.group(1), int(found.group(2)))
        self.pty.wait_for("online (0)")

    def command(self, line: str) -> None:
        """Type a command line and Enter; wait until the log shows it was run."""
        self.pty.line(line)
        self.pty.wait_for(f"> {line}")

    def online_row(self, name: str) -> str:
        """The online list's row of that name ("" if there is none)."""
        for row in self.pty.lines()[1:]:
            if "── log" in row:
                break
            left = row.split("│")[0]
            if left.split()[:1] == [name]:
                return left
        return ""


@pytest.fixture
def consoles(pyz: Path) -> Iterator[Callable[..., Console]]:
    started: List[Console] = []

    def start(*options: str) -> Console:
        console = Console(pyz, *options)
        started.append(console)
        return console

    yield start
    for console in started:
        console.pty.close()


def join(address: Address, name: str, source: str, version: str = "4.3.0") -> RawClient:
    """A raw client logged in from a loopback address of its own, speaking rooms."""
    client = RawClient(address, source=source)
    client.expect("hello")
    client.send(login_frame(name, version=version, rooms=[]))
    client.expect("welcome", name=name)
    client.expect("joined", room="#general")
    return client


def closing_error(client: RawClient) -> Frame:
    """The last error the server sent the client before it closed the connection."""
    errors = [frame for frame in client.expect_closed(WAIT) if frame["type"] == "error"]
    assert errors, "closed without an error"
    return errors[-1]


# --------------------------------------------------------------------------- what it shows


def test_the_console_shows_the_log_the_online_list_with_addresses_and_the_rooms(
    consoles: Callable[..., Console],
) -> None:
    console = consoles()
    alice = join(console.address, "alice", "127.0.0.2")
    console.pty.wait_for("login alice 127.0.0.2:")  # the server's log record
    console.pty.wait_for(lambda rows: "127.0.0.2" in console.online_row("alice"))
    bob = join(console.address, "bob", "127.0.0.3")
    bob.send({"type": "join", "room": "#dev"})
    bob.expect("joined", room="#dev")
    bob.send({"type": "topic", "room": "#dev", "text": "release on Friday"})
    bob.expect("topic", room="#dev")
    rooms = ["online (2)", "rooms (2)", "#dev      1  release on Friday", "#general  2"]
    console.pty.wait_for(lambda rows: all(text in "\n".join(rows) for text in rooms))
    console.pty.wait_for(lambda rows: "127.0.0.3  #general #dev" in console.online_row("bob"))
    alice.send({"type": "quit"})
    console.pty.wait_for(lambda rows: console.online_row("alice") == "")
    console.pty.wait_for("leave alice 127.0.0.2:")


# --------------------------------------------------------------------------- operator commands


def test_kick_closes_the_client_with_error_kicked(consoles: Callable[..., Console]) -> None:
    console = consoles()
    bob = join(console.address, "bob", "127.0.0.2")
    console.pty.wait_for(lambda rows: console.online_row("bob") != "")
    console.command("/kick bob stop flooding")
    error = closing_error(bob)
    assert (error["code"], error.get("by"), error.get("reason")) == (
        "kicked",
        "console",
        "stop flooding",
    )
    console.pty.wait_for(lambda rows: console.online_row("bob") == "")


def test_ban_closes_the_client_with_error_banned_and_keeps_it_out(
    consoles: Callable[..., Console],
) -> None:
    console = consoles()
    bob = join(console.address, "bob", "127.0.0.2")
    console.pty.wait_for(lambda rows: console.online_row("bob") != "")
    console.command("/ban bob 2h spam")
    error = closing_error(bob)
    assert (error["code"], error.get("reason")) == ("banned", "spam")
    assert "until" in error
    again = RawClient(console.address, source="127.0.0.2")
    again.expect("hello")
    again.send(login_frame("bob", version="4.3.0"))
    assert any(f.get("code") == "banned" for f in again.expect_closed(WAIT))
    console.command("/bans")
    console.pty.wait_for("bans (1):")


def test_a_refused_command_shows_the_servers_error(consoles: Callable[..., Console]) -> None:
    console = consoles()
    console.command("/kick nobody")
    console.pty.wait_for("no_such_user")


def test_say_reaches_every_client_as_a_notice(consoles: Callable[..., Console]) -> None:
    console = consoles()
    alice = join(console.address, "alice", "127.0.0.2")
    old = join(console.address, "old", "127.0.0.3", version="4.0.0")
    console.pty.wait_for(lambda rows: console.online_row("old") != "")
    console.command("/say the server restarts at noon")
    notice = alice.recv_until("notice")[-1]  # after old's join
    assert notice["text"] == "the server restarts at noon"
    message = old.recv_until("message")[-1]  # a 4.0 client reads a notice as the server's message
    assert (message["from"], message["text"]) == ("*", "the server restarts at noon")


# --------------------------------------------------------------------------- keys


def test_keys_from_terminfo_scroll_the_log_and_recall_and_edit_lines(
    consoles: Callable[..., Console],
) -> None:
    console = consoles()
    for _ in range(3):
        console.command("/help")  # more lines than the log pane holds
    # "> /help" is on screen after the first: a command shown once says all three ran
    console.command("/bans")
    console.pty.type(KEYS["ppage"])
    console.pty.wait_for("scrolled back")
    console.pty.type(KEYS["npage"])
    console.pty.type(KEYS["npage"])
    console.pty.wait_for(lambda rows: "scrolled back" not in "\n".join(rows))
    console.pty.type(KEYS["ppage"])
    console.pty.wait_for("scrolled back")
    console.pty.type(b"\x1b")  # Esc: the newest lines
    console.pty.wait_for(lambda rows: "scrolled back" not in "\n".join(rows))
    console.pty.type(KEYS["up"])
    console.pty.wait_for(lambda rows: rows[-1].rstrip() == "> /bans")
    console.pty.type(KEYS["up"])
    console.pty.wait_for(lambda rows: rows[-1].rstrip() == "> /help")
    console.pty.type(KEYS["backspace"] + KEYS["left"] + KEYS["delete"] + b"x")
    console.pty.wait_for(lambda rows: rows[-1].rstrip() == "> /hex")


def test_a_resize_draws_the_console_at_the_new_size(consoles: Callable[..., Console]) -> None:
    console = consoles()
    console.pty.resize(40, 150)
    rule = "── log " + "─" * (150 - len("── log "))
    console.pty.wait_for(lambda rows: rule in rows and rows[-1].startswith("> "))


# --------------------------------------------------------------------------- stopping


def test_shutdown_stops_the_server_with_its_message_and_exit_0(
    consoles: Callable[..., Console],
) -> None:
    console = consoles()
    alice = join(console.address, "alice", "127.0.0.2")
    console.pty.wait_for(lambda rows: console.online_row("alice") != "")
    console.pty.line("/shutdown bye for now")
    frames = alice.expect_closed(WAIT)
    assert frames[-1] == {"type": "shutdown", "message": "bye for now"}
    assert console.pty.wait_exit() == 0
    assert console.pty.terminal_restored()


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM", "SIGHUP"])
def test_ctrl_c_and_signals_stop_the_server_cleanly_and_restore_the_terminal(
    consoles: Callable[..., Console], how: str
) -> None:
    console = consoles()
    alice = join(console.address, "alice", "127.0.0.2")
    console.pty.wait_for(lambda rows: console.online_row("alice") != "")
    if how == "Ctrl-C":
        console.pty.type(CTRL_C)
    else:
        console.pty.proc.kill(getattr(signal, how))
    frames = alice.expect_closed(WAIT)
    assert frames[-1]["type"] == "shutdown"
    assert console.pty.wait_exit() == 0
    assert console.pty.terminal_restored()


def test_console_without_a_terminal_is_one_line_and_exit_2(pyz: Path) -> None:
    argv = [sys.executable, str(pyz), "server", "--console", "--bind", "127.0.0.1",
            "--port", str(free_port()), "--no-discovery"]  # fmt: skip
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--console" in done.stderr and "terminal" in done.stderr


def test_console_on_an_unknown_terminal_is_one_line_and_exit_2(pyz: Path) -> None:
    argv = [sys.executable, str(pyz), "server", "--console", "--bind", "127.0.0.1",
            "--port", str(free_port()), "--no-discovery"]  # fmt: skip
    pty = PtyClient(argv, env=client_env(TERM="no-such-terminal"))
    try:
        assert pty.wait_exit() == 2
        said = pty.output.decode("utf-8", "replace").strip()
        assert said.startswith("lanchat: --console: ") and "TERM='no-such-terminal'" in said
        assert len(said.splitlines()) == 1
    finally:
        pty.close()


def test_a_terminal_nobody_reads_never_slows_the_server(pyz: Path) -> None:
    """A console whose terminal takes nothing (frozen with Ctrl-S, or a stuck ssh link)
    blocks on its own writes; the server logs and serves on: its log records go to a
    buffer, never to the terminal. A server that logged to the terminal would stop at
    the first record that did not fit."""
    port = free_port()
    argv = [sys.executable, str(pyz), "server", "--console", "--bind", "127.0.0.1",
            "--port", str(port), "--no-discovery", "--no-history"]  # fmt: skip
    proc = ptyprocess.PtyProcess.spawn(argv, dimensions=(200, 400), env=client_env())
    try:
        drawn = b""
        deadline = time.monotonic() + WAIT
        while b"online (0)" not in drawn:
            assert time.monotonic() < deadline, f"the console never showed: {drawn!r}"
            drawn += proc.read(65536)
        # From now on nobody reads the terminal, and every login is two log lines.
        for number in range(150):
            client = RawClient(("127.0.0.1", port), source="127.0.0.2")
            client.expect("hello")
            client.send(login_frame(f"user{number}"))
            client.expect("welcome")
            client.send({"type": "say", "text": "x" * 300})
            client.recv_until("message")  # after the leave of the one before, maybe
            client.close()
    finally:
        proc.terminate(force=True)
        proc.close(force=True)
