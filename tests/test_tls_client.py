"""The client's TLS and trust on first use, against in-process servers with a TLS
listener (throwaway certificates made by the openssl binary): links over TLS and the
fallbacks both ways, the known_servers file, every decision of `chat.trust`, reconnects
that check the certificate each time, the port scan of TLS servers, the window's question."""

from __future__ import annotations

import os
import queue
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import pytest
import tlscerts
from tlscerts import Certificate
from wire import login

from lanchat import protocol
from lanchat.chat import finder
from lanchat.chat.connection import (
    Backoff,
    Connected,
    Connection,
    Disconnected,
    Event,
    Link,
    Received,
    Stopped,
    Untrusted,
    open_link,
)
from lanchat.chat.known_servers import KnownServers
from lanchat.chat.model import ClientModel
from lanchat.chat.trust import Meeting, Trust
from lanchat.chat.trustprompt import TrustPrompt
from lanchat.chat.view import render_trust_prompt, status_text
from lanchat.core.config import ServerConfig
from lanchat.core.transport import LANCHAT
from lanchat.server import ChatServer

WAIT = 10.0
Address = Tuple[str, int]


certificates = tlscerts.certificates  # the shared fixture, made this module's own


class Lab:
    """Two certificates (A, B), a known_servers file, in-process servers of a given name
    with a plain and a TLS listener (`start`), and links to them (`open`)."""

    def __init__(self, certificates: Tuple[Certificate, Certificate], folder: Path) -> None:
        self.certificates = certificates
        self.known = KnownServers(str(folder / "config" / "known_servers"))
        self.servers: List[Tuple[ChatServer, threading.Thread]] = []
        self.links: List[Link] = []

    def start(self, name: str, certificate: Certificate) -> Tuple[Address, Address]:
        """A server called `name`: its plain address and its TLS address (`certificate`)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate[0], certificate[1])
        server = ChatServer(ServerConfig(bind="127.0.0.1", port=0, name=name, discovery=False))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server.listen(listener, LANCHAT, context)
        thread = threading.Thread(target=server.serve_forever, name="test-server")
        thread.start()
        self.servers.append((server, thread))
        return server.address, listener.getsockname()[:2]

    def open(self, address: Address, **options: Any) -> Link:
        """open_link, closed at the end of the test."""
        self.links.append(open_link(*address, **options))
        return self.links[-1]

    def close(self) -> None:
        for link in self.links:
            link.close()
        for server, thread in self.servers:
            assert server.shutdown(timeout=10)
            thread.join(10)
            server.server_close()


@pytest.fixture
def lab(
    certificates: Tuple[Certificate, Certificate], tmp_path: Path, no_thread_leak: None
) -> Iterator[Lab]:
    made = Lab(certificates, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def known(tmp_path: Path) -> KnownServers:
    return KnownServers(str(tmp_path / "config" / "known_servers"))


# --------------------------------------------------------------------------- links


def test_a_link_over_tls_shows_the_certificate_fingerprint(lab: Lab) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    link = lab.open(tls_address)
    assert link.tls is not None
    assert link.fingerprint == a[2]
    assert link.hello["server"] == "den"


def test_a_plain_server_not_known_is_read_in_plain_tcp_with_nothing_sent(lab: Lab) -> None:
    """A plain server greets at once: the client reads its hello on that connection and
    never sends it a TLS handshake (4.3 servers, bots and proxies see what they saw)."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: List[bytes] = []

    def greet_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(protocol.encode(protocol.hello("old", [])))
            conn.settimeout(WAIT)
            received.append(conn.recv(65536))  # b"" when the client closes

    thread = threading.Thread(target=greet_once, name="plain-server")
    thread.start()
    try:
        link = open_link(*listener.getsockname()[:2])
        assert link.tls is None and link.fingerprint is None
        assert link.hello["server"] == "old"
        link.close()
        thread.join(WAIT)
        assert received == [b""]
    finally:
        listener.close()
        thread.join(WAIT)


