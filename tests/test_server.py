"""The server against the contract: real sockets on 127.0.0.1, the server in-process."""

from __future__ import annotations

import json
import random
import socket
import time
from typing import Any

import pytest
from conftest import MakeServer
from wire import RawClient, login

from lanchat.core.config import ServerConfig
from lanchat.server import ChatServer, NoFreePort


@pytest.fixture
def server(make_server: MakeServer) -> ChatServer:
    return make_server()


def say(client: RawClient, text: str, **extra: Any) -> None:
    client.send({"type": "say", "text": text, **extra})


# -- handshake ---------------------------------------------------------------------------


def test_hello_announces_the_server_and_its_limits(server: ChatServer) -> None:
    client = RawClient(server.address)
    hello = client.expect("hello")
    assert hello["app"] == "lanchat"
    assert hello["version"] == "4.4.0"
    assert hello["server"] == "test"
    assert hello["online"] == []
    assert hello["auth"] == "none"
    assert hello["limits"] == {
        "max_frame": 65536,
        "max_server_frame": 4194304,
        "max_text": 2000,
        "max_name": 24,
        "rate": 5.0,
        "burst": 30,
        "max_room": 32,  # 4.2: rooms
        "max_topic": 300,
        "max_joined": 20,
    }


def test_login_welcomes_and_others_see_join(server: ChatServer) -> None:
    alice, welcome = login(server.address, "alice")
    assert welcome["online"] == ["alice"]
    assert welcome["history"] == []
    bob = RawClient(server.address)
    assert bob.expect("hello")["online"] == ["alice"]
    bob.send({"type": "login", "name": "bob", "version": "4.0.1"})
    assert bob.expect("welcome")["online"] == ["alice", "bob"]
    join = alice.expect("join", name="bob")
    assert abs(join["ts"] - time.time()) < 60
    assert bob.nothing_pending(), "a user never receives their own join"


def test_name_taken_is_case_and_width_insensitive_and_retry_works(server: ChatServer) -> None:
    login(server.address, "Bob")
    client = RawClient(server.address)
    client.expect("hello")
    for taken in ("bob", "BOB", "ｂｏｂ"):
        client.send({"type": "login", "name": taken, "version": "4.0.0"})
        client.expect_error("name_taken")
    client.send({"type": "login", "name": "bobby", "version": "4.0.0"})
    assert client.expect("welcome")["online"] == ["Bob", "bobby"]


def test_invalid_name_keeps_the_connection(server: ChatServer) -> None:
    client = RawClient(server.address)
    client.expect("hello")
    for bad in ("pаul", "two words", "", "x" * 25, "zero\u200bwidth", "..."):
        client.send({"type": "login", "name": bad, "version": "4.0.0"})
        client.expect_error("invalid_name")
    client.send({"type": "login", "name": "Дмитрий", "version": "4.0.0"})
    client.expect("welcome", name="Дмитрий")


def test_name_is_kept_in_nfc(server: ChatServer) -> None:
    client = RawClient(server.address)
    client.expect("hello")
    client.send({"type": "login", "name": "Z\u030cofie", "version": "4.0.0"})
    assert client.expect("welcome")["name"] == "\u017dofie"


def test_incompatible_version_is_refused_and_closed(server: ChatServer) -> None:
    client = RawClient(server.address)
    client.expect("hello")
    client.send({"type": "login", "name": "old", "version": "3.9.9"})
    frames = client.expect_closed()
    assert frames[0]["code"] == "incompatible_version"
    assert frames[0]["server_version"] == "4.4.0"


def test_before_login_only_login_ping_and_quit(server: ChatServer) -> None:
    client = RawClient(server.address)
    client.expect("hello")
    for frame in ({"type": "say", "text": "hi"}, {"type": "who"}, {"type": "pong"}):
        client.send(frame)
        client.expect_error("not_logged_in")
    client.send({"type": "ping", "token": 5})
    client.expect("pong", token=5)
    client.send({"type": "frobnicate"})
    client.expect_error("unknown_type")
    client.send({"type": "quit"})
    assert client.expect_closed() == []


