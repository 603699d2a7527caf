"""The client's side of the socket: connect, read `hello`, keep reading, reconnect.

Callers use `open_link` (one blocking connect that reads and checks `hello`) and
`Connection` (a reader thread that posts `Connected`, `Received`, `Disconnected` and
`Stopped` events to a callback, and reconnects with backoff when the server goes away;
`send` is safe from any thread). Only this module touches client sockets: OS errors are
translated here, once, into the errors below.

Errors::

    LinkError            could not get a usable lanchat connection
     +-- Unreachable     nothing answered (refused, timed out, no route, name unknown)
     +-- NotLanchat      something answered, but not with a lanchat hello
     +-- Incompatible    a lanchat server of another major version (.server_version)
     +-- Refused         the server said no at once (server_full); .code, .message
     +-- Untrusted       its certificate (or the lack of one) is not the one trusted

A link is TLS or plain TCP. Where it is not known which, `open_link` listens a moment:
a plain lanchat server greets at once and is read as before (nothing is sent to it); a
silent one is asked in TLS, and judged in plain TCP again if it answers in plain text.
Told to go plain first, it begins with a blank line (which a lanchat server ignores), so
that a TLS server answers `tls_required` at once, and then goes TLS. Whether a link's
certificate is the one to trust is the caller's check (`chat.trust`), given to
`Connection` as `verify` for its reconnects.
"""

from __future__ import annotations

import logging
import random
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

from lanchat import names, protocol
from lanchat.chat.tlsstream import PlainAnswer, TlsStream, client_context
from lanchat.protocol import Frame

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
HELLO_TIMEOUT = 1.0  # a lanchat server greets at once: longer silence is something else
HANDSHAKE_TIMEOUT = 3.0  # a TLS server answers the client's first bytes at once, too
GREETING_WAIT = 0.25  # a plain server's hello comes within this; a TLS one waits for us
SOCKET_TIMEOUT = 5.0  # bounds a send to a stuck server; a quiet recv just loops
RECV_SIZE = 65536
STABLE_AFTER = 10.0  # a link that lived this long resets the backoff


class LinkError(Exception):
    """No usable lanchat connection; the message is for a person."""


class Unreachable(LinkError):
    """Nothing answered at that address."""


class NotLanchat(LinkError):
    """Something answered, but it is not a lanchat server."""


class Incompatible(LinkError):
    """A lanchat server that speaks another major version."""

    def __init__(self, message: str, server_version: str) -> None:
        super().__init__(message)
        self.server_version = server_version


