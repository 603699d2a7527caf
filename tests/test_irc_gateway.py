"""The IRC gateway: IRC clients in lanchat's rooms, beside lanchat clients.

Real sockets to in-process servers with `--irc`, spoken to by `ircclient` (a raw IRC
client written without lanchat's code) and `wire.RawClient` (a raw lanchat client).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Iterator, List

import pytest
from conftest import MakeServer
from ircclient import IrcClient, Msg
from wire import RawClient
from wire43 import register, welcome_43

ROOMS_VERSION = "4.3.0"


@pytest.fixture
def chat(make_server: MakeServer) -> Iterator[SimpleNamespace]:
    """A server with IRC on; `.irc` its IRC address, `.lanchat` its lanchat address."""
    clients: List[IrcClient] = []
    server = make_server(irc=True)
    assert server.irc_address is not None

    def irc(nick: str = "", caps: str = "") -> IrcClient:
        client = IrcClient(server.irc_address)
        clients.append(client)
        if nick:
            client.register(nick, caps)
        return client

    yield SimpleNamespace(server=server, irc=irc, lanchat=server.address)
    for client in clients:
        client.close()


def lanchat_member(address, name: str, rooms: List[str]) -> RawClient:  # type: ignore[no-untyped-def]
    """A lanchat client that speaks rooms, logged in and in `rooms`."""
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": ROOMS_VERSION, "rooms": rooms})
    client.expect("welcome", name=name)
    for _ in rooms or ["#general"]:
        client.expect("joined")
    return client


def heard(client: RawClient, kind: str, **fields: object) -> dict:
    """The next lanchat frame of this type with these fields, past any others."""
    while True:
        frame = client.recv()
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


def join(client: IrcClient, room: str) -> None:
    """JOIN a channel and read up to its end of NAMES."""
    client.send(f"JOIN {room}")
    while client.recv().params[1:2] != [room] or client.seen[-1].command != "366":
        pass


def commands(lines: List[Msg]) -> List[str]:
    return [m.command for m in lines]


# -- registration ------------------------------------------------------------------------


def test_registration_without_cap_gives_001_to_005_lusers_and_motd(chat) -> None:  # type: ignore[no-untyped-def]
    got = chat.irc().register("ann")
    seen = commands(got)
    for code in ("001", "002", "003", "004", "005", "251"):
        assert code in seen
    assert seen[-1] == "422"  # no message of the day
    assert got[0].params[0] == "ann"
    isupport = next(m for m in got if m.command == "005").params
    for token in ("CHANTYPES=#", "UTF8ONLY", "NICKLEN=24", "TOPICLEN=300", "CHANNELLEN=33"):
        assert token in isupport


def test_cap_ls_302_offers_and_acks_the_capabilities(chat) -> None:  # type: ignore[no-untyped-def]
    client = chat.irc()
    client.send("CAP LS 302")
    ls = client.expect("CAP")
    assert ls.params[:2] == ["*", "LS"]
    offered = ls.params[2].split()
    for cap in ("server-time", "message-tags", "echo-message", "away-notify", "multi-prefix"):
        assert cap in offered
    client.send("NICK bea")
    client.send("USER bea 0 * :Bea")
    client.send("CAP REQ :server-time echo-message")
    assert client.expect("CAP").params[1:] == ["ACK", "server-time echo-message"]
    client.send("CAP REQ :no-such-cap")
    assert client.expect("CAP").params[1] == "NAK"
    client.send("PING :early")  # registration waits for CAP END, but PING is answered
    assert client.expect("PONG").params[-1] == "early"
    client.send("CAP END")
    assert client.expect("001").params[0] == "bea"


def test_commands_before_registration_are_451(chat) -> None:  # type: ignore[no-untyped-def]
    client = chat.irc()
    client.send("JOIN #general")
    assert client.expect("451")


def test_a_nick_in_use_is_433_and_another_nick_registers(chat) -> None:  # type: ignore[no-untyped-def]
    chat.irc("cid")
    client = chat.irc()
    client.send("NICK CID")
    client.send("USER cid 0 * :x")
    assert client.expect("433").params[1] == "CID"
    client.send("NICK cid2")
    assert client.expect("001").params[0] == "cid2"


def test_a_bad_nick_is_432(chat) -> None:  # type: ignore[no-untyped-def]
    client = chat.irc()
    for nick in ("bang!", "dot.ted", "Pаypal"):  # (a Cyrillic а among Latin letters)
        client.send(f"NICK {nick}")
        assert client.expect("432")


def test_user_twice_is_462_and_too_few_parameters_461(chat) -> None:  # type: ignore[no-untyped-def]
    client = chat.irc("dee")
    client.send("USER dee 0 * :again")
    assert client.expect("462")
    client.send("JOIN")
    assert client.expect("461").params[1] == "JOIN"
    client.send("FROB x")
    assert client.expect("421").params[1] == "FROB"


# -- rooms and messages ------------------------------------------------------------------


def test_an_irc_client_and_a_lanchat_client_chat_both_ways(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#dev"])
    irc = chat.irc("ivan")
    irc.send("JOIN #dev")
    join = irc.expect("JOIN", "#dev")
    assert join.source.startswith("ivan!") and join.params == ["#dev"]
    names = irc.expect("353")
    assert names.params[2] == "#dev" and set(names.params[3].split()) == {"lena", "ivan"}
    irc.expect("366", "ivan", "#dev")
    heard(lan, "join", name="ivan", room="#dev")
    irc.send("PRIVMSG #dev :hello from irc")
    said = heard(lan, "message", room="#dev")
    assert said["from"] == "ivan" and said["text"] == "hello from irc"
    lan.send({"type": "say", "text": "hello from lanchat", "room": "#dev"})
    line = irc.expect("PRIVMSG")
    assert line.source.startswith("lena!")
    assert line.params == ["#dev", "hello from lanchat"]
    assert not line.tags  # no server-time asked for


def test_private_messages_both_ways_and_401(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", [])
    irc = chat.irc("ivan")
    irc.send("PRIVMSG lena :psst")
    got = heard(lan, "message", to="lena")
    assert got["from"] == "ivan" and got["text"] == "psst"
    lan.send({"type": "say", "text": "yes?", "to": "ivan"})
    line = irc.expect("PRIVMSG")
    assert line.params == ["ivan", "yes?"] and line.source.startswith("lena!")
    irc.send("PRIVMSG nobody :hi")
    assert irc.expect("401").params[1] == "nobody"
    irc.send("PRIVMSG")
    irc.expect("411")
    irc.send("PRIVMSG lena")
    irc.expect("412")


def test_server_time_and_echo_message(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("tim", caps="server-time echo-message")
    join(irc, "#t")
    irc.send("PRIVMSG #t :echoed")
    echo = irc.expect("PRIVMSG")
    assert echo.params == ["#t", "echoed"] and echo.source.startswith("tim!")
    assert echo.tags.startswith("time=20") and echo.tags.endswith("Z")


def test_without_echo_message_your_own_message_is_not_sent_back(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("una")
    join(irc, "#u")
    irc.send("PRIVMSG #u :not echoed")
    irc.send("PING :after")
    got = irc.until("PONG")
    assert "PRIVMSG" not in commands(got)


def test_history_is_replayed_on_join_with_time_tags(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#log"])
    lan.send({"type": "say", "text": "said before", "room": "#log"})
    heard(lan, "message", room="#log")
    irc = chat.irc("hal", caps="server-time")
    join(irc, "#log")
    old = irc.expect("PRIVMSG")
    assert old.params == ["#log", "said before"] and old.tags.startswith("time=")


def test_a_long_lanchat_message_is_split_into_lines_that_fit(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#long"])
    irc = chat.irc("ivan")
    join(irc, "#long")
    text = "ж" * 1500  # 3000 bytes of UTF-8
    lan.send({"type": "say", "text": text, "room": "#long"})
    pieces = []
    while sum(len(p) for p in pieces) < len(text):
        pieces.append(irc.expect("PRIVMSG", "#long").params[1])
    assert len(pieces) >= 6 and "".join(pieces) == text


def test_action_is_ctcp_action_both_ways(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#act"])
    irc = chat.irc("ivan")
    join(irc, "#act")
    irc.send("PRIVMSG #act :\x01ACTION waves\x01")
    assert heard(lan, "message", room="#act")["text"] == "/me waves"
    lan.send({"type": "say", "text": "/me nods", "room": "#act"})
    assert irc.expect("PRIVMSG", "#act").params[1] == "\x01ACTION nods\x01"


def test_part_and_442(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#p"])
    irc = chat.irc("ivan")
    join(irc, "#p")
    irc.send("PART #p :bye")
    assert irc.expect("PART").params[0] == "#p"
    heard(lan, "leave", name="ivan", room="#p")
    irc.send("PART #p")
    assert irc.expect("442").params[1] == "#p"
    irc.send("PRIVMSG #p :hi")
    assert irc.expect("404").params[1] == "#p"
    irc.send("JOIN nohash")
    assert irc.expect("403").params[1] == "nohash"


def test_a_lanchat_member_joining_and_leaving_is_join_and_part(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("ivan")
    join(irc, "#j")
    lan = lanchat_member(chat.lanchat, "lena", ["#j", "#k"])
    assert irc.expect("JOIN").source.startswith("lena!")
    lan.send({"type": "part", "room": "#j"})
    assert irc.expect("PART").params[0] == "#j"
    lan.send({"type": "join", "room": "#j"})
    assert irc.expect("JOIN").source.startswith("lena!")
    lan.send({"type": "join", "room": "#general"})
    assert irc.expect("JOIN", "#general").source.startswith("lena!")
    lan.send({"type": "quit"})  # from the two rooms they share: one QUIT
    assert irc.expect("QUIT").source.startswith("lena!")
    irc.send("PING :after")
    assert "QUIT" not in commands(irc.until("PONG"))


def test_topic_set_and_asked(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#top"])
    irc = chat.irc("ivan")
    join(irc, "#top")
    irc.send("TOPIC #top")
    assert irc.expect("331").params[1] == "#top"
    irc.send("TOPIC #top :the plan")
    changed = irc.expect("TOPIC")
    assert changed.params == ["#top", "the plan"] and changed.source.startswith("ivan!")
    assert heard(lan, "topic", room="#top")["text"] == "the plan"
    irc.send("TOPIC #top")
    assert irc.expect("332").params[1:] == ["#top", "the plan"]
    assert irc.expect("333").params[1:3] == ["#top", "ivan"]
    lan.send({"type": "topic", "room": "#top", "text": "new plan"})
    assert irc.expect("TOPIC").params == ["#top", "new plan"]


def test_names_who_and_whois(chat) -> None:  # type: ignore[no-untyped-def]
    lanchat_member(chat.lanchat, "lena", ["#n"])
    irc = chat.irc("ivan")
    join(irc, "#n")
    irc.send("NAMES #n")
    assert set(irc.expect("353").params[3].split()) == {"lena", "ivan"}
    irc.expect("366", "ivan", "#n")
    irc.send("WHO #n")
    who = irc.until("315")
    rows = [m for m in who if m.command == "352"]
    assert {m.params[5] for m in rows} == {"lena", "ivan"}
    assert all(m.params[1] == "#n" for m in rows)
    irc.send("WHOIS lena")
    whois = irc.until("318")
    assert "311" in commands(whois) and "317" in commands(whois)
    assert next(m for m in whois if m.command == "319").params[2] == "#n"
    irc.send("WHOIS nobody")
    assert irc.expect("401").params[1] == "nobody"


def test_away_is_305_306_301_and_away_notify(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#a"])
    irc = chat.irc("ivan", caps="away-notify")
    join(irc, "#a")
    irc.send("AWAY :lunch")
    irc.expect("306")
    lan.send({"type": "say", "text": "there?", "to": "ivan"})
    assert heard(lan, "away", name="ivan")["text"] == "lunch"
    irc.send("AWAY")
    irc.expect("305")
    lan.send({"type": "away", "text": "gone"})
    notify = irc.expect("AWAY")
    assert notify.source.startswith("lena!") and notify.params == ["gone"]
    irc.send("PRIVMSG lena :hello?")
    assert irc.expect("301").params[1:] == ["lena", "gone"]


def test_ping_and_quit(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#q"])
    irc = chat.irc("ivan")
    join(irc, "#q")
    irc.send("PING :12345")
    assert irc.expect("PONG").params[-1] == "12345"
    irc.send("QUIT :later")
    got = irc.expect_closed()
    assert "ERROR" in commands(got)
    assert heard(lan, "leave", name="ivan")["reason"] == "quit"


def test_a_dotted_lanchat_name_is_a_pipe_on_irc_and_back(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "a.b", ["#d"])
    irc = chat.irc("ivan")
    join(irc, "#d")
    assert "a|b" in irc.seen[-2].params[3].split()
    irc.send("PRIVMSG a|b :to the dotted one")
    assert heard(lan, "message", to="a.b")["text"] == "to the dotted one"
    other = chat.irc()
    other.send("NICK A|B")  # the same name as a.b
    other.send("USER x 0 * :x")
    assert other.expect("433")


def test_a_unicode_name_is_a_utf8_nick(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("Дмитрий")
    lan = lanchat_member(chat.lanchat, "lena", [])
    lan.send({"type": "say", "text": "привет", "to": "Дмитрий"})
    assert irc.expect("PRIVMSG").params == ["Дмитрий", "привет"]


def test_an_over_long_line_is_417_and_the_connection_goes_on(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("ivan")
    irc.send("PRIVMSG #x :" + "y" * 600)
    irc.expect("417")
    irc.send_raw(b"z" * 20000)  # no line end at all: dropped as it comes
    irc.send("")
    irc.expect("417")
    irc.send("PING :still")
    assert irc.expect("PONG").params[-1] == "still"


def test_a_flood_is_cut_off(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("fast")
    join(irc, "#f")
    try:
        irc.send_raw(b"PRIVMSG #f :spam\r\n" * 3000)
    except OSError:
        pass  # the server may hang up while we still write
    got = irc.expect_closed(timeout=10)
    assert got[-1].command == "ERROR"
    assert any(m.command == "NOTICE" and "Far too many" in m.params[-1] for m in got)


def test_list_notice_and_a_nick_change(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#l"])
    irc = chat.irc("ivan")
    join(irc, "#l")
    irc.send("LIST")
    listed = irc.until("323")
    rows = {m.params[1]: m.params[2] for m in listed if m.command == "322"}
    assert rows["#l"] == "2"
    irc.send("NOTICE #l :a notice")
    assert heard(lan, "message", room="#l")["text"] == "a notice"
    irc.send("NOTICE nobody :never answered")
    irc.send("NICK ivan2")
    renamed = irc.expect("NICK")
    assert renamed.source.startswith("ivan!") and renamed.params == ["ivan2"]
    assert "401" not in commands(irc.seen)
    assert heard(lan, "nick", old="ivan")["new"] == "ivan2"
    irc.send("PRIVMSG #l :as ivan2")
    assert heard(lan, "message", room="#l")["from"] == "ivan2"


def test_the_server_password_is_pass_and_a_wrong_one_464(make_server: MakeServer) -> None:
    server = make_server(irc=True, password="sekrit")
    good = IrcClient(server.irc_address)
    good.send("PASS sekrit")
    assert good.register("pat")[0].command == "001"
    bad = IrcClient(server.irc_address)
    bad.send("PASS wrong")
    bad.send("NICK mal")
    bad.send("USER mal 0 * :x")
    got = bad.expect_closed()
    assert "464" in commands(got) and "001" not in commands(got)
    for client in (good, bad):
        client.close()


def test_a_registration_never_finished_times_out(make_server: MakeServer) -> None:
    server = make_server(irc=True, login_timeout=0.5)
    client = IrcClient(server.irc_address)
    client.send("NICK slow")  # and never USER
    got = client.expect_closed()
    assert got[-1].command == "ERROR" and "timeout" in got[-1].params[0]
    client.close()


def test_mode_queries_are_answered(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("moe")
    irc.send("MODE moe +i")  # what irssi sends after registering: no 421
    irc.send("MODE moe")
    assert irc.expect("221").params == ["moe", "+"]
    irc.send("MODE #general")
    assert irc.expect("324").params[1] == "#general"
    irc.send("MODE #general b")
    assert irc.expect("368").params[1] == "#general"
    irc.send("MODE #general +o moe")
    assert irc.expect("482").params[1] == "#general"
    irc.send("MODE someone")
    irc.expect("502")
    assert "421" not in commands(irc.seen)


def test_lusers_counts_who_is_online(chat) -> None:  # type: ignore[no-untyped-def]
    lanchat_member(chat.lanchat, "lena", [])
    got = chat.irc().register("lou")
    assert next(m for m in got if m.command == "251").params[1].startswith("There are 2 users")


def test_help_lists_the_commands_and_kick_needs_an_operator(chat) -> None:  # type: ignore[no-untyped-def]
    lanchat_member(chat.lanchat, "lena", [])
    irc = chat.irc("ivan")
    irc.send("HELP")
    listed = irc.until("706")
    known = next(m for m in listed if m.command == "705").params[2].split()
    for command in ("JOIN", "PRIVMSG", "WHOIS", "CAP", "KICK"):
        assert command in known
    irc.send("KICK #general lena :out")
    assert irc.expect("482").params[1] == "#general"


def test_a_registered_name_is_433_from_irc(chat) -> None:  # type: ignore[no-untyped-def]
    bob, _ = welcome_43(chat.lanchat, "bob")
    register(bob, "bob")
    bob.send({"type": "quit"})
    bob.expect_closed()
    irc = chat.irc()
    irc.send("NICK Bob")
    irc.send("USER bob 0 * :not bob")
    assert irc.expect("433").params[:2] == ["*", "Bob"]
    irc.send("NICK notbob")
    assert irc.expect("001").params[0] == "notbob"


def test_a_ping_flood_is_cut_off_like_any_flood(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("pinger")
    try:
        irc.send_raw(b"PING :x\r\n" * 3000)
    except OSError:
        pass  # the server may hang up while we still write
    got = irc.expect_closed(timeout=10)
    assert got[-1].command == "ERROR"
    assert any(m.command == "NOTICE" and "Far too many" in m.params[-1] for m in got)


def test_tagmsg_is_quiet(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#ml"])
    irc = chat.irc("ivan", caps="message-tags")
    join(irc, "#ml")
    irc.send("@+typing=active TAGMSG #ml")
    lan.send({"type": "say", "text": "after", "room": "#ml"})
    assert irc.expect("PRIVMSG").params == ["#ml", "after"]
    assert "421" not in commands(irc.seen)


def test_who_of_a_nick_and_of_everybody(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#w"])
    lan.send({"type": "away", "text": "out"})
    irc = chat.irc("ivan")
    irc.send("WHO lena")
    row = irc.expect("352")
    assert row.params[1:3] == ["*", "lena"] and row.params[6] == "G"
    assert irc.expect("315").params[1] == "lena"
    irc.send("WHO nobody")
    assert irc.expect("315").params[1] == "nobody"
    irc.send("WHO *")
    rows = irc.until("315")
    assert {m.params[5] for m in rows if m.command == "352"} == {"lena", "ivan"}


def test_commands_sent_before_001_are_carried_out_after_it(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#bot"])
    bot = chat.irc()
    bot.send_raw(b"NICK bot\r\nUSER bot 0 * :bot\r\nJOIN #bot\r\nPRIVMSG #bot :beep\r\n")
    bot.expect("001")
    bot.expect("366", "bot", "#bot")
    assert heard(lan, "message", room="#bot")["text"] == "beep"
    assert "451" not in commands(bot.seen)


def test_a_server_shutting_down_says_so_and_closes(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("ivan")
    chat.server.shutdown("back soon")
    got = irc.expect_closed()
    assert any(m.command == "NOTICE" and m.params[-1] == "back soon" for m in got)
    assert got[-1].command == "ERROR"
