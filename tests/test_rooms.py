"""Rooms (protocol 4.2) on a real server (in process, and the built pyz), real sockets.

A "4.0 client" here sends exactly the frames of lanchat 4.0's client (a `login` without
`rooms`); the server must send it exactly the frames of a server without rooms.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from conftest import Serve
from wire import Frame, RawClient, login_frame

Address = Tuple[str, int]


def rooms_login(address: Address, name: str, rooms: List[str], **extra: Any) -> RawClient:
    """Log in as a client that speaks rooms; the welcome and one `joined` per room of the
    welcome are read and checked."""
    client = RawClient(address)
    client.expect("hello")
    client.send(login_frame(name, version="4.2.0", rooms=rooms, **extra))
    welcome = client.expect("welcome", name=name)
    client.welcome = welcome  # type: ignore[attr-defined]
    client.joined = {}  # type: ignore[attr-defined]
    for room in welcome["rooms"]:
        joined = client.expect("joined", room=room)
        client.joined[room] = joined  # type: ignore[attr-defined]
    return client


def old_login(address: Address, name: str) -> Tuple[RawClient, Frame]:
    """Log in as lanchat 4.0's client does."""
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.0.0"})
    return client, client.expect("welcome", name=name)


def test_a_4_0_client_and_room_clients_share_general(serve: Serve) -> None:
    address = serve()
    old, old_welcome = old_login(address, "olga")
    assert old_welcome == {
        "type": "welcome",
        "name": "olga",
        "online": ["olga"],
        "history": [],
        "resume": old_welcome["resume"],
        "history_id": old_welcome["history_id"],
    }
    bob = rooms_login(address, "bob", [])
    assert bob.welcome["rooms"] == ["#general"] and bob.welcome["default_room"] == "#general"
    assert bob.welcome["history"] == []
    assert bob.joined["#general"]["members"] == ["olga", "bob"]
    join = old.expect("join", name="bob")
    assert set(join) == {"type", "name", "ts"}, "a 4.0 client gets no room field"

    bob.send({"type": "say", "room": "#general", "text": "hi olga", "ref": "b1"})
    echo = bob.expect("message", text="hi olga", room="#general", ref="b1")
    seen = old.expect("message", text="hi olga")
    assert set(seen) == {"type", "id", "ts", "from", "text"}
    assert seen["id"] == echo["id"]

    old.send({"type": "say", "text": "hi bob"})
    assert set(old.expect("message", text="hi bob")) == {"type", "id", "ts", "from", "text"}
    bob.expect("message", text="hi bob", room="#general", **{"from": "olga"})


def test_messages_in_a_room_reach_only_its_members(serve: Serve) -> None:
    address = serve()
    old, _ = old_login(address, "olga")
    ann = rooms_login(address, "ann", ["#general", "#dev"])
    bob = rooms_login(address, "bob", ["#dev"])
    carl = rooms_login(address, "carl", ["#general"])
    assert bob.welcome["rooms"] == ["#dev"]
    assert bob.joined["#dev"]["members"] == ["ann", "bob"]
    ann.expect("join", name="bob", room="#dev")
    ann.expect("join", name="carl", room="#general")
    old.expect("join", name="ann")
    old.expect("join", name="carl")

    bob.send({"type": "say", "room": "#dev", "text": "build is green"})
    bob.expect("message", text="build is green", room="#dev")
    ann.expect("message", text="build is green", room="#dev")
    assert carl.nothing_pending() and old.nothing_pending(), "#dev stays in #dev"

    bob.send({"type": "say", "text": "to the default room"})
    error = bob.expect_error("not_in_room")
    assert error["room"] == "#general"


def test_join_and_part_tell_the_room_and_a_4_0_client_sees_a_quit(
    serve: Serve,
) -> None:
    address = serve()
    old, _ = old_login(address, "olga")
    ann = rooms_login(address, "ann", [])
    old.expect("join", name="ann")
    ann.send({"type": "join", "room": "#Dev", "ref": "j1"})
    joined = ann.expect("joined", room="#Dev", ref="j1", members=["ann"], topic="", history=[])
    assert "truncated" not in joined
    bob = rooms_login(address, "bob", ["#dev"])
    assert bob.welcome["rooms"] == ["#Dev"], "a room keeps its first spelling"
    ann.expect("join", name="bob", room="#Dev")

    ann.send({"type": "part", "room": "#general", "ref": "p1"})
    ann.expect("parted", room="#general", ref="p1")
    leave = old.expect("leave", name="ann")
    assert leave["reason"] == "quit" and "room" not in leave
    assert old.nothing_pending()

    bob.send({"type": "part", "room": "#dev"})
    bob.expect("error", code="last_room", room="#dev")
    ann.send({"type": "part", "room": "#dev", "ref": "p2"})
    ann.expect("error", code="last_room", room="#dev", ref="p2")
    bob.send({"type": "join", "room": "#general"})
    bob.expect("joined", room="#general", members=["olga", "bob"])
    old.expect("join", name="bob")
    bob.send({"type": "part", "room": "#dev"})
    bob.expect("parted", room="#Dev")
    ann.expect("leave", name="bob", room="#Dev", reason="part")


