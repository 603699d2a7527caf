"""The headless lanchat server: the I/O loop, the thread pool and the chat, wired together.

Design (docs/design.md): one I/O thread (`lanchat.core.ioloop`) owns every socket: it accepts,
reads, writes and closes. What it reads goes to a small fixed pool of workers
(`lanchat.threadpool`), which feed each connection's frames, in order, to its
`lanchat.core.session.Session`, a protocol state machine without I/O. Sessions act through
the chat (`lanchat.core.chat`), which keeps the rooms and fans typed events out, encoded
once per wire format (`lanchat.core.transport`). Capacity is counted: a connection over
`max_clients` gets `server_full`, one over its address's share (`lanchat.core.admission`)
`too_many_connections`.

Callers use `ChatServer(config)` (binds at once; `address` tells the real port),
`serve_forever()`, `shutdown()` from another thread or a signal handler, and
`server_close()`. `run(args)` is the `lanchat server` command.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple, Union, cast

from lanchat import console, lan, names, protocol, tls
from lanchat.console.logbuffer import LogBuffer
from lanchat.core import events, operators
from lanchat.core.admission import AddressShares
from lanchat.core.chat import Chat, Deliver
from lanchat.core.config import (
    OperatorsFileError,
    ServerConfig,
    config_from_args,
    read_operators_file,
)
from lanchat.core.history import (
    History,
    HistoryError,
    MemoryHistory,
    SqliteHistory,
    data_dir,
    host_key,
)
from lanchat.core.history import adopt_legacy_file as adopt_legacy_history
from lanchat.core.history import default_path as history_default_path
from lanchat.core.ioloop import IOLoop, Item, Link
from lanchat.core.moderation import Moderation
from lanchat.core.responder import Responder
from lanchat.core.rooms import Member
from lanchat.core.safelog import SafeFormatter
from lanchat.core.session import Effects, Session, SessionConfig
from lanchat.core.transport import LANCHAT, Codec
from lanchat.irc.transport import IRC_PORT, IRC_TLS_PORT, IrcCodec, IrcDecoder
from lanchat.password import PasswordFileError, read_password
from lanchat.protocol import Frame, ProtocolError
from lanchat.threadpool import ThreadPool
from lanchat.web.http import Site
from lanchat.web.transport import WebCodec

log = logging.getLogger(__name__)


CONSOLE = "console"  # the operator name of the server console's actions
ABRUPT_ENDS = ("disconnect", "slow")  # a link ended so is closed at once, without lingering


class NoFreePort(OSError):
    """Every port of the range is taken."""


class ChatServer:
    """A lanchat server bound to its port; `serve_forever` runs it until `shutdown`.

    It wires the parts together: the I/O loop owns the sockets, a fixed pool of workers
    feeds each connection's input to its `Session`, the chat fans events out. More
    listeners (another port, another codec, TLS) can be added with `listen` before
    `serve_forever`.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.name = config.name or socket.gethostname()
        # TLS on every listener (raises tls.CertificateError before any port is taken)
        self._tls: Optional[ssl.SSLContext] = None
        self.fingerprint: Optional[str] = None  # the certificate's, when on TLS
        if config.tls_cert is not None:
            cert, key = Path(config.tls_cert), Path(config.tls_key or config.tls_cert)
            self._tls, self.fingerprint = tls.server_context(cert, key)
        listener = _listen(config.bind, config.port, config.port_span)
        self.address: Tuple[str, int] = listener.getsockname()[:2]
        self._listeners = [listener]
        self.web_address: Optional[Tuple[str, int]] = None  # where the web client is served
        self.irc_address: Optional[Tuple[str, int]] = None  # where IRC clients connect
        web = irc = None
        try:
            web = _listen(config.bind, self._web_base(), config.port_span) if config.web else None
            irc = _listen(config.bind, self._irc_base(), config.port_span) if self._irc_on else None
        except OSError:
            for sock in [listener, web]:
                if sock is not None:
                    sock.close()
            raise
        try:
            self._history = self._open_history()
        except HistoryError:
            for sock in [listener, web, irc]:
                if sock is not None:
                    sock.close()
            raise
        self._pool = ThreadPool(config.workers, "lanchat-worker", config.worker_idle_timeout)
        self._loop = IOLoop(
            self._pool, self._admit, self._handle, config.max_backlog, config.max_rest
        )
        self._loop.listen(listener, LANCHAT, self._tls)
        if web is not None:
            self.listen(web, WebCodec(Site(), scheme="https" if self._tls else "http"), self._tls)
            self.web_address = web.getsockname()[:2]
        if irc is not None:
            # (the chat is made below; SASL asks it only once connections come)
            self.listen(
                irc,
                IrcCodec(lambda *check: self.chat.name_password_owner(*check)),
                self._tls,
            )
            self.irc_address = irc.getsockname()[:2]
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._loop_thread: Optional[threading.Thread] = None
        self._responder = self._open_responder() if config.discovery else None
        if self._responder:
            for sock in self._responder.sockets:
                self._loop.add_reader(sock, self._responder.receive)
        self._shares = AddressShares(config.max_per_address)
        self._connections = 0  # counted in by _admit, out by _end
        self._count_lock = threading.Lock()
        # Every member of this chat is a Link of the loop.
        self.chat = Chat(
            cast(Deliver, self._loop.deliver),
            self._history,
            config.history,
            schedule=self._loop.call_later,
            rules=config.room_rules,
            moderation=Moderation(self._history, config.operators),
        )
        self._shutdown_message: Optional[str] = None
        self._sessions = SessionConfig(
            server_name=self.name,
            rate=config.rate,
            burst=config.burst,
            login_timeout=config.login_timeout,
            idle_timeout=config.idle_timeout,
            password=config.password,
            log_messages=config.log_messages,
        )

    def listen(
        self, sock: socket.socket, codec: Codec = LANCHAT, tls: Optional[ssl.SSLContext] = None
    ) -> None:
        """Also accept on another listening socket (before `serve_forever`)."""
        self._listeners.append(sock)
        self._loop.listen(sock, codec, tls)

    def _web_base(self) -> int:
        """The first web port to try: --web-port, else the lanchat port + 100."""
        if self.config.web_port is not None:
            return self.config.web_port
        if self.config.port == 0:
            return 0  # any free port, like the lanchat port
        return min(self.address[1] + protocol.WEB_PORT_OFFSET, 65535 - self.config.port_span)

    @property
    def _irc_on(self) -> bool:
        return self.config.irc or self.config.irc_port is not None

    def _irc_base(self) -> int:
        """The first IRC port to try: --irc-port, else 6667 (6697 on TLS; any free port
        when the lanchat port is 0, as in tests)."""
        if self.config.irc_port is not None:
            return self.config.irc_port
        if self.config.port == 0:
            return 0
        return IRC_TLS_PORT if self._tls else IRC_PORT

    def _open_history(self) -> History:
        if self.config.history_db is None:
            return MemoryHistory(self.config.history)
        if self.config.history_db == history_default_path():
            adopt_legacy_history(self.address[1], self.config.default_room)
        path = Path(self.config.history_db.replace("{port}", str(self.address[1])))
        history = SqliteHistory(path, self.config.default_room)
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
        web_port = self.web_address[1] if self.web_address else None
        irc_port = self.irc_address[1] if self.irc_address else None
        return protocol.server_info(
            self.name,
            self.address[1],
            self.users,
            self.config.max_clients,
            web_port,
            irc_port,
            fingerprint=self.fingerprint,
        )

    # -- the I/O thread ------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until `shutdown`; then tell everyone, close all, stop the pool."""
        self._loop_thread = threading.current_thread()
        try:
            with self._loop.woken_by_signals():
                self._loop.run()
        finally:
            notice = events.Shutdown(self._shutdown_message or f"{self.name} is shutting down.")
            self._loop.close_all(lambda link: _last_words(link, notice), self.config.flush_timeout)
            if not self._pool.shutdown(wait=True, timeout=self.config.flush_timeout):
                log.error("some connections did not end in time")
            self._stopped.set()

    def _admit(self, sock: socket.socket, address: Tuple, codec: Codec) -> Union[Link, bytes]:
        """A new connection's link, greeted; or the bytes that refuse it:
        `too_many_connections` when its address holds its share already, `server_full`
        when the server holds `max_clients` connections."""
        host = address[0]
        peer = f"{host}:{address[1]}"
        if not self._shares.take(host):
            limit = self.config.max_per_address
            log.warning("refused %s: too many connections from its address (%d)", peer, limit)
            message = f"Too many connections from your address (at most {limit})."
            return self._refusal(codec, events.Error("too_many_connections", message))
        with self._count_lock:
            full = self._connections >= self.config.max_clients
            if not full:
                self._connections += 1
        if full:
            self._shares.give_back(host)
            log.warning("refused %s: server full (%d connections)", peer, self.config.max_clients)
            message = f"The server is full ({self.config.max_clients})."
            return self._refusal(codec, events.Error("server_full", message))
        link = Link(sock, peer, codec)
        if isinstance(link.decoder, IrcDecoder):
            link.decoder.sasl.host = host  # its SASL checks count against its address
        now = time.monotonic()
        if link.decoder.opened:
            self._start_session(link, now)
        else:  # the transport's own request comes first, in the time a login has
            self._loop.set_deadline(link, now + self.config.login_timeout)
        return link

    def _refusal(self, codec: Codec, error: events.Error) -> bytes:
        return codec.refusal(events.Hello(self.name, ()), error)

    def _start_session(self, link: Link, now: float) -> Session:
        """Make the link a session and greet it."""
        # A name password the transport has checked (IRC SASL) is not hashed again.
        verified = link.decoder.sasl.verified if isinstance(link.decoder, IrcDecoder) else None
        session = Session(self._sessions, self.chat, link, link.peer, now, verified)
        link.session = session
        self._apply(link, session, session.start())
        self._loop.set_deadline(link, session.deadline)
        return session

    # -- on pool workers, one at a time per link ------------------------------------

    def _handle(self, link: Link, item: Item) -> None:
        """Feed one item of a link's input to its session and carry out the effects."""
        session = link.session
        if session is None:
            self._before_session(link, item)
            return
        assert isinstance(session, Session)
        if session.ended:
            return
        kind, value = item
        if kind == "end":
            self._end(link, session, str(value))
            return
        now = time.monotonic()
        if kind == "tick":
            self._apply(link, session, session.tick(now))
        else:
            assert isinstance(value, bytes)
            link.decoder.feed(value)
            self._receive(link, session, now)
        if not session.ended:
            self._loop.set_deadline(link, session.deadline)

    def _receive(self, link: Link, session: Session, now: float) -> None:
        """Hand the frames the decoder holds to the session; send what the transport
        answers itself; end the session if the transport is done."""
        while not session.ended:
            try:
                frame = link.decoder.next_frame()
            except ProtocolError as exc:
                effects = session.bad_input(exc, now)
            else:
                if frame is None:
                    break
                effects = session.receive(frame, now)
            self._apply(link, session, effects)
        self._send_reply(link)
        if link.decoder.ending is not None:
            self._end(link, session, link.decoder.ending)

    def _before_session(self, link: Link, item: Item) -> None:
        """A link whose transport has a say before any session (the web's HTTP request):
        it becomes a session once its decoder is opened, or it is closed without one."""
        if link.closing is not None:
            return  # served, refused or timed out already
        kind, value = item
        if kind == "data":
            assert isinstance(value, bytes)
            link.decoder.feed(value)
            self._send_reply(link)  # (the 101 before the session's hello)
            if link.decoder.opened:
                now = time.monotonic()
                session = self._start_session(link, now)
                self._receive(link, session, now)
                if not session.ended:
                    self._loop.set_deadline(link, session.deadline)
                return
            if link.decoder.ending is None:
                return
        elif kind == "tick":
            self._loop.deliver([(link, link.decoder.farewell("timeout"))])
        self._loop.close_link(link, linger=kind != "end" or value not in ABRUPT_ENDS)
        self._count_out(link)

    def _send_reply(self, link: Link) -> None:
        reply = link.decoder.take_reply()
        if reply:
            self._loop.deliver([(link, reply)])

    def _apply(self, link: Link, session: Session, effects: Effects) -> None:
        """Carry out what the session asked for."""
        if effects.send:
            self._loop.deliver([(link, link.codec.encode(event)) for event in effects.send])
        for stale in effects.replaced:
            assert isinstance(stale, Link)
            self._loop.post(stale, ("end", "replaced"))
        self._close_expelled(effects.kicked)
        if effects.close is not None:
            self._end(link, session, effects.close)

    def _end(self, link: Link, session: Session, reason: str) -> None:
        """The one way a connection ends: leave the chat, then close once all is sent."""
        if session.ended:
            return
        session.end(reason, announce=not self._stop.is_set())
        farewell = link.decoder.farewell(reason)
        if farewell:
            self._loop.deliver([(link, farewell)])
        self._loop.close_link(link, linger=reason not in ABRUPT_ENDS)
        self._count_out(link)

    def _count_out(self, link: Link) -> None:
        """A connection is over: it no longer counts against its address or the server."""
        host = link.peer.rsplit(":", 1)[0]
        self._shares.give_back(host)
        with self._count_lock:
            self._connections -= 1

    def _close_expelled(self, members: List[Member]) -> None:
        """Close the connections of members an operator expelled (already out of the chat,
        their `kicked` or `banned` error queued): their sessions end with reason kicked."""
        for member in members:
            assert isinstance(member, Link)
            self._loop.post(member, ("end", "kicked"))

    # -- control -----------------------------------------------------------------------

    def operate(self, frame: Frame) -> List[events.Event]:
        """Run one operator frame (kick, ban, unban, bans, mute, unmute, motd, topic,
        unregister with a name) with every right, as the operator "console": the same
        path as an operator's frame from a client. Returns the events that answer it;
        raises ProtocolError for a bad frame."""
        if not isinstance(frame.get("type"), str):
            raise ProtocolError("bad_frame", "A frame needs a string field 'type'.")
        protocol.validate(frame, protocol.CLIENT_FRAMES)
        if frame["type"] not in operators.CONSOLE_FRAMES:
            raise ProtocolError("unknown_type", f"{frame['type']!r} is no operator frame.")
        done = operators.run(self.chat, CONSOLE, frame)
        self._close_expelled(done.closed)
        return done.answer

    def announce(self, text: str, room: Optional[str] = None) -> None:
        """A notice to everybody, or to one room's members (the console's /say); raises
        ProtocolError for an empty text or a room that does not exist."""
        cleaned = names.clean_text(text)
        self.chat.announce(cleaned, room)
        log.info("console said%s: %s", f" in {room}" if room else "", cleaned)

    def people(self) -> List[Tuple[str, str, Tuple[str, ...]]]:
        """(name, address, rooms) of everybody logged in, in login order."""
        return self.chat.people()

    def shutdown(self, message: Optional[str] = None, timeout: float = 10.0) -> bool:
        """Stop `serve_forever` (telling everybody `message`, if given); from another
        thread, wait until it has returned."""
        if message:
            self._shutdown_message = message
        self._stop.set()
        self._loop.stop()  # takes no lock: this may run in a signal handler
        if threading.current_thread() is self._loop_thread or self._loop_thread is None:
            return True
        return self._stopped.wait(timeout)

    def server_close(self) -> None:
        """Release the listening sockets and the loop's resources."""
        if self._responder:
            self._responder.close()
        self._history.close()
        for listener in self._listeners:
            listener.close()
        self._loop.close()

    @property
    def users(self) -> int:
        """How many users are logged in."""
        return len(self.chat)

    @property
    def connections(self) -> int:
        """How many connections count against `max_clients`, logged in or not."""
        with self._count_lock:
            return self._connections


