"""The lanchat wire protocol, major version 4: framing, frames, schemas and versions.

Pure code: no sockets, no threads, no clock. The server and the client feed received
bytes to a `FrameDecoder`, act on the frames it yields, and build every frame they send
with the constructors below and `encode`. Everything about frames that the contract
(PROTOCOL.md) decides without I/O lives here, so it can be tested alone; its rules for
names and text are in `lanchat.names`.

Errors: `ProtocolError` carries one of the contract's error codes (`ERROR_CODES`); the
decoder and the validators raise nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from lanchat import __version__

APP = "lanchat"
VERSION = __version__
MAJOR = int(VERSION.split(".")[0])
MINOR = int(VERSION.split(".")[1])

DEFAULT_PORT = 42069
PORT_SPAN = 30  # a server tries base..base+30; a client scans the same range
WEB_PORT_OFFSET = 100  # the web client's port is the lanchat port + 100 (42169), by default

MAX_FRAME = 65536  # bytes of one client frame, newline included
MAX_SERVER_FRAME = 4 * 1024 * 1024
MAX_TEXT = 2000  # code points, as sent
MAX_NAME = 24  # code points, after NFC
MAX_ROOM = 32  # code points of a room name after its '#', after NFC (4.2)
MAX_TOPIC = 300  # code points of a room topic, as sent (4.2)
MAX_DEPTH = 32  # JSON nesting
# Every integer in a frame fits 64 signed bits: SQLite holds no more (nor do many JSON readers).
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1

LOGIN_TIMEOUT = 30.0
IDLE_TIMEOUT = 120.0
MIN_HISTORY = 50  # the contract's floor for welcome.history

Frame = Dict[str, Any]
Token = Union[str, int, float]

# code -> (plain English, does the server close the connection after it)
ERROR_CODES: Dict[str, Tuple[str, bool]] = {
    "bad_frame": ("That frame is not valid lanchat JSON.", False),
    "too_long": ("That is too long.", False),
    "unknown_type": ("This server does not know that frame type.", False),
    "not_logged_in": ("Log in first.", False),
    "invalid_name": ("That name is not allowed.", False),
    "name_taken": ("That name is already online.", False),
    "incompatible_version": ("This server speaks another major version.", True),
    "auth_failed": ("Wrong or missing password.", True),
    "server_full": ("The server is full.", True),
    "rate_limited": ("Too many frames too fast; slow down.", False),
    "too_many_connections": ("Your address holds its share of connections already.", True),
    "flooding": ("Far too many frames too fast; the server hangs up.", True),
    "timeout": ("Timed out.", True),
    "bad_text": ("That text is empty once control characters are removed.", False),
    "no_such_user": ("Nobody of that name is online.", False),
    # 4.1
    "not_stored": ("The server could not store that message, so it was not sent.", False),
    "name_reclaimed": ("The person who had that name before took it back.", True),
    "server_error": ("The server failed to handle that frame.", True),
    # 4.2: rooms
    "invalid_room": ("That room name is not allowed.", False),
    "no_such_room": ("There is no room of that name.", False),
    "not_in_room": ("You are not in that room.", False),
    "last_room": ("You cannot leave the last room you are in.", False),
    "too_many_rooms": ("The server has as many rooms as it allows.", False),
    "too_many_joined": ("You are in as many rooms as the server allows.", False),
    "room_full": ("That room is full.", False),
    # 4.3: identity, registered names, operators
    "bad_identity": ("The identity proof is wrong.", True),
    "no_identity": ("You logged in without an identity key.", False),
    "name_registered": ("That name is registered to somebody else's key.", False),
    "not_operator": ("Only an operator may do that.", False),
    "kicked": ("An operator closed your connection.", True),
    "banned": ("You are banned from this server.", True),
    "muted": ("You may not speak now.", False),
    # 4.4: name passwords, TLS
    "invalid_password": ("A name password has 8 to 128 characters.", False),
    "not_registered": ("Your name is not registered.", False),
    "tls_required": (
        "This server speaks TLS only: use lanchat 4.4 or later, or a TLS client.",
        True,
    ),
}

# part: 4.2; kicked: 4.3 (older clients see "error")
LEAVE_REASONS = ("quit", "disconnect", "timeout", "slow", "error", "part", "kicked")


class ProtocolError(Exception):
    """A rule of the contract was broken; `code` is the contract's error code, `fields`
    the extra fields of its error frame (such as `retry_after`)."""

    def __init__(
        self, code: str, message: str = "", ref: Optional[Token] = None, **fields: Any
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or ERROR_CODES[code][0]
        self.ref = ref
        self.fields = fields
        super().__init__(f"{code}: {self.message}")


# ---------------------------------------------------------------------------
# Framing


class FrameDecoder:
    """Turns a byte stream, in any chunking, into frames (h11-style: feed, then pull).

    `feed(data)` stores bytes; `next_frame()` returns the next complete frame, None when
    more bytes are needed, or raises `ProtocolError` for one bad line (which is consumed,
    so the caller may go on). A line over `max_frame` bytes raises `too_long` in its turn,
    and once it is the first line buffered the decoder holds at most `max_frame` bytes of
    it: the rest is dropped as it arrives. A caller that drains the frames after every
    `feed` (as the server does) so never holds more than `max_frame` plus one chunk.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer known to hold no newline
        self._skipping = False  # inside an over-long line whose end we have not seen
        self._overflows = 0  # over-long lines waiting to be reported

    def feed(self, data: bytes) -> None:
        """Store received bytes; bytes of an over-long line are dropped at once."""
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return
            self._skipping = False
            data = data[end + 1 :]
        self._buffer += data
        self._check_overflow()

    def _check_overflow(self) -> None:
        """Drop the first line at once if it is already over-long (and count it)."""
        while not self._skipping:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                if len(self._buffer) >= self.max_frame:  # even one newline more won't fit
                    self._overflows += 1
                    self._skipping = True
                    self._buffer.clear()
                    self._scanned = 0
                return
            if end + 1 <= self.max_frame:
                return
            self._overflows += 1
            del self._buffer[: end + 1]
            self._scanned = 0

    @property
    def buffered(self) -> int:
        """How many bytes are waiting in the decoder."""
        return len(self._buffer)

    def next_frame(self) -> Optional[Frame]:
        """Return the next frame, None if incomplete; raise ProtocolError for a bad line."""
        while True:
            if self._overflows:
                self._overflows -= 1
                raise ProtocolError(
                    "too_long", f"A frame is at most {self.max_frame} bytes, newline included."
                )
            end = self._buffer.find(b"\n")
            if end < 0:
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._scanned = 0
            self._check_overflow()
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip(b" \t\r"):
                return decode_line(line)

    def frames(self) -> List[Union[Frame, ProtocolError]]:
        """Drain every complete line: frames, and the errors of bad lines, in order."""
        out: List[Union[Frame, ProtocolError]] = []
        while True:
            try:
                frame = self.next_frame()
            except ProtocolError as error:
                out.append(error)
                continue
            if frame is None:
                return out
            out.append(frame)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def decode_line(line: bytes) -> Frame:
    """Decode one line (without its newline) into a frame with a string `type`."""
    try:
        text = line.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise ProtocolError("bad_frame", "A frame must be UTF-8.") from None
    except (ValueError, RecursionError):
        raise ProtocolError("bad_frame", "A frame must be one JSON object.") from None
    if not isinstance(value, dict):
        raise ProtocolError("bad_frame", "A frame must be a JSON object.")
    if not _round_trips(value, 1):
        raise ProtocolError(
            "bad_frame", f"A frame may not nest deeper than {MAX_DEPTH} or hold lone surrogates."
        )
    if not isinstance(value.get("type"), str):
        raise ProtocolError("bad_frame", "A frame needs a string field 'type'.", ref_of(value))
    return value


