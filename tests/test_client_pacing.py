"""The client paces itself to the server's rate limit, and gives pending messages a moment
when the user leaves: every line sent arrives exactly once, in order.

The end-to-end tests run the built pyz client (through pipes, or in a real pty) against
the pyz server, with a raw watcher that logs in beside it and collects what arrives.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest
from conftest import free_port
from drivers import PtyClient, client_argv, client_env
from wire import RawClient, login, start_pyz_server

from lanchat import protocol
from lanchat.chat.actions import Exit, Send
from lanchat.chat.connection import Connected, Disconnected, Received
from lanchat.chat.model import ClientModel
from lanchat.chat.outbox import LEAVE_GRACE

Address = Tuple[str, int]
WAIT = 15.0  # seconds any one expected frame or screen may take
NOW = 1764000000.0
ADDRESS = ("127.0.0.1", 42069)


# --------------------------------------------------------------------------- the model


def paced_model(rate: Optional[float] = None, burst: Optional[int] = None) -> ClientModel:
    """A model logged in to a server that announced this rate and burst (or none)."""
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    hello = protocol.hello("lab", [], rate=rate, burst=burst)
    model.handle_event(Connected(hello, ADDRESS), NOW)
    assert model.handle_event(Received(protocol.welcome("bob", ["bob"], [])), NOW) == []
    return model


def says(actions: List) -> List[str]:
    return [a.frame["text"] for a in actions if isinstance(a, Send) and a.frame["type"] == "say"]


def echo(model: ClientModel, number: int, now: float = NOW) -> List:
    """The server relays the outbox's oldest message; return what the model does next."""
    head = model.outbox[0]
    frame = protocol.message(number, now, "bob", head.text, ref=head.ref)
    return model.handle_event(Received(frame), now)


def test_hello_limits_carry_rate_and_burst_only_when_given() -> None:
    assert "rate" not in protocol.hello("lab", [])["limits"]
    limits = protocol.hello("lab", [], rate=5.0, burst=30)["limits"]
    assert (limits["rate"], limits["burst"]) == (5.0, 30)
    assert limits["max_text"] == protocol.MAX_TEXT


def test_messages_go_one_at_a_time_each_after_the_answer_to_the_one_before() -> None:
    model = paced_model()
    sent = []
    for number in range(1, 4):
        sent += says(model.submit(f"line {number}", NOW))
    assert sent == ["line 1"]
    assert says(echo(model, 1)) == ["line 2"]
    error = protocol.error("no_such_user", ref=model.outbox[0].ref)
    assert says(model.handle_event(Received(error), NOW)) == ["line 3"]


def test_a_refused_message_goes_again_after_retry_after_before_any_later_one() -> None:
    model = paced_model()
    model.submit("first", NOW)
    model.submit("second", NOW)
    refused = protocol.error("rate_limited", ref=model.outbox[0].ref, retry_after=0.5)
    assert model.handle_event(Received(refused), NOW) == []
    assert model.wake_at == NOW + 0.5
    assert says(model.tick(NOW + 0.4)) == []
    assert says(model.tick(NOW + 0.5)) == ["first"]
    assert says(echo(model, 1, NOW + 0.5)) == ["second"]


def test_a_server_that_announces_its_pace_is_never_sent_more_than_it_allows() -> None:
    model = paced_model(rate=4.0, burst=3)
    sent = says(model.submit("a", NOW))
    sent += says(model.submit("b", NOW))
    sent += says(model.submit("c", NOW))
    sent += says(echo(model, 1))
    assert sent == ["a", "b"], "the burst less one spare token"
    assert says(echo(model, 2)) == [], "the bucket is empty"
    # the bucket rounds a wait up to the next whole millisecond (never 0, always enough)
    assert model.wake_at == pytest.approx(NOW + 0.25, abs=0.0011)
    assert model.seconds_to_wait(NOW, 1.0) == pytest.approx(0.25, abs=0.0011)
    assert says(model.tick(model.wake_at)) == ["c"]


def test_with_a_pace_a_refused_message_still_goes_before_every_later_one() -> None:
    model = paced_model(rate=100.0, burst=30)
    model.submit("a", NOW)
    model.submit("b", NOW)
    refused = protocol.error("rate_limited", ref=model.outbox[0].ref, retry_after=0.5)
    assert model.handle_event(Received(refused), NOW) == []
    assert says(model.tick(NOW + 0.4)) == [], "not before retry_after, and not b"
    assert says(model.tick(NOW + 0.5)) == ["a"]
    assert says(echo(model, 1, NOW + 0.5)) == ["b"]


