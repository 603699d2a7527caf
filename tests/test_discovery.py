"""LAN discovery on this machine's loopback only: the responder, the probe, the port scan.

Every socket here is on 127.0.0.0/8. Each test takes a random 127.x.y.z address of its
own and ports the OS hands out, so two runs of the suite at once never meet; the one
broadcast address used is the loopback one, 127.255.255.255, which never leaves the host.
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import pyz_command

from lanchat import lan, protocol
from lanchat.__main__ import build_parser
from lanchat.chat import finder
from lanchat.chat.finder import ServerInfo
from lanchat.core.responder import Responder

LOOPBACK_BROADCAST = "127.255.255.255"
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="loopback broadcast and interface ioctls"
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")


# ---------------------------------------------------------------------------
# Helpers


def own_address() -> str:
    """A loopback address no other test (or test run) uses: all of 127/8 is local on Linux."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def unique(prefix: str) -> str:
    """A server name no other run of the suite uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_udp_port(address: str) -> int:
    """A UDP port free on this address right now, below the CLI's port maximum."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
            port = int(probe.getsockname()[1])
        if port <= 65535 - protocol.PORT_SPAN:
            return port
    raise RuntimeError("no free UDP port")


def tcp_listeners(address: str, count: int) -> List[socket.socket]:
    """`count` listening TCP sockets on consecutive ports of `address`."""
    for _ in range(50):
        first = socket.socket()
        first.bind((address, 0))
        base = first.getsockname()[1]
        sockets = [first]
        try:
            for port in range(base + 1, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind((address, port))
        except OSError:  # a neighbour port is taken: try another base
            for sock in sockets:
                sock.close()
            continue
        if base + count - 1 > 65535 - protocol.PORT_SPAN:
            for sock in sockets:
                sock.close()
            continue
        for sock in sockets:
            sock.listen(8)
        return sockets
    raise RuntimeError("no run of free TCP ports")


class FakeTcpServices:
    """Listeners that greet each connection with fixed bytes (or nothing) in one thread.

    Records what each connection sent before it closed, to prove the scan says nothing.
    """

    def __init__(self, listeners: List[socket.socket], greetings: List[Optional[bytes]]):
        self.received: Dict[int, bytes] = {}
        self._greetings = {s.getsockname()[1]: g for s, g in zip(listeners, greetings)}
        self._listeners = listeners
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        for sock in listeners:
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, name="fake-tcp", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data is None:
                    conn, _ = sock.accept()
                    port = sock.getsockname()[1]
                    greeting = self._greetings[port]
                    if greeting:
                        conn.sendall(greeting)
                    conn.setblocking(False)
                    self.received.setdefault(port, b"")
                    self._selector.register(conn, selectors.EVENT_READ, port)
                else:
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        self.received[key.data] += data
                    else:
                        self._selector.unregister(sock)
                        sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


@pytest.fixture
def tcp_services() -> Iterator[Callable[..., Tuple[str, List[int], FakeTcpServices]]]:
    """Start fake TCP services on consecutive ports of a fresh loopback address."""
    started: List[FakeTcpServices] = []

    def start(*greetings: Optional[bytes]) -> Tuple[str, List[int], FakeTcpServices]:
        address = own_address()
        listeners = tcp_listeners(address, len(greetings))
        services = FakeTcpServices(listeners, list(greetings))
        started.append(services)
        return address, [s.getsockname()[1] for s in listeners], services

    yield start
    for services in started:
        services.close()


def hello_line(name: str, version: str = protocol.VERSION, **fields: object) -> bytes:
    frame = protocol.hello(name, ["alice", "bob"])
    frame["version"] = version
    frame.update(fields)
    return protocol.encode(frame)


@pytest.fixture
def responders() -> Iterator[Callable[..., Responder]]:
    """Start responders, each serving on its own thread; closed and joined afterwards."""
    running: List[Tuple[Responder, threading.Thread]] = []

    def start(bind: str, port: int, describe: Callable[[], protocol.Frame]) -> Responder:
        responder = Responder(bind, port, describe)
        thread = threading.Thread(target=responder.serve, name="responder", daemon=True)
        thread.start()
        running.append((responder, thread))
        return responder

    yield start
    for responder, thread in running:
        responder.close()
        thread.join(timeout=5)
        assert not thread.is_alive(), "serve() did not return after close()"


def describe(name: str, port: int, users: int = 0, max_users: int = 50) -> Callable[[], dict]:
    return lambda: protocol.server_info(name, port, users, max_users)


def ask(address: Tuple[str, int], *datagrams: bytes, timeout: float = 2.0) -> bytes:
    """Send datagrams from one fresh socket and return the first answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address[0], 0))
        sock.settimeout(timeout)
        for datagram in datagrams:
            sock.sendto(datagram, address)
        return sock.recv(65535)


PROBE = protocol.encode(protocol.discover())


# ---------------------------------------------------------------------------
# ServerInfo


@pytest.mark.parametrize(
    ("version", "compatible"),
    [(protocol.VERSION, True), ("4.9.1", True), ("5.0.0", False), ("3.2.0", False), ("x", False)],
)
def test_server_info_is_compatible_exactly_when_major_matches(version: str, compatible: bool):
    assert ServerInfo("n", "127.0.0.1", 1, version).compatible is compatible


# ---------------------------------------------------------------------------
# Responder


def test_responder_answers_discover_with_its_server_frame_by_unicast(responders):
    address = own_address()
    responder = responders(address, 0, describe("alpha", 42070, users=3, max_users=9))
    answer = protocol.decode_line(ask(responder.address, PROBE).rstrip(b"\n"))
    assert answer == protocol.server_info("alpha", 42070, 3, 9)


def test_responder_describes_the_server_afresh_for_each_probe(responders):
    users = iter(range(10))
    responder = responders(own_address(), 0, lambda: protocol.server_info("s", 1, next(users), 50))
    firsts = [protocol.decode_line(ask(responder.address, PROBE).rstrip())["users"] for _ in "ab"]
    assert firsts == [0, 1]


def test_responder_ignores_garbage_and_other_frames_silently(responders):
    responder = responders(own_address(), 0, describe("alpha", 1))
    not_a_probe = [
        b"\xff\xfe not utf-8",
        b"not json",
        b"[1, 2]",
        b'{"type": "discover"}',  # no app, no version
        b'{"type": "discover", "app": "otherchat", "version": "4.0.0"}',
        protocol.encode(protocol.server_info("loop", 1, 0, 1)),  # answers never get answers
        b"",
    ]
    # Datagrams on loopback arrive in order: the first answer is the one to the real probe.
    answer = ask(responder.address, *not_a_probe, PROBE)
    assert protocol.decode_line(answer.rstrip())["server"] == "alpha"


def test_responder_answers_probes_of_other_major_versions(responders):
    """So that a newer client can list this server as incompatible instead of missing it."""
    responder = responders(own_address(), 0, describe("alpha", 1))
    probe = protocol.discover()
    probe["version"] = "5.1.0"
    assert protocol.decode_line(ask(responder.address, protocol.encode(probe)).rstrip())


def test_responder_survives_a_failing_describe(responders, caplog):
    calls = []

    def flaky() -> protocol.Frame:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return protocol.server_info("alpha", 1, 0, 1)

    responder = responders(own_address(), 0, flaky)
    answer = ask(responder.address, PROBE, PROBE)
    assert protocol.decode_line(answer.rstrip())["server"] == "alpha"
    assert len(calls) == 2
    assert "describe() failed" in caplog.text


def test_close_makes_serve_return_at_once_and_frees_the_socket():
    responder = Responder(own_address(), 0, describe("alpha", 1))
    thread = threading.Thread(target=responder.serve)
    thread.start()
    ask(responder.address, PROBE)  # serving for sure
    started = time.monotonic()
    responder.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 0.5
    responder.close()  # idempotent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(responder.address)  # no SO_REUSEADDR: binds only if the port was let go


def test_close_before_serve_closes_the_socket_and_serve_returns():
    responder = Responder(own_address(), 0, describe("alpha", 1))
    responder.close()
    responder.serve()  # returns at once
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(responder.address)


@linux_only
def test_several_responders_share_the_port_and_all_answer_a_broadcast(responders):
    port = free_udp_port("127.0.0.1")
    names = [unique("srv") for _ in range(3)]
    for offset, name in enumerate(names):
        # Each on its own address, as servers with different --bind; all on one UDP port.
        responders(own_address(), port, describe(name, port + offset))
    found = finder.discover_lan(timeout=1.0, port=port, targets=[LOOPBACK_BROADCAST])
    assert sorted(s.name for s in found) == sorted(names)
    assert sorted(s.port for s in found) == [port, port + 1, port + 2]


@linux_only
def test_several_responders_bound_to_one_address_all_answer_a_broadcast(responders):
    """Two servers of one host started with the same --bind (the common case)."""
    address = own_address()
    port = free_udp_port(address)
    names = [unique("a"), unique("b")]
    for offset, name in enumerate(names):
        responders(address, port, describe(name, port + offset))
    found = finder.discover_lan(timeout=1.0, port=port, targets=[LOOPBACK_BROADCAST])
    assert sorted(s.name for s in found) == sorted(names)


@linux_only
def test_interface_of_a_loopback_address_has_the_loopback_broadcast():
    assert lan.broadcast_of(own_address()) == LOOPBACK_BROADCAST


@linux_only
def test_broadcast_addresses_lists_ipv4_broadcasts_but_never_loopback():
    import ipaddress

    found = lan.broadcast_addresses()
    assert found
    assert LOOPBACK_BROADCAST not in found
    for address in found:
        ipaddress.IPv4Address(address)


def test_broadcast_addresses_falls_back_where_interfaces_cannot_be_read(monkeypatch):
    def unreadable() -> list:
        raise OSError("no ioctls here")

    monkeypatch.setattr(lan, "_interfaces", unreadable)
    assert lan.broadcast_addresses() == ["255.255.255.255"]


# ---------------------------------------------------------------------------
# discover_lan


class FakeResponder:
    """A UDP socket that answers the first probe with the given datagrams, as they are."""

    def __init__(self, address: str, answers: List[bytes]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(5)
        self.address = self.sock.getsockname()
        self._answers = answers
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self) -> None:
        try:
            _, sender = self.sock.recvfrom(65535)
        except OSError:
            return
        for answer in self._answers:
            self.sock.sendto(answer, sender)

    def close(self) -> None:
        self.thread.join(timeout=6)
        self.sock.close()


def test_discover_lan_takes_the_host_from_the_sender_and_dedupes_answers():
    address = own_address()
    frame = protocol.server_info("alpha", 4242, 1, 5)
    frame["host"] = "10.9.9.9"  # a field that claims another address must not be believed
    answer = protocol.encode(frame)
    other_port = protocol.encode(protocol.server_info("alpha", 4243, 1, 5))
    fake = FakeResponder(address, [answer, answer, other_port])
    try:
        found = finder.discover_lan(0.5, port=fake.address[1], targets=[address])
    finally:
        fake.close()
    assert found == [
        ServerInfo("alpha", address, 4242, protocol.VERSION, 1, 5),
        ServerInfo("alpha", address, 4243, protocol.VERSION, 1, 5),
    ]


def test_discover_lan_ignores_answers_that_are_not_lanchat_servers():
    address = own_address()
    bad_port = protocol.server_info("zero", 0, 1, 5)
    other_app = protocol.server_info("other", 1, 1, 5)
    other_app["app"] = "otherchat"
    answers = [b"junk", protocol.encode(bad_port), protocol.encode(other_app), PROBE]
    newer = protocol.server_info("newer", 7, 1, 5)
    newer["version"] = "5.0.0"
    fake = FakeResponder(address, [*answers, protocol.encode(newer)])
    try:
        found = finder.discover_lan(0.5, port=fake.address[1], targets=[address])
    finally:
        fake.close()
    assert found == [ServerInfo("newer", address, 7, "5.0.0", 1, 5)]
    assert not found[0].compatible


def test_discover_lan_with_no_answer_returns_nothing_after_the_timeout():
    address = own_address()
    port = free_udp_port(address)
    started = time.monotonic()
    assert finder.discover_lan(0.3, port=port, targets=[address]) == []
    assert 0.3 <= time.monotonic() - started < 1.0


def test_discover_lan_lists_compatible_servers_first():
    servers = [
        ServerInfo("b", "127.0.0.2", 1, "4.0.0"),
        ServerInfo("a", "127.0.0.3", 1, "5.0.0"),
        ServerInfo("A2", "127.0.0.1", 1, "4.1.0"),
    ]
    ordered = sorted(servers, key=finder._display_order)
    assert [s.name for s in ordered] == ["A2", "b", "a"]


# ---------------------------------------------------------------------------
# scan_host


def test_scan_finds_every_lanchat_server_of_one_host_by_its_hello(tcp_services):
    names = [unique("one"), unique("two")]
    address, ports, _ = tcp_services(hello_line(names[0]), None, hello_line(names[1]))
    found = finder.scan_host(address, ports[0], span=3, timeout=0.3)
    assert found == [
        ServerInfo(names[0], address, ports[0], protocol.VERSION, users=2),
        ServerInfo(names[1], address, ports[2], protocol.VERSION, users=2),
    ]


def test_scan_skips_services_that_greet_otherwise_without_waiting(tcp_services):
    address, ports, _ = tcp_services(
        b"SSH-2.0-OpenSSH_9.2\r\n",  # a banner: not JSON from its first byte
        b"220 mail ESMTP\r\n",
        b'{"type": "hello", "app": "otherchat", "version": "4.0.0"}\n',
        b"[1, 2, 3]\n",
    )
    started = time.monotonic()
    assert finder.scan_host(address, ports[0], span=3, timeout=5.0) == []
    assert time.monotonic() - started < 1.0  # each was judged on its first bytes


def test_scan_gives_a_silent_service_only_the_short_read_timeout(tcp_services):
    address, ports, _ = tcp_services(None)  # accepts, says nothing (say, an HTTP server)
    started = time.monotonic()
    assert finder.scan_host(address, ports[0], span=0, timeout=0.3) == []
    assert 0.3 <= time.monotonic() - started < 1.5


def test_scan_of_a_range_with_nothing_listening_is_quick():
    address = own_address()
    port = free_udp_port(address)
    started = time.monotonic()
    assert finder.scan_host(address, port, timeout=0.5) == []
    assert time.monotonic() - started < 0.5  # refusals come back at once


def test_scan_says_nothing_on_the_wire(tcp_services):
    address, ports, services = tcp_services(hello_line(unique("quiet")))
    assert len(finder.scan_host(address, ports[0], span=0, timeout=0.5)) == 1
    deadline = time.monotonic() + 5
    while ports[0] not in services.received and time.monotonic() < deadline:
        time.sleep(0.01)  # the fake records the connection once it has seen its end
    assert services.received.get(ports[0]) == b""


def test_scan_lists_other_major_versions_and_hides_a_password_servers_users(tcp_services):
    address, ports, _ = tcp_services(
        hello_line("newer", version="5.0.0", limits="whatever"),
        hello_line("locked", auth="password", online=[], nonce="00" * 16),
    )
    newer, locked = finder.scan_host(address, ports[0], span=1, timeout=0.5)
    assert (newer.version, newer.compatible) == ("5.0.0", False)
    assert (locked.name, locked.users, locked.compatible) == ("locked", None, True)


def test_scan_reads_a_hello_that_arrives_in_pieces(tcp_services):
    line = hello_line(unique("slowpoke"), online=[f"user{i}" for i in range(10000)])
    assert len(line) > 65536  # more than one recv
    address, ports, _ = tcp_services(line)
    (found,) = finder.scan_host(address, ports[0], span=0, timeout=1.0)
    assert found.users == 10000


def test_find_servers_prefers_the_lan_answers(responders, tcp_services):
    address, ports, _ = tcp_services(hello_line(unique("scanned")))
    name = unique("answered")
    responders(address, ports[0], describe(name, ports[0]))
    found = finder.find_servers(0.3, ports[0], targets=[address], fallback_host=address)
    assert [s.name for s in found] == [name]


def test_find_servers_falls_back_to_the_port_range_of_this_machine(tcp_services):
    name = unique("scanned")
    address, ports, _ = tcp_services(None, hello_line(name))
    found = finder.find_servers(0.2, ports[0], targets=[address], fallback_host=address)
    assert [(s.name, s.port) for s in found] == [(name, ports[1])]


def test_find_servers_finds_nothing_without_raising():
    address = own_address()
    port = free_udp_port(address)
    assert finder.find_servers(0.2, port, targets=[address], fallback_host=address) == []


# ---------------------------------------------------------------------------
# run(): `lanchat discover`


def discover_args(*argv: str):
    return build_parser().parse_args(["discover", *argv])


@linux_only
def test_discover_prints_one_line_per_server(responders, capsys):
    port = free_udp_port("127.0.0.1")
    name = unique("alpha")
    address = own_address()
    responders(address, port, describe(name, port + 1, users=3, max_users=50))
    args = discover_args("--host", LOOPBACK_BROADCAST, "--port", str(port), "--timeout", "0.5")
    assert finder.run(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].split() == [name, f"{address}:{port + 1}", "4.4.0", "3/50", "users", "compatible"]


def test_discover_json_prints_one_object_per_line(capsys):
    address = own_address()
    newer = protocol.server_info("newer", 7, 1, 5)
    newer["version"] = "5.0.0"
    fake = FakeResponder(
        address, [protocol.encode(protocol.server_info("alpha", 8, 2, 9)), protocol.encode(newer)]
    )
    try:
        args = discover_args("--host", address, "--port", str(fake.address[1]), "--json")
        args.timeout = 0.5
        assert finder.run(args) == 0
    finally:
        fake.close()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {
            "name": "alpha",
            "host": address,
            "port": 8,
            "version": protocol.VERSION,
            "users": 2,
            "max_users": 9,
            "compatible": True,
        },
        {
            "name": "newer",
            "host": address,
            "port": 7,
            "version": "5.0.0",
            "users": 1,
            "max_users": 5,
            "compatible": False,
        },
    ]


def test_discover_marks_incompatible_servers_and_defuses_names(capsys):
    address = own_address()
    newer = protocol.server_info("\x1b[31mevil\u202e", 7, 1, 5)
    newer["version"] = "5.0.0"
    fake = FakeResponder(address, [protocol.encode(newer)])
    try:
        args = discover_args("--host", address, "--port", str(fake.address[1]))
        args.timeout = 0.5
        assert finder.run(args) == 0
    finally:
        fake.close()
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert out.split() == ["[31mevil", f"{address}:7", "5.0.0", "1/5", "users", "incompatible"]


def test_discover_falls_back_to_the_port_range_of_the_host(tcp_services, capsys):
    """A server run with --no-discovery is still found by its hello."""
    name = unique("hidden")
    address, ports, _ = tcp_services(hello_line(name))
    args = discover_args("--host", address, "--port", str(ports[0]), "--timeout", "0.2")
    assert finder.run(args) == 0
    assert capsys.readouterr().out.split() == [
        name,
        f"{address}:{ports[0]}",
        protocol.VERSION,
        "2/?",
        "users",
        "compatible",
    ]


def test_discover_with_nothing_found_exits_1_with_one_line(capsys):
    address = own_address()
    port = free_udp_port(address)
    args = discover_args("--host", address, "--port", str(port), "--timeout", "0.2")
    assert finder.run(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"No lanchat server answered at {address}" in captured.err


def test_no_server_message_is_one_line_naming_the_way_out():
    message = finder.no_server_message(42069)
    assert "\n" not in message
    assert "42069-42099" in message and "--host" in message


def test_by_name_prefers_the_exact_spelling_then_ignores_case():
    servers = [ServerInfo("Lab", "h", 1, "4.0.0"), ServerInfo("lab", "h", 2, "4.0.0")]
    assert [s.port for s in finder.by_name(servers, "lab")] == [2]
    assert [s.port for s in finder.by_name(servers, "LAB")] == [1, 2]
    assert finder.by_name(servers, "kitchen") == []


@pytest.mark.pyz
@linux_only
def test_pyz_discover_lists_servers_and_exits_1_when_none(pyz, responders):
    port = free_udp_port("127.0.0.1")
    name = unique("pyz")
    responders(own_address(), port, describe(name, port, users=1, max_users=2))
    found = subprocess.run(
        pyz_command("discover", "--host", LOOPBACK_BROADCAST, "--port", str(port), "--json"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["name"] == name
    empty_address = own_address()
    port = free_udp_port(empty_address)
    none = subprocess.run(
        pyz_command("discover", "--host", empty_address, "--port", str(port), "--timeout", "0.2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (none.returncode, none.stdout) == (1, "")
    assert none.stderr.startswith("lanchat: No lanchat server answered")