def may_start_a_frame(data: Union[bytes, bytearray]) -> bool:
    """False when the first bytes of a line already show it is no JSON object (a banner,
    binary), so that a reader need not wait for the end of the line to know."""
    return data.lstrip()[:1] in (b"", b"{")


def _round_trips(value: Any, depth: int) -> bool:
    """True if the value nests at most MAX_DEPTH deep and every string is valid Unicode."""
    if isinstance(value, str):
        return _is_scalar_text(value)
    if isinstance(value, (dict, list)):
        if depth > MAX_DEPTH:
            return False
        if isinstance(value, dict):
            return all(_is_scalar_text(k) and _round_trips(v, depth + 1) for k, v in value.items())
        return all(_round_trips(v, depth + 1) for v in value)
    return True


def _is_scalar_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a \ud800 escape
        return False
    return True


def encode(frame: Frame) -> bytes:
    """Encode one frame as compact UTF-8 JSON and a newline."""
    text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


# ---------------------------------------------------------------------------
# Field validation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_token(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_frame_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "number": _is_number,
    "token": _is_token,
    "names": _is_str_list,
    "frames": _is_frame_list,
    "object": lambda v: isinstance(v, dict),
    "bool": lambda v: isinstance(v, bool),
}

# type -> {field: (kind, required)}. Unknown fields are ignored, as the contract says.
Schema = Dict[str, Dict[str, Tuple[str, bool]]]