def test_joining_a_room_again_sends_it_afresh_and_tells_nobody(serve: Serve) -> None:
    address = serve()
    ann = rooms_login(address, "ann", ["#general"])
    bob = rooms_login(address, "bob", ["#general"])
    ann.expect("join", name="bob", room="#general")
    bob.send({"type": "say", "room": "#general", "text": "one"})
    bob.expect("message", text="one")
    ann.expect("message", text="one")
    ann.send({"type": "join", "room": "#GENERAL", "ref": 5})
    joined = ann.expect("joined", room="#general", ref=5, members=["ann", "bob"])
    assert [m["text"] for m in joined["history"]] == ["one"]
    assert joined["history"][0]["room"] == "#general"
    assert bob.nothing_pending()


def test_topic_is_set_by_a_member_and_told_to_the_room(serve: Serve) -> None:
    address = serve()
    old, _ = old_login(address, "olga")
    ann = rooms_login(address, "ann", [])
    bob = rooms_login(address, "bob", ["#dev"])
    ann.send(
        {"type": "topic", "room": "#general", "text": "  lunch\tat\x1b[31m noon  ", "ref": "t1"}
    )
    topic = ann.expect("topic", room="#general", text="lunch at[31m noon", by="ann", ref="t1")
    assert isinstance(topic["ts"], float)
    old.expect("join", name="ann")
    assert old.nothing_pending(wait=0.3), "a 4.0 client knows no topics"
    assert bob.nothing_pending(wait=0)

    bob.send({"type": "topic", "room": "#general", "text": "mine now"})
    bob.expect("error", code="not_in_room", room="#general")
    bob.send({"type": "topic", "room": "#general"})
    bob.expect("topic", room="#general", text="lunch at[31m noon", by="ann")
    bob.send({"type": "topic", "room": "#nowhere"})
    bob.expect("error", code="no_such_room", room="#nowhere")
    bob.send({"type": "topic", "room": "#dev", "text": "x" * 301})
    bob.expect_error("too_long")

    carl = rooms_login(address, "carl", [])
    assert carl.joined["#general"]["topic"] == "lunch at[31m noon"
    ann.expect("join", name="carl", room="#general")
    ann.send({"type": "topic", "room": "#general", "text": ""})
    ann.expect("topic", room="#general", text="", by="ann")
    carl.expect("topic", room="#general", text="", by="ann")


def test_rooms_and_who_list_rooms_and_members(serve: Serve) -> None:
    address = serve(rooms=("#random",))
    old, _ = old_login(address, "olga")
    ann = rooms_login(address, "ann", ["#dev", "#general"])
    rooms_login(address, "bob", ["#dev"])
    ann.expect("join", name="bob", room="#dev")
    ann.send({"type": "topic", "room": "#dev", "text": "ship it"})
    ann.expect("topic", room="#dev")
    ann.send({"type": "rooms"})
    listing = ann.expect("room_list")
    assert listing["rooms"] == [
        {"room": "#dev", "members": 2, "topic": "ship it"},
        {"room": "#general", "members": 2, "topic": ""},
        {"room": "#random", "members": 0, "topic": ""},
    ]
    ann.send({"type": "who", "room": "#dev"})
    assert ann.expect("online", room="#dev")["names"] == ["ann", "bob"]
    ann.send({"type": "who"})
    assert ann.expect("online")["names"] == ["olga", "ann", "bob"], "everybody logged in"
    ann.send({"type": "who", "room": "#void"})
    ann.expect("error", code="no_such_room", room="#void")

    old.expect("join", name="ann")
    old.send({"type": "who"})
    assert old.expect("online") == {"type": "online", "names": ["olga", "ann"]}
    for frame in (
        {"type": "rooms"},
        {"type": "join", "room": "#dev"},
        {"type": "who", "room": "#dev"},
        {"type": "say", "text": "x", "room": "#general"},
    ):
        old.send(frame)
        old.expect_error("bad_frame")
    old.send({"type": "say", "text": "still here"})
    old.expect("message", text="still here")


