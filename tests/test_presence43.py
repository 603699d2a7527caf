"""Renaming, away, whois and notices (protocol 4.3, issue 14) on real sockets, each as
docs/protocol.md says, and as older clients see them: a 4.0 client and a 4.2 client get
only frames they know."""

from __future__ import annotations

from typing import Any, List, Tuple

from conftest import MakeServer, Serve
from wire import RawClient
from wire43 import connect, next_of, old_client, welcome_43

Address = Tuple[str, int]

OLD_JOIN = {"type", "name", "ts"}
OLD_LEAVE = {"type", "name", "ts", "reason"}
OLD_MESSAGE = {"type", "id", "ts", "from", "text"}


def quiet(*clients: RawClient) -> None:
    for client in clients:
        assert client.nothing_pending(), client


# -- nick -----------------------------------------------------------------------------------


def test_a_rename_is_one_nick_frame_for_4_3_clients(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob")
    carol, _ = welcome_43(address, "carol")
    next_of(bob, "join", name="carol")
    bob.send({"type": "nick", "name": "robert", "ref": "n1"})
    own = bob.expect("nick", old="bob", new="robert", ref="n1")
    assert set(own) == {"type", "old", "new", "ts", "ref"}
    seen = carol.expect("nick", old="bob", new="robert")
    assert set(seen) == {"type", "old", "new", "ts"}
    quiet(bob, carol)
    carol.send({"type": "who"})
    assert carol.expect("online")["names"] == ["robert", "carol"]


def test_a_rename_is_a_leave_and_a_join_for_a_4_0_client(serve: Serve) -> None:
    address = serve()
    olga = old_client(address, "olga")
    bob, _ = welcome_43(address, "bob")
    olga.expect("join", name="bob")
    bob.send({"type": "nick", "name": "robert"})
    leave = olga.expect("leave", name="bob", reason="quit")
    join = olga.expect("join", name="robert")
    assert set(leave) == OLD_LEAVE and set(join) == OLD_JOIN
    quiet(olga)
    bob.send({"type": "say", "text": "now robert"})
    assert next_of(olga, "message", text="now robert")["from"] == "robert"


def test_a_rename_is_a_leave_and_a_join_per_shared_room_for_a_4_2_client(
    serve: Serve,
) -> None:
    address = serve()
    rita = old_client(address, "rita", rooms=["#general", "#dev", "#ops"])
    bob, _ = welcome_43(address, "bob", rooms=["#general", "#dev"])
    for room in ("#general", "#dev"):
        rita.expect("join", name="bob", room=room)
    bob.send({"type": "nick", "name": "robert"})
    seen = [rita.recv() for _ in range(4)]
    assert seen == [
        {"type": "leave", "name": "bob", "ts": seen[0]["ts"], "reason": "quit", "room": "#general"},
        {"type": "join", "name": "robert", "ts": seen[1]["ts"], "room": "#general"},
        {"type": "leave", "name": "bob", "ts": seen[2]["ts"], "reason": "quit", "room": "#dev"},
        {"type": "join", "name": "robert", "ts": seen[3]["ts"], "room": "#dev"},
    ]
    quiet(rita)  # nothing for #ops, nor a nick frame


def test_a_rename_follows_the_name_rules(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob")
    welcome_43(address, "carol")
    next_of(bob, "join", name="carol")
    bob.send({"type": "nick", "name": "Carol", "ref": 1})
    assert bob.expect_error("name_taken")["ref"] == 1
    bob.send({"type": "nick", "name": "a b", "ref": 2})
    assert bob.expect_error("invalid_name")["ref"] == 2


def test_renames_are_rate_limited_two_at_once_then_one_per_10_seconds(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob")
    bob.send({"type": "nick", "name": "bob1"})
    bob.expect("nick", new="bob1")
    bob.send({"type": "nick", "name": "bob2"})
    bob.expect("nick", new="bob2")
    bob.send({"type": "nick", "name": "bob3", "ref": "n3"})
    error = bob.expect_error("rate_limited")
    assert error["ref"] == "n3" and 9 < error["retry_after"] <= 10


def test_the_resume_token_follows_a_rename(serve: Serve) -> None:
    address = serve()
    bob, welcome = welcome_43(address, "bob", key=None)
    bob.send({"type": "nick", "name": "robert"})
    bob.expect("nick", new="robert")
    # robert's link is not yet found dead: the token of bob's login takes robert over
    again, _ = connect(address)
    again.send({"type": "login", "name": "robert", "version": "4.3.0", "resume": welcome["resume"]})
    again.expect("welcome", name="robert")
    assert bob.expect_closed() == []


# -- away ----------------------------------------------------------------------------------


def test_away_and_back_are_told_to_4_3_clients_only(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob")
    carol, _ = welcome_43(address, "carol")
    olga = old_client(address, "olga")
    next_of(bob, "join", name="olga")
    next_of(carol, "join", name="olga")
    bob.send({"type": "away", "text": "lunch\x1b", "ref": "a"})
    assert set(bob.expect("away", name="bob", text="lunch", ref="a")) == {
        "type",
        "name",
        "text",
        "ts",
        "ref",
    }
    assert set(carol.expect("away", name="bob", text="lunch")) == {"type", "name", "text", "ts"}
    bob.send({"type": "away"})
    bob.expect("away", name="bob")
    back = carol.expect("away", name="bob")
    assert "text" not in back
    quiet(olga)


def test_who_is_away_comes_in_welcome_and_joined(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob", rooms=["#general", "#dev"])
    bob.send({"type": "away", "text": "lunch"})
    next_of(bob, "away")
    _, welcome = welcome_43(address, "carol")
    assert welcome["away"] == {"bob": "lunch"}
    dan, _ = login_with_joined(address, "dan", ["#dev"])
    assert dan["#dev"]["away"] == {"bob": "lunch"}
    olga = RawClient(address)
    olga.expect("hello")
    olga.send({"type": "login", "name": "olga", "version": "4.2.0", "rooms": ["#dev"]})
    assert "away" not in olga.expect("welcome")
    assert "away" not in olga.expect("joined")


def login_with_joined(address: Address, name: str, rooms: List[str]) -> Tuple[Any, Any]:
    client, _ = connect(address)
    client.send({"type": "login", "name": name, "version": "4.3.0", "rooms": rooms})
    welcome = client.expect("welcome")
    return {r: client.expect("joined", room=r) for r in welcome["rooms"]}, client


def test_a_private_message_to_somebody_away_gets_the_text_back_once(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob")
    carol, _ = welcome_43(address, "carol")
    olga = old_client(address, "olga")
    bob.send({"type": "away", "text": "lunch"})
    next_of(bob, "away")
    carol.send({"type": "say", "to": "bob", "text": "one", "ref": "one"})
    next_of(carol, "message", ref="one")
    reply = carol.expect("away", name="bob")
    assert reply["reply"] is True and reply["text"] == "lunch"
    carol.send({"type": "say", "to": "bob", "text": "two", "ref": "two"})
    carol.expect("message", ref="two")
    quiet(carol)  # once per away spell
    olga.send({"type": "say", "to": "bob", "text": "hi", "ref": 1})
    next_of(olga, "message", ref=1)
    quiet(olga)  # an older client gets none of this
    bob.send({"type": "away", "text": "meeting"})  # a new spell: told again
    next_of(carol, "away", text="meeting")
    carol.send({"type": "say", "to": "bob", "text": "three"})
    assert next_of(carol, "away", name="bob", reply=True)["text"] == "meeting"


# -- whois ---------------------------------------------------------------------------------


def test_whois_says_since_idle_away_rooms_and_registration(serve: Serve) -> None:
    address = serve()
    bob, _ = welcome_43(address, "bob", rooms=["#general", "#dev"])
    bob.send({"type": "away", "text": "lunch"})
    next_of(bob, "away")
    carol, _ = welcome_43(address, "carol")
    carol.send({"type": "whois", "name": "BOB", "ref": "w"})
    whois = next_of(carol, "whois")
    assert whois["name"] == "bob" and whois["ref"] == "w"
    assert whois["rooms"] == ["#general", "#dev"] and whois["away"] == "lunch"
    assert whois["registered"] is False and whois["operator"] is False
    assert whois["idle"] >= 0 and whois["since"] > 1.7e9
    assert "address" not in whois and "fingerprint" in whois
    carol.send({"type": "whois", "name": "nobody", "ref": 2})
    assert carol.expect_error("no_such_user")["ref"] == 2


# -- notices -------------------------------------------------------------------------------


def test_a_notice_is_a_message_from_star_for_older_clients(make_server: MakeServer) -> None:
    server = make_server()
    address = server.address
    bob, _ = welcome_43(address, "bob")
    olga = old_client(address, "olga")
    rita = old_client(address, "rita", rooms=[])
    server.announce("the server restarts at noon")
    notice = next_of(bob, "notice")
    assert set(notice) == {"type", "text", "ts"} and notice["text"] == "the server restarts at noon"
    seen = next_of(olga, "message")
    assert set(seen) == OLD_MESSAGE and seen["from"] == "*"
    other = next_of(rita, "message")
    assert other["from"] == "*" and other["id"] == seen["id"]
    rita.send({"type": "say", "text": "after", "ref": 1})
    assert next_of(rita, "message", ref=1)["id"] > seen["id"]  # a fresh id ...
    late = old_client(address, "late")
    quiet(late)  # ... never stored
