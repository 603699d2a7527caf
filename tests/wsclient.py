"""A raw HTTP and WebSocket (RFC 6455) client for tests, written without lanchat's code.

`http_request` sends one request and reads the whole response (the server closes after
it). `WebSocketClient` does the opening handshake and speaks frames: `send_text` sends a
lanchat frame as one masked text message, `send_frame` any frame (unmasked, fragmented,
binary, a control frame ...), `recv_frame` reads one frame, `recv` the next lanchat frame.
Every wait is bounded by a timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
from typing import Any, Dict, List, Optional, Tuple

TIMEOUT = 5.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
_open: List[socket.socket] = []


def _connect(address: Tuple[str, int], timeout: float) -> socket.socket:
    sock = socket.create_connection(address, timeout)
    _open.append(sock)
    return sock


def close_all() -> None:
    """Close every socket a test opened here."""
    while _open:
        _open.pop().close()


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the server did not close within {timeout}s: {data[:200]!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class Response:
    """A parsed HTTP response."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


def http_request(
    address: Tuple[str, int], raw: bytes, timeout: float = TIMEOUT
) -> Tuple[Response, bytes]:
    """Send raw request bytes, read until the server closes; the response and its bytes."""
    sock = _connect(address, timeout)
    sock.sendall(raw)
    data = _read_until_closed(sock, timeout)
    return Response(data), data


def get(address: Tuple[str, int], path: str, method: str = "GET", **headers: str) -> Response:
    """A simple request with a Host header."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {address[0]}:{address[1]}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return http_request(address, ("\r\n".join(lines) + "\r\n\r\n").encode())[0]


def frame_bytes(
    opcode: int, payload: bytes, final: bool = True, mask: bool = True, size: int = -1
) -> bytes:
    """One client frame; `size` lies about the payload length if given."""
    length = len(payload) if size < 0 else size
    first = (0x80 if final else 0) | opcode
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def handshake_request(address: Tuple[str, int], key: str, **headers: str) -> bytes:
    """The opening handshake, with headers added or replaced (a None-like "" drops one)."""
    fields = {
        "Host": f"{address[0]}:{address[1]}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
        "Origin": f"http://{address[0]}:{address[1]}",
    }
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = ["GET /ws HTTP/1.1"] + [f"{k}: {v}" for k, v in fields.items() if v]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WebSocketClient:
    """One WebSocket to the server's /ws, after a checked handshake."""

    def __init__(self, address: Tuple[str, int], timeout: float = TIMEOUT, **headers: str):
        self.timeout = timeout
        self.sock = _connect(address, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(handshake_request(address, key, **headers))
        self._buffer = b""
        head = self._read_head()
        self.status = int(head.split(b" ")[1])
        self.response_head = head.decode("latin-1")
        if self.status == 101:
            expected = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            assert f"Sec-WebSocket-Accept: {expected}" in self.response_head

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"nothing within the timeout; buffered {self._buffer[:200]!r}")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; buffered {self._buffer[:200]!r}")
        self._buffer += chunk

    def _read_head(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        return head

    def _take(self, count: int, deadline: float) -> bytes:
        while len(self._buffer) < count:
            self._fill(deadline)
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def send_frame(self, opcode: int, payload: bytes, final: bool = True, mask: bool = True):
        self.sock.sendall(frame_bytes(opcode, payload, final, mask))

    def send_text(self, frame: Dict[str, Any]) -> None:
        self.send_frame(TEXT, json.dumps(frame).encode())

    def recv_frame(self, timeout: Optional[float] = None) -> Tuple[bool, int, bytes]:
        """(final, opcode, payload) of the next frame; fails if the server masks."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        first, second = self._take(2, deadline)
        assert not second & 0x80, "a server frame must not be masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._take(2, deadline))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._take(8, deadline))[0]
        return bool(first & 0x80), first & 0x0F, self._take(size, deadline)

    def recv(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The next lanchat frame (one text message; pings answered on the way)."""
        while True:
            final, opcode, payload = self.recv_frame(timeout)
            if opcode == PING:
                self.send_frame(PONG, payload)
                continue
            assert final and opcode == TEXT, (final, opcode, payload[:100])
            assert b"\n" not in payload
            frame: Dict[str, Any] = json.loads(payload)
            return frame

    def expect(self, kind: str, timeout: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        """The next frame of this type (others skipped), with these field values."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame["type"] == kind:
                for name, value in fields.items():
                    assert frame.get(name) == value, (name, frame)
                return frame

    def expect_close(self, timeout: Optional[float] = None) -> Tuple[int, str]:
        """Read until a close frame; its (code, reason). Text frames before it are skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            _, opcode, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                return code, payload[2:].decode()

    def expect_eof(self, timeout: Optional[float] = None) -> None:
        """The server closes the TCP connection (after its close frame)."""
        assert _read_until_closed(self.sock, self.timeout if timeout is None else timeout) == b""

    def login(self, name: str, version: str = "4.3.0", **extra: Any) -> Dict[str, Any]:
        """After the hello: log in (speaking rooms), return the welcome."""
        self.expect("hello")
        self.send_text({"type": "login", "name": name, "version": version, "rooms": [], **extra})
        return self.expect("welcome", name=name)
