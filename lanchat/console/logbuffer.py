"""The console's log pane: the server's log records, and the console's own lines, in a
bounded buffer.

`LogBuffer` is a `logging.Handler`. A server thread that logs only formats its record
(with the log file's `SafeFormatter`, so a client's name or text never carries a control
character to the screen) and appends the lines under a short lock: it never waits for
the terminal, which reads snapshots of the buffer when it draws.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Deque, List

from lanchat.core.safelog import escape

MAX_LINES = 5000  # lines kept; older ones are dropped


@dataclass(frozen=True)
class LogLine:
    """One line of the pane: its number (counting every line ever added), text and style."""

    seq: int
    text: str
    style: str = ""


def style_of(record: logging.LogRecord) -> str:
    """The style a record's lines are drawn in: warnings and errors stand out."""
    return "err" if record.levelno >= logging.WARNING else ""


class LogBuffer(logging.Handler):
    """The newest `limit` lines of the log and of the console's answers."""

    def __init__(self, limit: int = MAX_LINES) -> None:
        super().__init__()
        self._lines: Deque[LogLine] = collections.deque(maxlen=limit)
        self._added = 0
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the formatted record, one line per line of it (a traceback has several)."""
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 (logging's own policy: report, never raise)
            self.handleError(record)
            return
        self._append(text.split("\n"), style_of(record))

    def add(self, text: str, style: str = "") -> None:
        """Add a line of the console's own (a command and its answer), made safe to draw."""
        self._append([escape(line) for line in text.split("\n")], style)

    def _append(self, texts: List[str], style: str) -> None:
        with self._guard:
            for text in texts:
                self._added += 1
                self._lines.append(LogLine(self._added, text, style))

    @property
    def added(self) -> int:
        """How many lines were ever added: the number of the newest line."""
        with self._guard:
            return self._added

    def snapshot(self) -> List[LogLine]:
        """The lines kept now, oldest first."""
        with self._guard:
            return list(self._lines)
