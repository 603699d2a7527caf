"""Finding lanchat servers: the UDP responder a server runs, and the client's search.

Server side: `Responder` answers the contract's `discover` probe with the server's
`server` frame, by unicast to whoever asked. Client side: `discover_lan` broadcasts the
probe on every IPv4 interface and collects the answers for about a second; `scan_host`
tries one host's TCP port range and keeps the ports that greet with a lanchat `hello`;
`find_servers` does the first and falls back to the second on this machine. `run` is the
`lanchat discover` subcommand. Every address a client connects to is the one the answer
came from (`recvfrom`), never one a payload names.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import logging
import selectors
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from lanchat import names, protocol
from lanchat.protocol import Frame

log = logging.getLogger(__name__)

FALLBACK_BROADCAST = "255.255.255.255"
MAX_DATAGRAM = 65535  # one UDP payload; a `server` answer with a long name still fits
LOCAL_HOST = "127.0.0.1"  # "this machine" for the port-range fallback

# Linux ioctls and interface flags (from <linux/sockios.h> and <net/if.h>).
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2
_IFF_LOOPBACK = 0x8


@dataclass(frozen=True)
class ServerInfo:
    """One lanchat server found on the network: where it is and what it said of itself."""

    name: str
    host: str
    port: int
    version: str
    users: Optional[int] = None
    max_users: Optional[int] = None

    @property
    def compatible(self) -> bool:
        """True when this client can join it (same major protocol version)."""
        return protocol.is_compatible(self.version)

    @property
    def address(self) -> str:
        """`host:port`, as a person would type it."""
        return f"{self.host}:{self.port}"

    def to_json(self) -> Dict[str, object]:
        """The fields `lanchat discover --json` prints, `compatible` included."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "version": self.version,
            "users": self.users,
            "max_users": self.max_users,
            "compatible": self.compatible,
        }


# ---------------------------------------------------------------------------
# Interfaces


@dataclass(frozen=True)
class _Interface:
    name: str
    address: str
    network: ipaddress.IPv4Network
    broadcast: Optional[str]  # None: point-to-point, /31, /32, or no IFF_BROADCAST
    loopback: bool


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    import fcntl  # Unix only; the callers fall back where it is missing

    return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))


def _interfaces() -> List[_Interface]:
    """The IPv4 interfaces that are up, with their primary address (Linux ioctls).

    Raises OSError or ImportError where the platform has no such ioctls.
    """
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                flags = struct.unpack_from("H", _ifreq(sock, _SIOCGIFFLAGS, name), 16)[0]
                if not flags & _IFF_UP:
                    continue
                address = socket.inet_ntoa(_ifreq(sock, _SIOCGIFADDR, name)[20:24])
                netmask = socket.inet_ntoa(_ifreq(sock, _SIOCGIFNETMASK, name)[20:24])
            except OSError:  # no IPv4 address on it (EADDRNOTAVAIL), or it just went away
                continue
            # SIOCGIFBRDADDR reads 0.0.0.0 when an address was added without `brd`: compute it.
            network = ipaddress.IPv4Interface(f"{address}/{netmask}").network
            broadcast: Optional[str] = None
            if flags & (_IFF_BROADCAST | _IFF_LOOPBACK) and network.prefixlen < 31:
                broadcast = str(network.broadcast_address)
            found.append(_Interface(name, address, network, broadcast, bool(flags & _IFF_LOOPBACK)))
    return found


def broadcast_addresses() -> List[str]:
    """The directed broadcast address of every IPv4 interface that has one, loopback aside.

    Falls back to ["255.255.255.255"] where interfaces cannot be read (not Linux) or none
    has one. That fallback reaches only the default route's network, hence `--host`.
    """
    try:
        interfaces = _interfaces()
    except (OSError, ImportError, AttributeError) as exc:
        log.debug("cannot list interfaces (%s); using %s", exc, FALLBACK_BROADCAST)
        return [FALLBACK_BROADCAST]
    found: List[str] = []
    for interface in interfaces:
        if interface.broadcast and not interface.loopback and interface.broadcast not in found:
            found.append(interface.broadcast)
    log.debug("broadcast addresses: %s", found or "none")
    return found or [FALLBACK_BROADCAST]


