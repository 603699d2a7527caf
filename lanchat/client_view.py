"""The chat screen as a pure function: `render(model, rows, cols) -> Screen`.

A `Screen` holds exactly `rows` rows; each row is a list of (text, style) segments that
take exactly `cols` terminal cells, plus where the cursor goes. Styles are names (see
`STYLES`); the curses layer maps them to colours or, without colour, to bold, dim and
reverse. Layout, top to bottom: the status bar, the message pane (the online list at its
side when the terminal is wide enough), the input line. Nothing received is drawn without
passing `termtext.safe_text`, and every width is counted in cells (`termtext`).
"""

from __future__ import annotations

import re
import time
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from lanchat import protocol
from lanchat.client_model import (
    CONNECTING,
    LOGGED_IN,
    LOGGING_IN,
    NAMING,
    OFFLINE,
    PASSWORD,
    STOPPED,
    ClientModel,
    Entry,
    Outgoing,
    ServerPicker,
)
from lanchat.termtext import char_width, clusters, fit, pad, safe_text, text_width

Segment = Tuple[str, str]
Row = List[Segment]

MIN_ROWS = 6
MIN_COLS = 20
SIDEBAR_MIN_COLS = 60  # narrower than this, the online list is hidden
NAME_COLOURS = 6
STYLES = (
    "",
    "status",
    "time",
    "own",
    "sys",
    "err",
    "info",
    "pm",
    "mention",
    "pending",
    "more",
    "sep",
    "sidehead",
    "sideme",
    "prompt",
    "note",
    "sel",
    "dim",
    *(f"name{i}" for i in range(NAME_COLOURS)),
)
MORE_BELOW = "-- more below (PgDn) --"


@dataclass(frozen=True)
class Screen:
    """What to draw: exactly `rows` rows of exactly `cols` cells, and the cursor."""

    rows: List[Row]
    cursor: Optional[Tuple[int, int]]  # (row, col), None to hide it
    page: int  # rows of the message pane, for PgUp/PgDn
    max_scroll: int  # how far the message pane can scroll up

    def text(self) -> List[str]:
        """The rows as plain strings (for tests and screen captures)."""
        return ["".join(text for text, _ in row) for row in self.rows]


def name_style(name: str) -> str:
    """The colour style of a sender: the same name always gets the same colour."""
    return f"name{zlib.crc32(protocol.name_key(name).encode('utf-8')) % NAME_COLOURS}"


def clock(ts: Optional[float]) -> str:
    """HH:MM in local time."""
    return time.strftime("%H:%M", time.localtime(ts)) if ts is not None else "     "


# ---------------------------------------------------------------------------
# Rows and wrapping


def _row(text: str, width: int, style: str = "") -> Row:
    return [(pad(text, width), style)]


Cell = Tuple[str, str, int]  # one cluster, its style, the cells it takes

# A URL is one token: split over rows it continues at the left edge, so it copies whole.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S")


def _cells(segments: Sequence[Segment], width: int) -> List[Cell]:
    out = []
    for text, style in segments:
        for cluster in clusters(text):
            cells_wide = sum(char_width(c) for c in cluster)
            if cells_wide == 0:
                # a lone mark or joiner (its base was cut away): draw nothing for it
                continue
            if cells_wide > width:
                cluster, cells_wide = "?", 1
            out.append((cluster, style, cells_wide))
    return out


def _merge(cells: Sequence[Cell], width: int) -> Row:
    row: Row = []
    used = 0
    for text, style, cells_wide in cells:
        used += cells_wide
        if row and row[-1][1] == style:
            row[-1] = (row[-1][0] + text, style)
        else:
            row.append((text, style))
    if used < width:
        row.append((" " * (width - used), ""))
    return row


def _may_break_between(before: Cell, after: Cell) -> bool:
    """True where a row may end inside a run without spaces: next to a wide character
    (CJK is written without spaces), but not before a closing mark such as 。 or ）,
    nor after an opening one."""
    if before[2] < 2 and after[2] < 2:
        return False
    closing = unicodedata.category(after[0][0]) in ("Pe", "Pf", "Po")
    opening = unicodedata.category(before[0][-1]) in ("Ps", "Pi")
    return not closing and not opening


def _tokens(cells: Sequence[Cell]) -> Iterator[Tuple[List[Cell], bool]]:
    """The cells cut where a row may break, each with True for a URL: every space alone,
    a URL whole, and the other runs between spaces cut where `_may_break_between`."""
    run: List[Cell] = []
    for cell in [*cells, None]:
        if cell is not None and cell[0] != " ":
            run.append(cell)
            continue
        if _URL.match("".join(c[0] for c in run)):
            yield run, True
        elif run:
            token = [run[0]]
            for before, after in zip(run, run[1:]):
                if _may_break_between(before, after):
                    yield token, False
                    token = []
                token.append(after)
            yield token, False
        if cell is not None:
            yield [cell], False
        run = []


