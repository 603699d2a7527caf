"""IRC operators (issue 16): an operator's name logged in by SASL is an operator on IRC:
`@` in NAMES and WHO, 313 in WHOIS, KICK, MODE +b/-b and the ban list; real sockets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import List

from ircclient import IrcClient, Msg
from test_irc_gateway import lanchat_member
from test_irc_sasl import chat, owner_with_password, sasl_login  # noqa: F401 (fixture)
from wire import RawClient


def irc_operator(chat: SimpleNamespace) -> IrcClient:  # noqa: F811
    """alice, an operator of the server, on IRC by SASL, in #general."""
    owner_with_password(chat.lanchat, "alice")
    alice = sasl_login(chat, "alice")
    alice.until("366")  # the default room's JOIN, names and end of names
    return alice


def plain_irc(chat: SimpleNamespace, nick: str) -> IrcClient:  # noqa: F811
    client = chat.irc()
    client.register(nick)
    client.until("366")
    return client


def commands(got: List[Msg]) -> List[str]:
    return [m.command for m in got]


def test_an_operator_is_at_in_names_and_who_and_313_in_whois(
    chat: SimpleNamespace,  # noqa: F811
) -> None:
    alice = irc_operator(chat)
    ivan = plain_irc(chat, "ivan")
    ivan.send("NAMES #general")
    assert set(ivan.expect("353").params[3].split()) == {"@alice", "ivan"}
    ivan.send("WHO #general")
    rows = {m.params[5]: m.params[6] for m in ivan.until("315") if m.command == "352"}
    assert rows == {"alice": "H@", "ivan": "H"}
    ivan.send("WHOIS alice")
    assert "313" in commands(ivan.until("318"))
    ivan.send("WHO alice")
    assert ivan.expect("352").params[6] == "H@"
    alice.send("JOIN #ops")
    while alice.recv().command != "353":
        pass
    assert alice.seen[-1].params[3] == "@alice"


def test_an_irc_operator_kicks_a_lanchat_member(chat: SimpleNamespace) -> None:  # noqa: F811
    alice = irc_operator(chat)
    ivan = plain_irc(chat, "ivan")
    lena = lanchat_member(chat.lanchat, "lena", [])
    alice.send("KICK #general lena :enough")
    closing = lena.expect_closed()
    assert closing[0]["code"] == "kicked" and closing[0]["by"] == "alice"
    kick = ivan.expect("KICK")
    assert kick.params[:2] == ["#general", "lena"]
    while "You kicked lena: enough" not in alice.expect("NOTICE").params[-1]:
        pass  # the room's notice ("lena was kicked by alice") may come first


def test_mode_plus_b_bans_a_name_lists_it_and_minus_b_lifts_it(
    chat: SimpleNamespace,  # noqa: F811
) -> None:
    alice = irc_operator(chat)
    lena = lanchat_member(chat.lanchat, "lena", [])
    alice.send("MODE #general +b lena!*@*")
    assert lena.expect_closed()[0]["code"] == "banned"
    echo = alice.expect("MODE")
    assert echo.source.startswith("alice!") and echo.params == ["#general", "+b", "lena!*@*"]
    alice.send("MODE #general b")
    listed = alice.until("368")
    assert [m.params[1:4] for m in listed if m.command == "367"] == [
        ["#general", "lena!*@*", "alice"]
    ]
    refused = RawClient(chat.lanchat)
    refused.expect("hello")
    refused.send({"type": "login", "name": "lena", "version": "4.2.0", "rooms": []})
    assert refused.expect_closed()[0]["code"] == "banned"
    alice.send("MODE #general -b lena")
    assert alice.expect("MODE").params == ["#general", "-b", "lena"]
    alice.send("MODE #general +b")
    assert "367" not in commands(alice.until("368"))
    lanchat_member(chat.lanchat, "lena", [])  # welcome again


def test_mode_plus_b_on_an_address_mask_bans_the_address(
    chat: SimpleNamespace,  # noqa: F811
) -> None:
    alice = irc_operator(chat)
    alice.send("MODE #general +b *!*@127.0.0.9")
    alice.expect("MODE", "#general", "+b", "*!*@127.0.0.9")
    alice.send("MODE #general +b")
    assert alice.expect("367").params[2] == "*!*@127.0.0.9"
    stranger = RawClient(chat.lanchat, source="127.0.0.9")
    stranger.expect("hello")
    stranger.send({"type": "login", "name": "zed", "version": "4.2.0", "rooms": []})
    assert stranger.expect_closed()[0]["code"] == "banned"


def test_masks_lanchat_cannot_ban_are_696_and_unknown_modes_472(
    chat: SimpleNamespace,  # noqa: F811
) -> None:
    alice = irc_operator(chat)
    for mask in ("le*!*@*", "*!*@host.example", "lena!user@*", "*!*@10.0.*"):
        alice.send(f"MODE #general +b {mask}")
        invalid = alice.expect("696")
        assert invalid.params[1:4] == ["#general", "b", mask]
    alice.send("MODE #general +k secret")
    assert alice.expect("472").params[1] == "k"
    alice.send("MODE #general +o alice")
    assert "--operator" in alice.expect("482").params[-1]


def test_a_non_operator_gets_482_and_an_empty_ban_list(chat: SimpleNamespace) -> None:  # noqa: F811
    alice = irc_operator(chat)
    ivan = plain_irc(chat, "ivan")
    alice.send("MODE #general +b mallory!*@*")
    alice.expect("MODE")
    ivan.send("MODE #general +b alice!*@*")
    assert ivan.expect("482").params[1:] == ["#general", "You're not channel operator"]
    ivan.send("MODE #general -b mallory!*@*")
    assert ivan.expect("482").params[1:] == ["#general", "You're not channel operator"]
    ivan.send("MODE #general b")
    got = ivan.until("368")
    assert "367" not in commands(got)
    ivan.send("KICK #general alice")
    assert ivan.expect("482").params[1] == "#general"
    ivan.send("MODE #general +o ivan")
    ivan.expect("482")
