"""IRC mode of the load generator: the same load and measurements against an IRC server.

`IrcLoadGen` is `LoadGen` speaking IRC (RFC 2812) instead of lanchat, so that a real peer
such as ngircd can run the bench's scenarios side by side with lanchat. Each client sends
`NICK`/`USER` (no password), waits for `001`, sends `JOIN #bench` and counts as logged in
at `366` (end of the channel's names, the counterpart of lanchat's `welcome` with its
online list). A room message is `PRIVMSG #bench :lcb/<seq>/<ns>`, the same stamp text the
lanchat mode sends, and deliveries and latency are read from the relayed `PRIVMSG`s by a
fast path in the same way. `PING` is answered with `PONG`.

With rooms (`rooms=R`), client i joins `#bench<i mod R>` instead, as the lanchat mode
joins the room of that name, and says its messages there.

`GatewayLoadGen` plays the same clients against lanchat's IRC gateway, whose server the
bench starts with `#bench` as its default room: the gateway puts each client there at
registration (the JOIN, 353 and 366 follow 001 unasked), so it sends no JOIN of its own.
The gateway relays a one-word text without the trailing parameter's colon
(`PRIVMSG #bench lcb/<seq>/<ns>`), which the fast path reads as well.

Two differences from lanchat that the counts follow: an IRC server does not echo a
`PRIVMSG` to its sender, so each message is expected N-1 times rather than N (N: the
members of its channel); and each client also sees its own `JOIN`, so settling waits for
N(N+1)/2 joins per channel rather than N(N-1)/2.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from bench.loadgen import HELLO, LOGIN, ROOM_PREFIX, Conn, LoadGen, text_stamp

CHANNEL = ROOM_PREFIX  # the one channel without rooms; with rooms #bench0, #bench1, ...
_CHANNEL = re.compile(re.escape(CHANNEL) + "[0-9]*")
# A relayed bench message, `:nick!user@host PRIVMSG #bench :lcb/<seq>/<ns>` and nothing
# more (the CR of CRLF may remain after splitting on LF): as good as a parse. A trailing
# parameter of one word may come without its colon.
_STAMP = re.compile(rb":[^ ]+ PRIVMSG #bench[0-9]* :?lcb/(\d+)/(\d+)\r?$")
NO_MOTD = "422"  # ERR_NOMOTD ends a registration without a MOTD: no error to the bench
_JOIN = re.compile(rb":[^ ]+ JOIN :?#bench[0-9]*\r?$")


def parse_line(line: str) -> Tuple[str, str, List[str]]:
    """(prefix, command, params) of one IRC line without its CRLF (RFC 2812 2.3.1)."""
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    line = line.lstrip(" ")
    head, colon, trailing = line.partition(" :")
    words = head.split()
    command = words[0].upper() if words else ""
    params = words[1:] + ([trailing] if colon else [])
    return prefix, command, params


def message_stamp(line: bytes) -> Optional[Tuple[int, int]]:
    """(seq, sent ns) of a relayed bench PRIVMSG, read from raw bytes; else None."""
    found = _STAMP.match(line)
    return (int(found[1]), int(found[2])) if found else None


def line_stamp(line: bytes) -> Optional[Tuple[int, int]]:
    """(seq, sent ns) of a bench PRIVMSG to a bench channel, by a full parse; else None."""
    _, command, params = parse_line(line.decode("utf-8", "replace").rstrip("\r"))
    if command != "PRIVMSG" or len(params) != 2 or not _CHANNEL.fullmatch(params[0]):
        return None
    return text_stamp(params[1])


class IrcLoadGen(LoadGen):
    """N IRC clients in channel #bench (or #bench0.. with rooms), on the load generator's
    loop and schedule."""

    STAMP = _STAMP
    JOIN = _JOIN
    ECHOES_OWN = False

    def _on_connect(self, conn: Conn) -> None:
        # The client speaks first in IRC; bytes written before the connection completes
        # wait in the output buffer.
        name = conn.name
        self._write(conn, f"NICK {name}\r\nUSER {name} 0 * :lanchat bench\r\n".encode())

    def _say(self, conn: Conn, seq: int, sent_ns: int) -> bytes:
        return b"PRIVMSG %b :lcb/%d/%d\r\n" % (self._channel(conn).encode(), seq, sent_ns)

    def _joins_seen_in(self, members: int) -> int:
        # Every client sees its own JOIN as well as those of everyone after it.
        return members * (members + 1) // 2

    def _registered(self, conn: Conn) -> None:
        """The server said 001: join the client's channel."""
        self._write(conn, f"JOIN {self._channel(conn)}\r\n".encode())

    def _channel(self, conn: Conn) -> str:
        """The channel the client joins."""
        return self._room_name(conn) or CHANNEL

    def _check(self, conn: Conn, line: bytes, stamp: Optional[Tuple[int, int]]) -> None:
        """Verify mode: the fast path must agree with a full parse, in the client's channel,
        and no client may get a message twice."""
        _, command, params = parse_line(line.decode("utf-8", "replace").rstrip("\r"))
        if stamp is None:
            ok = command == "JOIN" and params == [self._channel(conn)]
        else:
            ok = line_stamp(line) == stamp and params[0] == self._channel(conn)
            self._count_repeat(conn, stamp[0])
        if not ok:
            self.verify_mismatches += 1

    def _slow(self, conn: Conn, line: bytes, now: int) -> None:
        prefix, command, params = parse_line(line.decode("utf-8", "replace").rstrip("\r"))
        if command == "PRIVMSG":
            self._delivered(conn, line_stamp(line), now)
        elif command == "PING":
            self.pings += 1
            token = params[-1] if params else ""
            self._write(conn, f"PONG :{token}\r\n".encode())
        elif command == "001":
            if conn.state == HELLO:
                conn.state = LOGIN
                self._registered(conn)
        elif command == "366":  # end of NAMES: in the channel, with everyone's names
            if conn.state == LOGIN:
                self._welcomed(conn, now)
        elif command == "JOIN":
            self.joins += 1
        elif command in ("PART", "QUIT"):
            self.leaves += 1
        elif command == "ERROR":
            self.shutdowns += 1
        elif len(command) == 3 and command.isdigit() and command[0] in "45" and command != NO_MOTD:
            self.errors[command] += 1  # an error numeric: 433 nick in use, 471 full...
            if conn.state in (HELLO, LOGIN):
                self._drop(conn, f"error:{command}")
        elif not prefix and not command:
            self.bad_lines += 1
        else:
            self.other_frames += 1


class GatewayLoadGen(IrcLoadGen):
    """IRC clients of lanchat's gateway, whose default room is the bench's channel."""

    def _registered(self, conn: Conn) -> None:
        """The gateway joins the client to its default room itself, right after 001."""
