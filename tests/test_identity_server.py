"""Identity proofs and registered names on the server (protocol 4.3, issue 14), on real
sockets: in process, and on the built pyz across a restart."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import MakeServer
from wire import PyzServer, RawClient
from wire43 import (
    connect,
    key_of,
    login_43,
    next_of,
    old_client,
    register,
    secret_of,
    welcome_43,
)

from lanchat import identity
from lanchat.core import history


def test_every_connection_gets_a_fresh_challenge(make_server: MakeServer) -> None:
    address = make_server().address
    challenges = {connect(address)[1]["challenge"] for _ in range(3)}
    assert len(challenges) == 3
    assert all(re.fullmatch("[0-9a-f]{32}", c) for c in challenges)


def test_a_right_proof_logs_in(make_server: MakeServer) -> None:
    address = make_server().address
    _, welcome = welcome_43(address, "bob")
    assert welcome["name"] == "bob" and "operator" not in welcome


def test_a_wrong_proof_is_bad_identity_and_closes(make_server: MakeServer) -> None:
    address = make_server().address
    client, hello = connect(address)
    proof = identity.prove(secret_of("bob"), hello["challenge"], "bob")
    client.send({"type": "login", "name": "mallory", "version": "4.3.0", "identity": proof})
    (error,) = client.expect_closed()
    assert error["code"] == "bad_identity"


def test_a_proof_for_another_connection_is_refused(make_server: MakeServer) -> None:
    """A proof is good for one connection only: its challenge is that connection's."""
    address = make_server().address
    _, first = connect(address)
    client, _ = connect(address)
    replayed = identity.prove(secret_of("bob"), first["challenge"], "bob")
    client.send({"type": "login", "name": "bob", "version": "4.3.0", "identity": replayed})
    assert client.expect_closed()[0]["code"] == "bad_identity"


def test_a_garbage_identity_field_is_bad_identity(make_server: MakeServer) -> None:
    address = make_server().address
    client, _ = connect(address)
    client.send({"type": "login", "name": "bob", "version": "4.3.0", "identity": {"key": 1}})
    assert client.expect_closed()[0]["code"] == "bad_identity"


def test_register_answers_the_name_and_fingerprint(make_server: MakeServer) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    registered = register(bob, "bob")
    assert registered["fingerprint"] == identity.fingerprint(key_of("bob"))


def test_register_without_an_identity_is_no_identity(make_server: MakeServer) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob", key=None)
    bob.send({"type": "register", "ref": 1})
    assert bob.expect_error("no_identity")["ref"] == 1
    bob.send({"type": "say", "text": "still here", "ref": 2})
    bob.expect("message", ref=2)


