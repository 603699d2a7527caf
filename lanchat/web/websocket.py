"""RFC 6455 WebSocket framing, server side, without I/O.

`accept_key(key)` answers the opening handshake. `server_frame(opcode, payload)` makes an
unmasked frame, `close_frame(code, reason)` a close. A `MessageReader` is fed a client's
bytes and hands out what they hold: whole text messages, pings, pongs and a close, in
order; it raises `Violation` (with the close code to answer) for a frame the RFC or our limits
forbid. It holds at most one frame's header and the current message's payload, and checks
a message's size as soon as a frame's header says it, so it never buffers more than
`max_message` bytes of it.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import struct
from typing import Optional, Tuple, Union

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
CONTROL_LIMIT = 125  # payload bytes of a control frame

NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
TOO_BIG = 1009

# Close codes a peer may send (RFC 6455 7.4.1 and the IANA registry); 3000-4999 are free.
_SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


class Violation(Exception):
    """The peer broke the protocol or a limit: close with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept of a Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def valid_key(key: str) -> bool:
    """True for a Sec-WebSocket-Key of 16 bytes in base64, as the RFC wants."""
    try:
        return len(base64.b64decode(key.encode("ascii"), validate=True)) == 16
    except (ValueError, UnicodeEncodeError):
        return False


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (a server never masks)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and a short reason."""
    payload = struct.pack("!H", code) + reason.encode("utf-8")[: CONTROL_LIMIT - 2]
    return server_frame(CLOSE, payload)


# What a reader hands out: ("text", UTF-8 bytes), ("ping", bytes), ("pong", bytes) or
# ("close", (code, reason)).
Event = Tuple[str, Union[bytes, Tuple[int, str]]]


class MessageReader:
    """A client's frames, as messages; see the module docstring."""

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._message = bytearray()  # the payload of a fragmented text message so far
        self._fragmented = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes) -> None:
        """Take bytes as they came."""
        self._buffer += data

    def next_event(self) -> Optional[Event]:
        """The next event whole in the buffer, None if more bytes are needed (a data frame
        that does not end its message is taken and yields nothing). Raises Violation."""
        while True:
            header = self._header()
            if header is None:
                return None
            final, opcode, start, size = header
            if len(self._buffer) < start + size:
                return None
            mask = self._buffer[start - 4 : start]
            payload = _unmask(bytes(self._buffer[start : start + size]), mask)
            del self._buffer[: start + size]
            if opcode >= CLOSE:
                return _control(opcode, payload)
            message = self._data(final, payload)
            if message is not None:
                return ("text", message)

    def _header(self) -> Optional[Tuple[bool, int, int, int]]:
        """(final, opcode, payload offset, payload size) of the buffered frame, checked
        against the rules and limits as soon as it is there; None while incomplete."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        final, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise Violation(PROTOCOL_ERROR, "no extension was agreed (RSV bits set)")
        if not second & 0x80:
            raise Violation(PROTOCOL_ERROR, "a client's frames must be masked")
        size, start = second & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, start = struct.unpack_from("!H", buffer, 2)[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
        self._check(final, opcode, size)
        return final, opcode, start + 4, size

    def _check(self, final: bool, opcode: int, size: int) -> None:
        if opcode >= CLOSE:
            if opcode not in (CLOSE, PING, PONG):
                raise Violation(PROTOCOL_ERROR, f"unknown control opcode {opcode:#x}")
            if not final or size > CONTROL_LIMIT:
                raise Violation(PROTOCOL_ERROR, "a control frame is final and short")
            return
        if opcode == BINARY:
            raise Violation(UNSUPPORTED_DATA, "only text messages are accepted")
        if opcode not in (CONTINUATION, TEXT):
            raise Violation(PROTOCOL_ERROR, f"unknown data opcode {opcode:#x}")
        if (opcode == CONTINUATION) != self._fragmented:
            raise Violation(PROTOCOL_ERROR, "a continuation must follow an unfinished message")
        if len(self._message) + size > self.max_message:
            raise Violation(TOO_BIG, f"a message is at most {self.max_message} bytes")

    def _data(self, final: bool, payload: bytes) -> Optional[bytes]:
        """Add a text frame's payload; the message once its last frame is in."""
        self._message += payload
        try:
            self._utf8.decode(payload, final)  # fails early, at the first bad byte
        except UnicodeDecodeError:
            raise Violation(INVALID_DATA, "a text message must be UTF-8") from None
        self._fragmented = not final
        if not final:
            return None
        message = bytes(self._message)
        self._message = bytearray()
        self._utf8.reset()
        return message


def _control(opcode: int, payload: bytes) -> Event:
    if opcode == PING:
        return ("ping", payload)
    if opcode == PONG:
        return ("pong", payload)
    return ("close", _close_status(payload))


def _close_status(payload: bytes) -> Tuple[int, str]:
    """A close frame's (code, reason); NO_STATUS when it has none."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise Violation(PROTOCOL_ERROR, "a close code is two bytes")
    code = struct.unpack_from("!H", payload)[0]
    if code not in _SENDABLE and not 3000 <= code <= 4999:
        raise Violation(PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise Violation(INVALID_DATA, "a close reason must be UTF-8") from None
    return code, reason


def _unmask(payload: bytes, mask: bytearray) -> bytes:
    """XOR with the 4-byte mask, via one big integer (far faster than byte by byte)."""
    if not payload:
        return payload
    size = len(payload)
    key = (bytes(mask) * (size // 4 + 1))[:size]
    unmasked = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return unmasked.to_bytes(size, "big")