class Refused(LinkError):
    """The server refused us at once with an error frame (e.g. server_full)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Untrusted(LinkError):
    """The server's certificate is not the one this client trusts for it (changed, not
    the pinned or announced one), or a server known with TLS answered in plain text."""


VerifyLink = Callable[["Link"], None]  # raises Untrusted for a link not to log in on


# ---------------------------------------------------------------------------
# Events posted by the reader thread (consumed by the client model)


@dataclass(frozen=True)
class Connected:
    """A server answered with a compatible hello; nobody is logged in yet."""

    hello: Frame
    address: Tuple[str, int]
    tls: bool = False  # the link is TLS (its certificate checked before this event)


@dataclass(frozen=True)
class Received:
    """A valid server frame arrived."""

    frame: Frame


@dataclass(frozen=True)
class Disconnected:
    """The link is gone; another attempt follows in `retry_in` seconds."""

    reason: str
    retry_in: float


@dataclass(frozen=True)
class Stopped:
    """The connection gave up for good (an incompatible server) or was closed."""

    reason: str


Event = Union[Connected, Received, Disconnected, Stopped]


# ---------------------------------------------------------------------------
# One link


class Link:
    """One open connection to a lanchat server (TLS or plain TCP), after its hello was
    read."""

    def __init__(
        self,
        sock: socket.socket,
        decoder: protocol.FrameDecoder,
        hello: Frame,
        address: Tuple[str, int],
        tls: Optional[TlsStream] = None,
    ) -> None:
        self.sock = sock
        self.decoder = decoder  # may hold frames that came right after the hello
        self.hello = hello
        self.address = address
        self.tls = tls
        self.fingerprint = tls.fingerprint if tls is not None else None  # None: plain TCP
        self._send_lock = threading.Lock()
        self._closed = False

    @property
    def where(self) -> str:
        """`host:port` of the server, as a person would type it."""
        return f"{self.address[0]}:{self.address[1]}"

    def recv(self, size: int = RECV_SIZE) -> bytes:
        """The next bytes from the server (decrypted); b"" at the end; raises OSError."""
        return self.tls.recv(size) if self.tls is not None else self.sock.recv(size)

    def send(self, frame: Frame) -> bool:
        """Send one frame; False if the link is broken (the reader notices and reconnects)."""
        data = protocol.encode(frame)
        with self._send_lock:
            if self._closed:
                return False
            try:
                if self.tls is not None:
                    self.tls.sendall(data)
                else:
                    self.sock.sendall(data)
            except OSError as exc:  # socket.timeout included: a partial frame spoils the link
                log.info("send failed: %s", exc)
                self._shutdown()
                return False
        return True

    def _shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in the reader
        except OSError:
            pass

    def finish(self) -> None:
        """Send nothing more: what was sent (a quit) still goes out, then a FIN (after a
        TLS close_notify)."""
        with self._send_lock:
            self._closed = True
            try:
                if self.tls is not None:
                    self.tls.close_notify()
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        """Close the socket; a reader blocked in recv wakes up with EOF."""
        with self._send_lock:
            self._closed = True
        self._shutdown()
        self.sock.close()


def _describe(exc: OSError) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc.__class__.__name__}"
    return exc.strerror or exc.__class__.__name__


def open_link(
    host: str, port: int, timeout: float = CONNECT_TIMEOUT, tls: Optional[bool] = None
) -> Link:
    """Connect, read the server's hello and check it; raise a LinkError if that fails.

    `tls` None (not known): listen for `GREETING_WAIT` first, since a plain lanchat server
    greets at once: its hello is read as before; a silent server is asked in TLS. True:
    TLS at once. A TLS attempt answered in plain text is judged again in plain TCP. False:
    plain TCP beginning with a blank line, then TLS if the server answers `tls_required`.
    """
    where = f"{host}:{port}"
    if tls is False:
        try:
            return _open(host, port, timeout, PLAIN_FIRST)
        except Refused as exc:
            if exc.code != "tls_required":
                raise
            log.info("%s wants TLS", where)
        try:
            return _open(host, port, timeout, TLS)
        except PlainAnswer:  # it asked for TLS, then answered TLS in plain text
            raise NotLanchat(f"{where} asks for TLS but does not speak it") from None
    try:
        return _open(host, port, timeout, TLS if tls else LISTEN_FIRST)
    except PlainAnswer:  # plain lanchat, or some other service: judged in plain TCP
        log.info("%s answered TLS in plain text: trying plain TCP", where)
        return _open(host, port, timeout, PLAIN)


# How one attempt begins (`_open`)
LISTEN_FIRST = "listen first"  # plain if the server speaks within GREETING_WAIT, else TLS
TLS = "tls"  # a TLS handshake at once
PLAIN = "plain"  # plain TCP, saying nothing
PLAIN_FIRST = "plain first"  # plain TCP, beginning with a blank line


def _open(host: str, port: int, timeout: float, how: str) -> Link:
    """One attempt: connect, begin as `how` says, read and check the hello."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise Unreachable(f"cannot connect to {where}: {_describe(exc)}") from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = None
        if how == TLS or (how == LISTEN_FIRST and not _greets(sock)):
            stream = _start_tls(sock, timeout, where)
        elif how == PLAIN_FIRST:
            sock.sendall(b"\n")  # a lanchat server ignores it; a TLS one answers tls_required
        sock.settimeout(min(timeout, HELLO_TIMEOUT))
        decoder = protocol.FrameDecoder(protocol.MAX_SERVER_FRAME)
        recv = stream.recv if stream is not None else sock.recv
        first = _first_frame(recv, decoder, where)
        hello = _check_hello(first, where)
        sock.settimeout(SOCKET_TIMEOUT)
        address = sock.getpeername()[:2]
    except BaseException:
        sock.close()
        raise
    return Link(sock, decoder, hello, (str(address[0]), int(address[1])), stream)


