"""The built pyz client in a real pseudo-terminal, read with pyte, against the pyz server.

Each client runs as a person runs it, in a terminal of fixed size; the test types keys
(their sequences taken from terminfo, as the terminal would send them) and polls the
screen until the expected text shows, with a deadline. Nothing here sleeps and hopes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List

import drivers
import pytest
from conftest import ROOT, free_port
from drivers import (
    CTRL_C,
    CTRL_D,
    CTRL_U,
    ENTER,
    KEYS,
    WAIT,
    PtyClient,
    client_env,
    start_server,
    status,
)
from wire import login, start_pyz_server

from lanchat import protocol

pytestmark = pytest.mark.pyz

# The shared fixtures, made this module's own.
server = drivers.server
clients = drivers.clients


# --------------------------------------------------------------------------- chatting


def test_two_users_chat_and_see_names_and_the_online_list_change(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    alice = clients(address, "alice")
    alice.wait_for(lambda lines: "1 online" in status(lines) and "connected" in status(lines))
    assert "testlab (127.0.0.1:" in status(alice.lines())
    assert "you: alice" in status(alice.lines())
    bob = clients(address, "bob")
    bob.wait_for("you are bob on testlab")
    alice.wait_for("bob joined")
    alice.wait_for(lambda lines: "2 online" in status(lines) and "online (2)" in lines[1])
    alice.line("hello bob, how are you?")
    bob.wait_for("alice: hello bob, how are you?")
    bob.line("fine, thanks alice")
    alice.wait_for("bob: fine, thanks alice")
    alice.line("/msg bob just between us")
    bob.wait_for("[private] alice: just between us")
    alice.wait_for("[private] alice -> bob: just between us")
    sidebar = [line.rsplit("|", 1)[-1].strip() for line in alice.lines()[1:5]]
    assert sidebar[:3] == ["online (2)", "alice", "bob"], sidebar
    capture = "\n".join(["--- alice ---", alice.text(), "--- bob ---", bob.text()])
    bob.line("/quit")
    assert bob.wait_exit() == 0
    alice.wait_for("bob left")
    alice.wait_for(lambda lines: "1 online" in status(lines) and "online (1)" in lines[1])
    Path(os.environ.get("LANCHAT_CAPTURE", os.devnull)).write_text(capture, encoding="utf-8")


@pytest.mark.parametrize(
    ("how", "keys"),
    [("/quit", b"/quit\r"), ("Ctrl-C", CTRL_C), ("Ctrl-D", CTRL_D)],
)
def test_leaving_exits_0_sends_quit_and_restores_the_terminal(
    server: tuple, clients: Callable[..., PtyClient], how: str, keys: bytes
) -> None:
    _, address = server
    watcher, _ = login(address, "watcher")
    client = clients(address, "leaver")
    client.wait_for("you are leaver")
    watcher.expect("join", name="leaver")
    client.type(keys)
    assert client.wait_exit() == 0, how
    assert client.terminal_restored(), how
    watcher.expect("leave", name="leaver", reason="quit")


def test_ctrl_c_leaves_even_if_started_with_sigint_ignored(
    pyz: Path, server: tuple, scripts: Callable[..., PtyClient]
) -> None:
    _, (host, port) = server
    client = scripts(  # as a shell starts a background job: SIGINT ignored
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"argv = [sys.executable, {str(pyz)!r}, 'client', '--name', 'ignorer',\n"
        f"        '--host', {host!r}, '--port', '{port}']\n"
        "os.execv(sys.executable, argv)\n"
    )
    client.wait_for("you are ignorer")
    client.type(CTRL_C)
    assert client.wait_exit() == 0
    assert client.terminal_restored()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_leaves_cleanly_and_restores_the_terminal(
    server: tuple, clients: Callable[..., PtyClient], signum: int
) -> None:
    _, address = server
    watcher, _ = login(address, "watcher")
    client = clients(address, "signalled")
    client.wait_for("you are signalled")
    watcher.expect("join", name="signalled")
    client.proc.kill(signum)
    assert client.wait_exit() == 128 + signum
    assert client.terminal_restored()
    watcher.expect("leave", name="signalled", reason="quit")


def test_a_taken_name_is_replaced_in_the_window(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    holder, _ = login(address, "bob")
    client = clients(address, "bob")
    lines = client.wait_for("name: bob2")
    assert "online already" in "\n".join(lines)
    assert "choose a name" in status(lines)
    client.type(CTRL_U)
    client.line("robert")
    client.wait_for(lambda lines: "you: robert" in status(lines) and "connected" in status(lines))
    holder.expect("join", name="robert")


def test_cjk_and_emoji_typed_arrive_intact(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    reader, _ = login(address, "reader")
    client = clients(address, "李雷")
    client.wait_for("you are 李雷")
    reader.expect("join", name="李雷")
    text = "你好，世界 😀 👨\u200d👩\u200d👧 Ελλάδα हिन्दी"
    client.line(text)
    message = reader.expect("message")
    assert message["text"] == text
    assert message["from"] == "李雷"
    client.wait_for("李雷: 你好，世界")


def test_editing_keys_from_terminfo_edit_the_line(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    reader, _ = login(address, "reader")
    client = clients(address, "editor")
    client.wait_for("you are editor")
    reader.expect("join")
    client.type("wrld")
    client.type(KEYS["left"] * 3)
    client.type("o")
    client.type(KEYS["home"])
    client.type("hello ")
    client.type(KEYS["end"])
    client.type("!!")
    client.type(KEYS["backspace"])
    client.type(KEYS["ctrl_left"])
    client.type("big ")
    client.type(ENTER)
    assert reader.expect("message")["text"] == "hello big world!"
    client.type(KEYS["up"])
    client.wait_for("> hello big world!")


def test_a_resize_redraws_the_window(server: tuple, clients: Callable[..., PtyClient]) -> None:
    _, address = server
    client = clients(address, "stretch", rows=24, cols=80)
    client.wait_for("you are stretch")
    client.resize(30, 110)
    lines = client.wait_for(lambda lines: lines[29].startswith(">") and "|online (1)" in lines[1])
    assert "you: stretch" in lines[0]
    client.resize(5, 19)
    client.wait_for("lanchat needs 20x6")
    client.resize(12, 40)
    lines = client.wait_for(lambda lines: lines[11].startswith(">") and "stretch" in lines[0])
    assert not any("online (1)" in line for line in lines[1:]), "narrow: no side list"
    client.line("still here")
    client.wait_for("stretch: still here")


def test_server_restart_reconnects_and_sends_what_was_typed_meanwhile(
    pyz: Path, clients: Callable[..., PtyClient]
) -> None:
    proc, address = start_server(pyz, free_port())
    try:
        client = clients(address, "patient")
        client.wait_for("you are patient")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
        client.wait_for(lambda lines: "offline" in status(lines))
        client.line("typed while away")
        client.wait_for("patient: typed while away (pending)")
        proc, again = start_server(pyz, address[1])
        assert again == address, "the server came back on another port"
        client.wait_for("back online as patient")
        client.wait_for(lambda lines: "pending" not in "\n".join(lines))
        _reader, welcome = login(address, "reader")
        said = [m["text"] for m in welcome["history"] if m["from"] == "patient"]
        assert said == ["typed while away"]
    finally:
        proc.kill()
        proc.communicate(timeout=10)


# --------------------------------------------------------------------------- terminals


def test_no_color_and_colourless_terminals_draw_names_without_colour(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server

    def name_colours(client: PtyClient) -> set:
        with client._lock:
            for y, line in enumerate(client.screen.display):
                if "alice: hi" in line:
                    x = line.index("alice")
                    return {client.screen.buffer[y][x + i].fg for i in range(5)}
        raise AssertionError("no line from alice")

    coloured = clients(address, "seer")
    no_color = clients(address, "mono", env=client_env(NO_COLOR="1"))
    vt100 = clients(address, "vt", env=client_env(TERM="vt100"))
    for client, name in ((coloured, "seer"), (no_color, "mono"), (vt100, "vt")):
        client.wait_for(f"you are {name}")
    sender, _ = login(address, "alice")
    sender.send(protocol.say("hi"))
    for client in (coloured, no_color, vt100):
        client.wait_for("alice: hi")
    assert name_colours(coloured) != {"default"}
    assert name_colours(no_color) == {"default"}
    assert name_colours(vt100) == {"default"}, "a terminal without colours"


def test_an_unknown_terminal_falls_back_to_plain_mode(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    client = clients(address, "oddterm", env=client_env(TERM="no-such-terminal-xyz"))
    client.wait_for("you are oddterm")
    assert "is unknown here; using plain mode" in client.output.decode()
    client.line("/quit")
    assert client.wait_exit() == 0


def test_nothing_there_is_one_line_and_exit_1(clients: Callable[..., PtyClient]) -> None:
    client = clients(("127.0.0.1", free_port()), "nobody")
    assert client.wait_exit() == 1
    lines = client.output.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("lanchat: cannot connect to 127.0.0.1:")
    assert "lanchat.pyz server" in lines[0]


@pytest.fixture
def scripts() -> Iterator[Callable[..., PtyClient]]:
    """Run Python code of the source tree in a pty (to stub what must not leave this host)."""
    started: List[PtyClient] = []

    def start(code: str, **kwargs: object) -> PtyClient:
        env = client_env(PYTHONPATH=str(ROOT))
        client = PtyClient([sys.executable, "-c", code], env=env, **kwargs)  # type: ignore[arg-type]
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def test_a_crash_inside_the_window_still_restores_the_terminal(
    scripts: Callable[..., PtyClient],
) -> None:
    client = scripts(
        "from lanchat.client_curses import Terminal\n"
        "with Terminal() as terminal:\n"
        "    terminal.screen.addstr(0, 0, 'drawn')\n"
        "    terminal.screen.refresh()\n"
        "    raise RuntimeError('boom')\n"
    )
    assert client.wait_exit() == 1
    assert client.terminal_restored()
    assert b"RuntimeError: boom" in client.output


def test_several_servers_are_offered_in_a_picker(
    pyz: Path, scripts: Callable[..., PtyClient]
) -> None:
    first, first_address = start_server(pyz, free_port())
    second, second_address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
        "--log-level", "warning", "--name", "otherlab",
    )  # fmt: skip
    try:
        found = [
            ("testlab", first_address[1], protocol.VERSION),
            ("ancient", 9, "3.9.9"),
            ("otherlab", second_address[1], protocol.VERSION),
        ]
        client = scripts(
            "import sys\n"
            "from lanchat.chat import finder\n"
            "found = [finder.ServerInfo(name=n, host='127.0.0.1', port=p, version=v)\n"
            f"         for n, p, v in {found!r}]\n"
            "finder.scan_host = lambda *args, **kwargs: found  # no probe leaves the test\n"
            "from lanchat.__main__ import main\n"
            "sys.exit(main(['client', '--name', 'picky', '--host', '127.0.0.1']))\n"
        )
        lines = client.wait_for("several servers found")
        assert lines[1].startswith("> testlab (127.0.0.1:")
        assert lines[2].startswith("  otherlab (127.0.0.1:")
        assert lines[3].startswith("  ancient (127.0.0.1:9) - incompatible: version 3.9.9")
        client.type(KEYS["down"] * 2)  # the incompatible one cannot be chosen
        client.wait_for(lambda lines: lines[2].startswith("> otherlab"))
        client.type(ENTER)
        client.wait_for(lambda lines: "otherlab" in status(lines) and "connected" in status(lines))
        client.line("/quit")
        assert client.wait_exit() == 0
    finally:
        for proc in (first, second):
            proc.kill()
            proc.communicate(timeout=10)


def test_page_up_scrolls_back_with_a_more_below_mark(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    talker, _ = login(address, "talker")
    client = clients(address, "reader", rows=12, cols=60)
    client.wait_for("you are reader")
    talker.expect("join")
    for number in range(1, 31):
        talker.send(protocol.say(f"line {number:02}"))
        talker.expect("message")
    client.wait_for("talker: line 30")
    client.type(KEYS["ppage"])
    lines = client.wait_for("more below")
    assert "line 30" not in "\n".join(lines)
    client.type(KEYS["npage"])
    lines = client.wait_for(lambda lines: "more below" not in "\n".join(lines))
    assert "talker: line 30" in "\n".join(lines)


def test_a_private_message_rings_the_bell(server: tuple, clients: Callable[..., PtyClient]) -> None:
    _, address = server
    sender, _ = login(address, "sender")
    client = clients(address, "hearer")
    client.wait_for("you are hearer")
    sender.expect("join")
    bells = client.output.count(b"\x07")
    sender.send(protocol.say("psst", to="hearer"))
    client.wait_for("[private] sender: psst")
    deadline = time.monotonic() + WAIT
    while client.output.count(b"\x07") == bells:
        assert time.monotonic() < deadline, "no bell"
        time.sleep(0.02)
