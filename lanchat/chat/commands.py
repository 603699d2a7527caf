"""The /commands of the input line, as a table: each is a function of the client model,
the rest of the line and `now`, and acts through the model's public doors (`say`,
`ask_who`, `note`, `clear`, `quit`), returning the model's actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from lanchat import protocol
from lanchat.chat.actions import Action
from lanchat.chat.people import MOTD_CLEAR
from lanchat.chat.termtext import safe_text
from lanchat.durations import ZeroDuration, parse_duration

if TYPE_CHECKING:
    from lanchat.chat.model import ClientModel

NAME_PASSWORD = "/namepassword"  # its line holds a secret: not kept for Up/Down
CLEAR = f"{NAME_PASSWORD} clear"
ME_PREFIX = "/me "  # how /me travels: as text, so every client can read it

HELP = (
    "Commands: /msg NAME text (private), /me action, /who [#room], /clear, /help, /quit",
    "Rooms: /join #room (and show it), /part [#room], /rooms (all of them), /topic [#room] [text]",
    "People: /nick NAME, /away [text], /back, /whois NAME, /register (your name to your key),",
    "  /unregister, /ignore [NAME] (alone: the list), /unignore NAME, /bell off|mentions|all,",
    "  /namepassword PASSWORD|clear (for IRC clients and bots under your registered name)",
    "Operators: /kick NAME [reason], /ban NAME|ADDRESS [30s|10m|2h|7d] [reason], /unban TARGET,",
    "  /bans, /mute NAME [duration], /unmute NAME, /motd [text|clear], /unregister NAME",
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


def _one_name(model: ClientModel, rest: str, usage: str, now: float) -> str:
    """The NAME of a command that takes one; "" (after its usage line) if missing."""
    name = rest.split(" ", 1)[0]
    if not name:
        model.note("info", f"usage: {usage}", now)
    return name


def _nick(model: ClientModel, rest: str, now: float) -> List[Action]:
    name = _one_name(model, rest, "/nick NEWNAME", now)
    return model.ask_server(protocol.nick(name), "nick", now) if name else []


def _away(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_server(protocol.away(rest or "away"), "away", now)


def _back(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_server(protocol.away(), "away", now)


def _whois(model: ClientModel, rest: str, now: float) -> List[Action]:
    name = _one_name(model, rest, "/whois NAME", now)
    return model.ask_server(protocol.whois(name), "whois", now) if name else []


def _register(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_server(protocol.register(), "registered", now)


def _unregister(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_server(protocol.unregister(rest or None), "unregistered", now)


def _namepassword(model: ClientModel, rest: str, now: float) -> List[Action]:
    """Set (or `clear`: "clear" is too short to be one) the registered name's password."""
    if not rest:
        model.note("info", f"usage: /namepassword PASSWORD (8 to 128 characters) or {CLEAR}", now)
        return []
    password = None if rest.lower() == "clear" else rest
    return model.ask_server(protocol.name_password(password), "name_password", now)


def _ignore(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ignore(rest.split(" ", 1)[0], now) if rest else model.list_ignored(now)


def _unignore(model: ClientModel, rest: str, now: float) -> List[Action]:
    name = _one_name(model, rest, "/unignore NAME", now)
    return model.unignore(name, now) if name else []


def _bell(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.set_bell(rest.lower(), now)


def _kick(model: ClientModel, rest: str, now: float) -> List[Action]:
    name = _one_name(model, rest, "/kick NAME [reason]", now)
    reason = rest[len(name) :].strip() or None
    return model.ask_server(protocol.kick(name, reason), "notice", now) if name else []


def _target_duration_reason(rest: str) -> Tuple[str, Optional[float], Optional[str]]:
    """NAME [duration] [rest]: the words of /ban and /mute."""
    target, _, after = rest.partition(" ")
    first, _, more = after.strip().partition(" ")
    duration = parse_duration(first) if first else None
    reason = (more if duration is not None else after).strip() or None
    return target, duration, reason


def _ban(model: ClientModel, rest: str, now: float) -> List[Action]:
    try:
        target, duration, reason = _target_duration_reason(rest)
    except ZeroDuration as exc:
        model.note("info", str(exc), now)
        return []
    if not target:
        model.note("info", "usage: /ban NAME|ADDRESS [duration: 90s, 30m, 2h, 7d] [reason]", now)
        return []
    return model.ask_server(protocol.ban(target, duration, reason), "notice", now)


def _unban(model: ClientModel, rest: str, now: float) -> List[Action]:
    target = _one_name(model, rest, "/unban NAME|ADDRESS", now)
    return model.ask_server(protocol.unban(target), "notice", now) if target else []


def _bans(model: ClientModel, rest: str, now: float) -> List[Action]:
    return model.ask_server(protocol.bans(), "ban_list", now)


def _mute(model: ClientModel, rest: str, now: float) -> List[Action]:
    try:
        name, duration, extra = _target_duration_reason(rest)
    except ZeroDuration as exc:
        model.note("info", str(exc), now)
        return []
    if not name or extra is not None:
        model.note("info", "usage: /mute NAME [duration: 90s, 30m, 2h, 7d]", now)
        return []
    return model.ask_server(protocol.mute(name, duration), "notice", now)


def _unmute(model: ClientModel, rest: str, now: float) -> List[Action]:
    name = _one_name(model, rest, "/unmute NAME", now)
    return model.ask_server(protocol.unmute(name), "notice", now) if name else []


def _motd(model: ClientModel, rest: str, now: float) -> List[Action]:
    if not rest:
        return model.show_motd(now)
    text = "" if rest.lower() == MOTD_CLEAR else rest
    return model.ask_server(protocol.motd(text), "notice", now)


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
    "/nick": _nick,
    "/away": _away,
    "/back": _back,
    "/whois": _whois,
    "/register": _register,
    "/unregister": _unregister,
    "/namepassword": _namepassword,
    "/ignore": _ignore,
    "/unignore": _unignore,
    "/bell": _bell,
    "/kick": _kick,
    "/ban": _ban,
    "/unban": _unban,
    "/bans": _bans,
    "/mute": _mute,
    "/unmute": _unmute,
    "/motd": _motd,
}