def wrap(segments: Sequence[Segment], width: int, indent: int = 0) -> List[Row]:
    """Lay styled text into rows of exactly `width` cells, breaking at spaces if possible.

    Rows after the first start with `indent` spaces, except the rows a long URL continues
    on. A word that fits on a row of its own moves there whole; a longer one, or text
    without spaces (CJK), fills each row to its end. A character wider than the row is
    replaced by '?', so no row ever overflows.
    """
    indent = indent if indent <= width // 2 else 0
    rows: List[Row] = []
    row: List[Cell] = []
    lead = 0  # the cells of this row taken by the indent

    def next_row(new_lead: int) -> None:
        nonlocal row, lead
        rows.append(_merge(row, width))
        row, lead = [(" ", "", 1)] * new_lead, new_lead

    for token, is_url in _tokens(_cells(segments, width)):
        used = sum(c[2] for c in row)
        size = sum(c[2] for c in token)
        if used + size <= width:
            row += token
        elif token[0][0] == " ":
            next_row(indent)  # break at this very space, and drop it
        elif used > lead and indent + size <= width:
            next_row(indent)  # the word moves down whole
            row += token
        else:
            for cell in token:  # too long for any row: fill each row to its end
                if used + cell[2] > width:
                    next_row(0 if is_url else indent)
                    used = lead
                row.append(cell)
                used += cell[2]
    rows.append(_merge(row, width))
    return rows


# ---------------------------------------------------------------------------
# Message pane


def entry_segments(entry: Entry) -> List[Segment]:
    """One pane entry as styled text, before wrapping."""
    stamp: List[Segment] = [(clock(entry.ts) + " ", "time")] if entry.ts is not None else []
    if entry.kind in ("message", "action"):
        sender = (entry.sender, "own" if entry.own else name_style(entry.sender))
        text_style = "mention" if entry.mention else ""
        private: List[Segment] = []
        if entry.to is not None:
            private = [("[private] ", "pm")]
        target: List[Segment] = []
        if entry.to is not None and entry.own:
            target = [(" -> ", "pm"), (entry.to, name_style(entry.to))]
        if entry.kind == "action":
            return [
                *stamp,
                *private,
                ("* ", text_style),
                sender,
                *target,
                (" " + entry.text, text_style),
            ]
        return [*stamp, *private, sender, *target, (": ", ""), (entry.text, text_style)]
    if entry.kind == "system":
        return [*stamp, ("-- " + entry.text, "sys")]
    if entry.kind == "error":
        return [*stamp, ("!! " + entry.text, "err")]
    return [*stamp, (entry.text, "info")]


def pending_segments(outgoing: Outgoing, me: str) -> List[Segment]:
    """A message still in the outbox: dim, and marked as pending."""
    private = "[private] " if outgoing.to else ""
    target = f" -> {outgoing.to}" if outgoing.to else ""
    text = outgoing.text
    if text.startswith("/me ") and not outgoing.to:
        line = f"{clock(outgoing.ts)} * {me} {text[4:]}"
    else:
        line = f"{clock(outgoing.ts)} {private}{me}{target}: {text}"
    return [(safe_text(line), "pending"), (" (pending)", "pending")]


def _indent_for(width: int) -> int:
    return 6 if width >= 30 else 2  # under the text, past "HH:MM "


def _items_newest_first(model: ClientModel) -> Iterator[List[Segment]]:
    for outgoing in reversed(model.outbox):
        yield pending_segments(outgoing, model.name)
    for entry in reversed(model.entries):
        yield entry_segments(entry)


def message_rows(model: ClientModel, width: int, height: int) -> Tuple[List[Row], int]:
    """The visible rows of the message pane (exactly `height`) and how far it can scroll.

    Only as many entries are laid out as the scroll position needs, newest first, so a
    long history costs nothing per keystroke.
    """
    indent = _indent_for(width)
    newest_first: List[Row] = []
    wanted = model.scroll + 2 * height
    for segments in _items_newest_first(model):
        newest_first.extend(reversed(wrap(segments, width, indent)))
        if len(newest_first) >= wanted:
            break
    # Scrolled by n, the pane's last row is the mark and the row above it is the one n rows
    # up from the newest; the top is reached when the oldest row shows in the first row.
    max_scroll = max(0, len(newest_first) - height + 1) if len(newest_first) > height else 0
    scroll = min(model.scroll, max_scroll)
    if scroll > 0:
        shown = newest_first[scroll : scroll + height - 1]
        rows = list(reversed(shown))
        rows += [_row("", width)] * (height - 1 - len(rows))
        rows.append(_row(MORE_BELOW, width, "more"))
    else:
        rows = list(reversed(newest_first[:height]))
        rows += [_row("", width)] * (height - len(rows))
    return rows, max_scroll


