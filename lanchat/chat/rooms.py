"""The rooms the client is in (protocol 4.2): each with its own lines, members, topic,
unread count and mention mark, in the order joined, and the one shown.

A server without rooms (4.1) gives the client one room with no name (`""`): it holds the
lines and the online list exactly as a client without rooms did. The model
(`chat.model`) feeds this; the view draws the room bar from it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from lanchat import names

if TYPE_CHECKING:
    from lanchat.chat.model import Entry


def room_key(name: str) -> str:
    """What two room names collide on, as the server compares them (NFKC case fold)."""
    return names.name_key(name)


@dataclass
class Room:
    """One room: what it showed, who is in it, its topic, and what its reader missed."""

    name: str  # "" for the one room of a server without rooms
    entries: List[Entry] = field(default_factory=list)
    members: List[str] = field(default_factory=list)
    topic: Optional[str] = None  # None until the server told us
    topic_by: str = ""  # who set the topic, when the server said
    unread: int = 0  # messages from others since the reader last looked at it
    mention: bool = False  # one of them said our name

    @property
    def key(self) -> str:
        """The name as rooms are compared."""
        return room_key(self.name)

    def add(self, entry: Entry, keep: int) -> None:
        """Add a line, keeping at most `keep`."""
        self.entries.append(entry)
        if len(self.entries) > keep:
            del self.entries[: len(self.entries) - keep]


class Rooms:
    """The rooms joined, in order, and the current one (the one shown, where lines go)."""

    def __init__(self) -> None:
        self.enabled = False  # the server speaks rooms (its welcome listed ours)
        self.rooms: List[Room] = [Room("")]
        self.index = 0
        self.joining: Optional[str] = None  # the room /join asked for; shown once joined

    @property
    def current(self) -> Room:
        """The room shown."""
        return self.rooms[self.index]

    @property
    def names(self) -> List[str]:
        """The names of the rooms joined, in order (none without rooms)."""
        return [room.name for room in self.rooms] if self.enabled else []

    def find(self, name: str) -> Optional[Room]:
        """The joined room of this name (any spelling), if any."""
        key = room_key(name)
        return next((room for room in self.rooms if room.key == key), None)

    def welcome(self, joined: Sequence[str]) -> List[str]:
        """A welcome listed the rooms we are in: keep what we knew of them, in its order.

        Returns the names of the rooms we were in and are not any more. The first welcome
        gives the lines shown so far to the first room. The current room stays current
        if we are still in it, else the first is.
        """
        current = self.current.key
        if not self.enabled:
            self.enabled = True
            self.rooms[0].name = joined[0]
        kept: Dict[str, Optional[Room]] = {room.key: room for room in self.rooms}
        self.rooms = [kept.pop(room_key(name), None) or Room(name) for name in joined]
        keys = [room.key for room in self.rooms]
        self.index = keys.index(current) if current in keys else 0
        self._seen(self.current)
        return [room.name for room in kept.values() if room is not None]

    def single(self) -> None:
        """The server speaks no rooms (any more): the current room becomes the only one."""
        self.enabled = False
        self.joining = None
        self.rooms = [self.current]
        self.rooms[0].name = ""
        self.index = 0

    def join(self, name: str) -> Room:
        """We are in this room now: the one we knew, else a new one at the end."""
        room = self.find(name)
        if room is None:
            room = Room(name)
            self.rooms.append(room)
        return room

    def part(self, name: str) -> Optional[Room]:
        """We left this room: forget it. The room before it is shown if it was."""
        room = self.find(name)
        if room is None or len(self.rooms) == 1:
            return None
        position = self.rooms.index(room)
        del self.rooms[position]
        if position < self.index or (position == self.index and position > 0):
            self.index -= 1
        self._seen(self.current)
        return room

    def switch(self, position: int) -> bool:
        """Show the room at this position (0 is the first); False if there is none."""
        if not 0 <= position < len(self.rooms) or position == self.index:
            return False
        self.index = position
        self._seen(self.current)
        return True

    def step(self, delta: int) -> bool:
        """Show the next (+1) or previous (-1) room, round the end."""
        return self.switch((self.index + delta) % len(self.rooms))

    def arrived(self, room: Room, mention: bool) -> bool:
        """Someone else said something new in `room`; True if it rings the bell: a
        mention where we look (as without rooms), or the first mention in a room we
        are not looking at (it marks the room until we look)."""
        if room is self.current:
            return mention
        room.unread += 1
        if mention and not room.mention:
            room.mention = True
            return True
        return False

    def entries_after(self, seq: int) -> List[Entry]:
        """Every room's lines newer than `seq`, oldest first (plain mode prints them)."""
        newer = [entry for room in self.rooms for entry in _after(room.entries, seq)]
        return sorted(newer, key=lambda entry: entry.seq)

    @staticmethod
    def _seen(room: Room) -> None:
        room.unread = 0
        room.mention = False


def _after(entries: List[Entry], seq: int) -> List[Entry]:
    """The entries newer than `seq`: the end of a list kept in seq order."""
    start = len(entries)
    while start > 0 and entries[start - 1].seq > seq:
        start -= 1
    return entries[start:]
