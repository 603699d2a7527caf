"""The console's command line: each line parsed into one action, from a table of commands
that carries its own usage and help (the same table serves `/help` and docs/operating.md).

Operator commands become the very frames an operator's client sends (`lanchat.protocol`
constructors), for `ChatServer.operate`; `/say` and `/shutdown` become actions of their
own. A line that cannot be parsed raises `CommandError`, whose message is for a person.
Nothing here knows the server or the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

from lanchat import durations, protocol
from lanchat.protocol import Frame

MOTD_CLEAR = "clear"  # `/motd clear` clears the message of the day, as in the chat client


@dataclass(frozen=True)
class Operate:
    """Run this operator frame on the server, as the operator "console"."""

    frame: Frame


@dataclass(frozen=True)
class Announce:
    """Send everybody (or one room's members) a notice."""

    text: str
    room: Optional[str] = None


@dataclass(frozen=True)
class Shutdown:
    """Stop the server; clients get `message` (None: the server's usual one)."""

    message: Optional[str] = None


@dataclass(frozen=True)
class Show:
    """Show these lines in the console (nothing else happens)."""

    lines: Tuple[str, ...]


Action = Union[Operate, Announce, Shutdown, Show]
Request = Union[Operate, Announce, Shutdown]  # what the console's caller carries out


class CommandError(Exception):
    """A line that is not a command the console knows, or not as it is used."""


# -- durations: 90s, 30m, 2h, 7d; a bare number is seconds ----------------------------


def parse_duration(word: str) -> Optional[float]:
    """`durations.parse_duration`, a zero duration being a CommandError."""
    try:
        return durations.parse_duration(word)
    except durations.ZeroDuration as exc:
        raise CommandError(str(exc)) from None


# -- the commands -------------------------------------------------------------------------


def _words(rest: str, usage: str, least: int) -> List[str]:
    """`rest` split into its first word and what follows; at least `least` words."""
    words = rest.split(None, 1)
    if len(words) < least:
        raise CommandError(f"usage: {usage}")
    return words


def _kick(rest: str) -> Action:
    words = _words(rest, COMMANDS["/kick"].usage, 1)
    return Operate(protocol.kick(words[0], _text(words[1:])))


def _ban(rest: str) -> Action:
    words = _words(rest, COMMANDS["/ban"].usage, 1)
    target, after = words[0], words[1:]
    duration = None
    if after:
        first, _, reason = after[0].partition(" ")
        duration = parse_duration(first)
        if duration is not None:
            after = [reason]
    return Operate(protocol.ban(target, duration, _text(after)))


def _unban(rest: str) -> Action:
    return Operate(protocol.unban(_one_word(rest, COMMANDS["/unban"].usage)))


def _bans(rest: str) -> Action:
    if rest:
        raise CommandError(f"usage: {COMMANDS['/bans'].usage}")
    return Operate(protocol.bans())


def _mute(rest: str) -> Action:
    usage = COMMANDS["/mute"].usage
    words = rest.split()
    if not 1 <= len(words) <= 2:
        raise CommandError(f"usage: {usage}")
    duration = parse_duration(words[1]) if len(words) == 2 else None
    if len(words) == 2 and duration is None:
        raise CommandError(f"{words[1]!r} is no duration (such as 90s, 30m, 2h, 7d); {usage}")
    return Operate(protocol.mute(words[0], duration))


def _unmute(rest: str) -> Action:
    return Operate(protocol.unmute(_one_word(rest, COMMANDS["/unmute"].usage)))


def _topic(rest: str) -> Action:
    words = _words(rest, COMMANDS["/topic"].usage, 1)
    return Operate(protocol.set_topic(room_name(words[0]), _text(words[1:])))


def _motd(rest: str) -> Action:
    if not rest.strip():
        raise CommandError(f"usage: {COMMANDS['/motd'].usage}")
    return Operate(protocol.motd("" if rest.strip() == MOTD_CLEAR else rest))


def _unregister(rest: str) -> Action:
    return Operate(protocol.unregister(_one_word(rest, COMMANDS["/unregister"].usage)))


def _say(rest: str) -> Action:
    room = None
    if rest.startswith("#"):
        room, _, rest = rest.partition(" ")
    text = rest.strip()
    if not text:
        raise CommandError(f"usage: {COMMANDS['/say'].usage}")
    return Announce(text, room)


def _shutdown(rest: str) -> Action:
    return Shutdown(rest or None)


def _help(rest: str) -> Action:
    return Show(help_lines())


def _one_word(rest: str, usage: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise CommandError(f"usage: {usage}")
    return words[0]


def _text(words: List[str]) -> Optional[str]:
    """The text after the arguments, None when there is none."""
    text = " ".join(words).strip()
    return text or None


def room_name(word: str) -> str:
    """A room as typed: `dev` means `#dev`."""
    return word if word.startswith("#") else "#" + word


@dataclass(frozen=True)
class Command:
    """One command of the console: how it is written, what it does, how it is parsed."""

    usage: str
    help: str
    parse: Callable[[str], Action]


COMMANDS: Dict[str, Command] = {
    "/kick": Command("/kick NAME [REASON]", "close somebody's connection", _kick),
    "/ban": Command(
        "/ban NAME|ADDRESS [DURATION] [REASON]",
        "ban a name (its key if registered) or an address, for a while or for good",
        _ban,
    ),
    "/unban": Command("/unban NAME|ADDRESS", "lift a ban", _unban),
    "/bans": Command("/bans", "list the bans", _bans),
    "/mute": Command("/mute NAME [DURATION]", "let somebody read but not speak", _mute),
    "/unmute": Command("/unmute NAME", "let somebody speak again", _unmute),
    "/topic": Command("/topic #ROOM [TEXT]", "set a room's topic (without TEXT: show it)", _topic),
    "/motd": Command("/motd TEXT|clear", "set the message of the day, or clear it", _motd),
    "/unregister": Command("/unregister NAME", "release a registered name", _unregister),
    "/say": Command("/say [#ROOM] TEXT", "a notice to everybody, or to one room", _say),
    "/shutdown": Command(
        "/shutdown [MESSAGE]", "stop the server; clients are told MESSAGE", _shutdown
    ),
    "/help": Command("/help", "this list", _help),
}


def help_lines() -> Tuple[str, ...]:
    """Every command with its usage and what it does, then the durations and keys."""
    width = max(len(command.usage) for command in COMMANDS.values())
    lines = [f"{c.usage.ljust(width)}  {c.help}" for c in COMMANDS.values()]
    lines.append("DURATION: 90s, 30m, 2h, 7d (a bare number is seconds)")
    lines.append("Keys: PgUp/PgDn scroll the log, Esc its newest lines, Up/Down earlier commands,")
    lines.append("  Ctrl-C (or /shutdown) stops the server")
    return tuple(lines)


def parse(line: str) -> Action:
    """The action a command line asks for; CommandError if it asks for none."""
    line = line.strip()
    if not line.startswith("/"):
        raise CommandError("commands start with /: /help lists them, /say TEXT speaks")
    word, _, rest = line.partition(" ")
    command = COMMANDS.get(word.lower())
    if command is None:
        raise CommandError(f"unknown command {word}: /help lists them")
    return command.parse(rest.strip())
