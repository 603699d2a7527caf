"""A stand-in IRC server for testing the bench's IRC mode where ngircd is not installed.

It takes ngircd's command line (`--nodaemon --config FILE`, reading `Listen` and `Ports`
from the file the bench writes) and prints ngircd's `Now listening on [ADDR]:PORT`, so
`python -m bench --peer ngircd --ngircd "python -m bench.fakeircd"` runs the whole peer
path. It speaks just enough IRC for the load generator: NICK/USER -> 001 and a PING
that must be answered, JOIN -> the JOIN to every member of that channel (the joiner
too), 353 and 366, and PRIVMSG to a channel -> every other member of it. One selector loop
(bench/fakeserver.py's), no threads.
"""

from __future__ import annotations

import argparse
import configparser
import socket
import sys
from typing import Dict, List, Optional

from bench.fakeserver import FakeServer

NAME = "fake.irc"


def _line(text: str) -> bytes:
    return text.encode() + b"\r\n"


class FakeIrcServer(FakeServer):
    """IRC over FakeServer's loop: channels that any registered client may join."""

    def __init__(self, bind: str, port: int) -> None:
        super().__init__(bind, port)
        self.channels: Dict[str, List[socket.socket]] = {}  # name -> members, in order

    def _close(self, sock: socket.socket) -> None:
        super()._close(sock)
        for members in self.channels.values():
            if sock in members:
                members.remove(sock)

    def _greet(self, sock: socket.socket) -> None:
        """In IRC the client speaks first."""

    def _line(self, sock: socket.socket, line: bytes) -> None:
        words = line.decode("utf-8", "replace").rstrip("\r").split(" ", 2)
        command = words[0].upper()
        if command == "NICK":
            self.names[sock] = words[1]
        elif command == "USER":
            nick = self.names.get(sock, "*")
            self._send(sock, _line(f":{NAME} 001 {nick} :Welcome {nick}"))
            self._send(sock, _line(f"PING :{NAME}"))  # the client must answer it
        elif command == "JOIN" and sock in self.names and len(words) == 2:
            nick, channel = self.names[sock], words[1]
            members = self.channels.setdefault(channel, [])
            members.append(sock)
            join = _line(f":{nick}!~{nick}@127.0.0.1 JOIN :{channel}")
            for member in list(members):
                self._send(member, join)
            names = " ".join(self.names[member] for member in members)
            self._send(sock, _line(f":{NAME} 353 {nick} = {channel} :{names}"))
            self._send(sock, _line(f":{NAME} 366 {nick} {channel} :End of NAMES list"))
        elif command == "PRIVMSG" and len(words) == 3 and sock in self.channels.get(words[1], []):
            nick = self.names[sock]
            relayed = _line(f":{nick}!~{nick}@127.0.0.1 PRIVMSG {words[1]} {words[2]}")
            for member in list(self.channels[words[1]]):
                if member is not sock:  # IRC does not echo a message to its sender
                    self._send(member, relayed)


def main(argv: Optional[List[str]] = None) -> int:
    """`fakeircd.py --nodaemon --config FILE`: ngircd's options, its Listen and Ports."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodaemon", action="store_true")
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = configparser.ConfigParser(strict=False)
    config.read(args.config)
    bind = config.get("Global", "Listen", fallback="127.0.0.1")
    FakeIrcServer(bind, config.getint("Global", "Ports")).run("Now listening on [{}]:{}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
