"""A raw IRC test client, written without lanchat's code: lines in, parsed lines out."""

from __future__ import annotations

import socket
import time
from typing import List, NamedTuple, Optional, Tuple

TIMEOUT = 5.0


class Msg(NamedTuple):
    """One server line: tags, source, command (upper case), params."""

    tags: str
    source: str
    command: str
    params: List[str]


def parse(text: str) -> Msg:
    tags = source = ""
    if text.startswith("@"):
        tags, _, text = text[1:].partition(" ")
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
    head, sep, trailing = text.partition(" :")
    params = head.split()
    if sep:
        params.append(trailing)
    return Msg(tags, source, params[0].upper(), params[1:])


class IrcClient:
    """A socket to an IRC server with a line buffer."""

    def __init__(
        self, address: Tuple[str, int], timeout: float = TIMEOUT, source: str = ""
    ) -> None:
        """Connect, from the local address `source` if given (e.g. another 127.x.y.z)."""
        self.sock = socket.create_connection(address, timeout, (source, 0) if source else None)
        self.timeout = timeout
        self._buffer = b""
        self.seen: List[Msg] = []

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: Optional[float] = None) -> Msg:
        """The next line; AssertionError when none comes in time or the server closed."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "no line in time"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("no line in time") from None
            assert data, "the server closed the connection"
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\r\n", 1)
        assert len(raw) + 2 <= 512 + 8191, "an over-long line"
        msg = parse(raw.decode())
        self.seen.append(msg)
        return msg

    def expect(self, command: str, *params: str, timeout: Optional[float] = None) -> Msg:
        """Read lines until one of this command whose first params are `params`."""
        while True:
            msg = self.recv(timeout)
            if msg.command == command and msg.params[: len(params)] == list(params):
                return msg

    def until(self, command: str, timeout: Optional[float] = None) -> List[Msg]:
        """Every line up to and including the first of this command."""
        got = []
        while True:
            got.append(self.recv(timeout))
            if got[-1].command == command:
                return got

    def expect_closed(self, timeout: Optional[float] = None) -> List[Msg]:
        """Lines until the server closes; fails if it does not in time."""
        got = []
        while True:
            try:
                got.append(self.recv(timeout))
            except AssertionError as exc:
                assert "closed" in str(exc), str(exc)
                return got

    def register(self, nick: str, caps: str = "") -> List[Msg]:
        """NICK and USER (with CAP REQ first when caps are asked); the lines up to 376/422."""
        if caps:
            self.send("CAP LS 302")
            self.send(f"CAP REQ :{caps}")
            self.send("CAP END")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick} test")
        got = []
        while not got or got[-1].command not in ("376", "422"):
            got.append(self.recv())
        return got

    def close(self) -> None:
        self.sock.close()
