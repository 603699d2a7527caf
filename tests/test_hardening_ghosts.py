"""No ghost users: a login or a frame that fails halfway never leaves a name online.

The room does every step that can fail before it changes anything, the protocol refuses
integers SQLite cannot hold, and any unexpected failure of a handler ends in an error
frame and a clean leave.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, List, Tuple

import pytest
from conftest import MakeServer
from wire import PyzServer, RawClient, login, login_frame

from lanchat import protocol
from lanchat.core.chat import Chat, Resume
from lanchat.core.history import MemoryHistory, SqliteHistory, StorageError
from lanchat.core.rooms import Member
from lanchat.protocol import ProtocolError


@pytest.fixture
def pyz_server_on(pyz: Path) -> Iterator[Any]:
    """Starts `lanchat.pyz server` on a given history file; kills it after the test."""
    started: List[PyzServer] = []

    def start(db: Path) -> Tuple[str, int]:
        started.append(PyzServer(str(pyz), "--history-db", str(db)))
        return started[-1].start()

    yield start
    for server in started:
        server.kill()


def assert_only_online(watcher: RawClient, names: List[str]) -> None:
    watcher.send({"type": "who"})
    assert watcher.expect("online")["names"] == names


def assert_name_is_free(address: Tuple[str, int], name: str, watcher: RawClient) -> None:
    """The real owner of the name can log in, and a private message reaches them."""
    owner, _ = login(address, name)
    watcher.expect("join", name=name)
    watcher.send({"type": "say", "text": "are you real?", "to": name})
    owner.expect("message", text="are you real?")


# -- numbers SQLite cannot hold ---------------------------------------------------------


@pytest.mark.parametrize("last_id", [2**63, -(2**63) - 1])
def test_a_last_id_beyond_64_bits_is_bad_frame_and_leaves_no_ghost(
    pyz_server_on: Any, tmp_path: Path, last_id: int
) -> None:
    address = pyz_server_on(tmp_path / "h.sqlite3")
    alice, welcome = login(address, "alice")
    intruder = RawClient(address)
    intruder.expect("hello")
    intruder.send(login_frame("carol", last_id=last_id, history_id=welcome["history_id"]))
    assert [f.get("code") for f in intruder.expect_closed()] == ["bad_frame"]
    assert_only_online(alice, ["alice"])
    assert_name_is_free(address, "carol", alice)


@pytest.mark.parametrize("last_id", [2**63 - 1, -(2**63), 0])
def test_a_last_id_within_64_bits_is_accepted(last_id: int) -> None:
    frame = login_frame("carol", last_id=last_id)
    assert protocol.validate(frame, protocol.CLIENT_FRAMES) is frame


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "say", "text": "hi", "ref": 2**63},
        {"type": "ping", "token": -(2**63) - 1},
        {"type": "pong", "token": 10**30},
    ],
)
def test_integer_tokens_beyond_64_bits_are_bad_frames(frame: dict) -> None:
    with pytest.raises(ProtocolError, match="out of range") as caught:
        protocol.validate(frame, protocol.CLIENT_FRAMES)
    assert caught.value.code == "bad_frame"


# -- a damaged history file --------------------------------------------------------------


def damage_page_holding(db: Path, marker: bytes) -> None:
    """Overwrite the header of the database page that holds `marker` (a b-tree leaf)."""
    data = bytearray(db.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    at = data.index(marker)
    start = at - at % page_size
    data[start : start + 12] = b"\xff" * 12
    db.write_bytes(bytes(data))


def history_with_messages(db: Path, count: int) -> str:
    history = SqliteHistory(db)
    for n in range(1, count + 1):
        frame = protocol.message(
            history.next_id(), 1764000000.0, "bob", f"m-{n:05d}", room="#general"
        )
        history.add(frame, "bob", None)
    history_id = history.history_id
    history.close()  # checkpoints the WAL into the file
    return history_id


def test_a_damaged_page_during_a_resume_is_server_error_and_leaves_no_ghost(
    pyz_server_on: Any, tmp_path: Path
) -> None:
    db = tmp_path / "damaged.sqlite3"
    history_id = history_with_messages(db, 3000)
    # a resume from id 0 reads the newest 1001 messages; a newcomer reads only 100
    damage_page_holding(db, b"m-02500")
    address = pyz_server_on(db)
    alice, welcome = login(address, "alice")
    assert welcome["history"][0]["text"] == "m-02901"
    resuming = RawClient(address)
    resuming.expect("hello")
    resuming.send(login_frame("carol", last_id=0, history_id=history_id))
    assert [f.get("code") for f in resuming.expect_closed()] == ["server_error"]
    assert_only_online(alice, ["alice"])
    assert_name_is_free(address, "carol", alice)


# -- any unexpected failure --------------------------------------------------------------


def test_a_handler_that_fails_sends_server_error_and_leaves_cleanly(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join", name="bob")

    def broken_say(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.chat, "say", broken_say)
    alice.send({"type": "say", "text": "hello", "ref": "r1"})
    frames = alice.expect_closed()
    assert [(f.get("code"), f.get("ref")) for f in frames] == [("server_error", "r1")]
    bob.expect("leave", name="alice", reason="error")
    assert_only_online(bob, ["bob"])
    monkeypatch.undo()
    assert_name_is_free(server.address, "alice", bob)


# -- the room alone: all or nothing ----------------------------------------------------------


class UnreadableHistory(MemoryHistory):
    """A history whose reads fail, as a damaged file's do."""

    def after(self, room_key: str, last_id: int, cap: int = 1000) -> Tuple[List[dict], bool]:
        raise StorageError("damaged")

    def recent(self, room_key: str, count: int) -> List[dict]:
        raise StorageError("damaged")


def test_a_join_that_fails_changes_nothing() -> None:
    sent: List[Tuple[str, dict]] = []

    def deliver(items: Iterable[Tuple[Member, bytes]]) -> None:
        sent.extend((m.name, protocol.decode_line(data.rstrip(b"\n"))) for m, data in items)

    history = UnreadableHistory()
    room = Chat(deliver, history)
    alice = Member("alice")
    with pytest.raises(StorageError):
        room.join(alice, Resume(last_id=0, history_id=history.history_id))
    assert room.names == [] and sent == []
    assert history.token_hash(alice.key, 0.0) is None, "no token kept for a failed login"
