"""The IRC gateway against the modern IRC client protocol (https://modern.ircdocs.horse)
and IRCv3's UTF8ONLY, for what irctest 0.1.2 does not check (tests/test_irc_irctest.py)
and tests/test_irc_gateway.py does not cover: PING/PONG, WHO, WHOIS, AWAY, ISUPPORT,
LUSERS, HELP and UTF-8. Each test names the rule it checks.
"""

from __future__ import annotations

import re
from typing import Dict, List

from conftest import MakeServer
from ircclient import IrcClient, Msg
from test_irc_gateway import chat, commands, heard, join, lanchat_member

from lanchat.irc.transport import IrcCodec

__all__ = ["chat"]  # the fixture, shared with test_irc_gateway

SERVER = "lanchat"  # the gateway's name in prefixes and PONG


def member(chat, nick: str) -> IrcClient:  # type: ignore[no-untyped-def]
    """An IRC client registered as `nick`, past its automatic JOIN of #general."""
    client: IrcClient = chat.irc(nick)
    client.expect("366", nick, "#general")
    return client


def isupport(lines: List[Msg]) -> Dict[str, str]:
    """The ISUPPORT tokens of a registration's 005 lines, as {PARAMETER: value}."""
    tokens: Dict[str, str] = {}
    for msg in lines:
        if msg.command == "005":
            for token in msg.params[1:-1]:
                name, _, value = token.partition("=")
                tokens[name] = value
    return tokens


# -- PING and PONG -----------------------------------------------------------------------


def test_pong_names_the_server_then_gives_the_token_back_as_it_came(chat) -> None:  # type: ignore[no-untyped-def]
    """PONG: "Servers MUST send a <server> parameter"; the token is opaque, any non-empty
    string, and comes back the same, before registration and after."""
    client = chat.irc()
    client.send("PING early")
    assert client.expect("PONG").params == [SERVER, "early"]
    client.register("pia")
    client.send("PING :a token with spaces")
    assert client.expect("PONG").params == [SERVER, "a token with spaces"]
    client.send("PING :Дмитрий:1")
    assert client.expect("PONG").params == [SERVER, "Дмитрий:1"]


def test_ping_without_a_token_is_461(chat) -> None:  # type: ignore[no-untyped-def]
    """PING: ERR_NEEDMOREPARAMS, before registration and after."""
    client = chat.irc()
    client.send("PING")
    assert client.expect("461").params[1] == "PING"
    client.register("pia")
    client.send("PING")
    assert client.expect("461").params[1] == "PING"


def test_the_servers_ping_answered_keeps_the_client_and_unanswered_closes_it(
    make_server: MakeServer,
) -> None:
    """PING from the server: "clients must reply to them" with PONG and the same token;
    one that does not is closed with ERROR (its reason says why)."""
    server = make_server(irc=True, idle_timeout=1.0)
    assert server.irc_address is not None
    awake, asleep = IrcClient(server.irc_address), IrcClient(server.irc_address)
    awake.register("awake")
    asleep.register("asleep")
    for _ in range(3):  # 3 pings, 0.5 s apart: longer than the idle timeout
        token = awake.expect("PING").params[-1]
        awake.send(f"PONG :{token}")
    awake.send("PING :still here")
    assert awake.expect("PONG").params[-1] == "still here"
    got = asleep.expect_closed()
    assert "PING" in commands(got) and got[-1].command == "ERROR"
    assert "timeout" in got[-1].params[0].lower()
    awake.close()
    asleep.close()


# -- WHO ---------------------------------------------------------------------------------