def test_a_tls_attempt_answered_in_plain_text_is_read_again_in_plain_tcp(lab: Lab) -> None:
    plain_address, _ = lab.start("den", lab.certificates[0])
    link = lab.open(plain_address, tls=True)
    assert link.tls is None and link.fingerprint is None
    assert link.hello["type"] == "hello" and link.hello["server"] == "den"


def test_plain_first_at_a_tls_server_goes_tls_on_tls_required(lab: Lab) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    link = lab.open(tls_address, tls=False)
    assert link.fingerprint == a[2]
    assert link.hello["server"] == "den"


def test_chat_over_tls_reads_and_writes_from_two_threads(lab: Lab) -> None:
    """The reader thread sits in recv while this thread sends: TLS through memory
    buffers keeps both working, and every echo arrives in order."""
    plain_address, tls_address = lab.start("den", lab.certificates[0])
    watcher, _ = login(plain_address, "watcher")
    events: queue.Queue[Event] = queue.Queue()
    connection = Connection(*tls_address, events.put)
    connection.start()
    try:
        assert isinstance(events.get(timeout=WAIT), Connected)
        connection.send(protocol.login("bob"))
        texts = [f"line {n}" for n in range(25)]
        for text in texts:  # within the server's burst
            assert connection.send(protocol.say(text))
        echoed: List[str] = []
        while len(echoed) < len(texts):
            event = events.get(timeout=WAIT)
            if isinstance(event, Received) and event.frame["type"] == "message":
                echoed.append(event.frame["text"])
        assert echoed == texts
        watcher.expect("join", name="bob")
        for text in texts:
            watcher.expect("message", text=text)
    finally:
        connection.close()


# --------------------------------------------------------------------------- known_servers


def test_known_servers_keeps_names_with_spaces_and_percent_signs(known: KnownServers) -> None:
    fingerprint = "SHA256:" + ":".join(["AB"] * 32)
    known.remember("den of 100% café", fingerprint, "10.0.0.5:42070")
    found = known.find("den of 100% café")
    assert found is not None and found.fingerprint == fingerprint
    assert found.address == "10.0.0.5:42070"
    assert known.find("den") is None
    line = Path(known.path).read_text(encoding="utf-8").splitlines()[-1]
    assert line.startswith("den%20of%20100%25%20café SHA256:AB:AB:")


def test_known_servers_is_its_owners_only_and_forget_keeps_other_lines(
    known: KnownServers,
) -> None:
    one, two = "SHA256:" + ":".join(["01"] * 32), "SHA256:" + ":".join(["02"] * 32)
    known.remember("den", one, "10.0.0.5:42070")
    with open(known.path, "a", encoding="utf-8") as file:
        file.write("# my own note\nsomething this client cannot read\n")
    known.remember("lab", two, "10.0.0.6:42069")
    assert stat.S_IMODE(os.stat(known.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(known.path)).st_mode) == 0o700
    forgotten = known.forget("den")
    assert forgotten is not None and forgotten.fingerprint == one
    text = Path(known.path).read_text(encoding="utf-8")
    assert "den " not in text and "lab " in text
    assert "# my own note\nsomething this client cannot read\n" in text
    assert stat.S_IMODE(os.stat(known.path).st_mode) == 0o600
    assert known.forget("den") is None


# --------------------------------------------------------------------------- trust


def test_a_first_meeting_is_remembered_and_then_trusted(lab: Lab) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    notes: List[str] = []
    trust = Trust(lab.known, say=notes.append)
    meeting = trust.check(lab.open(tls_address))
    assert meeting == Meeting("den", f"127.0.0.1:{tls_address[1]}", a[2])
    trust.accept(meeting)
    assert lab.known.find("den") is not None and lab.known.find("den").fingerprint == a[2]  # type: ignore[union-attr]
    assert notes and a[2] in notes[0] and "now trusted" in notes[0]
    assert trust.check(lab.open(tls_address)) is None


def test_a_changed_certificate_is_refused_saying_what_changed_and_how_to_accept_it(
    lab: Lab,
) -> None:
    a, b = lab.certificates
    lab.known.remember("den", a[2], "10.0.0.5:42070")
    _, tls_address = lab.start("den", b)
    with pytest.raises(Untrusted) as refused:
        Trust(lab.known).check(lab.open(tls_address))
    warning = str(refused.value)
    assert "WARNING" in warning and "has changed" in warning
    assert a[2] in warning and b[2] in warning and "10.0.0.5:42070" in warning
    assert "lanchat client --forget-server den" in warning
    assert f"lanchat client --tls-fingerprint {b[2]}" in warning


