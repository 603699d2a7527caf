"""What both halves of discovery need of the LAN: the IPv4 interfaces and their broadcast
addresses, and the size of a datagram; and the addresses the server prints its web
client's URL for.

The server's `Responder` (lanchat.core.responder) listens on its interface's broadcast
address; the client's search (lanchat.chat.finder) sends its probe to every interface's.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import List, Optional

log = logging.getLogger(__name__)

FALLBACK_BROADCAST = "255.255.255.255"
MAX_DATAGRAM = 65535  # one UDP payload; a `server` answer with a long name still fits

# Linux ioctls and interface flags (from <linux/sockios.h> and <net/if.h>).
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2
_IFF_LOOPBACK = 0x8


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


def addresses() -> List[str]:
    """The IPv4 address of every interface that is up, loopback aside, in order; where
    interfaces cannot be read (not Linux) or none has one, ["127.0.0.1"]."""
    try:
        interfaces = _interfaces()
    except (OSError, ImportError, AttributeError) as exc:
        log.debug("cannot list interfaces: %s", exc)
        interfaces = []
    found = [i.address for i in interfaces if not i.loopback]
    return list(dict.fromkeys(found)) or ["127.0.0.1"]


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


def broadcast_of(address: str) -> Optional[str]:
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
