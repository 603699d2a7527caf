"""WHO #room says `G` for members who are away, `H@` and `G@` for operators (issue 16).
Real sockets to in-process servers, spoken to by `ircclient` and `wire.RawClient`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Dict

from ircclient import IrcClient
from test_irc_gateway import heard, lanchat_member
from test_irc_sasl import chat  # noqa: F401 (fixture)
from test_irc_sasl_operators import irc_operator, plain_irc


def who_flags(client: IrcClient, mask: str) -> Dict[str, str]:
    """WHO: each nick's flags (the 352's seventh parameter)."""
    client.send(f"WHO {mask}")
    return {m.params[5]: m.params[6] for m in client.until("315") if m.command == "352"}


def test_who_of_a_channel_says_g_for_the_away(chat: SimpleNamespace) -> None:  # noqa: F811
    lan = lanchat_member(chat.lanchat, "lena", [])
    ivan = plain_irc(chat, "ivan")
    ida = plain_irc(chat, "ida")
    ida.send("AWAY :lunch")
    ida.expect("306")
    lan.send({"type": "away", "text": "gone", "ref": "a"})
    heard(lan, "away", ref="a")
    assert who_flags(ivan, "#general") == {"lena": "G", "ivan": "H", "ida": "G"}
    assert who_flags(ivan, "*") == {"lena": "G", "ivan": "H", "ida": "G"}
    ida.send("AWAY")
    ida.expect("305")
    assert who_flags(ivan, "#general")["ida"] == "H"


def test_who_of_a_channel_says_g_at_for_an_away_operator(
    chat: SimpleNamespace,  # noqa: F811
) -> None:
    alice = irc_operator(chat)
    ivan = plain_irc(chat, "ivan")
    assert who_flags(ivan, "#general") == {"alice": "H@", "ivan": "H"}
    alice.send("AWAY :brb")
    alice.expect("306")
    assert who_flags(ivan, "#general") == {"alice": "G@", "ivan": "H"}
