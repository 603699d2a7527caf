"""Tab completion of the input line: a command at its start, a room after /join, /part
and /who, else a name online.

Tab completes the word before the cursor as far as the candidates agree; Tab again puts
each candidate in its place in turn (as bash and irssi do). Pure functions of the line,
the cursor, the names online and the rooms joined: the model keeps the `Completion`
between two Tabs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

COMMANDS = (  # what Tab completes (not /whois: /wh completes to /who, as it always did)
    "/away", "/back", "/bell", "/clear", "/help", "/ignore", "/join", "/me", "/msg",
    "/namepassword", "/nick", "/part", "/quit", "/register", "/rooms", "/topic", "/unignore",
    "/who",
)  # fmt: skip
OPERATOR_COMMANDS = (  # completed for operators only
    "/ban", "/bans", "/kick", "/motd", "/mute", "/unban", "/unmute", "/unregister",
)  # fmt: skip
ROOM_COMMANDS = ("/join", "/part", "/who")  # a room follows them
NAME_COMMANDS = (  # a name online follows them
    "/msg", "/m", "/whois", "/ignore", "/unignore", "/kick", "/ban", "/mute", "/unmute",
    "/unregister",
)  # fmt: skip


@dataclass
class Completion:
    """Tab pressed again: the next candidate replaces the word at `start`."""

    start: int
    candidates: List[str]
    index: int


def complete(
    line: str,
    cursor: int,
    others: Sequence[str],
    cycle: Optional[Completion],
    rooms: Sequence[str] = (),
    commands: Sequence[str] = COMMANDS,
) -> Tuple[str, int, Optional[Completion]]:
    """The line, cursor and cycle after Tab; `others` are the names online but ours,
    `rooms` the rooms joined, `commands` those to complete."""
    if cycle is not None:
        cycle.index = (cycle.index + 1) % len(cycle.candidates)
        return (*_put_word(line, cursor, cycle.start, cycle.candidates[cycle.index]), cycle)
    start = cursor
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    word = line[start:cursor]
    candidates = _candidates(line, start, word, others, rooms, commands)
    if not candidates:
        return line, cursor, None
    if line[cursor : cursor + 1].isspace():  # a space follows already
        candidates = [candidate.rstrip(" ") for candidate in candidates]
    common = _common_prefix(candidates)
    if len(common) > len(word):
        line, cursor = _put_word(line, cursor, start, common)
        return line, cursor, Completion(start, candidates, -1) if len(candidates) > 1 else None
    # they agree on no more than is typed: show the first of them
    return (*_put_word(line, cursor, start, candidates[0]), Completion(start, candidates, 0))


def _candidates(
    line: str,
    start: int,
    word: str,
    others: Sequence[str],
    rooms: Sequence[str],
    commands: Sequence[str],
) -> List[str]:
    """What Tab may put in place of `word` (at `start`): a command at the start of the
    line, a room after /join, /part and /who (`dev` or `#dev`), else a name online
    (after `@`, or as the NAME of /msg, /whois, /kick ...), with what follows it."""
    before = line[:start].split()
    if not before and word.startswith("/"):
        return [command + " " for command in sorted(commands) if command.startswith(word.lower())]
    if len(before) == 1 and before[0].lower() in ROOM_COMMANDS and rooms:
        stem = word.casefold().lstrip("#")
        return [room + " " for room in rooms if room[1:].casefold().startswith(stem)]
    to_whom = len(before) == 1 and before[0].lower() in NAME_COMMANDS
    if not word and not to_whom:
        return []
    at = "@" if word.startswith("@") else ""
    stem = word[len(at) :].casefold()
    after = ": " if start == 0 and not at else " "
    return [at + name + after for name in others if name.casefold().startswith(stem)]


def _put_word(line: str, cursor: int, start: int, text: str) -> Tuple[str, int]:
    """Replace the line from `start` to the cursor with `text`; the cursor follows it."""
    return line[:start] + text + line[cursor:], start + len(text)


def _common_prefix(words: Sequence[str]) -> str:
    """The longest start of the first word that every word has (letter case aside)."""
    first = words[0]
    size = 0
    while size < len(first) and all(
        size < len(word) and word[size].casefold() == first[size].casefold() for word in words
    ):
        size += 1
    return first[:size]