def test_private_messages_cross_rooms(serve: Serve) -> None:
    address = serve()
    old, _ = old_login(address, "olga")
    bob = rooms_login(address, "bob", ["#dev"])
    bob.send({"type": "say", "to": "olga", "text": "psst", "ref": "m1"})
    echo = bob.expect("message", to="olga", ref="m1")
    assert "room" not in echo
    assert set(old.expect("message", text="psst")) == {"type", "id", "ts", "from", "text", "to"}
    bob.send({"type": "say", "to": "olga", "room": "#dev", "text": "both"})
    bob.expect_error("bad_frame")


def test_room_names_follow_the_name_rules(serve: Serve) -> None:
    address = serve()
    ann = rooms_login(address, "ann", [])
    for bad in ("dev", "#", "#a b", "#dev\u200b", "#p\u0430ul", "#" + "x" * 33, "#bob\ufe0f"):
        ann.send({"type": "join", "room": bad, "ref": bad})
        error = ann.expect("error", code="invalid_room", ref=bad)
        assert error["room"] == bad
    ann.send({"type": "join", "room": "#" + "x" * 32})
    ann.expect("joined", room="#" + "x" * 32)
    ann.send({"type": "join", "room": "#ｄｅｖ"})
    ann.expect("joined", room="#ｄｅｖ")
    ann.send({"type": "join", "room": "#DEV"})
    ann.expect("joined", room="#ｄｅｖ")  # one room: names compare by NFKC case fold


def test_limits_are_answered_with_their_errors(serve: Serve) -> None:
    address = serve(max_rooms=3, max_joined=2, max_room_members=2, rooms=("#random",))
    ann = rooms_login(address, "ann", [])
    ann.send({"type": "join", "room": "#dev"})
    ann.expect("joined", room="#dev")
    ann.send({"type": "join", "room": "#random", "ref": "r"})
    error = ann.expect("error", code="too_many_joined", room="#random", ref="r")
    assert error["max_joined"] == 2
    bob = rooms_login(address, "bob", ["#extra"])
    assert bob.welcome["rooms"] == ["#general"], "every room refused: the default room"
    error = bob.expect("error", code="too_many_rooms", room="#extra")
    assert error["max_rooms"] == 3
    carl = RawClient(address)
    carl.expect("hello")
    carl.send(login_frame("carl", rooms=["#dev", "#general", "#random"]))
    assert carl.expect("welcome")["rooms"] == ["#dev", "#random"]
    carl.expect("joined", room="#dev")
    carl.expect("joined", room="#random")
    full = carl.expect("error", code="room_full", room="#general")
    assert full["max_members"] == 2
    dora = RawClient(address)
    dora.expect("hello")
    dora.send(login_frame("dora"))
    dora.expect_error("room_full")
    dora.send(login_frame("dora", rooms=[]))
    dora.expect_error("room_full")
    dora.send(login_frame("dora", rooms=["#random"]))
    dora.expect("welcome", rooms=["#random"])


def test_an_empty_room_that_is_not_fixed_goes_when_space_is_needed(
    serve: Serve,
) -> None:
    address = serve(max_rooms=2, room_linger=600.0)
    ann = rooms_login(address, "ann", [])
    ann.send({"type": "join", "room": "#old"})
    ann.expect("joined", room="#old")
    ann.send({"type": "say", "room": "#old", "text": "kept"})
    ann.expect("message", text="kept")
    ann.send({"type": "topic", "room": "#old", "text": "old times"})
    ann.expect("topic")
    ann.send({"type": "join", "room": "#new"})
    ann.expect("error", code="too_many_rooms", room="#new")
    ann.send({"type": "part", "room": "#old"})
    ann.expect("parted")
    ann.send({"type": "join", "room": "#new"})
    ann.expect("joined", room="#new")
    ann.send({"type": "rooms"})
    assert [r["room"] for r in ann.expect("room_list")["rooms"]] == ["#general", "#new"]
    ann.send({"type": "part", "room": "#new"})
    ann.expect("parted")
    ann.send({"type": "join", "room": "#OLD"})
    back = ann.expect("joined", room="#old", topic="old times")
    assert [m["text"] for m in back["history"]] == ["kept"]


