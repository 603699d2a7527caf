"""Nothing lost: durable history, resume after a drop, exactly-once sending, passwords."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeServer, free_port, pyz_command
from wire import RawClient, login, login_frame, proof, start_pyz_server

from lanchat.core.config import ServerConfig
from lanchat.core.history import HistoryError, SqliteHistory, host_key
from lanchat.server import ChatServer


def say(client: RawClient, text: str, **extra: Any) -> None:
    client.send({"type": "say", "text": text, **extra})


def restartable(make_server: MakeServer, db: Path, **options: Any) -> ChatServer:
    return make_server(history_db=str(db), rate=1000, burst=1000, **options)


def stop(server: ChatServer) -> None:
    assert server.shutdown(timeout=10)
    server.server_close()  # releases the history file (the fixture's second close is harmless)


# -- durable history ----------------------------------------------------------------------


def test_history_survives_a_restart_and_ids_keep_increasing(
    make_server: MakeServer, tmp_path: Path
) -> None:
    db = tmp_path / "h.sqlite3"
    server = restartable(make_server, db)
    alice, first = login(server.address, "alice")
    for n in range(5):
        say(alice, f"before {n}")
    last = [alice.expect("message")["id"] for _ in range(5)][-1]
    say(alice, "private", to="alice")
    private_id = alice.expect("message")["id"]
    stop(server)

    server = restartable(make_server, db)
    bob, welcome = login(server.address, "bob")
    assert [m["text"] for m in welcome["history"]] == [f"before {n}" for n in range(5)]
    assert welcome["history"][-1]["id"] == last
    assert welcome["history_id"] == first["history_id"]
    say(bob, "after")
    assert bob.expect("message")["id"] > max(last, private_id)


def test_no_history_forgets_on_restart_and_says_so_by_a_new_history_id(
    make_server: MakeServer,
) -> None:
    server = make_server()
    alice, first = login(server.address, "alice")
    say(alice, "gone soon")
    alice.expect("message")
    stop(server)
    server = make_server()
    _, welcome = login(server.address, "bob")
    assert welcome["history"] == []
    assert welcome["history_id"] != first["history_id"]


def test_a_damaged_history_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "bad.sqlite3"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="not a lanchat history file"):
        ChatServer(ServerConfig(bind="127.0.0.1", port=0, history_db=str(db), discovery=False))
    assert db.read_bytes() == b"this is not sqlite" * 100, "never silently emptied"


def test_a_history_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer lanchat"):
        SqliteHistory(db)


def test_two_servers_cannot_share_a_history_file(make_server: MakeServer, tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    restartable(make_server, db)
    with pytest.raises(HistoryError, match="in use by another lanchat server"):
        ChatServer(ServerConfig(bind="127.0.0.1", port=0, history_db=str(db), discovery=False))


def test_cli_history_errors_exit_1_with_one_line(pyz: Path, tmp_path: Path) -> None:
    db = tmp_path / "bad.sqlite3"
    db.write_bytes(b"garbage" * 1000)
    result = subprocess.run(
        pyz_command("server", "--bind", "127.0.0.1", "--port", str(free_port()),
                    "--no-discovery", "--history-db", str(db)),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a lanchat history file" in result.stderr


def test_the_default_history_file_is_per_host_and_port_in_the_data_directory(
    pyz: Path, tmp_path: Path
) -> None:
    port = free_port()
    env_home = tmp_path / "data"
    env = dict(os.environ, XDG_DATA_HOME=str(env_home))
    proc = subprocess.Popen(
        pyz_command("server", "--bind", "127.0.0.1", "--port", str(port), "--no-discovery"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        assert (env_home / "lanchat" / f"history-{host_key()}-{port}.sqlite3").is_file()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# -- resume after a drop ------------------------------------------------------------------


def test_resume_gets_every_message_after_the_last_one_seen(make_server: MakeServer) -> None:
    server = make_server(rate=1000, burst=1000, history=50)
    alice, welcome = login(server.address, "alice")
    say(alice, "seen")
    seen = alice.expect("message")["id"]
    alice.send({"type": "quit"})
    alice.expect_closed()  # the server closes after alice has left the room
    bob, _ = login(server.address, "bob")
    for n in range(80):  # more than the 50 a newcomer gets
        say(bob, f"missed {n}")
    for _ in range(80):
        bob.expect("message")
    back = RawClient(server.address)
    back.expect("hello")
    back.send(login_frame("alice", last_id=seen, history_id=welcome["history_id"]))
    resumed = back.expect("welcome")
    assert [m["text"] for m in resumed["history"]] == [f"missed {n}" for n in range(80)]
    assert "truncated" not in resumed


def test_resume_from_another_history_gets_the_ordinary_welcome(make_server: MakeServer) -> None:
    server = make_server(history=50)
    bob, _ = login(server.address, "bob")
    say(bob, "one")
    bob.expect("message")
    back = RawClient(server.address)
    back.expect("hello")
    back.send(login_frame("alice", last_id=10**6, history_id="0" * 32))
    assert [m["text"] for m in back.expect("welcome")["history"]] == ["one"]


def test_resume_over_the_cap_is_marked_truncated(make_server: MakeServer) -> None:
    server = make_server(rate=10**6, burst=10**6)
    bob, welcome = login(server.address, "bob")
    bob.send_raw(b"".join(b'{"type":"say","text":"m%d"}\n' % n for n in range(1005)))
    for _ in range(1005):
        bob.expect("message")
    back = RawClient(server.address)
    back.expect("hello")
    back.send(login_frame("alice", last_id=0, history_id=welcome["history_id"]))
    resumed = back.expect("welcome")
    assert resumed["truncated"] is True
    assert len(resumed["history"]) == 1000
    assert resumed["history"][-1]["text"] == "m1004"


def test_resume_token_takes_the_name_over_without_a_flicker(make_server: MakeServer) -> None:
    server = make_server()
    ghost, welcome = login(server.address, "alice")  # its network died; the server can't tell
    bob, _ = login(server.address, "bob")
    intruder = RawClient(server.address)
    intruder.expect("hello")
    intruder.send(login_frame("alice"))
    intruder.expect_error("name_taken")
    intruder.send(login_frame("alice", resume="0" * 32))
    intruder.expect_error("name_taken")

    back = RawClient(server.address)
    back.expect("hello")
    back.send(login_frame("alice", resume=welcome["resume"]))
    again = back.expect("welcome")
    assert again["online"] == ["alice", "bob"]
    assert again["resume"] != welcome["resume"]
    assert [f["type"] for f in ghost.expect_closed()] == ["join"]  # bob's; no error, no leave
    say(bob, "are you there?")
    assert bob.expect("message")["text"] == "are you there?"  # no leave or join before it
    back.expect("message", text="are you there?")


# -- exactly once -------------------------------------------------------------------------------


def test_a_resent_ref_is_not_relayed_twice(make_server: MakeServer) -> None:
    server = make_server()
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    say(alice, "once", ref="r-1")
    original = alice.expect("message", ref="r-1")
    bob.expect("message", text="once")
    say(alice, "once", ref="r-1")
    echo = alice.expect("message", ref="r-1")
    assert echo["id"] == original["id"]
    assert bob.nothing_pending()
    say(alice, "new text, same ref", ref="r-1")  # a reused ref is a new message
    assert alice.expect("message", ref="r-1")["id"] > original["id"]
    bob.expect("message", text="new text, same ref")


def test_a_ref_is_recognised_after_a_restart(make_server: MakeServer, tmp_path: Path) -> None:
    db = tmp_path / "refs.sqlite3"
    server = restartable(make_server, db)
    alice, _ = login(server.address, "alice")
    say(alice, "before the crash", ref="abc")
    original = alice.expect("message")
    stop(server)
    server = restartable(make_server, db)
    alice, welcome = login(server.address, "alice")
    assert [m["id"] for m in welcome["history"]] == [original["id"]]
    say(alice, "before the crash", ref="abc")
    assert alice.expect("message", ref="abc")["id"] == original["id"]
    alice.send({"type": "who"})
    alice.expect("online")  # and nothing else came first


# -- passwords ----------------------------------------------------------------------------------


def test_password_hello_has_a_fresh_nonce_and_hides_who_is_online(
    make_server: MakeServer,
) -> None:
    server = make_server(password="s3cret")
    first = RawClient(server.address)
    hello = first.expect("hello", auth="password", online=[])
    first.send(login_frame("alice", auth=proof("s3cret", hello["nonce"], "alice")))
    first.expect("welcome")
    second = RawClient(server.address)
    other = second.expect("hello", online=[])
    assert len(other["nonce"]) == 32 and int(other["nonce"], 16) >= 0
    assert other["nonce"] != hello["nonce"]


def test_wrong_missing_and_replayed_proofs_are_refused(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    server = make_server(password="s3cret")
    used = RawClient(server.address)
    hello = used.expect("hello")
    replayable = proof("s3cret", hello["nonce"], "alice")
    used.send(login_frame("alice", auth=replayable))
    used.expect("welcome")
    used.send({"type": "quit"})
    used.expect_closed()
    attempts = [
        {"auth": proof("wrong", hello["nonce"], "alice")},
        {},
        {"auth": replayable},  # from an earlier connection, so for another nonce
    ]
    for extra in attempts:
        client = RawClient(server.address)
        client.expect("hello")
        client.send(login_frame("alice", **extra))
        assert [f["code"] for f in client.expect_closed()] == ["auth_failed"]
    assert caplog.text.count("auth failed from 127.0.0.1") == 3
    assert "s3cret" not in caplog.text


def test_cli_password_from_file_or_environment(pyz: Path, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from file\n")
    for args, env in (
        (["--password-file", str(secret)], {}),
        ([], {"LANCHAT_PASSWORD": "from file"}),
    ):
        proc, address = start_pyz_server(
            str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
            "--no-history", *args, env=dict(os.environ, **env),
        )  # fmt: skip
        try:
            client = RawClient(address)
            hello = client.expect("hello", auth="password")
            client.send(login_frame("bob", auth=proof("from file", hello["nonce"], "bob")))
            client.expect("welcome")
            assert "from file" not in " ".join(proc.args)  # never on the command line
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        assert "from file" not in err
