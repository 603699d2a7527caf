"""The IRC gateway builds what a room's members read alike once per flavour.

Each IRC connection has a codec of its own, but a room message (JOIN, PART, QUIT, NICK,
AWAY, TOPIC) reads the same for every member whose capabilities change no byte of it:
those members get the very same bytes object, built once (`encoder.SharedLines`), while
what differs per connection (echo-message, server-time, the QUIT said once) stays right.
The codec tests feed real connections' decoders registration lines and encode events the
way the chat's fan-out does (one event, member after member); the last test checks the
same through the gateway on real sockets.
"""

from __future__ import annotations

from typing import Callable, Iterator, List

import pytest
from conftest import MakeServer
from ircclient import IrcClient

from lanchat.core import events
from lanchat.irc import lines
from lanchat.irc.encoder import IrcLinkCodec
from lanchat.irc.transport import IrcCodec, IrcDecoder

TS = 1764000000.25
ROOM = "#general"


def connection(listener: IrcCodec, nick: str, caps: str = "") -> IrcDecoder:
    """A registered IRC connection of `listener`, with these capabilities."""
    decoder = listener.decoder()
    if caps:
        decoder.feed(f"CAP REQ :{caps}\r\n".encode())
    decoder.feed(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    if caps:
        decoder.feed(b"CAP END\r\n")
    login = decoder.next_frame()
    assert login is not None and login["type"] == "login"
    decoder.take_reply()  # the CAP ACK, read past
    decoder.codec.encode(events.Welcome(nick, (nick,), ()))
    return decoder


def fan_out(event: events.Event, codecs: List[IrcLinkCodec]) -> List[bytes]:
    """The event's bytes for each connection, encoded member after member."""
    return [codec.encode(event) for codec in codecs]


@pytest.fixture
def room() -> List[IrcLinkCodec]:
    """Four connections of one listener: two plain, two with server-time, interleaved."""
    listener = IrcCodec()
    return [
        connection(listener, "ann").codec,
        connection(listener, "tim", "server-time").codec,
        connection(listener, "bob").codec,
        connection(listener, "tom", "server-time message-tags").codec,
    ]


def test_a_room_message_is_one_bytes_object_per_flavour(room: List[IrcLinkCodec]) -> None:
    message = events.Message(7, TS, "carol", "hello there", room=ROOM)
    ann, tim, bob, tom = fan_out(message, room)
    assert ann == b":carol!carol@lanchat PRIVMSG #general :hello there\r\n"
    assert tim == b"@" + lines.time_tag(TS).encode() + b" " + ann
    assert ann is bob and tim is tom
    again = fan_out(events.Message(8, TS, "carol", "hello there", room=ROOM), room)
    assert again == [ann, tim, ann, tim] and again[0] is not ann  # a new event, new bytes


def test_listeners_do_not_share_lines() -> None:
    message = events.Message(7, TS, "carol", "hi", room=ROOM)
    one, other = connection(IrcCodec(), "ann").codec, connection(IrcCodec(), "bob").codec
    assert one.encode(message) == other.encode(message)
    assert one.encode(message) is not other.encode(message)


def test_a_client_that_drops_server_time_reads_the_plain_flavour() -> None:
    listener = IrcCodec()
    plain, timed = connection(listener, "ann"), connection(listener, "tim", "server-time")
    first = events.Message(1, TS, "carol", "one", room=ROOM)
    assert timed.codec.encode(first) != plain.codec.encode(first)
    timed.feed(b"CAP REQ :-server-time\r\n")  # its ACK rides on a ping: not read here
    second = events.Message(2, TS, "carol", "two", room=ROOM)
    assert timed.codec.encode(second) is plain.codec.encode(second)


def test_the_sender_gets_its_own_message_only_with_echo_message() -> None:
    listener = IrcCodec()
    quiet = connection(listener, "una")
    echoing = connection(listener, "eve", "echo-message server-time")
    other = connection(listener, "bob").codec
    for sender in (quiet, echoing):
        sender.feed(f"PRIVMSG {ROOM} :mine\r\n".encode())
        said = sender.next_frame()
        assert said is not None and said["type"] == "say"
        name = sender.state.nick
        relayed = events.Message(9, TS, name, "mine", room=ROOM)
        own = events.Message(9, TS, name, "mine", ref=said["ref"], room=ROOM)
        assert (
            fan_out(relayed, [other, other])[0]
            == f":{name}!{name}@lanchat PRIVMSG {ROOM} mine\r\n".encode()
        )
        echoed = sender.codec.encode(own)
        if sender is quiet:
            assert echoed == b""
        else:
            assert echoed == b"@" + lines.time_tag(TS).encode() + b" " + other.encode(relayed)


def test_presence_nick_away_and_topic_lines_are_shared(room: List[IrcLinkCodec]) -> None:
    for codec in room:
        codec.state.caps.add("away-notify")
    for event in (
        events.Joined("carol", TS, ROOM),
        events.Left("carol", TS, "part", ROOM),
        events.Left("carol", TS, "kicked", ROOM),
        events.Renamed("carol", "carol.b", TS),
        events.Away("carol", TS, "lunch"),
        events.Topic(ROOM, "news", "carol", TS),
    ):
        ann, tim, bob, tom = fan_out(event, room)
        assert ann and ann is bob and tim is tom, event
        if isinstance(event, (events.Renamed, events.Away)):
            assert tim == ann  # NICK and AWAY carry no time tag
        else:
            assert tim == b"@" + lines.time_tag(TS).encode() + b" " + ann


def test_a_quit_from_two_rooms_is_one_quit_per_connection(room: List[IrcLinkCodec]) -> None:
    first = fan_out(events.Left("carol", TS, "quit", ROOM), room)
    second = fan_out(events.Left("carol", TS, "quit", "#other"), room)
    assert first[0] == b":carol!carol@lanchat QUIT Quit\r\n" and first[0] is first[2]
    assert second == [b"", b"", b"", b""]
    assert fan_out(events.Left("carol", TS + 1, "quit", "#other"), room)[0] == first[0]


def test_a_text_that_fits_one_line_is_not_rebuilt() -> None:
    text = "lcb/12345/1764000000123456789 " * 3
    assert lines.split_text(text, 400)[0] is text
    assert lines.split_text("ж" * 200, 400) == ["ж" * 200]  # 400 bytes exactly
    assert lines.split_text("", 400) == [""]


# -- through the gateway -----------------------------------------------------------------


@pytest.fixture
def irc(make_server: MakeServer) -> Iterator[Callable[..., IrcClient]]:
    """A function that registers an IRC client with the server's IRC port, in #mix."""
    clients: List[IrcClient] = []
    address = make_server(irc=True).irc_address
    assert address is not None

    def register(nick: str, caps: str = "") -> IrcClient:
        client = IrcClient(address)
        clients.append(client)
        client.register(nick, caps)
        client.send("JOIN #mix")
        client.until("366")
        return client

    yield register
    for client in clients:
        client.close()


def test_members_of_each_flavour_read_their_own_lines(irc: Callable[..., IrcClient]) -> None:
    plain, timed, echoing = irc("pia"), irc("tia", "server-time"), irc("eva", "echo-message")
    sender = irc("sid")
    sender.send("PRIVMSG #mix :to all")
    for client, tagged in ((plain, False), (timed, True), (echoing, False)):
        got = client.expect("PRIVMSG")
        assert got.source.startswith("sid!") and got.params == ["#mix", "to all"]
        assert got.tags.startswith("time=20") if tagged else not got.tags
    echoing.send("PRIVMSG #mix :from eva")
    assert echoing.expect("PRIVMSG").params == ["#mix", "from eva"]
    sender.send("PING :after")
    heard = sender.until("PONG")
    said = [m.params for m in heard if m.command == "PRIVMSG"]
    assert said == [["#mix", "from eva"]]  # its own "to all" never came back
