"""One IRC connection's state, shared by its decoder and its encoder."""

from __future__ import annotations

import collections
import itertools
from typing import Any, Deque, Dict, Optional

from lanchat.irc import lines

MAX_ASKED = 256  # commands remembered until answered, per connection


class Asked:
    """What a command asked, kept under its ref until the answer comes."""

    def __init__(self, command: str, target: str = "", detail: str = "") -> None:
        self.command = command
        self.target = target
        self.detail = detail  # more of what it asked (the mask of a ban)


class IrcState:
    """One IRC connection's state, shared by its decoder and its codec."""

    def __init__(self) -> None:
        self.nick = ""  # as IRC shows it
        self.user = ""
        self.caps: set = set()
        self.password: Optional[str] = None
        self.nonce: Optional[str] = None  # from the session's hello: a password is asked
        self.max_joined = 0
        self.logged_in = False
        self.motd = ""
        self.online = 0
        self.asked: Dict[str, Asked] = {}
        self.lists: Deque[Asked] = collections.deque(maxlen=MAX_ASKED)  # WHO/NAMES, in order
        self._refs = itertools.count(1)

    def ref(self, command: str, target: str = "", detail: str = "") -> str:
        """A fresh ref for a frame, remembering what it asked."""
        token = f"irc{next(self._refs)}"
        self.asked[token] = Asked(command, target, detail)
        if len(self.asked) > MAX_ASKED:  # answers that never came: forget the oldest
            del self.asked[next(iter(self.asked))]
        return token

    def answered(self, ref: Optional[Any]) -> Optional[Asked]:
        """What the frame of this ref asked (once), or None."""
        return self.asked.pop(ref, None) if isinstance(ref, str) else None

    def tags(self, ts: Optional[float]) -> str:
        """The tags of a line about something at `ts`, when the client asked for them."""
        return lines.time_tag(ts) if ts is not None and "server-time" in self.caps else ""
