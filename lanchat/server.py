"""The headless lanchat server: sockets, the thread pool and the room, wired together.

Design (docs/design.md): one I/O thread (`lanchat.ioloop`) accepts connections and writes
every socket; each connection's reading and frame handling runs on a worker of the
project's thread pool (`lanchat.threadpool`), sized from `max_clients`, so a connection
over capacity gets `server_full` at once, and one over its address's share
(`lanchat.admission`) gets `too_many_connections`. Handlers act on frames through the room
(`lanchat.room`), which queues encoded bytes on the I/O thread's outboxes.

Callers use `ChatServer(config)` (binds at once; `address` tells the real port),
`serve_forever()`, `shutdown()` from another thread or a signal handler, and
`server_close()`. `run(args)` is the `lanchat server` command.
"""

from __future__ import annotations

import argparse
import errno
import hmac
import itertools
import logging
import os
import secrets
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union, cast

from lanchat import protocol
from lanchat.admission import AddressShares
from lanchat.discovery import Responder
from lanchat.history import History, HistoryError, MemoryHistory, SqliteHistory
from lanchat.history import adopt_legacy_file as adopt_legacy_history
from lanchat.history import default_path as history_default_path
from lanchat.ioloop import Channel, IOLoop
from lanchat.password import PasswordFileError, read_password
from lanchat.protocol import Frame, ProtocolError
from lanchat.ratelimit import FLOOD_BURST, FLOOD_RATE, TokenBucket
from lanchat.room import Deliver, Member, Resume, Room
from lanchat.safelog import SafeFormatter
from lanchat.threadpool import PoolBusy, PoolShutDown, ThreadPool

log = logging.getLogger(__name__)

RECV_SIZE = 65536
CLOSING_DRAIN_SECONDS = 5.0  # a closing connection's last frames may take this long to go
# A closing connection's late input is read and dropped until it pauses this long ...
LINGER_QUIET_SECONDS = 1.0
LINGER_MAX_SECONDS = 5.0  # ... or for this long at the most

AUTH_FAILURE_DELAY = 1.0  # seconds before a wrong password is answered

REFUSAL_LOG_INTERVAL = 60.0  # a connection's refusals are logged at most this often


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server is started with; the defaults are the contract's."""

    bind: str = "0.0.0.0"
    port: int = protocol.DEFAULT_PORT
    port_span: int = protocol.PORT_SPAN
    name: str = ""  # empty: the host name
    max_clients: int = 50
    max_per_address: int = 10  # connections one client address may hold at once
    worker_idle_timeout: float = 10.0  # seconds before an idle connection thread ends
    history: int = 100
    login_timeout: float = protocol.LOGIN_TIMEOUT
    idle_timeout: float = protocol.IDLE_TIMEOUT
    rate: float = 5.0
    burst: int = 30
    max_backlog: int = 1024 * 1024
    flush_timeout: float = 1.0  # how long shutdown waits for outboxes to drain
    max_rest: float = 0.05  # the longest the I/O thread waits between rounds of sends
    discovery: bool = True
    log_messages: bool = False
    history_db: Optional[str] = None  # a path ({port}: the real port); None: memory only
    password: Optional[str] = None


class NoFreePort(OSError):
    """Every port of the range is taken."""


class Connection(Member, Channel):
    """One client: its socket's channel, the room member, and the session's state."""

    def __init__(self, sock: socket.socket, peer: str, config: ServerConfig) -> None:
        Member.__init__(self, "")
        Channel.__init__(self, sock)
        self.peer = peer
        self.decoder = protocol.FrameDecoder()
        self.bucket = TokenBucket(config.rate, config.burst)
        self.flood_allowance = TokenBucket(FLOOD_RATE, FLOOD_BURST)  # refusals before flooding
        self.refused = 0  # frames refused as rate_limited and not logged yet
        self.refusals_logged_at: Optional[float] = None
        self.connected_at = self.last_heard = time.monotonic()
        self.pinged = False
        self.logged_in = False
        self.nonce = secrets.token_hex(16) if config.password else None

    def __repr__(self) -> str:
        return f"<Connection {self.name or '-'} {self.peer}>"


Handler = Callable[[Connection, Frame], Optional[str]]


