"""The history's rooms (protocol 4.2), in memory and in SQLite: each room's messages, the
rooms kept with a resume token, and a room's spelling and topic."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Union

import pytest

from lanchat import protocol
from lanchat.core.events import Topic
from lanchat.core.history import MemoryHistory, SqliteHistory

History = Union[MemoryHistory, SqliteHistory]
NOW = 1764000000.0


@pytest.fixture(params=["memory", "sqlite"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[History]:
    kept: History = (
        MemoryHistory(50) if request.param == "memory" else SqliteHistory(tmp_path / "h.sqlite3")
    )
    try:
        yield kept
    finally:
        kept.close()


def say(history: History, room: str, text: str) -> int:
    frame = protocol.message(history.next_id(), NOW, "bob", text, room=room)
    history.add(frame, "bob", None)
    return int(frame["id"])


def test_each_room_reads_back_its_own_messages(history: History) -> None:
    say(history, "#general", "g1")
    first_dev = say(history, "#Dev", "d1")
    say(history, "#general", "g2")
    say(history, "#Dev", "d2")
    assert [m["text"] for m in history.recent("#general", 10)] == ["g1", "g2"]
    assert [(m["text"], m["room"]) for m in history.recent("#dev", 1)] == [("d2", "#Dev")]
    newer, cut = history.after("#dev", first_dev)
    assert ([m["text"] for m in newer], cut) == (["d2"], False)
    assert history.after("#nowhere", 0) == ([], False)
    assert history.find_ref("bob", "none") is None


def test_a_resume_past_what_a_room_kept_is_marked_truncated() -> None:
    history = MemoryHistory(keep=1000)
    say(history, "#quiet", "q1")
    for n in range(1001):
        say(history, "#busy", f"b{n}")
    newer, cut = history.after("#busy", 0)
    assert len(newer) == 1000 and cut, "the oldest busy message was forgotten"
    assert history.after("#quiet", 0) == (history.recent("#quiet", 5), False)


def test_rooms_are_kept_with_the_token_and_only_its_owner_changes_them(history: History) -> None:
    history.save_token("carol", "owner-token", NOW, ["#general", "#dev"])
    assert history.token_rooms("carol") == ["#general", "#dev"]
    history.save_rooms("carol", "stranger-token", ["#spam"])
    assert history.token_rooms("carol") == ["#general", "#dev"]
    history.save_rooms("carol", "owner-token", ["#dev"])
    history.touch_token("carol", "owner-token", NOW + 5)
    assert history.token_rooms("carol") == ["#dev"]
    assert history.token_rooms("nobody") == []


def test_a_rooms_spelling_and_topic_are_kept(history: History) -> None:
    assert history.saved_room("#dev") is None
    topic = Topic("#Dev", "release on Friday", "bob", NOW)
    history.save_room("#dev", topic)
    assert history.saved_room("#dev") == topic


def test_a_damaged_rooms_column_counts_as_no_rooms(tmp_path: Path) -> None:
    history = SqliteHistory(tmp_path / "h.sqlite3")
    try:
        history.save_token("carol", "t", NOW, ["#dev"])
        history._db.execute("UPDATE resume_tokens SET rooms = 'not json'")
        assert history.token_rooms("carol") == []
        history._db.execute("UPDATE resume_tokens SET rooms = '[1, 2]'")
        assert history.token_rooms("carol") == []
    finally:
        history.close()
