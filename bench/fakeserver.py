"""A stand-in lanchat server for testing the bench itself: one selector loop, no threads.

It speaks just enough of the contract for the load generator (hello, login, welcome,
join, say -> message to everyone) and takes the real server's command line, so
`python -m bench --pyz bench/fakeserver.py` runs the whole bench against it. Two uses:
tests of the bench that must not depend on the real server, and measuring how many
deliveries a second the generator itself can take. `--drop-every N` skips every Nth
delivery on purpose, so a test can see the bench count losses. A client that logs in
with `"presence": "batch"` (protocol 4.1) gets the joins of each loop round in one
`presence` frame instead of one `join` frame each. bench/fakeircd.py reuses the loop for
a stand-in IRC server. With `--web-port` it also takes WebSocket clients at `/ws` there
(RFC 6455, just enough: the upgrade with its `Origin` check, masked text messages in, one
unmasked text message per lanchat frame out), as the real server's web client does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Dict, List, Optional, Set, Tuple

VERSION = "4.0.0"


def _frame(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_text(payload: bytes) -> bytes:
    """One unmasked text message, as a server sends it."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def _ws_messages(data: bytes) -> Tuple[List[bytes], bytes]:
    """The payloads of the whole masked text frames at the front of `data`, and the rest.

    Raises ValueError on anything else (an unmasked frame, a fragment, a control frame):
    the bench's clients send none.
    """
    messages = []
    while len(data) >= 6:
        head, size = data[0], data[1]
        if head != 0x81 or not size & 0x80:
            raise ValueError(f"not a whole masked text frame: {data[:2]!r}")
        size &= 0x7F
        start = 2 + {126: 2, 127: 8}.get(size, 0)
        if size >= 126:
            size = int.from_bytes(data[2:start], "big")
        key, stop = data[start : start + 4], start + 4 + size
        if len(data) < stop:
            break
        messages.append(bytes(b ^ key[i % 4] for i, b in enumerate(data[start + 4 : stop])))
        data = data[stop:]
    return messages, data


