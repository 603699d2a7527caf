"""Plain mode through pipes, and how the client finds (or fails to find) its server."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from conftest import ROOT, free_port
from drivers import WAIT, PipedClient, client_argv
from wire import login, start_pyz_server

from lanchat import protocol
from lanchat.chat import app, finder
from lanchat.chat.finder import ServerInfo
from lanchat.chat.model import Entry
from lanchat.chat.plain import format_entry
from lanchat.chat.view import clock

Address = Tuple[str, int]


@pytest.fixture
def server(pyz: Path) -> Iterator[Address]:
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
        "--log-level", "warning",
    )  # fmt: skip
    try:
        yield address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


# --------------------------------------------------------------------------- pipes


@pytest.mark.pyz
def test_plain_mode_through_pipes_prints_lines_and_sends_stdin(pyz: Path, server: Address) -> None:
    alice, _ = login(server, "alice")
    bot = PipedClient(client_argv(pyz, server, "bot"))
    try:
        bot.wait_line("-- you are bot on")
        alice.expect("join", name="bot")
        alice.send(protocol.say("hi bot"))
        line = bot.wait_line("alice: hi bot")
        assert line[:5].replace(":", "").isdigit() and line[5:] == " #general alice: hi bot"
        bot.write("hello from a pipe\n/msg alice just for you\n/me beeps\n")
        assert alice.expect("message", text="hi bot")
        assert alice.expect("message")["text"] == "hello from a pipe"
        private = alice.expect("message")
        assert (private["text"], private["to"]) == ("just for you", "alice")
        assert alice.expect("message")["text"] == "/me beeps"
        bot.close_stdin()
        code, out, err = bot.finish()
        assert code == 0, err
        assert " bot: hello from a pipe" in out
        assert "* bot beeps" in out
        alice.expect("leave", name="bot", reason="quit")
    finally:
        bot.kill()


@pytest.mark.pyz
def test_plain_mode_sends_everything_piped_before_it_leaves(pyz: Path, server: Address) -> None:
    alice, _ = login(server, "alice")
    lines = [f"line {n} 你好" for n in range(10)]
    proc = subprocess.run(
        client_argv(pyz, server, "burst", "--plain"),
        input="\n".join(lines).encode("utf-8"),  # no newline after the last: still sent
        capture_output=True,
        timeout=WAIT,
    )
    assert proc.returncode == 0, proc.stderr
    received = [f["text"] for f in alice.recv_until("leave") if f["type"] == "message"]
    assert received == lines


@pytest.mark.pyz
def test_piped_commands_run_in_order_after_the_login(pyz: Path, server: Address) -> None:
    login(server, "alice")
    proc = subprocess.run(
        client_argv(pyz, server, "early"), input=b"/who\n", capture_output=True, timeout=WAIT
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert "-- you are early on" in lines[0]
    assert lines[1] == "#general online (2): alice, early"


@pytest.mark.pyz
def test_plain_mode_with_a_taken_name_says_so_and_exits_1(pyz: Path, server: Address) -> None:
    login(server, "taken")
    proc = subprocess.run(
        client_argv(pyz, server, "taken"), input=b"", capture_output=True, timeout=WAIT
    )
    assert proc.returncode == 1
    assert "online already" in proc.stdout.decode()
    assert "pass another --name" in proc.stdout.decode()


@pytest.mark.pyz
def test_nothing_listening_is_one_line_and_exit_1(pyz: Path) -> None:
    proc = subprocess.run(
        client_argv(pyz, ("127.0.0.1", free_port()), "x"),
        input=b"",
        capture_output=True,
        timeout=WAIT,
    )
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "cannot connect" in lines[0] and "lanchat.pyz server" in lines[0]


def _fake_server(version: str) -> Tuple[socket.socket, threading.Thread]:
    """A listener that greets each connection with a hello of another version."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(WAIT)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            hello = dict(protocol.hello("future", []), version=version)
            conn.sendall(protocol.encode(hello))
            conn.settimeout(WAIT)
            try:
                conn.recv(100)  # until the client goes
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.pyz
def test_an_incompatible_server_is_one_line_with_both_versions(pyz: Path) -> None:
    listener, thread = _fake_server("5.1.0")
    try:
        proc = subprocess.run(
            client_argv(pyz, listener.getsockname(), "x"),
            input=b"",
            capture_output=True,
            timeout=WAIT,
        )
    finally:
        listener.close()
        thread.join(WAIT)
    assert proc.returncode == 1
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "5.1.0" in lines[0] and protocol.VERSION in lines[0]