CLIENT_FRAMES: Schema = {
    "login": {
        "name": ("str", True),
        "version": ("str", True),
        "auth": ("str", False),
        # extensions (docs/protocol.md): resume after a drop
        "last_id": ("int", False),
        "history_id": ("str", False),
        "resume": ("str", False),
        # 4.1: "batch" asks for joins and leaves in `presence` frames
        "presence": ("str", False),
        # 4.2: the rooms to be in; its presence says the client speaks rooms
        "rooms": ("names", False),
        # 4.3: {"key": public key hex, "proof": signature hex}
        "identity": ("object", False),
        # 4.4: the registered name's password, instead of `identity`
        "name_password": ("str", False),
    },
    "say": {
        "text": ("str", True),
        "to": ("str", False),
        "ref": ("token", False),
        "room": ("str", False),  # 4.2
        "notice": ("bool", False),  # 4.4: a notice, never to be answered automatically
    },
    "who": {"room": ("str", False)},
    # 4.2: rooms
    "join": {"room": ("str", True), "ref": ("token", False)},
    "part": {"room": ("str", True), "ref": ("token", False)},
    "topic": {"room": ("str", True), "text": ("str", False), "ref": ("token", False)},
    "rooms": {},
    # 4.3: identity, presence and order
    "register": {"ref": ("token", False)},
    "unregister": {"name": ("str", False), "ref": ("token", False)},
    "nick": {"name": ("str", True), "ref": ("token", False)},
    "away": {"text": ("str", False), "ref": ("token", False)},
    "whois": {"name": ("str", True), "ref": ("token", False)},
    "kick": {"name": ("str", True), "reason": ("str", False), "ref": ("token", False)},
    "ban": {
        "target": ("str", True),
        "duration": ("number", False),
        "reason": ("str", False),
        "ref": ("token", False),
    },
    "unban": {"target": ("str", True), "ref": ("token", False)},
    "bans": {"ref": ("token", False)},
    "mute": {"name": ("str", True), "duration": ("number", False), "ref": ("token", False)},
    "unmute": {"name": ("str", True), "ref": ("token", False)},
    "motd": {"text": ("str", True), "ref": ("token", False)},
    # 4.4: set (or clear) the password of your registered name
    "name_password": {"password": ("str", False), "ref": ("token", False)},
    "ping": {"token": ("token", False)},
    "pong": {"token": ("token", False)},
    "quit": {},
}

