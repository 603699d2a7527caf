"""Rooms (protocol 4.2) in the client model, without a terminal: the frames of
docs/protocol.md "Rooms" and keys in, what the model shows and sends out."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from test_client_model import frames, type_keys, type_line

from lanchat import protocol
from lanchat.chat.actions import Action, Bell
from lanchat.chat.connection import Connected, Disconnected, Received
from lanchat.chat.model import ClientModel, Entry
from lanchat.chat.plain import format_entry
from lanchat.chat.view import render
from lanchat.client_curses import join_alt_keys
from lanchat.protocol import Frame

NOW = 1764000000.0
ADDRESS = ("127.0.0.1", 42069)
HELLO: Frame = {
    "type": "hello",
    "app": "lanchat",
    "version": "4.2.0",
    "server": "den",
    "online": ["alice"],
    "auth": "none",
    "limits": {"max_frame": 65536, "max_server_frame": 4194304, "max_text": 2000,
               "max_name": 24, "rate": 5.0, "burst": 30, "max_room": 32, "max_topic": 300,
               "max_joined": 20},
}  # fmt: skip
# The welcome and joined frames of docs/protocol.md, "Rooms (4.2)".
WELCOME: Frame = {
    "type": "welcome",
    "name": "bob",
    "online": ["alice", "bob", "carol"],
    "history": [],
    "resume": "f3b95fa19e7619e0",
    "history_id": "28ffb9412f0c4e6f",
    "rooms": ["#general", "#dev"],
    "default_room": "#general",
}
JOINED_GENERAL: Frame = {
    "type": "joined",
    "room": "#general",
    "topic": "",
    "members": ["alice", "bob", "carol"],
    "history": [
        {"type": "message", "id": 1, "ts": 1764000000.25, "from": "alice", "text": "morning",
         "room": "#general"},
    ],
}  # fmt: skip
JOINED_DEV: Frame = {
    "type": "joined",
    "room": "#dev",
    "topic": "release on Friday",
    "members": ["alice", "bob"],
    "history": [],
}


def receive(model: ClientModel, frame: Frame, now: float = NOW) -> List[Action]:
    return model.handle_event(Received(dict(frame)), now)


def connect(model: ClientModel) -> List[Action]:
    return model.handle_event(Connected(HELLO, ADDRESS), NOW)


def in_rooms(name: str = "bob", window: bool = True) -> ClientModel:
    """bob, logged in to a server with rooms: in #general (shown) and #dev."""
    model = ClientModel(name, *ADDRESS, ref_prefix="t", window=window)
    connect(model)
    for frame in (WELCOME, JOINED_GENERAL, JOINED_DEV):
        assert receive(model, frame) == []
    return model


def message(id: int, sender: str, text: str, room: str, **extra: Any) -> Frame:
    return {"type": "message", "id": id, "ts": NOW + id, "from": sender, "text": text,
            "room": room, **extra}  # fmt: skip


def shown(model: ClientModel) -> str:
    return model.rooms.current.name


def bar(model: ClientModel) -> Dict[str, tuple]:
    """Each room's (unread, mention)."""
    return {room.name: (room.unread, room.mention) for room in model.rooms.rooms}


def texts(model: ClientModel) -> List[str]:
    return [entry.text for entry in model.entries]


# --------------------------------------------------------------------------- login


def test_the_first_login_says_it_speaks_rooms_with_an_empty_list() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    assert frames(connect(model)) == [
        {"type": "login", "name": "bob", "version": protocol.VERSION, "rooms": []}
    ]


def test_the_welcome_and_joined_frames_give_each_room_its_members_topic_and_history() -> None:
    model = in_rooms()
    assert model.rooms.names == ["#general", "#dev"]
    assert shown(model) == "#general"
    assert model.online == ["alice", "bob", "carol"], "the side list: the current room"
    general, dev = model.rooms.rooms
    assert [(e.sender, e.text, e.room) for e in general.entries if e.kind == "message"] == [
        ("alice", "morning", "#general")
    ]
    assert dev.members == ["alice", "bob"] and dev.topic == "release on Friday"
    assert [e.text for e in dev.entries] == ["topic: release on Friday"]
    assert bar(model) == {"#general": (0, False), "#dev": (0, False)}, "history is not unread"


