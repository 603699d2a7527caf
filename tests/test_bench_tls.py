"""The bench's TLS mode: lanchat's frames over TLS in memory, and exact accounting end to end.

The generator wraps each connection in TLS through memory BIOs (`bench.tlsgen`), so its
hot loop still reads the plain socket with its kernel receive stamps. Tested here: the
channel against a TLS server in memory (whole records, a byte at a time, a certificate
that is not the expected one); the generator against an in-process lanchat server with
a TLS listener, where every message must reach every client exactly once and a wrong
certificate must keep everyone out; and the quick TLS scenario against the built pyz
started with `--tls`. Counts are asserted, never timings.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from test_bench import run_bench, scenarios

from bench import tlsgen
from lanchat.core.config import ServerConfig
from lanchat.core.transport import LANCHAT
from lanchat.server import ChatServer
from lanchat.tls import fingerprint_of_pem_file

QUICK_TLS = "quick-c20-r20-tls"
OTHER = "SHA256:" + ":".join(["AB"] * 32)  # no certificate's fingerprint


def server_end(
    certificate: Tuple[Path, Path],
) -> Tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """A TLS server in memory with the certificate: (its TLS object, its in, its out)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    return context.wrap_bio(incoming, outgoing, server_side=True), incoming, outgoing


def handshake(
    channel: tlsgen.TlsChannel, certificate: Tuple[Path, Path], one_byte_at_a_time: bool = False
) -> Tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """Run the channel's handshake against a server in memory; return the server's end."""
    server, server_in, server_out = server_end(certificate)
    to_server = channel.start()
    for _ in range(10):  # TLS 1.3 takes one round trip and a half
        server_in.write(to_server)
        try:
            server.do_handshake()
            finished = True
        except ssl.SSLWantReadError:
            finished = False
        to_client = server_out.read()
        pieces = (
            [to_client[i : i + 1] for i in range(len(to_client))]
            if one_byte_at_a_time
            else [to_client]
        )
        assert all(channel.feed(piece) == b"" for piece in pieces)
        to_server = channel.outgoing()
        if finished and channel.established:
            server_in.write(to_server)
            return server, server_in, server_out
    raise AssertionError("the handshake did not finish")


def read_all(server: ssl.SSLObject) -> bytes:
    """The plaintext a server in memory has received so far."""
    chunks: List[bytes] = []
    while True:
        try:
            chunks.append(server.read(65536))
        except ssl.SSLWantReadError:
            return b"".join(chunks)


@pytest.mark.parametrize("one_byte_at_a_time", [False, True])
def test_channel_carries_frames_both_ways(
    certificate: Tuple[Path, Path], one_byte_at_a_time: bool
) -> None:
    channel = tlsgen.TlsChannel(tlsgen.client_context(), fingerprint_of_pem_file(certificate[0]))
    assert channel.encrypt(b'{"type":"login"}\n') == b"", "before the handshake: it waits"
    server, server_in, server_out = handshake(channel, certificate, one_byte_at_a_time)
    assert read_all(server) == b'{"type":"login"}\n', "what waited went out with the Finished"

    server.write(b'{"type":"hello"}\n{"type":"welcome"}\n')
    records = server_out.read()
    if one_byte_at_a_time:
        got = b"".join(channel.feed(records[i : i + 1]) for i in range(len(records)))
    else:
        got = channel.feed(records)
    assert got == b'{"type":"hello"}\n{"type":"welcome"}\n'

    server_in.write(channel.encrypt(b'{"type":"say","text":"hi"}\n'))
    assert read_all(server) == b'{"type":"say","text":"hi"}\n'


def test_channel_refuses_a_certificate_that_is_not_the_expected_one(
    certificate: Tuple[Path, Path],
) -> None:
    channel = tlsgen.TlsChannel(tlsgen.client_context(), OTHER)
    with pytest.raises(tlsgen.TlsError) as caught:
        handshake(channel, certificate)
    assert caught.value.reason == "tls:fingerprint"
    assert not channel.established


def test_channel_reports_plaintext_where_tls_was_due(certificate: Tuple[Path, Path]) -> None:
    channel = tlsgen.TlsChannel(tlsgen.client_context())
    channel.start()
    with pytest.raises(tlsgen.TlsError) as caught:
        channel.feed(b'{"type":"hello","app":"lanchat"}\n')  # a server without --tls
    assert caught.value.reason.startswith("tls:")


@pytest.fixture
def tls_server(certificate: Tuple[Path, Path], no_thread_leak: None) -> Iterator[Tuple[str, int]]:
    """An in-process lanchat server with a TLS listener; the listener's address."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = ChatServer(
        ServerConfig(
            bind="127.0.0.1", port=0, name="bench-tls", discovery=False,
            max_per_address=100, rate=20, burst=30,
        )
    )  # fmt: skip
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server.listen(listener, LANCHAT, context)
    thread = threading.Thread(target=server.serve_forever, name="test-server")
    thread.start()
    try:
        yield listener.getsockname()
    finally:
        assert server.shutdown(timeout=10)
        thread.join(10)
        server.server_close()


def test_generator_over_tls_delivers_every_message_once(
    tls_server: Tuple[str, int], certificate: Tuple[Path, Path]
) -> None:
    host, port = tls_server
    fingerprint = fingerprint_of_pem_file(certificate[0])
    with tlsgen.TlsLoadGen(host, port, 10, verify=True, fingerprint=fingerprint) as gen:
        login = gen.login(timeout=30)
        assert (login.logged_in, login.failed) == (10, 0), dict(gen.drops)
        assert gen.settle(timeout=30)
        report = gen.traffic(rate=20, duration=1, drain_quiet=3, drain_max=20)
    assert report.sent == 20
    assert report.expected == report.received == 20 * 10
    assert (report.lost, report.duplicates, report.misrouted) == (0, 0, 0)
    assert gen.verify_mismatches == 0 and gen.repeats == 0
    assert report.user_stamped == 0, "latency ends at the kernel's stamp of the ciphertext"


def test_generator_keeps_out_of_a_server_with_another_certificate(
    tls_server: Tuple[str, int],
) -> None:
    host, port = tls_server
    with tlsgen.TlsLoadGen(host, port, 3, fingerprint=OTHER) as gen:
        login = gen.login(timeout=30)
    assert (login.logged_in, login.failed) == (0, 3)
    assert gen.drops == {"tls:fingerprint": 3}


@pytest.mark.pyz
def test_quick_tls_scenario_against_the_pyz_loses_nothing(pyz: Path, tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path, "--scenario", QUICK_TLS, "--pyz", str(pyz), "--check", "--verify"
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    [row] = scenarios(document)
    assert row["transport"] == "tls"
    assert "--tls" in row["server_argv"] and "--tls-cert" in row["server_argv"]
    assert row["logged_in"] == 20
    assert row["received"] == row["expected"] == row["sent"] * 20 > 0
    assert row["lost"] == 0 and row["verify_mismatches"] == 0
    assert "server_log_tail" not in row, "its start-up lines (https, TLS:) are no warnings"
