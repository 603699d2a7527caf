"""The IRC gateway keeps NOTICE a notice (protocol 4.4): a NOTICE from IRC reaches IRC
members as NOTICE and lanchat members as a message marked `notice`, and back; the echo
and the history replay on JOIN keep it. Real sockets to in-process servers, spoken to by
`ircclient` (a raw IRC client written without lanchat's code) and `wire.RawClient`."""

from __future__ import annotations

from types import SimpleNamespace

from ircclient import IrcClient, Msg
from test_irc_gateway import chat, heard, join
from wire import RawClient

from lanchat import protocol

__all__ = ["chat"]  # a fixture, shared with the gateway's other tests


def next_said(client: IrcClient) -> Msg:
    """The next PRIVMSG or NOTICE that is not from the server."""
    while True:
        got = client.recv()
        if got.command in ("PRIVMSG", "NOTICE") and "!" in got.source:
            return got


def member_44(chat: SimpleNamespace, name: str, room: str) -> RawClient:
    """A lanchat 4.4 client, logged in and in `room`."""
    client = RawClient(chat.lanchat)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": protocol.VERSION, "rooms": [room]})
    client.expect("welcome", name=name)
    client.expect("joined", room=room)
    return client


def test_a_notice_to_a_channel_is_a_notice_for_irc_and_lanchat_members(chat) -> None:  # type: ignore[no-untyped-def]
    lan = member_44(chat, "lena", "#n")
    ivan = chat.irc("ivan")
    join(ivan, "#n")
    tim = chat.irc("tim", caps="server-time")  # another flavour of the shared lines
    join(tim, "#n")
    ida = chat.irc("ida")
    join(ida, "#n")
    ivan.send("NOTICE #n :build 812 passed")
    for member in (tim, ida):
        said = next_said(member)
        assert (said.command, said.params) == ("NOTICE", ["#n", "build 812 passed"])
        assert said.source.startswith("ivan!")
    frame = heard(lan, "message", text="build 812 passed")
    assert frame["notice"] is True and frame["room"] == "#n"
    ivan.send("PRIVMSG #n :and a word")
    for member in (tim, ida):
        assert next_said(member).command == "PRIVMSG"
    assert "notice" not in heard(lan, "message", text="and a word")


def test_a_private_notice_is_a_notice_both_ways(chat) -> None:  # type: ignore[no-untyped-def]
    lan = member_44(chat, "lena", "#p")
    ivan = chat.irc("ivan")
    ida = chat.irc("ida")
    ivan.send("NOTICE ida :psst")
    said = next_said(ida)
    assert (said.command, said.params) == ("NOTICE", ["ida", "psst"])
    ivan.send("NOTICE lena :to lanchat")
    frame = heard(lan, "message", text="to lanchat")
    assert frame["notice"] is True and frame["to"] == "lena"
    lan.send({"type": "say", "text": "from lanchat", "to": "ivan", "notice": True})
    said = next_said(ivan)
    assert (said.command, said.params) == ("NOTICE", ["ivan", "from lanchat"])


def test_a_lanchat_notice_reaches_a_channel_as_notice(chat) -> None:  # type: ignore[no-untyped-def]
    lan = member_44(chat, "lena", "#l")
    ivan = chat.irc("ivan")
    join(ivan, "#l")
    lan.send({"type": "say", "text": "deploying", "room": "#l", "notice": True})
    said = next_said(ivan)
    assert (said.command, said.params) == ("NOTICE", ["#l", "deploying"])
    assert said.source.startswith("lena!")


def test_echo_message_echoes_a_notice_as_notice(chat) -> None:  # type: ignore[no-untyped-def]
    ivan = chat.irc("ivan", caps="echo-message")
    join(ivan, "#e")
    ivan.send("NOTICE #e :echoed")
    said = next_said(ivan)
    assert (said.command, said.params) == ("NOTICE", ["#e", "echoed"])
    ivan.send("PRIVMSG #e :echoed too")
    assert next_said(ivan).command == "PRIVMSG"


def test_the_history_replayed_on_join_keeps_notices(chat) -> None:  # type: ignore[no-untyped-def]
    ivan = chat.irc("ivan", caps="echo-message")
    join(ivan, "#h")
    ivan.send("NOTICE #h :a notice")
    ivan.send("PRIVMSG #h :a message")
    next_said(ivan), next_said(ivan)  # both stored before anybody else joins
    watcher = chat.irc("wes")
    join(watcher, "#h")
    assert [(m.command, m.params[-1]) for m in (next_said(watcher), next_said(watcher))] == [
        ("NOTICE", "a notice"),
        ("PRIVMSG", "a message"),
    ]


def test_a_notice_to_somebody_away_is_not_answered_with_301(chat) -> None:  # type: ignore[no-untyped-def]
    ivan = chat.irc("ivan")
    ida = chat.irc("ida")
    ida.send("AWAY :lunch")
    ida.expect("306")
    ivan.send("NOTICE ida :fyi")
    ivan.send("PING :after-notice")
    assert "301" not in [m.command for m in ivan.until("PONG")]
    ivan.send("PRIVMSG ida :hello?")
    assert ivan.expect("301").params[1:] == ["ida", "lunch"]
