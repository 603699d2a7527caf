"""The client half of discovery: finding lanchat servers, and `lanchat discover`.

`discover_lan` broadcasts the contract's `discover` probe on every IPv4 interface and
collects the answers for about a second; `scan_host` tries one host's TCP port range and
keeps the ports that greet with a lanchat `hello`; `find_servers` does the first and falls
back to the second on this machine. `run` is the `lanchat discover` subcommand. Every
address a client connects to is the one the answer came from (`recvfrom`), never one a
payload names.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import logging
import selectors
import socket
import sys
import time
from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from lanchat import names, protocol, tls
from lanchat.chat.connection import LinkError, open_link
from lanchat.lan import MAX_DATAGRAM, broadcast_addresses

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"  # "this machine" for the port-range fallback


@dataclass(frozen=True)
class ServerInfo:
    """One lanchat server found on the network: where it is and what it said of itself."""

    name: str
    host: str
    port: int
    version: str
    users: Optional[int] = None
    max_users: Optional[int] = None
    web_port: Optional[int] = None  # where its web client is served, if it said so
    irc_port: Optional[int] = None  # where IRC clients connect, if it said so (4.4)
    tls: bool = False  # it speaks TLS only (4.4) ...
    fingerprint: Optional[str] = None  # ... with the certificate of this fingerprint

    @property
    def compatible(self) -> bool:
        """True when this client can join it (same major protocol version)."""
        return protocol.is_compatible(self.version)

    @property
    def address(self) -> str:
        """`host:port`, as a person would type it."""
        return f"{self.host}:{self.port}"

    @property
    def web_url(self) -> Optional[str]:
        """The web client's address, http(s)://HOST:PORT/, if the server serves one."""
        if self.web_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.web_port}/"

    @property
    def irc_url(self) -> Optional[str]:
        """Where IRC clients connect, irc://HOST:PORT (ircs:// over TLS), if the server
        lets them in."""
        if self.irc_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'ircs' if self.tls else 'irc'}://{host}:{self.irc_port}"

    def to_json(self) -> Dict[str, object]:
        """The fields `lanchat discover --json` prints, `compatible` included, `web` (the
        web client's URL) when the server serves one, `irc_port` when it lets IRC in, and
        `tls` and `fingerprint` when it speaks TLS."""
        fields: Dict[str, object] = {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "version": self.version,
            "users": self.users,
            "max_users": self.max_users,
            "compatible": self.compatible,
        }
        if self.web_url:
            fields["web"] = self.web_url
        if self.irc_port is not None:
            fields["irc_port"] = self.irc_port
        if self.tls:
            fields["tls"] = True
        if self.fingerprint:
            fields["fingerprint"] = self.fingerprint
        return fields


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
        web_port=_port(frame.get("web_port"), host, "web"),
        irc_port=_port(frame.get("irc_port"), host, "IRC"),
        tls=frame.get("tls") is True,
        fingerprint=_fingerprint(frame.get("fingerprint"), host),
    )


def _port(port: Optional[int], host: str, what: str) -> Optional[int]:
    """An answer's web or IRC port, when it is a port."""
    if port is not None and not 1 <= port <= 65535:
        log.debug("discovery: ignored %s port %r from %s", what, port, host)
        return None
    return port


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
    dropped as soon as that is clear; nothing is sent to it. A port that stays silent (as
    a TLS server does: it waits for the client's handshake) or answers `tls_required` is
    then tried through TLS, with the same timeout, for its hello and certificate.
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
                    if probe.deadline <= now:  # silent or slow: not a plain lanchat server
                        selector.unregister(probe.sock)
                        log.debug("scan: %s:%d timed out", address, probe.port)
                        if probe.connected and not probe.buffer:  # a TLS one waits for us
                            found.append(ServerInfo("", address, probe.port, "", tls=True))
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
    # Silent ports and those that asked for TLS are asked through TLS, one after the other.
    found = [
        s for s in (_hello_over_tls(address, f.port, timeout) if f.tls else f for f in found) if s
    ]
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


def _fingerprint(text: Optional[str], host: str) -> Optional[str]:
    """An answer's certificate fingerprint, when it is one."""
    fingerprint = None if text is None else tls.parse_fingerprint(text)
    if text is not None and fingerprint is None:
        log.debug("discovery: ignored fingerprint %r from %s", text, host)
    return fingerprint


def _parse_hello(line: bytes, host: str, port: int) -> Optional[ServerInfo]:
    """A ServerInfo if this first line is a lanchat hello (of any major version); for
    the error `tls_required` one that says only `tls`, to be asked through TLS."""
    try:
        frame = protocol.decode_line(line.rstrip(b"\r"))
    except protocol.ProtocolError as exc:
        log.debug("scan: %s:%d is not lanchat: %s", host, port, exc)
        return None
    if frame["type"] == "error" and frame.get("code") == "tls_required":
        return ServerInfo(name="", host=host, port=port, version="", tls=True)
    return _from_hello(frame, host, port)


def _from_hello(frame: protocol.Frame, host: str, port: int) -> Optional[ServerInfo]:
    """What a server's hello says of it, or None if it is no lanchat hello."""
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


def _hello_over_tls(host: str, port: int, timeout: float) -> Optional[ServerInfo]:
    """A TLS server's hello, read through TLS, and its certificate's fingerprint."""
    try:
        link = open_link(host, port, timeout, tls=True)
    except LinkError as exc:
        log.debug("scan: %s:%d wants TLS: %s", host, port, exc)
        return None
    link.close()
    server = _from_hello(link.hello, host, port)
    return server and replace(server, tls=True, fingerprint=link.fingerprint)


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
    """One aligned line per server: name, address, version, users/capacity, compatibility,
    the web client's URL and the IRC address where it has them, and `TLS` and the
    fingerprint where it speaks TLS."""
    rows = [
        (
            _safe(server.name),
            server.address,
            _safe(server.version),
            f"{_count(server.users)}/{_count(server.max_users)} users",
            "compatible" if server.compatible else "incompatible",
            server.web_url or "",
            server.irc_url or "",
            f"TLS {server.fingerprint or ''}".rstrip() if server.tls else "",
        )
        for server in servers
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)] if rows else []
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4]
        yield line + "".join(f"  {cell}" for cell in row[5:] if cell)


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
