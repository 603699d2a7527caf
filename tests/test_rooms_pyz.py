"""Rooms on the built pyz: membership and per-room history across a restart, a 4.0
history file migrated into the default room, and the rooms options."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
from test_rooms import old_login, rooms_login
from wire import PyzServer, RawClient, login_frame

from lanchat.core.history import MIGRATIONS, SCHEMA_VERSION


@pytest.fixture
def stoppable(pyz: Path, tmp_path: Path) -> Iterator[PyzServer]:
    server = PyzServer(str(pyz), "--history-db", str(tmp_path / "history.sqlite3"))
    try:
        yield server
    finally:
        server.kill()


def test_a_restart_keeps_membership_topics_and_each_rooms_history(stoppable: PyzServer) -> None:
    address = stoppable.start()
    ann = rooms_login(address, "ann", ["#general", "#dev"])
    ann.send({"type": "say", "room": "#dev", "text": "in dev", "ref": "a1"})
    ann.expect("message", text="in dev", room="#dev")
    ann.send({"type": "say", "room": "#general", "text": "in general"})
    ann.expect("message", text="in general", room="#general")
    ann.send({"type": "topic", "room": "#dev", "text": "release on Friday"})
    ann.expect("topic", room="#dev")
    ann.send({"type": "part", "room": "#general"})
    ann.expect("parted", room="#general")
    token = ann.welcome["resume"]

    address = stoppable.restart()
    back = rooms_login(address, "ann", [], resume=token)
    assert back.welcome["rooms"] == ["#dev"], "the rooms kept with the resume token"
    dev = back.joined["#dev"]
    assert dev["topic"] == "release on Friday"
    assert [(m["text"], m["room"]) for m in dev["history"]] == [("in dev", "#dev")]
    back.send({"type": "say", "room": "#dev", "text": "in dev", "ref": "a1"})
    resent = back.expect("message", ref="a1")
    assert resent["id"] == dev["history"][0]["id"], "a resend across a restart is not doubled"

    stranger = rooms_login(address, "bob", [])
    assert stranger.welcome["rooms"] == ["#general"], "no token: the default room"
    assert [m["text"] for m in stranger.joined["#general"]["history"]] == ["in general"]
    _, welcome = old_login(address, "olga")
    assert [m["text"] for m in welcome["history"]] == ["in general"]


def test_a_client_that_names_its_rooms_gets_them_after_a_restart(stoppable: PyzServer) -> None:
    address = stoppable.start()
    ann = rooms_login(address, "ann", ["#ops"])
    ann.send({"type": "say", "room": "#ops", "text": "disk at 80%"})
    last = ann.expect("message", room="#ops")
    address = stoppable.restart()
    back = rooms_login(
        address,
        "ann",
        ["#ops"],
        resume=ann.welcome["resume"],
        last_id=last["id"] - 1,
        history_id=ann.welcome["history_id"],
    )
    assert [m["text"] for m in back.joined["#ops"]["history"]] == ["disk at 80%"]


def test_a_4_0_history_file_is_migrated_into_the_default_room(pyz: Path, tmp_path: Path) -> None:
    db = tmp_path / "history-4.0.sqlite3"
    with sqlite3.connect(str(db)) as conn:  # the file as lanchat 4.0 left it (schema 1)
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO meta (key, value) VALUES ('history_id', 'h40')")
        for n, text in enumerate(("first", "second"), start=1):
            conn.execute(
                "INSERT INTO messages (id, ts, sender, text, sender_key, ref) "
                "VALUES (?, 1764000000.0, 'Bob', ?, 'bob', ?)",
                (n, text, f'"r{n}"'),
            )
        conn.execute("PRAGMA user_version = 1")
    server = PyzServer(str(pyz), "--history-db", str(db), "--default-room", "lobby")
    try:
        address = server.start()
        ann = rooms_login(address, "ann", [])
        assert ann.welcome["rooms"] == ["#lobby"] and ann.welcome["history_id"] == "h40"
        history = ann.joined["#lobby"]["history"]
        assert [(m["id"], m["text"], m["room"]) for m in history] == [
            (1, "first", "#lobby"),
            (2, "second", "#lobby"),
        ]
        _, welcome = old_login(address, "olga")
        assert [m["text"] for m in welcome["history"]] == ["first", "second"]
        ann.expect("join", name="olga", room="#lobby")
        ann.send({"type": "say", "room": "#lobby", "text": "third"})
        assert ann.expect("message", text="third")["id"] > 2
        bob = RawClient(address)
        bob.expect("hello")
        bob.send(login_frame("bob"))
        bob.expect("welcome")
        bob.send({"type": "say", "text": "second", "ref": "r2"})
        assert bob.expect("message", ref="r2")["id"] == 2, "4.0 refs still recognised"
    finally:
        server.kill()
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rooms = conn.execute("SELECT DISTINCT room_key, room FROM messages").fetchall()
        assert rooms == [("#lobby", "#lobby")]


def test_rooms_options_make_fixed_rooms_and_name_the_default(pyz: Path) -> None:
    server = PyzServer(str(pyz), "--no-history", "--rooms", "random,#Dev", "--default-room", "hall")
    try:
        address = server.start()
        ann = rooms_login(address, "ann", [])
        assert ann.welcome["default_room"] == "#hall"
        ann.send({"type": "rooms"})
        listing = ann.expect("room_list")["rooms"]
        assert [r["room"] for r in listing] == ["#Dev", "#hall", "#random"]
    finally:
        server.kill()