class FakeServer:
    """Accepts clients, logs them in under any name, relays every `say` to everyone."""

    def __init__(
        self, bind: str, port: int, drop_every: int = 0, web_port: Optional[int] = None
    ) -> None:
        self.listener = socket.create_server((bind, port), backlog=4096)
        self.listener.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
        self.web: Optional[socket.socket] = None  # the WebSocket listener
        if web_port is not None:
            self.web = socket.create_server((bind, web_port), backlog=4096)
            self.web.setblocking(False)
            self.sel.register(self.web, selectors.EVENT_READ, None)
        self.upgrading: Set[socket.socket] = set()  # web clients before their upgrade
        self.websockets: Set[socket.socket] = set()
        self.inbuf: Dict[socket.socket, bytes] = {}
        self.outbuf: Dict[socket.socket, bytearray] = {}
        self.names: Dict[socket.socket, str] = {}
        self.online: List[socket.socket] = []
        self.batched: Dict[socket.socket, List[dict]] = {}  # presence changes not yet sent
        self.next_id = 0
        self.drop_every = drop_every
        self.deliveries = 0
        self.running = True

    def run(self, ready: str) -> None:
        """Print the `ready` line (a format of host and port) and serve until SIGTERM."""
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        host, port = self.listener.getsockname()[:2]
        print(ready.format(host, port), flush=True)
        if self.web is not None:
            print(f"web client: http://{host}:{self.web.getsockname()[1]}/", flush=True)
        self.serve()

    def serve(self) -> None:
        """Run until SIGTERM."""
        while self.running:
            for key, mask in self.sel.select(0.5):
                if key.data is None:
                    self._accept(key.fileobj is self.web)
                    continue
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if mask & selectors.EVENT_WRITE:
                    self._flush(sock)
                if mask & selectors.EVENT_READ and sock in self.inbuf:
                    self._read(sock)
            self._send_presence()

    def _send_presence(self) -> None:
        """Send each batching client this round's joins as one `presence` frame."""
        for sock, changes in self.batched.items():
            if changes:
                self._send(sock, _frame({"type": "presence", "changes": changes}))
                self.batched[sock] = []

    def _accept(self, web: bool = False) -> None:
        listener = self.web if web and self.web is not None else self.listener
        while True:
            try:
                sock, _ = listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.inbuf[sock] = b""
            self.outbuf[sock] = bytearray()
            self.sel.register(sock, selectors.EVENT_READ, 1)
            if web:
                self.upgrading.add(sock)  # greeted once upgraded
            else:
                self._greet(sock)

    def _upgrade(self, sock: socket.socket, request: bytes) -> None:
        """Answer a WebSocket upgrade: 101 and the hello, or 403 for a foreign Origin."""
        headers = {}
        for line in request.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.upgrading.discard(sock)
        if headers.get("origin") != f"http://{headers.get('host')}":
            self._send(sock, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self._send(
            sock,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: %b\r\n\r\n" % accept.encode(),
        )
        self.websockets.add(sock)
        self._greet(sock)

    def _greet(self, sock: socket.socket) -> None:
        """The server speaks first: lanchat's hello."""
        self._send(sock, _frame({"type": "hello", "app": "lanchat", "version": VERSION}))

    def _close(self, sock: socket.socket) -> None:
        self.sel.unregister(sock)
        sock.close()
        self.inbuf.pop(sock, None)
        self.outbuf.pop(sock, None)
        self.names.pop(sock, None)
        self.batched.pop(sock, None)
        self.upgrading.discard(sock)
        self.websockets.discard(sock)
        if sock in self.online:
            self.online.remove(sock)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        out = self.outbuf.get(sock)
        if out is None:
            return
        if sock in self.websockets:
            data = _ws_text(data.rstrip(b"\n"))  # one frame a message, no newline
        if out:
            out += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(sock)
            return
        if sent < len(data):
            out += data[sent:]
            self.sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, 1)

    def _flush(self, sock: socket.socket) -> None:
        out = self.outbuf[sock]
        try:
            sent = sock.send(out)
        except BlockingIOError:
            return
        except OSError:
            self._close(sock)
            return
        del out[:sent]
        if not out:
            self.sel.modify(sock, selectors.EVENT_READ, 1)

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close(sock)
            return
        data = self.inbuf[sock] + data
        if sock in self.upgrading:
            request, blank, self.inbuf[sock] = data.partition(b"\r\n\r\n")
            if blank:
                self._upgrade(sock, request)
            else:
                self.inbuf[sock] = data
            return
        if sock in self.websockets:
            try:
                lines, self.inbuf[sock] = _ws_messages(data)
            except ValueError:
                self._close(sock)
                return
        else:
            lines = data.split(b"\n")
            self.inbuf[sock] = lines.pop()
        for line in lines:
            if line.strip():
                self._line(sock, line)

    def _line(self, sock: socket.socket, line: bytes) -> None:
        """One received line: a lanchat frame."""
        self._handle(sock, json.loads(line))

    def _handle(self, sock: socket.socket, frame: dict) -> None:
        kind = frame.get("type")
        now = time.time()
        if kind == "login":
            name = str(frame["name"])
            self.names[sock] = name
            self.online.append(sock)
            if frame.get("presence") == "batch":
                self.batched[sock] = []
            names = [self.names[s] for s in self.online]
            self._send(sock, _frame({"type": "welcome", "name": name, "online": names}))
            change = {"type": "join", "name": name, "ts": now}
            join = _frame(change)
            for other in list(self.online):
                if other is sock:
                    continue
                if other in self.batched:
                    self.batched[other].append(change)
                else:
                    self._send(other, join)
        elif kind == "say":
            self.next_id += 1
            base = {"type": "message", "id": self.next_id, "ts": now}
            base.update({"from": self.names.get(sock, "?"), "text": frame["text"]})
            plain = _frame(base)
            for other in list(self.online):
                self.deliveries += 1
                if self.drop_every and self.deliveries % self.drop_every == 0:
                    continue
                if other is sock and "ref" in frame:
                    self._send(other, _frame({**base, "ref": frame["ref"]}))
                else:
                    self._send(other, plain)
        elif kind == "ping":
            self._send(sock, _frame({"type": "pong", "token": frame.get("token")}))


def main(argv: Optional[List[str]] = None) -> int:
    """`fakeserver.py server --bind ADDR --port P [...]`: the real server's options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["server"])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=42069)
    parser.add_argument("--web-port", type=int)
    parser.add_argument(
        "--drop-every", type=int, default=int(os.environ.get("LANCHAT_FAKE_DROP_EVERY", "0"))
    )
    args, _ = parser.parse_known_args(argv)  # the real server's other options: ignored
    server = FakeServer(args.bind, args.port, args.drop_every, args.web_port)
    server.run("fake lanchat listening on {}:{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
