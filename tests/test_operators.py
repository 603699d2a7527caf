"""Operators (protocol 4.3, issue 14): who is one, kick, ban, unban, bans, mute, motd, any
room's topic, and the console's path (`ChatServer.operate`), on real sockets; bans and the
motd on the built pyz across a restart; `--operator` and `--operators-file`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest import MakeServer, pyz_command
from wire import PyzServer, RawClient
from wire43 import (
    connect,
    login_43,
    next_of,
    old_client,
    operator_client,
    secret_of,
    welcome_43,
)

from lanchat import identity
from lanchat.core import events
from lanchat.protocol import ProtocolError

OLD_LEAVE = {"type", "name", "ts", "reason"}
OLD_MESSAGE = {"type", "id", "ts", "from", "text"}


def test_an_operator_is_its_name_registered_and_logged_in_with_its_key(
    make_server: MakeServer,
) -> None:
    address = make_server(operators=("alice",)).address
    first, welcome = welcome_43(address, "alice")
    assert "operator" not in welcome  # not registered yet
    first.send({"type": "kick", "name": "alice", "ref": 1})
    assert first.expect_error("not_operator")["ref"] == 1
    first.send({"type": "quit"})
    first.expect_closed()
    operator_client(address, "alice")


def test_others_get_not_operator_for_every_operator_frame(make_server: MakeServer) -> None:
    address = make_server(operators=("alice",)).address
    bob, _ = welcome_43(address, "bob")
    frames = [
        {"type": "kick", "name": "bob"},
        {"type": "ban", "target": "bob"},
        {"type": "unban", "target": "bob"},
        {"type": "bans"},
        {"type": "mute", "name": "bob"},
        {"type": "unmute", "name": "bob"},
        {"type": "motd", "text": "hi"},
        {"type": "unregister", "name": "carol"},
    ]
    for ref, frame in enumerate(frames):
        bob.send({**frame, "ref": ref})
        error = bob.recv()
        assert error["type"] == "error" and error["ref"] == ref, (frame, error)
        assert error["code"] == "not_operator", (frame, error)
    rooms, _ = welcome_43(address, "rita", rooms=["#general"])
    rooms.send({"type": "topic", "room": "#dev", "text": "mine", "ref": "t"})
    assert rooms.expect_error("not_in_room")["ref"] == "t"  # for others, as before


def test_kick_closes_the_target_and_tells_its_rooms(make_server: MakeServer) -> None:
    address = make_server(operators=("alice",)).address
    alice = operator_client(address, "alice")
    bob, _ = welcome_43(address, "bob")
    carol, _ = welcome_43(address, "carol")
    olga = old_client(address, "olga")
    alice.send({"type": "kick", "name": "BOB", "reason": "flooding", "ref": "k"})
    error = next_of(bob, "error")
    assert error["code"] == "kicked" and error["by"] == "alice" and error["reason"] == "flooding"
    assert bob.expect_closed() == []
    assert next_of(carol, "leave", name="bob")["reason"] == "kicked"
    assert carol.expect("notice")["text"] == "bob was kicked by alice: flooding"
    leave = next_of(olga, "leave", name="bob")
    assert set(leave) == OLD_LEAVE and leave["reason"] == "error"
    seen = olga.expect("message")
    assert set(seen) == OLD_MESSAGE and seen["from"] == "*"
    assert next_of(alice, "notice", ref="k")["text"] == "You kicked bob: flooding."
    alice.send({"type": "kick", "name": "bob", "ref": 2})
    assert next_of(alice, "error", ref=2)["code"] == "no_such_user"


def test_the_console_kicks_and_bans_through_operate(make_server: MakeServer) -> None:
    server = make_server()
    address = server.address
    bob, _ = welcome_43(address, "bob")
    carol, _ = welcome_43(address, "carol")
    (answer,) = server.operate({"type": "kick", "name": "bob", "reason": "spam", "ref": 1})
    assert isinstance(answer, events.Notice)
    assert (answer.text, answer.ref) == ("You kicked bob: spam.", 1)
    error = next_of(bob, "error")
    assert (error["code"], error["by"], error["reason"]) == ("kicked", "console", "spam")
    bob.expect_closed()
    next_of(carol, "leave", name="bob", reason="kicked")
    server.operate({"type": "ban", "target": "carol", "duration": 60, "reason": "enough"})
    error = next_of(carol, "error")
    assert error["code"] == "banned" and error["by"] == "console" and error["until"] > time.time()
    carol.expect_closed()
    _, answer_frame = login_43(address, "carol")
    assert answer_frame["code"] == "banned" and answer_frame["reason"] == "enough"
    assert [p[0] for p in server.people()] == []
    (ban_list,) = server.operate({"type": "bans"})
    assert isinstance(ban_list, events.BanList)
    assert [dict(b)["target"] for b in ban_list.bans] == ["carol"]
    with pytest.raises(ProtocolError):
        server.operate({"type": "kick"})
    with pytest.raises(ProtocolError):
        server.operate({"type": "say", "text": "no"})
    with pytest.raises(ProtocolError) as raised:
        server.operate({"type": "kick", "name": "nobody"})
    assert raised.value.code == "no_such_user"


def test_people_lists_names_addresses_and_rooms(make_server: MakeServer) -> None:
    server = make_server()
    welcome_43(server.address, "bob", rooms=["#general", "#dev"])
    welcome_43(server.address, "carol")
    assert server.people() == [
        ("bob", "127.0.0.1", ("#general", "#dev")),
        ("carol", "127.0.0.1", ("#general",)),
    ]


def test_a_ban_of_a_registered_name_bans_its_identity(make_server: MakeServer) -> None:
    server = make_server(operators=("alice",))
    address = server.address
    alice = operator_client(address, "alice")
    bob, _ = welcome_43(address, "bob")
    bob.send({"type": "register"})
    next_of(bob, "registered")
    alice.send({"type": "ban", "target": "bob", "reason": "rude", "ref": "b"})
    assert next_of(bob, "error")["code"] == "banned"
    alice.send({"type": "bans", "ref": "l"})
    (entry,) = next_of(alice, "ban_list", ref="l")["bans"]
    assert entry == {"target": "bob", "kind": "identity", "by": "alice", "reason": "rude"}
    # the same key under another name is banned too
    client, hello = connect(address)
    proof = identity.prove(secret_of("bob"), hello["challenge"], "bobby")
    client.send({"type": "login", "name": "bobby", "version": "4.3.0", "identity": proof})
    (error,) = client.expect_closed()
    assert error["code"] == "banned" and "until" not in error
    alice.send({"type": "unban", "target": "Bob", "ref": "u"})
    assert next_of(alice, "notice", ref="u")["text"] == "You lifted the ban on Bob."
    assert welcome_43(address, "bob")[1]["name"] == "bob"


def test_a_ban_by_address_closes_and_refuses_that_address(make_server: MakeServer) -> None:
    server = make_server()
    address = server.address
    bob, _ = welcome_43(address, "bob", source="127.0.0.2")
    carol, _ = welcome_43(address, "carol")
    server.operate({"type": "ban", "target": "127.0.0.2"})
    assert next_of(bob, "error")["code"] == "banned"
    bob.expect_closed()
    _, answer = login_43(address, "dave", source="127.0.0.2")
    assert answer["code"] == "banned"
    carol.send({"type": "say", "text": "still here", "ref": 1})
    next_of(carol, "message", ref=1)


def test_a_ban_by_name_refuses_every_colliding_spelling(make_server: MakeServer) -> None:
    server = make_server()
    server.operate({"type": "ban", "target": "Mallory", "reason": "spam"})
    for spelling in ("mallory", "MALLORY"):
        client, _ = connect(server.address)
        client.send({"type": "login", "name": spelling, "version": "4.0.0"})
        (error,) = client.expect_closed()
        assert error["code"] == "banned"
    bob, _ = welcome_43(server.address, "bob")
    bob.send({"type": "nick", "name": "mallory", "ref": 1})
    assert next_of(bob, "error", ref=1)["code"] == "invalid_name"


def test_mute_stops_speaking_across_reconnects_until_unmuted(make_server: MakeServer) -> None:
    server = make_server(operators=("alice",))
    address = server.address
    alice = operator_client(address, "alice")
    bob, _ = welcome_43(address, "bob")
    alice.send({"type": "mute", "name": "bob", "duration": 600, "ref": "m"})
    next_of(alice, "notice", ref="m")
    assert "muted you" in next_of(bob, "notice")["text"]
    bob.send({"type": "say", "text": "hello?", "ref": 1})
    error = bob.expect_error("muted")
    assert error["ref"] == 1 and time.time() + 590 < error["until"] <= time.time() + 600
    bob.send({"type": "say", "to": "alice", "text": "psst", "ref": 2})
    bob.expect_error("muted")
    bob.send({"type": "quit"})
    bob.expect_closed()
    bob, _ = welcome_43(address, "bob")
    bob.send({"type": "say", "text": "back", "ref": 3})
    assert bob.expect_error("muted")["ref"] == 3
    bob.send({"type": "who"})
    bob.expect("online")  # he can still read and ask
    alice.send({"type": "unmute", "name": "bob", "ref": "u"})
    next_of(alice, "notice", ref="u")
    next_of(bob, "notice")
    bob.send({"type": "say", "text": "free", "ref": 4})
    next_of(bob, "message", ref=4)


def test_a_short_mute_ends_by_itself(make_server: MakeServer) -> None:
    server = make_server()
    bob, _ = welcome_43(server.address, "bob")
    server.operate({"type": "mute", "name": "bob", "duration": 0.5})
    next_of(bob, "notice")
    bob.send({"type": "say", "text": "x", "ref": 1})
    bob.expect_error("muted")
    deadline = time.monotonic() + 5
    while True:
        bob.send({"type": "say", "text": "y", "ref": 2})
        if bob.recv()["type"] == "message":
            break
        assert time.monotonic() < deadline, "the mute did not end"
        time.sleep(0.2)


def test_motd_is_in_welcome_for_4_3_and_a_notice_for_older_clients(
    make_server: MakeServer,
) -> None:
    server = make_server()
    (answer,) = server.operate({"type": "motd", "text": "be nice", "ref": 1})
    assert isinstance(answer, events.Notice) and answer.text == "You set the message of the day."
    _, welcome = welcome_43(server.address, "bob")
    assert welcome["motd"] == "be nice"
    olga = RawClient(server.address)
    olga.expect("hello")
    olga.send({"type": "login", "name": "olga", "version": "4.0.0"})
    assert "motd" not in olga.expect("welcome")
    notice = olga.expect("message")
    assert set(notice) == OLD_MESSAGE and notice["from"] == "*" and notice["text"] == "be nice"
    server.operate({"type": "motd", "text": ""})
    assert "motd" not in welcome_43(server.address, "carol")[1]


def test_an_operator_sets_the_topic_of_a_room_it_is_not_in(make_server: MakeServer) -> None:
    server = make_server(operators=("alice",))
    address = server.address
    alice = operator_client(address, "alice", rooms=["#general"])
    dev = old_client(address, "dev", rooms=["#dev"])
    alice.send({"type": "topic", "room": "#dev", "text": "release friday", "ref": "t"})
    assert next_of(alice, "topic", ref="t")["text"] == "release friday"
    topic = next_of(dev, "topic", room="#dev")
    assert topic["by"] == "alice" and topic["text"] == "release friday"


def test_an_operator_releases_any_registered_name(make_server: MakeServer) -> None:
    server = make_server(operators=("alice",))
    address = server.address
    alice = operator_client(address, "alice")
    bob, _ = welcome_43(address, "bob")
    bob.send({"type": "register"})
    next_of(bob, "registered")
    bob.send({"type": "quit"})
    bob.expect_closed()
    alice.send({"type": "unregister", "name": "bob", "ref": "u"})
    next_of(alice, "unregistered", name="bob", ref="u")
    _, welcome = welcome_43(address, "bob", key="mallory")
    assert welcome["name"] == "bob"


def test_operator_actions_are_logged(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    welcome_43(server.address, "bob")
    with caplog.at_level("INFO", logger="lanchat.core.operators"):
        server.operate({"type": "kick", "name": "bob", "reason": "testing"})
    assert any(
        "console kicked bob" in r.getMessage() and "testing" in r.getMessage()
        for r in caplog.records
    )


# -- on the built pyz ----------------------------------------------------------------------


def test_bans_and_motd_survive_a_restart_and_bans_expire(pyz: Path, tmp_path: Path) -> None:
    server = PyzServer(str(pyz), "--history-db", str(tmp_path / "h.sqlite3"), "--operator", "alice")
    try:
        address = server.start()
        alice = operator_client(address, "alice")
        alice.send({"type": "ban", "target": "mallory", "reason": "for good", "ref": 1})
        next_of(alice, "notice", ref=1)
        alice.send({"type": "ban", "target": "trudy", "duration": 3, "ref": 2})
        next_of(alice, "notice", ref=2)
        alice.send({"type": "motd", "text": "welcome back", "ref": 3})
        next_of(alice, "notice", ref=3)
        alice.close()
        address = server.restart()
        for name in ("mallory", "trudy"):
            _, answer = login_43(address, name)
            assert answer["code"] == "banned", answer
        _, welcome = welcome_43(address, "bob")
        assert welcome["motd"] == "welcome back"
        deadline = time.monotonic() + 10
        while True:  # trudy's ban ends 3 s after it was set
            _, answer = login_43(address, "trudy")
            if answer["type"] == "welcome":
                break
            assert answer["code"] == "banned" and time.monotonic() < deadline
            time.sleep(0.3)
        _, answer = login_43(address, "mallory")
        assert answer["code"] == "banned"
    finally:
        server.kill()


def test_kick_from_an_operators_client_on_the_pyz(pyz: Path) -> None:
    server = PyzServer(str(pyz), "--no-history", "--operator", "alice")
    try:
        address = server.start()
        alice = operator_client(address, "alice")
        olga = old_client(address, "olga")
        alice.send({"type": "kick", "name": "olga", "ref": "k"})
        error = next_of(olga, "error")
        assert error["code"] == "kicked" and error["by"] == "alice"
        olga.expect_closed()
        next_of(alice, "notice", ref="k")
    finally:
        server.kill()


def test_an_operators_file_adds_operators(pyz: Path, tmp_path: Path) -> None:
    names = tmp_path / "operators"
    names.write_text("# the team\nalice  # lead\n\nbob\n", encoding="utf-8")
    server = PyzServer(str(pyz), "--no-history", "--operators-file", str(names))
    try:
        address = server.start()
        operator_client(address, "bob")
    finally:
        server.kill()


@pytest.mark.parametrize("content", ["alice\nnot a name\n", None])
def test_a_bad_operators_file_is_one_line_and_exit_2(
    pyz: Path, tmp_path: Path, content: object
) -> None:
    path = tmp_path / "operators"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    done = subprocess.run(
        pyz_command("server", "--bind", "127.0.0.1", "--operators-file", str(path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_shutdown_tells_everybody_its_message(make_server: MakeServer) -> None:
    server = make_server()
    bob, _ = welcome_43(server.address, "bob")
    olga = old_client(server.address, "olga")
    assert server.shutdown("back in five minutes", timeout=10)
    for client in (bob, olga):
        assert next_of(client, "shutdown")["message"] == "back in five minutes"


def test_operate_refuses_a_frame_without_a_type(make_server: MakeServer) -> None:
    server = make_server()
    with pytest.raises(ProtocolError) as raised:
        server.operate({"name": "bob"})
    assert raised.value.code == "bad_frame"


def test_an_operators_whois_has_the_address(make_server: MakeServer) -> None:
    address = make_server(operators=("alice",)).address
    alice = operator_client(address, "alice")
    welcome_43(address, "bob", source="127.0.0.3")
    alice.send({"type": "whois", "name": "bob", "ref": "w"})
    whois = next_of(alice, "whois", ref="w")
    assert whois["address"] == "127.0.0.3" and whois["operator"] is False
    bob_view, _ = welcome_43(address, "carol")
    bob_view.send({"type": "whois", "name": "alice"})
    seen = next_of(bob_view, "whois")
    assert seen["operator"] is True and seen["registered"] is True and "address" not in seen


def test_mute_from_an_operators_client_on_the_pyz(pyz: Path) -> None:
    server = PyzServer(str(pyz), "--no-history", "--operator", "alice")
    try:
        address = server.start()
        alice = operator_client(address, "alice")
        bob = old_client(address, "bob")
        alice.send({"type": "mute", "name": "bob", "ref": "m"})
        next_of(alice, "notice", ref="m")
        next_of(bob, "message", **{"from": "*"})  # a 4.0 client is told as a message from *
        bob.send({"type": "say", "text": "let me speak", "ref": 1})
        error = bob.expect_error("muted")
        assert error["ref"] == 1 and "until" not in error  # while the server runs
        bob.send({"type": "quit"})
        bob.expect_closed()
        bob = old_client(address, "bob")
        bob.send({"type": "say", "text": "again", "ref": 2})
        assert bob.expect_error("muted")["ref"] == 2
    finally:
        server.kill()


def test_the_kicked_error_always_arrives_before_the_close(make_server: MakeServer) -> None:
    """The error and the close are queued one after the other while the I/O thread may be
    sending the target's earlier frames: the close must wait for the error."""
    server = make_server()
    carol, _ = welcome_43(server.address, "carol")
    for round in range(40):
        name = f"bob{round}"
        bob, _ = welcome_43(server.address, name)
        carol.send({"type": "say", "text": f"busy {round}"})  # frames in flight to bob
        server.operate({"type": "kick", "name": name})
        frames = bob.expect_closed()
        assert frames and frames[-1]["code"] == "kicked", (round, frames)


def test_a_ban_that_cannot_be_kept_changes_nothing(make_server: MakeServer, tmp_path: Path) -> None:
    """All or nothing: a history that cannot keep the ban leaves everybody online."""
    server = make_server(history_db=str(tmp_path / "h.sqlite3"))
    bob, _ = welcome_43(server.address, "bob")
    server._history._db.execute("DROP TABLE bans")  # type: ignore[union-attr]
    with pytest.raises(ProtocolError) as raised:
        server.operate({"type": "ban", "target": "bob"})
    assert raised.value.code == "not_stored"
    assert [name for name, _, _ in server.people()] == ["bob"]
    bob.send({"type": "say", "text": "still here", "ref": 1})
    next_of(bob, "message", ref=1)
    _, welcome = welcome_43(server.address, "bob2")
    assert welcome["name"] == "bob2"
