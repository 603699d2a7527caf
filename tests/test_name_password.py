"""Name passwords (protocol 4.4, issue 16): the owner of a registered name sets one with its
key, and a login without a key uses it instead; on real sockets, in process and on the
built pyz across a restart."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from conftest import MakeServer
from wire import PyzServer, RawClient
from wire43 import connect, key_of, old_client, operator_client, register, welcome_43

from lanchat.core import history, namepassword

V44 = "4.4.0"
SECRET = "correct horse battery"


def registered_owner(address: Tuple[str, int], name: str = "bob", **options: Any) -> RawClient:
    """`name` logged in with its key and registered."""
    owner, _ = welcome_43(address, name, **options)
    register(owner, name)
    return owner


def set_password(client: RawClient, password: str = SECRET) -> None:
    client.send({"type": "name_password", "password": password, "ref": "p"})
    assert client.expect("name_password", ref="p")["set"] is True


def password_login(address: Tuple[str, int], name: str, password: str) -> Tuple[RawClient, dict]:
    """A 4.4 login by name password, without a key; the first frame answering it."""
    client, _ = connect(address)
    client.send(
        {"type": "login", "name": name, "version": V44, "rooms": [], "name_password": password}
    )
    return client, client.recv()


def test_the_owner_sets_and_clears_its_name_password(make_server: MakeServer) -> None:
    address = make_server().address
    bob = registered_owner(address)
    set_password(bob)
    bob.send({"type": "name_password", "ref": "c"})
    assert bob.expect("name_password", ref="c") == {"type": "name_password", "set": False,
                                                    "ref": "c"}  # fmt: skip
    set_password(bob)
    bob.send({"type": "name_password", "password": "", "ref": "e"})
    assert bob.expect("name_password", ref="e")["set"] is False
    _, answer = password_login(address, "bob", SECRET)
    assert answer["code"] == "bad_identity"


def test_a_name_password_logs_in_as_the_owner(make_server: MakeServer) -> None:
    address = make_server().address
    bob = registered_owner(address)
    set_password(bob)
    bob.send({"type": "quit"})
    bob.expect_closed()
    irc_like, welcome = password_login(address, "BOB", SECRET)
    assert welcome["type"] == "welcome" and welcome["name"] == "BOB", welcome
    irc_like.expect("joined")
    irc_like.send({"type": "whois", "name": "bob", "ref": "w"})
    whois = irc_like.expect("whois", ref="w")
    assert whois["registered"] is True


def test_a_name_password_login_replaces_the_owners_session(make_server: MakeServer) -> None:
    address = make_server().address
    bob = registered_owner(address)
    set_password(bob)
    _, welcome = password_login(address, "bob", SECRET)
    assert welcome["type"] == "welcome"
    bob.expect_closed()  # replaced without a word, as by the owner's key


def test_a_wrong_name_password_is_bad_identity_and_closes(make_server: MakeServer) -> None:
    address = make_server().address
    bob = registered_owner(address)
    set_password(bob)
    client, answer = password_login(address, "bob", "not the password")
    assert answer["code"] == "bad_identity"
    client.expect_closed()
    bob.send({"type": "say", "text": "still mine", "ref": 1})
    bob.expect("message", ref=1)


def test_a_name_without_a_password_refuses_password_logins(make_server: MakeServer) -> None:
    address = make_server().address
    registered_owner(address)
    assert password_login(address, "bob", SECRET)[1]["code"] == "bad_identity"
    assert password_login(address, "carol", SECRET)[1]["code"] == "bad_identity"


def test_a_password_outside_8_to_128_characters_is_invalid_password(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    bob = registered_owner(address)
    for ref, password in enumerate(("seven77", "x" * 129)):
        bob.send({"type": "name_password", "password": password, "ref": ref})
        assert bob.expect_error("invalid_password")["ref"] == ref
    set_password(bob, "8chars!!")
    set_password(bob, "y" * 128)


def test_only_a_key_proven_login_of_a_registered_name_may_set_one(
    make_server: MakeServer,
) -> None:
    address = make_server().address
    keyless, _ = welcome_43(address, "carol", key=None)
    keyless.send({"type": "name_password", "password": SECRET, "ref": 1})
    assert keyless.expect_error("no_identity")["ref"] == 1
    unregistered, _ = welcome_43(address, "dave")
    unregistered.send({"type": "name_password", "password": SECRET, "ref": 2})
    assert unregistered.expect_error("not_registered")["ref"] == 2
    bob = registered_owner(address)
    set_password(bob)
    by_password, _ = password_login(address, "bob", SECRET)
    by_password.expect("joined")
    for kind in ("name_password", "register", "unregister"):
        by_password.send({"type": kind, "password": "another password", "ref": kind})
        assert by_password.expect_error("no_identity")["ref"] == kind


def test_unregister_forgets_the_name_password(make_server: MakeServer) -> None:
    address = make_server().address
    bob = registered_owner(address)
    set_password(bob)
    bob.send({"type": "unregister", "ref": "u"})
    bob.expect("unregistered", ref="u")
    register(bob, "bob")
    bob.send({"type": "quit"})
    bob.expect_closed()
    assert password_login(address, "bob", SECRET)[1]["code"] == "bad_identity"


def test_an_operators_name_password_login_is_an_operator(make_server: MakeServer) -> None:
    address = make_server(operators=("alice",)).address
    alice = operator_client(address)
    set_password(alice)
    _, welcome = password_login(address, "alice", SECRET)
    assert welcome.get("operator") is True, welcome


def test_logins_by_password_are_checked_on_workers_without_the_lock(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slow hash runs on a pool worker (never the I/O thread), and the chat's lock is
    free meanwhile: another client is answered while a check is held up."""
    server = make_server()
    address = server.address
    bob = registered_owner(address)
    set_password(bob)
    checking, release = threading.Event(), threading.Event()
    threads: List[str] = []
    verify = namepassword.verify

    def held_verify(password: str, kept: str) -> bool:
        threads.append(threading.current_thread().name)
        checking.set()
        assert release.wait(10)
        return verify(password, kept)

    monkeypatch.setattr(namepassword, "verify", held_verify)
    client, _ = connect(address)
    client.send({"type": "login", "name": "bob", "version": V44, "name_password": SECRET})
    assert checking.wait(10)
    carol = old_client(address, "carol")  # the lock is free: carol logs in meanwhile
    carol.send({"type": "ping", "token": 7})
    carol.expect("pong")
    release.set()
    assert client.expect("welcome")["name"] == "bob"
    assert threads and "worker" in threads[0] and threads[0] != "test-server"


