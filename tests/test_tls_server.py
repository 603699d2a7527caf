"""`lanchat server --tls` end to end, on the built pyz: every port speaks TLS only (python
ssl clients), the certificate made once by openssl or given, its fingerprint at start-up
and in discovery, and the clear answers plain-text clients get instead of a hang."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import wsclient
from conftest import free_port, pyz_command
from wire import RawClient

from lanchat import tls
from lanchat.core.config import ServerConfig
from lanchat.core.history import host_key
from lanchat.server import ChatServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")

Address = Tuple[str, int]


def make_certificate(folder: Path, name: str = "cert") -> Tuple[Path, Path]:
    """A self-signed P-256 certificate and key made by openssl in `folder`."""
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def openssl_fingerprint(cert: Path) -> str:
    """The fingerprint as `openssl x509 -fingerprint -sha256` prints it, with our prefix."""
    done = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return "SHA256:" + done.stdout.strip().split("=", 1)[1]


@dataclass
class Started:
    """A running `lanchat.pyz server` and what it printed at start-up."""

    proc: subprocess.Popen
    address: Address
    lines: Dict[str, str] = field(default_factory=dict)  # "TLS" -> "SHA256:..." and so on

    @property
    def fingerprint(self) -> str:
        return self.lines["TLS"]

    def port_of(self, label: str) -> int:
        """The port of a start-up line such as `IRC: 127.0.0.1:6697`."""
        return int(self.lines[label].rstrip("/").rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=10) == 0
        self.proc.communicate(timeout=10)


def start_tls_server(
    pyz: Path, data_home: Path, *options: str, until: str = "TLS", timeout: float = 20.0
) -> Started:
    """Start `lanchat.pyz server` on a free port of 127.0.0.1 with this data directory;
    read its start-up lines (`LABEL: value`) up to `until` (raw reads: select sees them)."""
    command = pyz_command("server", "--bind", "127.0.0.1", "--port", str(free_port()))
    env = dict(os.environ, XDG_DATA_HOME=str(data_home))
    proc = subprocess.Popen([*command, "--no-history", *options], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    lines: Dict[str, str] = {}
    output = b""
    deadline = time.monotonic() + timeout
    while until not in lines:
        readable, _, _ = select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(proc.stdout.fileno(), 4096) if readable else b""
        if not chunk:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(f"no {until!r} line at start-up; got {output!r}")
        output += chunk
        for line in output.decode().splitlines()[: output.count(b"\n")]:
            label, _, value = line.partition(": ")
            lines[label] = value
    listening = next(line for line in lines if " listening on " in line)
    host, port = listening.split()[-1].rsplit(":", 1)
    return Started(proc, (host, int(port)), lines)


StartServer = Callable[..., Started]


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def start_server(data_home: Path, pyz: Path) -> Iterator[StartServer]:
    """Start TLS servers on 127.0.0.1 with their own data directory; stopped at the end."""
    started: List[Started] = []

    def start(*options: str) -> Started:
        server = start_tls_server(pyz, data_home, "--no-discovery", *options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def tls_client(address: Address, receive_buffer: Optional[int] = None) -> RawClient:
    """A RawClient over TLS that trusts any certificate (the tests compare fingerprints)."""
    client = RawClient(address, receive_buffer=receive_buffer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.sock = context.wrap_socket(client.sock)
    return client


def fingerprint_of(client: RawClient) -> str:
    """The fingerprint of the certificate the server showed this TLS client."""
    assert isinstance(client.sock, ssl.SSLSocket)
    der = client.sock.getpeercert(binary_form=True)
    assert der is not None
    return tls.fingerprint_of_der(der)


def tls_login(address: Address, name: str) -> RawClient:
    client = tls_client(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.4.0"})
    client.expect("welcome", name=name)
    return client


def tls_host() -> str:
    """The host name the self-signed certificate's folder is named after."""
    return host_key()


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """All the peer sends until it closes (a reset counts as a close); fails on a hang."""
    sock.settimeout(timeout)
    received = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return received
            received += data
    except ConnectionResetError:
        return received
    except socket.timeout:
        raise AssertionError(f"still open after {timeout} s; got {received!r}") from None


# -- the lanchat port ---------------------------------------------------------------------


def test_two_clients_chat_over_tls_with_the_certificate_the_start_up_line_names(
    start_server: StartServer, data_home: Path
) -> None:
    server = start_server("--tls")
    cert = data_home / "lanchat" / f"tls-{tls_host()}" / "cert.pem"
    assert server.fingerprint == openssl_fingerprint(cert)
    alice = tls_login(server.address, "alice")
    bob = tls_login(server.address, "bob")
    assert fingerprint_of(alice) == server.fingerprint
    alice.expect("join", name="bob")
    bob.send({"type": "say", "text": "nobody else can read this"})
    assert alice.expect("message")["text"] == "nobody else can read this"