def _broadcast_of(address: str) -> Optional[str]:
    """The broadcast address of the interface whose network holds this address, if any."""
    try:
        wanted = ipaddress.IPv4Address(socket.gethostbyname(address))
        interfaces = _interfaces()
    except (OSError, ImportError, AttributeError, ValueError) as exc:
        log.debug("cannot find the interface of %s: %s", address, exc)
        return None
    for interface in interfaces:
        if interface.broadcast and wanted in interface.network:
            return interface.broadcast
    return None


# ---------------------------------------------------------------------------
# Server side


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
            broadcast = None if wildcard else _broadcast_of(bind)
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


# ---------------------------------------------------------------------------
# Client side: UDP broadcast


def discover_lan(
    timeout: float = 1.0,
    port: int = protocol.DEFAULT_PORT,
    targets: Optional[Sequence[str]] = None,
) -> List[ServerInfo]:
    """Send `discover` to each target (default: every interface's broadcast address) and
    return the servers that answer within `timeout` seconds.

    Each server's host is the address its answer came from. Answers are deduplicated by
    (host, port) and sorted: compatible first, then by name and address. Raises OSError
    only if no probe could be sent at all.
    """
    if targets is None:
        targets = broadcast_addresses()
    probe = protocol.encode(protocol.discover())
    found: Dict[Tuple[str, int], ServerInfo] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # EACCES without it
        sent = 0
        last_error: Optional[OSError] = None
        for target in targets:
            try:
                sock.sendto(probe, (target, port))
                sent += 1
            except OSError as exc:  # e.g. ENETUNREACH for 255.255.255.255 with no route
                log.debug("discovery: cannot send to %s:%d: %s", target, port, exc)
                last_error = exc
        if not sent:
            if last_error is not None:
                raise last_error
            return []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data, (host, _) = sock.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                break
            except OSError as exc:  # an ICMP error for one target; others may still answer
                log.debug("discovery: receive failed: %s", exc)
                continue
            server = _parse_answer(data, host)
            if server is not None and (host, server.port) not in found:
                found[(host, server.port)] = server
    return sorted(found.values(), key=_display_order)


def _parse_answer(data: bytes, host: str) -> Optional[ServerInfo]:
    try:
        frame = protocol.validate(
            protocol.decode_line(data.rstrip(b"\r\n")), protocol.DISCOVERY_FRAMES
        )
    except protocol.ProtocolError as exc:
        log.debug("discovery: ignored an answer from %s: %s", host, exc)
        return None
    if frame["type"] != "server" or frame["app"] != protocol.APP:
        log.debug("discovery: ignored a %r frame from %s", frame["type"], host)
        return None
    if not 1 <= frame["port"] <= 65535:
        log.debug("discovery: ignored port %r from %s", frame["port"], host)
        return None
    return ServerInfo(
        name=frame["server"],
        host=host,
        port=frame["port"],
        version=frame["version"],
        users=frame.get("users"),
        max_users=frame.get("max_users"),
    )


def _display_order(server: ServerInfo) -> Tuple[bool, str, Tuple[int, ...], int]:
    try:
        numeric: Tuple[int, ...] = tuple(ipaddress.IPv4Address(server.host).packed)
    except ValueError:
        numeric = ()
    return (not server.compatible, server.name.casefold(), numeric, server.port)


# ---------------------------------------------------------------------------
# Client side: TCP port range


class _Probe:
    """One port being tried: connecting, then reading its first line."""

    def __init__(self, sock: socket.socket, address: str, port: int, deadline: float) -> None:
        self.sock = sock
        self.address = address
        self.port = port
        self.deadline = deadline
        self.connected = False
        self.buffer = bytearray()