def test_the_hash_is_salted_pbkdf2_and_never_the_password(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    kept = history.SqliteHistory(path)
    try:
        kept.register("bob", "bob", key_of("bob"), 1.0)
        kept.set_password_hash("bob", namepassword.hash_password(SECRET))
    finally:
        kept.close()
    with sqlite3.connect(str(path)) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM registrations").fetchone()
    scheme, iterations, salt, digest = stored.split("$")
    assert (scheme, int(iterations)) == ("pbkdf2_sha256", namepassword.ITERATIONS)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert SECRET not in stored
    assert namepassword.hash_password(SECRET) != namepassword.hash_password(SECRET)
    assert namepassword.verify(SECRET, stored) and not namepassword.verify("other one", stored)


def test_a_schema_4_file_is_migrated_and_keeps_its_registrations(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with sqlite3.connect(str(path)) as conn:
        for script in history.MIGRATIONS[:4]:
            conn.executescript(script.format(default_key="'#general'", default_room="'#general'"))
        conn.execute(
            "INSERT INTO registrations (name_key, name, identity, ts) VALUES (?, ?, ?, ?)",
            ("bob", "bob", key_of("bob"), 1.0),
        )
        conn.execute("PRAGMA user_version = 4")
    opened = history.SqliteHistory(path)
    try:
        assert opened.registration("bob") == key_of("bob")
        assert opened.password_hash("bob") is None
    finally:
        opened.close()
    with sqlite3.connect(str(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 6


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_registering_again_keeps_the_password_with_the_same_key_only(
    tmp_path: Path, kind: str
) -> None:
    kept = history.MemoryHistory() if kind == "memory" else history.SqliteHistory(tmp_path / "h")
    try:
        kept.register("bob", "bob", key_of("bob"), 1.0)
        kept.set_password_hash("bob", "h")
        kept.register("bob", "bob", key_of("bob"), 2.0)
        assert kept.password_hash("bob") == "h"
        kept.register("bob", "bob", key_of("carol"), 3.0)
        assert kept.password_hash("bob") is None
    finally:
        kept.close()


def test_the_name_password_survives_a_restart(pyz: Path, tmp_path: Path) -> None:
    server = PyzServer(str(pyz), "--history-db", str(tmp_path / "h.sqlite3"))
    address = server.start()
    try:
        bob = registered_owner(address)
        set_password(bob)
        bob.close()
        address = server.restart()
        client, welcome = password_login(address, "bob", SECRET)
        assert welcome["type"] == "welcome", welcome
        assert password_login(address, "bob", "not it at all")[1]["code"] == "bad_identity"
        client.close()
        server.stop()
    finally:
        server.kill()