def test_the_login_note_follows_the_histories_of_the_rooms() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    connect(model)
    receive(model, WELCOME)
    assert not any("you are bob" in text for text in texts(model)), "not before the history"
    receive(model, JOINED_GENERAL)
    receive(model, JOINED_DEV)
    assert texts(model) == ["morning", "you are bob on den; /help lists commands"]


def test_the_rooms_of_the_login_are_awaited_as_answers() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    connect(model)
    receive(model, WELCOME)
    assert model.awaiting_answers, "plain mode must not leave before the histories"
    receive(model, JOINED_GENERAL)
    assert model.awaiting_answers
    receive(model, JOINED_DEV)
    assert not model.awaiting_answers


def test_a_login_after_a_drop_carries_the_rooms_it_was_in() -> None:
    model = in_rooms()
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    assert frames(connect(model)) == [
        protocol.login(
            "bob",
            rooms=["#general", "#dev"],
            last_id=1,
            history_id="28ffb9412f0c4e6f",
            resume="f3b95fa19e7619e0",
        )
    ]


def test_a_welcome_that_leaves_out_a_room_we_were_in_says_so() -> None:
    model = in_rooms()
    type_keys(model, "\x1b2")
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    connect(model)
    receive(model, {**WELCOME, "rooms": ["#general"], "resume": "r2"})
    assert model.rooms.names == ["#general"]
    assert shown(model) == "#general", "the room shown is gone: the first one is shown"
    assert "you are no longer in #dev" in texts(model)


# --------------------------------------------------------------------------- messages


def test_a_message_in_another_room_counts_as_unread_there() -> None:
    model = in_rooms()
    assert receive(model, message(2, "alice", "build is green", "#dev")) == []
    assert receive(model, message(3, "alice", "and deployed", "#dev")) == []
    assert bar(model) == {"#general": (0, False), "#dev": (2, False)}
    assert "build is green" not in texts(model), "not in the room shown"
    dev = model.rooms.rooms[1]
    assert [(e.text, e.room) for e in dev.entries[-2:]] == [
        ("build is green", "#dev"),
        ("and deployed", "#dev"),
    ]


def test_a_message_in_the_room_shown_is_not_unread() -> None:
    model = in_rooms()
    receive(model, message(2, "alice", "hi", "#general"))
    assert bar(model)["#general"] == (0, False)
    assert texts(model)[-1] == "hi"


def test_a_mention_in_another_room_rings_once_and_marks_the_room() -> None:
    model = in_rooms()
    assert receive(model, message(2, "alice", "bob, look", "#dev")) == [Bell()]
    assert receive(model, message(3, "alice", "bob?", "#dev")) == [], "once, until seen"
    assert bar(model)["#dev"] == (2, True)
    type_keys(model, "\x1b2")
    assert bar(model)["#dev"] == (0, False)
    assert receive(model, message(4, "carol", "bob, again", "#general")) == [Bell()]


def test_a_mention_in_the_room_shown_rings_each_time_as_before() -> None:
    model = in_rooms()
    assert receive(model, message(2, "alice", "bob, look", "#general")) == [Bell()]
    assert receive(model, message(3, "alice", "bob?", "#general")) == [Bell()]
    assert bar(model)["#general"] == (0, False)


def test_a_private_message_shows_in_the_room_shown_and_in_no_room() -> None:
    model = in_rooms()
    type_keys(model, "\x1b2")
    private = {"type": "message", "id": 2, "ts": NOW, "from": "alice", "text": "psst",
               "to": "bob"}  # fmt: skip
    assert receive(model, private) == [Bell()]
    entry = model.entries[-1]
    assert (entry.text, entry.to, entry.room) == ("psst", "bob", None)
    assert bar(model) == {"#general": (0, False), "#dev": (0, False)}


def test_own_echoes_in_another_room_are_not_unread() -> None:
    model = in_rooms()
    type_line(model, "hello general")
    type_keys(model, "\x1b2")
    receive(model, message(2, "bob", "hello general", "#general", ref="t-1"))
    assert bar(model)["#general"] == (0, False)
    assert model.outbox == []


# --------------------------------------------------------------------------- switching


