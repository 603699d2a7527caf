"""The IRC gateway, finished: 333 on JOIN, which client WHOIS says, ISON, USERHOST, LIST
filters, WHO masks, LUSERS counted when asked, the rate limit on what the gateway answers
itself, and the IRC port in discovery.

Real sockets to in-process servers (and the built pyz for `lanchat discover`), spoken to by
`ircclient` (a raw IRC client written without lanchat's code), `wire.RawClient` (a raw
lanchat client) and `wsclient.WebSocketClient` (the web port).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import List

import pytest
import wsclient
from conftest import MakeServer, discover_on_loopback
from drivers import WAIT, client_argv
from ircclient import IrcClient, Msg
from test_client_v43 import command, lines, online, receive
from test_irc_gateway import chat, heard, join, lanchat_member
from test_irc_pyz import servers, start_irc_server
from wire import RawClient
from wire43 import register, welcome_43
from wsclient import WebSocketClient

from lanchat import protocol
from lanchat.chat import finder
from lanchat.chat.finder import ServerInfo
from lanchat.irc import masks

__all__ = ["chat", "servers"]  # fixtures, shared with the gateway's other tests

FLOOD_LINES = 3000  # lines sent at once: far past the burst and the flood allowance


def numerics(got: List[Msg], code: str) -> List[Msg]:
    return [m for m in got if m.command == code]


def joined(irc: IrcClient, room: str) -> List[Msg]:
    """JOIN a channel; the lines up to its 366."""
    irc.send(f"JOIN {room}")
    got = []
    while not got or got[-1].command != "366" or got[-1].params[1] != room:
        got.append(irc.recv())
    return got


def rate_limited(got: List[Msg]) -> bool:
    return any(m.command == "NOTICE" and "Too many frames" in m.params[-1] for m in got)


# -- 333 on JOIN and the joined frame's topic_by / topic_ts (4.4) -----------------------


def test_join_says_who_set_the_topic_and_when(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#t"])
    lan.send({"type": "topic", "room": "#t", "text": "release friday", "ref": "t1"})
    topic = heard(lan, "topic", ref="t1")
    irc = chat.irc("ivan")
    got = joined(irc, "#t")
    assert numerics(got, "332")[0].params == ["ivan", "#t", "release friday"]
    (who_set,) = numerics(got, "333")
    assert who_set.params == ["ivan", "#t", "lena", str(int(topic["ts"]))]
    assert "333" not in [m.command for m in joined(irc, "#no-topic")]


def test_joined_carries_topic_by_and_ts_for_4_4_clients_only(chat) -> None:  # type: ignore[no-untyped-def]
    lan = lanchat_member(chat.lanchat, "lena", ["#t"])
    lan.send({"type": "topic", "room": "#t", "text": "release friday", "ref": "t1"})
    topic = heard(lan, "topic", ref="t1")
    new = RawClient(chat.lanchat)
    new.expect("hello")
    new.send({"type": "login", "name": "nia", "version": protocol.VERSION, "rooms": ["#t"]})
    joined = heard(new, "joined", room="#t")
    assert (joined["topic_by"], joined["topic_ts"]) == ("lena", topic["ts"])
    old = lanchat_member(chat.lanchat, "olga", [])  # a 4.3 client
    old.send({"type": "join", "room": "#t", "ref": "j1"})
    joined = heard(old, "joined", ref="j1")
    assert "topic_by" not in joined and "topic_ts" not in joined


# -- which client WHOIS says ------------------------------------------------------------


def test_irc_whois_says_which_client_each_uses(make_server: MakeServer) -> None:
    server = make_server(irc=True, web_port=0)
    lanchat_member(server.address, "lena", [])
    web = WebSocketClient(server.web_address)
    irc = IrcClient(server.irc_address)
    try:
        web.expect("hello")
        web.send_text({"type": "login", "name": "wes", "version": protocol.VERSION, "rooms": []})
        web.expect("welcome")
        irc.register("ivan")
        said = {}
        for nick in ("lena", "wes", "ivan"):
            irc.send(f"WHOIS {nick}")
            got = irc.until("318")
            (line,) = numerics(got, "320")
            said[nick] = line.params[1:]
    finally:
        wsclient.close_all()
        irc.close()
    assert said == {
        "lena": ["lena", "is using the lanchat client"],
        "wes": ["wes", "is using the web client"],
        "ivan": ["ivan", "is using an IRC client"],
    }


def test_a_lanchat_whois_answer_says_client(chat) -> None:  # type: ignore[no-untyped-def]
    chat.irc("ivan")
    lan = RawClient(chat.lanchat)
    lan.expect("hello")
    lan.send({"type": "login", "name": "lena", "version": protocol.VERSION, "rooms": []})
    lan.expect("welcome")
    lan.send({"type": "whois", "name": "ivan", "ref": "w1"})
    assert heard(lan, "whois", ref="w1")["client"] == "irc"
    old = lanchat_member(chat.lanchat, "olga", [])  # a 4.3 client: no field it does not know
    old.send({"type": "whois", "name": "ivan", "ref": "w2"})
    assert "client" not in heard(old, "whois", ref="w2")


def test_the_lanchat_clients_whois_shows_the_client() -> None:
    model = online()
    ref = command(model, "/whois ivan")["ref"]
    seq = model.last_seq
    receive(model, {"type": "whois", "name": "ivan", "since": 0.0, "idle": 1.0, "rooms": [],
                    "registered": False, "operator": False, "client": "irc",
                    "ref": ref})  # fmt: skip
    assert "  client: irc" in lines(model, seq)


# -- ISON, USERHOST ---------------------------------------------------------------------


def test_ison_names_those_online_as_they_are_spelt(chat) -> None:  # type: ignore[no-untyped-def]
    lanchat_member(chat.lanchat, "Lena", [])
    irc = chat.irc("ivan")
    irc.send("ISON LENA nobody :ivan someone")
    assert irc.expect("303").params == ["ivan", "Lena ivan"]
    irc.send("ISON nobody")
    assert irc.expect("303").params == ["ivan", ""]


def test_userhost_is_one_302_with_away_and_operator_marks(make_server: MakeServer) -> None:
    server = make_server(irc=True, operators=("olga",))
    lena = lanchat_member(server.address, "lena", [])
    lena.send({"type": "away", "text": "lunch", "ref": "a1"})
    heard(lena, "away", ref="a1")
    olga, _ = welcome_43(server.address, "olga")
    register(olga, "olga")  # an operator's name is a registered one
    irc = IrcClient(server.irc_address)
    irc.register("ivan")
    irc.send("USERHOST lena nobody olga ivan")
    reply = irc.expect("302")
    assert reply.params == ["ivan", "lena=-lena@lanchat olga*=+olga@lanchat ivan=+ivan@lanchat"]
    irc.send("USERHOST nobody")
    assert irc.expect("302").params == ["ivan", ""]
    irc.send("USERHOST :")
    assert irc.expect("461").params[1] == "USERHOST"
    irc.close()


# -- LIST filters, WHO masks, LUSERS ----------------------------------------------------


def test_list_filters_by_users_and_masks(chat) -> None:  # type: ignore[no-untyped-def]
    lanchat_member(chat.lanchat, "lena", ["#dev", "#devops", "#misc"])
    irc = chat.irc("ivan")
    assert any("ELIST=MNU" in m.params for m in irc.seen if m.command == "005")
    join(irc, "#dev")

    def listed(spec: str) -> List[str]:
        irc.send(f"LIST {spec}")
        return sorted(m.params[1] for m in irc.until("323") if m.command == "322")

    assert listed(">1") == ["#dev"]
    assert listed("<2") == ["#devops", "#general", "#misc"]
    assert listed("#DEV*") == ["#dev", "#devops"]
    assert listed("#dev?ps") == ["#devops"]
    assert listed("!#dev*,<5") == ["#general", "#misc"]
    assert listed("#misc,#dev") == ["#dev", "#misc"]
    assert listed(">1,#misc") == []


def test_who_mask_lists_the_nicks_it_matches(chat) -> None:  # type: ignore[no-untyped-def]
    for name in ("lena", "lou", "Lars", "ivy"):
        lanchat_member(chat.lanchat, name, [])
    irc = chat.irc("ivan")
    irc.send("WHO l*")
    got = irc.until("315")
    assert sorted(m.params[5] for m in numerics(got, "352")) == ["Lars", "lena", "lou"]
    assert got[-1].params[1] == "l*"
    irc.send("WHO iv?")
    assert [m.params[5] for m in numerics(irc.until("315"), "352")] == ["ivy"]


@pytest.mark.parametrize(
    "mask, text, matched",
    [
        ("l*", "Lena", True),
        ("l?u", "LOU", True),
        ("l?u", "lu", False),
        ("*", "", True),
        ("", "x", False),
        ("a*b*c", "aXbYc", True),
        ("a*b*c", "aXbYd", False),
        ("[x]", "[X]", True),  # brackets are letters in IRC masks, not classes
        ("[x]", "x", False),
        ("*a" * 200 + "b", "a" * 24, False),  # many stars: still a quick no
    ],
)
def test_masks_match_without_case(mask: str, text: str, matched: bool) -> None:
    assert masks.matches(mask, text) is matched


def test_lusers_counts_who_is_online_when_asked(chat) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("ivan")
    lanchat_member(chat.lanchat, "lena", [])
    lanchat_member(chat.lanchat, "lou", [])
    irc.send("LUSERS")
    assert irc.expect("251").params[1].startswith("There are 3 users")


# -- the rate limit on what the gateway answers itself ----------------------------------

ANSWERED_BY_THE_GATEWAY = [
    "CAP LS 302",
    "MODE ivan",
    "MODE #general",
    "HELP",
    "MOTD",
    "LUSERS",
    "ISON ivan",
    "USERHOST ivan",
]


@pytest.mark.parametrize("line", ANSWERED_BY_THE_GATEWAY)
def test_what_the_gateway_answers_costs_like_a_frame(make_server: MakeServer, line: str) -> None:
    server = make_server(irc=True, rate=0.01, burst=3)
    irc = IrcClient(server.irc_address)
    irc.register("ivan")
    irc.send_raw(f"{line}\r\n".encode() * 6)
    got: List[Msg] = []
    while not rate_limited(got):  # fails (no line in time) when nothing is refused
        got.append(irc.recv())
    irc.close()


@pytest.mark.parametrize("line", ANSWERED_BY_THE_GATEWAY)
def test_a_flood_of_what_the_gateway_answers_is_cut_off(chat, line: str) -> None:  # type: ignore[no-untyped-def]
    irc = chat.irc("ivan")
    try:
        irc.send_raw(f"{line}\r\n".encode() * FLOOD_LINES)
    except OSError:
        pass  # the server may hang up while we still write
    got = irc.expect_closed(timeout=20)
    assert got[-1].command == "ERROR"
    assert any(m.command == "NOTICE" and "Far too many" in m.params[-1] for m in got)


def test_a_rate_limited_who_ends_and_the_next_names_is_names(make_server: MakeServer) -> None:
    server = make_server(irc=True, rate=20, burst=2)
    irc = IrcClient(server.irc_address)
    irc.register("ivan")
    joined_general = irc.until("366")  # the default room's, after the welcome
    assert joined_general[-1].params[1] == "#general"
    irc.send_raw(b"WHO #general\r\n" * 8)
    ends = []
    while len(ends) < 8:  # every WHO is answered, refused or not
        msg = irc.recv()
        if msg.command == "315":
            ends.append(msg)
        assert msg.command != "366"
    assert rate_limited(irc.seen)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # until the bucket lets a NAMES through (20 a second)
        irc.send("NAMES #general")
        got = irc.until("366")
        assert "315" not in [m.command for m in got]
        if not rate_limited(got):
            break
        time.sleep(0.05)  # a token comes every 0.05 s
    assert numerics(got, "353")[0].params[1:] == ["=", "#general", "ivan"]
    irc.close()


# -- the IRC port in discovery ----------------------------------------------------------


def test_the_discovery_answer_has_the_irc_port(make_server: MakeServer) -> None:
    server = make_server(irc=True, discovery=True)
    (found,) = finder.discover_lan(timeout=1.0, port=server.address[1], targets=["127.0.0.1"])
    assert found.irc_port == server.irc_address[1]
    (without,) = finder.discover_lan(
        timeout=1.0, port=make_server(discovery=True).address[1], targets=["127.0.0.1"]
    )
    assert without.irc_port is None


def test_discover_shows_the_irc_address_in_text_and_json() -> None:
    server = ServerInfo("den", "10.0.0.5", 42070, protocol.VERSION, 1, 50, irc_port=6667)
    (line,) = finder.format_lines([server])
    assert line.split()[-1] == "irc://10.0.0.5:6667"
    assert server.to_json()["irc_port"] == 6667
    assert "irc_port" not in ServerInfo("den", "10.0.0.5", 42070, protocol.VERSION).to_json()


def test_pyz_discover_shows_the_irc_port(pyz: Path, servers) -> None:  # type: ignore[no-untyped-def]
    port, irc_port = start_irc_server(servers, discovery=True)
    found = discover_on_loopback(port, "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["irc_port"] == irc_port
    listed = discover_on_loopback(port)
    assert listed.stdout.split()[-1] == f"irc://127.0.0.1:{irc_port}"


def test_the_plain_clients_whois_of_an_irc_user_says_irc(pyz: Path, servers) -> None:  # type: ignore[no-untyped-def]
    port, irc_port = start_irc_server(servers, discovery=True)
    irc = IrcClient(("127.0.0.1", irc_port))
    try:
        irc.register("ivan")
        proc = subprocess.run(
            client_argv(pyz, ("127.0.0.1", port), "lena", "--plain"),
            input=b"/whois ivan\n",
            capture_output=True,
            timeout=WAIT,
        )
    finally:
        irc.close()
    assert proc.returncode == 0, proc.stderr
    assert "  client: irc" in proc.stdout.decode().splitlines()