def _greets(sock: socket.socket) -> bool:
    """True if the server speaks (or closes) within GREETING_WAIT, as a plain one does."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(GREETING_WAIT))


def _start_tls(sock: socket.socket, timeout: float, where: str) -> TlsStream:
    """A TLS stream on the socket, its handshake done; PlainAnswer if the server answered
    in plain text, else a LinkError for a peer that does not speak TLS either."""
    sock.settimeout(min(timeout, HANDSHAKE_TIMEOUT))
    stream = TlsStream(sock, client_context())
    try:
        stream.handshake()
    except socket.timeout:
        raise NotLanchat(
            f"{where} did not answer TLS within {HANDSHAKE_TIMEOUT:g} s: "
            "it is not a lanchat server, or a stuck one"
        ) from None
    except ssl.SSLError as exc:
        raise NotLanchat(f"TLS with {where} failed: {_describe(exc)}") from None
    except OSError as exc:
        raise Unreachable(f"no answer from {where}: {_describe(exc)}") from None
    return stream


def _first_frame(recv: Callable[[int], bytes], decoder: protocol.FrameDecoder, where: str) -> Frame:
    """The server's first frame; NotLanchat as soon as its bytes or its silence say that
    something else answered (a banner, binary, or a server that waits for a request)."""
    while True:
        try:
            frame = decoder.next_frame()
        except protocol.ProtocolError:
            raise NotLanchat(f"{where} is not a lanchat server") from None
        if frame is not None:
            return frame
        try:
            data = recv(RECV_SIZE)
        except socket.timeout:
            raise NotLanchat(
                f"{where} sent no hello within {HELLO_TIMEOUT:g} s: "
                "it is not a lanchat server, or a stuck one"
            ) from None
        except OSError as exc:
            raise Unreachable(f"no answer from {where}: {_describe(exc)}") from None
        if not data:
            raise NotLanchat(f"{where} closed the connection without a lanchat hello")
        if not decoder.buffered and not protocol.may_start_a_frame(data):
            raise NotLanchat(f"{where} is not a lanchat server")
        decoder.feed(data)


def _check_hello(frame: Frame, where: str) -> Frame:
    if frame["type"] == "error":
        try:
            protocol.validate(frame, protocol.SERVER_FRAMES)
        except protocol.ProtocolError:
            raise NotLanchat(f"{where} is not a lanchat server") from None
        code = str(frame["code"])
        if code == "server_full":
            raise Refused(f"the server at {where} is full", code)
        raise Refused(
            f"the server at {where} refused: {names.strip_controls(frame['message'])}", code
        )
    try:
        protocol.validate(frame, protocol.SERVER_FRAMES)
    except protocol.ProtocolError:
        raise NotLanchat(f"{where} is not a lanchat server") from None
    if frame["type"] != "hello" or frame["app"] != protocol.APP:
        raise NotLanchat(f"{where} is not a lanchat server")
    version = names.strip_controls(frame["version"])
    if not protocol.is_compatible(version):
        raise Incompatible(
            f"the server at {where} speaks lanchat {version}; this client is "
            f"{protocol.VERSION} (the major versions must match)",
            version,
        )
    return frame


# ---------------------------------------------------------------------------
# The reconnecting connection


class Backoff:
    """Delays between reconnect attempts: doubling from `first`, with up to `jitter` (a
    fraction) added so clients spread out, and never longer than `most`."""

    def __init__(self, first: float = 0.25, most: float = 10.0, jitter: float = 0.2) -> None:
        self.first = first
        self.most = most
        self.jitter = jitter
        self._next = first

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the one after."""
        delay = self._next
        self._next = min(self.most, self._next * 2)
        return min(self.most, delay * (1 + random.uniform(0, self.jitter)))

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self._next = self.first