def test_who_of_a_channel_is_one_full_352_per_member_then_315_with_the_mask(chat) -> None:  # type: ignore[no-untyped-def]
    """RPL_WHOREPLY: "<client> <channel> <username> <host> <server> <nick> <flags>
    :<hopcount> <realname>", the channel asked about; RPL_ENDOFWHO: the mask exactly as
    sent (or casefolded)."""
    lanchat_member(chat.lanchat, "lena", ["#Who"])
    irc = member(chat, "ivan")
    join(irc, "#Who")
    irc.send("WHO #Who")
    got = irc.until("315")
    rows = [m for m in got if m.command == "352"]
    assert len(rows) == 2
    for row in rows:
        assert len(row.params) == 8
        me, channel, _user, _host, server, _nick, flags, last = row.params
        assert (me, channel, server) == ("ivan", "#Who", SERVER)
        assert re.fullmatch(r"[HG]\*?[@+]?", flags)
        hops, _, realname = last.partition(" ")
        assert hops.isdigit() and realname
    assert {m.params[5] for m in rows} == {"lena", "ivan"}
    assert got[-1].params[:2] == ["ivan", "#Who"]


def test_who_of_a_channel_that_does_not_exist_is_only_315(chat) -> None:  # type: ignore[no-untyped-def]
    """WHO: "zero, one or more RPL_WHOREPLY", and always RPL_ENDOFWHO for the mask."""
    irc = member(chat, "ivan")
    irc.send("WHO #nowhere")
    got = irc.until("315")
    assert commands(got) == ["315"] and got[0].params[1] == "#nowhere"


def test_who_of_a_nick_echoes_the_mask_as_sent(chat) -> None:  # type: ignore[no-untyped-def]
    """RPL_ENDOFWHO: "<mask> MUST be the same <mask> parameter sent by the client"."""
    lanchat_member(chat.lanchat, "lena", [])
    irc = member(chat, "ivan")
    irc.send("WHO LENA")
    row = irc.expect("352")
    assert row.params[5] == "lena" and row.params[6].startswith("H")
    assert irc.expect("315").params[1] == "LENA"


# -- WHOIS -------------------------------------------------------------------------------


def test_whois_311_has_its_five_parameters_and_318_the_nick_exactly_as_sent(chat) -> None:  # type: ignore[no-untyped-def]
    """RPL_WHOISUSER "<client> <nick> <username> <host> * :<realname>"; RPL_ENDOFWHOIS:
    "<nick> MUST be exactly the <nick> parameter sent by the client ... the case MUST be
    preserved"."""
    lanchat_member(chat.lanchat, "lena", [])
    irc = member(chat, "ivan")
    irc.send("WHOIS LENA")
    got = irc.until("318")
    user = next(m for m in got if m.command == "311")
    assert len(user.params) == 6 and user.params[1] == "lena" and user.params[4] == "*"
    assert got[-1].params[:2] == ["ivan", "LENA"]
    irc.send(f"WHOIS {SERVER} lena")  # <target> <nick>: the nick is the last one
    assert irc.until("318")[0].params[1] == "lena"


def test_whois_of_nobody_is_401_then_318(chat) -> None:  # type: ignore[no-untyped-def]
    """WHOIS: "The server SHOULD answer ... ending with RPL_ENDOFWHOIS, even if they did
    not send any other numeric message"."""
    irc = member(chat, "ivan")
    irc.send("WHOIS Nobody")
    got = irc.until("318")
    assert commands(got) == ["401", "318"]
    assert got[0].params[1] == "Nobody" and got[1].params[1] == "Nobody"


# -- AWAY --------------------------------------------------------------------------------


def test_whois_of_somebody_away_says_301_with_the_text(chat) -> None:  # type: ignore[no-untyped-def]
    """WHOIS may return RPL_AWAY "<client> <nick> :<message>"."""
    lena = lanchat_member(chat.lanchat, "lena", [])
    lena.send({"type": "away", "text": "at lunch"})
    irc = member(chat, "ivan")
    irc.send("WHOIS lena")
    got = irc.until("318")
    assert next(m for m in got if m.command == "301").params[1:] == ["lena", "at lunch"]