def test_alt_digit_shows_that_room_and_clears_its_unread() -> None:
    model = in_rooms()
    receive(model, message(2, "alice", "news", "#dev"))
    assert type_keys(model, "\x1b2") == []
    assert shown(model) == "#dev"
    assert bar(model)["#dev"] == (0, False)
    assert model.online == ["alice", "bob"]
    type_keys(model, "\x1b9")
    assert shown(model) == "#dev", "no room 9"
    type_keys(model, "\x1b1")
    assert shown(model) == "#general"
    assert model.input == "", "nothing typed"


def test_alt_left_and_right_step_round_the_rooms() -> None:
    model = in_rooms()
    type_keys(model, "kRIT3")
    assert shown(model) == "#dev"
    type_keys(model, "kRIT3")
    assert shown(model) == "#general", "round the end"
    type_keys(model, "kLFT3")
    assert shown(model) == "#dev"


def test_esc_and_an_arrow_are_alt_and_that_arrow() -> None:
    assert join_alt_keys(["\x1b", "KEY_LEFT", "\x1b", "KEY_RIGHT"]) == ["kLFT3", "kRIT3"]
    assert join_alt_keys(["\x1b", "2"]) == ["\x1b2"]
    assert join_alt_keys(["KEY_LEFT"]) == ["KEY_LEFT"]


def test_ctrl_x_then_n_or_p_steps_and_other_keys_act_as_usual() -> None:
    model = in_rooms()
    receive(model, message(2, "alice", "bob!", "#dev"))
    type_keys(model, "\x18", "n")
    assert shown(model) == "#dev" and bar(model)["#dev"] == (0, False)
    type_keys(model, "\x18", "p")
    assert shown(model) == "#general"
    type_keys(model, "\x18", "2")
    assert shown(model) == "#dev"
    type_keys(model, "\x18", "x", "n")
    assert shown(model) == "#dev" and model.input == "xn"


def test_switching_goes_back_to_the_newest_lines() -> None:
    model = in_rooms()
    model.set_viewport(5, 50)
    type_keys(model, "KEY_PPAGE")
    assert model.scroll > 0
    type_keys(model, "\x1b2")
    assert model.scroll == 0


# --------------------------------------------------------------------------- sending


def test_a_typed_line_goes_to_the_room_shown() -> None:
    model = in_rooms()
    assert frames(type_line(model, "hi all")) == [
        {"type": "say", "text": "hi all", "ref": "t-1", "room": "#general"}
    ]
    receive(model, message(2, "bob", "hi all", "#general", ref="t-1"))
    type_keys(model, "\x1b2")
    assert frames(type_line(model, "build is green")) == [
        {"type": "say", "text": "build is green", "ref": "t-2", "room": "#dev"}
    ]
    assert frames(type_line(model, "/msg alice psst")) == [], "one at a time"
    receive(model, message(3, "bob", "build is green", "#dev", ref="t-2"))
    assert model.outbox[0].room is None, "a private message is in no room"


def test_a_message_sent_again_after_a_drop_keeps_its_room() -> None:
    model = in_rooms()
    type_keys(model, "\x1b2")
    first = frames(type_line(model, "did this arrive?"))
    type_keys(model, "\x1b1")
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    connect(model)
    again = frames(receive(model, {**WELCOME, "resume": "r2"}))
    again += frames(receive(model, JOINED_GENERAL))
    again += frames(receive(model, JOINED_DEV))
    again += frames(model.tick(NOW + 1))
    assert (
        first
        == again
        == [{"type": "say", "text": "did this arrive?", "ref": "t-1", "room": "#dev"}]
    )


def test_pending_lines_show_in_their_own_room_only() -> None:
    model = in_rooms()
    type_line(model, "still on its way")
    assert any("(pending)" in row for row in render(model, 24, 80).text())
    type_keys(model, "\x1b2")
    assert not any("(pending)" in row for row in render(model, 24, 80).text())


# --------------------------------------------------------------------------- presence