def scan_host(
    host: str,
    base_port: int = protocol.DEFAULT_PORT,
    span: int = protocol.PORT_SPAN,
    timeout: float = 0.5,
) -> List[ServerInfo]:
    """The lanchat servers on ports base_port..base_port+span of one host, by port.

    All ports are tried at once; each gets `timeout` seconds to accept and then as long
    again to send its first line. A port whose first bytes are not a lanchat `hello` is
    dropped as soon as that is clear. Nothing is sent: each connection is just closed.
    Raises OSError (socket.gaierror) when the host name cannot be resolved.
    """
    address = str(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
    last_port = min(base_port + span, 65535)
    found: List[ServerInfo] = []
    probes: List[_Probe] = []
    with selectors.DefaultSelector() as selector:
        try:
            deadline = time.monotonic() + timeout
            for port in range(base_port, last_port + 1):
                probe = _start_probe(address, port, deadline)
                if probe is not None:
                    probes.append(probe)
                    selector.register(probe.sock, selectors.EVENT_WRITE, probe)
            while selector.get_map():
                now = time.monotonic()
                waiting = [key.data for key in selector.get_map().values()]
                for probe in waiting:
                    if probe.deadline <= now:  # silent or slow: not a lanchat server
                        selector.unregister(probe.sock)
                        log.debug("scan: %s:%d timed out", address, probe.port)
                if not selector.get_map():
                    break
                wait = min(key.data.deadline for key in selector.get_map().values()) - now
                for key, _ in selector.select(timeout=max(wait, 0.0)):
                    server = _advance(selector, key.data, timeout)
                    if server is not None:
                        found.append(server)
        finally:
            for probe in probes:
                probe.sock.close()
    log.debug("scan of %s ports %d-%d found %d", address, base_port, last_port, len(found))
    return sorted(found, key=lambda server: server.port)


def _start_probe(address: str, port: int, deadline: float) -> Optional[_Probe]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex((address, port))
    if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, getattr(errno, "WSAEWOULDBLOCK", -1)):
        log.debug("scan: %s:%d: %s", address, port, errno.errorcode.get(code, code))
        sock.close()
        return None
    return _Probe(sock, address, port, deadline)


def _advance(
    selector: selectors.BaseSelector, probe: _Probe, timeout: float
) -> Optional[ServerInfo]:
    """Move one probe on: connected -> wait for its first line; bytes -> judge them."""
    if not probe.connected:
        code = probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:  # refused: nothing listens there (the common case)
            selector.unregister(probe.sock)
            return None
        probe.connected = True
        probe.deadline = time.monotonic() + timeout  # the read gets its own short timeout
        selector.modify(probe.sock, selectors.EVENT_READ, probe)
        return None
    try:
        chunk = probe.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        chunk = b""
    probe.buffer += chunk
    end = probe.buffer.find(b"\n")
    if end < 0 and chunk and protocol.may_start_a_frame(probe.buffer):
        if len(probe.buffer) <= protocol.MAX_SERVER_FRAME:
            return None  # a JSON line on its way: wait for the rest
    # A whole line, the end of the stream, or bytes that are plainly not JSON.
    selector.unregister(probe.sock)
    if end < 0:
        log.debug("scan: %s:%d is not lanchat", probe.address, probe.port)
        return None
    return _parse_hello(bytes(probe.buffer[:end]), probe.address, probe.port)


