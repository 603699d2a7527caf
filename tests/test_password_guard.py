"""Name password checks cannot freeze the server (protocol 4.4): at most one runs at once,
one that cannot start is refused at once, an address has a budget of failed checks, and a
SASL login is checked once. Real sockets, in process (the hashing is counted or held by
wrapping `namepassword.verify`, the function every check calls)."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from types import SimpleNamespace
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from conftest import MakeServer
from ircclient import IrcClient
from test_irc_sasl import SECRET, finish_registration, owner_with_password, plain, start_sasl
from wire import Frame, RawClient
from wire43 import connect, welcome_43

from lanchat.core import namepassword
from lanchat.core.passwordguard import PasswordGuard
from lanchat.protocol import ProtocolError

WRONG = "not the password"
ATTACKERS = tuple(f"127.0.3.{n}" for n in range(1, 9))  # addresses the attack comes from
CONNECTIONS_EACH = 8  # attacking connections per address (the share is 10)
PROMPT = 2.0  # seconds: a message slower than this while attacked means delivery froze


@pytest.fixture
def chat(make_server: MakeServer) -> Iterator[SimpleNamespace]:
    """A server with IRC on and two workers; `bob` owns a name password; `.irc_client()`
    opens an IRC client."""
    server = make_server(irc=True, workers=2)
    assert server.irc_address is not None
    owner_with_password(server.address, "bob")
    clients: List[IrcClient] = []

    def irc_client(source: str = "") -> IrcClient:
        clients.append(IrcClient(server.irc_address, source=source))
        return clients[-1]

    yield SimpleNamespace(lanchat=server.address, irc=server.irc_address, irc_client=irc_client)
    for client in clients:
        client.close()


def password_login(
    address: Tuple[str, int], password: str, source: str = ""
) -> Tuple[RawClient, Frame]:
    """A lanchat login as `bob` by name password; the client and the first answer."""
    client, _ = connect(address, source)
    client.send(
        {"type": "login", "name": "bob", "version": "4.4.0", "rooms": [], "name_password": password}
    )
    return client, client.recv(timeout=10)


def sasl_attempt(client: IrcClient, password: str) -> List[str]:
    """One SASL PLAIN try for `bob`: the numeric that ends it and its text."""
    client.send("AUTHENTICATE PLAIN")
    assert client.expect("AUTHENTICATE").params == ["+"]
    client.send(f"AUTHENTICATE {plain('bob', password)}")
    while True:
        msg = client.recv(10)
        if msg.command in ("903", "904"):
            return [msg.command, msg.params[-1]]


class Attack:
    """Threads that guess bob's name password without pause, each from one of ATTACKERS:
    IRC connections trying SASL three times (all in one write), and lanchat logins."""

    def __init__(self, chat: SimpleNamespace) -> None:
        self.chat = chat
        self.stop = threading.Event()
        self.tries = 0
        guess = f"AUTHENTICATE PLAIN\r\nAUTHENTICATE {plain('bob', WRONG)}\r\n"
        self._irc_burst = ("CAP LS 302\r\nCAP REQ :sasl\r\n" + guess * 3).encode()
        self._threads = [
            threading.Thread(target=self._run, args=(source, kind), daemon=True)
            for source in ATTACKERS
            for kind in ["irc", "lanchat"] * (CONNECTIONS_EACH // 2)
        ]

    def __enter__(self) -> Attack:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads)

    def _run(self, source: str, kind: str) -> None:
        while not self.stop.is_set():
            try:
                if kind == "irc":
                    self._once(self.chat.irc, source, self._irc_burst)
                else:
                    self._once(self.chat.lanchat, source, None)
            except OSError:
                time.sleep(0.05)  # refused over the share, or reset: try again

    def _once(self, address: Tuple[str, int], source: str, burst: Any) -> None:
        with socket.create_connection(address, 10, (source, 0)) as sock:
            if burst is None:  # lanchat: after the hello, a login by a wrong password
                sock.recv(65536)
                login = (
                    b'{"type":"login","name":"bob","version":"4.4.0","name_password":"x1234567"}\n'
                )
                sock.sendall(login)
                sock.recv(65536)  # its answer: we go, as the server may keep us
            else:
                sock.sendall(burst)
                while sock.recv(65536):  # until the third failure closes it
                    pass
            self.tries += 1


def delivery_times(alice: RawClient, carol: RawClient, count: int = 8) -> List[float]:
    """Seconds each of `count` messages from alice takes to reach carol."""
    times = []
    for n in range(count):
        sent = time.monotonic()
        alice.send({"type": "say", "text": f"still here {n}"})
        while True:
            frame = carol.recv(timeout=30)
            if frame["type"] == "message" and frame["text"] == f"still here {n}":
                break
        times.append(time.monotonic() - sent)
        time.sleep(0.2)
    return times


def test_delivery_goes_on_while_many_connections_guess_name_passwords(
    chat: SimpleNamespace,
) -> None:
    alice, _ = welcome_43(chat.lanchat, "alice")
    carol, _ = welcome_43(chat.lanchat, "carol")
    with Attack(chat) as attack:
        time.sleep(1.0)  # the attack in full swing
        times = delivery_times(alice, carol)
    print(
        f"\nwhile attacked ({attack.tries} guessing connections): "
        f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
    )
    assert max(times) < PROMPT, times
    _client, answer = password_login(chat.lanchat, SECRET, source="127.0.4.1")
    assert answer["type"] == "welcome", answer  # and the owner still gets in from elsewhere


def test_a_check_that_cannot_start_at_once_is_refused_at_once(
    chat: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    real_verify = namepassword.verify

    def held_verify(password: str, kept: str) -> bool:
        started.set()
        release.wait(10)
        return real_verify(password, kept)

    monkeypatch.setattr(namepassword, "verify", held_verify)
    first, _ = connect(chat.lanchat, "127.0.4.2")
    first.send(
        {"type": "login", "name": "bob", "version": "4.4.0", "rooms": [], "name_password": SECRET}
    )
    assert started.wait(10)
    try:
        client, answer = password_login(chat.lanchat, SECRET, source="127.0.4.3")
        assert answer["code"] == "rate_limited" and answer["retry_after"] > 0, answer
        irc = chat.irc_client("127.0.4.4")
        start_sasl(irc)
        irc.send(f"AUTHENTICATE {plain('bob', SECRET)}")
        failed = irc.expect("904")
        assert "try again" in failed.params[-1], failed
    finally:
        release.set()
    first.expect("welcome", timeout=10)
    client.send(
        {"type": "login", "name": "bob", "version": "4.4.0", "rooms": [], "name_password": SECRET}
    )
    assert client.recv(timeout=10)["type"] == "welcome"  # the same connection, again


def test_an_address_has_a_budget_of_failed_checks(chat: SimpleNamespace) -> None:
    for _ in range(PasswordGuard.FAILURES):
        _client, answer = password_login(chat.lanchat, WRONG, source="127.0.4.5")
        assert answer["code"] == "bad_identity", answer
    _client, answer = password_login(chat.lanchat, SECRET, source="127.0.4.5")
    assert answer["code"] == "rate_limited", answer
    assert 0 < answer["retry_after"] <= PasswordGuard.WINDOW
    irc = chat.irc_client("127.0.4.5")
    irc.send("CAP LS 302")
    irc.send("CAP REQ :sasl")
    code, text = sasl_attempt(irc, SECRET)
    assert code == "904" and "try again" in text, text
    _client, answer = password_login(chat.lanchat, SECRET, source="127.0.4.6")
    assert answer["type"] == "welcome", answer  # another address has its own budget


def test_a_sasl_login_is_checked_once(
    chat: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: List[str] = []
    real_verify = namepassword.verify

    def counted_verify(password: str, kept: str) -> bool:
        checks.append(password)
        return real_verify(password, kept)

    monkeypatch.setattr(namepassword, "verify", counted_verify)
    irc = chat.irc_client()
    start_sasl(irc)
    irc.send(f"AUTHENTICATE {plain('bob', SECRET)}")
    irc.expect("903")
    assert finish_registration(irc, "bob")[-1].params[0] == "bob"
    assert checks == [SECRET]


def test_the_guard_refuses_a_second_check_while_one_runs_and_counts_failures() -> None:
    now = [0.0]
    guard = PasswordGuard(at_once=1, clock=lambda: now[0])
    inside: List[float] = []

    def nested() -> bool:  # while this check runs, another address tries
        with pytest.raises(ProtocolError) as refused:
            guard.check("10.0.0.2", lambda: True)
        inside.append(refused.value.fields["retry_after"])
        return True

    assert guard.check("10.0.0.1", nested) is True
    assert inside and inside[0] > 0
    wrong: Callable[[], bool] = lambda: False  # noqa: E731
    for _ in range(PasswordGuard.FAILURES):
        assert guard.check("10.0.0.1", wrong) is False
    with pytest.raises(ProtocolError) as refused:
        guard.check("::ffff:10.0.0.1", lambda: True)  # the same address, IPv6-mapped
    assert refused.value.code == "rate_limited"
    assert refused.value.fields["retry_after"] == PasswordGuard.WINDOW
    now[0] += PasswordGuard.WINDOW
    assert guard.check("10.0.0.1", lambda: True) is True  # refilled


def test_a_sasl_check_does_not_outlive_a_password_changed_before_the_login(
    chat: SimpleNamespace,
) -> None:
    irc = chat.irc_client()
    start_sasl(irc)
    irc.send(f"AUTHENTICATE {plain('bob', SECRET)}")
    irc.expect("903")
    owner, _ = welcome_43(chat.lanchat, "bob")  # meanwhile, the owner sets another password
    owner.send({"type": "name_password", "password": "a brand new one", "ref": "p"})
    assert owner.expect("name_password", ref="p")["set"] is True
    owner.send({"type": "quit"})
    owner.expect_closed()
    irc.send("CAP END")
    irc.send("NICK bob")
    irc.send("USER bob 0 * :bob")
    lines = irc.expect_closed()
    assert not any(msg.command == "001" for msg in lines), lines
    assert any(msg.command == "ERROR" for msg in lines), lines
