"""The server's I/O thread: one selector loop that owns every socket.

It accepts on its listeners, reads, writes, does TLS handshakes and closes; no other
thread touches a socket. What it reads goes, as bytes, into the connection's inbox, and a
pool worker works through that inbox (`handle`), never two workers on one connection at
once, so each connection's input is handled in order. Other threads queue output with
`deliver` (many (link, bytes) pairs in one call, under one lock), end a connection with
`close_link`, and post items (`post`) or timers (`set_deadline`, `call_later`).

A TLS listener speaks TLS only. Its new connection is peeked at first: a TLS handshake
record is wrapped in TLS, anything else (or a second of silence, for a codec whose
clients wait for the server's greeting) is answered with the codec's plain-text refusal
(`tls_refusal`), then closed. A handshake that never finishes ends with the login time.

The loop never blocks on one socket: what the kernel does not take waits for
EVENT_WRITE, and a link whose unsent backlog would pass `max_backlog` is ended as "slow".
All that is queued for one socket goes out in one `send`, and rounds of sends are paced so
that under load several frames share a send (on loopback the send, not Python, is what
costs). A link whose inbox holds more than `MAX_INBOX_BYTES` is not read until its worker
catches up, so a flooder costs memory no more than that.

The loop sleeps without a timeout only when it has seen, under the lock, that no link is
dirty and no timer is due; whoever makes the dirty set non-empty sends a wake-up byte. So
a wake-up is never lost: the condition to wake on is the same state the loop sleeps on.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import selectors
import signal
import socket
import ssl
import threading
import time
from typing import Callable, Deque, Iterable, Iterator, List, Optional, Set, Tuple, Union

from lanchat.core.rooms import Member
from lanchat.core.transport import Codec
from lanchat.threadpool import PoolShutDown, ThreadPool

log = logging.getLogger(__name__)

RECV_SIZE = 65536
ACCEPTS_PER_WAKE = 64  # so a storm of connects cannot starve the writes
MAX_LINGERING_REFUSALS = 256  # refused connections closing gracefully at once; more: at once
MAX_INBOX_BYTES = 256 * 1024  # unhandled input of one link before the loop stops reading it
CLOSING_DRAIN_SECONDS = 5.0  # a closing link's last frames may take this long to go
# A closing link's late input is read and dropped until it pauses this long ...
LINGER_QUIET_SECONDS = 1.0
LINGER_MAX_SECONDS = 5.0  # ... or for this long at the most
TLS_HANDSHAKE = b"\x16"  # the first byte of every TLS connection (a handshake record)
TLS_SILENCE_SECONDS = 1.0  # a plain client silent this long at a TLS port may wait for hello

# What a worker gets from a link's inbox: ("data", bytes), ("tick", None) when its
# deadline has come, or ("end", reason) once the link is over (end of file, slow ...).
Item = Tuple[str, object]


class Link(Member):
    """One connection: its socket, codec and decoder, its inbox and outbox, its state.

    The inbox, outbox and close fields are guarded by the loop's lock; `pending` (bytes
    taken from the outbox that the kernel has not accepted yet), the selector interest and
    the TLS state belong to the I/O thread alone. `session` is the server's.
    """

    def __init__(self, sock: socket.socket, peer: str, codec: Codec) -> None:
        super().__init__("", codec)
        self.sock = sock
        self.peer = peer
        self.decoder = codec.decoder()
        # A transport whose words depend on the connection (IRC: the nick, the caps) gives
        # each decoder a codec of its own.
        self.codec = getattr(self.decoder, "codec", codec)
        self.session: object = None
        self.inbox: Deque[Item] = collections.deque()
        self.inbox_bytes = 0
        self.scheduled = False  # a worker is working through the inbox
        self.outbox: List[bytes] = []
        self.outbox_bytes = 0
        self.pending = bytearray()
        self.ended = False  # "end" was posted: no more input is handed on
        self.slow = False  # fell too far behind: nothing more is sent to it
        self.closing: Optional[bool] = None  # set by close_link: linger or not
        self.close_by = 0.0
        self.closed = threading.Event()  # the socket is closed
        self.handshaking = False  # on TLS: output is held until the handshake is done
        self.awaiting: Optional[_Listener] = None  # its TLS listener, until the first byte
        self.silent_after = float("inf")  # when its silence is answered (awaiting)
        self.reading = True
        self.lingering = False
        self.linger_quiet_until = 0.0
        self.deadline = float("inf")  # when the worker wants a tick
        self.interest = 0
        self.refused = False  # only carries a refusal to its peer, then closes

    def __repr__(self) -> str:
        return f"<Link {self.name or '-'} {self.peer}>"


Admit = Callable[[socket.socket, Tuple, Codec], Union[Link, bytes]]
Handle = Callable[[Link, Item], None]


class _Listener:
    def __init__(self, sock: socket.socket, codec: Codec, tls: Optional[ssl.SSLContext]) -> None:
        self.sock = sock
        self.codec = codec
        self.tls = tls


class IOLoop:
    """Owns the listeners and every connection's socket; see the module docstring.

    `admit(sock, address, codec)` (on the I/O thread) returns a new Link or the bytes of a
    refusal; `handle(link, item)` runs on a pool worker. After a round of sends that took
    T seconds, the next round waits until `pace` × T more have passed (at most
    `max_rest`): under load the thread then works at most 1/(1 + pace) of the time and
    several frames share each send.
    """

    def __init__(
        self,
        pool: ThreadPool,
        admit: Admit,
        handle: Handle,
        max_backlog: int,
        max_rest: float = 0.0,
        pace: float = 2.0,
    ) -> None:
        self._pool = pool
        self._admit = admit
        self._handle = handle
        self._max_backlog = max_backlog
        self._max_rest = max_rest
        self._pace = pace
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        for sock in (self._wake_reader, self._wake_writer):
            sock.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()
        self._dirty: Set[Link] = set()  # links with output, a close or a read to resume
        self._links: Set[Link] = set()
        self._lingering_refusals = 0  # refused connections still closing
        self._timers: List[Tuple[float, int, object]] = []  # (when, order, Link or callable)
        self._timer_order = itertools.count()
        self._stop = threading.Event()
        self.rounds = 0  # rounds of sends so far: tests watch it advance while output waits

    # -- set up, before run ------------------------------------------------------------

    def listen(
        self, sock: socket.socket, codec: Codec, tls: Optional[ssl.SSLContext] = None
    ) -> None:
        """Accept connections on a listening socket; they speak `codec`, over TLS if given."""
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, _Listener(sock, codec, tls))

    def add_reader(self, sock: socket.socket, callback: Callable[[socket.socket], None]) -> None:
        """Call `callback(sock)` on the I/O thread whenever `sock` is readable (UDP)."""
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, callback)

    # -- the I/O thread ----------------------------------------------------------------

    def run(self) -> None:
        """Accept, read, write and run timers until `stop`."""
        next_round = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            wait = self._next_timer(now)
            if self.has_output():  # else whoever dirties a link next wakes us
                rest = max(0.0, next_round - now)
                wait = rest if wait is None else min(wait, rest)
            self._handle_events(wait)
            self._run_timers(time.monotonic())
            started = time.monotonic()
            if started >= next_round and self._flush_dirty():
                ended = time.monotonic()
                next_round = ended + min(self._max_rest, (ended - started) * self._pace)

    def _handle_events(self, wait: Optional[float]) -> None:
        for key, mask in self._selector.select(wait):
            data = key.data
            if isinstance(data, Link):
                if mask & selectors.EVENT_READ:
                    self._readable(data)
                if mask & selectors.EVENT_WRITE and not data.closed.is_set():
                    self._flush(data, [])
            elif isinstance(data, _Listener):
                self._accept(data)
            elif data == "wake":
                self._drain_wake()
            else:
                data(key.fileobj)

    def _accept(self, listener: _Listener) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, mostly: try again later
                log.error("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            admitted = self._admit(sock, address, listener.codec)
            if isinstance(admitted, Link):
                with self._lock:
                    self._links.add(admitted)
                    if listener.tls is not None:  # its first byte decides (_first_byte)
                        admitted.awaiting = listener
                        admitted.handshaking = True
                        admitted.silent_after = time.monotonic() + TLS_SILENCE_SECONDS
                        self._push_timer(admitted.silent_after, admitted)
                self._set_interest(admitted)
            else:
                self._refuse(sock, admitted, listener)

    def _refuse(self, sock: socket.socket, refusal: bytes, listener: _Listener) -> None:
        """Send a refusal and close as a link closes, lingering: half-close, then read and
        drop the peer's input until it closes. Closing with unread input would send a reset,
        which can destroy the refusal before the peer reads it (a browser sends its request
        at once). A TLS peer cannot read it yet, and past MAX_LINGERING_REFUSALS at once (a
        storm of connects) a refused socket is closed at once, so refusals hold few fds."""
        tls = listener.tls is not None
        with self._lock:
            linger = not tls and self._lingering_refusals < MAX_LINGERING_REFUSALS
            if linger:
                self._lingering_refusals += 1
        if not linger:
            try:
                if not tls:
                    sock.send(refusal)
            except OSError:
                pass
            sock.close()
            return
        link = Link(sock, "refused", listener.codec)
        link.refused = True
        with self._lock:
            self._links.add(link)
            link.outbox.append(refusal)
            link.outbox_bytes = len(refusal)
        self.close_link(link, linger=True)

    def _first_byte(self, link: Link) -> None:
        """A TLS listener's new link has sent something: a TLS handshake is wrapped in TLS,
        plain text is refused in plain text."""
        try:
            first = link.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        if not first:
            self._end(link, "disconnect")
            self._set_interest(link)  # (no more reads: it would stay readable)
        elif first == TLS_HANDSHAKE:
            self._start_tls(link)
        else:
            try:
                received = link.sock.recv(RECV_SIZE)
            except OSError:
                received = first
            self._refuse_plain(link, received)

    def _start_tls(self, link: Link) -> None:
        assert link.awaiting is not None and link.awaiting.tls is not None
        context, link.awaiting = link.awaiting.tls, None
        self._selector.unregister(link.sock)  # the TLS socket takes over its descriptor
        link.interest = 0
        try:
            link.sock = context.wrap_socket(
                link.sock, server_side=True, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS with %s failed: %s", link.peer, exc)
            self._end(link, "disconnect")
            return
        self._set_interest(link)
        self._handshake(link)

    def _refuse_plain(self, link: Link, received: bytes) -> None:
        """Plain text (`received`; b"": a silence) at a TLS port: send the codec's refusal
        in plain text instead of what waits for the handshake; then the link ends. Some
        codecs let a silent client wait."""
        assert link.awaiting is not None
        refusal = link.awaiting.codec.tls_refusal(received)
        if not refusal:
            return
        log.info("refused %s: plain text at a TLS port", link.peer)
        link.awaiting = None
        link.handshaking = False
        link.pending[:] = refusal
        with self._lock:
            link.outbox = []  # its greeting, never to be sent in plain text
            link.outbox_bytes = 0
            self._end_locked(link, "tls_required")  # and nothing more is queued
        self._flush(link, [])

    def _handshake(self, link: Link) -> None:
        try:
            link.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            return
        except ssl.SSLWantWriteError:
            self._set_interest(link, want_write=True)
            return
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s failed: %s", link.peer, exc)
            self._end(link, "disconnect")
            return
        link.handshaking = False
        self._flush(link, [])  # what was queued meanwhile (the greeting)

    def _readable(self, link: Link) -> None:
        if link.awaiting is not None:
            self._first_byte(link)
            return
        if link.handshaking:
            self._handshake(link)
            return
        chunks = []
        while True:
            try:
                data = link.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                break
            except ssl.SSLWantWriteError:
                break
            except OSError:  # reset, or a TLS error: the peer is gone
                data = b""
            if not data:
                self._eof(link)
                break
            chunks.append(data)
            # TLS may hold decrypted bytes the socket does not signal again
            if not (isinstance(link.sock, ssl.SSLSocket) and link.sock.pending()):
                break
        if link.lingering:
            link.linger_quiet_until = time.monotonic() + LINGER_QUIET_SECONDS
        elif chunks:  # (a lingering link's late input is read and dropped)
            self.post(link, ("data", b"".join(chunks)))

    def _eof(self, link: Link) -> None:
        if link.lingering:
            self._close_socket(link)
        else:
            self._end(link, "disconnect")

    def _drain_wake(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _flush_dirty(self) -> bool:
        """Send what every dirty link has queued; False if there was none."""
        with self._lock:
            if not self._dirty:
                return False
            self.rounds += 1
            dirty, self._dirty = self._dirty, set()
            work = []
            for link in dirty:
                work.append((link, link.outbox))
                link.outbox = []
                link.outbox_bytes = 0
        for link, chunks in work:
            self._flush(link, chunks)
        return True

    def _flush(self, link: Link, chunks: List[bytes]) -> None:
        """Send what this link has queued; go on with its close once all is out."""
        if link.closed.is_set():
            return
        if link.slow:
            link.pending.clear()
            chunks = []
        if link.handshaking:
            if link.closing is not None:  # it never got going
                self._close_socket(link)
            else:
                link.pending += b"".join(chunks)  # sent once the handshake is done
            return
        if chunks or link.pending:
            self._send(link, chunks)
        if link.closing is not None and not link.lingering:
            # Bytes queued since this round took the outbox (the frame a worker queued just
            # before close_link) go first: the link is dirty again and the next round ends it.
            drained = not link.pending and not self._queued(link)
            if drained or time.monotonic() >= link.close_by:
                self._finish_close(link)
                return
        wanted = (selectors.EVENT_READ if link.reading else 0) | (
            selectors.EVENT_WRITE if link.pending else 0
        )
        if wanted != link.interest:
            self._set_interest(link)

    def _queued(self, link: Link) -> bool:
        """True if bytes wait in the link's outbox."""
        with self._lock:
            return bool(link.outbox)

    def _send(self, link: Link, chunks: List[bytes]) -> None:
        data: Union[bytes, bytearray]
        if link.pending or len(chunks) > 1:
            link.pending += b"".join(chunks)
            data = link.pending
        else:
            data = chunks[0]  # the common case: no copy
        try:
            sent = link.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        except OSError:  # the peer is gone
            sent = len(data)
            self._end(link, "disconnect")
        if data is link.pending:
            del link.pending[:sent]
        elif sent < len(data):
            link.pending += data[sent:]

    def _finish_close(self, link: Link) -> None:
        """All is sent (or the drain time is up): linger, or close at once."""
        if link.closing and not link.pending:
            # Half-close, then read and drop late input, so the peer sees our last frame
            # and a FIN instead of a reset (a close with unread input sends RST).
            link.lingering = link.reading = True
            now = time.monotonic()
            link.linger_quiet_until = now + LINGER_QUIET_SECONDS
            link.close_by = now + LINGER_MAX_SECONDS
            if isinstance(link.sock, ssl.SSLSocket):
                _send_close_notify(link.sock)
            _shut_down(link.sock, socket.SHUT_WR)
            self._set_interest(link)
            with self._lock:
                self._push_timer(link.linger_quiet_until, link)
            return
        self._close_socket(link)

    def _close_socket(self, link: Link) -> None:
        if link.interest:
            self._selector.unregister(link.sock)
            link.interest = 0
        link.sock.close()
        link.pending.clear()
        with self._lock:
            self._links.discard(link)
            link.outbox = []
            link.ended = True  # nothing more is queued for it, or handed on from it
            if link.refused:
                self._lingering_refusals -= 1
        link.closed.set()

    def _set_interest(self, link: Link, want_write: bool = False) -> None:
        """Watch the link for what it waits for: input (unless paused), room to write."""
        if link.closed.is_set():
            return
        mask = selectors.EVENT_READ if link.reading else 0
        if (link.pending and not link.handshaking) or want_write:  # (held: no use yet)
            mask |= selectors.EVENT_WRITE
        if mask == link.interest:
            return
        if not link.interest:
            self._selector.register(link.sock, mask, link)
        elif not mask:
            self._selector.unregister(link.sock)
        else:
            self._selector.modify(link.sock, mask, link)
        link.interest = mask

    # -- timers ------------------------------------------------------------------------

    def _push_timer(self, when: float, target: object) -> None:
        """Lock held or on the I/O thread before any other thread runs."""
        heapq.heappush(self._timers, (when, next(self._timer_order), target))

    def _next_timer(self, now: float) -> Optional[float]:
        with self._lock:
            if not self._timers:
                return None
            return max(0.0, self._timers[0][0] - now)

    def _run_timers(self, now: float) -> None:
        due = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for target in due:
            if isinstance(target, Link):
                self._timer_for(target, now)
            else:
                self._submit(target)  # type: ignore[arg-type]

    def _timer_for(self, link: Link, now: float) -> None:
        if link.closed.is_set():
            return
        if link.awaiting is not None and now >= link.silent_after and link.closing is None:
            self._refuse_plain(link, b"")
        if link.lingering:
            if now >= link.close_by or now >= link.linger_quiet_until:
                self._close_socket(link)
            else:
                with self._lock:
                    self._push_timer(min(link.close_by, link.linger_quiet_until), link)
        elif link.closing is not None:
            self._flush(link, [])  # the drain time may be up
            if not link.closed.is_set() and not link.lingering:
                with self._lock:
                    self._push_timer(link.close_by, link)
        else:
            with self._lock:
                if link.deadline <= now:
                    link.deadline = float("inf")  # the worker sets the next one
                    self._post_locked(link, ("tick", None))
                elif link.deadline != float("inf"):
                    self._push_timer(link.deadline, link)  # it moved later meanwhile

    # -- any thread ----------------------------------------------------------------------

    def has_output(self) -> bool:
        """Whether some link has bytes queued or a request the loop has not seen."""
        with self._lock:
            return bool(self._dirty)

    def outboxes_waiting(self) -> bool:
        """Whether some link's outbox holds bytes a round has not taken yet (what the tests'
        stall watch looks at: it must not stay true while no round runs)."""
        with self._lock:
            return any(link.outbox for link in self._links)

    def deliver(self, items: Iterable[Tuple[Link, bytes]]) -> None:
        """Queue bytes for links; one too far behind is ended as "slow"."""
        limit = self._max_backlog
        with self._lock:
            dirty = self._dirty  # only under the lock: each round takes the set away
            was_idle = not dirty
            for link, data in items:  # the hot path of every fan-out: kept flat
                if link.ended or link.closing is not None:
                    continue
                backlog = link.outbox_bytes + len(link.pending)
                if backlog and backlog + len(data) > limit:
                    link.slow = True  # nothing more goes to it
                    link.outbox = []
                    link.outbox_bytes = 0
                    self._end_locked(link, "slow")
                else:
                    link.outbox.append(data)
                    link.outbox_bytes += len(data)
                    dirty.add(link)
            if was_idle and dirty:
                self._wake()  # it may be asleep with no timeout

    def post(self, link: Link, item: Item) -> None:
        """Hand an item to the link's worker, after what its inbox holds already."""
        with self._lock:
            self._post_locked(link, item)

    def set_deadline(self, link: Link, when: float) -> None:
        """Post a ("tick", None) to the link at `when` (monotonic); a later call replaces it
        unless it is later than one already set (those are found lazily)."""
        with self._lock:
            earlier = when < link.deadline
            link.deadline = when
            if earlier:
                first = not self._timers or when < self._timers[0][0]
                self._push_timer(when, link)
                if first:
                    self._wake()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` on a pool worker in about `delay` seconds."""
        with self._lock:
            when = time.monotonic() + delay
            first = not self._timers or when < self._timers[0][0]
            self._push_timer(when, callback)
            if first:
                self._wake()

    def close_link(self, link: Link, linger: bool) -> None:
        """End a link for good once what is queued for it is out (at most
        CLOSING_DRAIN_SECONDS); with `linger`, half-close and drop late input first."""
        with self._lock:
            if link.closing is None:
                link.ended = True
                link.closing = linger
                link.close_by = time.monotonic() + CLOSING_DRAIN_SECONDS
                self._push_timer(link.close_by, link)
                self._make_dirty(link)

    def _post_locked(self, link: Link, item: Item) -> None:
        if link.ended:
            return
        if item[0] == "end":
            link.ended = True
        link.inbox.append(item)
        if item[0] == "data":
            link.inbox_bytes += len(item[1])  # type: ignore[arg-type]
            if link.inbox_bytes > MAX_INBOX_BYTES and link.reading:
                link.reading = False  # the worker resumes it once it has caught up
                self._make_dirty(link)
        if not link.scheduled:
            link.scheduled = True
            self._submit(lambda: self._work(link))

    def _end(self, link: Link, reason: str) -> None:
        with self._lock:
            self._end_locked(link, reason)

    def _end_locked(self, link: Link, reason: str) -> None:
        """The link is over: its worker is told (it ends the session and closes it)."""
        link.reading = False
        self._make_dirty(link)
        self._post_locked(link, ("end", reason))

    def _submit(self, task: Callable[[], None]) -> None:
        try:
            self._pool.submit(task)
        except PoolShutDown:  # shutting down: close_all takes care of every link
            pass

    def _work(self, link: Link) -> None:
        """On a pool worker: hand the link's items to `handle`, in order, until none is left."""
        while True:
            with self._lock:
                if not link.inbox:
                    link.scheduled = False
                    return
                item = link.inbox.popleft()
                if item[0] == "data":
                    link.inbox_bytes -= len(item[1])  # type: ignore[arg-type]
                    if not link.reading and not link.ended and link.inbox_bytes == 0:
                        link.reading = True
                        self._make_dirty(link)  # the loop watches for input again
            try:
                self._handle(link, item)
            except Exception:  # the handler answers its own errors; this is a bug
                log.exception("handling %s for %s failed", item[0], link.peer)

    def _make_dirty(self, link: Link) -> None:
        """Mark a link for the next round (lock held); wake the I/O thread when the dirty
        set stops being empty, since it may then be asleep with no timeout."""
        if not self._dirty:
            self._wake()
        self._dirty.add(link)

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed (we are done)
            pass

    # -- shutting down -----------------------------------------------------------------

    @contextlib.contextmanager
    def woken_by_signals(self) -> Iterator[None]:
        """In the main thread: let any signal wake the loop. The kernel may hand a signal
        to another thread; Python then runs its handler in the main thread only once that
        thread runs bytecode, which a `select` with no timeout would never let it do."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.set_wakeup_fd(self._wake_writer.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)

    def stop(self) -> None:
        """Make `run` return; safe in a signal handler (takes no lock)."""
        self._stop.set()
        self._wake()

    def close_all(self, notice: Callable[[Link], bytes], timeout: float) -> None:
        """After `run`: send each open link its `notice`, let them drain for up to
        `timeout` seconds, then close every socket."""
        with self._lock:
            links = [link for link in self._links if link.closing is None]
        self.deliver((link, notice(link)) for link in links)
        deadline = time.monotonic() + timeout
        while True:
            self._flush_dirty()
            left = deadline - time.monotonic()
            with self._lock:
                remaining = list(self._links)
            if left <= 0 or not any(link.pending and not link.handshaking for link in remaining):
                break
            self._handle_events(min(left, 0.05))
        for link in remaining:
            if not link.closed.is_set():
                _shut_down(link.sock, socket.SHUT_RDWR)
                self._close_socket(link)

    def close(self) -> None:
        """Release the selector and the wake-up sockets."""
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()


def _send_close_notify(sock: ssl.SSLSocket) -> None:
    """Tell a TLS peer we are done (its next read is a clean end, not a truncation)."""
    try:
        sock.unwrap()
    except (ssl.SSLError, OSError, ValueError):  # e.g. the peer's close_notify not in yet
        pass


def _shut_down(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