def test_a_new_login_starts_with_a_full_bucket_as_the_server_does() -> None:
    model = paced_model(rate=1.0, burst=2)
    model.submit("a", NOW)
    echo(model, 1)
    model.submit("b", NOW)
    assert model.wake_at is not None
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    model.handle_event(Connected(protocol.hello("lab", [], rate=1.0, burst=2), ADDRESS), NOW)
    actions = model.handle_event(Received(protocol.welcome("bob", ["bob"], [])), NOW)
    assert says(actions) == ["b"]


def test_who_waits_for_a_token_too() -> None:
    model = paced_model(rate=2.0, burst=2)
    model.submit("a", NOW)
    assert model.submit("/who", NOW) == []
    assert model.awaiting_answers
    assert model.wake_at == pytest.approx(NOW + 0.5, abs=0.0011)  # rounded up, see above
    assert model.tick(model.wake_at) == [Send(protocol.who())]


def test_leaving_waits_for_pending_messages_then_quits_with_0() -> None:
    model = paced_model()
    model.submit("last words", NOW)
    assert model.handle_key("\x03", NOW) == []
    assert model.leaving
    assert "pending" in model.entries[-1].text
    assert model.submit("more", NOW) == [], "nothing new goes out once leaving"
    assert echo(model, 1) == [Send(protocol.quit()), Exit(0)]


def test_leaving_gives_up_after_the_grace_with_1() -> None:
    model = paced_model()
    model.submit("stuck", NOW)
    model.handle_key("\x03", NOW)
    assert model.wake_at == NOW + LEAVE_GRACE
    assert model.tick(NOW + LEAVE_GRACE - 0.1) == []
    assert model.tick(NOW + LEAVE_GRACE) == [Send(protocol.quit()), Exit(1)]
    assert len(model.outbox) == 1


def test_leaving_at_the_name_prompt_waits_for_nothing() -> None:
    model = paced_model()
    model.submit("typed before the name was refused", NOW)
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    model.handle_event(Connected(protocol.hello("lab", []), ADDRESS), NOW)
    model.handle_event(Received(protocol.error("name_taken")), NOW)
    assert model.handle_key("\x03", NOW) == [Send(protocol.quit()), Exit(1)]


def test_ctrl_c_twice_leaves_at_once() -> None:
    model = paced_model()
    model.submit("stuck", NOW)
    model.handle_key("\x03", NOW)
    assert model.handle_key("\x03", NOW + 0.1) == [Send(protocol.quit()), Exit(1)]


def test_the_goodbye_waits_for_a_token_so_the_server_does_not_refuse_it() -> None:
    model = paced_model(rate=2.0, burst=2)
    model.submit("a", NOW)
    assert model.handle_key("\x03", NOW) == []
    assert echo(model, 1) == [], "the one token went to the message"
    assert model.wake_at == pytest.approx(NOW + 0.5, abs=0.0011)  # rounded up to a ms
    assert model.tick(model.wake_at) == [Send(protocol.quit()), Exit(0)]


# --------------------------------------------------------------------------- helpers


class Relay:
    """A TCP relay between clients and a server that keeps every frame the server sent
    and can rewrite its hello: as a lanchat 4.0 server, announcing no pace."""

    def __init__(self, upstream: Address, strip_pace: bool = False) -> None:
        self.upstream = upstream
        self.strip_pace = strip_pace
        self.server_frames: List[dict] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.address: Address = self._listener.getsockname()[:2]
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._start(self._accept)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name="relay", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=WAIT)
            server.settimeout(None)
            client.settimeout(None)
            self._sockets += [client, server]
            self._start(self._pump, client, server, False)
            self._start(self._pump, server, client, True)

    def _pump(self, source: socket.socket, target: socket.socket, from_server: bool) -> None:
        pending, first = b"", True
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_server:
                    target.sendall(data)
                    continue
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    frame = json.loads(line)
                    with self._lock:
                        self.server_frames.append(frame)
                    if first and self.strip_pace:
                        for field in ("rate", "burst"):
                            frame["limits"].pop(field, None)
                        line = json.dumps(frame).encode()
                    first = False
                    target.sendall(line + b"\n")
        except OSError:  # one side went away: end both
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def refusals(self) -> int:
        """How many rate_limited answers the server gave so far."""
        with self._lock:
            return sum(f.get("code") == "rate_limited" for f in self.server_frames)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(WAIT)
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def start_server(pyz: Path) -> Iterator[Callable[..., Address]]:
    """Start pyz servers on free ports of 127.0.0.1 with these extra options."""
    procs: List[subprocess.Popen[str]] = []

    def start(*options: str) -> Address:
        proc, address = start_pyz_server(
            str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
            "--log-level", "warning", *options,
        )  # fmt: skip
        procs.append(proc)
        return address

    yield start
    for proc in procs:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def relays() -> Iterator[Callable[..., Relay]]:
    started: List[Relay] = []

    def start(upstream: Address, strip_pace: bool = False) -> Relay:
        relay = Relay(upstream, strip_pace)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.close()


