"""A stand-in IRC server for testing the bench's IRC mode where ngircd is not installed.

It takes ngircd's command line (`--nodaemon --config FILE`, reading `Listen` and `Ports`
from the file the bench writes) and prints ngircd's `Now listening on [ADDR]:PORT`, so
`python -m bench --peer ngircd --ngircd "python -m bench.fakeircd"` runs the whole peer
path. It speaks just enough IRC for the load generator: NICK/USER -> 001 and a PING
that must be answered, JOIN -> the JOIN to every member (the joiner too), 353 and 366,
and PRIVMSG to the channel -> every other member. One selector loop (bench/fakeserver.py's),
no threads.
"""

from __future__ import annotations

import argparse
import configparser
import socket
import sys
from typing import List, Optional

from bench.fakeserver import FakeServer

NAME = "fake.irc"


def _line(text: str) -> bytes:
    return text.encode() + b"\r\n"


class FakeIrcServer(FakeServer):
    """IRC over FakeServer's loop: one channel, every registered client may join it."""

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
        elif command == "JOIN" and sock in self.names:
            nick = self.names[sock]
            self.online.append(sock)
            join = _line(f":{nick}!~{nick}@127.0.0.1 JOIN :#bench")
            for member in list(self.online):
                self._send(member, join)
            names = " ".join(self.names[member] for member in self.online)
            self._send(sock, _line(f":{NAME} 353 {nick} = #bench :{names}"))
            self._send(sock, _line(f":{NAME} 366 {nick} #bench :End of NAMES list"))
        elif command == "PRIVMSG" and sock in self.online and len(words) == 3:
            nick = self.names[sock]
            relayed = _line(f":{nick}!~{nick}@127.0.0.1 PRIVMSG {words[1]} {words[2]}")
            for member in list(self.online):
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