def _last_words(link: Link, notice: events.Shutdown) -> bytes:
    """What a link is sent as the server stops: the notice, where its transport carries
    frames already, and the transport's farewell (a WebSocket close)."""
    said = link.codec.encode(notice) if link.decoder.opened else b""
    return said + link.decoder.farewell("shutdown")


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
    """Run a server until SIGINT, SIGTERM or SIGHUP (with `--console`, also until its
    `/shutdown`); return the exit code."""
    console_log = None
    if args.console:
        problem = console.unavailable()
        if problem:
            print(f"lanchat: --console: {problem}", file=sys.stderr)
            return 2
        console_log = LogBuffer()
    _configure_logging(args.log_level, args.log_file, console_log)
    _raise_file_limit()
    try:
        password = read_password(args.password_file)
        operators = (*(args.operator or ()), *read_operators_file(args.operators_file))
    except (PasswordFileError, OperatorsFileError) as exc:  # never start another server
        print(f"lanchat: {exc}", file=sys.stderr)
        return 2
    history_db = None if args.no_history else (args.history_db or history_default_path())
    try:
        cert, key = _tls_files(args)
    except tls.CertificateError as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 2
    config = config_from_args(
        args,
        history_db=history_db,
        password=password,
        operators=operators,
        tls_cert=cert,
        tls_key=key,
    )
    try:
        server = ChatServer(config)
    except tls.CertificateError as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 2
    except HistoryError as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lanchat: cannot listen on {args.bind}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = server.address
    signals = [] if console_log is not None else _stop_on_signals(server)  # the console: its own
    access = "password required" if password else "no password"
    started = (
        f"lanchat {protocol.VERSION} server {server.name!r} ({access}) listening on {host}:{port}"
    )
    print(started, flush=True)
    log.info("%s", started)  # the log file gets it too
    for url in web_urls(server):
        print(f"web client: {url}", flush=True)
        log.info("web client: %s", url)
    if server.irc_address is not None:
        irc = f"IRC: {server.irc_address[0]}:{server.irc_address[1]}"
        print(irc, flush=True)
        log.info("%s", irc)
    if server.fingerprint is not None:
        said = f"TLS: {server.fingerprint}"
        print(said, flush=True)
        log.info("%s", said)
    if console_log is not None:
        from lanchat.console import terminal  # imports curses: only for the console

        try:
            return terminal.run(server, console_log, started)
        finally:
            server.server_close()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    log.info("stopped by %s", signals[0] if signals else "a shutdown request")
    return 0