def sidebar_rows(model: ClientModel, width: int, height: int) -> List[Row]:
    """The online list: a header, then one name a row, own name marked."""
    rows = [_row(f"online ({len(model.online)})", width, "sidehead")]
    names = model.online
    room = height - 1
    shown = names if len(names) <= room else names[: max(0, room - 1)]
    for name in shown:
        mine = protocol.name_key(name) == protocol.name_key(model.name)
        rows.append(_row(name, width, "sideme" if mine else name_style(name)))
    if len(shown) < len(names):
        rows.append(_row(f"+{len(names) - len(shown)} more", width, "sidehead"))
    rows += [_row("", width)] * (height - len(rows))
    return rows[:height]


# ---------------------------------------------------------------------------
# Status and input


def state_text(model: ClientModel) -> str:
    """The connection state in a few words."""
    if model.link == STOPPED:
        return "stopped: " + model.link_note
    if model.link == OFFLINE:
        return "offline, reconnecting"
    if model.link == CONNECTING:
        return "connecting"
    if model.login == NAMING:
        return "choose a name"
    if model.login == PASSWORD:
        return "password needed"
    if model.login == LOGGING_IN:
        return "logging in"
    if model.login == LOGGED_IN:
        return "connected"
    return "connecting"


def status_text(model: ClientModel, cols: int) -> str:
    """The status bar: server name and address, your name, how many online, the state."""
    host, port = model.address
    server = model.server_name or "lanchat"
    address = f"{host}:{port}" if host else ""
    state = state_text(model)
    if model.outbox:
        state += f", {len(model.outbox)} pending"
    online = f"{len(model.online)} online"
    you = f"you: {model.name}"
    variants = (
        [server + (f" ({address})" if address else ""), you, online, state],
        [server, you, online, state],
        [model.name, online, state],
        [model.name, state],
        [state],
    )
    for parts in variants:
        text = safe_text(" " + " | ".join(parts))
        if text_width(text) <= cols:
            return text
    return " " + state


def input_row(model: ClientModel, cols: int) -> Tuple[Row, int]:
    """The input line and the cursor's column in it; scrolled so the cursor shows.

    A password being typed is not shown at all, not even its length.
    """
    if model.login == PASSWORD:
        prompt = "password: "
        used = min(cols, text_width(prompt))
        return [(prompt[:used], "prompt"), (" " * (cols - used), "")], min(used, cols - 1)
    prompt = "name: " if model.login == NAMING else "> "
    room = max(1, cols - text_width(prompt) - 1)  # keep one cell for the cursor at the end
    line = safe_text(model.input)
    cursor = min(model.cursor, len(line))
    start = 0
    while text_width(line[start:cursor]) > room:
        start += len(clusters(line[start:])[0])
    shown = fit(line[start:], cols - text_width(prompt))
    col = text_width(prompt) + text_width(line[start:cursor])
    used = text_width(prompt) + text_width(shown)
    return [(prompt, "prompt"), (shown, ""), (" " * (cols - used), "")], min(col, cols - 1)


# ---------------------------------------------------------------------------
# The whole screen


def render(model: ClientModel, rows: int, cols: int) -> Screen:
    """The chat screen for a terminal of `rows` x `cols` cells."""
    rows, cols = max(0, rows), max(0, cols)
    if rows < MIN_ROWS or cols < MIN_COLS:
        return too_small(rows, cols, model.page, model.max_scroll)
    height = rows - 2
    side = 0
    if cols >= SIDEBAR_MIN_COLS:
        side = min(24, max(12, cols // 5))
    width = cols - side - (1 if side else 0)
    pane, max_scroll = message_rows(model, width, height)
    if side:
        bar = sidebar_rows(model, side, height)
        pane = [[*left, ("|", "sep"), *right] for left, right in zip(pane, bar)]
    status = _row(status_text(model, cols), cols, "status")
    line, col = input_row(model, cols)
    return Screen([status, *pane, line], (rows - 1, col), height, max_scroll)


def too_small(rows: int, cols: int, page: int = 1, max_scroll: int = 0) -> Screen:
    """A short note instead of the chat when the terminal is below 20x6."""
    note = f"lanchat needs {MIN_COLS}x{MIN_ROWS}"
    if text_width(note) > cols:
        note = "too small"
    out = [_row(note if i == 0 else "", cols, "note") for i in range(rows)]
    return Screen(out, None, page, max_scroll)


def render_picker(picker: ServerPicker, rows: int, cols: int) -> Screen:
    """The screen that lists several found servers to pick one."""
    if rows < MIN_ROWS or cols < MIN_COLS:
        return too_small(max(0, rows), max(0, cols))
    out = [_row(" lanchat: several servers found; pick one", cols, "status")]
    listed = rows - 3
    top = max(0, min(picker.selected - listed + 1, len(picker.servers) - listed))
    for index in range(top, min(len(picker.servers), top + listed)):
        label, joinable = picker.servers[index]
        mark = "> " if index == picker.selected else "  "
        style = "sel" if index == picker.selected else ("" if joinable else "dim")
        out.append(_row(mark + safe_text(label), cols, style))
    out += [_row("", cols)] * (rows - 1 - len(out))
    out.append(_row(" Up/Down choose, Enter join, q leave", cols, "info"))
    return Screen(out, None, 1, 0)