class Feeder:
    """`lanchat.pyz client` in plain mode, its stdin a pipe and its output in a file (so a
    long run never blocks on a full stdout pipe)."""

    def __init__(self, argv: List[str]) -> None:
        self._out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=self._out, stderr=subprocess.STDOUT
        )

    def write(self, lines: List[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode("utf-8"))
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def finish(self, timeout: float = WAIT) -> Tuple[int, str]:
        """Wait for the exit; return the code and everything it printed."""
        code = self.proc.wait(timeout)
        self._out.seek(0)
        return code, self._out.read().decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._out.close()


@pytest.fixture
def feeders(pyz: Path) -> Iterator[Callable[..., Feeder]]:
    started: List[Feeder] = []

    def start(address: Address, name: str = "feeder") -> Feeder:
        feeder = Feeder(client_argv(pyz, address, name, "--plain"))
        started.append(feeder)
        return feeder

    yield start
    for feeder in started:
        feeder.kill()


@pytest.fixture
def pty_clients(pyz: Path) -> Iterator[Callable[..., PtyClient]]:
    started: List[PtyClient] = []

    def start(address: Address, name: str) -> PtyClient:
        client = PtyClient(client_argv(pyz, address, name), env=client_env())
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def collect(watcher: RawClient, sender: str, count: int) -> List[str]:
    """The texts of the next `count` messages from `sender` the watcher receives."""
    texts: List[str] = []
    while len(texts) < count:
        frame = watcher.recv(WAIT)
        if frame["type"] == "ping":
            watcher.send(protocol.pong(frame.get("token")))
        elif frame["type"] == "message" and frame["from"] == sender:
            texts.append(frame["text"])
    return texts


def assert_left_without_more(watcher: RawClient, sender: str, reason: str = "quit") -> None:
    """The sender left (with a quit), and nothing more of theirs came first (no doubles)."""
    frames = watcher.recv_until("leave", WAIT)
    assert [f for f in frames if f["type"] == "message"] == []
    assert frames[-1]["name"] == sender
    if reason:
        assert frames[-1]["reason"] == reason


def pipe_through(feeder: Feeder, watcher: RawClient, count: int) -> None:
    """Pipe `count` numbered lines in; all must reach the watcher in order, exit 0."""
    feeder.write(numbered(count))
    feeder.close_stdin()
    assert collect(watcher, "feeder", count) == numbered(count)
    code, output = feeder.finish()
    assert code == 0, output
    assert "not sent" not in output


def numbered(count: int) -> List[str]:
    return [f"msg {number}" for number in range(1, count + 1)]


def paste(client: PtyClient, lines: List[str]) -> None:
    """Paste lines into the window at once, as a terminal does."""
    client.type("".join(f"{line}\r" for line in lines))


# --------------------------------------------------------------------------- pipes


@pytest.mark.pyz
@pytest.mark.parametrize(
    ("count", "options"),
    [(250, ()), (2000, ("--rate", "200"))],
    ids=["250-lines-default-server", "2000-lines-rate-200"],
)
def test_a_piped_file_arrives_complete_and_in_order_and_the_sender_exits_0(
    start_server: Callable[..., Address],
    feeders: Callable[..., Feeder],
    count: int,
    options: Tuple[str, ...],
) -> None:
    address = start_server(*options)
    watcher, _ = login(address, "watcher")
    pipe_through(feeders(address), watcher, count)
    assert_left_without_more(watcher, "feeder")


@pytest.mark.pyz
def test_a_server_that_announces_no_pace_gets_every_line_in_order_by_retry_after(
    start_server: Callable[..., Address],
    relays: Callable[..., Relay],
    feeders: Callable[..., Feeder],
) -> None:
    server = start_server("--rate", "10", "--burst", "20")
    relay = relays(server, strip_pace=True)  # a 4.0 server: it only answers rate_limited
    watcher, _ = login(server, "watcher")
    pipe_through(feeders(relay.address), watcher, 150)
    assert relay.refusals() > 0, "the server did refuse; the client waited and resent"
    # A server that does not say its pace may refuse the goodbye too (its bucket is
    # empty after the last line): the client then just closes, seen as `disconnect`.
    assert_left_without_more(watcher, "feeder", reason="")


@pytest.mark.pyz
def test_the_pyz_server_announces_its_rate_and_burst_in_hello(
    start_server: Callable[..., Address],
) -> None:
    address = start_server("--rate", "7.5", "--burst", "40")
    limits = RawClient(address).expect("hello")["limits"]
    assert (limits["rate"], limits["burst"]) == (7.5, 40)


# --------------------------------------------------------------------------- the window


@pytest.mark.pyz
def test_a_long_paste_in_the_window_is_paced_so_the_server_refuses_none(
    start_server: Callable[..., Address],
    relays: Callable[..., Relay],
    pty_clients: Callable[..., PtyClient],
) -> None:
    server = start_server("--rate", "2", "--burst", "20")
    relay = relays(server)
    watcher, _ = login(server, "watcher")
    client = pty_clients(relay.address, "paster")
    client.wait_for("you are paster")
    paste(client, numbered(24))
    assert collect(watcher, "paster", 24) == numbered(24)
    # 4 lines past the burst: the client waited for its tokens instead of being refused
    # (at 2 frames/s a frame would have to take 0.5 s to reach the server to be refused).
    assert relay.refusals() == 0


# --------------------------------------------------------------------------- leaving


@pytest.mark.pyz
def test_ctrl_c_in_the_window_gives_pending_messages_a_moment(
    start_server: Callable[..., Address], pty_clients: Callable[..., PtyClient]
) -> None:
    address = start_server("--rate", "2", "--burst", "20")
    watcher, _ = login(address, "watcher")
    client = pty_clients(address, "leaver")
    client.wait_for("you are leaver")
    paste(client, numbered(21))
    client.wait_for("msg 21")  # every line read (Ctrl-C throws away unread input)
    first = collect(watcher, "leaver", 19)  # the burst; 2 lines wait for the pace
    client.type(b"\x03")
    assert first + collect(watcher, "leaver", 2) == numbered(21)
    assert client.wait_exit() == 0
    assert "not sent" not in bytes(client.output).decode("utf-8", "replace")
    assert_left_without_more(watcher, "leaver")


@pytest.mark.pyz
def test_ctrl_c_in_the_window_counts_what_could_not_go_and_exits_1(
    start_server: Callable[..., Address], pty_clients: Callable[..., PtyClient]
) -> None:
    address = start_server("--rate", "0.25", "--burst", "20")  # a token every 4 s
    watcher, _ = login(address, "watcher")
    client = pty_clients(address, "leaver")
    client.wait_for("you are leaver")
    paste(client, numbered(24))
    client.wait_for("msg 24")
    delivered = collect(watcher, "leaver", 19)
    client.type(b"\x03")
    assert client.wait_exit(WAIT) == 1
    output = bytes(client.output).decode("utf-8", "replace")
    note = re.search(r"(\d+) message\(s\) were not sent", output)
    assert note is not None, output
    frames = watcher.recv_until("leave", WAIT)
    delivered += [f["text"] for f in frames if f["type"] == "message"]
    assert delivered == numbered(len(delivered))
    assert len(delivered) + int(note.group(1)) == 24


@pytest.mark.pyz
def test_ctrl_c_in_plain_mode_gives_pending_messages_a_moment(
    start_server: Callable[..., Address], feeders: Callable[..., Feeder]
) -> None:
    address = start_server("--rate", "2", "--burst", "20")
    watcher, _ = login(address, "watcher")
    feeder = feeders(address)
    feeder.write(numbered(21))  # stdin stays open: only Ctrl-C ends it
    first = collect(watcher, "feeder", 19)
    feeder.proc.send_signal(signal.SIGINT)
    assert first + collect(watcher, "feeder", 2) == numbered(21)
    code, output = feeder.finish()
    assert code == 0, output
    assert_left_without_more(watcher, "feeder")


@pytest.mark.pyz
def test_ctrl_c_in_plain_mode_counts_what_could_not_go_and_exits_1(
    start_server: Callable[..., Address], feeders: Callable[..., Feeder]
) -> None:
    address = start_server("--rate", "0.25", "--burst", "20")
    watcher, _ = login(address, "watcher")
    feeder = feeders(address)
    feeder.write(numbered(24))
    delivered = collect(watcher, "feeder", 19)
    feeder.proc.send_signal(signal.SIGINT)
    code, output = feeder.finish()
    assert code == 1, output
    note = re.search(r"!! (\d+) message\(s\) not sent", output)
    assert note is not None, output
    frames = watcher.recv_until("leave", WAIT)
    delivered += [f["text"] for f in frames if f["type"] == "message"]
    assert len(delivered) + int(note.group(1)) == 24
