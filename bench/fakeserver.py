"""A stand-in lanchat server for testing the bench itself: one selector loop, no threads.

It speaks just enough of the contract for the load generator (hello, login, welcome,
join, say -> message to everyone) and takes the real server's command line, so
`python -m bench --pyz bench/fakeserver.py` runs the whole bench against it. Two uses:
tests of the bench that must not depend on the real server, and measuring how many
deliveries a second the generator itself can take. `--drop-every N` skips every Nth
delivery on purpose, so a test can see the bench count losses. A client that logs in
with `"presence": "batch"` (protocol 4.1) gets the joins of each loop round in one
`presence` frame instead of one `join` frame each. bench/fakeircd.py reuses the loop for
a stand-in IRC server.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Dict, List, Optional

VERSION = "4.0.0"


def _frame(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class FakeServer:
    """Accepts clients, logs them in under any name, relays every `say` to everyone."""

    def __init__(self, bind: str, port: int, drop_every: int = 0) -> None:
        self.listener = socket.create_server((bind, port), backlog=4096)
        self.listener.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, None)
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
        self.serve()

    def serve(self) -> None:
        """Run until SIGTERM."""
        while self.running:
            for key, mask in self.sel.select(0.5):
                if key.data is None:
                    self._accept()
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

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.inbuf[sock] = b""
            self.outbuf[sock] = bytearray()
            self.sel.register(sock, selectors.EVENT_READ, 1)
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
        if sock in self.online:
            self.online.remove(sock)

    def _send(self, sock: socket.socket, data: bytes) -> None:
        out = self.outbuf.get(sock)
        if out is None:
            return
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
        lines = (self.inbuf[sock] + data).split(b"\n")
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
    parser.add_argument(
        "--drop-every", type=int, default=int(os.environ.get("LANCHAT_FAKE_DROP_EVERY", "0"))
    )
    args, _ = parser.parse_known_args(argv)  # the real server's other options: ignored
    FakeServer(args.bind, args.port, args.drop_every).run("fake lanchat listening on {}:{}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
