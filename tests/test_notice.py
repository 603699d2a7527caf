"""Notices (protocol 4.4): a `say` with `"notice": true` is relayed as a `message` that
keeps the mark, to a room or to a person, and is kept so in the history (both kinds of
history, and across a restart of the file); a client before 4.4 sees an ordinary
message. Real sockets to in-process servers, spoken to by `wire.RawClient`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, List, Tuple

from conftest import MakeServer
from wire import RawClient

from lanchat import protocol
from lanchat.core import history

Address = Tuple[str, int]


def member(address: Address, name: str, version: str = protocol.VERSION, **login: Any) -> RawClient:
    """A lanchat client of this version, logged in (in #general when it speaks rooms)."""
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": version, **login})
    client.expect("welcome", name=name)
    if "rooms" in login:
        client.expect("joined")
    return client


def relayed(client: RawClient, text: str) -> dict:
    """The next message frame with this text, past any other frames."""
    while True:
        frame = client.recv()
        if frame["type"] == "message" and frame["text"] == text:
            return frame


def test_a_room_notice_reaches_everybody_marked_and_the_sender_with_its_ref(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    bob = member(address, "bob", rooms=[])
    ann = member(address, "ann", rooms=[])
    bob.send({"type": "say", "text": "build passed", "notice": True, "ref": "n1"})
    own = relayed(bob, "build passed")
    assert own["notice"] is True and own["ref"] == "n1"
    theirs = relayed(ann, "build passed")
    assert theirs["notice"] is True and theirs["from"] == "bob" and "ref" not in theirs
    bob.send({"type": "say", "text": "plain words"})
    assert "notice" not in relayed(ann, "plain words")


def test_a_private_notice_is_marked_for_the_recipient(make_server: MakeServer) -> None:
    address = make_server().address
    bob = member(address, "bob", rooms=[])
    ann = member(address, "ann", rooms=[])
    bob.send({"type": "say", "text": "psst", "to": "ann", "notice": True})
    frame = relayed(ann, "psst")
    assert frame["notice"] is True and frame["to"] == "ann"


def test_older_clients_see_an_ordinary_message(make_server: MakeServer) -> None:
    address = make_server().address
    old_rooms = member(address, "olga", "4.3.0", rooms=[])
    old_single = member(address, "otto", "4.0.0")
    bob = member(address, "bob", rooms=[])
    bob.send({"type": "say", "text": "deploying", "notice": True})
    for old in (old_rooms, old_single):
        frame = relayed(old, "deploying")
        assert "notice" not in frame and frame["from"] == "bob"


def test_a_notice_field_that_is_not_true_or_false_is_bad_frame(make_server: MakeServer) -> None:
    bob = member(make_server().address, "bob", rooms=[])
    bob.send({"type": "say", "text": "hi", "notice": "yes", "ref": "x"})
    assert bob.expect_error("bad_frame")["ref"] == "x"


def history_of(address: Address, name: str) -> List[dict]:
    """The #general history a newcomer who speaks rooms is given."""
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": protocol.VERSION, "rooms": []})
    client.expect("welcome", name=name)
    history: List[dict] = client.expect("joined")["history"]
    client.close()
    return history


def say_both_kinds(address: Address) -> None:
    bob = member(address, "bob", rooms=[])
    bob.send({"type": "say", "text": "a notice", "notice": True, "ref": "n"})
    relayed(bob, "a notice")
    bob.send({"type": "say", "text": "a message", "ref": "m"})
    relayed(bob, "a message")
    bob.close()


def marks(history: List[dict]) -> List[Tuple[str, bool]]:
    return [(m["text"], m.get("notice", False)) for m in history]


def test_the_memory_history_keeps_the_notice_mark(make_server: MakeServer) -> None:
    address = make_server().address
    say_both_kinds(address)
    assert marks(history_of(address, "cleo")) == [("a notice", True), ("a message", False)]


def test_the_history_file_keeps_the_notice_mark_across_a_restart(
    make_server: MakeServer, tmp_path: Path
) -> None:
    path = tmp_path / "history.sqlite3"
    first = make_server(history_db=str(path))
    say_both_kinds(first.address)
    assert marks(history_of(first.address, "cleo")) == [("a notice", True), ("a message", False)]
    assert first.shutdown(timeout=10)
    first.server_close()  # releases the history file (the fixture's second close is harmless)
    again = make_server(history_db=str(path))
    assert marks(history_of(again.address, "dora")) == [("a notice", True), ("a message", False)]


def test_a_history_file_of_schema_5_gains_the_notice_column(tmp_path: Path) -> None:
    """An older file opens, its messages stay ordinary ones, and a notice is kept."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(str(path)) as conn:
        for script in history.MIGRATIONS[:5]:
            conn.executescript(script.format(default_key="'#general'", default_room="'#general'"))
        conn.execute(
            "INSERT INTO messages (id, ts, sender, text, sender_key, room_key, room)"
            " VALUES (1, 1.0, 'bob', 'old', 'bob', '#general', '#general')"
        )
        conn.execute("PRAGMA user_version = 5")
    opened = history.SqliteHistory(path)
    try:
        notice = protocol.message(opened.next_id(), 2.0, "bob", "new", room="#general")
        notice["notice"] = True
        opened.add(notice, "bob", None)
        assert marks(opened.recent("#general", 10)) == [("old", False), ("new", True)]
    finally:
        opened.close()


def test_a_private_notice_to_somebody_away_gets_no_away_reply(make_server: MakeServer) -> None:
    address = make_server().address
    bob = member(address, "bob", rooms=[])
    ann = member(address, "ann", rooms=[])
    ann.send({"type": "away", "text": "lunch", "ref": "a"})
    ann.expect("away", ref="a")
    bob.send({"type": "say", "text": "fyi", "to": "ann", "notice": True, "ref": "n"})
    bob.send({"type": "ping", "token": "after"})
    frames = bob.recv_until("pong")
    assert [f for f in frames if f["type"] == "away" and f.get("reply")] == []
    bob.send({"type": "say", "text": "hello?", "to": "ann"})
    reply = bob.recv_until("away")[-1]
    assert (reply["name"], reply["text"], reply.get("reply")) == ("ann", "lunch", True)