class ChatServer:
    """A lanchat server bound to its port; `serve_forever` runs it until `shutdown`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.name = config.name or socket.gethostname()
        self._listener = _listen(config.bind, config.port, config.port_span)
        self.address: Tuple[str, int] = self._listener.getsockname()[:2]
        try:
            self._history = self._open_history()
        except HistoryError:
            self._listener.close()
            raise
        self._loop = IOLoop(self._listener, self._admit, config.max_backlog, config.max_rest)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._loop_thread: Optional[threading.Thread] = None
        self._responder = self._open_responder() if config.discovery else None
        # One worker per connection, plus one for the discovery responder.
        workers = config.max_clients + (1 if self._responder else 0)
        self._pool = ThreadPool(workers, "lanchat-conn", config.worker_idle_timeout)
        self._shares = AddressShares(config.max_per_address)
        # Every member of this room is a Connection, so also a Channel of the loop.
        self.room = Room(cast(Deliver, self._loop.deliver), self._history, config.history)
        self._handlers: Dict[str, Handler] = {
            "login": self._on_login,
            "say": self._on_say,
            "who": self._on_who,
            "ping": self._on_ping,
            "pong": self._on_pong,
            "quit": self._on_quit,
        }

    def _open_history(self) -> History:
        if self.config.history_db is None:
            return MemoryHistory(self.config.history)
        if self.config.history_db == history_default_path():
            adopt_legacy_history(self.address[1])
        path = Path(self.config.history_db.replace("{port}", str(self.address[1])))
        history = SqliteHistory(path)
        log.info("history in %s (last id %d)", path, history.last_id)
        return history

    def _open_responder(self) -> Optional[Responder]:
        """The LAN discovery responder on the base port, or None where it cannot be had."""
        if ":" in self.config.bind:  # discovery is IPv4 broadcast
            return None
        port = self.config.port or self.address[1]
        try:
            return Responder(self.config.bind, port, self._describe)
        except OSError as exc:
            log.warning("LAN discovery is off: cannot listen on UDP port %d: %s", port, exc)
            return None

    def _describe(self) -> Frame:
        return protocol.server_info(self.name, self.address[1], self.users, self.config.max_clients)

    # -- the I/O thread ------------------------------------------------------------

    def serve_forever(self) -> None:
        """Accept and write until `shutdown`; then tell everyone, close all, stop the pool."""
        self._loop_thread = threading.current_thread()
        if self._responder:
            self._pool.submit(self._responder.serve)
        try:
            self._loop.run()
        finally:
            notice = protocol.shutdown(f"{self.name} is shutting down.")
            self._loop.close_all(protocol.encode(notice), self.config.flush_timeout)
            if self._responder:
                self._responder.close()
            if not self._pool.shutdown(wait=True, timeout=self.config.flush_timeout):
                log.error("some connections did not end in time")
            self._stopped.set()

    def _admit(self, sock: socket.socket, address: Tuple) -> None:
        """Run a new connection on a free pool worker, or refuse it: `too_many_connections`
        when its address holds its share already, else `server_full` when no worker is free.
        """
        host = address[0]
        peer = f"{host}:{address[1]}"
        if not self._shares.take(host):
            limit = self.config.max_per_address
            log.warning("refused %s: too many connections from its address (%d)", peer, limit)
            message = f"Too many connections from your address (at most {limit})."
            self._refuse(sock, protocol.error("too_many_connections", message))
            return
        conn = Connection(sock, peer, self.config)
        self._loop.add(conn)  # before its reader runs, which removes it at the end
        try:
            self._pool.try_submit(self._serve_in_share, conn, host)
        except (PoolBusy, PoolShutDown):
            self._shares.give_back(host)
            self._loop.remove(conn)
            log.warning("refused %s: server full (%d connections)", peer, self.config.max_clients)
            full = f"The server is full ({self.config.max_clients})."
            self._refuse(sock, protocol.error("server_full", full))

    def _refuse(self, sock: socket.socket, error: Frame) -> None:
        """Send `hello` and this error on a socket that gets no reader, and close it."""
        refusal = protocol.encode(protocol.hello(self.name, [])) + protocol.encode(error)
        try:
            sock.send(refusal)  # small enough for an empty socket buffer
        except OSError:
            pass
        sock.close()

    # -- on pool threads ---------------------------------------------------------------

    def _send(self, conn: Connection, frame: Frame) -> None:
        self._loop.deliver([(conn, protocol.encode(frame))])

    def _serve_in_share(self, conn: Connection, host: str) -> None:
        """Serve the connection; its address's share is given back once it is closed."""
        try:
            self._serve(conn)
        finally:
            self._shares.give_back(host)

    def _serve(self, conn: Connection) -> None:
        """One connection's whole life, on a pool worker: read, handle, leave, close."""
        log.info("connect %s", conn.peer)
        reason = "error"
        try:
            rate, burst = self.config.rate, self.config.burst
            self._send(conn, protocol.hello(self.name, self.room.names, conn.nonce, rate, burst))
            reason = self._read_until_done(conn)
        except Exception:
            log.exception("connection %s failed", conn.peer)
            self._send(conn, protocol.error("server_error"))
        finally:
            self._log_refusals(conn)
            if conn.logged_in:
                announce = not self._stop.is_set()
                if self.room.leave(conn, reason, announce=announce):
                    log.info("leave %s %s (%s)", conn.name, conn.peer, reason)
            else:
                log.info("disconnect %s before login (%s)", conn.peer, reason)
            self._close(conn, linger=reason not in ("disconnect", "slow"))

    def _read_until_done(self, conn: Connection) -> str:
        """Read and handle frames; return the leave reason once the connection must end."""
        waiter = _ReadWaiter(conn.sock)
        while True:
            if conn.close_reason is not None:
                return conn.close_reason
            timeout = self._check_timers(conn)
            if isinstance(timeout, str):
                return timeout
            if not waiter.wait(timeout):
                continue
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                return conn.close_reason or "disconnect"
            conn.last_heard = time.monotonic()
            conn.pinged = False
            conn.decoder.feed(data)
            outcome = self._handle_buffered(conn)
            if outcome is not None:
                return outcome

    def _check_timers(self, conn: Connection) -> Union[float, str]:
        """Seconds until the next timer, or the leave reason when one has run out."""
        now = time.monotonic()
        if not conn.logged_in:
            left = conn.connected_at + self.config.login_timeout - now
            if left > 0:
                return left
            self._send(conn, protocol.error("timeout", "Login took too long."))
            return "timeout"
        quiet = now - conn.last_heard
        if quiet >= self.config.idle_timeout:
            self._send(conn, protocol.error("timeout", "Nothing heard from you for too long."))
            return "timeout"
        ping_at = self.config.idle_timeout / 2
        if quiet >= ping_at and not conn.pinged:
            conn.pinged = True
            self._send(conn, protocol.ping(f"idle-{next(_ping_tokens)}"))
        if conn.pinged:
            return self.config.idle_timeout - quiet
        return ping_at - quiet

    def _handle_buffered(self, conn: Connection) -> Optional[str]:
        while True:
            try:
                frame = conn.decoder.next_frame()
            except ProtocolError as exc:
                if conn.logged_in and exc.code != "too_long":  # a bad line is a frame too
                    exc = self._rate_limit_error(conn) or exc
                self._send(conn, protocol.error_from(exc))
                if (
                    exc.code == "too_long"
                    or protocol.closes_connection(exc.code)
                    or not conn.logged_in
                ):
                    log.info("closing %s after %s", conn.peer, exc.code)
                    return "error"
                continue
            if frame is None:
                return None
            outcome = self._handle(conn, frame)
            if outcome is not None:
                return outcome

    def _handle(self, conn: Connection, frame: Frame) -> Optional[str]:
        """Act on one frame; return a leave reason to end the connection."""
        kind = frame["type"]
        try:
            refusal = self._rate_limit_error(conn)
            if refusal is not None:
                raise refusal
            if kind not in protocol.CLIENT_FRAMES:
                raise ProtocolError("unknown_type", f"Unknown frame type {kind!r}.")
            if not conn.logged_in and kind not in ("login", "ping", "quit"):
                raise ProtocolError("not_logged_in", "Log in first.")
            if conn.logged_in and kind == "login":
                raise ProtocolError("bad_frame", "You are logged in already.")
            protocol.validate(frame, protocol.CLIENT_FRAMES)
            return self._handlers[kind](conn, frame)
        except ProtocolError as exc:
            if exc.ref is None:
                exc.ref = protocol.ref_of(frame)
            self._send(conn, protocol.error_from(exc))
            closes = protocol.closes_connection(exc.code) or (
                exc.code == "bad_frame" and not conn.logged_in
            )
            if closes:
                log.info("closing %s after %s", conn.peer, exc.code)
                return "error"
            return None
        except Exception:  # a bug or a broken history: tell the client, end the session cleanly
            log.exception("closing %s: its %r frame failed", conn.peer, kind)
            self._send(conn, protocol.error("server_error", ref=protocol.ref_of(frame)))
            return "error"

    def _rate_limit_error(self, conn: Connection) -> Optional[ProtocolError]:
        """Charge one frame to the client's rate limit: None if allowed, else the error to
        answer, `rate_limited` or, once far too many were refused, `flooding`."""
        wait = conn.bucket.take()
        if not wait:
            return None
        conn.refused += 1
        now = time.monotonic()
        if conn.refusals_logged_at is None or now - conn.refusals_logged_at >= REFUSAL_LOG_INTERVAL:
            self._log_refusals(conn)
        if conn.flood_allowance.take():
            return ProtocolError("flooding", "Far too many frames too fast; goodbye.")
        return ProtocolError("rate_limited", "Too many frames; wait a moment.", retry_after=wait)

    def _log_refusals(self, conn: Connection) -> None:
        """Log in one line the connection's rate-limit refusals not logged yet."""
        if conn.refused:
            log.info(
                "rate limited %s %s: %d %s refused",
                conn.name or "-",
                conn.peer,
                conn.refused,
                "frame" if conn.refused == 1 else "frames",
            )
            conn.refused = 0
            conn.refusals_logged_at = time.monotonic()

    def _on_login(self, conn: Connection, frame: Frame) -> Optional[str]:
        if not protocol.is_compatible(frame["version"]):
            log.info("refused %s: version %r", conn.peer, frame["version"])
            self._send(
                conn,
                protocol.error(
                    "incompatible_version",
                    f"This server speaks lanchat {protocol.VERSION}; you have {frame['version']}.",
                    server_version=protocol.VERSION,
                ),
            )
            return "error"
        if conn.nonce is not None and not self._proof_is_right(conn, frame):
            return "error"
        resume = Resume(frame.get("resume"), frame.get("last_id"), frame.get("history_id"))
        try:
            name = protocol.validate_name(frame["name"])
            conn.rename(name)
            stale = self.room.join(conn, resume)
        except ProtocolError as exc:
            log.info(
                "refused name %r from %s: %s %s", frame["name"], conn.peer, exc.code, exc.message
            )
            raise
        conn.logged_in = True
        conn.bucket = TokenBucket(self.config.rate, self.config.burst)  # a full burst to start
        if stale is not None:
            assert isinstance(stale, Connection)
            log.info("login %s %s takes over from %s", name, conn.peer, stale.peer)
            self._loop.drop(stale, "replaced")
        else:
            log.info("login %s %s", name, conn.peer)
        return None

    def _proof_is_right(self, conn: Connection, frame: Frame) -> bool:
        """Check the login's password proof; a wrong one is logged, slowed down and refused."""
        assert self.config.password is not None and conn.nonce is not None
        expected = protocol.password_proof(self.config.password, conn.nonce, frame["name"])
        if hmac.compare_digest(str(frame.get("auth", "")), expected):
            return True
        log.warning("auth failed from %s for name %r", conn.peer, frame["name"])
        self._stop.wait(AUTH_FAILURE_DELAY)  # slows guessing; a shutdown cuts it short
        self._send(conn, protocol.error("auth_failed", "Wrong or missing password."))
        return False

    def _on_say(self, conn: Connection, frame: Frame) -> Optional[str]:
        text = protocol.clean_text(frame["text"])
        message = self.room.say(conn, text, frame.get("to"), frame.get("ref"))
        if self.config.log_messages and "to" not in message:  # private ones stay private
            log.info("message %d from %s: %s", message["id"], conn.name, text)
        return None

    def _on_who(self, conn: Connection, frame: Frame) -> Optional[str]:
        self._send(conn, protocol.online(self.room.names))
        return None

    def _on_ping(self, conn: Connection, frame: Frame) -> Optional[str]:
        self._send(conn, protocol.pong(frame.get("token")))
        return None

    def _on_pong(self, conn: Connection, frame: Frame) -> Optional[str]:
        return None  # hearing anything at all already reset the idle timer

    def _on_quit(self, conn: Connection, frame: Frame) -> Optional[str]:
        return "quit"

    def _close(self, conn: Connection, linger: bool) -> None:
        """Let the I/O thread send the last frames and let go of the socket, then close it."""
        self._loop.release(conn, CLOSING_DRAIN_SECONDS)
        if linger:
            _drain_input(conn.sock, self._stop)
        conn.sock.close()

    # -- control -----------------------------------------------------------------------

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop `serve_forever`; from another thread, wait until it has returned."""
        self._stop.set()
        self._loop.stop()  # takes no lock: this may run in a signal handler
        if threading.current_thread() is self._loop_thread or self._loop_thread is None:
            return True
        return self._stopped.wait(timeout)

    def server_close(self) -> None:
        """Release the listening socket and the loop's resources."""
        if self._responder:
            self._responder.close()
        self._history.close()
        self._listener.close()
        self._loop.close()

    @property
    def users(self) -> int:
        """How many users are logged in."""
        return len(self.room)