def test_away_with_an_empty_text_is_back(chat) -> None:  # type: ignore[no-untyped-def]
    """AWAY: "If [the text] is not given, or is an empty string, the user is no longer
    away" (RPL_UNAWAY), and others see them here again."""
    lena = lanchat_member(chat.lanchat, "lena", ["#a"])
    irc = member(chat, "ivan")
    join(irc, "#a")
    irc.send("AWAY :coffee")
    irc.expect("306")
    assert heard(lena, "away", name="ivan")["text"] == "coffee"
    irc.send("AWAY :")
    irc.expect("305")
    assert "text" not in heard(lena, "away", name="ivan")


# -- ISUPPORT ----------------------------------------------------------------------------


def test_isupport_lines_are_well_formed(chat) -> None:  # type: ignore[no-untyped-def]
    """RPL_ISUPPORT: "<client> <1-13 tokens> :are supported by this server", each token
    PARAMETER (upper case, 1 to 20 letters or digits) with an optional =value without
    spaces, no parameter twice in a line."""
    got = chat.irc().register("isa")
    lines = [m for m in got if m.command == "005"]
    assert lines
    token = re.compile(r"-?[A-Z0-9]{1,20}(=[\x21-\x7e]*)?")
    for msg in lines:
        tokens = msg.params[1:-1]
        assert 1 <= len(tokens) <= 13 and msg.params[-1] == "are supported by this server"
        assert all(token.fullmatch(t) for t in tokens), tokens
        names = [t.lstrip("-").partition("=")[0] for t in tokens]
        assert len(names) == len(set(names))


def test_isupport_nicklen_is_the_longest_nick_taken(chat) -> None:  # type: ignore[no-untyped-def]
    """NICKLEN: the longest nick a client may use (in characters here: UTF8ONLY)."""
    longest = int(isupport(chat.irc().register("isa"))["NICKLEN"])
    assert chat.irc().register("n" * longest)[0].command == "001"
    client = chat.irc()
    client.send("NICK " + "ж" * longest)
    client.send("USER x 0 * :x")
    assert client.expect("001").params[0] == "ж" * longest
    client = chat.irc()
    client.send("NICK " + "m" * (longest + 1))
    assert client.expect("432")


def test_isupport_channellen_and_chanlimit_are_the_limits_of_join(make_server: MakeServer) -> None:
    """CHANNELLEN: the longest channel name (its prefix included) a client may join;
    CHANLIMIT=#:n: how many it may be in at once (ERR_TOOMANYCHANNELS past it)."""
    server = make_server(irc=True, max_joined=3)
    assert server.irc_address is not None
    client = IrcClient(server.irc_address)
    tokens = isupport(client.register("cal"))
    longest = int(tokens["CHANNELLEN"])
    assert tokens["CHANLIMIT"] == "#:3"  # #general and two more
    name = "#" + "c" * (longest - 1)
    join(client, name)
    client.send(f"JOIN {name}x")
    assert client.expect("403").params[1] == name + "x"
    join(client, "#two")
    client.send("JOIN #three")
    assert client.expect("405").params[1] == "#three"
    client.close()


def test_casemapping_makes_channels_differing_in_case_one(chat) -> None:  # type: ignore[no-untyped-def]
    """CASEMAPPING=rfc8265: names compare after case folding, channels as nicks."""
    tokens = isupport(chat.irc().register("isa"))
    assert tokens["CASEMAPPING"] == "rfc8265"
    first, second = member(chat, "first"), member(chat, "second")
    join(first, "#Case")
    second.send("JOIN #CASE")
    assert second.expect("366").params[1] == "#Case"  # the room's name as it was made
    joined = first.expect("JOIN")
    assert joined.source.startswith("second!") and joined.params[0].lower() == "#case"


# -- LUSERS ------------------------------------------------------------------------------


def test_lusers_answers_251_and_255(chat) -> None:  # type: ignore[no-untyped-def]
    """LUSERS: "Servers MUST reply with RPL_LUSERCLIENT and RPL_LUSERME", after the
    registration and when asked."""
    got = chat.irc().register("lou")
    assert {"251", "255"} <= set(commands(got))
    client = member(chat, "max")
    client.send("LUSERS")
    client.send("PING :done")
    answer = [m for m in client.until("PONG") if m.command != "PONG"]
    assert commands(answer) == ["251", "255"]
    assert all(m.params[0] == "max" and len(m.params) == 2 for m in answer)


