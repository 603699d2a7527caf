"""`lanchat server --console`: the running server in a curses screen.

The parts, each testable without a terminal but the last: `logbuffer` (the server's log
records, kept in a bounded buffer), `commands` (the operator's command line, parsed into
actions), `model` (what the screen shows and what keys do), `operator` (actions carried
out through the server's operator API), `view` (the screen as a pure function) and
`terminal` (the curses loop, the only module that imports curses).
"""

from __future__ import annotations

import sys
from typing import Optional


def unavailable() -> Optional[str]:
    """None when the console can run here, else why not, for a person."""
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        return "the console needs a terminal, and stdin or stdout is not one"
    try:
        from lanchat.client_curses import check_terminal
    except ImportError:  # Python without curses (Windows)
        return "the console needs curses, which this Python lacks"
    return check_terminal()