SERVER_FRAMES: Schema = {
    "hello": {
        "app": ("str", True),
        "version": ("str", True),
        "server": ("str", True),
        "online": ("names", True),
        "auth": ("str", True),
        "limits": ("object", False),
        "nonce": ("str", False),
        "challenge": ("str", False),  # 4.3
    },
    "welcome": {
        "name": ("str", True),
        "online": ("names", True),
        "history": ("frames", True),
        "resume": ("str", False),
        "history_id": ("str", False),
        "truncated": ("bool", False),
        "rooms": ("names", False),  # 4.2
        "default_room": ("str", False),
        "motd": ("str", False),  # 4.3
        "operator": ("bool", False),
        "away": ("object", False),
    },
    "join": {"name": ("str", True), "ts": ("number", True), "room": ("str", False)},
    "leave": {
        "name": ("str", True),
        "ts": ("number", True),
        "reason": ("str", False),
        "room": ("str", False),
    },
    "message": {
        "id": ("int", True),
        "ts": ("number", True),
        "from": ("str", True),
        "text": ("str", True),
        "to": ("str", False),
        "ref": ("token", False),
        "room": ("str", False),
        "fingerprint": ("str", False),  # 4.3
        "notice": ("bool", False),  # 4.4: sent as a notice
    },
    "presence": {"changes": ("frames", True)},
    "online": {"names": ("names", True), "room": ("str", False)},
    # 4.2: rooms
    "joined": {
        "room": ("str", True),
        "topic": ("str", True),
        "members": ("names", True),
        "history": ("frames", True),
        "truncated": ("bool", False),
        "ref": ("token", False),
        "away": ("object", False),  # 4.3
        "topic_by": ("str", False),  # 4.4: who set the topic ...
        "topic_ts": ("number", False),  # ... and when
    },
    "parted": {"room": ("str", True), "ref": ("token", False)},
    "topic": {
        "room": ("str", True),
        "text": ("str", True),
        "by": ("str", False),
        "ts": ("number", False),
        "ref": ("token", False),
    },
    "room_list": {"rooms": ("frames", True)},
    # 4.3: identity, presence and order
    "registered": {"name": ("str", True), "fingerprint": ("str", True), "ref": ("token", False)},
    "unregistered": {"name": ("str", True), "ref": ("token", False)},
    "nick": {
        "old": ("str", True),
        "new": ("str", True),
        "ts": ("number", True),
        "ref": ("token", False),
    },
    "away": {
        "name": ("str", True),
        "text": ("str", False),
        "reply": ("bool", False),
        "ts": ("number", True),
        "ref": ("token", False),
    },
    "whois": {
        "name": ("str", True),
        "since": ("number", True),
        "idle": ("number", True),
        "rooms": ("names", True),
        "registered": ("bool", True),
        "operator": ("bool", True),
        "away": ("str", False),
        "fingerprint": ("str", False),
        "address": ("str", False),
        "client": ("str", False),  # 4.4: "lanchat", "web" or "irc"
        "ref": ("token", False),
    },
    "notice": {
        "text": ("str", True),
        "ts": ("number", True),
        "room": ("str", False),
        "ref": ("token", False),
    },
    "ban_list": {"bans": ("frames", True), "ref": ("token", False)},
    "name_password": {"set": ("bool", True), "ref": ("token", False)},  # 4.4
    "ping": {"token": ("token", False)},
    "pong": {"token": ("token", False)},
    "error": {"code": ("str", True), "message": ("str", True), "ref": ("token", False)},
    "shutdown": {"message": ("str", False)},
}

DISCOVERY_FRAMES: Schema = {
    "discover": {"app": ("str", True), "version": ("str", True)},
    "server": {
        "app": ("str", True),
        "version": ("str", True),
        "server": ("str", True),
        "port": ("int", True),
        "users": ("int", False),
        "max_users": ("int", False),
        "web_port": ("int", False),  # 4.3: the web client's HTTP port, when served
        "irc_port": ("int", False),  # 4.4: the IRC gateway's port, when on
        "tls": ("bool", False),  # 4.4: every port speaks TLS only
        "fingerprint": ("str", False),  # 4.4: "SHA256:" and the certificate's hash
    },
}


def ref_of(frame: Frame) -> Optional[Token]:
    """The frame's `ref` if it has one of a valid type (a string or a number)."""
    ref = frame.get("ref")
    return ref if _is_token(ref) else None


def validate(frame: Frame, schema: Schema) -> Frame:
    """Check a decoded frame against a schema; raise unknown_type or bad_frame.

    A receiver that ignores unknown types (the client) catches `unknown_type` and drops
    the frame; the server answers it.
    """
    fields = schema.get(frame["type"])
    ref = ref_of(frame)
    if fields is None:
        raise ProtocolError("unknown_type", f"Unknown frame type {frame['type']!r}.", ref)
    for field, (kind, required) in fields.items():
        if field not in frame:
            if required:
                raise ProtocolError("bad_frame", f"Field {field!r} is missing.", ref)
        elif not _CHECKS[kind](frame[field]):
            raise ProtocolError("bad_frame", f"Field {field!r} has the wrong type.", ref)
        elif not _in_int_range(frame[field]):
            raise ProtocolError(
                "bad_frame", f"Field {field!r} is out of range ({MIN_INT} to {MAX_INT}).", ref
            )
    return frame