def test_bad_frame_before_login_closes(server: ChatServer) -> None:
    client = RawClient(server.address)
    client.expect("hello")
    client.send_raw(b"not json\n")
    frames = client.expect_closed()
    assert [f["code"] for f in frames] == ["bad_frame"]


def test_second_login_is_a_bad_frame_and_keeps_the_connection(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    alice.send({"type": "login", "name": "alice2", "version": "4.0.0"})
    alice.expect_error("bad_frame")
    alice.send({"type": "who"})
    alice.expect("online", names=["alice"])


# -- chatting ---------------------------------------------------------------------------


def test_room_message_reaches_everyone_and_only_the_sender_gets_the_ref(
    server: ChatServer,
) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    say(alice, "hello all", ref="r1")
    own = alice.expect("message", text="hello all", ref="r1")
    other = bob.expect("message", text="hello all")
    assert "ref" not in other
    assert own["id"] == other["id"]
    assert own["from"] == "alice"
    assert abs(own["ts"] - time.time()) < 60
    say(bob, "second", ref=2.5)
    later = bob.expect("message", ref=2.5)
    assert later["id"] > own["id"]
    alice.expect("message", text="second")


def test_text_is_cleaned_of_controls_and_bidi_overrides(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    say(alice, "  a\tb\rc\nd\x00\x07\x1b[31m\x7f\x85\u202eE\u2066F  ")
    assert alice.expect("message")["text"] == "a b c d[31mEF"


def test_text_errors_keep_the_connection_and_carry_the_ref(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    say(alice, "x" * 2001, ref="long")
    assert alice.expect_error("too_long")["ref"] == "long"
    say(alice, " \t\x07 ", ref=9)
    assert alice.expect_error("bad_text")["ref"] == 9
    say(alice, "é" * 2000)
    assert alice.expect("message")["text"] == "é" * 2000


def test_private_message_goes_to_recipient_and_sender_only(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    carol, _ = login(server.address, "carol")
    alice.recv_until("join")
    alice.expect("join", name="carol")
    bob.expect("join", name="carol")
    say(bob, "psst", to="ALICE", ref="p")
    assert bob.expect("message", to="alice", ref="p")["text"] == "psst"
    assert "ref" not in alice.expect("message", to="alice", **{"from": "bob"})
    assert carol.nothing_pending()
    say(bob, "hello?", to="nobody", ref="q")
    assert bob.expect_error("no_such_user")["ref"] == "q"


def test_who_lists_everyone_online(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    login(server.address, "bob")
    alice.expect("join")
    alice.send({"type": "who"})
    alice.expect("online", names=["alice", "bob"])


def test_ping_gets_pong_with_the_same_token(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    for token in ("abc", 17, 2.5):
        alice.send({"type": "ping", "token": token})
        alice.expect("pong", token=token)


def test_welcome_history_holds_recent_messages_oldest_first(
    make_server: MakeServer,
) -> None:
    server = make_server(history=100, burst=200, rate=1000)
    alice, _ = login(server.address, "alice")
    for n in range(120):
        say(alice, f"m{n}")
    for n in range(120):
        alice.expect("message", text=f"m{n}")
    say(alice, "private", to="alice")
    alice.expect("message", text="private")
    _, welcome = login(server.address, "bob")
    texts = [m["text"] for m in welcome["history"]]
    assert texts == [f"m{n}" for n in range(20, 120)]
    assert all(m["type"] == "message" for m in welcome["history"])


def test_many_users_see_every_message_in_id_order(make_server: MakeServer) -> None:
    server = make_server(max_per_address=20)  # 20 users, all from 127.0.0.1
    users = [login(server.address, f"user{n}")[0] for n in range(20)]
    for n, user in enumerate(users):
        for m in range(5):
            say(user, f"{n}:{m}")
    for user in users:
        ids = []
        texts = set()
        while len(texts) < 100:
            frame = user.recv()
            if frame["type"] == "message":
                ids.append(frame["id"])
                texts.add(frame["text"])
        assert ids == sorted(ids)
        assert len(ids) == 100


def test_two_hundred_users_log_in_at_once(make_server: MakeServer) -> None:
    server = make_server(max_clients=250, max_per_address=200)  # all from 127.0.0.1
    clients = [RawClient(server.address, timeout=20) for _ in range(200)]
    for client in clients:
        client.expect("hello")
    for n, client in enumerate(clients):
        client.send({"type": "login", "name": f"u{n}", "version": "4.0.0"})
    for n, client in enumerate(clients):
        assert client.recv_until("welcome")[-1]["name"] == f"u{n}"
    clients[0].send({"type": "who"})
    assert len(clients[0].recv_until("online")[-1]["names"]) == 200


# -- presence and leaving ---------------------------------------------------------------------


def test_quit_and_disconnect_are_announced_with_their_reason(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    carol, _ = login(server.address, "carol")
    alice.recv_until("join")
    alice.expect("join", name="carol")
    bob.send({"type": "quit"})
    assert [f["type"] for f in bob.expect_closed()] in ([], ["join"])
    alice.expect("leave", name="bob", reason="quit")
    carol.close()
    alice.expect("leave", name="carol", reason="disconnect")


def test_login_timeout_closes_with_timeout(make_server: MakeServer) -> None:
    server = make_server(login_timeout=0.3)
    client = RawClient(server.address)
    client.expect("hello")
    frames = client.expect_closed(timeout=5)
    assert [f["code"] for f in frames] == ["timeout"]


def test_quiet_client_is_pinged_then_dropped_with_timeout(make_server: MakeServer) -> None:
    server = make_server(idle_timeout=0.6)
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    ping = bob.expect("ping", timeout=5)
    assert "token" in ping
    alice.send({"type": "pong"})  # alice answers her own ping and stays
    frames = bob.expect_closed(timeout=5)
    assert [f.get("code") for f in frames if f["type"] == "error"] == ["timeout"]
    frames = alice.recv_until("leave", timeout=5)
    assert frames[-1]["name"] == "bob"
    assert frames[-1]["reason"] == "timeout"


def test_answering_pings_keeps_a_client_online(make_server: MakeServer) -> None:
    server = make_server(idle_timeout=0.5)
    alice, _ = login(server.address, "alice")
    for _ in range(4):
        ping = alice.expect("ping", timeout=5)
        alice.send({"type": "pong", "token": ping["token"]})
    alice.send({"type": "who"})
    alice.recv_until("online")


# -- limits ---------------------------------------------------------------------------------


def test_server_full_at_capacity_and_free_again_after_a_leave(make_server: MakeServer) -> None:
    server = make_server(max_clients=2)
    login(server.address, "first")
    second = RawClient(server.address)
    second.expect("hello")
    third = RawClient(server.address)
    frames = third.expect_closed()
    assert frames[-1]["code"] == "server_full"
    second.close()
    deadline = time.monotonic() + 5
    while True:  # the worker frees once the server has seen the close
        fourth = RawClient(server.address)
        frames = fourth.expect_closed(timeout=0.5) if _is_refused(fourth) else []
        if not frames:
            break
        assert time.monotonic() < deadline, "capacity was not given back"
    fourth.send({"type": "login", "name": "fourth", "version": "4.0.0"})
    fourth.expect("welcome")


def _is_refused(client: RawClient) -> bool:
    first = client.recv()
    assert first["type"] == "hello"
    return not client.nothing_pending(0.3)


def test_a_paste_of_twenty_lines_is_never_refused(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    alice.send_raw(
        b"".join(json.dumps({"type": "say", "text": f"l{n}"}).encode() + b"\n" for n in range(20))
    )
    for n in range(20):
        alice.expect("message", text=f"l{n}")


def test_flooder_is_rate_limited_and_others_are_unharmed(make_server: MakeServer) -> None:
    server = make_server(rate=5, burst=20)
    flooder, _ = login(server.address, "flooder")
    bob, _ = login(server.address, "bob")
    flooder.expect("join")
    flooder.send_raw(
        b"".join(
            json.dumps({"type": "say", "text": "spam", "ref": n}).encode() + b"\n"
            for n in range(100)
        )
    )
    frames = [flooder.recv() for _ in range(100)]
    limited = [f for f in frames if f["type"] == "error"]
    relayed = [f for f in frames if f["type"] == "message"]
    assert 20 <= len(relayed) < 40
    assert len(limited) == 100 - len(relayed)
    assert all(f["code"] == "rate_limited" and f["retry_after"] > 0 for f in limited)
    assert {f["ref"] for f in limited} == set(range(100)) - {f["ref"] for f in relayed}
    got = [bob.expect("message")["text"] for _ in relayed]
    assert got == ["spam"] * len(relayed)
    say(bob, "still fine")
    bob.expect("message", text="still fine")


def test_a_client_that_never_reads_is_dropped_as_slow_without_delaying_others(
    make_server: MakeServer,
) -> None:
    server = make_server(max_backlog=65536, rate=10000, burst=10000)
    sleeper = RawClient(server.address)
    sleeper.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.expect("hello")
    sleeper.send({"type": "login", "name": "sleeper", "version": "4.0.0"})
    sleeper.expect("welcome")
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    text = "x" * 1900
    left: dict = {}
    for n in range(2000):
        say(alice, f"{n} {text}")
        for client in (alice, bob):  # each gets every message at once, maybe after the leave
            frame = client.recv(timeout=2)
            if frame["type"] == "leave":
                left[client] = frame
                frame = client.recv(timeout=2)
            assert frame["text"].startswith(f"{n} ")
        if len(left) == 2:
            break
    assert [f["name"] for f in left.values()] == ["sleeper", "sleeper"]
    assert [f["reason"] for f in left.values()] == ["slow", "slow"]
    say(alice, "after")
    alice.expect("message", text="after")
    bob.expect("message", text="after")


# -- hostile input ----------------------------------------------------------------------------


def test_a_frame_over_max_frame_is_too_long_and_closes(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    try:
        bob.send_raw(b"x" * (1024 * 1024))
    except ConnectionError:
        pass  # the server may close before taking it all
    frames = bob.expect_closed()
    assert [f["code"] for f in frames if f["type"] == "error"] == ["too_long"]
    alice.expect("leave", name="bob", reason="error")


def test_frame_of_exactly_max_frame_bytes_is_accepted(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    frame = json.dumps({"type": "ping", "token": ""}).encode()
    padding = 65536 - len(frame) - 1
    alice.send_raw(frame[:-2] + b"x" * padding + b'"}\n')
    assert len(alice.expect("pong")["token"]) == padding


def test_garbage_after_login_gets_bad_frame_and_the_session_goes_on(
    server: ChatServer,
) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    garbage = [
        b"[1,2,3]",
        b'"text"',
        b"{",
        b"\xff\xfe\x00",
        b'{"type":"say","text":"\xc3"}',
        b'{"type":"say","text":5}',
        b'{"type":"say","text":"hi","to":7}',
        b'{"type":"say","text":"hi","ref":[1]}',
        b'{"type":42}',
        b'{"text":"no type"}',
        b'{"type":"ping","token":NaN}',
        b'{"type":"say","text":"\\ud800"}',
        b"[" * 40 + b"]" * 40,
        b'{"type":"ping","deep":' + b"[" * 33 + b"]" * 33 + b"}",
    ]
    for line in garbage:
        bob.send_raw(line + b"\r\n")
        assert bob.expect_error("bad_frame")["type"] == "error", line
    bob.send_raw(b"\n\r\n  \n")  # blank lines are ignored
    say(bob, "still here")
    alice.expect("message", text="still here")


def test_random_bytes_never_hurt_another_client(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    rng = random.Random(42)
    for _ in range(10):
        noise = RawClient(server.address)
        noise.expect("hello")
        noise.send_raw(bytes(rng.getrandbits(8) for _ in range(5000)) + b"\n")
        frames = noise.expect_closed()
        assert [f["code"] for f in frames] in (["bad_frame"], ["too_long"])
        noise.close()
    say(alice, "fine")
    alice.expect("message", text="fine")


def test_a_frame_split_across_many_sends_is_decoded(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    data = json.dumps({"type": "say", "text": "héllo 李雷"}).encode() + b"\n"
    for byte in data:
        alice.send_raw(bytes([byte]))
    alice.expect("message", text="héllo 李雷")


def test_a_connection_cut_mid_frame_is_a_disconnect(server: ChatServer) -> None:
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    bob.send_raw(b'{"type":"say","te')
    bob.close()
    alice.expect("leave", name="bob", reason="disconnect")
    say(alice, "alone")
    alice.expect("message", text="alone")


# -- ports, shutdown, resources -----------------------------------------------------------


def _occupied_range(count: int) -> tuple:
    """Listen on `count` consecutive free ports; return the base and the sockets."""
    for _ in range(50):
        base = random.randint(20000, 60000)
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
                sock.listen()
            return base, held
        except OSError:
            for sock in held:
                sock.close()
    pytest.skip("no run of free ports found")


def test_port_fallback_takes_the_next_free_port(no_thread_leak: None) -> None:
    base, held = _occupied_range(2)
    try:
        server = ChatServer(ServerConfig(bind="127.0.0.1", port=base, discovery=False))
        try:
            assert server.address[1] == base + 2
        finally:
            server.server_close()
    finally:
        for sock in held:
            sock.close()


def test_a_range_with_no_free_port_is_an_error() -> None:
    base, held = _occupied_range(3)
    try:
        with pytest.raises(NoFreePort, match=f"{base} to {base + 2}"):
            ChatServer(ServerConfig(bind="127.0.0.1", port=base, port_span=2, discovery=False))
    finally:
        for sock in held:
            sock.close()


def test_shutdown_tells_everyone_and_leaves_no_thread(make_server: MakeServer) -> None:
    server = make_server()
    alice, _ = login(server.address, "alice")
    lurker = RawClient(server.address)
    lurker.expect("hello")
    started = time.monotonic()
    assert server.shutdown(timeout=5)
    assert time.monotonic() - started < 2
    assert alice.expect_closed()[-1]["type"] == "shutdown"
    assert lurker.expect_closed()[-1]["type"] == "shutdown"


def test_after_everyone_leaves_the_pool_is_free_again(server: ChatServer) -> None:
    clients = [login(server.address, f"u{n}")[0] for n in range(10)]
    for client in clients:
        client.send({"type": "quit"})
        client.expect_closed()
    deadline = time.monotonic() + 5
    while (server._pool.busy or server.connections) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server._pool.busy == 0
    assert server.connections == 0, "every connection is counted out"
    assert server.users == 0


def test_connect_login_and_leave_are_logged_with_the_peer(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="lanchat")  # the server and its sessions
    alice, _ = login(server.address, "alice")
    peer = "{}:{}".format(*alice.sock.getsockname())
    say(alice, "secret words")
    alice.expect("message")
    alice.send({"type": "quit"})
    alice.expect_closed()
    deadline = time.monotonic() + 5
    while "leave alice" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert f"connect {peer}" in caplog.text
    assert f"login alice {peer}" in caplog.text
    assert f"leave alice {peer} (quit)" in caplog.text
    assert "secret words" not in caplog.text, "message texts are not logged by default"


def test_discovery_answers_with_the_real_port_and_users_and_does_not_cost_capacity(
    make_server: MakeServer,
) -> None:
    from lanchat.chat import finder

    server = make_server(discovery=True, max_clients=1)
    login(server.address, "alice")
    found = finder.discover_lan(timeout=1.0, port=server.address[1], targets=["127.0.0.1"])
    assert [(s.name, s.port, s.users, s.max_users) for s in found] == [
        ("test", server.address[1], 1, 1)
    ]
    refused = RawClient(server.address)
    assert refused.expect_closed()[-1]["code"] == "server_full"