def test_a_server_known_with_tls_that_answers_in_plain_text_is_a_downgrade(lab: Lab) -> None:
    a, _ = lab.certificates
    lab.known.remember("den", a[2], "10.0.0.5:42070")
    plain_address, _ = lab.start("den", a)
    with pytest.raises(Untrusted) as refused:
        Trust(lab.known).check(lab.open(plain_address))
    assert "answered without TLS" in str(refused.value) and a[2] in str(refused.value)
    assert "--forget-server den" in str(refused.value)


def test_an_unknown_plain_server_needs_no_trust(lab: Lab) -> None:
    plain_address, _ = lab.start("den", lab.certificates[0])
    assert Trust(lab.known).check(lab.open(plain_address)) is None
    assert not os.path.exists(lab.known.path)


def test_a_pin_accepts_its_certificate_whatever_is_known_and_refuses_any_other(lab: Lab) -> None:
    a, b = lab.certificates
    lab.known.remember("den", a[2], "10.0.0.5:42070")
    plain_address, tls_address = lab.start("den", b)
    pinned = Trust(lab.known, pin=b[2], accept_new=False, say=lambda note: None)
    meeting = pinned.check(lab.open(tls_address))
    assert meeting is not None and meeting.pinned
    pinned.accept(meeting)
    assert lab.known.find("den").fingerprint == b[2]  # type: ignore[union-attr]
    with pytest.raises(Untrusted, match="not the pinned one"):
        Trust(lab.known, pin=a[2]).check(lab.open(tls_address))
    with pytest.raises(Untrusted, match="answered without TLS"):
        Trust(lab.known, pin=b[2]).check(lab.open(plain_address))


def test_the_certificate_must_be_the_one_discovery_announced(lab: Lab) -> None:
    a, b = lab.certificates
    plain_address, tls_address = lab.start("den", a)
    meeting = Trust(lab.known, announced=a[2]).check(lab.open(tls_address))
    assert meeting is not None and meeting.announced
    with pytest.raises(Untrusted, match="discovery answer announced"):
        Trust(lab.known, announced=b[2]).check(lab.open(tls_address))
    with pytest.raises(Untrusted, match="no TLS"):
        Trust(lab.known, announced=a[2]).check(lab.open(plain_address))


def test_a_first_meeting_on_a_reconnect_is_accepted_only_with_accept_new(lab: Lab) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    with pytest.raises(Untrusted, match="start the client again"):
        Trust(lab.known, accept_new=False).verify(lab.open(tls_address))
    assert lab.known.find("den") is None
    Trust(lab.known, accept_new=True, say=lambda note: None).verify(lab.open(tls_address))
    assert lab.known.find("den").fingerprint == a[2]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- reconnects


def _next(events: queue.Queue[Event], kind: type) -> Event:
    while True:
        event = events.get(timeout=WAIT)
        if isinstance(event, kind):
            return event


def test_every_reconnect_goes_tls_again_and_is_checked(lab: Lab) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    lab.known.remember("den", a[2], "10.0.0.5:42070")
    trust = Trust(lab.known)
    checked: List[str] = []

    def verify(link: Link) -> None:
        checked.append(str(link.fingerprint))
        trust.verify(link)

    events: queue.Queue[Event] = queue.Queue()
    connection = Connection(*tls_address, events.put, backoff=Backoff(0.01, 0.05), verify=verify)
    first = open_link(*tls_address)
    trust.verify(first)
    connection.start(first)
    try:
        _next(events, Connected)
        connection.drop()
        _next(events, Connected)
        assert checked == [a[2]]
        connection.drop()
        _next(events, Connected)
        assert checked == [a[2], a[2]]
    finally:
        connection.close()


