"""The bench's WebSocket mode: RFC 6455 framing as a client, and exact accounting end to end.

The load generator can play its clients as web pages do: the HTTP upgrade at `/ws` of
the web port, then one lanchat frame per WebSocket text message, masked when sent. The
framing is tested without a server (RFC 6455's own examples; every input fed whole, one
byte at a time and split at every point, as h11's tests do); the generator's side of a
connection against the test playing the server over a socket pair; and the quick
WebSocket scenario end to end, against the stand-in server and against the built pyz,
where every message must reach every client exactly once. Counts are asserted, never
timings.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from test_bench import FAKE_SERVER, run_bench, scenarios

from bench import loadgen, runner, wsgen

QUICK_WS = "quick-c20-r20-ws"
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
RFC_MASK = bytes((0x37, 0xFA, 0x21, 0x3D))  # RFC 6455 section 5.7
TIMEOUT = 5.0


def server_text(payload: bytes) -> bytes:
    """An unmasked text message as a server sends it (built by hand, not by the module)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def switching(accept: str, extra: str = "") -> bytes:
    """A server's 101 answer to an upgrade."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def unmask_client_frame(frame: bytes) -> Tuple[int, bytes, bytes]:
    """(first byte, masking key, payload) of one whole client frame; it must be masked."""
    assert frame[1] & 0x80, "a client frame must be masked"
    size = frame[1] & 0x7F
    start = 2
    if size == 126:
        size, start = int.from_bytes(frame[2:4], "big"), 4
    elif size == 127:
        size, start = int.from_bytes(frame[2:10], "big"), 10
    key = frame[start : start + 4]
    body = frame[start + 4 :]
    assert len(body) == size
    return frame[0], key, bytes(b ^ key[i % 4] for i, b in enumerate(body))


def fed(reader: wsgen.WsReader, chunks: List[bytes]) -> List[bytes]:
    """Every text message the reader returns for these chunks, in order."""
    return [text for chunk in chunks for text in reader.feed(chunk)]


def three_ways(stream: bytes) -> Iterator[List[bytes]]:
    """The stream whole, one byte at a time, and split in two at every point."""
    yield [stream]
    yield [stream[i : i + 1] for i in range(len(stream))]
    for cut in range(1, len(stream)):
        yield [stream[:cut], stream[cut:]]


# -- handshake -------------------------------------------------------------------------


def test_accept_value_is_rfc6455s_example() -> None:
    assert wsgen.accept_for(RFC_KEY) == RFC_ACCEPT


def test_upgrade_request_comes_from_the_pages_own_origin() -> None:
    request = wsgen.upgrade_request("127.0.0.1", 42169, RFC_KEY).decode()
    head, blank, rest = request.partition("\r\n\r\n")
    assert blank and rest == ""
    lines = head.split("\r\n")
    assert lines[0] == "GET /ws HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers == {
        "Host": "127.0.0.1:42169",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
        "Origin": "http://127.0.0.1:42169",
    }


def test_keys_are_fresh_16_byte_nonces() -> None:
    keys = {wsgen.new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(base64.b64decode(key)) == 16 for key in keys)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (switching(RFC_ACCEPT), None),
        # Header names are case-insensitive; Connection may list other tokens.
        (
            switching(RFC_ACCEPT).replace(
                b"Connection: Upgrade", b"connection: keep-alive, upgrade"
            ),
            None,
        ),
        (switching(RFC_ACCEPT, "Server: lanchat\r\n"), None),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "http:403"),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", "http:404"),
        (switching("x3JJHMbDL1EzLkh9GBhXDw=="), "http:bad_accept"),
        (switching(RFC_ACCEPT).replace(b"Upgrade: websocket\r\n", b""), "http:no_upgrade"),
        (
            switching(RFC_ACCEPT).replace(b"Connection: Upgrade", b"Connection: close"),
            "http:no_upgrade",
        ),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "http:garbled"),
    ],
)
def test_upgrade_answer_is_checked(answer: bytes, why: Any) -> None:
    head = answer[: answer.index(b"\r\n\r\n")]
    assert wsgen.upgrade_refusal(head, RFC_ACCEPT) == why


def test_reader_reads_the_upgrade_answer_and_the_frames_behind_it_however_split() -> None:
    hello = b'{"type":"hello","app":"lanchat","version":"4.3.0"}'
    join = b'{"type":"join","name":"b1","ts":1.0}'
    stream = switching(RFC_ACCEPT) + server_text(hello) + server_text(join)
    for chunks in three_ways(stream):
        reader = wsgen.WsReader(RFC_ACCEPT)
        assert fed(reader, chunks) == [hello, join]
        assert reader.accept == "" and reader.buffer == b""


def test_reader_refuses_a_403_with_no_close_frame_to_send() -> None:
    reader = wsgen.WsReader(RFC_ACCEPT)
    with pytest.raises(wsgen.WsError) as refused:
        reader.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert (refused.value.reason, refused.value.code) == ("http:403", None)


# -- frames we send --------------------------------------------------------------------


def test_client_frame_is_rfc6455s_masked_hello() -> None:
    frame = wsgen.client_frame(b"Hello", key=RFC_MASK)
    assert frame == bytes((0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70000])
def test_client_frames_of_every_length_class_are_masked_and_unmask_to_the_payload(
    size: int,
) -> None:
    payload = os.urandom(size)
    head, key, body = unmask_client_frame(wsgen.client_frame(payload))
    assert head == 0x81
    assert body == payload
    assert wsgen.mask(wsgen.mask(payload, key), key) == payload


def test_each_frame_gets_its_own_masking_key() -> None:
    keys = {unmask_client_frame(wsgen.client_frame(b"same"))[1] for _ in range(20)}
    assert len(keys) == 20


# -- frames we read --------------------------------------------------------------------


def test_reader_reads_rfc6455s_unmasked_and_fragmented_hello() -> None:
    whole = bytes((0x81, 0x05)) + b"Hello"
    fragmented = bytes((0x01, 0x03)) + b"Hel" + bytes((0x80, 0x02)) + b"lo"
    for chunks in three_ways(whole + fragmented + whole):
        assert fed(wsgen.WsReader(""), chunks) == [b"Hello"] * 3


def test_reader_reads_16_and_64_bit_lengths() -> None:
    middle, large = b"m" * 256, b"L" * 65536
    stream = server_text(middle) + server_text(large) + server_text(b"}")
    assert stream[1] == 126 and stream[2 + 2 + 256 + 1] == 127
    assert fed(wsgen.WsReader(""), [stream]) == [middle, large, b"}"]
    # The same split across reads the way recv might cut it.
    assert fed(wsgen.WsReader(""), [stream[i : i + 1000] for i in range(0, len(stream), 1000)]) == [
        middle,
        large,
        b"}",
    ]


def test_reader_returns_many_frames_from_one_read_and_keeps_a_partial_one() -> None:
    messages = [json.dumps({"type": "message", "text": f"lcb/{i}/{i}"}).encode() for i in range(50)]
    stream = b"".join(server_text(m) for m in messages)
    reader = wsgen.WsReader("")
    cut = len(stream) - 7
    assert reader.feed(stream[:cut]) == messages[:-1]
    assert reader.buffer == stream[len(stream) - len(server_text(messages[-1])) : cut]
    assert reader.feed(stream[cut:]) == messages[-1:]
    assert reader.buffer == b""


def test_reader_leaves_control_frames_in_order_even_inside_a_fragmented_message() -> None:
    stream = (
        bytes((0x01, 0x02))
        + b"ab"
        + bytes((0x89, 0x04))
        + b"ping"
        + bytes((0x80, 0x01))
        + b"c"
        + bytes((0x8A, 0x00))
        + bytes((0x88, 0x02))
        + (1001).to_bytes(2, "big")
    )
    for chunks in three_ways(stream):
        reader = wsgen.WsReader("")
        assert fed(reader, chunks) == [b"abc"]
        assert reader.controls == [
            (wsgen.OP_PING, b"ping"),
            (wsgen.OP_PONG, b""),
            (wsgen.OP_CLOSE, b"\x03\xe9"),
        ]


@pytest.mark.parametrize(
    ("stream", "reason", "code"),
    [
        (bytes((0x81, 0x85)) + RFC_MASK + b"xxxxx", "ws:masked", 1002),
        (bytes((0xC1, 0x01)) + b"x", "ws:reserved_bits", 1002),
        (bytes((0x82, 0x01)) + b"x", "ws:binary", 1003),
        (bytes((0x80, 0x01)) + b"x", "ws:stray_continuation", 1002),
        (bytes((0x01, 0x01)) + b"x" + bytes((0x01, 0x01)) + b"y", "ws:unfinished_message", 1002),
        (bytes((0x01, 0x01)) + b"x" + bytes((0x81, 0x01)) + b"y", "ws:unfinished_message", 1002),
        (bytes((0x09, 0x01)) + b"x", "ws:bad_control", 1002),  # a fragmented ping
        (bytes((0x89, 126)) + (126).to_bytes(2, "big") + b"x" * 126, "ws:bad_control", 1002),
        (bytes((0x83, 0x00)), "ws:bad_opcode", 1002),
        (bytes((0x81, 127)) + (loadgen.MAX_LINE + 1).to_bytes(8, "big"), "ws:too_big", 1009),
    ],
)
def test_reader_fails_what_a_server_must_not_send(stream: bytes, reason: str, code: int) -> None:
    with pytest.raises(wsgen.WsError) as failed:
        wsgen.WsReader("").feed(stream)
    assert (failed.value.reason, failed.value.code) == (reason, code)


# -- the generator's side of one connection, the test playing the server ---------------


class Peer:
    """The server's end of one generator client, over a socket pair."""

    def __init__(self, gen: wsgen.WsLoadGen) -> None:
        ours, self.sock = socket.socketpair()
        self.sock.settimeout(TIMEOUT)
        self.gen = gen
        self.conn = loadgen.Conn(0, "b0", ours)
        ours.setblocking(False)
        gen.conns.append(self.conn)
        gen._by_fd[ours.fileno()] = self.conn
        gen._epoll.register(ours.fileno(), select.EPOLLIN)
        gen._next_index, gen._in_flight = 1, 1  # its only client: none is opened after it
        gen._on_connect(self.conn)
        self.buffer = b""

    def request(self) -> Dict[str, str]:
        """The upgrade request the client sent, as headers."""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "GET /ws HTTP/1.1"
        return dict(line.split(": ", 1) for line in lines[1:])

    def frame(self) -> Tuple[int, bytes]:
        """(first byte, unmasked payload) of the next frame the client sent."""
        while len(self.buffer) < 6 or len(self.buffer) < self._length():
            self.buffer += self.sock.recv(65536)
        size = self._length()
        head, _, payload = unmask_client_frame(self.buffer[:size])
        self.buffer = self.buffer[size:]
        return head, payload

    def _length(self) -> int:
        size = self.buffer[1] & 0x7F
        extra = {126: 2, 127: 8}.get(size, 0)
        if extra:
            if len(self.buffer) < 2 + extra:
                return 2 + extra + 4
            size = int.from_bytes(self.buffer[2 : 2 + extra], "big")
        return 2 + extra + 4 + size

    def send(self, data: bytes) -> None:
        """Send bytes and let the generator read them."""
        self.sock.sendall(data)
        self.gen._poll(TIMEOUT)


