"""The chat client as pure state: what a person sees and what their keys and the server do.

`ClientModel` holds the connection state, the login, the message list, the online list,
the outbox and the input line. Three doors lead in, each returning a list of actions for
the caller to carry out (`lanchat.chat.actions`):

- `handle_event(event, now)` for what the connection reports (connection.Event),
- `handle_key(key, now)` for one key: a character, or a curses key name such as
  "KEY_LEFT" (no curses import here: the curses layer passes `curses.keyname` strings),
- `tick(now)` once a second or so, and at `wake_at`: keepalive pings, paced sends, leaving.

Nothing here does I/O or reads a clock: `now` is always passed in (Unix seconds). The view
(`chat.view`) draws this state; plain mode (`chat.plain`) prints its entries.

What the user says waits in the outbox (`lanchat.chat.outbox`) until the server echoes it,
and goes out in order at the server's pace; leaving gives it a moment to go.

Every login after the first resumes the session (docs/protocol.md, Extensions): it
presents the resume token of the last welcome (to take the name back from a connection
the server still thinks alive), the highest message id seen and the history it belongs to
(so the welcome brings exactly the messages missed). Messages are shown once per id; a new
`history_id` means the server's history was reset, and old ids mean nothing any more.

A server that wants a password gets the proof `protocol.password_proof` computes for each
connection's nonce; the password itself stays in this object and is never sent.
"""

from __future__ import annotations

import collections
import logging
import math
import re
from dataclasses import dataclass
from typing import Hashable, List, Optional, Pattern, Sequence, Tuple

from lanchat import identity, names, protocol
from lanchat.chat import commands, completion, lineedit
from lanchat.chat.actions import Action, Bell, Drop, Exit, GiveUp, Send
from lanchat.chat.colours import NameColours
from lanchat.chat.commands import ME_PREFIX
from lanchat.chat.connection import Connected, Disconnected, Event, Received, Stopped
from lanchat.chat.outbox import LEAVE_GRACE, Outbox, Outgoing, announced_pace
from lanchat.chat.people import FATAL_ERRORS, NAME_REFUSALS, People, until_text
from lanchat.chat.requests import Requests
from lanchat.chat.roomevents import ROOM_ERRORS, RoomEvents
from lanchat.chat.rooms import Room, Rooms
from lanchat.chat.settings import Settings
from lanchat.chat.termtext import is_typeable, safe_text
from lanchat.protocol import Frame

log = logging.getLogger(__name__)

SAID = ("message", "action", "notice")  # the entry kinds somebody said
MAX_ENTRIES = 2000  # lines kept in the message pane
MAX_HISTORY = 200  # input lines kept for Up/Down
PING_AFTER = 30.0  # seconds of server silence before we ping
PING_TIMEOUT = 15.0  # an unanswered ping this old means the link is dead
MAX_SEEN = 20000  # message ids remembered to show each message once
PASSWORD_TRIES = 2  # typed passwords the server may refuse before we give up
MAX_PASSWORD = 1024  # characters the password prompt takes

# Link states
CONNECTING = "connecting"
CONNECTED = "connected"
OFFLINE = "offline"
STOPPED = "stopped"

# Login states
LOGGED_OUT = "logged out"
LOGGING_IN = "logging in"
NAMING = "naming"  # the server refused the name; the input line asks for another
PASSWORD = "password"  # the server wants a password; the input line asks for it, hidden
LOGGED_IN = "logged in"


# ---------------------------------------------------------------------------
# What the message pane holds


@dataclass(frozen=True)
class Entry:
    """One item of the message pane, before layout.

    kind: "message" (someone said something), "action" (/me), "notice" (a message sent
    as a notice, 4.4: a bot's or a bridge's), "system" (joins, leaves, connection news),
    "error" (something went wrong), "info" (local help and hints).
    """

    kind: str
    text: str
    seq: int
    ts: Optional[float] = None
    sender: str = ""
    to: Optional[str] = None  # set for private messages: the recipient
    own: bool = False
    mention: bool = False  # our name was said, or a private message to us
    room: Optional[str] = None  # the room a message, join, leave or topic is about (4.2)


def _message_key(frame: Frame) -> Tuple[object, ...]:
    """What tells two message frames apart when the server names no history."""
    return (frame["id"], frame["ts"], frame["from"], frame["text"])


def _nonce_ok(nonce: object) -> bool:
    """True for a nonce a proof can be made with: hex digits, whole bytes."""
    return isinstance(nonce, str) and re.fullmatch(r"(?:[0-9a-fA-F]{2})+", nonce) is not None


