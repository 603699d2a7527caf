"""Your name is yours after a restart: resume tokens are kept (hashed) in the history.

A login with the name's newest resume token, used within the last 7 days, gets the name
back even from a stranger who took it in the meantime: the stranger gets `name_reclaimed`
and is closed, the others see the stranger leave and the owner join.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import pytest
from conftest import pyz_command
from wire import PyzServer, RawClient, login, login_frame

from lanchat import protocol
from lanchat.core.chat import Chat, Resume
from lanchat.core.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    History,
    MemoryHistory,
    SqliteHistory,
    StorageError,
)
from lanchat.core.rooms import Member
from lanchat.protocol import ProtocolError

DAY = 24 * 3600.0


# -- the built pyz, restarted --------------------------------------------------------------


@pytest.fixture
def restartable(pyz: Path) -> Iterator[Any]:
    """Makes `PyzServer`s of the built pyz; kills them after the test."""
    servers: List[PyzServer] = []

    def make(*options: str) -> PyzServer:
        servers.append(PyzServer(str(pyz), *options))
        return servers[-1]

    yield make
    for server in servers:
        server.kill()


def test_a_token_from_before_a_restart_takes_the_name_back_from_a_stranger(
    restartable: Any, tmp_path: Path
) -> None:
    server = restartable("--history-db", str(tmp_path / "h.sqlite3"))
    address = server.start()
    _, first = login(address, "carol")
    address = server.restart()

    stranger, _ = login(address, "Carol")  # first after the restart: the name is free
    bob, _ = login(address, "bob")
    stranger.expect("join", name="bob")
    carol = RawClient(address)  # carol's client comes back with the token it kept
    carol.expect("hello")
    carol.send(login_frame("carol", resume=first["resume"], history_id=first["history_id"]))
    welcome = carol.expect("welcome", name="carol")
    assert welcome["online"] == ["bob", "carol"]
    assert welcome["resume"] != first["resume"]

    notice = stranger.expect_closed()
    assert [f.get("code") for f in notice] == ["name_reclaimed"]
    assert "Carol" in notice[0]["message"]
    bob.expect("leave", name="Carol", reason="error")
    bob.expect("join", name="carol")
    bob.send({"type": "who"})
    assert bob.expect("online")["names"] == ["bob", "carol"]
    bob.send({"type": "say", "text": "welcome back", "to": "CAROL"})
    carol.expect("message", text="welcome back")

    again = RawClient(address)
    again.expect("hello")
    again.send(login_frame("carol"))
    again.expect_error("name_taken")


def test_with_no_history_tokens_do_not_survive_a_restart(restartable: Any) -> None:
    server = restartable("--no-history")
    address = server.start()
    _, first = login(address, "carol")
    address = server.restart()
    stranger, _ = login(address, "carol")
    carol = RawClient(address)
    carol.expect("hello")
    carol.send(login_frame("carol", resume=first["resume"]))
    carol.expect_error("name_taken")
    assert stranger.nothing_pending()


def test_the_history_file_keeps_no_token_in_the_clear(restartable: Any, tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    server = restartable("--history-db", str(db))
    _, welcome = login(server.start(), "carol")
    server.stop()
    data = b"".join(path.read_bytes() for path in tmp_path.glob("h.sqlite3*"))
    assert welcome["resume"].encode() not in data
    with sqlite3.connect(str(db)) as conn:
        rows = conn.execute("SELECT name_key, token_hash FROM resume_tokens").fetchall()
    assert rows == [("carol", hashlib.sha256(welcome["resume"].encode()).hexdigest())]


# -- the room alone, on a clock of its own ------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1764000000.0

    def __call__(self) -> float:
        return self.now


Sent = List[Tuple[str, dict]]


def make_room(history: History, clock: Clock) -> Tuple[Chat, Sent]:
    sent: Sent = []

    def deliver(items: Iterable[Tuple[Member, bytes]]) -> None:
        for member, data in items:
            sent.append((member.name, protocol.decode_line(data.rstrip(b"\n"))))

    return Chat(deliver, history, clock=clock), sent


def leave_and_let_a_stranger_in(room: Chat, name: str) -> Tuple[Member, str]:
    """`name` logs in and drops; a stranger takes the name; return it and the token."""
    owner = Member(name)
    room.join(owner)
    token = owner.resume_token
    room.leave(owner, "disconnect")
    stranger = Member(name)
    room.join(stranger)
    return stranger, token


@pytest.mark.parametrize("days, reclaimed", [(6.9, True), (7.1, False)])
def test_a_token_lasts_7_days_after_its_last_use(days: float, reclaimed: bool) -> None:
    clock = Clock()
    room, _ = make_room(MemoryHistory(), clock)
    owner = Member("carol")
    room.join(owner)
    clock.now += 30 * DAY  # online for a month: the leave counts as the last use
    room.leave(owner, "disconnect")
    clock.now += days * DAY
    stranger = Member("carol")
    room.join(stranger)
    back = Member("carol")
    if reclaimed:
        assert room.join(back, Resume(token=owner.resume_token)) is stranger
    else:
        with pytest.raises(ProtocolError, match="online already"):
            room.join(back, Resume(token=owner.resume_token))


def test_a_quit_ends_the_token() -> None:
    room, _ = make_room(MemoryHistory(), Clock())
    owner = Member("carol")
    room.join(owner)
    room.leave(owner, "quit")
    room.join(Member("carol"))
    with pytest.raises(ProtocolError, match="online already"):
        room.join(Member("carol"), Resume(token=owner.resume_token))


def test_a_strangers_token_never_takes_the_name_from_its_owner() -> None:
    room, _ = make_room(MemoryHistory(), Clock())
    stranger, owner_token = leave_and_let_a_stranger_in(room, "carol")
    strangers_token = stranger.resume_token
    room.leave(stranger, "disconnect")
    owner = Member("carol")
    room.join(owner, Resume(token=owner_token))
    with pytest.raises(ProtocolError, match="online already"):
        room.join(Member("carol"), Resume(token=strangers_token))
    assert room.names == ["carol"]


def test_the_stranger_is_told_and_the_others_see_a_leave_and_a_join() -> None:
    room, sent = make_room(MemoryHistory(), Clock())
    bob = Member("bob")
    room.join(bob)
    stranger, token = leave_and_let_a_stranger_in(room, "carol")
    del sent[:]
    owner = Member("carol")
    assert room.join(owner, Resume(token=token)) is stranger
    kinds = [(name, f["type"], f.get("code") or f.get("name")) for name, f in sent]
    assert kinds == [
        ("carol", "welcome", "carol"),
        ("carol", "error", "name_reclaimed"),  # the stranger's
        ("bob", "leave", "carol"),
        ("bob", "join", "carol"),
    ]
    with pytest.raises(ProtocolError) as caught:
        room.say(stranger, "still here?")
    assert caught.value.code == "not_logged_in"


class UnreadableTokens(MemoryHistory):
    """A history whose token table cannot be read, as a damaged one."""

    def token_hash(self, name_key: str, now: float) -> Optional[str]:
        raise StorageError("damaged")


def test_unreadable_tokens_cost_the_reclaim_but_keep_nobody_out() -> None:
    room, sent = make_room(UnreadableTokens(), Clock())
    room.join(Member("carol"))
    room.join(Member("bob"))
    assert room.names == ["carol", "bob"]
    assert [f["type"] for name, f in sent if name == "bob"] == ["welcome"]


def test_a_token_survives_reopening_the_history_file(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    clock = Clock()
    history = SqliteHistory(db)
    room, _ = make_room(history, clock)
    owner = Member("carol")
    room.join(owner)
    history.close()  # a crash: no leave

    history = SqliteHistory(db)
    try:
        room, _ = make_room(history, clock)
        stranger = Member("carol")
        room.join(stranger)
        assert room.join(Member("carol"), Resume(token=owner.resume_token)) is stranger
    finally:
        history.close()


def test_a_schema_1_file_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(str(db)) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO meta (key, value) VALUES ('history_id', 'abc')")
        conn.execute(
            "INSERT INTO messages (id, ts, sender, text, sender_key) "
            "VALUES (7, 1764000000.0, 'bob', 'from 4.0', 'bob')"
        )
        conn.execute("PRAGMA user_version = 1")
    history = SqliteHistory(db)
    try:
        assert history.history_id == "abc"
        assert [m["text"] for m in history.recent("#general", 10)] == ["from 4.0"]
        history.save_token("carol", "secret", 1764000000.0, ["#general"])
        assert history.token_hash("carol", 1764000000.0) is not None
    finally:
        history.close()
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6


def test_server_help_says_where_resume_tokens_are_kept(pyz: Path) -> None:
    result = subprocess.run(
        pyz_command("server", "--help"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "messages and the hashed resume tokens" in text
    assert "--no-history keep messages and resume tokens in memory only" in text
