"""The server half of discovery: a UDP responder that answers the contract's `discover`
probe with the server's `server` frame, by unicast to whoever asked.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from typing import Callable, List, Tuple

from lanchat import protocol
from lanchat.lan import MAX_DATAGRAM, broadcast_of
from lanchat.protocol import Frame

log = logging.getLogger(__name__)


def _udp_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # Several servers of one host share the base port; all of them get a broadcast.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class Responder:
    """UDP discovery responder: the server's I/O loop calls `receive` when one of its
    `sockets` is readable; on its own, `serve()` runs a loop of its own.

    It binds in the constructor (an OSError there means discovery is unavailable, e.g. the
    port is held by a program without SO_REUSEADDR). `serve()` answers until `close()`,
    which may be called from any thread, any number of times.

    On Linux a socket bound to one unicast address never sees broadcasts, so for a
    specific `bind` the responder also listens on that interface's broadcast address and
    answers from the unicast socket: the client then connects to `bind`, the one address
    the server accepts on.
    """

    def __init__(self, bind: str, port: int, describe: Callable[[], Frame]) -> None:
        self._describe = describe
        self._lock = threading.Lock()
        self._closed = False
        self._serving = False
        self._sockets: List[socket.socket] = []
        wildcard = bind in ("", "0.0.0.0")
        self._reply = _udp_socket("" if wildcard else bind, port)
        self._sockets.append(self._reply)
        self.address: Tuple[str, int] = self._reply.getsockname()
        port = self.address[1]  # the real one, when asked for port 0
        try:
            broadcast = None if wildcard else broadcast_of(bind)
            if broadcast and broadcast != self.address[0]:
                try:
                    self._sockets.append(_udp_socket(broadcast, port))
                except OSError as exc:
                    log.warning("discovery: cannot listen on %s:%d: %s", broadcast, port, exc)
            # A socket pair wakes serve() at once when close() is called from another thread.
            self._wake_recv, self._wake_send = socket.socketpair()
        except BaseException:
            for sock in self._sockets:
                sock.close()
            raise
        self._wake_recv.setblocking(False)
        log.debug(
            "discovery responder on %s",
            ", ".join("{}:{}".format(*s.getsockname()) for s in self._sockets),
        )

    def serve(self) -> None:
        """Answer every valid `discover` probe until close(); then close the sockets."""
        with self._lock:
            if self._closed:
                return
            if self._serving:
                raise RuntimeError("Responder.serve() is already running")
            self._serving = True
        try:
            with selectors.DefaultSelector() as selector:
                for sock in self._sockets:
                    selector.register(sock, selectors.EVENT_READ)
                selector.register(self._wake_recv, selectors.EVENT_READ)
                while not self._closed:
                    for key, _ in selector.select(timeout=0.5):
                        if key.fileobj is not self._wake_recv:
                            self.receive(key.fileobj)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self._serving = False
                self._closed = True
                self._close_sockets()

    @property
    def sockets(self) -> List[socket.socket]:
        """The sockets probes arrive on (non-blocking)."""
        return list(self._sockets)

    def receive(self, sock: socket.socket) -> None:
        """Answer the probe waiting on `sock`, if it is a valid `discover`."""
        try:
            data, sender = sock.recvfrom(MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. an ICMP error queued on the socket; the next one may be fine
            log.debug("discovery: receive failed: %s", exc)
            return
        try:
            frame = protocol.validate(
                protocol.decode_line(data.rstrip(b"\r\n")), protocol.DISCOVERY_FRAMES
            )
        except protocol.ProtocolError as exc:
            log.debug("discovery: ignored a datagram from %s:%d: %s", *sender, exc)
            return
        if frame["type"] != "discover" or frame["app"] != protocol.APP:
            log.debug("discovery: ignored a %r frame from %s:%d", frame["type"], *sender)
            return
        try:
            answer = protocol.encode(self._describe())
        except Exception:  # a bug in describe() must not stop discovery for good
            log.exception("discovery: describe() failed")
            return
        try:
            self._reply.sendto(answer, sender)
        except OSError as exc:  # the asker is unreachable or gone: nothing to do
            log.debug("discovery: cannot answer %s:%d: %s", *sender, exc)
            return
        log.debug("discovery: answered %s:%d (version %s)", *sender, frame["version"])

    def close(self) -> None:
        """Make serve() return (within ~0.5 s, usually at once) and close the sockets."""
        with self._lock:
            if self._closed and not self._serving:
                return
            self._closed = True
            if self._serving:
                try:
                    self._wake_send.send(b"x")
                except OSError:  # full or closed: serve() sees the flag at its next tick
                    pass
            else:
                self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (*self._sockets, self._wake_recv, self._wake_send):
            sock.close()