def test_plain_mode_runs_on_a_python_without_curses(server: Address) -> None:
    """The server, plain mode and discovery never import curses (Windows has none)."""
    code = (
        "import sys; sys.modules['curses'] = None; sys.modules['_curses'] = None\n"
        "from lanchat.__main__ import main\n"
        "import lanchat.server, lanchat.chat.finder\n"
        f"sys.exit(main(['client', '--name', 'nocurses', '--host', '127.0.0.1', "
        f"'--port', '{server[1]}']))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=b"from windows\n",
        capture_output=True,
        timeout=WAIT,
        env=env,
        cwd=str(ROOT),
    )
    assert proc.returncode == 0, proc.stderr
    assert "nocurses: from windows" in proc.stdout.decode()


# --------------------------------------------------------------------------- lines


def test_format_entry_is_hh_mm_name_text() -> None:
    ts = 1764000000.0
    hhmm = clock(ts)
    assert format_entry(Entry("message", "hi", 1, ts, "alice")) == f"{hhmm} alice: hi"
    assert format_entry(Entry("action", "waves", 1, ts, "alice")) == f"{hhmm} * alice waves"
    private = Entry("message", "psst", 1, ts, "alice", to="bob")
    assert format_entry(private) == f"{hhmm} alice -> bob (private): psst"
    assert format_entry(Entry("system", "bob joined", 1, ts)) == f"{hhmm} -- bob joined"
    assert format_entry(Entry("info", "usage: /msg NAME text", 1)) == "usage: /msg NAME text"


# --------------------------------------------------------------------------- finding


def _args(**given: object) -> argparse.Namespace:
    values = {"name": "x", "host": None, "port": None, "server": None, "plain": True,
              "log_file": None}  # fmt: skip
    values.update(given)
    return argparse.Namespace(**values)


def _info(name: str, port: int, version: str = protocol.VERSION) -> ServerInfo:
    return ServerInfo(name=name, host="127.0.0.1", port=port, version=version)


def test_no_server_anywhere_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(finder, "find_servers", lambda *a, **k: [])
    assert app.run(_args()) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("lanchat: no server found; start one with '")
    assert " server' or pass --host" in err[0]


def test_several_servers_in_plain_mode_are_listed_with_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = [_info("lab", 42069), _info("den", 42070), _info("old", 42071, "3.2.0")]
    monkeypatch.setattr(finder, "find_servers", lambda *a, **k: found)
    assert app.run(_args()) == 1
    err = capsys.readouterr().err
    assert "several servers found; pass --server NAME or --host" in err
    assert "lab (127.0.0.1:42069)" in err and "den (127.0.0.1:42070)" in err
    assert "old (127.0.0.1:42071) - incompatible: version 3.2.0" in err


def test_server_picks_one_found_server_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [_info("lab", 42069), _info("Den", 42070)]
    monkeypatch.setattr(finder, "find_servers", lambda *a, **k: found)
    assert app._choose(_args(server="den")) == (("127.0.0.1", 42070), [found[1]])


def test_only_incompatible_servers_is_one_line_with_both_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(finder, "scan_host", lambda *a, **k: [_info("old", 42069, "3.0.1")])
    with pytest.raises(app.Failure) as failure:
        app.find_candidates(_args(host="10.9.9.9"))
    assert "3.0.1" in str(failure.value) and protocol.VERSION in str(failure.value)


def test_host_without_port_scans_that_host(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: List[str] = []

    def scan(host: str, *args: object, **kwargs: object) -> List[ServerInfo]:
        asked.append(host)
        return [_info("lab", 42075)]

    monkeypatch.setattr(finder, "scan_host", scan)
    assert app._choose(_args(host="127.0.0.1")) == (("127.0.0.1", 42075), [_info("lab", 42075)])
    assert asked == ["127.0.0.1"]


def test_host_and_port_connect_directly_without_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_scan(*args: object, **kwargs: object) -> List[ServerInfo]:
        raise AssertionError("scanned")

    monkeypatch.setattr(finder, "scan_host", no_scan)
    monkeypatch.setattr(finder, "find_servers", no_scan)
    assert app._choose(_args(host="127.0.0.1", port=4000)) == (("127.0.0.1", 4000), [])
