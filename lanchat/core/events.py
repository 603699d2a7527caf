"""What the server tells a client, as typed events that no wire format has shaped yet.

The room and the session decide *what* happens (somebody joined, a message, an error); a
transport's codec decides how each event looks on its wire (`lanchat.core.transport`). Every
event is a frozen value, so one event can be encoded once per codec and the bytes shared
by every member that speaks that codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

from lanchat.protocol import Token


@dataclass(frozen=True)
class Hello:
    """The greeting on connect; `nonce` asks for a password proof."""

    server: str
    online: Tuple[str, ...]
    nonce: Optional[str] = None
    rate: Optional[float] = None  # the message rate limit a client should pace itself to
    burst: Optional[int] = None
    max_joined: Optional[int] = None  # rooms one person may be in (4.2)
    challenge: Optional[str] = None  # what a login's identity proof signs (4.3)


@dataclass(frozen=True)
class Message:
    """A relayed message; `ref` only on the sender's own copy, `to` only when private,
    `room` only when not."""

    id: int
    ts: float
    sender: str
    text: str
    to: Optional[str] = None
    ref: Optional[Token] = None
    room: Optional[str] = None
    fingerprint: Optional[str] = None  # the sender's, when its name is registered (4.3)
    notice: bool = False  # sent as a notice, never to be answered automatically (4.4)


@dataclass(frozen=True)
class Welcome:
    """A successful login: who is online and the history the client has not seen.

    For a client that speaks rooms, `rooms` are the rooms it is in (each followed by a
    `RoomJoined` with that room's history); None for a single-room client.
    """

    name: str
    online: Tuple[str, ...]
    history: Tuple[Message, ...]
    truncated: bool = False
    resume: Optional[str] = None
    history_id: Optional[str] = None
    rooms: Optional[Tuple[str, ...]] = None
    default_room: Optional[str] = None
    motd: str = ""  # 4.3: the message of the day ...
    operator: bool = False  # ... whether the newcomer is an operator ...
    away: Tuple[Tuple[str, str], ...] = ()  # ... and who of `online` is away, with the text


@dataclass(frozen=True)
class Joined:
    """Somebody came into a room (for a single-room client: logged in)."""

    name: str
    ts: float
    room: str


@dataclass(frozen=True)
class Left:
    """Somebody left a room, and why (one of protocol.LEAVE_REASONS)."""

    name: str
    ts: float
    reason: str
    room: str


PresenceChange = Union[Joined, Left]


@dataclass(frozen=True)
class Presence:
    """Several joins and leaves in their order, for clients that asked for batches."""

    changes: Tuple[PresenceChange, ...]


@dataclass(frozen=True)
class Online:
    """The online list, asked for with `who`; with `room`, that room's members."""

    names: Tuple[str, ...]
    room: Optional[str] = None
    operators: Tuple[str, ...] = ()  # those of `names` who are operators (IRC shows `@`)
    away: Tuple[str, ...] = ()  # those of `names` who are away (IRC's WHO shows `G`)


@dataclass(frozen=True)
class RoomJoined:
    """You are in a room now: its topic, members and history."""

    room: str
    topic: str
    members: Tuple[str, ...]
    history: Tuple[Message, ...]
    truncated: bool = False
    ref: Optional[Token] = None
    away: Tuple[Tuple[str, str], ...] = ()  # 4.3: who of `members` is away, with the text
    topic_by: Optional[str] = None  # 4.4: who set the topic ...
    topic_ts: Optional[float] = None  # ... and when
    operators: Tuple[str, ...] = ()  # those of `members` who are operators (IRC shows `@`)


@dataclass(frozen=True)
class RoomParted:
    """You left a room."""

    room: str
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Topic:
    """A room's topic; `by` and `ts` are absent while nobody has set it."""

    room: str
    text: str = ""
    by: Optional[str] = None
    ts: Optional[float] = None
    ref: Optional[Token] = None


@dataclass(frozen=True)
class RoomList:
    """Every room: its name, member count and topic."""

    rooms: Tuple[Tuple[str, int, str], ...]


@dataclass(frozen=True)
class Notice:
    """What the server says to people (4.3); older clients see it as a message from `*`,
    with `id` (a fresh message id, never stored)."""

    id: int
    text: str
    ts: float
    room: Optional[str] = None
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Renamed:
    """Somebody took another name (4.3)."""

    old: str
    new: str
    ts: float
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Away:
    """Somebody is away (with `text`) or back (4.3); `reply` answers a private message."""

    name: str
    ts: float
    text: Optional[str] = None
    reply: bool = False
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Whois:
    """What the server says about somebody online (4.3)."""

    name: str
    since: float
    idle: float
    rooms: Tuple[str, ...]
    registered: bool
    operator: bool
    away: Optional[str] = None
    fingerprint: Optional[str] = None
    address: Optional[str] = None  # for operators only
    ref: Optional[Token] = None
    client: Optional[str] = None  # 4.4: "lanchat", "web" or "irc"


@dataclass(frozen=True)
class Registered:
    """A name is bound to a key now (4.3)."""

    name: str
    fingerprint: str
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Unregistered:
    """A registered name was let go (4.3)."""

    name: str
    ref: Optional[Token] = None


@dataclass(frozen=True)
class NamePasswordSet:
    """Whether the member's registered name has a password now (4.4)."""

    is_set: bool
    ref: Optional[Token] = None


@dataclass(frozen=True)
class BanList:
    """The bans, as ban_list entries (4.3)."""

    bans: Tuple[Tuple[Tuple[str, Any], ...], ...]
    ref: Optional[Token] = None


@dataclass(frozen=True)
class Ping:
    """A keepalive probe."""

    token: Optional[Token] = None


@dataclass(frozen=True)
class Pong:
    """The answer to a ping."""

    token: Optional[Token] = None


@dataclass(frozen=True)
class Error:
    """An error with a contract code (protocol.ERROR_CODES) and fields that help."""

    code: str
    message: str
    ref: Optional[Token] = None
    extra: Tuple[Tuple[str, Any], ...] = field(default=())

    @property
    def fields(self) -> Dict[str, Any]:
        """The helpful fields (e.g. `retry_after`) as a dict."""
        return dict(self.extra)


@dataclass(frozen=True)
class Shutdown:
    """The server is going away."""

    message: str


Event = Union[
    Hello,
    Welcome,
    Joined,
    Left,
    Presence,
    Message,
    Online,
    RoomJoined,
    RoomParted,
    Topic,
    RoomList,
    Notice,
    Renamed,
    Away,
    Whois,
    Registered,
    Unregistered,
    NamePasswordSet,
    BanList,
    Ping,
    Pong,
    Error,
    Shutdown,
]