@pytest.fixture
def peer() -> Iterator[Peer]:
    """One generator client, connected to the test playing the server."""
    with wsgen.WsLoadGen("127.0.0.1", 42169, 1) as gen:
        server_end = Peer(gen)
        with server_end.sock:
            yield server_end


def open_websocket(peer: Peer, then: bytes = b"") -> None:
    """Answer the client's upgrade with 101 (and `then` in the same send)."""
    accept = wsgen.accept_for(peer.request()["Sec-WebSocket-Key"])
    peer.send(switching(accept) + then)


def test_client_logs_in_with_one_masked_text_message_without_newline(peer: Peer) -> None:
    hello = server_text(b'{"type":"hello","app":"lanchat","version":"4.3.0"}')
    open_websocket(peer, hello)  # the hello in the same read as the 101
    head, login = peer.frame()
    assert head == 0x81
    assert json.loads(login) == {"type": "login", "name": "b0", "version": "4.0.0"}
    assert b"\n" not in login
    peer.send(server_text(b'{"type":"welcome","name":"b0","online":["b0"]}'))
    assert peer.conn.state == loadgen.ONLINE and peer.gen.online == 1


def test_client_answers_a_ping_with_a_pong_of_the_same_payload(peer: Peer) -> None:
    open_websocket(peer, bytes((0x89, 0x03)) + b"abc")
    assert peer.frame() == (0x8A, b"abc")
    assert peer.gen.pings == 1


