"""The built pyz client as a newcomer meets it: Tab completion, Alt-B/Alt-F and Ctrl-L in
a real pty (pyte), the words of the status bar, the name colours, a full server, and in
plain mode through pipes /help, a shutdown notice and the reconnect wait."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
from conftest import free_port
from drivers import WAIT, PipedClient, PtyClient, client_argv, status, wait_until
from wire import login, start_pyz_server

from lanchat import protocol
from lanchat.chat.colours import preferred_colour

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
TAB, CTRL_L, CTRL_U, ENTER = b"\t", b"\x0c", b"\x15", b"\r"
ALT_B, ALT_F = b"\x1bb", b"\x1bf"  # what a terminal sends for Alt-B and Alt-F


def start_server(pyz: Path, *extra: str, port: int = 0) -> Tuple[subprocess.Popen, Address]:
    return start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(port or free_port()), "--no-discovery",
        "--log-level", "warning", "--name", "vm", *extra,
    )  # fmt: skip


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


@pytest.fixture
def servers(pyz: Path) -> Iterator[Callable[..., Tuple[subprocess.Popen, Address]]]:
    """Start pyz servers named vm; every one is killed at the end of the test."""
    started: List[subprocess.Popen] = []

    def start(*extra: str, port: int = 0) -> Tuple[subprocess.Popen, Address]:
        proc, address = start_server(pyz, *extra, port=port)
        started.append(proc)
        return proc, address

    yield start
    for proc in started:
        stop(proc)


@pytest.fixture
def window(pyz: Path) -> Iterator[Callable[..., PtyClient]]:
    """Start curses clients in ptys; every one is killed at the end of the test."""
    started: List[PtyClient] = []

    def start(address: Address, name: str, *extra: str) -> PtyClient:
        argv = [sys.executable, str(pyz), "client", "--name", name, "--host", address[0]]
        client = PtyClient([*argv, "--port", str(address[1]), *extra])
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def typed(client: PtyClient) -> str:
    """The input row up to the cursor: what completion put there, trailing spaces too."""
    with client._lock:
        row, col = client.screen.cursor.y, client.screen.cursor.x
        return client.screen.display[row][:col]


def wait_typed(client: PtyClient, expected: str) -> None:
    deadline = time.monotonic() + WAIT
    while typed(client) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"input {typed(client)!r}, not {expected!r}:\n" + client.text())
        time.sleep(0.02)


# --------------------------------------------------------------------------- keys


def test_tab_completes_the_common_part_cycles_and_knows_at_commands_and_msg(
    servers: Callable, window: Callable[..., PtyClient]
) -> None:
    _, address = servers()
    others = {name: login(address, name)[0] for name in ("bob", "bobby", "carol", "carol2")}
    seer = window(address, "seer")
    seer.wait_for("online (5)")
    for keys, shown in (
        (b"bo" + TAB, "> bob"),
        (TAB, "> bob: "),
        (TAB, "> bobby: "),
        (TAB, "> bob: "),
        (CTRL_U + b"carol" + TAB, "> carol: "),
        (TAB, "> carol2: "),
        (CTRL_U + b"@bobb" + TAB, "> @bobby "),
        (CTRL_U + b"/ms" + TAB, "> /msg "),
        (b"bobb" + TAB, "> /msg bobby "),
    ):
        seer.type(keys)
        wait_typed(seer, shown)
    seer.line("just you")
    private = others["bobby"].recv_until("message")[-1]
    assert (private["from"], private["to"], private["text"]) == ("seer", "bobby", "just you")


def test_alt_b_and_alt_f_move_by_word(servers: Callable, window: Callable[..., PtyClient]) -> None:
    _, address = servers()
    seer = window(address, "seer")
    seer.wait_for("you are seer")
    seer.type("one three")
    seer.type(ALT_B)
    seer.type("two ")
    wait_typed(seer, "> one two ")
    seer.type(ALT_F)
    seer.type("!")
    wait_typed(seer, "> one two three!")


def test_ctrl_l_draws_the_window_again_after_another_program_wrote_over_it(
    servers: Callable, window: Callable[..., PtyClient]
) -> None:
    _, address = servers()
    seer = window(address, "seer")
    seer.wait_for(lambda lines: "connected" in status(lines) and "you are seer" in "".join(lines))
    # As `write` or a background job does: straight onto the terminal the client draws on.
    with open(f"/proc/{seer.proc.pid}/fd/1", "wb", buffering=0) as tty:
        tty.write(b"\x1b[2J\x1b[Hscribbled over")
    seer.wait_for(lambda lines: "scribbled over" in lines[0] and "connected" not in lines[0])
    seer.type(CTRL_L)
    lines = seer.wait_for(lambda lines: "connected" in status(lines))
    assert "scribbled" not in "\n".join(lines)
    assert "you are seer" in "\n".join(lines)


# --------------------------------------------------------------------------- words


def test_the_status_bar_names_nobody_while_a_name_is_refused_and_no_count_offline(
    servers: Callable, window: Callable[..., PtyClient]
) -> None:
    proc, address = servers()
    login(address, "bob")
    newcomer = window(address, "BOB")
    lines = newcomer.wait_for("choose a name")
    assert "'bob' is online already" in "\n".join(lines), "the one who is online"
    assert "BOB" not in status(lines) and "online" not in status(lines), status(lines)
    newcomer.type(CTRL_U + b"robert" + ENTER)
    newcomer.wait_for(lambda lines: "you: robert | 2 online | connected" in status(lines))
    proc.kill()
    lines = newcomer.wait_for(lambda lines: "offline, reconnecting" in status(lines))
    assert "online" not in status(lines).replace("offline", ""), status(lines)
    assert "|last seen (2)" in lines[1]


def test_a_full_server_is_said_once_and_the_status_bar_counts_down(
    servers: Callable, window: Callable[..., PtyClient], tmp_path: Path
) -> None:
    _, address = servers("--max-clients", "1")
    holder, _ = login(address, "holder")
    log_file = tmp_path / "client.log"
    seer = window(address, "seer", "--log-file", str(log_file))

    def refusals() -> int:
        text = log_file.read_text(encoding="utf-8") if log_file.exists() else ""
        return text.count("; next attempt in")

    wait_until(lambda: refusals() >= 4, "four refusals in a row")
    counting = re.compile(r"server full, retrying in \d+ s")
    lines = seer.wait_for(lambda lines: counting.search(status(lines)) is not None)
    assert "\n".join(lines).count("is full") == 1, "\n".join(lines)
    holder.close()
    lines = seer.wait_for("you are seer on vm")
    assert "\n".join(lines).count("is full") == 1, "\n".join(lines)


def test_people_online_get_distinct_colours_though_their_names_prefer_one(
    servers: Callable, window: Callable[..., PtyClient]
) -> None:
    _, address = servers()
    names = [f"user{n}" for n in range(20)]
    one = names[0]
    other = next(n for n in names[1:] if preferred_colour(n) == preferred_colour(one))
    seer = window(address, "seer")
    seer.wait_for("you are seer")
    for name in (one, other):
        client, _ = login(address, name)
        client.send(protocol.say(f"hi from {name}"))
        seer.wait_for(f"{name}: hi from {name}")

    def colour_of(name: str) -> str:
        with seer._lock:
            for y, line in enumerate(seer.screen.display):
                if f"{name}: hi" in line:
                    x = line.index(f"{name}: hi")
                    return str(seer.screen.buffer[y][x].fg)
        raise AssertionError(f"no line from {name}")

    assert colour_of(one) != colour_of(other)
    assert "default" not in (colour_of(one), colour_of(other))


# --------------------------------------------------------------------------- plain mode


def test_plain_help_lists_no_keys_and_a_shutdown_is_said_once(pyz: Path, servers: Callable) -> None:
    proc, address = servers()
    bot = PipedClient(client_argv(pyz, address, "bot"))
    try:
        bot.wait_line("-- you are bot on vm")
        bot.write("/help\n/who\n")
        last = bot.wait_line("online (1): bot")
        first = bot.wait_line("Commands:")
        help_lines = bot._lines[bot._lines.index(first) : bot._lines.index(last)]
        assert any("/msg NAME text" in line for line in help_lines)
        for key in ("Keys", "Tab", "Ctrl", "PgUp", "Esc"):
            assert not any(key in line for line in help_lines), help_lines
        proc.send_signal(signal.SIGTERM)
        line = bot.wait_line("shutting down")
        assert line.endswith("-- vm is shutting down."), line
        assert line.count("shutting down") == 1, line
    finally:
        bot.kill()


def test_the_reconnect_wait_grows_to_10_seconds_and_no_more(
    pyz: Path, servers: Callable, tmp_path: Path
) -> None:
    proc, address = servers()
    log_file = tmp_path / "client.log"
    bot = PipedClient(client_argv(pyz, address, "bot", "--log-file", str(log_file)))
    try:
        bot.wait_line("-- you are bot on vm")
        proc.kill()

        def waits() -> List[float]:
            text = log_file.read_text(encoding="utf-8")
            return [float(w) for w in re.findall(r"next attempt in ([0-9.]+) s", text)]

        # 0.25, 0.5, 1, 2, 4, 8, then the most: 16 s (and up to 20 % more) to get there
        wait_until(lambda: len(waits()) >= 7, "seven reconnect waits", timeout=60)
        assert max(waits()) <= 10.0, waits()
        assert waits()[6] >= 9.9, f"the wait reaches its most: {waits()}"
    finally:
        bot.kill()
