"""The server's I/O thread: one selector loop that accepts connections and writes every socket.

Other threads queue bytes with `deliver` (many (channel, bytes) pairs in one call, under
one lock), end a channel from outside with `drop`, and hand a finished channel back with
`release`, which waits until its last bytes are out. The loop never blocks on one socket:
what the kernel does not take waits for EVENT_WRITE, and a channel whose unsent backlog
would pass `max_backlog` is dropped as "slow". All that is queued for one socket goes out
in one `send`, and rounds of sends are paced so that under load several frames share a
send (on loopback the send, not Python, is what costs).

The loop sleeps without a timeout only when it has seen, under the lock, that no channel
is dirty; whoever makes the dirty set non-empty sends a wake-up byte. So a wake-up is
never lost: the condition to wake on is the same state the loop sleeps on.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from typing import Callable, Iterable, List, Set, Tuple, Union

log = logging.getLogger(__name__)

ACCEPTS_PER_WAKE = 64  # so a storm of connects cannot starve the writes

# What a finished channel asks of the I/O thread.
_FLUSH = 1  # send what is queued, then let go of the socket
_DROP = 2  # let go of the socket now

Accept = Callable[[socket.socket, Tuple], None]


class Channel:
    """One socket as the I/O thread sees it: outbox, unsent bytes, close state.

    The outbox fields are guarded by the loop's lock; `pending` (bytes taken from the
    outbox that the kernel has not accepted yet) belongs to the I/O thread alone.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outbox: List[bytes] = []
        self.outbox_bytes = 0
        self.pending = bytearray()
        self.watching_writes = False
        self.close_reason: Union[str, None] = None  # set when the server ends it
        self.close_request = 0
        self.released = threading.Event()  # the I/O thread no longer touches the socket


