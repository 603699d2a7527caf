"""The IRC gateway on the built pyz: its options, its start-up line, and a real irssi in
tmux chatting with the curses client in a pty and a raw lanchat client (skipped where
irssi or tmux is not installed: `apt-get install irssi tmux`; failed instead when
`LANCHAT_REQUIRE_IRSSI=1`, as CI sets it, so CI never skips it)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import drivers
import pytest
from conftest import free_port, pyz_command
from ircclient import IrcClient
from wire import RawClient

clients = drivers.clients  # the curses client in a pty (a fixture)


@pytest.fixture
def servers() -> Iterator[List[subprocess.Popen]]:
    started: List[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        proc.communicate(timeout=10)


def start_irc_server(
    servers: List[subprocess.Popen], *args: str, discovery: bool = False
) -> Tuple[int, int]:
    """`lanchat.pyz server --irc-port ...` (answering discovery on loopback if asked): the
    lanchat port and the IRC port its start-up line names."""
    port, irc_port = free_port(), free_port()
    proc = subprocess.Popen(
        pyz_command(
            "server",
            "--no-history",
            "--no-web",
            *([] if discovery else ["--no-discovery"]),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--irc-port",
            str(irc_port),
            *args,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    servers.append(proc)
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + 20
    while b"IRC: " not in out or not out.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no IRC line in time: {out!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        assert chunk, f"the server ended: {out!r}"
        out += chunk
    line = next(x for x in out.decode().splitlines() if x.startswith("IRC: "))
    assert line == f"IRC: 127.0.0.1:{irc_port}"
    return port, irc_port


def test_help_names_the_irc_options_and_a_bad_irc_port_is_a_usage_error(pyz: Path) -> None:
    shown = subprocess.run(pyz_command("server", "--help"), capture_output=True, timeout=30)
    assert b"--irc " in shown.stdout and b"--irc-port BASE" in shown.stdout
    for bad in ("irc", "0", "70000"):
        result = subprocess.run(
            pyz_command("server", "--irc-port", bad), capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2
        assert "--irc-port" in result.stderr.strip().splitlines()[-1]


def test_the_start_up_line_names_the_irc_port_and_it_serves(pyz: Path, servers) -> None:  # type: ignore[no-untyped-def]
    _, irc_port = start_irc_server(servers)
    client = IrcClient(("127.0.0.1", irc_port))
    assert client.register("pyzzy")[0].command == "001"
    client.close()


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, timeout=10, check=True
    ).stdout


def require_irssi_and_tmux() -> None:
    """Skip without irssi or tmux; fail instead when LANCHAT_REQUIRE_IRSSI=1 (CI)."""
    missing = [tool for tool in ("irssi", "tmux") if not shutil.which(tool)]
    if not missing:
        return
    why = f"{' and '.join(missing)} not installed (apt-get install irssi tmux)"
    if os.environ.get("LANCHAT_REQUIRE_IRSSI") == "1":
        pytest.fail(f"LANCHAT_REQUIRE_IRSSI=1 but {why}")
    pytest.skip(why)


def test_irssi_chats_with_a_curses_client_and_a_raw_client(  # type: ignore[no-untyped-def]
    pyz: Path, servers, clients, tmp_path: Path
) -> None:
    require_irssi_and_tmux()
    port, irc_port = start_irc_server(servers)
    carol = clients(("127.0.0.1", port), "carol")
    carol.wait_for("you are carol on")
    lan = RawClient(("127.0.0.1", port))
    lan.expect("hello")
    lan.send({"type": "login", "name": "lena", "version": "4.3.0", "rooms": ["#general", "#e2e"]})
    lan.expect("welcome")
    home = tmp_path / "irssi"
    home.mkdir()
    session = f"irc-e2e-{os.getpid()}-{irc_port}"
    command = f"irssi --home={home} -n irssiuser -c 127.0.0.1 -p {irc_port}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", command)
    try:

        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", session)

        def wait_screen(text: str) -> None:
            deadline = time.monotonic() + 20
            while text not in screen():
                assert time.monotonic() < deadline, f"{text!r} not on screen:\n{screen()}"
                time.sleep(0.1)

        def heard(kind: str, **fields: object) -> dict:
            while True:
                frame = lan.recv()
                if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                    return frame

        heard("join", name="irssiuser", room="#general")  # irssi is in: registered
        tmux("send-keys", "-t", session, "/msg #general hello carol", "Enter")
        carol.wait_for("irssiuser: hello carol")
        carol.line("hello irssi")
        tmux("send-keys", "-t", session, "/window goto #general", "Enter")
        wait_screen("hello irssi")
        tmux("send-keys", "-t", session, "/join #e2e", "Enter")
        heard("join", name="irssiuser", room="#e2e")
        tmux("send-keys", "-t", session, "hello from irssi", "Enter")
        assert heard("message", room="#e2e")["text"] == "hello from irssi"
        lan.send({"type": "say", "text": "hello back from lanchat", "room": "#e2e"})
        wait_screen("hello back from lanchat")
        tmux("send-keys", "-t", session, "/quit", "Enter")
        assert heard("leave", name="irssiuser")["reason"] == "quit"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
        lan.close()
