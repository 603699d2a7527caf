"""The frames of rooms (protocol 4.2, docs/protocol.md "Rooms") as the client builds and
checks them, until `lanchat.protocol` has them: the client's `join`, `part`, `topic` and
`rooms`, `room` on `say` and `who`, `rooms` on `login`, and the server frames the
connection lets through (`joined`, `parted`, `topic`, `room_list`).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from lanchat import protocol
from lanchat.protocol import Frame, Schema, Token

# What the client accepts from a server: 4.1's frames and those of rooms. The `room`
# fields of message, join, leave, online and error are optional; the model checks them.
SERVER_FRAMES: Schema = {
    **protocol.SERVER_FRAMES,
    "joined": {
        "room": ("str", True),
        "topic": ("str", False),
        "members": ("names", True),
        "history": ("frames", True),
        "truncated": ("bool", False),
        "ref": ("token", False),
    },
    "parted": {"room": ("str", True), "ref": ("token", False)},
    "topic": {
        "room": ("str", True),
        "text": ("str", True),
        "by": ("str", False),
        "ts": ("number", False),
    },
    "room_list": {"rooms": ("frames", True)},
}


def login(name: str, rooms: Sequence[str], **fields: Any) -> Frame:
    """A login that speaks rooms: `rooms` are the rooms to be in (may be empty)."""
    frame = protocol.login(name, **fields)
    frame["rooms"] = list(rooms)
    return frame


def say(
    text: str, to: Optional[str] = None, ref: Optional[Token] = None, room: Optional[str] = None
) -> Frame:
    """A message to a room (`room`), to the default room (neither) or to one user (`to`)."""
    frame = protocol.say(text, to=to, ref=ref)
    if room is not None:
        frame["room"] = room
    return frame


def who(room: Optional[str] = None) -> Frame:
    """Ask who is in a room, or (no room) who is logged in."""
    frame = protocol.who()
    if room is not None:
        frame["room"] = room
    return frame


def join(room: str, ref: Optional[Token] = None) -> Frame:
    """Join a room (made if new)."""
    return _with_ref({"type": "join", "room": room}, ref)


def part(room: str, ref: Optional[Token] = None) -> Frame:
    """Leave a room."""
    return _with_ref({"type": "part", "room": room}, ref)


def topic(room: str, text: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """Set a room's topic (`""` clears it), or without `text` ask for it."""
    frame: Frame = {"type": "topic", "room": room}
    if text is not None:
        frame["text"] = text
    return _with_ref(frame, ref)


def rooms() -> Frame:
    """Ask for every room with its member count and topic."""
    return {"type": "rooms"}


def _with_ref(frame: Frame, ref: Optional[Token]) -> Frame:
    if ref is not None:
        frame["ref"] = ref
    return frame
