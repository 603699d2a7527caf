"""The chat room: who is online, the recent history, and fan-out of every frame.

The room knows members only as `Member`s (a name and a way to queue bytes); it opens no
socket. Every frame it fans out is encoded once, and the same bytes go to each receiver.
One lock orders everything: a newcomer's `welcome` and every later frame reach each member
in the order the room decided them.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

from lanchat import protocol
from lanchat.protocol import Frame, ProtocolError, Token

# Hands (member, bytes) pairs to the I/O layer in one call, so it can batch them.
Deliver = Callable[[Iterable[Tuple["Member", bytes]]], None]


class Member:
    """A logged-in user as the room sees one: a name (as chosen) and its key."""

    def __init__(self, name: str) -> None:
        self.rename(name)

    def rename(self, name: str) -> None:
        """Take a (validated) name; the key is what names collide on."""
        self.name = name
        self.key = protocol.name_key(name)


class Room:
    """Membership, history and fan-out of one chat room.

    `deliver` is called with the room lock held and must not block: it queues bytes.
    """

    def __init__(
        self, deliver: Deliver, history_size: int = 100, clock: Callable[[], float] = time.time
    ) -> None:
        self._deliver = deliver
        self._clock = clock
        self._lock = threading.Lock()
        self._members: Dict[str, Member] = {}  # by name key, in join order
        self._history: Deque[Frame] = collections.deque(maxlen=history_size)
        self._last_id = 0

    def _now(self) -> float:
        return round(self._clock(), 3)

    @property
    def names(self) -> List[str]:
        """Every logged-in name, in the order they joined."""
        with self._lock:
            return [m.name for m in self._members.values()]

    def __len__(self) -> int:
        return len(self._members)

    def join(self, member: Member) -> None:
        """Add a member: welcome it, tell everybody else; raise name_taken if the name is in use."""
        with self._lock:
            if member.key in self._members:
                raise ProtocolError("name_taken", f"{member.name!r} is online already.")
            others = list(self._members.values())
            self._members[member.key] = member
            names = [m.name for m in self._members.values()]
            welcome = protocol.encode(_welcome_within_limit(member.name, names, self._history))
            joined = protocol.encode(protocol.join(member.name, self._now()))
            self._deliver([(member, welcome)] + [(m, joined) for m in others])

    def leave(self, member: Member, reason: str, announce: bool = True) -> bool:
        """Remove a member and, with `announce`, tell the others; False if it was not in."""
        with self._lock:
            if self._members.get(member.key) is not member:
                return False
            del self._members[member.key]
            if announce and self._members:
                left = protocol.encode(protocol.leave(member.name, self._now(), reason))
                self._deliver([(m, left) for m in self._members.values()])
            return True

    def say(
        self, sender: Member, text: str, to: Optional[str] = None, ref: Optional[Token] = None
    ) -> Frame:
        """Relay a message (text already cleaned) to the room or to one user; return it."""
        with self._lock:
            receivers: Sequence[Member]
            if to is not None:
                recipient = self._members.get(protocol.name_key(to))
                if recipient is None:
                    raise ProtocolError("no_such_user", f"{to!r} is not online.", ref)
                to = recipient.name
                receivers = [] if recipient is sender else [recipient]
            else:
                receivers = [m for m in self._members.values() if m is not sender]
            self._last_id += 1
            fields = (self._last_id, self._now(), sender.name, text, to)
            frame = protocol.message(*fields)
            if to is None:
                self._history.append(frame)
            data = protocol.encode(frame)
            own = data if ref is None else protocol.encode(protocol.message(*fields, ref=ref))
            self._deliver([(sender, own)] + [(m, data) for m in receivers])
            return frame

    def broadcast(self, frame: Frame) -> None:
        """Send one frame to every member (the server's shutdown notice)."""
        with self._lock:
            data = protocol.encode(frame)
            self._deliver([(m, data) for m in self._members.values()])


def _welcome_within_limit(name: str, online: List[str], history: Iterable[Frame]) -> Frame:
    """The welcome frame, with the oldest history dropped until it fits max_server_frame."""
    kept = list(history)
    while True:
        frame = protocol.welcome(name, online, kept)
        if not kept or len(protocol.encode(frame)) <= protocol.MAX_SERVER_FRAME:
            return frame
        kept = kept[len(kept) // 10 + 1 :]