def suggest_name(name: str) -> str:
    """A name to offer when `name` was refused: fixed up if invalid, else numbered."""
    candidate = re.sub(r"\s+", "_", name.strip())
    candidate = "".join(c for c in candidate if c.isalnum() or c in "_-.")
    if not candidate:
        return ""
    if candidate != name:  # the name itself broke the rules: offer it fixed up first
        try:
            return names.validate_name(candidate)
        except protocol.ProtocolError:
            pass
    match = re.search(r"(\d+)$", candidate)
    if match:
        stem, number = candidate[: match.start()], int(match.group(1)) + 1
    else:
        stem, number = candidate, 2
    suffix = str(number)
    candidate = stem[: protocol.MAX_NAME - len(suffix)] + suffix
    try:
        return names.validate_name(candidate)
    except protocol.ProtocolError:
        return ""


def _mention_pattern(name: str) -> Optional[Pattern[str]]:
    if not name:
        return None
    # \b-like edges for names that start or end with a word character of ASCII; CJK names
    # sit inside running text without spaces, so there no edge is required.
    before = r"(?<![\w])" if name[0].isascii() else ""
    after = r"(?![\w])" if name[-1].isascii() else ""
    return re.compile(before + re.escape(name) + after, re.IGNORECASE)


class ClientModel(RoomEvents, People):
    """All of the chat client's state; see the module docstring for the three doors.
    Its rooms half (4.2) is `chat.roomevents.RoomEvents`, its people half (4.3: renames,
    away, ignore, operators) `chat.people.People`."""

    def __init__(
        self,
        name: str,
        host: str = "",
        port: int = 0,
        ref_prefix: Optional[str] = None,
        password: Optional[str] = None,
        ask_password: bool = False,
        window: bool = False,
        secret: Optional[bytes] = None,
        settings: Optional[Settings] = None,
    ) -> None:
        """`password`: from a file or the environment, if any; `ask_password`: the user
        can be asked for it (the window can, plain mode cannot); `window`: keys are read
        (the window), so /help lists them; `secret`: the identity key (`chat.keyfile`),
        proven to a server that sends a challenge (4.3); `settings`: the ignore list and
        bell (`chat.settings`)."""
        self.name = name  # the name we log in with (the server's spelling once in)
        self.address = (host, port)
        self.server_name = ""
        self.server_version = ""
        self.tls = False  # the link is TLS, its certificate the trusted one
        self.link = CONNECTING
        self.login = LOGGED_OUT
        self.link_note = ""  # why we are offline or stopped, for the status bar
        self.server_full = False  # the server refused us as full; we keep trying
        self.retry_at: Optional[float] = None  # when the connection tries again, offline
        self.max_text = protocol.MAX_TEXT
        self.rooms = Rooms()  # the lines and members of each room (one without rooms)
        self._requests = Requests()  # who, rooms, join, part, topic: to send, to answer
        self._login_note = ""  # said once the welcome's rooms have all come (4.2)
        self._rooms_to_come: List[str] = []  # the keys of those rooms still to come
        self.colours = NameColours()
        self._out = Outbox(ref_prefix)
        self.input = ""
        self.cursor = 0
        self.history: List[str] = []
        # Scrolled back, the pane stays on the rows it shows: `scroll` counts rows up from
        # the bottom as it was when entry `scroll_seq` was the newest, and the view adds
        # the rows of newer entries. Messages after `unread_after` are new to the reader.
        self.scroll = 0  # rows scrolled up from the bottom of the message pane
        self.scroll_seq = 0
        self.unread_after = 0
        self.now = 0.0  # the latest time passed in: countdowns, and the day the view calls today
        self.page = 10  # rows the message pane showed last; set by the view's caller
        self.max_scroll = 0
        self.has_logged_in = False
        self._history_pos = 0
        self._draft = ""
        self._completion: Optional[completion.Completion] = None  # a Tab cycle in progress
        self._saved_input = ""  # the message being typed while we ask for a name
        self._seq = 0
        # What shows each message once: ids (or whole keys), oldest first for eviction.
        self._seen: collections.OrderedDict[Hashable, None] = collections.OrderedDict()
        self._last_id: Optional[int] = None  # the highest message id seen in this history
        self._history_id: Optional[str] = None  # the server's history, from the last welcome
        self._resume: Optional[str] = None  # the secret token of the last welcome
        self._password = password
        self._ask_password = ask_password
        self.window = window  # keys are read: /help lists them
        self._password_refused = 0
        self._nonce: Optional[str] = None  # the current link's challenge, if it has one
        self.exit_note = ""  # why the client gave up, for a line after the window closes
        self._ctrl_x = False  # Ctrl-X was pressed: the next key picks a room
        self._last_heard = 0.0
        self._ping_sent: Optional[float] = None
        self._pings = 0
        self._mention: Optional[Pattern[str]] = _mention_pattern(name)
        self._secret = secret
        self._challenge: Optional[str] = None  # the current link's identity challenge (4.3)
        self._init_people(settings)

    # ------------------------------------------------------------------ helpers

    def _add(self, kind: str, text: str, into: Optional[Room] = None, **fields: object) -> Entry:
        """Add a line to a room's pane (the current room's unless `into` says)."""
        self._seq += 1
        entry = Entry(kind, text, self._seq, **fields)  # type: ignore[arg-type]
        (into or self.rooms.current).add(entry, MAX_ENTRIES)
        return entry

    @property
    def entries(self) -> List[Entry]:
        """The lines of the current room's pane, oldest first (the list itself)."""
        return self.rooms.current.entries

    @property
    def online(self) -> List[str]:
        """Who is in the current room (without rooms: who is online), sorted."""
        return self.rooms.current.members

    def entries_after(self, seq: int) -> List[Entry]:
        """Every room's lines newer than `seq`, oldest first (plain mode prints them)."""
        return self.rooms.entries_after(seq)

    def _login_frame(self) -> Frame:
        """The login for the current link: name, proof, and after a first login the resume."""
        auth = None
        if self._nonce is not None and self._password is not None:
            auth = protocol.password_proof(self._password, self._nonce, self.name)
        proof = None
        if self._challenge is not None and self._secret is not None:
            proof = identity.prove(self._secret, self._challenge, self.name)
        # Neither the password nor the secrets of the login go into the log.
        log.info(
            "logging in as %r%s%s",
            self.name,
            " with a password proof" if auth else "",
            f" after message {self._last_id}" if self.has_logged_in else "",
        )
        # The rooms we are in (and one /join asked for), so a new login keeps them.
        rooms = self.rooms.names
        if self.rooms.joining is not None and self.rooms.find(self.rooms.joining) is None:
            rooms.append(self.rooms.joining)
        if not self.has_logged_in:
            return protocol.login(self.name, auth=auth, rooms=rooms, identity=proof)
        return protocol.login(
            self.name,
            rooms=rooms,
            auth=auth,
            identity=proof,
            last_id=self._last_id,
            history_id=self._history_id,
            resume=self._resume,
        )

    def _is_me(self, name: str) -> bool:
        return names.name_key(name) == names.name_key(self.name)

    def _set_name(self, name: str) -> None:
        self.name = name
        self._mention = _mention_pattern(name)

    def _online_changed(self) -> None:
        """Give the others in our rooms their colours (our own name is drawn in none)."""
        everyone = [n for room in self.rooms.rooms for n in room.members]
        self.colours.give([n for n in everyone if not self._is_me(n)])

    def _set_members(self, room: Room, members: Sequence[str]) -> None:
        room.members = sorted((safe_text(n) for n in members), key=str.casefold)
        self._online_changed()

    @property
    def online_is_live(self) -> bool:
        """True while `online` is the server's list now; else it is the last one we knew."""
        return self.link == CONNECTED and self.login == LOGGED_IN

    def retry_in(self) -> Optional[int]:
        """Whole seconds until the next connection attempt while offline; else None."""
        if self.link != OFFLINE or self.retry_at is None:
            return None
        left = math.ceil(self.retry_at - self.now)
        return left if left > 0 else None

    @property
    def outbox(self) -> List[Outgoing]:
        """Messages typed but not yet echoed by the server, oldest first (the list itself)."""
        return self._out.messages

    @property
    def pending(self) -> List[Outgoing]:
        """Messages typed but not yet echoed by the server."""
        return list(self.outbox)

    @property
    def awaiting_answers(self) -> bool:
        """True while something we sent (a message, /who, /join ...) still waits for
        the server, or the rooms of the login (4.2) are still to come."""
        waiting = self._requests.items or self._rooms_to_come
        return bool(self.outbox) or bool(waiting) or self.joining

    @property
    def leaving(self) -> bool:
        """True once the user chose to leave and pending messages are given their moment."""
        return self._out.leave_by is not None

    @property
    def wake_at(self) -> Optional[float]:
        """When `tick` has something to do before its next round (a paced send, the end
        of leaving's grace); None when nothing waits on the clock."""
        leave_by = self._out.leave_by
        times = [] if leave_by is None else [leave_by]
        quit_waits = self.leaving and not self.outbox
        if self._can_send() and (self._requests.waiting() or self._out.head_waits() or quit_waits):
            times.append(self._out.paced_until)
        return min(times, default=None)

    def seconds_to_wait(self, now: float, longest: float) -> float:
        """How long the caller may wait for input before it calls `tick`."""
        wake = self.wake_at
        return max(0.0, longest if wake is None else min(longest, wake - now))

    @property
    def last_seq(self) -> int:
        """The seq of the newest entry ever added (plain mode prints the ones after)."""
        return self._seq

    def set_viewport(self, page: int, max_scroll: int, scroll: Optional[int] = None) -> None:
        """Tell the model how tall the message pane is, how far it can scroll and (from
        the view) where it is now, counted from the newest entry drawn."""
        self.page = max(1, page)
        self.max_scroll = max(0, max_scroll)
        if scroll is not None and self.scroll > 0:
            self.scroll, self.scroll_seq = scroll, self._seq
        self.scroll = min(self.scroll, self.max_scroll)

    # ------------------------------------------------------------------ events

    def handle_event(self, event: Event, now: float) -> List[Action]:
        """React to what the connection reports."""
        self.now = now
        if isinstance(event, Connected):
            return self._on_connected(event, now)
        if isinstance(event, Received):
            self._last_heard = now
            self._ping_sent = None  # anything at all proves the link lives
            return self._on_frame(event.frame, now)
        if isinstance(event, Disconnected):
            return self._on_disconnected(event, now)
        if isinstance(event, Stopped):
            if event.reason != "closed":
                self.link = STOPPED
                self.link_note = safe_text(event.reason)
                self.exit_note = self.link_note  # said again once the window is gone
                self.fatal = True  # the connection gave up for good (a refused certificate)
                self._add("error", self.link_note, ts=now)
            return []
        return []

    def _on_connected(self, event: Connected, now: float) -> List[Action]:
        hello = event.hello
        self.link = CONNECTED
        self.link_note = ""
        self.address = event.address
        self.tls = event.tls
        self.server_name = safe_text(hello["server"])
        self.server_version = safe_text(hello["version"])
        limits = hello.get("limits")
        if isinstance(limits, dict) and isinstance(limits.get("max_text"), int):
            self.max_text = max(1, min(limits["max_text"], protocol.MAX_TEXT))
        self._out.pace = announced_pace(limits)
        self._last_heard = now
        self._ping_sent = None
        self._out.unsent()
        self._nonce = None
        challenge = hello.get("challenge")
        self._challenge = str(challenge) if _nonce_ok(challenge) else None
        if hello["auth"] == "password":
            nonce = hello.get("nonce")
            if not _nonce_ok(nonce):
                return self._give_up("the server asks for a password but sent no usable nonce", now)
            self._nonce = str(nonce)
            if self._password is None and self.login != PASSWORD:
                if not self._ask_password:
                    where = f"{self.address[0]}:{self.address[1]}"
                    return self._give_up(
                        f"the server at {where} needs a password: pass --password-file FILE "
                        "or set LANCHAT_PASSWORD",
                        now,
                    )
                return self._ask_for_password("This server needs a password.", now)
        elif hello["auth"] != "none":
            return self._give_up(
                f"the server asks for a kind of login this client does not know "
                f"({safe_text(hello['auth'])!r})",
                now,
            )
        if self.login in (NAMING, PASSWORD):
            return []  # the user is still typing a name or password; login goes when they do
        self.login = LOGGING_IN
        return [Send(self._login_frame())]

    def _give_up(self, reason: str, now: float) -> List[Action]:
        """Stop for good: this server will not take us as we are; exit 1."""
        self.link = STOPPED
        self.link_note = reason
        self.exit_note = reason
        self._add("error", reason, ts=now)
        return [GiveUp(reason), Exit(1)]

    def _ask_for_password(self, problem: str, now: float, kind: str = "info") -> List[Action]:
        """Turn the input line into a hidden password prompt (only where a person types)."""
        if self.login not in (NAMING, PASSWORD):
            self._saved_input = self.input
        self.login = PASSWORD
        self.input, self.cursor = "", 0
        self._add(kind, f"{problem} Type it and press Enter (it is not shown).", ts=now)
        return [Bell()]

    def _on_disconnected(self, event: Disconnected, now: float) -> List[Action]:
        if self.link == STOPPED:  # we gave up (kicked, banned ...): no coming back
            return []
        was_up = self.link == CONNECTED
        self._requests.lost()  # their answers are lost with the link; a /join is kept
        self.link = OFFLINE
        self.link_note = safe_text(event.reason)
        self.retry_at = now + event.retry_in
        if not was_up:  # nothing answered: whatever refused us before is not the news now
            self.server_full = False
        if self.login not in (NAMING, PASSWORD):
            self.login = LOGGED_OUT
        self._out.unsent()
        # a refused password closes it, and a full server each time: no news there
        if was_up and self.login != PASSWORD and not self.server_full:
            self._add("system", f"{self.link_note}; reconnecting", ts=now)
        return []

    # ------------------------------------------------------------------ frames

    def _on_frame(self, frame: Frame, now: float) -> List[Action]:
        handler = getattr(self, "_frame_" + frame["type"], None)
        if handler is None:
            return []
        actions: List[Action] = handler(frame, now)
        return actions

    def _frame_welcome(self, frame: Frame, now: float) -> List[Action]:
        first = not self.has_logged_in
        self.login = LOGGED_IN
        self.has_logged_in = True
        self.server_full = False
        self._password_refused = 0
        self._set_name(safe_text(frame["name"]) or self.name)
        self._welcome_rooms(frame, now)
        self._welcome_people(frame, now)
        if not self.rooms.enabled:  # with rooms, each room's members come in `joined`
            self._set_members(self.rooms.current, frame["online"])
        resume = frame.get("resume")
        self._resume = resume if isinstance(resume, str) else None
        history_id = frame.get("history_id")
        history_id = history_id if isinstance(history_id, str) else None
        if history_id != self._history_id:
            if self._history_id is not None and history_id is not None:
                self._add("system", "the server's history was reset", ts=now)
            # ids of another history mean nothing here: forget them. Nothing seen yet in a
            # named history is last_id 0: whatever it gets later, we have not seen.
            self._seen.clear()
            self._last_id = None if history_id is None else 0
            self._history_id = history_id
        if frame.get("truncated") is True:
            self._add("system", "some messages were skipped: too many to show", ts=now)
        self._take_history(frame["history"], now)
        where = self.server_name or "the server"
        if first:
            self._login_note = f"you are {self.name} on {where}; /help lists commands"
        else:
            self._login_note = f"back online as {self.name}"
        if not self._rooms_to_come:  # else it is said once the rooms' histories are in
            self._say_logged_in(now)
        log.info(
            "logged in as %r: %d history messages, last id %s%s; resending %d",
            self.name,
            len(frame["history"]),
            self._last_id,
            " (truncated)" if frame.get("truncated") is True else "",
            len(self.outbox),
        )
        self._out.start_pacing(now)
        return self._flush(now)  # with their refs: the server relays each ref once

    def _say_logged_in(self, now: float) -> None:
        if self._login_note:
            self._add("system", self._login_note, ts=now)
            self._login_note = ""

    def _take_history(self, history: List[Frame], now: float) -> None:
        for item in history:
            try:
                protocol.validate(item, protocol.SERVER_FRAMES)
            except protocol.ProtocolError:
                continue
            room = self._message_room(item) if item["type"] == "message" else None
            if room is not None:
                self._take_message(item, room, now, quiet=True)

    def _frame_error(self, frame: Frame, now: float) -> List[Action]:
        code = frame["code"]
        text = safe_text(frame["message"])
        ref = frame.get("ref")
        outgoing = self._out.find(ref)
        if code in NAME_REFUSALS and self.login != LOGGED_IN:
            return self._ask_for_name(text, now)
        if code in FATAL_ERRORS:
            return self._refused_for_good(frame, now)
        if code == "muted" and "until" in frame:
            text += f" (muted{until_text(frame['until'], now)})"
        if code == "auth_failed":
            return self._password_refused_by_server(text, now)
        if code == "timeout" and self.login in (NAMING, PASSWORD):
            return []  # the user took their time; the reconnect brings a fresh login window
        if code == "rate_limited":
            self._out.hold_off(now, frame.get("retry_after"))
            if outgoing is not None:  # it goes again, before any later one
                outgoing.sent = False
                return []
            if self._requests.again(ref):
                return []
        if outgoing is not None:
            self.outbox.remove(outgoing)
            to = outgoing.to or outgoing.room
            target = f" to {to}" if to else ""
            self._add("error", f"not sent{target}: {text} ({outgoing.text[:40]})", ts=now)
            return self._flush(now)
        room = frame.get("room")
        request = self._requests.refused(ref, room)
        if request is not None or (isinstance(room, str) and code in ROOM_ERRORS):
            return self._room_refused(request, room, text, now)
        if code == "server_full":
            return self._server_full(text, now)
        if code == "incompatible_version":
            self.link = STOPPED
            self.link_note = text
            self._add("error", f"the server refused us: {text}", ts=now)
            return [GiveUp(text)]
        self._add("error", f"server: {text}", ts=now)
        return []

    def _server_full(self, text: str, now: float) -> List[Action]:
        """server_full: say so once; the status bar counts down to each new try."""
        if not self.server_full:
            self.server_full = True
            self._add("error", f"server: {text} Trying again until there is room.", ts=now)
        return []

    def _password_refused_by_server(self, text: str, now: float) -> List[Action]:
        """auth_failed: ask again once where a person types, else give up with exit 1."""
        log.info("the server refused the password")
        self._password = None  # never try a refused password again
        self._password_refused += 1
        if self._ask_password and self._password_refused < PASSWORD_TRIES:
            return self._ask_for_password("Wrong password.", now, kind="error")
        return self._give_up(f"wrong password: the server refused it ({text})", now)

    def _ask_for_name(self, problem: str, now: float) -> List[Action]:
        refused = self.name
        if self.login != NAMING:
            self._saved_input = self.input
        self.login = NAMING
        self.input = suggest_name(refused)
        self.cursor = len(self.input)
        self._add("error", f"{problem} Type another name and press Enter.", ts=now)
        return [Bell()]

    def _frame_join(self, frame: Frame, now: float) -> List[Action]:
        room = self._presence_room(frame)
        if room is None:
            return []
        name = safe_text(frame["name"])
        if not any(names.name_key(n) == names.name_key(name) for n in room.members):
            self._set_members(room, [*room.members, name])
        self._add("system", f"{name} joined", room, ts=frame["ts"], room=self._room_field(room))
        return []

    def _frame_leave(self, frame: Frame, now: float) -> List[Action]:
        room = self._presence_room(frame)
        if room is None:
            return []
        name = safe_text(frame["name"])
        key = names.name_key(name)
        self._set_members(room, [n for n in room.members if names.name_key(n) != key])
        reason = frame.get("reason")
        why = {
            "timeout": " (timed out)",
            "disconnect": " (connection lost)",
            "slow": " (too slow)",
            "error": " (error)",
            "part": f" {room.name}",
        }.get(reason if isinstance(reason, str) else "", "")
        self._add("system", f"{name} left{why}", room, ts=frame["ts"], room=self._room_field(room))
        return []

    def _frame_message(self, frame: Frame, now: float) -> List[Action]:
        outgoing = self._out.find(frame.get("ref"))
        if outgoing is not None:
            self.outbox.remove(outgoing)
        room = self._message_room(frame)
        entry = None if room is None else self._take_message(frame, room, now, quiet=False)
        actions = self._flush(now) if outgoing is not None else []
        if room is not None and entry is not None and not entry.own:
            if self._rings(self.rooms.arrived(room, entry.mention)):
                actions.append(Bell())
        return actions

    def _take_message(self, frame: Frame, room: Room, now: float, quiet: bool) -> Optional[Entry]:
        # With a named history an id is the message; without one, ids may start over.
        key: Hashable = frame["id"] if self._history_id is not None else _message_key(frame)
        if key in self._seen:
            return None
        self._seen[key] = None
        if len(self._seen) > MAX_SEEN:
            self._seen.popitem(last=False)
        if self._last_id is None or frame["id"] > self._last_id:
            self._last_id = frame["id"]
        if self._ignores(frame, now):
            return None
        sender = safe_text(frame["from"])
        text = safe_text(frame["text"])
        to = frame.get("to")
        to_text = safe_text(to) if isinstance(to, str) else None
        own = self._is_me(sender)
        kind = "message"
        if frame.get("notice") is True:
            kind = "notice"
        elif text.startswith(ME_PREFIX) and len(text) > len(ME_PREFIX):
            kind, text = "action", text[len(ME_PREFIX) :]
        mention = not own and not quiet and (to_text is not None or self._mentions_me(text))
        about = None if to_text is not None else self._room_field(room)
        return self._add(
            kind,
            text,
            room,
            ts=frame["ts"],
            sender=sender,
            to=to_text,
            own=own,
            mention=mention,
            room=about,
        )

    def _mentions_me(self, text: str) -> bool:
        return self._mention is not None and self._mention.search(text) is not None

    def _frame_online(self, frame: Frame, now: float) -> List[Action]:
        """Who is online (without rooms), or in a room (4.2: `who` with a room)."""
        about = frame.get("room")
        asked = self._requests.answered("online", about) is not None
        listed = sorted((safe_text(n) for n in frame["names"]), key=str.casefold)
        room = self.rooms.find(about) if isinstance(about, str) else None
        if room is not None or not self.rooms.enabled:
            self._set_members(room or self.rooms.current, listed)
        if asked:
            where = f"{safe_text(about)} " if isinstance(about, str) else ""
            self._add("info", f"{where}online ({len(listed)}): {', '.join(listed)}", ts=now)
        return []

    def _frame_ping(self, frame: Frame, now: float) -> List[Action]:
        self._out.take_token(now)  # answered at once all the same: a refused pong costs nothing
        return [Send(protocol.pong(frame.get("token")))]

    def _frame_shutdown(self, frame: Frame, now: float) -> List[Action]:
        message = frame.get("message")
        message = safe_text(message) if isinstance(message, str) else ""
        if "shutting down" in message.casefold():  # it says so itself: say it once
            self._add("system", message, ts=now)
        else:
            note = f": {message}" if message else ""
            self._add("system", f"the server is shutting down{note}", ts=now)
        return []

    # ------------------------------------------------------------------ clock

    def tick(self, now: float) -> List[Action]:
        """Keepalive, paced sends and leaving; call about once a second and at `wake_at`."""
        self.now = now
        actions: List[Action] = []
        if self.link == CONNECTED:
            actions += self._keepalive(now)
        return actions + self._flush(now)

    def _keepalive(self, now: float) -> List[Action]:
        if self._ping_sent is not None:
            if now - self._ping_sent > PING_TIMEOUT:
                self._ping_sent = None
                return [Drop()]
        elif now - self._last_heard > PING_AFTER:
            self._pings += 1
            self._ping_sent = now
            self._out.take_token(now)  # sent all the same: any answer, a refusal too, is news
            return [Send(protocol.ping(f"k{self._pings}"))]
        return []

    # ------------------------------------------------------------------ sending

    def _can_send(self) -> bool:
        return self.link == CONNECTED and self.login == LOGGED_IN

    def _flush(self, now: float) -> List[Action]:
        """Send what may go now, in order: waiting questions (/who, /join ...), the oldest
        message, and while leaving the goodbye once nothing is pending (or the grace is
        over)."""
        actions: List[Action] = []
        if self._can_send():
            while self._requests.waiting() and self._out.paced(now):
                actions.append(Send(self._requests.send_next()))
            if self._out.head_waits() and self._out.paced(now):
                actions.append(Send(self._out.send_head()))
        if self._out.leave_by is None:
            return actions
        stuck = self.login in (NAMING, PASSWORD)  # nothing goes until the user answers
        if now >= self._out.leave_by or stuck:
            return actions + self._leave()
        if not self.outbox and (not self._can_send() or self._out.paced(now)):
            return actions + self._leave()
        return actions

    def _leave(self) -> List[Action]:
        """Say goodbye and exit: 1 if messages are left unsent (the caller counts them)."""
        return [Send(protocol.quit()), Exit(1 if self.outbox else 0)]

    # ------------------------------------------------------------------ keys

    _EDITS = {
        "KEY_LEFT": lineedit.left,
        "\x02": lineedit.left,  # Ctrl-B
        "KEY_RIGHT": lineedit.right,
        "\x06": lineedit.right,  # Ctrl-F
        "KEY_HOME": lineedit.home,
        "\x01": lineedit.home,  # Ctrl-A
        "KEY_END": lineedit.end,
        "\x05": lineedit.end,  # Ctrl-E
        "KEY_BACKSPACE": lineedit.backspace,
        "\x7f": lineedit.backspace,
        "\x08": lineedit.backspace,
        "KEY_DC": lineedit.delete,
        "\x15": lineedit.kill_to_start,  # Ctrl-U
        "\x0b": lineedit.kill_to_end,  # Ctrl-K
        "\x17": lineedit.delete_word_back,  # Ctrl-W
        "kLFT5": lineedit.word_left,  # Ctrl-Left
        "kRIT5": lineedit.word_right,  # Ctrl-Right
        "\x1bb": lineedit.word_left,  # Alt-B (the curses layer joins Esc and the letter)
        "\x1bf": lineedit.word_right,  # Alt-F
    }

    def handle_key(self, key: str, now: float) -> List[Action]:
        """React to one key: a typed character (or several, pasted) or a curses key name."""
        self.now = now
        if key != "\t":
            self._completion = None
        if self.login != PASSWORD and self._room_key(key):
            return []
        edit = self._EDITS.get(key)
        if edit is not None:
            self.cursor, self.input = edit(self.cursor, self.input)
            return []
        if key in ("\n", "\r", "KEY_ENTER"):
            line, self.input, self.cursor = self.input, "", 0
            return self.submit(line, now)
        if key in ("\x03",):  # Ctrl-C (raw mode, or passed on by the loop)
            return self.quit(now)
        if key == "\x04":  # Ctrl-D: leave on an empty line, else delete forward
            if not self.input:
                return self.quit(now)
            self.cursor, self.input = lineedit.delete(self.cursor, self.input)
            return []
        if self.login == PASSWORD:
            if key and not key.startswith("KEY_") and all(is_typeable(c) for c in key):
                self.cursor, self.input = lineedit.insert(
                    self.cursor, self.input, key, MAX_PASSWORD
                )
            return []  # no history, scrolling or completion while the password is typed
        if key in ("KEY_UP", "\x10"):
            self._recall(-1)
        elif key in ("KEY_DOWN", "\x0e"):
            self._recall(+1)
        elif key == "KEY_PPAGE":
            if self.scroll == 0:  # leaving the newest lines: what comes from now on is new
                self.scroll_seq = self.unread_after = self._seq
            self.scroll = min(self.max_scroll, self.scroll + max(1, self.page - 1))
        elif key == "KEY_NPAGE":
            self.scroll = max(0, self.scroll - max(1, self.page - 1))
        elif key == "\x1b":  # Esc: back to the newest lines
            self.scroll = 0
        elif key == "\t":
            self._complete()
        elif key and not key.startswith("KEY_") and all(is_typeable(c) for c in key):
            limit = protocol.MAX_NAME if self.login == NAMING else self.max_text + 1
            self.cursor, self.input = lineedit.insert(self.cursor, self.input, key, limit)
        return []

    def _recall(self, step: int) -> None:
        if self.login == NAMING or not self.history:
            return
        if self._history_pos == len(self.history):
            self._draft = self.input
        position = min(len(self.history), max(0, self._history_pos + step))
        if position == self._history_pos:
            return
        self._history_pos = position
        self.input = self.history[position] if position < len(self.history) else self._draft
        self.cursor = len(self.input)

    def _complete(self) -> None:
        """Tab: complete a command or a name online (see lanchat.chat.completion)."""
        if self.login == NAMING:
            return
        others = [name for name in self.online if not self._is_me(name)]
        known = completion.COMMANDS + (completion.OPERATOR_COMMANDS if self.operator else ())
        self.input, self.cursor, self._completion = completion.complete(
            self.input, self.cursor, others, self._completion, self.rooms.names, known
        )

    # ------------------------------------------------------------------ lines

    def submit(self, line: str, now: float) -> List[Action]:
        """Act on one finished input line: a name, a command or a message."""
        if self.login == NAMING:
            return self._submit_name(line, now)
        if self.login == PASSWORD:
            return self._submit_password(line, now)
        if not line.strip() or self.leaving:  # nothing new goes out once leaving
            return []
        secret = line.split(" ", 1)[0].lower() == commands.NAME_PASSWORD
        if not secret and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-MAX_HISTORY]
        self._history_pos = len(self.history)
        self._draft = ""
        self.scroll = 0
        if line.startswith("//"):
            return self.say(line[1:], None, now)
        if line.startswith("/"):
            return commands.run(self, line, now)
        return self.say(line, None, now)

    def _submit_name(self, line: str, now: float) -> List[Action]:
        name = line.strip()
        if name in ("/quit", "/q"):
            return self.quit(now)
        try:
            name = names.validate_name(name)
        except protocol.ProtocolError as exc:
            self.input, self.cursor = line, len(line)
            self._add("error", f"{exc.message} Try another name.", ts=now)
            return []
        self._set_name(name)
        return self._log_in_again()

    def _submit_password(self, line: str, now: float) -> List[Action]:
        if not line:
            self._add("info", "No password typed. Type it and press Enter.", ts=now)
            return []
        self._password = line
        return self._log_in_again()

    def _log_in_again(self) -> List[Action]:
        """Give the input line back and log in: now, or once connected."""
        self.login = LOGGING_IN if self.link == CONNECTED else LOGGED_OUT
        self.input, self._saved_input = self._saved_input, ""
        self.cursor = len(self.input)
        if self.link == CONNECTED:
            return [Send(self._login_frame())]
        return []

    def note(self, kind: str, text: str, now: float) -> None:
        """Add a line of our own (info, error, system) to the message pane."""
        self._add(kind, text, ts=now)

    def clear(self) -> None:
        """/clear: empty the message pane."""
        self.entries.clear()
        self.scroll = 0

    def ask_who(self, room: str, now: float) -> List[Action]:
        """/who [#room]: ask the server who is in a room (the current one unless named;
        without rooms: who is online), at its pace; offline, say so."""
        if self.login != LOGGED_IN:
            self._add("info", "not online right now; the list shows who was there", ts=now)
            return []
        if not self.rooms.enabled:
            return self._ask(protocol.who(), "online", now) if not room else self._no_rooms(now)
        return self._ask(protocol.who(room or self.rooms.current.name), "online", now)

    def _ask(self, frame: Frame, answer: str, now: float) -> List[Action]:
        """Send a question at the server's pace; `answer` is the type of its answer."""
        self._requests.ask(frame, answer)
        return self._flush(now)

    def say(self, text: str, to: Optional[str], now: float) -> List[Action]:
        """Send a message (to one person, or the current room): it joins the outbox."""
        text = text.strip()
        if not names.strip_controls(text).strip():
            return []
        if len(text) > self.max_text:
            self._add("error", f"too long: a message is at most {self.max_text} characters", ts=now)
            self.input, self.cursor = text, len(text)
            return []
        room = self.rooms.current.name if self.rooms.enabled and to is None else None
        self._out.add(text, to, now, room)
        return self._flush(now)

    def quit(self, now: float) -> List[Action]:
        """The user chose to leave: say goodbye to the server and exit, once the pending
        messages went (exit 0) or `LEAVE_GRACE` seconds are up (exit 1). Asked again
        meanwhile, leave at once."""
        if self._out.leave_by is not None:
            return self._leave()
        self._out.leave_by = now + LEAVE_GRACE
        if self.outbox:
            self._add(
                "info",
                f"sending {len(self.outbox)} pending message(s) before leaving; "
                "Ctrl-C again leaves now",
                ts=now,
            )
        return self._flush(now)
