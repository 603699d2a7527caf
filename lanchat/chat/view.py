"""The chat screen as a pure function: `render(model, rows, cols) -> Screen`.

A `Screen` holds exactly `rows` rows; each row is a list of (text, style) segments that
take exactly `cols` terminal cells, plus where the cursor goes. Styles are names (see
`STYLES`); the curses layer maps them to colours or, without colour, to bold, dim and
reverse. Layout, top to bottom: the status bar, the message pane of the current room (the
online list at its side when the terminal is wide enough), the room bar (only when the
server has rooms), the input line. Nothing received is drawn without
passing `termtext.safe_text`, and every width is counted in cells (`termtext`).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from lanchat import names
from lanchat.chat.colours import NAME_COLOURS, NameColours, preferred_colour
from lanchat.chat.model import (
    CONNECTED,
    CONNECTING,
    LOGGED_IN,
    LOGGING_IN,
    NAMING,
    OFFLINE,
    PASSWORD,
    SAID,
    STOPPED,
    ClientModel,
    Entry,
)
from lanchat.chat.outbox import Outgoing
from lanchat.chat.picker import ServerPicker
from lanchat.chat.rooms import room_key
from lanchat.chat.termtext import char_width, clusters, fit, pad, safe_text, text_width
from lanchat.chat.trustprompt import TrustPrompt

Segment = Tuple[str, str]
Row = List[Segment]

MIN_ROWS = 6
MIN_COLS = 20
SIDEBAR_MIN_COLS = 60  # narrower than this, the online list is hidden
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
    "roomnow",
    "roomnew",
    "roommention",
    *(f"name{i}" for i in range(NAME_COLOURS)),
)
MORE_BELOW = "-- more below (PgDn) --"


@dataclass(frozen=True)
class Screen:
    """What to draw: exactly `rows` rows of exactly `cols` cells, and the cursor."""

    rows: List[Row]
    cursor: Optional[Tuple[int, int]]  # (row, col), None to hide it
    page: int  # rows a page of the message pane moves by, plus one (PgUp/PgDn)
    max_scroll: int  # how far the message pane can scroll up
    scroll: Optional[int] = None  # how far it is scrolled up, from the newest entry drawn

    def text(self) -> List[str]:
        """The rows as plain strings (for tests and screen captures)."""
        return ["".join(text for text, _ in row) for row in self.rows]


def name_style(name: str, colours: Optional[NameColours] = None) -> str:
    """The colour style of a name: the one the model gave it, else its preferred one."""
    return f"name{colours.of(name) if colours is not None else preferred_colour(name)}"


def clock(ts: Optional[float]) -> str:
    """HH:MM in local time."""
    return time.strftime("%H:%M", time.localtime(ts)) if ts is not None else "     "


Day = Tuple[int, int, int]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def day_of(ts: float) -> Day:
    """The local calendar day of a time: (year, month, day)."""
    local = time.localtime(ts)
    return local.tm_year, local.tm_mon, local.tm_mday


def _is_today(ts: float, now: float) -> bool:
    return day_of(ts) == day_of(now)


def day_line(ts: float, now: float) -> str:
    """The day separator above a day's first line: `-- Saturday 28 November --`, with
    the year when it is not the year of `now`. In English, as the rest of the window."""
    local = time.localtime(ts)
    year = f" {local.tm_year}" if local.tm_year != time.localtime(now).tm_year else ""
    return f"-- {WEEKDAYS[local.tm_wday]} {local.tm_mday} {MONTHS[local.tm_mon - 1]}{year} --"


def starts_a_day(ts: Optional[float], before: Optional[float], now: float) -> bool:
    """True if a day separator goes above a line of time `ts` that follows a line of
    time `before`; with no line before it, the first line's day is announced unless it
    is today."""
    if ts is None:
        return False
    return day_of(ts) != day_of(before if before is not None else now)


# ---------------------------------------------------------------------------
# Rows and wrapping


def _row(text: str, width: int, style: str = "") -> Row:
    return [(pad(text, width), style)]


Cell = Tuple[str, str, int]  # one cluster, its style, the cells it takes

# A run with a URL in it is one token: split over rows it goes on at the left edge, so it
# copies whole.
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
        if _URL.search("".join(c[0] for c in run)):
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


def entry_segments(entry: Entry, colours: Optional[NameColours] = None) -> List[Segment]:
    """One pane entry as styled text, before wrapping; names in the model's colours."""
    stamp: List[Segment] = [(clock(entry.ts) + " ", "time")] if entry.ts is not None else []
    if entry.kind in SAID:
        sender = (entry.sender, "own" if entry.own else name_style(entry.sender, colours))
        text_style = "mention" if entry.mention else ""
        private: List[Segment] = []
        if entry.to is not None:
            private = [("[private] ", "pm")]
        target: List[Segment] = []
        if entry.to is not None and entry.own:
            target = [(" -> ", "pm"), (entry.to, name_style(entry.to, colours))]
        if entry.kind == "action":
            return [
                *stamp,
                *private,
                ("* ", text_style),
                sender,
                *target,
                (" " + entry.text, text_style),
            ]
        if entry.kind == "notice":  # as IRC clients show one
            return [
                *stamp,
                *private,
                ("-", ""),
                sender,
                *target,
                ("- ", ""),
                (entry.text, text_style),
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


@dataclass(frozen=True)
class _Item:
    """One thing of the message pane, before layout."""

    segments: List[Segment]
    ts: Optional[float]
    seq: Optional[int]  # None for a message still pending
    new: bool  # a message that came after the reader scrolled back


def _items_newest_first(model: ClientModel) -> Iterator[_Item]:
    here = model.rooms.current.key
    for outgoing in reversed(model.outbox):
        if outgoing.room is None or room_key(outgoing.room) == here:
            yield _Item(pending_segments(outgoing, model.name), outgoing.ts, None, False)
    for entry in reversed(model.entries):
        new = entry.kind in SAID and entry.seq > model.unread_after
        yield _Item(entry_segments(entry, model.colours), entry.ts, entry.seq, new)


@dataclass(frozen=True)
class Pane:
    """The message pane as drawn, and what PgUp/PgDn need to know of it."""

    rows: List[Row]  # exactly the pane's height
    page: int  # rows a page moves by, plus one
    max_scroll: int  # how far it can scroll up
    scroll: int  # how far it is scrolled up, from the newest entry drawn


def _more_below(new: int) -> str:
    if not new:
        return MORE_BELOW
    return f"-- {new} new message{'s' if new > 1 else ''} below (PgDn) --"


@dataclass
class _Layout:
    """The pane's rows newest first, with what the window over them needs to know."""

    rows: List[Row]
    stamps: List[Optional[float]]  # each row's time; None for a day separator
    ends: List[Tuple[int, bool]]  # where each item's rows end, and whether it is new
    new_rows: int  # rows of the entries after model.scroll_seq


def _lay_out(model: ClientModel, width: int, height: int) -> _Layout:
    """Wrap items newest first, with a day separator above the first item of each day
    (and above the first of all, unless that is today), until the scroll position has
    the rows it needs: a long history costs nothing per keystroke."""
    indent = _indent_for(width)
    out = _Layout([], [], [], 0)
    outbox_rows = 0
    counting = model.scroll > 0  # the rows of entries after scroll_seq are still counted
    newer: Optional[float] = None  # the time of the item below the one being laid out

    def separator(ts: float) -> None:
        out.rows.append(_row(day_line(ts, model.now), width, "sys"))
        out.stamps.append(None)

    for item in _items_newest_first(model):
        if newer is not None and item.ts is not None and starts_a_day(newer, item.ts, model.now):
            separator(newer)
        if counting and item.seq is not None and item.seq <= model.scroll_seq:
            out.new_rows, counting = len(out.rows) - outbox_rows, False
        item_rows = wrap(item.segments, width, indent)
        out.rows.extend(reversed(item_rows))
        out.stamps.extend([item.ts] * len(item_rows))
        out.ends.append((len(out.rows), item.new))
        if item.seq is None:
            outbox_rows = len(out.rows)
        newer = item.ts if item.ts is not None else newer
        if not counting and len(out.rows) >= model.scroll + out.new_rows + 2 * height:
            break
    else:
        if newer is not None and starts_a_day(newer, None, model.now):
            separator(newer)
    if counting:  # every entry came after scroll_seq
        out.new_rows = len(out.rows) - outbox_rows
    return out


def message_rows(model: ClientModel, width: int, height: int) -> Pane:
    """The message pane: exactly `height` rows of `width` cells, newest at the bottom.

    Scrolled back, the rows shown stay put while messages arrive (the rows of entries
    newer than `model.scroll_seq` add to `model.scroll`), and the last row says how many
    new messages are below. When the top row is of another day than today and that day's
    separator is out of sight, the top row names the day.
    """
    layout = _lay_out(model, width, height)
    rows = layout.rows
    # Scrolled by n, the pane's last row is the mark and the row above it is the one n rows
    # up from the newest; the top is reached when the oldest row shows in the first row.
    max_scroll = max(0, len(rows) - height + 1) if len(rows) > height else 0
    scroll = min(model.scroll + layout.new_rows, max_scroll) if model.scroll > 0 else 0
    shown = height - 1 if scroll else height
    top = scroll + shown - 1
    top_stamp = layout.stamps[top] if top < len(rows) else None
    out: List[Row] = []
    if top_stamp is not None and not _is_today(top_stamp, model.now):
        out.append(_row(day_line(top_stamp, model.now), width, "sys"))
        shown -= 1
    out += reversed(rows[scroll : scroll + shown])
    out += [_row("", width)] * (height - (1 if scroll else 0) - len(out))
    if scroll:
        new = sum(1 for end, is_new in layout.ends if is_new and end <= scroll)
        out.append(_row(_more_below(new), width, "more"))
    # While an older day may take the top row, a page moves one row less: none is skipped.
    oldest = model.entries[0].ts if model.entries else None
    page = height - 1 if oldest is not None and not _is_today(oldest, model.now) else height
    return Pane(out, page, max_scroll, scroll)


def sidebar_rows(model: ClientModel, width: int, height: int) -> List[Row]:
    """The online list: a header, then one name a row, own name marked, those away dim."""
    heading = f"online ({len(model.online)})"
    if not model.online_is_live:  # the list is the last one we knew, if any
        heading = f"last seen ({len(model.online)})" if model.has_logged_in else "online"
    rows = [_row(heading, width, "sidehead")]
    online = model.online
    room = height - 1
    shown = online if len(online) <= room else online[: max(0, room - 1)]
    for name in shown:
        mine = names.name_key(name) == names.name_key(model.name)
        style = "sideme" if mine else name_style(name, model.colours)
        rows.append(_row(name, width, "dim" if model.is_away(name) else style))
    if len(shown) < len(online):
        rows.append(_row(f"+{len(online) - len(shown)} more", width, "sidehead"))
    rows += [_row("", width)] * (height - len(rows))
    return rows[:height]


def room_bar(model: ClientModel, cols: int) -> Row:
    """The room bar: each room joined, numbered for Alt-1...Alt-9, with its unread count
    and `!` for a mention (`1:#general  2:#dev(3)  3:#random(1!)`), the current one
    highlighted. When they do not all fit, the current one still shows."""
    labels = []
    for number, room in enumerate(model.rooms.rooms, start=1):
        mark = "!" if room.mention else ""
        count = f"({room.unread}{mark})" if room.unread or room.mention else ""
        style = "roommention" if room.mention else "roomnew" if room.unread else ""
        labels.append((f"{number}:{room.name}{count}", style))
    current = model.rooms.index
    labels[current] = (labels[current][0], "roomnow")
    start = 0
    while (
        start < current and text_width("  ".join(t for t, _ in labels[start : current + 1])) > cols
    ):
        start += 1
    row: Row = []
    used = 0
    for text, style in labels[start:]:
        gap = [("  ", "")] if row else []
        if used + 2 * len(gap) + text_width(text) > cols:
            break
        row += [*gap, (text, style)]
        used += 2 * len(gap) + text_width(text)
    if not row:  # the current room's label alone is too wide: as much of it as fits
        text = fit(labels[current][0], cols)
        row, used = [(text, "roomnow")], text_width(text)
    return [*row, (" " * (cols - used), "")]


# ---------------------------------------------------------------------------
# Status and input


def state_text(model: ClientModel) -> str:
    """The connection state in a few words."""
    if model.link == STOPPED:
        return "stopped: " + model.link_note
    if model.link == OFFLINE and model.server_full:
        wait = model.retry_in()
        return "server full, retrying" + (f" in {wait} s" if wait else "")
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
    """The status bar: server name and address, your name, how many online, the state
    (with `TLS` while connected over TLS).

    Your name is left out while you choose another, the count while it is not the
    server's count now."""
    host, port = model.address
    server = model.server_name or "lanchat"
    address = f"{host}:{port}" if host else ""
    state = state_text(model)
    if model.tls and model.link == CONNECTED:
        state += ", TLS"
    if model.outbox:
        state += f", {len(model.outbox)} pending"
    online = [f"{len(model.online)} online"] if model.online_is_live else []
    me = [] if model.login == NAMING else [model.name + (" (op)" if model.operator else "")]
    you = [f"you: {name}" for name in me]
    variants = (
        [server + (f" ({address})" if address else ""), *you, *online, state],
        [server, *you, *online, state],
        [*me, *online, state],
        [*me, state],
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
    bar = [room_bar(model, cols)] if model.rooms.enabled else []
    height = rows - 2 - len(bar)
    side = 0
    if cols >= SIDEBAR_MIN_COLS:
        side = min(24, max(12, cols // 5))
    width = cols - side - (1 if side else 0)
    pane = message_rows(model, width, height)
    shown = pane.rows
    if side:
        online = sidebar_rows(model, side, height)
        shown = [[*left, ("|", "sep"), *right] for left, right in zip(shown, online)]
    status = _row(status_text(model, cols), cols, "status")
    line, col = input_row(model, cols)
    drawn = [status, *shown, *bar, line]
    return Screen(drawn, (rows - 1, col), pane.page, pane.max_scroll, pane.scroll)


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


def render_trust_prompt(prompt: TrustPrompt, rows: int, cols: int) -> Screen:
    """The screen that asks whether to trust a server's certificate, met for the first time."""
    if rows < MIN_ROWS or cols < MIN_COLS:
        return too_small(max(0, rows), max(0, cols))
    out = [_row(" lanchat: a new server", cols, "status"), _row("", cols)]
    out += [_row(" " + safe_text(line), cols) for line in prompt.lines()][: rows - 3]
    out += [_row("", cols)] * (rows - 1 - len(out))
    out.append(_row(" y: trust it and connect    n: do not connect", cols, "prompt"))
    return Screen(out, None, 1, 0)