def _in_int_range(value: Any) -> bool:
    """False for an integer that does not fit 64 signed bits; True for anything else."""
    return not isinstance(value, int) or MIN_INT <= value <= MAX_INT


# ---------------------------------------------------------------------------
# Versions


def major_of(version: str) -> Optional[int]:
    """The MAJOR number of a `MAJOR.MINOR.PATCH` string, None if it has none."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() and head.isascii() else None


def minor_of(version: str) -> int:
    """The MINOR number of a `MAJOR.MINOR.PATCH` string (0 if it has none): which
    extensions a client of that version knows."""
    parts = version.split(".")
    minor = parts[1] if len(parts) > 1 else ""
    return int(minor) if minor.isdigit() and minor.isascii() else 0


def is_compatible(version: str) -> bool:
    """True when a peer of this version speaks our protocol (same MAJOR)."""
    return major_of(version) == MAJOR


# ---------------------------------------------------------------------------
# Frame constructors: the only place frames are built.


def limits(
    rate: Optional[float] = None, burst: Optional[int] = None, max_joined: Optional[int] = None
) -> Frame:
    """The limits a server announces in `hello`; `rate` and `burst` (4.1) are its frame
    limit, `max_joined` (4.2) how many rooms one person may be in."""
    frame: Frame = {
        "max_frame": MAX_FRAME,
        "max_server_frame": MAX_SERVER_FRAME,
        "max_text": MAX_TEXT,
        "max_name": MAX_NAME,
    }
    if rate is not None and burst is not None:
        frame.update(rate=rate, burst=burst)
    if max_joined is not None:
        frame.update(max_room=MAX_ROOM, max_topic=MAX_TOPIC, max_joined=max_joined)
    return frame


def hello(
    server: str,
    online: Sequence[str],
    nonce: Optional[str] = None,
    rate: Optional[float] = None,
    burst: Optional[int] = None,
    max_joined: Optional[int] = None,
) -> Frame:
    """The server's greeting; with a nonce it asks for a password proof, with a rate and a
    burst it tells clients how fast they may send, with `max_joined` that it has rooms."""
    frame: Frame = {
        "type": "hello",
        "app": APP,
        "version": VERSION,
        "server": server,
        "online": [] if nonce else list(online),
        "auth": "password" if nonce else "none",
        "limits": limits(rate, burst, max_joined),
    }
    if nonce:
        frame["nonce"] = nonce
    return frame


def login(
    name: str,
    auth: Optional[str] = None,
    last_id: Optional[int] = None,
    history_id: Optional[str] = None,
    resume: Optional[str] = None,
    rooms: Optional[Sequence[str]] = None,
    identity: Optional[Frame] = None,
    name_password: Optional[str] = None,
) -> Frame:
    """A client's login; the optional fields are the resume extension, a password proof,
    (4.2) the rooms to be in, which says the client speaks rooms, (4.3) the proof of
    its identity key: {"key": hex, "proof": hex}, and (4.4) the name's password."""
    frame: Frame = {"type": "login", "name": name, "version": VERSION}
    for field, value in (
        ("auth", auth),
        ("last_id", last_id),
        ("history_id", history_id),
        ("resume", resume),
        ("rooms", None if rooms is None else list(rooms)),
        ("identity", identity),
        ("name_password", name_password),
    ):
        if value is not None:
            frame[field] = value
    return frame


def welcome(
    name: str,
    online: Sequence[str],
    history: Sequence[Frame],
    **extensions: Any,
) -> Frame:
    """The server's answer to a successful login."""
    frame: Frame = {"type": "welcome", "name": name, "online": list(online)}
    frame["history"] = list(history)
    frame.update({k: v for k, v in extensions.items() if v is not None})
    return frame