def test_joins_and_leaves_change_their_room_only() -> None:
    model = in_rooms()
    receive(model, {"type": "join", "name": "carol", "room": "#dev", "ts": NOW + 2})
    assert model.online == ["alice", "bob", "carol"]
    assert model.rooms.rooms[1].members == ["alice", "bob", "carol"]
    receive(model, {"type": "leave", "name": "carol", "room": "#dev", "ts": NOW + 3,
                    "reason": "part"})  # fmt: skip
    assert model.rooms.rooms[1].members == ["alice", "bob"]
    assert model.online == ["alice", "bob", "carol"], "#general still has carol"
    dev_lines = [(e.text, e.room) for e in model.rooms.rooms[1].entries[-2:]]
    assert dev_lines == [("carol joined", "#dev"), ("carol left #dev", "#dev")]
    assert bar(model)["#dev"] == (0, False), "comings and goings are not unread"


def test_the_side_list_is_the_room_shown() -> None:
    model = in_rooms()
    type_keys(model, "\x1b2")
    side = [row.split("|")[-1].strip() for row in render(model, 24, 80).text()[1:4]]
    assert side == ["online (2)", "alice", "bob"]


# --------------------------------------------------------------------------- commands


def test_join_without_a_hash_joins_that_room_and_shows_it_once_joined() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/join random")) == [{"type": "join", "room": "#random",
                                                  "ref": "t-1"}]  # fmt: skip
    assert model.joining and shown(model) == "#general"
    history = [message(5, "carol", "cats", "#random")]
    joined = {"type": "joined", "room": "#random", "topic": "", "members": ["bob", "carol"],
              "history": history, "ref": "t-1"}  # fmt: skip
    assert receive(model, joined) == []
    assert not model.joining
    assert shown(model) == "#random" and model.rooms.names[-1] == "#random"
    assert texts(model) == ["cats", "you joined #random (2 here)"]
    assert model.online == ["bob", "carol"]
    assert frames(type_line(model, "meow")) == [
        {"type": "say", "text": "meow", "ref": "t-2", "room": "#random"}
    ]


def test_join_of_a_room_we_are_in_shows_it() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/join #DEV")) == []
    assert shown(model) == "#dev"


def test_a_join_in_flight_is_asked_for_again_in_the_next_login() -> None:
    model = in_rooms()
    type_line(model, "/join #random")
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    login = frames(connect(model))[0]
    assert login["rooms"] == ["#general", "#dev", "#random"]
    receive(model, {**WELCOME, "rooms": ["#general", "#dev", "#random"]})
    receive(model, JOINED_GENERAL)
    receive(model, JOINED_DEV)
    receive(model, {"type": "joined", "room": "#random", "topic": "", "members": ["bob"],
                    "history": []})  # fmt: skip
    assert shown(model) == "#random" and not model.joining


def test_part_leaves_the_room_shown_and_shows_the_one_before() -> None:
    model = in_rooms()
    type_keys(model, "\x1b2")
    assert frames(type_line(model, "/part")) == [{"type": "part", "room": "#dev", "ref": "t-1"}]
    assert model.awaiting_answers
    receive(model, {"type": "parted", "room": "#dev", "ref": "t-1"})
    assert model.rooms.names == ["#general"] and shown(model) == "#general"
    assert texts(model)[-1] == "you left #dev"
    assert not model.awaiting_answers


def test_part_of_the_last_room_is_refused_with_a_note() -> None:
    model = in_rooms()
    type_line(model, "/part #dev")
    receive(model, {"type": "parted", "room": "#dev", "ref": "t-1"})
    type_line(model, "/part general")
    refusal = protocol.error("bad_frame", "You cannot leave the last room you are in.")
    receive(model, {**refusal, "code": "last_room", "room": "#general", "ref": "t-2"})
    assert model.rooms.names == ["#general"]
    assert model.entries[-1].kind == "error"
    assert texts(model)[-1] == "#general: You cannot leave the last room you are in."
    assert not model.awaiting_answers


def test_part_of_a_room_we_are_not_in_says_so() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/part #nowhere")) == []
    assert texts(model)[-1] == "you are not in #nowhere"


