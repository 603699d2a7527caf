"""What the console asks of the server: snapshots for the lists, and the operator API.

`OperatorAPI` is the part of `lanchat.server.ChatServer` the console uses: `operate`,
`announce`, `people` and its chat's `room_list`. `carry_out` runs one action of the
command line through it and says what came of it, for the model to show.
"""

from __future__ import annotations

import json
import time
from typing import List, Optional, Protocol, Sequence, Tuple, Union

from lanchat.console.commands import Announce, Operate
from lanchat.console.model import ConsoleModel, Person, RoomInfo
from lanchat.core import events
from lanchat.core.chat import Chat
from lanchat.core.transport import LANCHAT
from lanchat.protocol import Frame, ProtocolError


class OperatorAPI(Protocol):
    """The server as the console sees it."""

    chat: Chat  # its `room_list()` lists the rooms

    def operate(self, frame: Frame) -> List[events.Event]:
        """Run one operator frame as the operator "console"; ProtocolError if it is bad."""

    def announce(self, text: str, room: Optional[str] = None) -> None:
        """A notice to everybody, or to one room's members."""

    def people(self) -> List[Tuple[str, str, Tuple[str, ...]]]:
        """(name, address, rooms) of everybody logged in."""


def snapshot(server: OperatorAPI) -> Tuple[List[Person], List[RoomInfo]]:
    """Who is online and the rooms, now."""
    return server.people(), list(server.chat.room_list().rooms)


def carry_out(action: Union[Operate, Announce], server: OperatorAPI, model: ConsoleModel) -> None:
    """Run an action of the command line on the server and show the model what came of
    it: the events it answered with, or the error that refused it."""
    try:
        if isinstance(action, Operate):
            answers = server.operate(action.frame)
            model.answer([line for event in answers for line in describe(event)])
        else:
            server.announce(action.text, action.room)
            where = action.room or "everybody"
            model.answer([f"notice to {where}: {action.text}"])
    except ProtocolError as exc:
        model.answer([f"{exc.code}: {exc.message}"], "err")


def describe(event: events.Event) -> List[str]:
    """An answer of the server as lines for a person, read from the frame a 4.3 client
    would get for it (the one place that knows every event's shape is the codec)."""
    frame = json.loads(LANCHAT.encode(event))
    kind = frame["type"]
    if kind == "notice":
        return [f"{frame['room']}: {frame['text']}" if "room" in frame else frame["text"]]
    if kind == "ban_list":
        return describe_bans(frame["bans"])
    if kind == "error":
        return [f"{frame['code']}: {frame['message']}"]
    if kind == "topic":
        by = f" (set by {frame['by']})" if "by" in frame else ""
        return [f"topic of {frame['room']}: {frame['text'] or '(none)'}{by}"]
    fields = {k: v for k, v in frame.items() if k != "type"}
    return [f"{kind}: {json.dumps(fields, ensure_ascii=False)}"]


def describe_bans(bans: Sequence[Frame]) -> List[str]:
    """The ban list, a line per ban: whom, what kind, by whom, until when, why."""
    if not bans:
        return ["no bans"]
    lines = [f"bans ({len(bans)}):"]
    for ban in bans:
        until = ban.get("until")
        ends = "for good" if until is None else "until " + _when(until)
        reason = f": {ban['reason']}" if ban.get("reason") else ""
        lines.append(f"  {ban['target']} ({ban['kind']}) by {ban.get('by', '?')}, {ends}{reason}")
    return lines


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
