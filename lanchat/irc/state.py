"""One IRC connection's state, shared by its decoder and its encoder."""

from __future__ import annotations

import collections
import itertools
from typing import Any, Deque, Dict, List, Optional

from lanchat.irc import lines

MAX_ASKED = 256  # commands remembered until answered, per connection


class Asked:
    """What a command asked, kept under its ref until the answer comes."""

    def __init__(self, command: str, target: str = "", ref: str = "", detail: str = "") -> None:
        self.command = command
        self.target = target
        self.ref = ref
        self.detail = detail  # more of what it asked (the mask of a ban)
        self.reply = b""  # REPLY: what the gateway answers once the session let it through
        self.gathered: Optional[Gathered] = None  # USERHOST: where this nick's answer goes
        self.index = 0  # ... and in which place


class Gathered:
    """The answers of several frames that make one IRC reply (USERHOST: a whois per nick)."""

    def __init__(self, count: int) -> None:
        self.entries: List[str] = [""] * count
        self.left = count

    def add(self, index: int, entry: str) -> bool:
        """Put one answer in its place ("" for none); True once all are in."""
        self.entries[index] = entry
        self.left -= 1
        return self.left == 0


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
        self.asked: Dict[str, Asked] = {}
        # Answers without a ref (online, room_list) come in the order asked: what each asked.
        self.lists: Deque[Asked] = collections.deque(maxlen=MAX_ASKED)  # who: WHO, NAMES ...
        self.room_lists: Deque[Asked] = collections.deque(maxlen=MAX_ASKED)  # rooms: LIST
        self._refs = itertools.count(1)

    def ref(self, command: str, target: str = "", detail: str = "") -> str:
        """A fresh ref for a frame, remembering what it asked."""
        return self.ask(command, target, detail).ref

    def ask(self, command: str, target: str = "", detail: str = "") -> Asked:
        """What a command asks, under a fresh ref for its frame."""
        asked = Asked(command, target, f"irc{next(self._refs)}", detail)
        self.asked[asked.ref] = asked
        if len(self.asked) > MAX_ASKED:  # answers that never came: forget the oldest
            del self.asked[next(iter(self.asked))]
        return asked

    def ask_in_order(self, queue: Deque[Asked], command: str, target: str = "") -> str:
        """A ref for a frame whose answer carries none (`who`, `rooms`): what it asked
        also waits in `queue`, where the answers find it in order; an error (a refusal,
        with the ref) takes it out."""
        asked = self.ask(command, target)
        queue.append(asked)
        return asked.ref

    def next_in(self, queue: Deque[Asked]) -> Optional[Asked]:
        """What the oldest frame waiting in `queue` asked, now that its answer came."""
        if not queue:
            return None
        asked = queue.popleft()
        self.asked.pop(asked.ref, None)
        return asked

    def answered(self, ref: Optional[Any]) -> Optional[Asked]:
        """What the frame of this ref asked (once), or None."""
        asked = self.asked.pop(ref, None) if isinstance(ref, str) else None
        for queue in (self.lists, self.room_lists):
            if asked is not None and asked in queue:
                queue.remove(asked)
        return asked

    def reply_of(self, token: Optional[Any]) -> Optional[bytes]:
        """The gateway's own reply carried by the ping of this token (once), or None."""
        asked = self.asked.get(token) if isinstance(token, str) else None
        if asked is None or asked.command != "REPLY":
            return None  # a client's own PING token
        del self.asked[asked.ref]
        return asked.reply

    def flavour(self) -> str:
        """The capabilities the client asked for that change the bytes of what all of a
        room read alike (a message, join, part ...): server-time (its tag) alone, so far."""
        return "server-time" if "server-time" in self.caps else ""

    def tags(self, ts: Optional[float]) -> str:
        """The tags of a line about something at `ts`, when the client asked for them."""
        return lines.time_tag(ts) if ts is not None and "server-time" in self.caps else ""
