"""IRC lines without I/O: parsing, formatting, splitting, and the nick mapping.

Nicks: a lanchat name may hold letters of any script, digits, `_`, `-` and `.`. IRC nicks
cannot hold `.`, and lanchat names cannot hold `|`, so `.` is shown as `|` on IRC and a
`|` typed on IRC means `.`: reversible, and no two names meet. Other letters stay as they
are, in UTF-8 (the server says UTF8ONLY); the lanchat name rules (look-alikes, length,
uniqueness by `names.name_key`) apply to what an IRC client types, since it is turned
back into the lanchat name before the chat sees it.
"""

from __future__ import annotations

import datetime
from typing import List, NamedTuple, Optional

SERVER = "lanchat"  # the server's name in prefixes (lanchat server names may hold spaces)
MAX_LINE = 512  # bytes of a line without tags, "\r\n" included (RFC 2812)
_LINE_ENDS = {ord("\r"): " ", ord("\n"): " ", 0: " "}
MAX_TAGS = 8191  # bytes of a client's tags, "@" and the space included (IRCv3 message-tags)


class Line(NamedTuple):
    """One parsed client line: its command (upper case) and parameters."""

    command: str
    params: List[str]


def parse(raw: bytes) -> Optional[Line]:
    """A line without its line ending as (command, params); None for an empty one.
    Tags a client sends are read past (none of them means anything here); bytes that
    are not UTF-8 are replaced."""
    text = raw.decode("utf-8", "replace").strip("\r")
    if text.startswith("@"):
        text = text.partition(" ")[2]
    text = text.lstrip(" ")
    if text.startswith(":"):
        text = text.partition(" ")[2]
    head, sep, trailing = text.partition(" :")
    params = [p for p in head.split(" ") if p]
    if not params:
        return None
    if sep:
        params.append(trailing)
    return Line(params[0].upper(), params[1:])


def irc_nick(name: str) -> str:
    """The nick an IRC client sees for a lanchat name."""
    return name.replace(".", "|")


def lanchat_name(nick: str) -> str:
    """The lanchat name an IRC nick stands for (the inverse of irc_nick)."""
    return nick.replace("|", ".")


def prefix(name: str) -> str:
    """The source of what a lanchat member does: nick!user@host."""
    nick = irc_nick(name)
    return f"{nick}!{nick}@{SERVER}"


def line(source: Optional[str], command: str, *params: str, tags: str = "") -> bytes:
    """One line; the last parameter is trailing (after ':') when it must be."""
    # (lanchat text holds no line ends; this keeps it so, whatever comes, as one line)
    parts = [command, *(p.translate(_LINE_ENDS) for p in params)]
    parts[1:-1] = [_middle(p) for p in parts[1:-1]]
    last = parts[-1]
    if len(parts) > 1 and (not last or " " in last or last.startswith(":")):
        parts[-1] = ":" + last
    text = " ".join(parts)
    if source:
        text = f":{source} {text}"
    if tags:
        text = f"@{tags} {text}"
    return text.encode("utf-8", "replace") + b"\r\n"


def _middle(param: str) -> str:
    """A parameter before the last as it can be one: what a client sent that cannot (empty,
    with a space, or starting with ':') is `*`, as modern IRC says for HELP's subject."""
    return "*" if not param or " " in param or param.startswith(":") else param


def numeric(code: str, nick: str, *params: str) -> bytes:
    """A numeric reply to the client called `nick` (`*` before it has one)."""
    return line(SERVER, code, nick or "*", *params)


def time_tag(ts: float) -> str:
    """The IRCv3 server-time tag of a time."""
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return "time=" + moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def split_text(text: str, room: int) -> List[str]:
    """The text as pieces of at most `room` bytes each in UTF-8, cut between characters
    (an IRC line holds 512 bytes at most)."""
    if len(text) * 4 <= room or len(text.encode("utf-8")) <= room:
        return [text]  # the usual case, one line (a character is at most 4 bytes), at once
    pieces: List[str] = []
    piece = ""
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > room:
            pieces.append(piece)
            piece, size = "", 0
        piece += char
        size += width
    return [*pieces, piece] if piece or not pieces else pieces