def test_an_empty_room_goes_after_the_linger_time(serve: Serve) -> None:
    address = serve(room_linger=0.3, rooms=("#random",))
    ann = rooms_login(address, "ann", ["#dev", "#random", "#general"])
    for room in ("#dev", "#random"):
        ann.send({"type": "part", "room": room})
        ann.expect("parted", room=room)
    names = ["#dev", "#general", "#random"]
    for _ in range(50):
        ann.send({"type": "rooms"})
        names = [r["room"] for r in ann.expect("room_list")["rooms"]]
        if names == ["#general", "#random"]:
            break
        ann.nothing_pending(wait=0.1)
    assert names == ["#general", "#random"], "the fixed room stays, the other goes"


def test_rooms_asked_for_at_login_are_joined_and_refusals_follow(
    serve: Serve,
) -> None:
    address = serve()
    ann = RawClient(address)
    ann.expect("hello")
    ann.send(login_frame("ann", rooms=["#dev", "bad room", "#Dev", "#general"]))
    frames = [ann.recv() for _ in range(4)]
    assert [(f["type"], f.get("room") or f.get("code")) for f in frames] == [
        ("welcome", None),
        ("joined", "#dev"),
        ("joined", "#general"),
        ("error", "bad room"),
    ]
    assert frames[0]["rooms"] == ["#dev", "#general"]
    assert frames[3]["code"] == "invalid_room"


def test_a_resumed_login_gets_what_each_room_missed(serve: Serve) -> None:
    address = serve()
    ann = rooms_login(address, "ann", ["#general", "#dev"])
    token, history_id = ann.welcome["resume"], ann.welcome["history_id"]
    bob = rooms_login(address, "bob", ["#general", "#dev", "#ops"])
    bob.send({"type": "say", "room": "#general", "text": "seen"})
    seen = bob.expect("message", text="seen")["id"]
    # ann's link dies without the server noticing; she comes back with her token
    for room, text in (
        ("#dev", "missed in dev"),
        ("#general", "missed here"),
        ("#ops", "not yours"),
    ):
        bob.send({"type": "say", "room": room, "text": text})
        bob.expect("message", text=text)
    back = rooms_login(address, "ann", [], resume=token, last_id=seen, history_id=history_id)
    assert back.welcome["rooms"] == ["#general", "#dev"], "the session's rooms, taken over"
    assert [m["text"] for m in back.joined["#general"]["history"]] == ["missed here"]
    assert [m["text"] for m in back.joined["#dev"]["history"]] == ["missed in dev"]
    assert bob.nothing_pending(), "a takeover is silent"


def test_a_4_0_client_resuming_gets_the_default_rooms_messages_only(
    serve: Serve,
) -> None:
    address = serve()
    old, welcome = old_login(address, "olga")
    bob = rooms_login(address, "bob", ["#general", "#dev"])
    old.expect("join")
    for room in ("#dev", "#general"):
        bob.send({"type": "say", "room": room, "text": f"in {room}"})
        bob.expect("message")
    old.expect("message", text="in #general")
    again = RawClient(address)
    again.expect("hello")
    resume = {"resume": welcome["resume"], "last_id": 0, "history_id": welcome["history_id"]}
    again.send(login_frame("olga", **resume))
    history = again.expect("welcome")["history"]
    assert [(m["text"], set(m)) for m in history] == [
        ("in #general", {"type", "id", "ts", "from", "text"})
    ]


def test_presence_batches_come_per_room(serve: Serve) -> None:
    address = serve()
    bridge = rooms_login(address, "bridge", ["#general", "#dev"], presence="batch")
    rooms_login(address, "ann", ["#dev"])
    batch = bridge.expect("presence")
    assert batch["changes"] == [
        {"type": "join", "name": "ann", "room": "#dev", "ts": batch["changes"][0]["ts"]}
    ]


def test_the_rate_limit_counts_room_frames_with_the_others(serve: Serve) -> None:
    address = serve(rate=0.5, burst=20)
    ann = rooms_login(address, "ann", [])
    frames: List[Dict[str, Any]] = []
    for n in range(7):
        frames += [
            {"type": "join", "room": f"#r{n}", "ref": f"j{n}"},
            {"type": "say", "room": "#general", "text": f"t{n}", "ref": f"s{n}"},
            {"type": "who", "room": "#general"},
        ]
    for frame in frames:
        ann.send(frame)
    answers = [ann.recv() for _ in frames]
    refused = [a for a in answers if a.get("code") == "rate_limited"]
    assert len(answers) - len(refused) == 20 and len(refused) == 1
