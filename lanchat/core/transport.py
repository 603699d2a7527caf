"""Wire formats: how a transport turns bytes into frames and events into bytes.

A `Codec` is what a listener speaks. Per connection it makes a decoder (bytes in, lanchat
frames out, `ProtocolError` for a bad line); for everybody it encodes events. The room
encodes each event once per codec and shares the bytes among that codec's members. The
lanchat JSON-lines codec is the first; a WebSocket or IRC codec is another class like it
plus a listener, with no change to the session or the room.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Type, Union

from lanchat import protocol
from lanchat.core import events
from lanchat.protocol import Frame


class Decoder(Protocol):
    """A connection's incoming bytes, cut into frames.

    A transport may have a say of its own (the web's HTTP request and WebSocket
    handshake, pings, close): `take_reply` hands out bytes it answers itself, `opened` is
    False until lanchat frames may flow (the server starts the session then), and
    `ending` names the leave reason once the transport has ended the connection. The
    session and the chat never see any of it.
    """

    opened: bool
    ending: Optional[str]

    def feed(self, data: bytes) -> None:
        """Take bytes as they came off the socket."""

    def next_frame(self) -> Optional[Frame]:
        """The next whole frame, or None; raises ProtocolError for a bad one."""

    def take_reply(self) -> bytes:
        """Bytes the transport itself answers, handed out once (b"": none)."""

    def farewell(self, reason: str) -> bytes:
        """Bytes that go out before the server closes the connection for `reason`."""


class Codec(Protocol):
    """A wire format: one decoder per connection, one encoding per event for all."""

    name: str
    rooms: bool  # its clients see rooms; False: the default room only, without room fields
    minor: int  # the minor version of the protocol its clients speak (4.3: nick, notice ...)
    client: str  # the kind of client it serves, as whois says (4.4): lanchat, web or irc

    def for_login(self, speaks_rooms: bool, version: str) -> Codec:
        """The codec for a client whose login did or did not ask for rooms, and said this
        version."""

    def decoder(self) -> Decoder:
        """A decoder for a new connection."""

    def encode(self, event: events.Event) -> bytes:
        """The event as this wire format sends it."""

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """What turns away a new connection over the limits."""

    def tls_refusal(self, received: bytes) -> bytes:
        """What a TLS-only listener answers, in plain text, a client that spoke plain text
        (`received`: what it sent first) or, with b"", one silent for a second (b"": wait,
        its clients speak first)."""


class LineDecoder(protocol.FrameDecoder):
    """The lanchat lines: frames flow at once, and the transport has nothing to add."""

    opened = True
    ending: Optional[str] = None

    def take_reply(self) -> bytes:
        """Nothing: the session answers everything."""
        return b""

    def farewell(self, reason: str) -> bytes:
        """Nothing: the session's last frame says it."""
        return b""


