"""Plain mode: the chat as lines of text, for scripts, bots and screen readers.

It prints every message as `HH:MM name: text` (joins, leaves and notes as `HH:MM -- ...`,
and `-- Saturday 28 November --` where the day changes) and sends each line read from
stdin, commands included (/msg, /me, /who, /quit). At the end of stdin it waits until
everything typed was echoed by the server (at most `DRAIN_TIMEOUT` seconds), says goodbye
and exits: 0 when all was delivered, else 1. No curses here, so plain mode runs on any
Python.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Dict, List, Optional, TextIO, Union

from lanchat import protocol
from lanchat.client_model import (
    LOGGED_IN,
    NAMING,
    Action,
    ClientModel,
    Drop,
    Entry,
    Exit,
    GiveUp,
    Send,
)
from lanchat.client_view import clock, day_line, starts_a_day
from lanchat.connection import Connection, Event, Link

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 10.0  # after stdin ends, how long to wait for the echoes of what it sent
TICK = 1.0


@dataclass(frozen=True)
class _Line:
    text: str


@dataclass(frozen=True)
class _InputEnd:
    pass


class _Terminated(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


Item = Union[Event, _Line, _InputEnd]


def format_entry(entry: Entry) -> str:
    """One pane entry as one line of plain text."""
    stamp = clock(entry.ts) + " " if entry.ts is not None else ""
    if entry.kind in ("message", "action"):
        sender = entry.sender
        if entry.to is not None:
            sender = f"{sender} -> {entry.to} (private)"
        if entry.kind == "action":
            return f"{stamp}* {sender} {entry.text}"
        return f"{stamp}{sender}: {entry.text}"
    if entry.kind == "system":
        return f"{stamp}-- {entry.text}"
    if entry.kind == "error":
        return f"{stamp}!! {entry.text}"
    return entry.text


def _read_lines(fd: int, post: queue.Queue[Item]) -> None:
    """Post each line read from fd (undecodable bytes replaced), then the end of input.

    It reads the raw fd, not sys.stdin: a daemon thread blocked inside a buffered reader
    makes the interpreter abort at exit ("could not acquire lock ... at shutdown").
    """
    pending = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as exc:
            log.info("stdin ended: %s", exc)
            data = b""
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            post.put(_Line(raw.decode("utf-8", "replace").rstrip("\r")))
    if pending:
        post.put(_Line(pending.decode("utf-8", "replace").rstrip("\r")))
    post.put(_InputEnd())


def run(
    model: ClientModel,
    host: str,
    port: int,
    link: Optional[Link],
    stdin_fd: int,
    stdout: TextIO,
) -> int:
    """Chat in plain lines until stdin ends, the user quits or the server refuses us."""
    items: queue.Queue[Item] = queue.Queue()
    connection = Connection(host, port, items.put)
    old_handlers: Dict[int, object] = {}

    def terminate(signum: int, frame: Optional[FrameType]) -> None:
        raise _Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            old_handlers[signum] = signal.signal(signum, terminate)
    reader = threading.Thread(
        target=_read_lines, args=(stdin_fd, items), name="lanchat-stdin", daemon=True
    )
    connection.start(link)
    reader.start()
    try:
        return _loop(model, connection, items, stdout)
    except KeyboardInterrupt:  # Ctrl-C: the user chose to leave
        connection.send(protocol.quit())
        return 0
    except _Terminated as exc:
        connection.send(protocol.quit())
        return 128 + exc.signum
    finally:
        connection.close()
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _loop(
    model: ClientModel, connection: Connection, items: queue.Queue[Item], stdout: TextIO
) -> int:
    printed = model.last_seq
    printed_ts: Optional[float] = None  # the last printed line's time: a new day gets a separator
    drain_until: Optional[float] = None
    held: List[str] = []  # lines read before the login: run in order once logged in
    next_tick = time.monotonic() + TICK
    while True:
        try:
            item: Optional[Item] = items.get(timeout=max(0.0, next_tick - time.monotonic()))
        except queue.Empty:
            item = None
        now = time.time()
        actions: List[Action] = []
        if isinstance(item, _Line):
            held.append(item.text)
        elif isinstance(item, _InputEnd):
            drain_until = time.monotonic() + DRAIN_TIMEOUT
        elif item is not None:
            actions += model.handle_event(item, now)
        if held and model.login == LOGGED_IN:
            for text in held:
                actions += model.submit(text, now)
            held.clear()
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + TICK
            actions += model.tick(now)
        for entry in model.entries:
            if entry.seq > printed:
                if entry.ts is not None and starts_a_day(entry.ts, printed_ts, now):
                    stdout.write(day_line(entry.ts, now) + "\n")
                printed_ts = entry.ts if entry.ts is not None else printed_ts
                stdout.write(format_entry(entry) + "\n")
        printed = model.last_seq
        stdout.flush()
        for action in actions:
            if isinstance(action, Send):
                connection.send(action.frame)
            elif isinstance(action, Drop):
                connection.drop()
            elif isinstance(action, GiveUp):
                return 1
            elif isinstance(action, Exit):
                return action.code
        if model.login == NAMING:  # nobody here to ask for another name
            stdout.write("!! pass another --name\n")
            stdout.flush()
            connection.send(protocol.quit())
            return 1
        if drain_until is not None:
            if not held and not model.awaiting_answers and model.has_logged_in:
                connection.send(protocol.quit())
                return 0
            if time.monotonic() > drain_until:
                stdout.write(f"!! {len(model.outbox) + len(held)} message(s) not sent\n")
                stdout.flush()
                connection.send(protocol.quit())
                return 1
