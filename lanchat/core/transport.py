"""Wire formats: how a transport turns bytes into frames and events into bytes.

A `Codec` is what a listener speaks. Per connection it makes a decoder (bytes in, lanchat
frames out, `ProtocolError` for a bad line); for everybody it encodes events. The room
encodes each event once per codec and shares the bytes among that codec's members. The
lanchat JSON-lines codec is the first; a WebSocket or IRC codec is another class like it
plus a listener, with no change to the session or the room.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Protocol, Type

from lanchat import protocol
from lanchat.core import events
from lanchat.protocol import Frame


class Decoder(Protocol):
    """A connection's incoming bytes, cut into frames."""

    def feed(self, data: bytes) -> None:
        """Take bytes as they came off the socket."""

    def next_frame(self) -> Optional[Frame]:
        """The next whole frame, or None; raises ProtocolError for a bad one."""


class Codec(Protocol):
    """A wire format: one decoder per connection, one encoding per event for all."""

    name: str

    def decoder(self) -> Decoder:
        """A decoder for a new connection."""

    def encode(self, event: events.Event) -> bytes:
        """The event as this wire format sends it."""


def _message(event: events.Message) -> Frame:
    return protocol.message(event.id, event.ts, event.sender, event.text, event.to, event.ref)


def _welcome(event: events.Welcome) -> Frame:
    """The welcome frame, with the oldest history dropped until it fits max_server_frame."""
    history = [_message(m) for m in event.history]
    cut = event.truncated
    while True:
        frame = protocol.welcome(
            event.name,
            event.online,
            history,
            truncated=cut or None,
            resume=event.resume,
            history_id=event.history_id,
        )
        if not history or len(protocol.encode(frame)) <= protocol.MAX_SERVER_FRAME:
            return frame
        history = history[len(history) // 10 + 1 :]
        cut = True


def _presence_change(event: Any) -> Frame:
    if isinstance(event, events.Joined):
        return protocol.join(event.name, event.ts)
    return protocol.leave(event.name, event.ts, event.reason)


def _error(event: events.Error) -> Frame:
    return protocol.error(event.code, event.message, event.ref, **event.fields)


_FRAMES: Dict[Type[Any], Callable[[Any], Frame]] = {
    events.Hello: lambda e: protocol.hello(e.server, e.online, e.nonce, e.rate, e.burst),
    events.Welcome: _welcome,
    events.Joined: _presence_change,
    events.Left: _presence_change,
    events.Presence: lambda e: protocol.presence([_presence_change(c) for c in e.changes]),
    events.Message: _message,
    events.Online: lambda e: protocol.online(e.names),
    events.Ping: lambda e: protocol.ping(e.token),
    events.Pong: lambda e: protocol.pong(e.token),
    events.Error: _error,
    events.Shutdown: lambda e: protocol.shutdown(e.message),
}


class LanchatCodec:
    """The lanchat protocol: JSON objects, one per line (docs/protocol.md)."""

    name = "lanchat"

    def decoder(self) -> Decoder:
        """A bounded line decoder (`protocol.FrameDecoder`)."""
        return protocol.FrameDecoder()

    def encode(self, event: events.Event) -> bytes:
        """One JSON line."""
        return protocol.encode(_FRAMES[type(event)](event))


LANCHAT = LanchatCodec()


def encode_once(codec: Codec, event: events.Event, cache: Dict[str, bytes]) -> bytes:
    """The event's bytes in this codec, encoded the first time a codec is asked for."""
    data = cache.get(codec.name)
    if data is None:
        data = cache[codec.name] = codec.encode(event)
    return data


def message_event(frame: Frame) -> events.Message:
    """A message frame (as history keeps them) as an event."""
    return events.Message(
        frame["id"], frame["ts"], frame["from"], frame["text"], frame.get("to"), frame.get("ref")
    )