def test_the_self_signed_certificate_is_p256_made_once_with_a_private_key(
    start_server: StartServer, data_home: Path
) -> None:
    first = start_server("--tls")
    folder = data_home / "lanchat" / f"tls-{tls_host()}"
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(folder / "cert.pem")],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    assert "id-ecPublicKey" in text and "prime256v1" in text
    first.stop()
    again = start_server("--tls")
    assert again.fingerprint == first.fingerprint, "made once, then kept"
    assert sorted(p.name for p in folder.iterdir()) == ["cert.pem", "key.pem"]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "no leftovers"


def test_a_given_certificate_and_key_are_used_and_none_is_made(
    start_server: StartServer, data_home: Path, tmp_path: Path
) -> None:
    cert, key = make_certificate(tmp_path)
    server = start_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert server.fingerprint == openssl_fingerprint(cert)
    assert fingerprint_of(tls_login(server.address, "alice")) == server.fingerprint
    assert not (data_home / "lanchat").exists()


def run_server_briefly(
    *options: str, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """`lanchat.pyz server` with options that must stop it at once."""
    return subprocess.run(
        pyz_command("server", "--bind", "127.0.0.1", "--port", str(free_port()), "--no-history",
                    "--no-discovery", *options),
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_a_certificate_without_its_key_or_a_key_alone_is_one_line_and_exit_2(
    given: str, tmp_path: Path
) -> None:
    cert, _ = make_certificate(tmp_path)
    done = run_server_briefly(given, str(cert))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--tls-cert and --tls-key go together" in done.stderr


def test_a_key_that_is_not_the_certificates_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, "one")
    _, other_key = make_certificate(tmp_path, "other")
    done = run_server_briefly("--tls-cert", str(cert), "--tls-key", str(other_key))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot use the certificate" in done.stderr


def test_without_openssl_tls_says_in_one_line_how_to_supply_the_files(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty), XDG_DATA_HOME=str(tmp_path / "data"))
    done = run_server_briefly("--tls", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "openssl" in done.stderr and "--tls-cert" in done.stderr and "--tls-key" in done.stderr
    assert not (tmp_path / "data" / "lanchat").exists() or not any(
        (tmp_path / "data" / "lanchat").iterdir()
    )


def test_discovery_and_lanchat_discover_carry_tls_and_the_fingerprint(
    data_home: Path, pyz: Path
) -> None:
    server = start_tls_server(pyz, data_home, "--tls")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(5)
            probe.sendto(b'{"type":"discover","app":"lanchat","version":"4.4.0"}\n', server.address)
            answer = json.loads(probe.recvfrom(65536)[0])
        assert answer["tls"] is True and answer["fingerprint"] == server.fingerprint
        port = str(server.address[1])
        discover = ["discover", "--host", "127.0.0.1", "--port", port, "--timeout", "1"]
        listed = subprocess.run(
            pyz_command(*discover, "--json"), capture_output=True, text=True, timeout=30
        )
        found = json.loads(listed.stdout.splitlines()[0])
        assert found["tls"] is True and found["fingerprint"] == server.fingerprint
        assert found["web"].startswith("https://")
        text = subprocess.run(pyz_command(*discover), capture_output=True, text=True, timeout=30)
        assert text.stdout.rstrip().endswith(f"TLS {server.fingerprint}")
    finally:
        server.stop()


def test_a_plain_text_client_that_speaks_first_gets_tls_required_and_is_closed(
    start_server: StartServer,
) -> None:
    server = start_server("--tls")
    plain = RawClient(server.address).sock
    plain.sendall(b'{"type":"login","name":"eve","version":"4.0.0"}\n')
    said = read_until_closed(plain)
    assert [json.loads(line)["code"] for line in said.splitlines()] == ["tls_required"]


def test_a_silent_plain_client_waiting_for_hello_is_told_tls_required_long_before_the_login_timeout(
    start_server: StartServer,
) -> None:
    server = start_server("--tls", "--login-timeout", "60")
    waiting = RawClient(server.address, timeout=15)  # a lanchat 4.0 client: it waits for hello
    started = time.monotonic()
    assert waiting.expect_error("tls_required")["message"]
    waited = time.monotonic() - started
    assert waiting.expect_closed() == []
    print(f"told after {waited:.2f} s of silence")  # measured, not asserted


def test_a_tls_handshake_that_never_finishes_is_cut_at_the_login_timeout(
    start_server: StartServer,
) -> None:
    server = start_server("--tls", "--login-timeout", "1")
    stalled = RawClient(server.address).sock
    stalled.sendall(b"\x16\x03\x01")  # the start of a handshake record, never the rest
    assert read_until_closed(stalled, timeout=15) == b"", "no plain-text byte on a TLS link"
    tls_login(server.address, "after")  # the server goes on


def test_a_slow_tls_reader_is_dropped_as_slow_like_a_plain_one(start_server: StartServer) -> None:
    server = start_server("--tls", "--max-backlog", "65536", "--rate", "10000", "--burst", "10000")
    sleeper = tls_client(server.address, receive_buffer=4096)
    sleeper.expect("hello")
    sleeper.send({"type": "login", "name": "sleeper", "version": "4.0.0"})
    sleeper.expect("welcome")
    alice = tls_login(server.address, "alice")
    text = "x" * 1900
    for n in range(2000):
        alice.send({"type": "say", "text": f"{n} {text}"})
        frame = alice.recv(timeout=5)
        left = frame["type"] == "leave"
        if left:  # (it may come before the message that made the backlog too long)
            assert (frame["name"], frame["reason"]) == ("sleeper", "slow")
            frame = alice.recv(timeout=5)
        assert frame["text"].startswith(f"{n} ")
        if left:
            break
    else:
        raise AssertionError("the client that never reads was never dropped")
    alice.send({"type": "say", "text": "after"})
    alice.expect("message", text="after")


# -- the web port --------------------------------------------------------------------------


def test_the_web_port_serves_https_and_redirects_plain_http_to_it(
    start_server: StartServer,
) -> None:
    server = start_server("--tls")
    url = server.lines["web client"]
    assert url.startswith("https://127.0.0.1:")
    port = server.port_of("web client")
    secure = tls_client(("127.0.0.1", port))
    secure.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_until_closed(secure.sock).startswith(b"HTTP/1.1 200 ")
    plain = RawClient(("127.0.0.1", port)).sock
    plain.sendall(f"GET /index.html?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    answer = read_until_closed(plain)
    assert answer.startswith(b"HTTP/1.1 301 ")
    assert f"\r\nLocation: https://127.0.0.1:{port}/index.html\r\n".encode() in answer


@pytest.fixture
def wss(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """wsclient's WebSockets go over TLS (trusting any certificate); closed at the end."""
    plain_connect = wsclient._connect

    def connect(address: Address, timeout: float) -> socket.socket:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        secure = context.wrap_socket(plain_connect(address, timeout))
        wsclient._open.append(secure)
        return secure

    monkeypatch.setattr(wsclient, "_connect", connect)
    yield
    wsclient.close_all()


def open_websocket(server: Started, scheme: str) -> wsclient.WebSocketClient:
    """A WebSocket over TLS to the server's web port, from a page of this scheme."""
    port = server.port_of("web client")
    return wsclient.WebSocketClient(("127.0.0.1", port), Origin=f"{scheme}://127.0.0.1:{port}")


def test_a_page_served_over_https_chats_over_its_websocket(
    start_server: StartServer, wss: None
) -> None:
    server = start_server("--tls")
    page = open_websocket(server, "https")
    assert page.status == 101
    page.login("webby")
    terminal = tls_login(server.address, "termy")
    page.expect("join", name="termy")
    terminal.send({"type": "say", "text": "to the browser"})
    assert page.expect("message", text="to the browser")["from"] == "termy"


def test_an_http_origin_is_another_site_for_the_https_websocket(
    start_server: StartServer, wss: None
) -> None:
    assert open_websocket(start_server("--tls"), "http").status == 403


def test_plain_bytes_that_are_no_http_request_get_400_at_the_web_port(
    start_server: StartServer,
) -> None:
    server = start_server("--tls")
    plain = RawClient(("127.0.0.1", server.port_of("web client"))).sock
    plain.sendall(b"hello?\r\n")
    answer = read_until_closed(plain)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"https" in answer


def test_a_silent_plain_client_at_the_web_port_waits_for_the_login_timeout(
    start_server: StartServer,
) -> None:
    server = start_server("--tls", "--login-timeout", "1")
    silent = RawClient(("127.0.0.1", server.port_of("web client"))).sock
    assert read_until_closed(silent, timeout=15) == b"", "closed, and nothing sent in plain text"


# -- the IRC port ---------------------------------------------------------------------------


def test_an_irc_client_registers_over_tls_and_a_plain_one_gets_error(
    start_server: StartServer,
) -> None:
    server = start_server("--tls", "--irc-port", str(free_port()))
    irc = ("127.0.0.1", server.port_of("IRC"))
    secure = tls_client(irc)
    secure.send_raw(b"NICK tlsnick\r\nUSER u 0 * :real\r\n")
    received = b""
    deadline = time.monotonic() + 10
    while b" 001 tlsnick " not in received:
        assert time.monotonic() < deadline, f"no welcome; got {received!r}"
        received += secure.sock.recv(65536)
    plain = RawClient(irc).sock
    plain.sendall(b"NICK plain\r\nUSER u 0 * :real\r\n")
    answer = read_until_closed(plain)
    assert answer.startswith(b"ERROR :") and b"TLS" in answer and answer.count(b"\r\n") == 1


def test_irc_with_tls_starts_at_port_6697(no_thread_leak: None, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    config = ServerConfig(
        bind="127.0.0.1", port=free_port(), discovery=False, irc=True, web=False,
        tls_cert=str(cert), tls_key=str(key),
    )  # fmt: skip
    server = ChatServer(config)
    try:
        assert server.irc_address is not None
        assert 6697 <= server.irc_address[1] <= 6697 + config.port_span
    finally:
        server.server_close()


def test_a_given_chain_is_named_by_its_first_certificate(
    start_server: StartServer, tmp_path: Path
) -> None:
    leaf, key = make_certificate(tmp_path, "leaf")
    issuer, _ = make_certificate(tmp_path, "issuer")
    chain = tmp_path / "chain.pem"
    chain.write_text(leaf.read_text() + issuer.read_text())
    server = start_server("--tls-cert", str(chain), "--tls-key", str(key))
    assert server.fingerprint == openssl_fingerprint(leaf)
    assert fingerprint_of(tls_login(server.address, "alice")) == server.fingerprint


def test_server_help_documents_the_tls_options() -> None:
    done = subprocess.run(
        pyz_command("server", "--help"), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    for option in ("--tls ", "--tls-cert", "--tls-key", "6697"):
        assert option in done.stdout, option


@pytest.fixture
def in_process(no_thread_leak: None, tmp_path: Path) -> Iterator[ChatServer]:
    """A ChatServer in this process with TLS on its ports, serving in a thread."""
    cert, key = make_certificate(tmp_path)
    config = ServerConfig(
        bind="127.0.0.1", port=0, discovery=False, login_timeout=30,
        tls_cert=str(cert), tls_key=str(key),
    )  # fmt: skip
    server = ChatServer(config)
    thread = threading.Thread(target=server.serve_forever, name="test-server")
    thread.start()
    try:
        yield server
    finally:
        assert server.shutdown(timeout=10)
        thread.join(10)
        server.server_close()


def test_a_stalled_handshake_does_not_keep_the_io_thread_busy(in_process: ChatServer) -> None:
    """While a handshake waits for the client, the greeting held for it is no reason to
    watch the socket for room to write: that would wake the loop without end."""
    loop = in_process._loop
    flushes: List[object] = []
    flush = loop._flush
    loop._flush = lambda link, chunks: (flushes.append(link), flush(link, chunks))[1]  # type: ignore[method-assign]
    stalled = RawClient(in_process.address).sock
    stalled.sendall(b"\x16\x03\x01")  # a handshake begun, never finished
    ready = tls_login(in_process.address, "ready")  # the loop has seen both by now
    counted = len(flushes)
    ready.send({"type": "ping", "token": "t"})
    ready.expect("pong")
    time.sleep(0.5)  # time for a spinning loop to show itself
    assert len(flushes) - counted < 20, f"{len(flushes) - counted} flushes while idle"


def test_refused_and_vanished_plain_clients_are_counted_out(in_process: ChatServer) -> None:
    """At the web port, where a silent client may wait for the login timeout (30 s)."""
    assert in_process.web_address is not None
    RawClient(in_process.web_address).close()  # gone before its first byte
    refused = RawClient(in_process.web_address).sock  # (accepted after it, answered after it)
    refused.sendall(b"GET / HTTP/1.1\r\nHost: here\r\n\r\n")
    assert read_until_closed(refused).startswith(b"HTTP/1.1 301 ")
    deadline = time.monotonic() + 10
    while in_process.connections:  # (a worker counts each out once it has ended)
        assert time.monotonic() < deadline, f"{in_process.connections} still counted"
        time.sleep(0.01)


def test_a_certificate_file_without_a_plain_pem_certificate_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    """OpenSSL loads a TRUSTED CERTIFICATE, but its fingerprint would not be the one that
    clients see: refused in one line rather than a traceback."""
    cert, key = make_certificate(tmp_path)
    trusted = tmp_path / "trusted.pem"
    subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-trustout", "-addtrust", "serverAuth",
         "-out", str(trusted)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    assert "BEGIN TRUSTED CERTIFICATE" in trusted.read_text()
    done = run_server_briefly("--tls-cert", str(trusted), "--tls-key", str(key))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "holds no PEM certificate" in done.stderr
