"""The console as pure state: the log pane's position, the lists, and the command line.

`ConsoleModel` has two doors: `refresh(people, rooms)` takes the server's snapshots (a
few times a second), and `handle_key(key)` takes one key, a character or a curses key
name such as "KEY_PPAGE", and returns the actions a finished command line asks for
(`lanchat.console.commands`). It writes the commands and their answers into the log
buffer, so that they read in order with the server's records. No curses, no server.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from lanchat.chat import lineedit
from lanchat.chat.model import ClientModel
from lanchat.chat.termtext import is_typeable
from lanchat.console import commands
from lanchat.console.commands import CommandError, Request, Show
from lanchat.console.logbuffer import LogBuffer

Person = Tuple[str, str, Tuple[str, ...]]  # name, address, rooms
RoomInfo = Tuple[str, int, str]  # name, members, topic

MAX_RECALL = 100  # command lines kept for Up/Down
MAX_LINE = 4000  # characters the command line takes

# The keys that edit the line, as lineedit functions: the chat's own, so that both lines
# edit alike.
EDITS = ClientModel._EDITS
ENTER_KEYS = ("\n", "\r", "KEY_ENTER")


class ConsoleModel:
    """What the console shows, and what its keys do."""

    def __init__(self, log: LogBuffer, title: str) -> None:
        self.log = log
        self.title = title  # the server, as the status bar names it
        self.people: List[Person] = []
        self.rooms: List[RoomInfo] = []
        self.line = ""
        self.cursor = 0
        self.recall: List[str] = []  # earlier command lines, oldest first
        self._recalled = 0  # how far back Up went: 0 is the line being typed
        self._typed = ""  # the line being typed, kept while Up shows earlier ones
        self.bottom: Optional[int] = None  # the newest log line shown; None: follow the log
        self.page = 1  # log rows on the screen
        self.top: Optional[int] = None  # the oldest log line shown

    # -- the server's snapshots ---------------------------------------------------------

    def refresh(self, people: Sequence[Person], rooms: Sequence[RoomInfo]) -> None:
        """Take who is online and the rooms, as the server has them now."""
        self.people = sorted(people, key=lambda person: person[0].casefold())
        self.rooms = list(rooms)

    def set_viewport(self, page: int, top: Optional[int]) -> None:
        """Tell the model how many log rows the screen has and which line is the oldest
        it shows (the view knows: log lines wrap)."""
        self.page = max(1, page)
        self.top = top

    # -- keys -----------------------------------------------------------------------------

    def handle_key(self, key: str) -> List[Request]:
        """Act on one key; return the actions of a command line it finished."""
        if key in ENTER_KEYS:
            return self._enter()
        edit = EDITS.get(key)
        if edit is not None:
            self.cursor, self.line = edit(self.cursor, self.line)
        elif key == "KEY_UP":
            self._recall_step(1)
        elif key == "KEY_DOWN":
            self._recall_step(-1)
        elif key == "KEY_PPAGE":
            self._page_up()
        elif key == "KEY_NPAGE":
            self._page_down()
        elif key == "\x1b":  # Esc: back to the newest log lines
            self.bottom = None
        elif key and not key.startswith("KEY_") and all(is_typeable(c) for c in key):
            self.cursor, self.line = lineedit.insert(self.cursor, self.line, key, MAX_LINE)
        return []

    def _enter(self) -> List[Request]:
        line = self.line.strip()
        self.line, self.cursor, self._recalled, self._typed = "", 0, 0, ""
        if not line:
            return []
        if not self.recall or self.recall[-1] != line:
            self.recall = [*self.recall, line][-MAX_RECALL:]
        self.log.add(f"> {line}", "prompt")
        self.bottom = None  # the answer is news: show it
        try:
            action = commands.parse(line)
        except CommandError as exc:
            self.log.add(str(exc), "err")
            return []
        if isinstance(action, Show):
            for text in action.lines:
                self.log.add(text, "info")
            return []
        return [action]

    def _recall_step(self, step: int) -> None:
        """Up (1) shows the line typed before; Down (-1) the one after, then the new one."""
        target = self._recalled + step
        if not 0 <= target <= len(self.recall):
            return
        if self._recalled == 0:
            self._typed = self.line
        self._recalled = target
        self.line = self.recall[-target] if target else self._typed
        self.cursor = len(self.line)

    def _page_up(self) -> None:
        """Show the page above: the oldest line shown becomes the newest."""
        if self.top is None:
            return
        if self.bottom is None or self.top < self.bottom:
            self.bottom = self.top
        else:  # one line taller than the pane: go on by lines
            self.bottom = self.top - 1

    def _page_down(self) -> None:
        """Show the page below; past the newest line, follow the log again."""
        if self.bottom is None:
            return
        self.bottom += max(1, self.page - 1)
        if self.bottom >= self.log.added:
            self.bottom = None

    # -- answers --------------------------------------------------------------------------

    def answer(self, lines: Sequence[str], style: str = "info") -> None:
        """Show the server's answer to a command."""
        for text in lines:
            self.log.add(text, style)