class Connection:
    """A connection to one server that reconnects by itself until closed.

    `start()` runs the reader thread (with a link already opened by `open_link`, or
    connecting itself). Each link produces `Connected`, then `Received` per valid server
    frame, then `Disconnected`; `close()` ends it all with `Stopped`. Logging in is the
    caller's business: it answers `Connected` with a login frame. Each link it opens
    itself must first pass `verify` (the trusted certificate): one that does not stops it
    for good, as an incompatible server does. It reconnects the way the last link went
    (TLS or plain TCP) first.
    """

    def __init__(
        self,
        host: str,
        port: int,
        post: Callable[[Event], None],
        backoff: Optional[Backoff] = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        verify: Optional[VerifyLink] = None,
    ) -> None:
        self.host = host
        self.port = port
        self._post = post
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._verify = verify
        self._tls: Optional[bool] = None  # how the last link went; None: not known yet
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._link: Optional[Link] = None
        self._thread: Optional[threading.Thread] = None

    def start(self, link: Optional[Link] = None) -> None:
        """Start the reader thread, on this link or on a fresh one."""
        self._thread = threading.Thread(
            target=self._run, args=(link,), name="lanchat-reader", daemon=True
        )
        self._thread.start()

    def send(self, frame: Frame) -> bool:
        """Send a frame on the current link; False when there is none or it broke."""
        with self._lock:
            link = self._link
        return link.send(frame) if link is not None else False

    def drop(self) -> None:
        """Close the current link (e.g. it stopped answering pings); a reconnect follows."""
        with self._lock:
            link = self._link
        if link is not None:
            link._shutdown()

    def close(self, timeout: float = 1.0) -> None:
        """Stop reconnecting, close the link and wait for the reader thread.

        The link is first half-closed and the server given `timeout` seconds to close its
        end, so a quit frame sent just before is read rather than lost to a reset.
        """
        self._stop.set()
        with self._lock:
            link = self._link
        thread = self._thread
        own = thread is threading.current_thread()
        if link is not None:
            link.finish()
            if thread is not None and not own:
                thread.join(timeout)
            link.close()
        if thread is not None and not own:
            thread.join(timeout)

    def _run(self, link: Optional[Link]) -> None:
        try:
            self._loop(link)
        except Exception:  # a reader that dies silently would freeze the chat
            log.exception("connection reader crashed")
            self._post(Stopped("internal error in the connection; see the log"))

    def _loop(self, link: Optional[Link]) -> None:
        while not self._stop.is_set():
            if link is None:
                try:
                    link = self._open()
                except (Incompatible, Untrusted) as exc:
                    self._stop.set()
                    self._post(Stopped(str(exc)))
                    return
                except LinkError as exc:
                    self._wait_and_report(str(exc))
                    continue
            reason = self._serve(link)
            link = None
            if self._stop.is_set():
                break
            self._wait_and_report(reason)
        self._post(Stopped("closed"))

    def _open(self) -> Link:
        """A new link, verified."""
        link = open_link(self.host, self.port, self._connect_timeout, self._tls)
        try:
            if self._verify is not None:
                self._verify(link)
        except BaseException:
            link.close()
            raise
        return link

    def _wait_and_report(self, reason: str) -> None:
        delay = self._backoff.next_delay()
        log.info("disconnected (%s); next attempt in %.1f s", reason, delay)
        self._post(Disconnected(reason, delay))
        self._stop.wait(delay)

    def _serve(self, link: Link) -> str:
        """Read frames from one link until it ends; return why it ended."""
        with self._lock:
            if self._stop.is_set():
                link.close()
                return "closed"
            self._link = link
        self._tls = link.tls is not None
        started = time.monotonic()
        self._post(Connected(link.hello, link.address, link.tls is not None))
        try:
            return self._read(link)
        finally:
            with self._lock:
                if self._link is link:
                    self._link = None
            link.close()
            if time.monotonic() - started >= STABLE_AFTER:
                self._backoff.reset()

    def _read(self, link: Link) -> str:
        while True:
            for item in link.decoder.frames():
                if isinstance(item, protocol.ProtocolError):
                    log.warning("ignored a bad line from the server: %s", item)
                    continue
                try:
                    protocol.validate(item, protocol.SERVER_FRAMES)
                except protocol.ProtocolError as exc:
                    # unknown types are a newer minor version; bad ones we skip
                    log.debug("ignored frame %r: %s", item.get("type"), exc)
                    continue
                self._post(Received(item))
            try:
                data = link.recv(RECV_SIZE)
            except socket.timeout:
                if self._stop.is_set():
                    return "closed"
                continue
            except OSError as exc:
                return f"connection lost: {_describe(exc)}"
            if not data:
                return "the server closed the connection"
            link.decoder.feed(data)
