"""The client model's rooms (protocol 4.2): the room frames, the room commands and the
keys that show another room.

`RoomEvents` is a part of `chat.model.ClientModel` (its base class), kept apart so the
model stays readable; the state itself is `chat.rooms.Rooms`. Against a server without
rooms the one room holds everything and the room commands say "this server has no rooms".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence

from lanchat import protocol
from lanchat.chat.actions import Action
from lanchat.chat.completion import Completion
from lanchat.chat.outbox import Outbox
from lanchat.chat.requests import Request, Requests
from lanchat.chat.rooms import Room, Rooms, room_key
from lanchat.chat.termtext import safe_text
from lanchat.protocol import Frame

if TYPE_CHECKING:
    from lanchat.chat.model import Entry

ROOM_ERRORS = (  # errors about a room, which carry the room's name
    "invalid_room",
    "no_such_room",
    "not_in_room",
    "last_room",
    "too_many_rooms",
    "too_many_joined",
    "room_full",
)
CTRL_X = "\x18"  # Ctrl-X then n or p (or a digit): the next, previous (or Nth) room


class RoomEvents:
    """Room frames in, room commands and keys: the rooms half of the client model."""

    rooms: Rooms
    _requests: Requests
    _out: Outbox
    _rooms_to_come: List[str]  # the keys of the welcome's rooms whose `joined` is to come
    _ctrl_x: bool
    _completion: Optional[Completion]
    _seq: int
    scroll: int
    scroll_seq: int
    unread_after: int

    if TYPE_CHECKING:  # the model's own, which these use

        @property
        def online_is_live(self) -> bool: ...
        def _add(
            self, kind: str, text: str, into: Optional[Room] = None, **fields: object
        ) -> Entry: ...
        def _flush(self, now: float) -> List[Action]: ...
        def _ask(self, frame: Frame, answer: str, now: float) -> List[Action]: ...
        def _set_members(self, room: Room, members: Sequence[str]) -> None: ...
        def _take_history(self, history: List[Frame], now: float) -> None: ...
        def _say_logged_in(self, now: float) -> None: ...
        def _take_away(self, away: object) -> None: ...

    @property
    def joining(self) -> bool:
        """True from /join until that room is joined or refused: typed lines meant for
        it should wait (plain mode holds them)."""
        return self.rooms.joining is not None

    def _welcome_rooms(self, frame: Frame, now: float) -> None:
        """Take the rooms a welcome lists (4.2); a welcome without them: no rooms."""
        joined = frame.get("rooms")
        if not (isinstance(joined, list) and joined and all(isinstance(r, str) for r in joined)):
            self.rooms.single()
            self._rooms_to_come = []
            return
        for name in self.rooms.welcome([safe_text(r) for r in joined]):
            self._add("system", f"you are no longer in {name}", ts=now)
        self._rooms_to_come = [room.key for room in self.rooms.rooms]
        asked = self.rooms.joining
        if asked is not None and room_key(asked) not in self._rooms_to_come:
            self.rooms.joining = None  # not joined: its error follows the welcome

    def _room_refused(
        self, request: Optional[Request], room: object, text: str, now: float
    ) -> List[Action]:
        """An error about a room (4.2), or one that answers a question we asked."""
        asked = self.rooms.joining
        about = room if isinstance(room, str) else None
        if request is not None and request.frame["type"] == "join":
            about = about or request.frame["room"]
            self.rooms.joining = None
        if asked is not None and about is not None and room_key(about) == room_key(asked):
            self.rooms.joining = None
        where = f"{safe_text(about)}: " if about else ""
        self._add("error", f"{where}{text}", ts=now)
        return self._flush(now)

    def _presence_room(self, frame: Frame) -> Optional[Room]:
        """The room a join or leave is about: its `room` if we are in it (4.2); without
        rooms, the one room. A rooms server sends none without `room`."""
        if not self.rooms.enabled:
            return self.rooms.current
        room = frame.get("room")
        return self.rooms.find(room) if isinstance(room, str) else None

    def _message_room(self, frame: Frame) -> Optional[Room]:
        """The room that shows a message: its `room` if we are in it; a private message
        (or any, without rooms) shows in the current room."""
        room = frame.get("room")
        if not self.rooms.enabled or frame.get("to") is not None or not isinstance(room, str):
            return self.rooms.current
        return self.rooms.find(room)

    def _room_field(self, room: Room) -> Optional[str]:
        """The `room` of an entry about this room: its name, if the server has rooms."""
        return room.name if self.rooms.enabled else None

    def _frame_joined(self, frame: Frame, now: float) -> List[Action]:
        """We are in a room now (4.2): its members, topic and history; after /join, shown."""
        if not self.rooms.enabled:
            return []  # the welcome said nothing of rooms
        self._requests.answered("joined", frame["room"], frame.get("ref"))
        room = self.rooms.join(safe_text(frame["room"]))
        room.name = safe_text(frame["room"])  # the spelling of whoever made it
        self._set_members(room, frame["members"])
        self._take_away(frame.get("away"))
        if frame.get("truncated") is True:
            self._add("system", "some messages were skipped: too many to show", room, ts=now)
        self._take_history(frame["history"], now)
        asked = self.rooms.joining is not None and room_key(self.rooms.joining) == room.key
        if asked:
            self.rooms.joining = None
            here = f"you joined {room.name} ({len(room.members)} here)"
            self._add("system", here, room, ts=now, room=room.name)
            self.show_room(self.rooms.rooms.index(room))
        topic = frame.get("topic")
        topic = safe_text(topic) if isinstance(topic, str) else ""
        if topic != (room.topic or ""):
            self._add("system", f"topic: {topic}", room, ts=now, room=room.name)
        room.topic = topic
        if room.key in self._rooms_to_come:
            self._rooms_to_come.remove(room.key)
            if not self._rooms_to_come:
                self._say_logged_in(now)
        return []

    def _frame_parted(self, frame: Frame, now: float) -> List[Action]:
        """We left a room (4.2); if it was shown, the one before it is."""
        self._requests.answered("parted", frame["room"], frame.get("ref"))
        room = self.rooms.part(frame["room"])
        if room is not None:
            self.scroll = 0
            self._add("system", f"you left {room.name}", ts=now, room=room.name)
        return []

    def _frame_topic(self, frame: Frame, now: float) -> List[Action]:
        """A room's topic, set by somebody (we too), or the answer to asking for it."""
        self._requests.answered("topic", frame["room"], frame.get("ref"))
        room = self.rooms.find(frame["room"])
        text = safe_text(frame["text"])
        by = frame.get("by")
        by = safe_text(by) if isinstance(by, str) else ""
        if room is None:  # a room we are not in: asked about, or set by us as an operator
            name = safe_text(frame["room"])
            setter = f" (set by {by})" if by else ""
            line = f"topic of {name}: {text}{setter}" if text else f"{name} has no topic"
            self._add("info", line, ts=now)
            return []
        room.topic, room.topic_by = text, by
        what = f"set the topic: {text}" if text else "cleared the topic"
        line = f"{by} {what}" if by else f"topic: {text}"
        ts = frame.get("ts")
        self._add("system", line, room, ts=ts if ts is not None else now, room=room.name)
        return []

    def _frame_room_list(self, frame: Frame, now: float) -> List[Action]:
        """/rooms answered: every room, its member count and topic."""
        self._requests.answered("room_list", None)
        listed = [
            item
            for item in frame["rooms"]
            if isinstance(item.get("room"), str) and isinstance(item.get("members"), int)
        ]
        self._add("info", f"rooms ({len(listed)}):", ts=now)
        for item in listed:
            topic = item.get("topic")
            topic = f": {safe_text(topic)}" if isinstance(topic, str) and topic else ""
            line = f"  {safe_text(item['room'])} ({item['members']}){topic}"
            self._add("info", line, ts=now)
        return []

    def _room_key(self, key: str) -> bool:
        """Alt-1 ... Alt-9, Alt-Left/Alt-Right, Ctrl-X then n, p or a digit: show another
        room. True if the key was one of them; after Ctrl-X another key acts as usual."""
        after_ctrl_x, self._ctrl_x = self._ctrl_x, key == CTRL_X
        if key == CTRL_X:
            return True
        if after_ctrl_x and key in ("n", "p"):
            self._step_room(1 if key == "n" else -1)
            return True
        digit = key[1:] if key.startswith("\x1b") else key if after_ctrl_x else ""
        if len(digit) == 1 and "1" <= digit <= "9":
            self.show_room(int(digit) - 1)
            return True
        if key in ("kLFT3", "kRIT3"):  # Alt-Left, Alt-Right
            self._step_room(1 if key == "kRIT3" else -1)
            return True
        return False

    def _step_room(self, delta: int) -> None:
        self.show_room((self.rooms.index + delta) % len(self.rooms.rooms))

    def show_room(self, position: int) -> None:
        """Show the room at this position (0 is the first): its newest lines, all read."""
        if self.rooms.switch(position):
            self.scroll = 0
            self.scroll_seq = self.unread_after = self._seq
            self._completion = None

    def join_room(self, room: str, now: float) -> List[Action]:
        """/join #room: join it (the server makes it if new) and show it once joined."""
        if not self._rooms_ready(now):
            return []
        known = self.rooms.find(room)
        if known is not None:
            self.show_room(self.rooms.rooms.index(known))
            return []
        self.rooms.joining = room
        return self._ask(protocol.join_room(room, ref=self._out.new_ref()), "joined", now)

    def part_room(self, room: str, now: float) -> List[Action]:
        """/part [#room]: leave a room, by default the current one."""
        if not self._rooms_ready(now):
            return []
        known = self.rooms.find(room) if room else self.rooms.current
        if known is None:
            self._add("info", f"you are not in {room}", ts=now)
            return []
        return self._ask(protocol.part_room(known.name, ref=self._out.new_ref()), "parted", now)

    def list_rooms(self, now: float) -> List[Action]:
        """/rooms: ask for every room with its member count and topic."""
        if not self._rooms_ready(now):
            return []
        return self._ask(protocol.list_rooms(), "room_list", now)

    def set_topic(self, rest: str, now: float) -> List[Action]:
        """/topic [#room] [text]: set the topic of the room shown, or of the room named
        first (an operator's: any room); without text show it, asking the server about a
        room we are not in. As on IRC, a first word with '#' names the room."""
        if not self._rooms_ready(now):
            return []
        words = rest.split(maxsplit=1)
        named = words[0] if words and words[0].startswith("#") else None
        text = (words[1] if len(words) > 1 else "") if named else rest
        room = self.rooms.find(named) if named else self.rooms.current
        if text or room is None:
            where = named or self.rooms.current.name
            frame = protocol.set_topic(where, text or None, ref=self._out.new_ref())
            return self._ask(frame, "topic", now)
        if not room.topic:
            self._add("info", f"{room.name} has no topic", ts=now)
        else:
            by = f" (set by {room.topic_by})" if room.topic_by else ""
            self._add("info", f"topic of {room.name}: {room.topic}{by}", ts=now)
        return []

    def _rooms_ready(self, now: float) -> bool:
        """True if room commands can go: logged in to a server with rooms; else say why."""
        if not self.online_is_live:
            self._add("info", "not online right now; try again once connected", ts=now)
            return False
        if not self.rooms.enabled:
            self._no_rooms(now)
            return False
        return True

    def _no_rooms(self, now: float) -> List[Action]:
        self._add("info", "this server has no rooms", ts=now)
        return []
