"""IRC clients over TLS: the built pyz with `--tls` serves its IRC gateway over TLS only.

A raw IRC client (tests/ircclient.py, its socket wrapped in Python's ssl and trusting
exactly the server's certificate) registers and chats with a raw lanchat client over TLS;
its `PASS` gets it in without ever crossing the wire readable (a relay in between records
every byte, and the same login without TLS shows what it would record); and irssi, pinned
to the certificate's fingerprint, chats there too (skipped without irssi and tmux).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from drivers import Proxy
from ircclient import IrcClient
from test_irc_gateway import heard
from test_irc_pyz import servers, start_irc_server, tmux  # noqa: F401
from wire import RawClient

from lanchat.tls import fingerprint_of_pem_file

PASSWORD = "tls keeps this secret"
Address = Tuple[str, int]


def tls_options(certificate: Tuple[Path, Path]) -> List[str]:
    cert, key = certificate
    return ["--tls", "--tls-cert", str(cert), "--tls-key", str(key)]


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate, for localhost."""
    return ssl.create_default_context(cafile=str(cert))


class TlsIrcClient(IrcClient):
    """The raw IRC client over TLS."""

    def __init__(self, address: Address, cert: Path) -> None:
        super().__init__(address)
        self.sock = trusting(cert).wrap_socket(self.sock, server_hostname="localhost")


class TlsRawClient(RawClient):
    """The raw lanchat client over TLS."""

    def __init__(self, address: Address, cert: Path) -> None:
        super().__init__(address)
        self.sock = trusting(cert).wrap_socket(self.sock, server_hostname="localhost")


def lanchat_user(address: Address, cert: Path, name: str) -> RawClient:
    """A raw lanchat client over TLS, logged in."""
    client = TlsRawClient(address, cert)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.0.0"})
    client.expect("welcome")
    return client


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n", "utf-8")
    return path


def test_an_irc_client_over_tls_chats_with_a_lanchat_client(
    servers: List[subprocess.Popen],  # noqa: F811
    certificate: Tuple[Path, Path],
) -> None:
    cert = certificate[0]
    port, irc_port = start_irc_server(servers, *tls_options(certificate))
    lena = lanchat_user(("127.0.0.1", port), cert, "lena")
    irc = TlsIrcClient(("127.0.0.1", irc_port), cert)
    try:
        assert irc.register("tlsnick")[0].command == "001"
        irc.expect("366", "tlsnick", "#general")  # in the default room at once
        heard(lena, "join", name="tlsnick")
        irc.send("PRIVMSG #general :hello from irc over tls")
        assert heard(lena, "message", **{"from": "tlsnick"})["text"] == "hello from irc over tls"
        lena.send({"type": "say", "text": "hello back over tls"})
        assert irc.expect("PRIVMSG", "#general").params[1] == "hello back over tls"
        irc.send("QUIT :bye")
        assert heard(lena, "leave", name="tlsnick")["reason"] == "quit"
    finally:
        irc.close()


def login_through_a_relay(irc_port: int, cert: Path, tls: bool) -> Tuple[bytes, str]:
    """PASS, NICK and USER through a relay that records every byte the client sends;
    (those bytes, the command of the server's answer: 001 or an error)."""
    proxy = Proxy(("127.0.0.1", irc_port))
    try:
        irc = TlsIrcClient(proxy.address, cert) if tls else IrcClient(proxy.address)
        try:
            irc.send(f"PASS :{PASSWORD}")
            irc.send("NICK secretive")
            irc.send("USER secretive 0 * :secretive")
            answer = irc.recv().command
        finally:
            irc.close()
        return bytes(proxy.from_clients), answer
    finally:
        proxy.close()


def test_the_irc_pass_crosses_the_wire_unreadable_over_tls(
    servers: List[subprocess.Popen],  # noqa: F811
    certificate: Tuple[Path, Path],
    password_file: Path,
) -> None:
    _, irc_port = start_irc_server(
        servers, "--password-file", str(password_file), *tls_options(certificate)
    )
    wire, answer = login_through_a_relay(irc_port, certificate[0], tls=True)
    assert answer == "001", "the password was right"
    assert wire and PASSWORD.encode() not in wire
    assert b"secretive" not in wire, "nor the nick"


def test_without_tls_the_irc_pass_is_on_the_wire_as_it_is(
    servers: List[subprocess.Popen],  # noqa: F811
    certificate: Tuple[Path, Path],
    password_file: Path,
) -> None:
    """What the relay records without TLS: the check above would see it."""
    _, irc_port = start_irc_server(servers, "--password-file", str(password_file))
    wire, answer = login_through_a_relay(irc_port, certificate[0], tls=False)
    assert answer == "001"
    assert f"PASS :{PASSWORD}".encode() in wire


@pytest.fixture
def irssi_home(tmp_path: Path) -> Iterator[Path]:
    if not (shutil.which("irssi") and shutil.which("tmux")):
        pytest.skip("no irssi/tmux (apt-get install irssi tmux)")
    home = tmp_path / "irssi"
    home.mkdir()
    yield home


def test_irssi_over_tls_pinned_to_the_fingerprint_chats(
    servers: List[subprocess.Popen],  # noqa: F811
    certificate: Tuple[Path, Path],
    irssi_home: Path,
) -> None:
    cert = certificate[0]
    port, irc_port = start_irc_server(servers, *tls_options(certificate))
    lena = lanchat_user(("127.0.0.1", port), cert, "lena")
    # irssi's own trust on first use: the certificate is pinned by its SHA-256 fingerprint.
    pinned = fingerprint_of_pem_file(cert)[len("SHA256:") :]
    (irssi_home / "startup").write_text(
        f"/connect -tls -notls_verify -tls_pinned_cert {pinned} 127.0.0.1 {irc_port}\n"
    )
    session = f"irc-tls-{os.getpid()}-{irc_port}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40",
         f"irssi --home={irssi_home} -n irssitls")  # fmt: skip
    try:
        heard(lena, "join", name="irssitls")  # irssi is in: TLS and registration done
        tmux("send-keys", "-t", session, "/msg #general hello from irssi over tls", "Enter")
        assert heard(lena, "message", **{"from": "irssitls"})["text"] == "hello from irssi over tls"
        lena.send({"type": "say", "text": "lena answers"})
        tmux("send-keys", "-t", session, "/window goto #general", "Enter")
        deadline = time.monotonic() + 20
        while "lena answers" not in tmux("capture-pane", "-p", "-t", session):
            assert time.monotonic() < deadline, "irssi did not show lena's answer"
            time.sleep(0.1)
        tmux("send-keys", "-t", session, "/quit", "Enter")
        assert heard(lena, "leave", name="irssitls")["reason"] == "quit"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
