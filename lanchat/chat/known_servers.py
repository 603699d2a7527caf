"""The servers whose TLS certificate this client has trusted: `known_servers`.

The file is `$XDG_CONFIG_HOME/lanchat/known_servers` (by default
`~/.config/lanchat/known_servers`), one line per server, keyed by the server's name
(addresses change on a LAN; the name is what its hello and discovery answer say):

    den SHA256:5E:0A:...:C4 2026-12-02T03:40:12Z 10.0.0.5:42070

that is the name (a space, `%` or control character in it written as `%XX` of its UTF-8
bytes), the certificate's fingerprint, when it was first trusted, and the address
(host:port, as connected to) the server was last reached at: a server that moved keeps
its line with its new address. One address per name, so that an address a server has
left is not kept for long; several lines may hold one address (the last one is the
server last remembered there). Lines starting with `#`, and lines this client cannot
read, are kept as they are. A new server is appended (so two clients meeting two servers
at once lose neither); a replaced, moved, renamed or forgotten one rewrites the file
through a temporary file, with its new line last. The file is its owner's only (0600),
in the config folder (0700).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import unquote

from lanchat import tls
from lanchat.chat.keyfile import config_dir, make_private_dir

KNOWN_SERVERS_FILE = "known_servers"
_HEADER = (
    "# lanchat: the TLS certificates this client trusts, one line per server name:\n"
    "# NAME FINGERPRINT FIRST-SEEN LAST-ADDRESS. Delete a line (or run 'lanchat client\n"
    "# --forget-server NAME') to accept a server's new certificate.\n"
)
_ESCAPED = re.compile(r"[%\s\x00-\x1f\x7f]")


class KnownServersError(Exception):
    """The file cannot be read or written; the message is one line for a person."""


@dataclass(frozen=True)
class KnownServer:
    """One trusted server: its name, its certificate's fingerprint, when it was first
    trusted (UTC, ISO 8601) and where it was last reached (host:port)."""

    name: str
    fingerprint: str
    first_seen: str
    address: str

    def to_line(self) -> str:
        """The line the file holds for it."""
        return f"{_escape(self.name)} {self.fingerprint} {self.first_seen} {self.address}\n"


def default_path() -> str:
    """Where the known servers are kept."""
    return os.path.join(config_dir(), KNOWN_SERVERS_FILE)


def _escape(name: str) -> str:
    return _ESCAPED.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), name)


def _parse(line: str) -> Optional[KnownServer]:
    """The server on a line, or None for a comment or a line that is not one."""
    parts = line.split()
    if len(parts) != 4 or line.startswith("#"):
        return None
    fingerprint = tls.parse_fingerprint(parts[1])
    if fingerprint is None:
        return None
    return KnownServer(unquote(parts[0]), fingerprint, parts[2], parts[3])


class KnownServers:
    """The known_servers file: look a server up, remember one, forget one."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path or default_path()

    def _lines(self) -> List[str]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as file:
                return file.readlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KnownServersError(f"cannot read {self.path}: {exc.strerror}") from None

    def find(self, name: str) -> Optional[KnownServer]:
        """The server of this name as first trusted, or None."""
        for line in self._lines():
            server = _parse(line)
            if server is not None and server.name == name:
                return server
        return None

    def find_at(self, address: str) -> List[KnownServer]:
        """The servers last reached at this host:port, in the file's order."""
        found = (_parse(line) for line in self._lines())
        return [server for server in found if server is not None and server.address == address]

    def remember(self, name: str, fingerprint: str, address: str) -> KnownServer:
        """Trust this certificate for this name from now on (replacing an older one)."""
        seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        server = KnownServer(name, fingerprint, seen, address)
        if self.find(name) is not None:
            self.replace(name, server)
            return server
        try:
            make_private_dir(os.path.dirname(os.path.abspath(self.path)))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            new = os.fstat(fd).st_size == 0
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                file.write((_HEADER if new else "") + server.to_line())
        except OSError as exc:
            raise KnownServersError(f"cannot write {self.path}: {exc.strerror}") from None
        return server

    def replace(self, name: str, server: KnownServer) -> None:
        """Put `server` in the place of the line of this name (a server that moved or was
        renamed; its line goes last)."""
        self._rewrite([line for line in self._lines() if not _names(line, name)], server)

    def forget(self, name: str) -> Optional[KnownServer]:
        """Trust no certificate for this name any more; the one forgotten, or None."""
        known = self.find(name)
        if known is not None:
            self._rewrite([line for line in self._lines() if not _names(line, name)])
        return known

    def _rewrite(self, lines: List[str], added: Optional[KnownServer] = None) -> None:
        temporary = self.path + ".tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.writelines(lines)
                if added is not None:
                    file.write(added.to_line())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise KnownServersError(f"cannot write {self.path}: {exc.strerror}") from None


def _names(line: str, name: str) -> bool:
    server = _parse(line)
    return server is not None and server.name == name
