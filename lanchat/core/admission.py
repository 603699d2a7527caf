"""Each client address's share of the server's connections, so one host cannot fill it.

`AddressShares(limit)`: `take(host)` counts a connection in unless its address holds
`limit` already; `give_back(host)` counts it out when it ends. Addresses are compared as
`address_key` spells them: an IPv4-mapped IPv6 address (`::ffff:10.0.0.7`, what a
dual-stack listener reports for an IPv4 peer) counts as its IPv4 address, and loopback
addresses count like any other.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Dict


def address_key(host: str) -> str:
    """The address a connection from `host` counts against."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # not an IP address (an IPv6 scope id before Python 3.9): as it is
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class AddressShares:
    """Connections per client address, at most `limit` each; safe from any thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._held: Dict[str, int] = {}

    def take(self, host: str) -> bool:
        """Count one more connection from `host`; False (and nothing counted) if it holds
        its share already."""
        key = address_key(host)
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.limit:
                return False
            self._held[key] = held + 1
            return True

    def give_back(self, host: str) -> None:
        """Count out one connection from `host` that `take` counted in."""
        key = address_key(host)
        with self._lock:
            held = self._held[key] - 1
            if held:
                self._held[key] = held
            else:
                del self._held[key]  # so the table holds only addresses now connected