def test_client_answers_a_close_with_a_close_and_is_gone(peer: Peer) -> None:
    open_websocket(peer)
    peer.send(bytes((0x88, 0x02)) + (1001).to_bytes(2, "big"))
    assert peer.frame() == (0x88, (1001).to_bytes(2, "big"))
    assert peer.conn.state == loadgen.CLOSED
    assert peer.gen.drops == {"ws_close:1001": 1}


def test_client_refused_at_the_upgrade_is_a_failed_login(peer: Peer) -> None:
    peer.request()
    peer.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert peer.conn.state == loadgen.CLOSED
    assert peer.gen.drops == {"http:403": 1} and peer.gen.login_failed == 1
    assert peer.sock.recv(100) == b""  # no close frame: there was no WebSocket


def test_client_closes_with_1002_on_a_masked_server_frame(peer: Peer) -> None:
    open_websocket(peer, wsgen.client_frame(b"{}"))
    assert peer.frame() == (0x88, (1002).to_bytes(2, "big"))
    assert peer.gen.drops == {"ws:masked": 1}


# -- end to end ------------------------------------------------------------------------


def assert_every_message_reached_every_client_once(row: Dict[str, Any]) -> None:
    assert row["transport"] == "ws"
    assert row["logged_in"] == row["online_at_end"] == 20
    assert row["expected"] == row["sent"] * 20 > 0
    assert row["received"] == row["expected"]
    assert (row["lost"], row["duplicates"], row["misrouted"], row["repeats"]) == (0, 0, 0, 0)
    assert row["verify_mismatches"] == row["bad_lines"] == row["foreign_messages"] == 0
    assert row["joins_seen"] == row["joins_expected"] == 20 * 19 // 2
    assert row["disconnects"] == {} and row["errors"] == {}
    assert "server_log_tail" not in row  # its start-up lines (the web client's too) are no warnings


