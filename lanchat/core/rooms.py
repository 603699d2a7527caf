"""Who is where: a `Member` (one logged-in user, as the chat sees it) and a `Room`.

Both are plain state, changed only by `lanchat.core.chat.Chat` under its lock. A member
knows the rooms it is in, a room its members, both in the order they came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from lanchat import names
from lanchat.core import events
from lanchat.core.transport import LANCHAT_SINGLE, Codec


class Member:
    """A user as the chat sees one: the name as chosen, its key, its resume token, the
    codec its transport speaks, and its rooms; `batch_presence` members get joins and
    leaves in `presence` batches (protocol 4.1). Since 4.3 also: the identity key it
    proved (hex), whether it is an operator, its away text, when it logged in and last
    said something (wall clock), and its address (for operators' eyes)."""

    def __init__(self, name: str, codec: Codec = LANCHAT_SINGLE) -> None:
        self.rename(name)
        self.resume_token = ""
        self.codec = codec
        self.batch_presence = False
        self.rooms: Dict[str, Room] = {}  # by room key, in the order joined
        self.identity: Optional[str] = None
        self.by_password = False  # 4.4: its identity comes from the name password, not a proof
        self.registered = False  # its name is registered to its identity
        self.operator = False
        self.away: Optional[str] = None
        self.told_away: Set[str] = set()  # name keys told `away` this spell (reply once)
        self.since = 0.0
        self.last_said = 0.0
        self.address = ""

    def rename(self, name: str) -> None:
        """Take a (validated) name; the key is what names collide on."""
        self.name = name
        self.key = names.name_key(name)

    @property
    def proved_key(self) -> bool:
        """Whether its login proved the identity key itself (not by a name password)."""
        return self.identity is not None and not self.by_password

    @property
    def room_names(self) -> List[str]:
        """The rooms this member is in, in the order joined."""
        return [room.name for room in self.rooms.values()]


class Room:
    """One room: its name as first spelt, its topic, and its members.

    A `fixed` room (the default room, those of `--rooms`) always exists; another one goes
    once it has been empty for the linger time (`emptied_at` says since when).
    """

    def __init__(self, topic: events.Topic, fixed: bool = False) -> None:
        self.name = topic.room
        self.key = names.room_key(self.name)
        self.topic = topic
        self.fixed = fixed
        self.members: Dict[str, Member] = {}  # by name key, in the order they came in
        self.batch_members = 0  # how many of them take presence in batches
        self.presence: List[events.PresenceChange] = []  # not yet sent to batch members
        self.emptied_at: Optional[float] = None

    def __repr__(self) -> str:
        return f"<Room {self.name} ({len(self.members)})>"

    @property
    def member_names(self) -> Tuple[str, ...]:
        """The members' names, in the order they came in."""
        return tuple(m.name for m in self.members.values())

    def add(self, member: Member) -> None:
        """Put the member in (or in the place of the member of the same key)."""
        old = self.members.get(member.key)
        if old is not None:
            self.batch_members -= old.batch_presence
            old.rooms.pop(self.key, None)
        self.members[member.key] = member
        self.batch_members += member.batch_presence
        member.rooms[self.key] = self
        self.emptied_at = None

    def rekey(self, member: Member, old_key: str) -> None:
        """The member took a name of another key: keep its place under the new key."""
        self.members = {(member.key if k == old_key else k): m for k, m in self.members.items()}

    def remove(self, member: Member, now: float) -> None:
        """Take the member out."""
        del self.members[member.key]
        del member.rooms[self.key]
        self.batch_members -= member.batch_presence
        if not self.members:
            self.emptied_at = now


@dataclass(frozen=True)
class RoomRules:
    """How many rooms there may be, and how people may use them (`lanchat server` options)."""

    default_room: str = "#general"  # where everybody starts; single-room clients' only one
    fixed: Tuple[str, ...] = ()  # more rooms that always exist
    max_rooms: int = 100  # rooms at once, fixed ones included
    max_joined: int = 20  # rooms one person may be in at once
    max_members: int = 0  # people in one room; 0: no limit
    linger: float = 600.0  # seconds an empty room that is not fixed lasts