# -- HELP --------------------------------------------------------------------------------


def test_help_is_704_then_705s_then_one_706_for_the_subject(chat) -> None:  # type: ignore[no-untyped-def]
    """HELP: "a single RPL_HELPSTART message, then arbitrarily many RPL_HELPTXT messages,
    then a single RPL_ENDOFHELP"; no subject is `*`, a subject comes back as asked."""
    client = member(chat, "hal")
    for asked, subject in (("HELP", "*"), ("HELP privmsg", "privmsg")):
        client.send(asked)
        got = client.until("706")
        assert got[0].command == "704" and set(commands(got[1:-1])) == {"705"}
        assert all(m.params[:2] == ["hal", subject] for m in got)


def test_a_subject_that_is_no_parameter_comes_back_as_a_star(chat) -> None:  # type: ignore[no-untyped-def]
    """ERR_HELPNOTFOUND/RPL_HELPSTART: the subject "MUST be the one requested by the
    client ...; unless it would be an invalid parameter, in which case it MUST be `*`";
    so for every reply that names what the client sent: a numeric's middle parameters
    hold no space and do not start with ':'."""
    client = member(chat, "hal")
    client.send("HELP :two words")
    assert client.until("706")[0].params[:2] == ["hal", "*"]
    client.send("WHOIS :no body")
    assert [m.params[1] for m in client.until("318")] == ["*", "*"]
    client.send("NICK :bad nick")
    assert client.expect("432").params[:3] == ["hal", "*", "Erroneous nickname"]


# -- UTF-8 -------------------------------------------------------------------------------


def test_invalid_utf8_is_never_relayed_and_the_connection_goes_on(chat) -> None:  # type: ignore[no-untyped-def]
    """UTF8ONLY: "Servers publishing this token MUST NOT relay content ... containing
    non-UTF-8 data to clients"; what they do with it is theirs: the gateway replaces each
    bad byte with U+FFFD, in a message and in a topic."""
    lena = lanchat_member(chat.lanchat, "lena", ["#u8"])
    sender, reader = member(chat, "sender"), member(chat, "reader")
    join(sender, "#u8")
    join(reader, "#u8")
    sender.send_raw(b"PRIVMSG #u8 :caf\xe9 \xff\xfe ok\r\n")
    relayed = reader.expect("PRIVMSG")  # ircclient decodes strictly: valid UTF-8
    assert relayed.params == ["#u8", "caf\ufffd \ufffd\ufffd ok"]
    assert heard(lena, "message", room="#u8")["text"] == "caf\ufffd \ufffd\ufffd ok"
    sender.send_raw(b"TOPIC #u8 :\xc3(\r\n")
    assert reader.expect("TOPIC").params == ["#u8", "\ufffd("]
    sender.send("PING :on")
    assert sender.expect("PONG").params[-1] == "on"


def test_a_character_cut_between_two_reads_is_one_character() -> None:
    """A line is decoded once whole, so a character whose bytes come in two reads arrives
    intact (the decoder fed the two parts of a nick)."""
    decoder = IrcCodec().decoder()
    data = "NICK Жан\r\n".encode()
    cut = data.index("Ж".encode()) + 1  # between the two bytes of Ж
    decoder.feed(data[:cut])
    assert decoder.state.nick == ""
    decoder.feed(data[cut:])
    assert decoder.state.nick == "Жан" and not decoder.take_reply()


def test_a_nick_with_invalid_utf8_is_432(chat) -> None:  # type: ignore[no-untyped-def]
    """A nick that is not UTF-8 cannot be a name: ERR_ERRONEUSNICKNAME."""
    client = chat.irc()
    client.send_raw(b"NICK bad\xffnick\r\n")
    assert client.expect("432")