def test_ws_scenario_against_a_stand_in_counts_every_delivery(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path, "--scenario", QUICK_WS, "--pyz", FAKE_SERVER, "--check", "--verify"
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    [row] = scenarios(document)
    assert_every_message_reached_every_client_once(row)
    assert row["server_argv"][-2] == "--web-port"


def test_ws_scenario_counts_the_deliveries_a_server_drops(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", QUICK_WS, "--pyz", FAKE_SERVER, "--check"),
        env={"LANCHAT_FAKE_DROP_EVERY": "7"},
    )
    assert proc.returncode == 1
    assert "deliveries lost" in proc.stderr
    [row] = scenarios(document)
    assert row["lost"] == row["expected"] // 7 > 0
    assert row["received"] + row["lost"] == row["expected"]


def test_ws_scenario_is_not_run_against_the_irc_peer(tmp_path: Path) -> None:
    proc, document = run_bench(
        tmp_path,
        *("--scenario", QUICK_WS, "--pyz", FAKE_SERVER),
        *("--peer", "ngircd", "--ngircd", f"{sys.executable} -m bench.fakeircd"),
    )
    assert proc.returncode == 0, proc.stderr
    assert [row["protocol"] for row in scenarios(document)] == ["lanchat"]


@pytest.mark.pyz
def test_ws_scenario_against_the_pyz_delivers_every_message_exactly_once(
    pyz: Path, tmp_path: Path
) -> None:
    proc, document = run_bench(
        tmp_path, "--scenario", QUICK_WS, "--pyz", str(pyz), "--check", "--verify"
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    [row] = scenarios(document)
    assert_every_message_reached_every_client_once(row)


def test_tcp_scenarios_start_the_server_as_before(tmp_path: Path) -> None:
    """Only a WebSocket scenario chooses the web port: a TCP one's command line is unchanged."""
    options = runner.Options(python="python3")
    tcp = runner.server_argv(options, Path("lanchat.pyz"), 10, 5, 30, 4000, tmp_path)
    ws = runner.server_argv(options, Path("lanchat.pyz"), 10, 5, 30, 4000, tmp_path, 4100)
    assert "--web-port" not in tcp
    assert ws == [*tcp, "--web-port", "4100"]


def test_a_scenario_names_a_known_transport() -> None:
    assert runner.Scenario("x", 1, 1, 1, transport="ws").websocket
    assert not runner.Scenario("x", 1, 1, 1).websocket
    with pytest.raises(ValueError):
        runner.Scenario("x", 1, 1, 1, transport="websocket")