def _tls_files(args: argparse.Namespace) -> Tuple[Optional[str], Optional[str]]:
    """The certificate and key TLS is on with: --tls-cert and --tls-key, or with --tls
    alone the self-signed pair in the data directory (made the first time); or none."""
    if (args.tls_cert is None) != (args.tls_key is None):
        raise tls.CertificateError(
            "--tls-cert and --tls-key go together: give both, or neither (--tls then makes "
            "a self-signed certificate)"
        )
    if args.tls_cert is not None:
        return args.tls_cert, args.tls_key
    if not args.tls:
        return None, None
    host = host_key()
    cert, key = tls.self_signed(tls.default_folder(data_dir(), host), host)
    return str(cert), str(key)


def web_urls(server: ChatServer) -> List[str]:
    """The web client's address on each LAN address (just the bound one, with --bind)."""
    if server.web_address is None:
        return []
    host, port = server.web_address
    hosts = lan.addresses() if host in ("0.0.0.0", "::") else [host]
    scheme = "https" if server.fingerprint else "http"
    return [f"{scheme}://{f'[{h}]' if ':' in h else h}:{port}/" for h in hosts]


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


def _configure_logging(level: str, path: Optional[str], console_log: Optional[LogBuffer]) -> None:
    """Log to the file, else to stderr; with the console, to it (and to the file if any)."""
    handlers: List[logging.Handler] = [logging.FileHandler(path)] if path else []
    if console_log is not None:
        handlers.append(console_log)  # stderr would tear the console's screen
    elif not path:
        handlers.append(logging.StreamHandler())
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(message)s"))
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
