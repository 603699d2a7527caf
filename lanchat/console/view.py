"""The console screen as a pure function: `render(model, rows, cols) -> ConsoleScreen`.

Layout, top to bottom: the status bar; the online list (name, address, rooms) beside the
rooms (members, topic), at most a third of the screen; a rule over the log; the log pane
(the newest lines, or where PgUp took it), its long lines wrapped; the command line. Like
the chat's view (`lanchat.chat.view`), every row takes exactly `cols` cells, widths are
counted in cells, and what clients chose (names, topics) passes `safe_text` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from lanchat.chat.termtext import char_width, clusters, fit, pad, safe_text, text_width
from lanchat.chat.view import Row, Screen
from lanchat.console.logbuffer import LogLine
from lanchat.console.model import ConsoleModel

PROMPT = "> "
MIN_ROWS = 6
MIN_COLS = 20
DIVIDER = " │ "


@dataclass(frozen=True)
class ConsoleScreen(Screen):
    """A screen of the console; `page` is the log pane's height, `top` the number of the
    oldest log line it shows (None when the log is empty)."""

    top: Optional[int] = None


def render(model: ConsoleModel, rows: int, cols: int) -> ConsoleScreen:
    """The whole console at this size."""
    if rows < MIN_ROWS or cols < MIN_COLS:
        small = [[(pad("terminal too small", cols), "")]] + [[(" " * cols, "")]] * (rows - 1)
        return ConsoleScreen(small[:rows], None, 1, 0)
    lists = _lists(model, cols, max(2, (rows - 3) // 3))
    log_rows = rows - 3 - len(lists)
    log, top = _log(model, log_rows, cols)
    line_row, cursor = _command_line(model, cols)
    screen = [_status(model, cols), *lists, _rule(model, cols), *log, line_row]
    return ConsoleScreen(screen, (rows - 1, cursor), log_rows, 0, None, top)


def _status(model: ConsoleModel, cols: int) -> Row:
    rooms = len(model.rooms)
    text = f" {model.title} · {len(model.people)} online · {rooms} room{'s' * (rooms != 1)}"
    return [(pad(text, cols), "status")]


def _rule(model: ConsoleModel, cols: int) -> Row:
    label = "── log " if model.bottom is None else "── log, scrolled back (PgDn, Esc: newest) "
    return [(pad(label + "─" * cols, cols), "sep")]


# -- the lists ---------------------------------------------------------------------------


def _lists(model: ConsoleModel, cols: int, height: int) -> List[Row]:
    """The online list and the rooms side by side, a header and then up to `height` - 1
    rows; the last row says how many more there are when they do not fit."""
    left_width = (cols - len(DIVIDER)) * 3 // 5
    right_width = cols - len(DIVIDER) - left_width
    people = _columns([(n, a, " ".join(r)) for n, a, r in model.people])
    rooms = _columns([(name, str(count), topic) for name, count, topic in model.rooms])
    shown = min(height - 1, max(len(people), len(rooms), 1))
    left = _column(f"online ({len(people)})", people, shown, left_width)
    right = _column(f"rooms ({len(rooms)})", rooms, shown, right_width)
    return [[*a, (DIVIDER, "sep"), *b] for a, b in zip(left, right)]


def _columns(entries: Sequence[Tuple[str, str, str]]) -> List[str]:
    """Entries of three fields as aligned lines (received text made safe)."""
    safe = [tuple(safe_text(field) for field in entry) for entry in entries]
    first = max((text_width(entry[0]) for entry in safe), default=0)
    second = max((text_width(entry[1]) for entry in safe), default=0)
    lines = []
    for a, b, c in safe:
        line = a + " " * (first - text_width(a)) + "  " + b + " " * (second - text_width(b))
        lines.append((line + "  " + c).rstrip())
    return lines


def _column(head: str, lines: Sequence[str], shown: int, width: int) -> List[Row]:
    if len(lines) > shown:
        more = len(lines) - shown + 1
        lines = [*lines[: shown - 1], f"… {more} more"]
    rows = [[(pad(head, width), "sidehead")]]
    rows += [[(pad(line, width), "")] for line in lines]
    rows += [[(" " * width, "")]] * (shown + 1 - len(rows))
    return rows


# -- the log -------------------------------------------------------------------------------


def _log(model: ConsoleModel, height: int, cols: int) -> Tuple[List[Row], Optional[int]]:
    """The log pane: the lines up to the model's `bottom` (the newest without), wrapped,
    as many as fill `height` rows; from the oldest on if fewer would. Also the number of
    the oldest line shown."""
    lines = model.log.snapshot()
    if model.bottom is not None:
        end = next((i for i, line in enumerate(lines) if line.seq > model.bottom), len(lines))
        start = _start_filling(lines, end, height, cols)
        if start == 0:  # the oldest lines: fill the pane from them downwards
            end = _end_filling(lines, height, cols)
    else:
        end = len(lines)
        start = _start_filling(lines, end, height, cols)
    rows: List[Row] = []
    for line in lines[start:end]:
        rows += [[(pad(part, cols), line.style)] for part in wrap(line.text, cols)]
    rows = rows[-height:] if height else []
    rows += [[(" " * cols, "")]] * (height - len(rows))
    return rows, lines[start].seq if start < end else None


def _start_filling(lines: Sequence[LogLine], end: int, height: int, cols: int) -> int:
    """The first of the lines before `end` that `height` rows can show (counting back)."""
    used = 0
    start = end
    while start > 0 and used < height:
        start -= 1
        used += len(wrap(lines[start].text, cols))
    return start


def _end_filling(lines: Sequence[LogLine], height: int, cols: int) -> int:
    """The end of the first lines that fill `height` rows."""
    used = 0
    end = 0
    while end < len(lines) and used < height:
        used += len(wrap(lines[end].text, cols))
        end += 1
    return end


def wrap(text: str, cols: int) -> List[str]:
    """A log line cut into rows of `cols` cells (at least one row)."""
    if text.isascii():  # most log lines: one cell per character
        return [text[i : i + cols] for i in range(0, len(text), cols)] or [""]
    rows, row, used = [], "", 0
    for cluster in clusters(text):
        width = text_width(cluster)
        if used + width > cols and row:
            rows.append(row)
            row, used = "", 0
        row += fit(cluster, cols) or "?"
        used += width
    return [*rows, row]


# -- the command line ----------------------------------------------------------------------


def _command_line(model: ConsoleModel, cols: int) -> Tuple[Row, int]:
    """The prompt and the line, scrolled sideways so that the cursor shows; and the
    cursor's column."""
    room = cols - len(PROMPT) - 1  # the cursor may sit after the last character
    shift, used = model.cursor, 0
    while shift > 0 and used + char_width(model.line[shift - 1]) <= room:
        shift -= 1
        used += char_width(model.line[shift])
    shown = fit(model.line[shift:], cols - len(PROMPT))
    row = [(PROMPT, "prompt"), (pad(shown, cols - len(PROMPT)), "")]
    return row, len(PROMPT) + used