_ping_tokens = itertools.count(1)


class _ReadWaiter:
    """Waits until one socket is readable; poll() where there is one (no FD_SETSIZE cap)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            self._poll.register(sock, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        if self._poll is not None:
            return bool(self._poll.poll(max(0, int(timeout * 1000) + 1)))
        readable, _, _ = select.select([self._sock], [], [], timeout)
        return bool(readable)


def _drain_input(sock: socket.socket, stopping: threading.Event) -> None:
    """Half-close, then read and drop late input until the peer closes or pauses, so it
    sees our last frame and a FIN instead of a reset (a close with unread input sends RST).
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        waiter = _ReadWaiter(sock)
        give_up = time.monotonic() + LINGER_MAX_SECONDS
        quiet_until = time.monotonic() + LINGER_QUIET_SECONDS
        while not stopping.is_set():
            now = time.monotonic()
            left = min(give_up, quiet_until) - now
            if left <= 0:
                return
            # short slices, so a server shutting down does not wait for the peer
            if waiter.wait(min(left, 0.1)):
                if not sock.recv(RECV_SIZE):
                    return
                quiet_until = time.monotonic() + LINGER_QUIET_SECONDS
    except OSError:
        return


def _listen(bind: str, base: int, span: int) -> socket.socket:
    """Listen on the first free port of base..base+span (just `base` when it is 0)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    ports = [0] if base == 0 else list(range(base, min(base + span, 65535) + 1))
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        if os.name != "nt":  # elsewhere SO_REUSEADDR lets two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
            sock.listen(socket.SOMAXCONN)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            raise
        return sock
    raise NoFreePort(errno.EADDRINUSE, f"every port from {ports[0]} to {ports[-1]} is taken")


# -- the `lanchat server` command ------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run a server until SIGINT, SIGTERM or SIGHUP; return the exit code."""
    _configure_logging(args.log_level, args.log_file)
    _raise_file_limit()
    try:
        password = read_password(args.password_file)
    except PasswordFileError as exc:  # a bad argument: never start an open server instead
        print(f"lanchat: {exc}", file=sys.stderr)
        return 2
    config = ServerConfig(
        bind=args.bind,
        port=args.port,
        name=args.name or "",
        max_clients=args.max_clients,
        max_per_address=args.max_per_address,
        worker_idle_timeout=args.worker_idle_timeout,
        history=args.history,
        login_timeout=args.login_timeout,
        idle_timeout=args.idle_timeout,
        rate=args.rate,
        burst=args.burst,
        max_backlog=args.max_backlog,
        max_rest=args.max_rest,
        discovery=not args.no_discovery,
        log_messages=args.log_messages,
        history_db=None if args.no_history else (args.history_db or history_default_path()),
        password=password,
    )
    try:
        server = ChatServer(config)
    except HistoryError as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lanchat: cannot listen on {args.bind}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = server.address
    signals = _stop_on_signals(server)
    access = "password required" if password else "no password"
    started = (
        f"lanchat {protocol.VERSION} server {server.name!r} ({access}) listening on {host}:{port}"
    )
    print(started, flush=True)
    log.info("%s", started)  # the log file gets it too
    try:
        server.serve_forever()
    finally:
        server.server_close()
    log.info("stopped by %s", signals[0] if signals else "a shutdown request")
    return 0


def _stop_on_signals(server: ChatServer) -> List[str]:
    """Make SIGINT, SIGTERM and SIGHUP (its terminal closed) shut the server down cleanly;
    return the list that will name the signals received, in order."""
    received: List[str] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)  # logged later, not in the handler
        server.shutdown()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Windows has no SIGHUP; under `nohup` it is ignored on purpose and stays so.
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, stop)
    return received


def _configure_logging(level: str, path: Optional[str]) -> None:
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


def _raise_file_limit() -> None:
    """A thousand clients need more descriptors than the usual soft limit of 1024."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard > 0 else soft, hard))
        except (ValueError, OSError):
            pass
