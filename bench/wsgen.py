"""WebSocket mode of the load generator: lanchat's frames over RFC 6455, as the web page speaks.

`WsLoadGen` is `LoadGen` on the server's web port instead of its lanchat port. Each
client opens `ws://HOST:PORT/ws` with the HTTP upgrade, sending the `Origin` the page
itself would send (`http://HOST:PORT`, which the server checks against `Host`), then
speaks exactly the lanchat frames of the TCP mode, one per WebSocket text message and
without the newline. Everything it sends is masked with a fresh random key, as RFC 6455
requires of a client; the server's frames are not masked.

The receive side is `WsReader`, one per connection and free of sockets: bytes in (the
upgrade answer, then frames, several in one recv or one split over several), whole text
messages out. Each message's payload is what a line is in the TCP mode, so the same
accounting and fast path count it. Fragmented messages are joined; ping is answered with
pong and close with close; anything RFC 6455 forbids a server to send (a masked frame,
reserved bits, a binary message for lanchat) fails the connection.

The schedule, the stamps and the measurements are the TCP mode's; what costs more here
is the generator's own work per frame (a Python loop over frame headers instead of one
`split`), which the table's `gen CPU%` shows.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

from bench.loadgen import MAX_LINE, Conn, LoadGen

WS_PATH = "/ws"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
MAX_HANDSHAKE = 16384  # the server's answer to the upgrade is a few hundred bytes

# Opcodes (RFC 6455 section 5.2).
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
FIN = 0x80
MASKED = 0x80
WHOLE_TEXT = FIN | OP_TEXT  # the first byte of an unfragmented text message
# Close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_UNSUPPORTED, CLOSE_TOO_BIG = 1000, 1002, 1003, 1009

_SHORT = struct.Struct("!H")
_LONG = struct.Struct("!Q")


class WsError(Exception):
    """The server broke RFC 6455 or refused the upgrade: the connection is over.

    `reason` names it in the generator's disconnect counts; `code` is the close code to
    send first (None: no WebSocket to close, the upgrade itself failed).
    """

    def __init__(self, reason: str, code: Optional[int] = CLOSE_PROTOCOL) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def new_key() -> str:
    """A fresh `Sec-WebSocket-Key`: 16 random bytes in base64."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    """The `Sec-WebSocket-Accept` a server must answer `key` with (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(host: str, port: int, key: str) -> bytes:
    """The HTTP request that opens the WebSocket at `/ws`, from the page's own origin."""
    origin = f"{host}:{port}"
    return (
        f"GET {WS_PATH} HTTP/1.1\r\n"
        f"Host: {origin}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Origin: http://{origin}\r\n"
        "\r\n"
    ).encode()


def upgrade_refusal(head: bytes, accept: str) -> Optional[str]:
    """Why the server's answer (status line and headers, without the blank line) does not
    open the WebSocket asked for with the key whose accept value is `accept`; None if it does.
    """
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/"):
        return "http:garbled"
    if status[1] != "101":
        return f"http:{status[1]}"
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket":
        return "http:no_upgrade"
    connection = [token.strip().lower() for token in headers.get("connection", "").split(",")]
    if "upgrade" not in connection:
        return "http:no_upgrade"
    if headers.get("sec-websocket-accept") != accept:
        return "http:bad_accept"
    return None


def mask(payload: bytes, key: bytes) -> bytes:
    """`payload` XOR-ed with the 4-byte `key` repeated (masking and unmasking alike)."""
    size = len(payload)
    if not size:
        return b""
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def client_frame(payload: bytes, opcode: int = OP_TEXT, key: Optional[bytes] = None) -> bytes:
    """One whole masked frame as a client sends it; `key`: a fresh random one if None."""
    key = os.urandom(4) if key is None else key
    size = len(payload)
    if size < 126:
        head = bytes((FIN | opcode, MASKED | size))
    elif size < 65536:
        head = bytes((FIN | opcode, MASKED | 126)) + _SHORT.pack(size)
    else:
        head = bytes((FIN | opcode, MASKED | 127)) + _LONG.pack(size)
    return head + key + mask(payload, key)


def close_payload(code: int) -> bytes:
    """The body of a close frame carrying `code` and no reason."""
    return _SHORT.pack(code)


class WsReader:
    """What a client reads from one WebSocket: the upgrade answer, then the server's frames.

    `feed(data)` takes the bytes of one recv and returns the text messages they complete,
    in order; bytes of an unfinished frame wait for the next call. Control frames are left
    in `controls` as (opcode, payload) for the caller to answer and clear. Raises WsError
    when the server breaks the protocol.
    """

    __slots__ = ("accept", "buffer", "controls", "fragments")

    def __init__(self, accept: str) -> None:
        self.accept = accept  # the Sec-WebSocket-Accept awaited; "" once upgraded
        self.buffer = b""  # received, not yet a whole frame
        self.fragments: Optional[bytearray] = None  # a text message begun, not finished
        self.controls: List[Tuple[int, bytes]] = []

    def feed(self, data: bytes) -> List[bytes]:
        """The whole text messages `data` completes (see the class docstring)."""
        if self.buffer:
            data = self.buffer + data
        if self.accept:
            data = self._upgrade(data)
            if self.accept:
                return []  # the answer to the upgrade is not all here yet
        texts: List[bytes] = []
        whole_text = WHOLE_TEXT
        # The hot path: one pass over the frame headers, 100,000 frames a second.
        pos, end = 0, len(data)
        while end - pos >= 2:
            head = data[pos]
            size = data[pos + 1]
            start = pos + 2
            if size > 125:
                if size == 126:
                    start += 2
                elif size == 127:
                    start += 8
                else:
                    raise WsError("ws:masked")  # a server must not mask
                if start > end:
                    break
                size = int.from_bytes(data[pos + 2 : start], "big")
                if size > MAX_LINE:
                    raise WsError("ws:too_big", CLOSE_TOO_BIG)
            stop = start + size
            if stop > end:
                break
            if head == whole_text and self.fragments is None:
                texts.append(data[start:stop])
            else:
                self._other(head, data[start:stop], texts)
            pos = stop
        self.buffer = data[pos:]
        return texts

    def _upgrade(self, data: bytes) -> bytes:
        """Read the answer to the upgrade off the front of `data` and return what follows
        it; while the answer is not all here, keep `data` and stay awaiting it."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > MAX_HANDSHAKE:
                raise WsError("http:too_long", None)
            self.buffer = data
            return b""
        why = upgrade_refusal(data[:end], self.accept)
        if why is not None:
            raise WsError(why, None)
        self.accept = ""
        return data[end + 4 :]

    def _other(self, head: int, payload: bytes, texts: List[bytes]) -> None:
        """Any frame but a whole text message: a fragment, a control frame or an error."""
        if head & 0x70:
            raise WsError("ws:reserved_bits")
        opcode = head & 0x0F
        final = bool(head & FIN)
        if opcode >= OP_CLOSE:
            if not final or len(payload) > 125 or opcode > OP_PONG:
                raise WsError("ws:bad_control")
            self.controls.append((opcode, payload))
        elif opcode == OP_TEXT:  # the first fragment of a text message
            if self.fragments is not None:
                raise WsError("ws:unfinished_message")
            self.fragments = bytearray(payload)
        elif opcode == OP_CONTINUATION:
            if self.fragments is None:
                raise WsError("ws:stray_continuation")
            self.fragments += payload
            if len(self.fragments) > MAX_LINE:
                raise WsError("ws:too_big", CLOSE_TOO_BIG)
            if final:
                texts.append(bytes(self.fragments))
                self.fragments = None
        elif opcode == OP_BINARY:
            raise WsError("ws:binary", CLOSE_UNSUPPORTED)  # lanchat frames are text
        else:
            raise WsError("ws:bad_opcode")


class WsLoadGen(LoadGen):
    """N lanchat clients over WebSocket to the server's web port, on the load generator's
    loop and schedule (`port` is the web port)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._readers: Dict[int, WsReader] = {}  # by client index

    def _on_connect(self, conn: Conn) -> None:
        # The client speaks first in HTTP; bytes written before the connection completes
        # wait in the output buffer.
        key = new_key()
        self._readers[conn.index] = WsReader(accept_for(key))
        super()._write(conn, upgrade_request(self.host, self.port, key))

    def _write(self, conn: Conn, data: bytes) -> None:
        """Send one lanchat frame (a line from the TCP mode) as one masked text message."""
        if data.endswith(b"\n"):
            data = data[:-1]
        super()._write(conn, client_frame(data))

    def _split(self, conn: Conn, data: bytes) -> List[bytes]:
        """The whole text messages received: each is one lanchat frame, a line's worth."""
        reader = self._readers[conn.index]
        try:
            texts = reader.feed(data)
        except WsError as exc:
            self._fail(conn, exc)
            return []
        if reader.controls:
            self._answer(conn, reader)
        return texts

    def _answer(self, conn: Conn, reader: WsReader) -> None:
        """Answer the control frames received: pong a ping, close a close."""
        for opcode, payload in reader.controls:
            if opcode == OP_PING:
                self.pings += 1
                super()._write(conn, client_frame(payload, OP_PONG))
            elif opcode == OP_CLOSE:
                code = _SHORT.unpack(payload[:2])[0] if len(payload) >= 2 else CLOSE_NORMAL
                super()._write(conn, client_frame(payload[:2], OP_CLOSE))
                self._drop(conn, f"ws_close:{code}")
                break
        reader.controls.clear()

    def _fail(self, conn: Conn, exc: WsError) -> None:
        """Close the WebSocket (if it opened) with the error's code, and drop the client."""
        if exc.code is not None:
            super()._write(conn, client_frame(close_payload(exc.code), OP_CLOSE))
        self._drop(conn, exc.reason)

    def _drop(self, conn: Conn, reason: str) -> None:
        super()._drop(conn, reason)
        self._readers.pop(conn.index, None)