@pytest.mark.parametrize(
    "code",
    ["invalid_room", "room_full", "too_many_joined", "too_many_rooms", "no_such_room"],
)
def test_a_refused_join_becomes_a_note_and_stops_waiting(code: str) -> None:
    model = in_rooms()
    type_line(model, "/join #a b")
    error = {"type": "error", "code": code, "message": "Not that room.", "room": "#a b",
             "ref": "t-1"}  # fmt: skip
    receive(model, error)
    assert not model.joining and not model.awaiting_answers
    assert (model.entries[-1].kind, texts(model)[-1]) == ("error", "#a b: Not that room.")
    assert model.rooms.names == ["#general", "#dev"] and shown(model) == "#general"


def test_a_message_to_a_room_we_left_is_not_sent_with_a_note() -> None:
    model = in_rooms()
    type_line(model, "hello?")
    error = {"type": "error", "code": "not_in_room", "message": "You are not in that room.",
             "room": "#general", "ref": "t-1"}  # fmt: skip
    receive(model, error)
    assert model.outbox == []
    assert texts(model)[-1] == "not sent to #general: You are not in that room. (hello?)"


def test_rooms_lists_every_room_with_its_members_and_topic() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/rooms")) == [{"type": "rooms"}]
    assert model.awaiting_answers
    receive(model, {"type": "room_list", "rooms": [
        {"room": "#dev", "members": 2, "topic": "release on Friday"},
        {"room": "#general", "members": 3, "topic": ""}]})  # fmt: skip
    assert texts(model)[-3:] == ["rooms (2):", "  #dev (2): release on Friday", "  #general (3)"]
    assert not model.awaiting_answers


def test_topic_shows_the_topic_and_sets_it() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/topic")) == []
    assert texts(model)[-1] == "#general has no topic"
    type_keys(model, "\x1b2")
    type_line(model, "/topic")
    assert texts(model)[-1] == "topic of #dev: release on Friday"
    assert frames(type_line(model, "/topic ship it")) == [
        {"type": "topic", "room": "#dev", "text": "ship it", "ref": "t-1"}
    ]
    receive(model, {"type": "topic", "room": "#dev", "text": "ship it", "by": "bob",
                    "ts": NOW + 4})  # fmt: skip
    assert (texts(model)[-1], model.entries[-1].room) == ("bob set the topic: ship it", "#dev")
    type_line(model, "/topic")
    assert texts(model)[-1] == "topic of #dev: ship it (set by bob)"
    assert not model.awaiting_answers


def test_topic_names_a_room_first_as_on_irc() -> None:
    model = in_rooms()  # in #general and #dev, #general shown
    assert frames(type_line(model, "/topic #dev #1 priority")) == [
        {"type": "topic", "room": "#dev", "text": "#1 priority", "ref": "t-1"}
    ]
    receive(model, {"type": "topic", "room": "#dev", "text": "#1 priority", "by": "me",
                    "ts": NOW, "ref": "t-1"})  # fmt: skip
    assert model.rooms.rooms[1].topic == "#1 priority"
    assert frames(type_line(model, "/topic #ops")) == [  # not ours: the server knows
        {"type": "topic", "room": "#ops", "ref": "t-2"}
    ]
    receive(model, {"type": "topic", "room": "#ops", "text": "on call", "by": "carol",
                    "ts": NOW, "ref": "t-2"})  # fmt: skip
    assert texts(model)[-1] == "topic of #ops: on call (set by carol)"
    assert not model.awaiting_answers


def test_a_topic_set_in_another_room_is_not_unread() -> None:
    model = in_rooms()
    receive(model, {"type": "topic", "room": "#dev", "text": "", "by": "alice", "ts": NOW})
    assert model.rooms.rooms[1].entries[-1].text == "alice cleared the topic"
    assert bar(model)["#dev"] == (0, False)


def test_who_asks_about_the_room_shown_or_the_one_named() -> None:
    model = in_rooms()
    assert frames(type_line(model, "/who")) == [{"type": "who", "room": "#general"}]
    receive(model, {"type": "online", "room": "#general", "names": ["carol", "bob"]})
    assert texts(model)[-1] == "#general online (2): bob, carol"
    assert model.online == ["bob", "carol"]
    assert frames(type_line(model, "/who lobby")) == [{"type": "who", "room": "#lobby"}]
    receive(model, {"type": "online", "room": "#lobby", "names": ["dave"]})
    assert texts(model)[-1] == "#lobby online (1): dave"
    assert model.online == ["bob", "carol"], "a room we are not in changes nothing here"