def join(name: str, ts: float, room: Optional[str] = None) -> Frame:
    """Somebody logged in; with `room` (4.2), came into that room."""
    frame: Frame = {"type": "join", "name": name, "ts": ts}
    if room is not None:
        frame["room"] = room
    return frame


def leave(name: str, ts: float, reason: str, room: Optional[str] = None) -> Frame:
    """Somebody left, and why; with `room` (4.2), left that room."""
    if reason not in LEAVE_REASONS:
        raise ValueError(f"unknown leave reason {reason!r}")
    frame: Frame = {"type": "leave", "name": name, "ts": ts, "reason": reason}
    if room is not None:
        frame["room"] = room
    return frame


def presence(changes: Sequence[Frame]) -> Frame:
    """Several `join` and `leave` frames in their order (4.1, for clients that asked)."""
    return {"type": "presence", "changes": list(changes)}


def say(
    text: str,
    to: Optional[str] = None,
    ref: Optional[Token] = None,
    room: Optional[str] = None,
    notice: bool = False,
) -> Frame:
    """A client's message to the (default) room, to `room` (4.2), or to one user with `to`;
    `notice` (4.4) marks it as a notice, which nobody's program answers automatically."""
    frame: Frame = {"type": "say", "text": text}
    for field, value in (("to", to), ("ref", ref), ("room", room)):
        if value is not None:
            frame[field] = value
    if notice:
        frame["notice"] = True
    return frame


def message(
    id: int,
    ts: float,
    sender: str,
    text: str,
    to: Optional[str] = None,
    ref: Optional[Token] = None,
    room: Optional[str] = None,
) -> Frame:
    """A relayed message; `ref` only on the sender's own copy, `room` (4.2) for clients
    that speak rooms."""
    frame: Frame = {"type": "message", "id": id, "ts": ts, "from": sender, "text": text}
    for field, value in (("to", to), ("ref", ref), ("room", room)):
        if value is not None:
            frame[field] = value
    return frame


def who(room: Optional[str] = None) -> Frame:
    """Ask for the online list; with `room` (4.2), for that room's members."""
    return {"type": "who"} if room is None else {"type": "who", "room": room}


def join_room(room: str, ref: Optional[Token] = None) -> Frame:
    """Ask to come into a room, making it if new (4.2)."""
    frame: Frame = {"type": "join", "room": room}
    if ref is not None:
        frame["ref"] = ref
    return frame


def part_room(room: str, ref: Optional[Token] = None) -> Frame:
    """Ask to leave a room (4.2)."""
    frame: Frame = {"type": "part", "room": room}
    if ref is not None:
        frame["ref"] = ref
    return frame


