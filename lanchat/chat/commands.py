"""The /commands of the input line, as a table: each is a function of the client model,
the rest of the line and `now`, and acts through the model's public doors (`say`,
`ask_who`, `note`, `clear`, `quit`), returning the model's actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List

from lanchat.chat.actions import Action
from lanchat.chat.termtext import safe_text

if TYPE_CHECKING:
    from lanchat.chat.model import ClientModel

ME_PREFIX = "/me "  # how /me travels: as text, so every client can read it

HELP = (
    "Commands: /msg NAME text (private), /me action, /who [#room], /clear, /help, /quit",
    "Rooms: /join #room (and show it), /part [#room], /rooms (all of them), /topic [text]",
    "// at the start sends a line that begins with /",
)
KEYS_HELP = (  # only the window has keys; plain mode reads lines
    "Keys: Enter send, Up/Down history, PgUp/PgDn scroll, Esc newest, Ctrl-L redraw,",
    "  Tab complete a name or command (again: the next one), Alt-B/Alt-F word left/right,",
    "  Ctrl-U/Ctrl-K delete to start/end, Ctrl-W delete word, Ctrl-D or Ctrl-C quit,",
    "  Alt-1...Alt-9 room 1 to 9, Alt-Left/Alt-Right or Ctrl-X p/Ctrl-X n previous/next room",
)

Command = Callable[["ClientModel", str, float], List[Action]]


def run(model: ClientModel, line: str, now: float) -> List[Action]:
    """Act on a line that starts with one `/`."""
    word, _, rest = line.partition(" ")
    command = COMMANDS.get(word.lower())
    if command is None:
        model.note(
            "info",
            f"unknown command {safe_text(word)}; /help lists them, // sends a line starting with /",
            now,
        )
        return []
    return command(model, rest.strip(), now)


def _quit(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.quit(now)


def _msg(model: ClientModel, rest: str, now: float) -> List[Action]:
    target, _, text = rest.partition(" ")
    if not target or not text.strip():
        model.note("info", "usage: /msg NAME text", now)
        return []
    return model.say(text, target, now)


def _me(model: ClientModel, rest: str, now: float) -> List[Action]:
    if not rest:
        model.note("info", "usage: /me action, e.g. /me waves", now)
        return []
    return model.say(ME_PREFIX + rest, None, now)


def room_name(text: str) -> str:
    """A room as typed: `dev` means `#dev`."""
    text = text.strip()
    return text if not text or text.startswith("#") else "#" + text


def _who(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_who(room_name(rest), now)


def _join(model: ClientModel, rest: str, now: float) -> List[Action]:
    if not rest:
        model.note("info", "usage: /join #room, e.g. /join #dev", now)
        return []
    return model.join_room(room_name(rest), now)


def _part(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.part_room(room_name(rest), now)


def _rooms(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.list_rooms(now)


def _topic(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.set_topic(rest, now)


def _help(model: ClientModel, rest: str, now: float) -> List[Action]:
    for text in HELP + (KEYS_HELP if model.window else ()):
        model.note("info", text, now)
    return []


def _clear(model: ClientModel, rest: str, now: float) -> List[Action]:
    model.clear()
    return []


COMMANDS: Dict[str, Command] = {
    "/quit": _quit,
    "/q": _quit,
    "/exit": _quit,
    "/msg": _msg,
    "/m": _msg,
    "/me": _me,
    "/who": _who,
    "/join": _join,
    "/part": _part,
    "/rooms": _rooms,
    "/topic": _topic,
    "/help": _help,
    "/?": _help,
    "/clear": _clear,
}