def test_help_lists_the_room_commands_and_keys() -> None:
    model = in_rooms()
    type_line(model, "/help")
    help_text = "\n".join(texts(model))
    for word in ("/join #room", "/part [#room]", "/rooms", "/topic [#room] [text]", "/who [#room]",
                 "Alt-1", "Alt-Left", "Ctrl-X n"):  # fmt: skip
        assert word in help_text


def test_tab_completes_a_room_after_join_part_and_who() -> None:
    model = in_rooms()
    type_keys(model, *"/part d", "\t")
    assert model.input == "/part #dev "
    type_keys(model, "\x15", *"/join #g", "\t")
    assert model.input == "/join #general "


# --------------------------------------------------------------------------- the view


def test_the_room_bar_shows_each_room_its_unread_count_and_mentions() -> None:
    model = in_rooms()
    type_line(model, "/join #random")
    receive(model, {"type": "joined", "room": "#random", "topic": "", "members": ["bob"],
                    "history": [], "ref": "t-1"})  # fmt: skip
    type_keys(model, "\x1b1")
    for id in (2, 3, 4):
        receive(model, message(id, "alice", f"dev {id}", "#dev"))
    receive(model, message(5, "carol", "bob: cats", "#random"))
    screen = render(model, 24, 80)
    assert screen.text()[22].rstrip() == "1:#general  2:#dev(3)  3:#random(1!)"
    styles = {text: style for text, style in screen.rows[22]}
    assert styles["1:#general"] == "roomnow"
    assert styles["2:#dev(3)"] == "roomnew"
    assert styles["3:#random(1!)"] == "roommention"
    assert screen.text()[23].startswith("> "), "the input line stays last"


def test_a_narrow_room_bar_still_shows_the_current_room() -> None:
    model = in_rooms()
    for index in range(3, 9):
        receive(model, {"type": "joined", "room": f"#room{index}", "topic": "",
                        "members": ["bob"], "history": []})  # fmt: skip
    type_keys(model, "\x1b8")
    row = render(model, 10, 24).text()[8]
    assert "8:#room8" in row and len(row) == 24


# --------------------------------------------------------------------------- plain mode


def test_plain_lines_about_a_room_carry_it_after_the_time() -> None:
    model = in_rooms(window=False)
    receive(model, message(2, "bob", "hi", "#random"))  # not in it: not shown
    receive(model, message(3, "alice", "hi", "#dev"))
    receive(model, {"type": "join", "name": "carol", "room": "#dev", "ts": NOW})
    printed = [format_entry(entry) for entry in model.entries_after(0)]
    hhmm = format_entry(Entry("system", "x", 0, ts=NOW))[:5]
    assert f"{hhmm} #general alice: morning" in printed
    assert f"{hhmm} #dev alice: hi" in printed
    assert f"{hhmm} #dev -- carol joined" in printed
    assert f"{hhmm} -- you are bob on den; /help lists commands" in printed
    assert not any("#random" in text for text in printed)


# --------------------------------------------------------------------------- no rooms


def test_a_server_without_rooms_gets_the_client_of_before() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    assert frames(connect(model))[0]["rooms"] == []
    receive(model, protocol.welcome("bob", ["alice", "bob"], [protocol.message(1, NOW, "alice",
                                                                               "hi")]))  # fmt: skip
    assert not model.rooms.enabled and model.rooms.names == []
    assert model.online == ["alice", "bob"]
    assert frames(type_line(model, "hello")) == [protocol.say("hello", ref="t-1")]
    receive(model, protocol.message(2, NOW, "bob", "hello", ref="t-1"))
    for command in ("/join #dev", "/part", "/rooms", "/topic", "/who #dev"):
        assert frames(type_line(model, command)) == []
        assert texts(model)[-1] == "this server has no rooms"
    assert frames(type_line(model, "/who")) == [protocol.who()]
    assert type_keys(model, "\x1b2", "kRIT3") == []
    screen = render(model, 24, 80).text()
    assert not any(row.startswith("1:") for row in screen), "no room bar"
    assert all(entry.room is None for entry in model.entries)
    assert format_entry(model.entries[0]).endswith(" alice: hi")
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    assert frames(connect(model))[0]["rooms"] == []