def set_topic(room: str, text: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """Set a room's topic, or without `text` ask for it (4.2)."""
    frame: Frame = {"type": "topic", "room": room}
    for field, value in (("text", text), ("ref", ref)):
        if value is not None:
            frame[field] = value
    return frame


def list_rooms() -> Frame:
    """Ask for every room (4.2)."""
    return {"type": "rooms"}


def online(names: Sequence[str], room: Optional[str] = None) -> Frame:
    """The online list; with `room` (4.2), that room's members."""
    frame: Frame = {"type": "online", "names": list(names)}
    if room is not None:
        frame["room"] = room
    return frame


def joined(
    room: str,
    topic: str,
    members: Sequence[str],
    history: Sequence[Frame],
    truncated: bool = False,
    ref: Optional[Token] = None,
    topic_by: Optional[str] = None,
    topic_ts: Optional[float] = None,
) -> Frame:
    """You are in a room now: its topic (who set it and when, 4.4), members and history
    (4.2)."""
    frame: Frame = {
        "type": "joined",
        "room": room,
        "topic": topic,
        "members": list(members),
        "history": list(history),
    }
    if truncated:
        frame["truncated"] = True
    if ref is not None:
        frame["ref"] = ref
    return _with(frame, topic_by=topic_by, topic_ts=topic_ts)


def parted(room: str, ref: Optional[Token] = None) -> Frame:
    """You left a room (4.2)."""
    frame: Frame = {"type": "parted", "room": room}
    if ref is not None:
        frame["ref"] = ref
    return frame


def topic(
    room: str,
    text: str,
    by: Optional[str] = None,
    ts: Optional[float] = None,
    ref: Optional[Token] = None,
) -> Frame:
    """A room's topic, who set it and when (4.2)."""
    frame: Frame = {"type": "topic", "room": room, "text": text}
    for field, value in (("by", by), ("ts", ts), ("ref", ref)):
        if value is not None:
            frame[field] = value
    return frame


def room_list(rooms: Sequence[Tuple[str, int, str]]) -> Frame:
    """Every room, as (name, member count, topic) (4.2)."""
    entries = [{"room": name, "members": count, "topic": text} for name, count, text in rooms]
    return {"type": "room_list", "rooms": entries}


# 4.3: identity, presence and order. Optional fields are left out when None.


def _with(frame: Frame, **optional: Any) -> Frame:
    frame.update({k: v for k, v in optional.items() if v is not None})
    return frame


def identity_proof_message(challenge: str, name: str) -> bytes:
    """What a login's identity proof signs: a label, the challenge's bytes, the name."""
    return b"lanchat identity\n" + bytes.fromhex(challenge) + name.encode("utf-8")


def register(ref: Optional[Token] = None) -> Frame:
    """Bind the name you are logged in under to your identity key."""
    return _with({"type": "register"}, ref=ref)


def unregister(name: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """Let your registered name go (an operator: any name)."""
    return _with({"type": "unregister"}, name=name, ref=ref)


def name_password(password: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """(4.4) Set the password of your registered name; without one, clear it."""
    return _with({"type": "name_password"}, password=password, ref=ref)


def name_password_set(is_set: bool, ref: Optional[Token] = None) -> Frame:
    """(4.4) The server's answer: whether the name now has a password."""
    return _with({"type": "name_password", "set": is_set}, ref=ref)


def nick(name: str, ref: Optional[Token] = None) -> Frame:
    """Rename yourself."""
    return _with({"type": "nick", "name": name}, ref=ref)


def away(text: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """Mark yourself away (with a text) or back (without)."""
    return _with({"type": "away"}, text=text, ref=ref)


def whois(name: str, ref: Optional[Token] = None) -> Frame:
    """Ask about somebody."""
    return _with({"type": "whois", "name": name}, ref=ref)


def kick(name: str, reason: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """An operator closes somebody's connection."""
    return _with({"type": "kick", "name": name}, reason=reason, ref=ref)


def ban(
    target: str,
    duration: Optional[float] = None,
    reason: Optional[str] = None,
    ref: Optional[Token] = None,
) -> Frame:
    """An operator bans a name (its identity, if registered) or an address."""
    return _with({"type": "ban", "target": target}, duration=duration, reason=reason, ref=ref)


def unban(target: str, ref: Optional[Token] = None) -> Frame:
    """An operator lifts a ban."""
    return _with({"type": "unban", "target": target}, ref=ref)


def bans(ref: Optional[Token] = None) -> Frame:
    """An operator asks for the bans."""
    return _with({"type": "bans"}, ref=ref)


def mute(name: str, duration: Optional[float] = None, ref: Optional[Token] = None) -> Frame:
    """An operator stops somebody from speaking."""
    return _with({"type": "mute", "name": name}, duration=duration, ref=ref)


def unmute(name: str, ref: Optional[Token] = None) -> Frame:
    """An operator lets somebody speak again."""
    return _with({"type": "unmute", "name": name}, ref=ref)


def motd(text: str, ref: Optional[Token] = None) -> Frame:
    """An operator sets the message of the day ("" clears it)."""
    return _with({"type": "motd", "text": text}, ref=ref)


def registered(name: str, fingerprint: str, ref: Optional[Token] = None) -> Frame:
    """Your name is bound to your key now."""
    return _with({"type": "registered", "name": name, "fingerprint": fingerprint}, ref=ref)


def unregistered(name: str, ref: Optional[Token] = None) -> Frame:
    """A registered name was let go."""
    return _with({"type": "unregistered", "name": name}, ref=ref)


def renamed(old: str, new: str, ts: float, ref: Optional[Token] = None) -> Frame:
    """Somebody (or you) took another name."""
    return _with({"type": "nick", "old": old, "new": new, "ts": ts}, ref=ref)


def away_status(
    name: str,
    ts: float,
    text: Optional[str] = None,
    reply: bool = False,
    ref: Optional[Token] = None,
) -> Frame:
    """Somebody is away (with `text`) or back; `reply` when it answers your private message."""
    frame = _with({"type": "away", "name": name}, text=text, reply=reply or None, ref=ref)
    frame["ts"] = ts
    return frame


def whois_reply(
    name: str,
    since: float,
    idle: float,
    rooms: Sequence[str],
    registered: bool,
    operator: bool,
    away: Optional[str] = None,
    fingerprint: Optional[str] = None,
    address: Optional[str] = None,
    ref: Optional[Token] = None,
    client: Optional[str] = None,
) -> Frame:
    """What the server can say about somebody online (`client`, 4.4: which kind of client
    they use)."""
    frame: Frame = {
        "type": "whois",
        "name": name,
        "since": since,
        "idle": idle,
        "rooms": list(rooms),
        "registered": registered,
        "operator": operator,
    }
    return _with(frame, away=away, fingerprint=fingerprint, address=address, client=client, ref=ref)


def notice(text: str, ts: float, room: Optional[str] = None, ref: Optional[Token] = None) -> Frame:
    """What the server says to a room's members or to one client."""
    return _with({"type": "notice", "text": text, "ts": ts}, room=room, ref=ref)


def ban_list(entries: Sequence[Frame], ref: Optional[Token] = None) -> Frame:
    """The bans: each {"target", "kind", "by", "reason", "until"?}."""
    return _with({"type": "ban_list", "bans": list(entries)}, ref=ref)


def ping(token: Optional[Token] = None) -> Frame:
    """A keepalive probe."""
    return {"type": "ping"} if token is None else {"type": "ping", "token": token}


def pong(token: Optional[Token] = None) -> Frame:
    """The answer to a ping, with its token."""
    return {"type": "pong"} if token is None else {"type": "pong", "token": token}


def quit() -> Frame:
    """A client leaving on purpose."""
    return {"type": "quit"}


def error(code: str, message: str = "", ref: Optional[Token] = None, **extra: Any) -> Frame:
    """An error frame with the contract's code and a message for a person."""
    if code not in ERROR_CODES:
        raise ValueError(f"unknown error code {code!r}")
    frame: Frame = {"type": "error", "code": code, "message": message or ERROR_CODES[code][0]}
    if ref is not None:
        frame["ref"] = ref
    frame.update(extra)
    return frame


def error_from(exc: ProtocolError, **extra: Any) -> Frame:
    """The error frame that reports a ProtocolError, with its fields."""
    return error(exc.code, exc.message, exc.ref, **exc.fields, **extra)


def closes_connection(code: str) -> bool:
    """True for error codes after which the server always closes the connection."""
    return ERROR_CODES[code][1]


def shutdown(text: str) -> Frame:
    """The server is going away."""
    return {"type": "shutdown", "message": text}


def discover() -> Frame:
    """A LAN discovery probe (UDP)."""
    return {"type": "discover", "app": APP, "version": VERSION}


def server_info(
    name: str,
    port: int,
    users: int,
    max_users: int,
    web_port: Optional[int] = None,
    irc_port: Optional[int] = None,
    fingerprint: Optional[str] = None,
) -> Frame:
    """A server's answer to a discovery probe (`web_port`: where its web client is;
    `irc_port`: its IRC gateway; `fingerprint`: its TLS certificate's, when on TLS)."""
    frame = {
        "type": "server",
        "app": APP,
        "version": VERSION,
        "server": name,
        "port": port,
        "users": users,
        "max_users": max_users,
    }
    tls = True if fingerprint is not None else None
    return _with(frame, web_port=web_port, irc_port=irc_port, tls=tls, fingerprint=fingerprint)


def password_proof(password: str, nonce: str, name: str) -> str:
    """The login `auth` field: hex HMAC-SHA256(password; nonce bytes + name)."""
    key = password.encode("utf-8")
    return hmac.new(key, bytes.fromhex(nonce) + name.encode("utf-8"), hashlib.sha256).hexdigest()
