"""Plain mode: the chat as lines of text, for scripts, bots and screen readers.

It prints every message as `HH:MM name: text` (joins, leaves and notes as `HH:MM -- ...`,
and `-- Saturday 28 November --` where the day changes) and sends each line read from
stdin, commands included (/msg, /me, /who, /join, /quit), in order and at the pace the
server allows. With a server that has rooms (4.2) a line about a room says which, right
after the time (`14:18 #random bob: hi`); lines typed go to the current room, and after
a `/join` the lines that follow wait until that room is joined, so they go there.

At the end of stdin it waits until everything read was echoed by the server
(giving up after `DRAIN_TIMEOUT` seconds without progress), says goodbye and exits: 0
when all was delivered, else 1. Ctrl-C (SIGINT) gives what is pending up to
`chat.outbox.LEAVE_GRACE` seconds to go. No curses here, so plain mode runs on any
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
from lanchat.chat.actions import Action, Drop, Exit, GiveUp, Send
from lanchat.chat.connection import Connection, Event, Link, Stopped, VerifyLink
from lanchat.chat.model import LOGGED_IN, NAMING, SAID, ClientModel, Entry
from lanchat.chat.view import clock, day_line, starts_a_day

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 10.0  # after stdin ends, how long to wait for progress (an echo)
TICK = 1.0  # longest wait between model ticks (keepalive); paced sends may want them sooner


@dataclass(frozen=True)
class _Line:
    text: str


@dataclass(frozen=True)
class _InputEnd:
    pass


@dataclass(frozen=True)
class _Interrupt:
    """Ctrl-C (SIGINT): leave, giving pending messages their moment."""


class _Terminated(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


Item = Union[Event, _Line, _InputEnd, _Interrupt]


def format_entry(entry: Entry) -> str:
    """One pane entry as one line of plain text; the room it is about after the time."""
    stamp = clock(entry.ts) + " " if entry.ts is not None else ""
    if entry.room is not None:
        stamp += entry.room + " "
    if entry.kind in SAID:
        sender = entry.sender
        if entry.to is not None:
            sender = f"{sender} -> {entry.to} (private)"
        if entry.kind == "action":
            return f"{stamp}* {sender} {entry.text}"
        if entry.kind == "notice":
            return f"{stamp}-{sender}- {entry.text}"
        return f"{stamp}{sender}: {entry.text}"
    if entry.kind == "system":
        return f"{stamp}-- {entry.text}"
    if entry.kind == "error":
        return f"{stamp}!! {entry.text}"
    return entry.text


def _read_lines(fd: int, post: queue.SimpleQueue[Item]) -> None:
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
    verify: Optional[VerifyLink] = None,
) -> int:
    """Chat in plain lines until stdin ends, the user quits or the server refuses us (or
    a reconnect's link fails `verify`, the trusted certificate)."""
    # A SimpleQueue: its put may run inside a signal handler while the loop waits in get.
    items: queue.SimpleQueue[Item] = queue.SimpleQueue()
    connection = Connection(host, port, items.put, verify=verify)
    old_handlers: Dict[int, object] = {}

    def terminate(signum: int, frame: Optional[FrameType]) -> None:
        raise _Terminated(signum)

    def interrupt(signum: int, frame: Optional[FrameType]) -> None:
        items.put(_Interrupt())

    old_handlers[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
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
    except _Terminated as exc:
        connection.send(protocol.quit())
        return 128 + exc.signum
    finally:
        connection.close()
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _loop(
    model: ClientModel, connection: Connection, items: queue.SimpleQueue[Item], stdout: TextIO
) -> int:
    printed = 0  # every line of the model, those from before the loop too (a settings problem)
    printed_ts: Optional[float] = None  # the last printed line's time: a new day gets a separator
    drain_until: Optional[float] = None
    held: List[str] = []  # lines read before the login: run in order once logged in
    unsent = 0  # what the last round left undelivered: less now is progress
    while True:
        try:
            item: Optional[Item] = items.get(timeout=model.seconds_to_wait(time.time(), TICK))
        except queue.Empty:
            item = None
        now = time.time()
        actions: List[Action] = []
        if isinstance(item, _Line):
            held.append(item.text)
        elif isinstance(item, _InputEnd):
            drain_until = time.monotonic() + DRAIN_TIMEOUT
        elif isinstance(item, _Interrupt):
            actions += model.quit(now)
        elif item is not None:
            actions += model.handle_event(item, now)
            if isinstance(item, Stopped) and item.reason != "closed":
                actions.append(Exit(1))  # gave up for good: nothing more will come
        while held and model.login == LOGGED_IN and not model.joining:
            actions += model.submit(held.pop(0), now)
        actions += model.tick(now)
        if drain_until is not None:
            drain_until = _drain_deadline(model, drain_until, unsent > _unsent(model, held), now)
            if not (held or model.awaiting_answers or model.leaving) and model.has_logged_in:
                actions += model.quit(now)
        unsent = _unsent(model, held)
        for entry in model.entries_after(printed):
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
                return _report_unsent(model, held, stdout) or action.code
        if model.login == NAMING:  # nobody here to ask for another name
            stdout.write("!! pass another --name\n")
            stdout.flush()
            connection.send(protocol.quit())
            return 1
        if drain_until is not None and time.monotonic() > drain_until:
            _report_unsent(model, held, stdout)
            connection.send(protocol.quit())
            return 1


def _unsent(model: ClientModel, held: List[str]) -> int:
    """Lines read but not yet delivered: the outbox and the lines held until the login."""
    return len(model.outbox) + len(held)


def _drain_deadline(model: ClientModel, deadline: float, progress: bool, now: float) -> float:
    """When to stop waiting for the rest of stdin's lines: `DRAIN_TIMEOUT` seconds after
    the last delivery, not counting the waits the server's pace asks of us."""
    if progress:
        deadline = time.monotonic() + DRAIN_TIMEOUT
    wake = model.wake_at
    if wake is not None:
        deadline = max(deadline, time.monotonic() + max(0.0, wake - now) + DRAIN_TIMEOUT)
    return deadline


def _report_unsent(model: ClientModel, held: List[str], stdout: TextIO) -> int:
    """Say how many lines were not delivered; return 1 if any, else 0."""
    unsent = _unsent(model, held)
    if unsent:
        stdout.write(f"!! {unsent} message(s) not sent\n")
        stdout.flush()
    return 1 if unsent else 0