def test_a_reconnect_to_a_changed_certificate_stops_for_good(lab: Lab) -> None:
    a, b = lab.certificates
    _, tls_address = lab.start("den", a)
    events: queue.Queue[Event] = queue.Queue()
    first = open_link(*tls_address)
    lab.known.remember("den", b[2], "10.0.0.5:42070")  # as if the server had changed meanwhile
    connection = Connection(
        *tls_address, events.put, backoff=Backoff(0.01, 0.05), verify=Trust(lab.known).verify
    )
    connection.start(first)
    try:
        _next(events, Connected)
        connection.drop()
        stopped = _next(events, Stopped)
        assert isinstance(stopped, Stopped)
        assert "has changed" in stopped.reason and a[2] in stopped.reason
    finally:
        connection.close()


# --------------------------------------------------------------------------- finding servers


def test_the_port_scan_finds_a_tls_server_with_its_fingerprint(lab: Lab) -> None:
    a, _ = lab.certificates
    plain_address, tls_address = lab.start("den", a)
    [found] = finder.scan_host("127.0.0.1", base_port=tls_address[1], span=0)
    assert (found.name, found.port, found.tls, found.fingerprint) == (
        "den",
        tls_address[1],
        True,
        a[2],
    )
    assert found.compatible
    [plain] = finder.scan_host("127.0.0.1", base_port=plain_address[1], span=0)
    assert (plain.name, plain.tls, plain.fingerprint) == ("den", False, None)


def test_a_discovery_answer_brings_tls_and_the_fingerprint() -> None:
    fingerprint = "SHA256:" + ":".join(["5E"] * 32)
    answer = protocol.encode(
        protocol.server_info("den", 42070, 3, 50, fingerprint=fingerprint.lower())
    )
    server = finder._parse_answer(answer, "10.0.0.5")
    assert server is not None
    assert (server.tls, server.fingerprint) == (True, fingerprint)
    plain = finder._parse_answer(
        protocol.encode(protocol.server_info("den", 42070, 3, 50)), "10.0.0.5"
    )
    assert plain is not None and (plain.tls, plain.fingerprint) == (False, None)


# --------------------------------------------------------------------------- the question


def test_the_window_asks_with_the_whole_fingerprint_and_only_y_trusts() -> None:
    fingerprint = "SHA256:" + ":".join(f"{n:02X}" for n in range(32))
    prompt = TrustPrompt(Meeting("den", "10.0.0.5:42070", fingerprint))
    text = "\n".join(
        "".join(segment for segment, _ in row) for row in render_trust_prompt(prompt, 24, 80).rows
    )
    assert "Server 'den' at 10.0.0.5:42070 is new to this client." in text
    shown = text.split("fingerprint is:", 1)[1]
    assert ":".join(f"{n:02X}" for n in range(16)) + ":" in shown
    assert ":".join(f"{n:02X}" for n in range(16, 32)) in shown
    assert "y: trust it" in text and "n: do not connect" in text
    for key in ("\n", "\r", "x", "KEY_DOWN"):
        prompt.handle_key(key)
        assert prompt.done is None
    prompt.handle_key("y")
    assert prompt.done is True
    refused = TrustPrompt(prompt.meeting)
    refused.handle_key("n")
    assert refused.done is False


def test_the_question_fits_any_window() -> None:
    prompt = TrustPrompt(Meeting("den", "10.0.0.5:42070", "SHA256:" + ":".join(["AB"] * 32)))
    for rows, cols in ((24, 80), (6, 20), (3, 10), (50, 200)):
        screen = render_trust_prompt(prompt, rows, cols)
        assert len(screen.rows) == rows


def test_the_status_bar_says_tls_while_connected_over_tls() -> None:
    address = ("127.0.0.1", 42070)
    over_tls = ClientModel("bob", *address)
    over_tls.handle_event(Connected(protocol.hello("den", []), address, tls=True), 1764000000.0)
    assert status_text(over_tls, 80).endswith("| logging in, TLS")
    over_tls.handle_event(Disconnected("the server closed the connection", 1.0), 1764000001.0)
    assert "TLS" not in status_text(over_tls, 80)
    plain = ClientModel("bob", *address)
    plain.handle_event(Connected(protocol.hello("den", []), address), 1764000000.0)
    assert "TLS" not in status_text(plain, 80)
