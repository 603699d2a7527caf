"""The client and a server that wants a password: real pyz processes, pipes and a pty.

The password comes from --password-file, from LANCHAT_PASSWORD, or (in the window) from a
hidden prompt. A wrong one is one line and exit 1. It never shows on the screen, on the
command line, on the wire or in the client's log.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import free_port
from drivers import PlainClient, Proxy, PtyClient, client_env, status, stop_server, wait_until
from wire import start_pyz_server

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
PASSWORD = "correct horse ✓ battery"  # spaces and a non-ASCII letter on purpose


@pytest.fixture
def locked(pyz: Path, tmp_path: Path) -> Iterator[Address]:
    """A pyz server that wants PASSWORD (from its own --password-file)."""
    secret = tmp_path / "server-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
        "--no-history", "--log-level", "warning", "--name", "vault",
        "--password-file", str(secret),
    )  # fmt: skip
    try:
        yield address
    finally:
        stop_server(proc, signal.SIGKILL)


def plain_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LANCHAT_PASSWORD"}
    env.update(extra)
    return env


def password_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "password"
    path.write_text(text, encoding="utf-8")
    return str(path)


def chats(client: PlainClient) -> None:
    """The client logs in, says a line, sees its echo and leaves with exit 0."""
    wait_until(lambda: client.has_line(lambda line: "-- you are " in line), "the login")
    client.type("let me in")
    wait_until(lambda: (client.name, "let me in") in client.messages(), "the echo")
    client.close_stdin()
    assert client.wait() == 0, client.stderr


def said(client: PlainClient) -> List[str]:
    """Every non-empty line the client wrote, stdout and stderr."""
    return [line for line in client.lines + client.stderr.splitlines() if line.strip()]


# --------------------------------------------------------------------------- plain mode


def test_the_right_password_from_a_file_chats(locked: Address, pyz: Path, tmp_path: Path) -> None:
    secret = password_file(tmp_path, PASSWORD + "\nsecond line is not part of it\n")
    client = PlainClient(pyz, locked, "filer", "--password-file", secret, env=plain_env())
    try:
        chats(client)
    finally:
        client.kill()


def test_the_right_password_from_the_environment_chats(locked: Address, pyz: Path) -> None:
    client = PlainClient(pyz, locked, "envy", env=plain_env(LANCHAT_PASSWORD=PASSWORD))
    try:
        chats(client)
    finally:
        client.kill()


def test_a_wrong_password_is_one_line_and_exit_1(
    locked: Address, pyz: Path, tmp_path: Path
) -> None:
    secret = password_file(tmp_path, "hunter2\n")
    client = PlainClient(pyz, locked, "guesser", "--password-file", secret, env=plain_env())
    try:
        assert client.wait() == 1
        lines = said(client)
        assert len(lines) == 1, lines
        assert "wrong password" in lines[0]
    finally:
        client.kill()


def test_no_password_in_plain_mode_is_one_line_and_exit_1(locked: Address, pyz: Path) -> None:
    client = PlainClient(pyz, locked, "nokey", env=plain_env())
    try:
        assert client.wait() == 1
        assert client.lines == []
        lines = said(client)
        assert len(lines) == 1, lines
        assert lines[0].startswith("lanchat: ")
        assert "needs a password" in lines[0] and "--password-file" in lines[0]
    finally:
        client.kill()


@pytest.mark.parametrize(
    ("content", "problem"), [(None, "cannot read the password file"), ("\n", "is empty")]
)
def test_a_bad_password_file_is_one_line_and_exit_2(
    locked: Address, pyz: Path, tmp_path: Path, content: Optional[str], problem: str
) -> None:
    path = str(tmp_path / "missing") if content is None else password_file(tmp_path, content)
    client = PlainClient(pyz, locked, "badfile", "--password-file", path, env=plain_env())
    try:
        assert client.wait() == 2  # a bad argument, as for the server
        lines = said(client)
        assert len(lines) == 1 and problem in lines[0], lines
    finally:
        client.kill()


def test_the_password_is_never_on_the_wire_the_command_line_or_in_the_log(
    locked: Address, pyz: Path, tmp_path: Path
) -> None:
    proxy = Proxy(locked)
    log = tmp_path / "client.log"
    secret = password_file(tmp_path, PASSWORD)
    client = PlainClient(
        pyz, proxy.address, "careful", "--password-file", secret, "--log-file", str(log),
        env=plain_env(),
    )  # fmt: skip
    try:
        wait_until(lambda: client.has_line(lambda line: "-- you are " in line), "the login")
        with open(f"/proc/{client.proc.pid}/cmdline", "rb") as cmdline:
            assert PASSWORD.encode() not in cmdline.read()
        chats(client)
        assert b'"auth":' in proxy.from_clients, "a proof went over the wire ..."
        assert PASSWORD.encode() not in proxy.from_clients, "... the password did not"
        assert log.stat().st_size > 0
        assert PASSWORD not in log.read_text(encoding="utf-8")
    finally:
        client.kill()
        proxy.close()


# --------------------------------------------------------------------------- the window


@pytest.fixture
def window(pyz: Path) -> Iterator[Callable[..., PtyClient]]:
    started: List[PtyClient] = []

    def start(address: Address, name: str, *extra: str) -> PtyClient:
        argv = [sys.executable, str(pyz), "client", "--name", name, "--host", address[0],
                "--port", str(address[1]), *extra]  # fmt: skip
        env = {k: v for k, v in client_env().items() if k != "LANCHAT_PASSWORD"}
        client = PtyClient(argv, env=env)
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def test_the_window_asks_for_the_password_without_showing_it(
    locked: Address, window: Callable[..., PtyClient]
) -> None:
    client = window(locked, "typist")
    lines = client.wait_for(lambda lines: lines[-1].startswith("password:"))
    assert "password needed" in status(lines)
    assert "needs a password" in "\n".join(lines)
    client.line(PASSWORD)
    client.wait_for("you are typist on vault")
    client.line("typed my way in")
    client.wait_for("typist: typed my way in")
    assert PASSWORD.encode() not in bytes(client.output), "never drawn, not even for a moment"
    assert "*" not in client.lines()[-1]


def test_a_wrong_password_in_the_window_is_asked_again_once_then_exit_1(
    locked: Address, window: Callable[..., PtyClient]
) -> None:
    client = window(locked, "fumbler")
    client.wait_for(lambda lines: lines[-1].startswith("password:"))
    client.line("wrong")
    client.wait_for("Wrong password")
    client.wait_for(lambda lines: lines[-1].startswith("password:"))
    client.line("wrong again")
    assert client.wait_exit() == 1
    assert client.terminal_restored()
    client.wait_for("lanchat: wrong password")
    assert b"wrong again" not in bytes(client.output)


def test_a_wrong_password_file_is_asked_for_in_the_window(
    locked: Address, window: Callable[..., PtyClient], tmp_path: Path
) -> None:
    client = window(locked, "stale", "--password-file", password_file(tmp_path, "old one\n"))
    client.wait_for("Wrong password")
    client.line(PASSWORD)
    client.wait_for("you are stale on vault")
