"""The built pyz server as a user runs it: a subprocess, signals, exit codes."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from conftest import free_port, pyz_command
from wire import RawClient, login, start_pyz_server

Server = Tuple["subprocess.Popen[str]", Tuple[str, int]]


@pytest.fixture
def pyz_server(pyz: Path) -> Iterator[Server]:
    """`lanchat.pyz server` on a free port of 127.0.0.1; killed after the test."""
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery"
    )
    try:
        yield proc, address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_two_people_chat_through_the_pyz_server(pyz_server: Server) -> None:
    _, address = pyz_server
    alice, _ = login(address, "alice")
    bob, welcome = login(address, "bob")
    assert welcome["online"] == ["alice", "bob"]
    alice.expect("join", name="bob")
    alice.send({"type": "say", "text": "hi bob"})
    bob.expect("message", text="hi bob", **{"from": "alice"})
    alice.expect("message", text="hi bob")
    bob.send({"type": "say", "text": "hi alice", "to": "alice"})
    alice.expect("message", text="hi alice", to="alice")


def test_sigterm_sends_shutdown_and_exits_0_within_2_seconds(pyz_server: Server) -> None:
    proc, address = pyz_server
    alice, _ = login(address, "alice")
    bob, _ = login(address, "bob")
    alice.expect("join")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2
    for client in (alice, bob):
        frames = client.expect_closed()
        assert [f["type"] for f in frames] == ["shutdown"], "and no leave on shutdown"


def test_sigint_stops_the_server_too(pyz_server: Server) -> None:
    proc, address = pyz_server
    client = RawClient(address)
    client.expect("hello")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=5) == 0
    assert client.expect_closed()[-1]["type"] == "shutdown"


def test_a_port_range_with_no_free_port_exits_1_with_one_line(pyz: Path) -> None:
    held = []
    for _ in range(50):
        base = random.randint(20000, 60000)
        try:
            for port in range(base, base + 31):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
                sock.listen()
            break
        except OSError:
            for sock in held:
                sock.close()
            held = []
    try:
        result = subprocess.run(
            pyz_command("server", "--bind", "127.0.0.1", "--port", str(base), "--no-discovery"),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert f"{base} to {base + 30}" in lines[0]
    finally:
        for sock in held:
            sock.close()


def test_a_bad_bind_address_is_a_usage_error(pyz: Path) -> None:
    result = subprocess.run(
        pyz_command("server", "--bind", "nowhere"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "error: argument --bind: 'nowhere' is not an IP address" in result.stderr