def _parse_hello(line: bytes, host: str, port: int) -> Optional[ServerInfo]:
    """A ServerInfo if this first line is a lanchat hello (of any major version)."""
    try:
        frame = protocol.decode_line(line.rstrip(b"\r"))
    except protocol.ProtocolError as exc:
        log.debug("scan: %s:%d is not lanchat: %s", host, port, exc)
        return None
    # Only what every major version's hello must hold: another major is still listed.
    if frame["type"] != "hello" or frame.get("app") != protocol.APP:
        log.debug("scan: %s:%d greets with no lanchat hello", host, port)
        return None
    version = frame.get("version")
    if not isinstance(version, str):
        return None
    name = frame.get("server")
    online = frame.get("online")
    users: Optional[int] = None
    # A password server hides its online list, so its user count is unknown.
    if frame.get("auth") == "none" and isinstance(online, list):
        users = len(online)
    return ServerInfo(
        name=name if isinstance(name, str) else "",
        host=host,
        port=port,
        version=version,
        users=users,
    )


# ---------------------------------------------------------------------------
# Both, as the client uses them


def find_servers(
    timeout: float = 1.0,
    port: int = protocol.DEFAULT_PORT,
    targets: Optional[Sequence[str]] = None,
    fallback_host: str = LOCAL_HOST,
) -> List[ServerInfo]:
    """The servers on the LAN (`discover_lan`); if none answer, those on this machine's
    port range (`scan_host`), for servers run with --no-discovery or a firewall in the way.

    Raises no OSError: a failure to send is logged and counts as "none found".
    """
    try:
        servers = discover_lan(timeout, port, targets)
    except OSError as exc:
        log.info("discovery: cannot send a probe: %s", exc)
        servers = []
    if servers:
        return servers
    try:
        return scan_host(fallback_host, port)
    except OSError as exc:
        log.info("discovery: cannot scan %s: %s", fallback_host, exc)
        return []


def by_name(servers: Sequence[ServerInfo], name: str) -> List[ServerInfo]:
    """The servers called `name` (exactly first; else ignoring case), for --server NAME."""
    exact = [server for server in servers if server.name == name]
    if exact:
        return exact
    key = names.name_key(name)
    return [server for server in servers if names.name_key(server.name) == key]


def no_server_message(port: int = protocol.DEFAULT_PORT) -> str:
    """The one line a person reads when no server was found anywhere."""
    return (
        f"No lanchat server found: none answered on the LAN, and none listens on ports "
        f"{port}-{port + protocol.PORT_SPAN} of this machine. "
        f"Start one with 'lanchat server', or give its address with --host."
    )


# ---------------------------------------------------------------------------
# `lanchat discover`


def _safe(text: str) -> str:
    """A name from the network, made harmless for a terminal (no escapes, no bidi tricks)."""
    return names.strip_controls(text).strip() or "?"


def _count(value: Optional[int]) -> str:
    return "?" if value is None else str(value)


def format_lines(servers: Sequence[ServerInfo]) -> Iterator[str]:
    """One aligned line per server: name, address, version, users/capacity, compatibility."""
    rows = [
        (
            _safe(server.name),
            server.address,
            _safe(server.version),
            f"{_count(server.users)}/{_count(server.max_users)} users",
            "compatible" if server.compatible else "incompatible",
        )
        for server in servers
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)] if rows else []
    for row in rows:
        yield "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]


def run(args: argparse.Namespace) -> int:
    """`lanchat discover`: list the servers found, one per line; exit 1 when none."""
    targets = [args.host] if args.host else None
    try:
        servers = discover_lan(args.timeout, args.port, targets)
        if not servers:
            # Servers run with --no-discovery still show on their host's port range.
            servers = scan_host(args.host or LOCAL_HOST, args.port)
    except OSError as exc:
        print(f"lanchat: discovery failed: {exc}", file=sys.stderr)
        return 1
    if not servers:
        if args.host:
            message = (
                f"No lanchat server answered at {args.host} on ports {args.port}-"
                f"{args.port + protocol.PORT_SPAN} (--port sets the first)."
            )
        else:
            message = no_server_message(args.port)
        print(f"lanchat: {message}", file=sys.stderr)
        return 1
    if args.json:
        for server in servers:
            print(json.dumps(server.to_json()))
    else:
        for line in format_lines(servers):
            print(line)
    return 0
