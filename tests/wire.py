"""A raw protocol client for tests: real sockets, every wait bounded by a timeout."""

from __future__ import annotations

import hashlib
import hmac
import json
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

Frame = Dict[str, Any]
TIMEOUT = 5.0
_open_clients: List[RawClient] = []


class RawClient:
    """Speaks lanchat JSON lines over one TCP connection, with no help from lanchat's code."""

    def __init__(
        self,
        address: Tuple[str, int],
        timeout: float = TIMEOUT,
        source: str = "",
        receive_buffer: Optional[int] = None,
    ) -> None:
        """Connect, from the local address `source` if given (e.g. another 127.x.y.z), with
        `receive_buffer` set before connecting (the window a peer may fill is then small
        from the start)."""
        if receive_buffer is None:
            self.sock = socket.create_connection(address, timeout, (source, 0) if source else None)
        else:
            self.sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self.sock.settimeout(timeout)
            if source:
                self.sock.bind((source, 0))
            self.sock.connect(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._buffer = b""
        _open_clients.append(self)

    def send(self, frame: Frame) -> None:
        self.send_raw(json.dumps(frame).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: Optional[float] = None) -> Frame:
        """The next frame; fails the test if none arrives in time."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no frame within the timeout; buffered {self._buffer!r}")
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                continue
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed; buffered {self._buffer!r}")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        frame = json.loads(line)
        assert isinstance(frame, dict)
        return frame

    def expect(self, kind: str, timeout: Optional[float] = None, **fields: Any) -> Frame:
        """The next frame, which must be of this type (and have these field values)."""
        frame = self.recv(timeout)
        assert frame["type"] == kind, frame
        for key, value in fields.items():
            assert frame.get(key) == value, (key, frame)
        return frame

    def expect_error(self, code: str, timeout: Optional[float] = None) -> Frame:
        return self.expect("error", timeout, code=code)

    def recv_until(self, kind: str, timeout: Optional[float] = None) -> List[Frame]:
        """Frames up to and including the first of this type."""
        frames = []
        while True:
            frames.append(self.recv(timeout))
            if frames[-1]["type"] == kind:
                return frames

    def expect_closed(self, timeout: Optional[float] = None) -> List[Frame]:
        """Read until the server closes; return the frames that came first."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the server did not close the connection")
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                continue
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                raise AssertionError(f"reset by the server; buffered {self._buffer!r}") from None
            if not data:
                lines = [line for line in self._buffer.split(b"\n") if line.strip()]
                self._buffer = b""
                return [json.loads(line) for line in lines]
            self._buffer += data

    def nothing_pending(self, wait: float = 0.2) -> bool:
        """True if no complete frame arrives within `wait` seconds."""
        if b"\n" in self._buffer:
            return False
        readable, _, _ = select.select([self.sock], [], [], wait)
        if readable:
            self._buffer += self.sock.recv(65536)
        return b"\n" not in self._buffer

    def close(self) -> None:
        self.sock.close()


def close_all_clients() -> None:
    """Close every RawClient a test opened (an autouse fixture calls this)."""
    while _open_clients:
        _open_clients.pop().close()


def login_frame(name: str, **extra: Any) -> Frame:
    """A 4.0 `login` frame, with any extra fields."""
    return {"type": "login", "name": name, "version": "4.0.0", **extra}


def proof(password: str, nonce: str, name: str) -> str:
    """The login `auth` field, computed here without lanchat's code."""
    key = password.encode()
    return hmac.new(key, bytes.fromhex(nonce) + name.encode(), hashlib.sha256).hexdigest()


def login(address: Tuple[str, int], name: str, timeout: float = TIMEOUT) -> Tuple[RawClient, Frame]:
    """Connect and log in; return the client and its welcome."""
    client = RawClient(address, timeout)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.0.0"})
    return client, client.expect("welcome", name=name)


def start_pyz_server(
    pyz: str,
    *args: str,
    timeout: float = 20.0,
    env: Optional[Dict[str, str]] = None,
    prefix: Sequence[str] = (),
) -> Tuple[subprocess.Popen[str], Tuple[str, int]]:
    """Start `lanchat.pyz server`, wait for its `listening on` line, return it and its address.

    `prefix` is a command that runs it (e.g. `unshare` with arguments), if any.
    """
    proc = subprocess.Popen(
        [*prefix, sys.executable, pyz, "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not readable:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            host, port = line.rsplit("listening on ", 1)[1].strip().rsplit(":", 1)
            return proc, (host, int(port))
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise AssertionError(f"server did not start: {err}")


class PyzServer:
    """`lanchat.pyz server` with fixed options on a free port of 127.0.0.1; it can be
    stopped (SIGTERM, which must exit 0) and started again, e.g. on the same history file."""

    def __init__(self, pyz: str, *options: str) -> None:
        self.pyz = pyz
        self.options = options
        self.proc: Optional[subprocess.Popen[str]] = None

    def start(self) -> Tuple[str, int]:
        """Start it; return the address it listens on."""
        from conftest import free_port

        port = str(free_port())
        self.proc, address = start_pyz_server(
            self.pyz, "--bind", "127.0.0.1", "--port", port, "--no-discovery", *self.options
        )
        return address

    def stop(self) -> None:
        """Stop it as an operator does: SIGTERM."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=10) == 0
        self.proc.communicate(timeout=10)
        self.proc = None

    def restart(self) -> Tuple[str, int]:
        self.stop()
        return self.start()

    def kill(self) -> None:
        """Make sure it is gone (for a fixture's teardown)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            self.proc = None