class LanchatCodec:
    """The lanchat protocol: JSON objects, one per line (docs/protocol.md).

    Its flavours share the wire: one per client kind, so that each gets only frames it
    knows. `rooms`: the client speaks rooms (4.2) and its frames carry `room`; without, it
    gets exactly the frames of a server without rooms. `minor`: the minor version it
    speaks (4.3 adds nick, away, notice ...; older clients get their older equivalents).
    `lanchat_codec` hands out one instance per flavour, so each is encoded once per event.
    """

    client = "lanchat"

    def __init__(self, rooms: bool, minor: int) -> None:
        self.rooms = rooms
        self.minor = minor
        self.name = f"lanchat-4.{minor}" + ("" if rooms else "-single-room")
        self._frames: Dict[Type[Any], Callable[[Any], Frame]] = {
            events.Hello: self._hello,
            events.Welcome: self._welcome,
            events.Joined: self._presence_change,
            events.Left: self._presence_change,
            events.Presence: lambda e: protocol.presence(
                [self._presence_change(c) for c in e.changes]
            ),
            events.Message: self._message,
            events.Online: lambda e: protocol.online(e.names, e.room),
            events.RoomJoined: self._room_joined,
            events.RoomParted: lambda e: protocol.parted(e.room, e.ref),
            events.Topic: lambda e: protocol.topic(e.room, e.text, e.by, e.ts, e.ref),
            events.RoomList: lambda e: protocol.room_list(e.rooms),
            events.Notice: self._notice,
            events.Renamed: lambda e: protocol.renamed(e.old, e.new, e.ts, e.ref),
            events.Away: lambda e: protocol.away_status(e.name, e.ts, e.text, e.reply, e.ref),
            events.Whois: lambda e: protocol.whois_reply(
                e.name,
                e.since,
                e.idle,
                e.rooms,
                e.registered,
                e.operator,
                e.away,
                e.fingerprint,
                e.address,
                e.ref,
                e.client if self.minor >= 4 else None,
            ),
            events.Registered: lambda e: protocol.registered(e.name, e.fingerprint, e.ref),
            events.Unregistered: lambda e: protocol.unregistered(e.name, e.ref),
            events.NamePasswordSet: lambda e: protocol.name_password_set(e.is_set, e.ref),
            events.BanList: lambda e: protocol.ban_list([dict(b) for b in e.bans], e.ref),
            events.Ping: lambda e: protocol.ping(e.token),
            events.Pong: lambda e: protocol.pong(e.token),
            events.Error: lambda e: protocol.error(e.code, e.message, e.ref, **e.fields),
            events.Shutdown: lambda e: protocol.shutdown(e.message),
        }

    def for_login(self, speaks_rooms: bool, version: str) -> LanchatCodec:
        """The flavour for a client whose login did (or did not) say it speaks rooms, and
        said this version."""
        return lanchat_codec(speaks_rooms, protocol.minor_of(version))

    def decoder(self) -> Decoder:
        """A bounded line decoder (`protocol.FrameDecoder`)."""
        return LineDecoder()

    def encode(self, event: events.Event) -> bytes:
        """One JSON line."""
        return protocol.encode(self._frames[type(event)](event))

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """The greeting and the error."""
        return self.encode(hello) + self.encode(error)

    def tls_refusal(self, received: bytes) -> bytes:
        """The `tls_required` error, also to a silent client: it waits for our hello."""
        return protocol.encode(protocol.error("tls_required"))

    def _hello(self, event: events.Hello) -> Frame:
        frame = protocol.hello(
            event.server, event.online, event.nonce, event.rate, event.burst, event.max_joined
        )
        if event.challenge is not None:
            frame["challenge"] = event.challenge
        return frame

    def _room(self, room: Optional[str]) -> Optional[str]:
        return room if self.rooms else None

    def _message(self, event: events.Message) -> Frame:
        room = self._room(event.room)
        frame = protocol.message(
            event.id, event.ts, event.sender, event.text, event.to, event.ref, room
        )
        if event.fingerprint is not None and self.minor >= 3:
            frame["fingerprint"] = event.fingerprint
        if event.notice and self.minor >= 4:
            frame["notice"] = True
        return frame

    def _notice(self, event: events.Notice) -> Frame:
        """A notice; before 4.3 a message from `*` (no name can be `*`)."""
        if self.minor >= 3:
            return protocol.notice(event.text, event.ts, self._room(event.room), event.ref)
        room = self._room(event.room)
        return protocol.message(event.id, event.ts, "*", event.text, ref=event.ref, room=room)

    def _presence_change(self, event: Union[events.Joined, events.Left]) -> Frame:
        if isinstance(event, events.Joined):
            return protocol.join(event.name, event.ts, self._room(event.room))
        reason = "error" if event.reason == "kicked" and self.minor < 3 else event.reason
        if self.rooms:
            return protocol.leave(event.name, event.ts, reason, event.room)
        reason = "quit" if reason == "part" else reason  # 4.0 knows no part
        return protocol.leave(event.name, event.ts, reason)

    def _welcome(self, event: events.Welcome) -> Frame:
        rooms = event.rooms if self.rooms else None

        def frame(history: List[Frame], truncated: bool) -> Frame:
            return protocol.welcome(
                event.name,
                event.online,
                history,
                truncated=truncated or None,
                resume=event.resume,
                history_id=event.history_id,
                rooms=None if rooms is None else list(rooms),
                default_room=None if rooms is None else event.default_room,
                **self._since_4_3(
                    motd=event.motd or None, operator=event.operator or None, away=event.away
                ),
            )

        return self._fitted(frame, event.history, event.truncated)

    def _room_joined(self, event: events.RoomJoined) -> Frame:
        since_4_4 = self.minor >= 4  # who set the topic, and when

        def frame(history: List[Frame], truncated: bool) -> Frame:
            joined = protocol.joined(
                event.room,
                event.topic,
                event.members,
                history,
                truncated,
                event.ref,
                event.topic_by if since_4_4 else None,
                event.topic_ts if since_4_4 else None,
            )
            joined.update(self._since_4_3(away=event.away))
            return joined

        return self._fitted(frame, event.history, event.truncated)

    def _since_4_3(self, away: Tuple[Tuple[str, str], ...] = (), **fields: Any) -> Frame:
        """Fields of 4.3 (None ones left out, `away` as an object), for 4.3 clients only."""
        if self.minor < 3:
            return {}
        given = {k: v for k, v in fields.items() if v is not None}
        if away:
            given["away"] = dict(away)
        return given

    def _fitted(
        self,
        frame: Callable[[List[Frame], bool], Frame],
        messages: Sequence[events.Message],
        truncated: bool,
    ) -> Frame:
        """A frame with history, the oldest messages dropped until it fits
        max_server_frame (and then marked truncated)."""
        history = [self._message(m) for m in messages]
        while True:
            built = frame(history, truncated)
            if not history or len(protocol.encode(built)) <= protocol.MAX_SERVER_FRAME:
                return built
            history = history[len(history) // 10 + 1 :]
            truncated = True


_FLAVOURS: Dict[Tuple[bool, int], LanchatCodec] = {}


def lanchat_codec(rooms: bool, minor: int) -> LanchatCodec:
    """The lanchat codec of this flavour (minor capped at ours), one instance each."""
    minor = max(0, min(minor, protocol.MINOR))
    if (rooms, minor) not in _FLAVOURS:
        _FLAVOURS[rooms, minor] = LanchatCodec(rooms, minor)
    return _FLAVOURS[rooms, minor]


LANCHAT = lanchat_codec(True, protocol.MINOR)  # what a listener speaks until a login says
LANCHAT_SINGLE = lanchat_codec(False, 0)  # a 4.0 client's


def encode_once(codec: Codec, event: events.Event, cache: Dict[str, bytes]) -> bytes:
    """The event's bytes in this codec, encoded the first time a codec is asked for."""
    data = cache.get(codec.name)
    if data is None:
        data = cache[codec.name] = codec.encode(event)
    return data


def message_event(frame: Frame) -> events.Message:
    """A message frame (as history keeps them) as an event."""
    return events.Message(
        frame["id"],
        frame["ts"],
        frame["from"],
        frame["text"],
        frame.get("to"),
        frame.get("ref"),
        frame.get("room"),
        frame.get("fingerprint"),
        frame.get("notice", False),
    )