class IOLoop:
    """Accepts on `listener` (handing each socket to `accept`) and writes every channel.

    After a round of sends that took T seconds, the next round waits until `pace` × T
    more have passed (at most `max_rest`): under load the thread then works at most
    1/(1 + pace) of the time and several frames share each send, while a light load,
    whose rounds are short, waits next to nothing.
    """

    def __init__(
        self,
        listener: socket.socket,
        accept: Accept,
        max_backlog: int,
        max_rest: float = 0.0,
        pace: float = 2.0,
    ) -> None:
        self._listener = listener
        self._accept_callback = accept
        self._max_backlog = max_backlog
        self._max_rest = max_rest
        self._pace = pace
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        for sock in (listener, self._wake_reader, self._wake_writer):
            sock.setblocking(False)
        self._lock = threading.Lock()
        self._dirty: Set[Channel] = set()  # channels with output or a close request
        self._channels: Set[Channel] = set()
        self._stop = threading.Event()
        self.rounds = 0  # rounds of sends so far: tests watch it advance while output waits

    # -- the I/O thread ------------------------------------------------------------

    def run(self) -> None:
        """Accept and write until `stop`."""
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
        next_round = 0.0
        while not self._stop.is_set():
            wait = None
            if self.has_output():  # else whoever dirties a channel next wakes us
                wait = max(0.0, next_round - time.monotonic())
            self._handle_events(wait)
            started = time.monotonic()
            if started >= next_round and self._flush_dirty():
                ended = time.monotonic()
                next_round = ended + min(self._max_rest, (ended - started) * self._pace)
        self._selector.unregister(self._listener)

    def _handle_events(self, wait: Union[float, None]) -> None:
        for key, _ in self._selector.select(wait):
            if key.data == "accept":
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
            else:
                self._flush(key.data, [])

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, mostly: try again later
                log.error("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._accept_callback(sock, address)

    def _drain_wake(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _flush_dirty(self) -> bool:
        """Send what every dirty channel has queued; False if there was none."""
        with self._lock:
            if not self._dirty:
                return False
            self.rounds += 1
            dirty, self._dirty = self._dirty, set()
            work = []
            for channel in dirty:
                work.append((channel, channel.outbox))
                channel.outbox = []
                channel.outbox_bytes = 0
        for channel, chunks in work:
            self._flush(channel, chunks)
        return True

    def _flush(self, channel: Channel, chunks: List[bytes]) -> None:
        """Send what this channel has queued; honour its close request."""
        if channel.released.is_set():
            return
        closing = channel.close_reason is not None or channel.close_request == _DROP
        # a channel dropped from outside its reader gets one try at what it has queued
        last_try = channel.close_request == 0 and channel.close_reason not in (None, "slow")
        if (chunks or channel.pending) and (last_try or not closing):
            self._send(channel, chunks)
        if channel.close_reason is not None or channel.close_request == _DROP:
            channel.pending.clear()
        self._watch_writes(channel, bool(channel.pending))
        if channel.close_reason is not None and channel.close_request == 0:
            _shut_down(channel.sock)  # its reader sees end-of-file and ends the session
        if channel.close_request and not channel.pending:
            self._release(channel)

    def _release(self, channel: Channel) -> None:
        with self._lock:  # the outbox may have grown since its bytes were taken
            unsent = channel.close_request == _FLUSH and channel.close_reason is None
            if unsent and channel.outbox:
                return  # it is dirty again: the next round sends the rest
        self._watch_writes(channel, False)
        channel.released.set()

    def _send(self, channel: Channel, chunks: List[bytes]) -> None:
        data: Union[bytes, bytearray]
        if channel.pending or len(chunks) > 1:
            channel.pending += b"".join(chunks)
            data = channel.pending
        else:
            data = chunks[0]  # the common case: no copy
        try:
            sent = channel.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the peer is gone; its reader sees that too
            sent = len(data)
            if channel.close_reason is None:
                channel.close_reason = "disconnect"
        if data is channel.pending:
            del channel.pending[:sent]
        elif sent < len(data):
            channel.pending += data[sent:]

    def _watch_writes(self, channel: Channel, wanted: bool) -> None:
        if wanted and not channel.watching_writes:
            self._selector.register(channel.sock, selectors.EVENT_WRITE, channel)
        elif channel.watching_writes and not wanted:
            self._selector.unregister(channel.sock)
        channel.watching_writes = wanted

    def close_all(self, notice: bytes, timeout: float) -> None:
        """After `run`: send `notice` to every channel, let them drain for up to
        `timeout` seconds, then shut every socket down and release it."""
        with self._lock:
            channels = list(self._channels)
        self.deliver((channel, notice) for channel in channels)
        deadline = time.monotonic() + timeout
        while True:
            self._flush_dirty()
            left = deadline - time.monotonic()
            if left <= 0 or not any(channel.pending for channel in channels):
                break
            self._handle_events(left)
        for channel in channels:
            if not channel.released.is_set():
                self._watch_writes(channel, False)
                _shut_down(channel.sock)
                channel.released.set()

    # -- any thread ----------------------------------------------------------------------

    def add(self, channel: Channel) -> None:
        """Count a channel in (it gets the shutdown notice)."""
        with self._lock:
            self._channels.add(channel)

    def remove(self, channel: Channel) -> None:
        """Count out a channel that was never used."""
        with self._lock:
            self._channels.discard(channel)

    def has_output(self) -> bool:
        """Whether some channel has bytes queued or a close request the loop has not seen."""
        with self._lock:
            return bool(self._dirty)

    def deliver(self, items: Iterable[Tuple[Channel, bytes]]) -> None:
        """Queue bytes for channels; one too far behind is dropped as "slow"."""
        limit = self._max_backlog
        with self._lock:
            for channel, data in items:
                if channel.close_reason is not None or channel.close_request:
                    continue
                backlog = channel.outbox_bytes + len(channel.pending)
                if backlog and backlog + len(data) > limit:
                    channel.close_reason = "slow"
                else:
                    channel.outbox.append(data)
                    channel.outbox_bytes += len(data)
                self._make_dirty(channel)

    def drop(self, channel: Channel, reason: str) -> None:
        """End a channel from outside its reader: what it has queued is sent if the kernel
        takes it at once, and its socket is shut down."""
        with self._lock:
            if channel.close_reason is None:
                channel.close_reason = reason
            self._make_dirty(channel)

    def release(self, channel: Channel, timeout: float) -> None:
        """Wait (up to `timeout`, twice) until the channel's last bytes are out and the I/O
        thread has let go of its socket; then forget the channel. The caller closes it."""
        for request in (_DROP if channel.close_reason == "slow" else _FLUSH, _DROP):
            with self._lock:
                channel.close_request = request
                self._make_dirty(channel)
            if channel.released.wait(timeout):
                break
        with self._lock:
            self._channels.discard(channel)

    def _make_dirty(self, channel: Channel) -> None:
        """Mark a channel for the next round (lock held); wake the I/O thread when the dirty
        set stops being empty, since it may then be asleep with no timeout."""
        if not self._dirty:
            try:
                self._wake_writer.send(b"\0")
            except OSError:  # full (a wake-up is pending anyway) or closed (we are done)
                pass
        self._dirty.add(channel)

    def stop(self) -> None:
        """Make `run` return; safe in a signal handler (takes no lock)."""
        self._stop.set()
        try:
            self._wake_writer.send(b"\0")
        except OSError:
            pass

    def close(self) -> None:
        """Release the selector and the wake-up sockets."""
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
