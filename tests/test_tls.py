"""The loop owns every socket, so TLS fits without reshaping anything: a test-only TLS
listener (a throwaway certificate made with the openssl binary) beside the plain one."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from wire import RawClient, login

from lanchat.core.config import ServerConfig
from lanchat.core.transport import LANCHAT
from lanchat.server import ChatServer


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def servers(
    certificate: Tuple[Path, Path], no_thread_leak: None
) -> Iterator[Tuple[Tuple[str, int], Tuple[str, int]]]:
    """One server with its plain listener and a TLS listener; both addresses."""
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ChatServer(ServerConfig(bind="127.0.0.1", port=0, name="tls", discovery=False))
    tls_listener = socket.socket()
    tls_listener.bind(("127.0.0.1", 0))
    tls_listener.listen()
    server.listen(tls_listener, LANCHAT, context)
    thread = threading.Thread(target=server.serve_forever, name="test-server")
    thread.start()
    try:
        yield server.address, tls_listener.getsockname()
    finally:
        assert server.shutdown(timeout=10)
        thread.join(10)
        server.server_close()


class TlsClient(RawClient):
    """A RawClient over TLS that insists on a clean close_notify at the end."""

    def __init__(self, address: Tuple[str, int], cafile: Path) -> None:
        super().__init__(address)
        context = ssl.create_default_context(cafile=str(cafile))
        self.sock = context.wrap_socket(
            self.sock, server_hostname="127.0.0.1", suppress_ragged_eofs=False
        )


def test_a_tls_client_and_a_plain_client_chat_in_one_room(
    servers: Tuple[Tuple[str, int], Tuple[str, int]], certificate: Tuple[Path, Path]
) -> None:
    plain_address, tls_address = servers
    alice, _ = login(plain_address, "alice")
    bob = TlsClient(tls_address, certificate[0])
    assert bob.expect("hello")["server"] == "tls"
    bob.send({"type": "login", "name": "bob", "version": "4.0.0"})
    assert bob.expect("welcome")["online"] == ["alice", "bob"]
    alice.expect("join", name="bob")
    bob.send({"type": "say", "text": "over tls"})
    alice.expect("message", text="over tls")
    bob.expect("message", text="over tls")
    alice.send({"type": "say", "text": "to tls"})
    bob.expect("message", text="to tls")


def test_many_frames_in_one_tls_read_are_all_handled(
    servers: Tuple[Tuple[str, int], Tuple[str, int]], certificate: Tuple[Path, Path]
) -> None:
    """Records larger than one read leave bytes in the TLS layer (`pending()`), which the
    socket does not signal again: they must be read at once all the same."""
    _, tls_address = servers
    bob = TlsClient(tls_address, certificate[0])
    bob.expect("hello")
    bob.send({"type": "login", "name": "bob", "version": "4.0.0"})
    bob.expect("welcome")
    lines = b"".join(
        json.dumps({"type": "ping", "token": f"{n}-" + "x" * 2000}).encode() + b"\n"
        for n in range(25)
    )
    bob.send_raw(lines)  # one write: about 50 KiB in a few 16 KiB records
    tokens = [bob.expect("pong")["token"].split("-")[0] for _ in range(25)]
    assert tokens == [str(n) for n in range(25)]


def test_the_server_ends_a_tls_connection_with_close_notify(
    servers: Tuple[Tuple[str, int], Tuple[str, int]], certificate: Tuple[Path, Path]
) -> None:
    _, tls_address = servers
    bob = TlsClient(tls_address, certificate[0])
    bob.expect("hello")
    bob.send({"type": "quit"})
    assert bob.expect_closed() == [], "a clean end: no SSLEOFError from a missing close_notify"


def test_a_plain_client_at_the_tls_port_gets_no_hang_but_a_close(
    servers: Tuple[Tuple[str, int], Tuple[str, int]],
) -> None:
    _, tls_address = servers
    plain = socket.create_connection(tls_address, timeout=5)
    plain.sendall(b'{"type":"login","name":"eve","version":"4.0.0"}\n')
    try:
        while plain.recv(4096):  # a TLS alert at most, then the end
            pass
    except ConnectionResetError:
        pass
    plain.close()