def test_a_registered_name_is_refused_to_a_stranger_while_its_owner_is_offline(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    register(bob, "bob")
    bob.send({"type": "quit"})
    bob.expect_closed()
    for spelling, key in (("bob", "mallory"), ("BOB", "mallory"), ("ｂｏｂ", None)):
        stranger, answer = login_43(address, spelling, key=key)
        assert answer["type"] == "error" and answer["code"] == "name_registered", answer
        stranger.send({"type": "login", "name": "mallory", "version": "4.3.0"})
        stranger.expect("welcome", name="mallory")  # the connection stayed
        stranger.send({"type": "quit"})
        stranger.expect_closed()
    old, _ = connect(address)
    old.send({"type": "login", "name": "Bob", "version": "4.0.0"})
    assert old.expect_error("name_registered")
    assert welcome_43(address, "bob")[1]["name"] == "bob"  # its owner gets it


def test_the_owner_takes_the_name_from_a_session_still_holding_it(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    carol, _ = welcome_43(address, "carol")
    stale, _ = welcome_43(address, "bob")
    register(stale, "bob")
    carol.expect("join", name="bob")
    fresh, welcome = welcome_43(address, "bob")  # the old link is not yet found dead
    assert welcome["name"] == "bob"
    assert stale.expect_closed() == []  # replaced without a word
    carol.send({"type": "say", "text": "hi", "ref": 1})
    carol.expect("message", ref=1)  # and carol saw no leave nor join of bob
    fresh.expect("message", text="hi")


def test_a_nick_to_a_registered_name_is_refused(make_server: MakeServer) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    register(bob, "bob")
    bob.send({"type": "quit"})
    bob.expect_closed()
    mallory, _ = welcome_43(address, "mallory")
    mallory.send({"type": "nick", "name": "Bob", "ref": "n"})
    assert mallory.expect_error("name_registered")["ref"] == "n"


def test_unregister_lets_the_name_go(make_server: MakeServer) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    register(bob, "bob")
    bob.send({"type": "unregister", "ref": "u"})
    bob.expect("unregistered", name="bob", ref="u")
    bob.send({"type": "quit"})
    bob.expect_closed()
    _, welcome = welcome_43(address, "bob", key="mallory")
    assert welcome["name"] == "bob"


def test_messages_of_a_registered_name_carry_its_fingerprint_for_4_3_clients(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    register(bob, "bob")
    carol, _ = welcome_43(address, "carol", key=None)
    olga = old_client(address, "olga")
    rita = old_client(address, "rita", rooms=[])
    bob.send({"type": "say", "text": "signed"})
    print_ = identity.fingerprint(key_of("bob"))
    assert next_of(bob, "message", text="signed")["fingerprint"] == print_
    assert next_of(carol, "message", text="signed")["fingerprint"] == print_
    assert set(next_of(olga, "message", text="signed")) == {"type", "id", "ts", "from", "text"}
    assert set(next_of(rita, "message", text="signed")) == {
        "type",
        "id",
        "ts",
        "from",
        "text",
        "room",
    }
    carol.send({"type": "say", "text": "unsigned"})
    assert "fingerprint" not in next_of(bob, "message", text="unsigned")
    _, welcome = welcome_43(address, "later")
    (kept,) = [m for m in welcome["history"] if m["text"] == "signed"]
    assert kept["fingerprint"] == print_  # the history keeps it


def test_a_registered_name_is_refused_to_a_stranger_after_a_restart(
    pyz: Path, tmp_path: Path
) -> None:
    server = PyzServer(str(pyz), "--history-db", str(tmp_path / "h.sqlite3"))
    try:
        address = server.start()
        bob, _ = welcome_43(address, "bob")
        register(bob, "bob")
        bob.close()
        address = server.restart()
        _, answer = login_43(address, "bob", key="mallory")
        assert answer["code"] == "name_registered", answer
        old, _ = connect(address)
        old.send({"type": "login", "name": "bob", "version": "4.0.0"})
        old.expect_error("name_registered")
        assert welcome_43(address, "bob")[1]["name"] == "bob"
    finally:
        server.kill()


def test_a_raw_client_without_identity_still_logs_in(make_server: MakeServer) -> None:
    """A 4.0 client knows nothing of identities: an unregistered name is its as before."""
    address = make_server().address
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": "olga", "version": "4.0.0"})
    assert set(client.expect("welcome")) == {
        "type",
        "name",
        "online",
        "history",
        "resume",
        "history_id",
    }


def test_a_schema_3_file_is_migrated_and_keeps_its_messages(tmp_path: Path) -> None:
    """The 4.3 migration adds registrations, bans, the motd and fingerprints to a 4.2 file."""
    path = tmp_path / "h.sqlite3"
    with sqlite3.connect(str(path)) as conn:
        for script in history.MIGRATIONS[:3]:
            conn.executescript(script.format(default_key="'#general'", default_room="'#general'"))
        conn.execute(
            "INSERT INTO messages (id, ts, sender, text, sender_key, room_key, room)"
            " VALUES (1, 1.0, 'olga', 'from 4.2', 'olga', '#general', '#general')"
        )
        conn.execute("PRAGMA user_version = 3")
    opened = history.SqliteHistory(path)
    try:
        (kept,) = opened.recent("#general", 10)
        assert kept == {"type": "message", "id": 1, "ts": 1.0, "from": "olga",
                        "text": "from 4.2", "room": "#general"}  # fmt: skip
        assert opened.registration("bob") is None and opened.load_bans() == []
        assert opened.motd() == ""
        opened.register("bob", "bob", key_of("bob"), 2.0)
        opened.save_ban(("name", "mallory", "mallory", "alice", "spam", None))
        opened.save_motd("hello")
    finally:
        opened.close()
    reopened = history.SqliteHistory(path)
    try:
        assert reopened.registration("bob") == key_of("bob")
        assert reopened.load_bans() == [("name", "mallory", "mallory", "alice", "spam", None)]
        assert reopened.motd() == "hello"
    finally:
        reopened.close()
    with sqlite3.connect(str(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION


def test_the_owner_may_rename_to_its_registered_name(make_server: MakeServer) -> None:
    address = make_server().address
    bob, _ = welcome_43(address, "bob")
    register(bob, "bob")
    bob.send({"type": "quit"})
    bob.expect_closed()
    bob, _ = welcome_43(address, "robert", key="bob")
    bob.send({"type": "nick", "name": "Bob", "ref": "n"})
    bob.expect("nick", old="robert", new="Bob", ref="n")
    bob.send({"type": "whois", "name": "bob"})
    assert bob.expect("whois")["registered"] is True
