"""The room alone, without sockets: membership, takeover, exactly-once, history."""

from __future__ import annotations

from typing import Iterable, List, Tuple

import pytest

from lanchat import protocol
from lanchat.core.chat import Chat, Resume
from lanchat.core.history import MemoryHistory
from lanchat.core.rooms import Member
from lanchat.protocol import ProtocolError

Sent = List[Tuple[str, dict]]


def make_room() -> Tuple[Chat, Sent]:
    sent: Sent = []

    def deliver(items: Iterable[Tuple[Member, bytes]]) -> None:
        for member, data in items:
            sent.append((member.name, protocol.decode_line(data.rstrip(b"\n"))))

    return Chat(deliver, MemoryHistory(), welcome_size=50, clock=lambda: 1764000000.0), sent


def test_a_session_replaced_by_its_resume_token_can_no_longer_speak() -> None:
    room, sent = make_room()
    stale, bob = Member("alice"), Member("bob")
    room.join(stale)
    room.join(bob)
    fresh = Member("alice")
    assert room.join(fresh, Resume(token=stale.resume_token)) is stale
    with pytest.raises(ProtocolError) as caught:
        room.say(stale, "from the dead link", ref="r")
    assert (caught.value.code, caught.value.ref) == ("not_logged_in", "r")
    room.say(fresh, "from the new link")
    assert [f["text"] for name, f in sent if name == "bob" and f["type"] == "message"] == [
        "from the new link"
    ]
    assert not room.leave(stale, "disconnect"), "the stale session is no member any more"


def test_a_wrong_resume_token_leaves_the_name_taken() -> None:
    room, _ = make_room()
    room.join(Member("alice"))
    for token in (None, "", "0" * 32):
        with pytest.raises(ProtocolError, match="online already"):
            room.join(Member("Alice"), Resume(token=token))


def test_a_resend_is_echoed_to_the_sender_only_and_a_reused_ref_is_new() -> None:
    room, sent = make_room()
    alice, bob = Member("alice"), Member("bob")
    room.join(alice)
    room.join(bob)
    first = room.say(alice, "once", ref=1)
    again = room.say(alice, "once", ref=1)
    other = room.say(alice, "other text", ref=1)
    assert again.id == first.id and other.id > first.id
    to_bob = [f["text"] for name, f in sent if name == "bob" and f["type"] == "message"]
    assert to_bob == ["once", "other text"]
