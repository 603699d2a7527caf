"""Real processes, real crashes: nothing is lost, nothing is shown twice.

The built pyz server with a history file, several plain-mode pyz clients typing steadily
through stdin pipes; the server is killed with SIGKILL in the middle of it, the clients
keep typing through the outage, the server comes back on the same port and file. Every
wait polls for a condition with a deadline; every process is killed in a `finally`.
Run with `-s` to see the counts.
"""

from __future__ import annotations

import collections
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from conftest import free_port
from wire import RawClient, login, start_pyz_server

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
CLIENTS = 4
INTERVAL = 0.02  # seconds between two lines of one client
STEADY_LINES = 40  # echoes each client sees before the crash
IN_FLIGHT_LINES = 5  # lines each client sends to the frozen server just before the kill
OUTAGE_LINES = 20  # lines each client types while the server is down
AFTER_LINES = 20  # lines each client types after it is back online
WAIT = 30.0  # the longest any one condition may take
# `HH:MM name: text`, the plain-mode format of a room message (client_plain.format_entry)
MESSAGE_LINE = re.compile(r"^\d\d:\d\d (\S+): (.*)$")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll until the condition holds; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class PlainClient:
    """`lanchat.pyz client --plain` with stdin and stdout on pipes, read by a thread."""

    def __init__(
        self,
        pyz: Path,
        address: Address,
        name: str,
        *extra: str,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.name = name
        host, port = address
        argv = [sys.executable, str(pyz), "client", "--plain", "--host", host,
                "--port", str(port), "--name", name, *extra]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._lock = threading.Lock()
        self._lines: List[str] = []
        self._stderr = bytearray()
        self.typed: List[str] = []
        self.type_error: Optional[BaseException] = None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: object, is_stdout: bool) -> None:
        fd = pipe.fileno()  # type: ignore[attr-defined]
        pending = b""
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            if not is_stdout:
                with self._lock:
                    self._stderr += data
                continue
            pending += data
            *complete, pending = pending.split(b"\n")
            with self._lock:
                self._lines += [line.decode("utf-8", "replace") for line in complete]

    @property
    def lines(self) -> List[str]:
        """Every complete line printed so far."""
        with self._lock:
            return list(self._lines)

    @property
    def stderr(self) -> str:
        with self._lock:
            return self._stderr.decode("utf-8", "replace")

    def has_line(self, predicate: Callable[[str], bool], after: int = 0) -> bool:
        return any(predicate(line) for line in self.lines[after:])

    def messages(self, lines: Optional[List[str]] = None) -> List[Tuple[str, str]]:
        """(sender, text) of every room message printed, in order, repeats included."""
        found = []
        for line in self.lines if lines is None else lines:
            match = MESSAGE_LINE.match(line)
            if match:
                found.append((match.group(1), match.group(2)))
        return found

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def typist(self, stop: threading.Event, interval: float) -> threading.Thread:
        """A thread that types numbered lines every `interval` seconds until `stop`."""

        def run() -> None:
            next_at = time.monotonic()
            try:
                while not stop.is_set():
                    text = f"{self.name} says {len(self.typed) + 1}"
                    self.type(text)
                    with self._lock:
                        self.typed.append(text)
                    next_at += interval
                    stop.wait(max(0.0, next_at - time.monotonic()))
            except OSError as exc:  # the client died: the test reports it
                self.type_error = exc

        thread = threading.Thread(target=run, name=f"typist-{self.name}", daemon=True)
        thread.start()
        return thread

    def typed_count(self) -> int:
        with self._lock:
            return len(self.typed)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


class Servers:
    """The pyz server on one history file, started again on the same port after a crash."""

    def __init__(self, pyz: Path, db: Path) -> None:
        self.pyz = pyz
        self.db = db
        self.proc: Optional[subprocess.Popen[str]] = None
        self.address: Optional[Address] = None

    def start(self) -> Address:
        """Start it (on the port it had before, if any); skip if another took that port."""
        port = self.address[1] if self.address else free_port()
        args = ["--bind", "127.0.0.1", "--port", str(port), "--no-discovery",
                "--history-db", str(self.db), "--rate", "50", "--burst", "100",
                "--log-level", "warning"]  # fmt: skip
        self.proc, address = start_pyz_server(str(self.pyz), *args)
        if self.address is not None and address != self.address:
            pytest.skip(f"port {port} was taken while the server was down")
        self.address = address
        return address

    def send_signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no shutdown frame, no flush, no goodbye."""
        self.stop(signal.SIGKILL)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """End the server with this signal and wait for it."""
        if self.proc is None:
            return
        stop_server(self.proc, signum)
        self.proc = None


def stop_server(proc: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    """Signal a server process and wait for it (SIGKILL if it takes too long)."""
    if proc.poll() is None:
        proc.send_signal(signum)
        if signum == signal.SIGTERM:
            proc.send_signal(signal.SIGCONT)  # in case it was frozen
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def servers(pyz: Path, tmp_path: Path) -> Iterator[Servers]:
    """A `Servers` on a fresh history file; whatever runs at the end is killed."""
    running = Servers(pyz, tmp_path / "h.sqlite3")
    try:
        yield running
    finally:
        running.kill()


def stored_messages(db: Path) -> List[Tuple[str, str]]:
    """(sender, text) of every room message in a history file, by id."""
    with sqlite3.connect(str(db)) as conn:
        rows = conn.execute("SELECT sender, text FROM messages ORDER BY id").fetchall()
    return [(str(sender), str(text)) for sender, text in rows]


def is_disconnect(line: str) -> bool:
    """The `-- <why>; reconnecting` line a plain client prints when its link dies."""
    return line[6:8] == "--" and line.endswith("; reconnecting")


def logged_in(client: PlainClient) -> bool:
    return client.has_line(lambda line: f"-- you are {client.name} on" in line)


def back_online(client: PlainClient) -> bool:
    return client.has_line(lambda line: f"-- back online as {client.name}" in line)


def wait_for_typing(clients: List[PlainClient], lines: int, when: str) -> None:
    """Wait until every client typed `lines` more lines than it has now."""
    targets = [c.typed_count() + lines for c in clients]
    for client, target in zip(clients, targets):
        wait_until(lambda c=client, t=target: c.typed_count() >= t, f"{client.name} {when}")


def raw_login(address: Address, name: str, **extra: object) -> Tuple[RawClient, dict]:
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.0.0", **extra})
    return client, client.expect("welcome")


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_mid_traffic_loses_nothing_and_shows_nothing_twice(
    pyz: Path, servers: Servers
) -> None:
    started = time.monotonic()
    address = servers.start()
    auditor, first = raw_login(address, "auditor")  # learns the history_id, then goes
    auditor.send({"type": "quit"})
    auditor.expect_closed()
    clients: List[PlainClient] = []
    stop_typing = threading.Event()
    try:
        clients = [PlainClient(pyz, address, f"u{n}") for n in range(1, CLIENTS + 1)]
        for client in clients:
            wait_until(lambda c=client: logged_in(c), f"{client.name} to log in")

        # Steady traffic, then the crash in the middle of it.
        typists = [c.typist(stop_typing, INTERVAL) for c in clients]
        for client in clients:
            last = (client.name, f"{client.name} says {STEADY_LINES}")
            wait_until(lambda c=client, m=last: m in c.messages(), f"{client.name}'s echoes")
        # Frozen first, so that lines are surely in flight (sent, never echoed) at the kill.
        servers.send_signal(signal.SIGSTOP)
        wait_for_typing(clients, IN_FLIGHT_LINES, "to type to the frozen server")
        servers.kill()
        typed_at_crash = [c.typed_count() for c in clients]

        # The clients notice, and keep typing through the outage.
        for client in clients:
            wait_until(lambda c=client: c.has_line(is_disconnect), f"{client.name} to notice")
        wait_for_typing(clients, OUTAGE_LINES, "to type during the outage")
        servers.start()
        typed_at_restart = [c.typed_count() for c in clients]
        # The history after the restart, all of it: every message after id 0.
        _, audit = raw_login(address, "auditor", last_id=0, history_id=first["history_id"])
        assert audit["history_id"] == first["history_id"], "the same history file"
        assert not audit.get("truncated")
        after_restart = {(m["from"], m["text"]) for m in audit["history"]}

        # They come back by themselves; a little more typing, then everything must arrive.
        for client in clients:
            wait_until(lambda c=client: back_online(c), f"{client.name} to reconnect by itself")
        wait_for_typing(clients, AFTER_LINES, "to type after the restart")
        stop_typing.set()
        for typist in typists:
            typist.join(10)
        for client in clients:
            assert client.type_error is None, f"{client.name} died: {client.stderr}"
        everything = {(c.name, text) for c in clients for text in c.typed}

        def missing(client: PlainClient) -> Set[Tuple[str, str]]:
            return everything - set(client.messages())

        for client in clients:
            try:
                wait_until(lambda c=client: not missing(c), f"{client.name} to see every line")
            except AssertionError:
                gaps = sorted(missing(client))
                raise AssertionError(f"{client.name} never saw {len(gaps)}: {gaps[:10]}") from None
        for client in clients:
            client.close_stdin()
        codes = [client.wait() for client in clients]
        servers.stop()
        stored = stored_messages(servers.db)
    finally:
        stop_typing.set()
        for client in clients:
            client.kill()

    # Acknowledged before the crash: own lines a client printed before it saw the link die.
    acked: Set[Tuple[str, str]] = set()
    for client in clients:
        lines = client.lines
        cut = next(i for i, line in enumerate(lines) if is_disconnect(line))
        acked |= {m for m in client.messages(lines[:cut]) if m[0] == client.name}
    in_history = collections.Counter(stored)
    shown_twice = {
        client.name: [m for m, n in collections.Counter(client.messages()).items() if n > 1]
        for client in clients
    }
    sent = sum(len(c.typed) for c in clients)
    during_outage = sum(r - k for r, k in zip(typed_at_restart, typed_at_crash))
    in_flight = sum(typed_at_crash) - len(acked)
    summary = (
        f"crash test: {CLIENTS} clients sent {sent} lines ({sum(typed_at_crash)} before the "
        f"crash, {during_outage} during the outage); {len(acked)} acknowledged before the "
        f"crash ({in_flight} in flight), {len(acked & after_restart)} of them found after the "
        f"restart; {len(stored)} messages stored for {len(everything)} typed, "
        f"{sum(n - 1 for n in in_history.values())} stored twice; "
        f"{sum(len(v) for v in shown_twice.values())} shown twice; "
        f"{time.monotonic() - started:.1f} s"
    )
    print("\n" + summary)

    assert codes == [0] * CLIENTS, (codes, [c.stderr for c in clients])
    assert len(acked) >= CLIENTS * STEADY_LINES, summary
    assert in_flight >= CLIENTS * IN_FLIGHT_LINES, summary
    assert acked <= after_restart, f"acknowledged, then lost: {sorted(acked - after_restart)}"
    assert set(in_history) == everything, summary
    assert all(n == 1 for n in in_history.values()), f"stored twice: {summary}"
    assert not any(shown_twice.values()), shown_twice


# --------------------------------------------------------------------------- silent drops


@dataclass
class ProxiedLink:
    """One client connection through the proxy and its upstream to the server."""

    client: socket.socket
    server: socket.socket
    muted: bool = False  # what the server sends is lost
    cut: bool = False  # the client side was closed; the server side was left open
    server_closed: bool = False  # the server ended its side


class Proxy:
    """A TCP relay on 127.0.0.1 in front of the server, to fake a network that fails.

    `mute()` drops what the server sends on the links open now (the echoes get lost);
    `cut()` closes their client side only, so the client sees its link die while the
    server, whose side stays open, notices nothing: a Wi-Fi drop, as the server sees it.
    """

    def __init__(self, upstream: Address) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: Address = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._links: List[ProxiedLink] = []
        self._closed = threading.Event()
        self.from_clients = bytearray()  # every byte a client sent through the proxy
        self._threads = [threading.Thread(target=self._accept, name="proxy", daemon=True)]
        self._threads[0].start()

    @property
    def links(self) -> int:
        """How many client connections were relayed so far."""
        with self._lock:
            return len(self._links)

    def server_closed(self, index: int) -> bool:
        """True once the server ended its side of the index-th link."""
        with self._lock:
            return self._links[index].server_closed

    def _accept(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:  # the server is down: so is the link
                client.close()
                continue
            link = ProxiedLink(client, server)
            with self._lock:
                self._links.append(link)
            for downstream in (False, True):
                thread = threading.Thread(target=self._pump, args=(link, downstream), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, link: ProxiedLink, down: bool) -> None:
        """Copy one direction of a link until its source ends."""
        source, target = (link.server, link.client) if down else (link.client, link.server)
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready:
                    continue
                data = source.recv(65536)
            except (OSError, ValueError):  # reset, or closed under us
                data = b""
            if not data:
                if down:
                    link.server_closed = True
                if not link.cut:
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return
            if not down:
                with self._lock:
                    self.from_clients += data
            if (down and link.muted) or link.cut:
                continue  # lost on the way
            try:
                target.sendall(data)
            except OSError:
                pass  # the other pump sees the end too

    def mute(self) -> None:
        """From now on, what the server sends on the open links is lost."""
        with self._lock:
            for link in self._links:
                link.muted = True

    def cut(self) -> None:
        """Close the client side of every open link; the server side stays open."""
        with self._lock:
            links = [link for link in self._links if not link.cut]
        for link in links:
            link.cut = True
            try:
                link.client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        with self._lock:
            for link in self._links:
                link.client.close()
                link.server.close()


def sync(watcher: RawClient) -> List[dict]:
    """Every frame the watcher gets before the answer to a ping sent now (pings left out).

    The server answers in order, so whatever it queued for the watcher before is in there.
    """
    watcher.send({"type": "ping", "token": "sync"})
    frames = watcher.recv_until("pong")
    return [f for f in frames if f["type"] not in ("ping", "pong")]


def until_message(watcher: RawClient, text: str) -> List[dict]:
    """Frames up to and including the message with this text (pings left out)."""
    frames = []
    while True:
        frame = watcher.recv()
        if frame["type"] != "ping":
            frames.append(frame)
        if frame["type"] == "message" and frame["text"] == text:
            return frames


def type_with_echoes_lost(client: PlainClient, proxy: Proxy, watcher: RawClient, text: str) -> None:
    """Once the client is in, mute the proxy and type three lines: "<text> 1" to "<text> 3".

    The watcher sees the first relayed (and so stored) once; the client never sees its
    echo, so it holds the other two back (it sends a message only once the one before was
    answered, to keep them in order): they go after the link is back.
    """
    watcher.expect("join", name=client.name)
    wait_until(lambda: logged_in(client), f"{client.name} to log in")
    proxy.mute()
    for n in range(1, 4):
        client.type(f"{text} {n}")
    watcher.expect("message", text=f"{text} 1")


def test_a_dropped_link_the_server_did_not_notice_gets_its_name_back_without_a_flicker(
    pyz: Path, servers: Servers
) -> None:
    address = servers.start()
    proxy = Proxy(address)
    client: Optional[PlainClient] = None
    try:
        watcher, _ = login(address, "watcher")
        client = PlainClient(pyz, proxy.address, "roamer")
        # The network starts losing what the server sends: the echoes never come back.
        type_with_echoes_lost(client, proxy, watcher, "unechoed")
        # The link dies on the client's side only: the server still thinks roamer is there.
        proxy.cut()
        wait_until(lambda: back_online(client), "roamer to take its name back")
        assert proxy.links == 2
        client.type("after the drop")  # goes after the resends, on the same link
        said = until_message(watcher, "after the drop")
        wait_until(lambda: proxy.server_closed(0), "the server to close the stale link")
        said += sync(watcher)
        assert [(f["type"], f.get("text")) for f in said] == [
            ("message", "unechoed 2"),
            ("message", "unechoed 3"),
            ("message", "after the drop"),
        ], "no leave, no join, no message relayed twice, the held ones in order"
        wait_until(lambda: ("roamer", "after the drop") in client.messages(), "roamer's echo")
        client.close_stdin()
        assert client.wait() == 0, client.stderr
        texts = [text for sender, text in client.messages() if sender == "roamer"]
        assert texts == ["unechoed 1", "unechoed 2", "unechoed 3", "after the drop"]
    finally:
        if client is not None:
            client.kill()
        proxy.close()


def test_echoes_lost_in_a_crash_are_not_relayed_again_after_the_restart(
    pyz: Path, servers: Servers
) -> None:
    address = servers.start()
    proxy = Proxy(address)
    client: Optional[PlainClient] = None
    try:
        watcher, _ = login(address, "watcher")
        client = PlainClient(pyz, proxy.address, "unlucky")
        type_with_echoes_lost(client, proxy, watcher, "stored, echo lost")
        servers.kill()
        wait_until(lambda: client.has_line(is_disconnect), "unlucky to notice")
        servers.start()
        wait_until(lambda: back_online(client), "unlucky to come back")
        client.type("after the restart")
        wait_until(lambda: ("unlucky", "after the restart") in client.messages(), "the echo")
        client.close_stdin()
        assert client.wait() == 0, client.stderr
        texts = [text for sender, text in client.messages() if sender == "unlucky"]
        assert texts == [f"stored, echo lost {n}" for n in range(1, 4)] + ["after the restart"]
        servers.stop()
        assert [t for s, t in stored_messages(servers.db) if s == "unlucky"] == texts, (
            "the resent lines were not stored again"
        )
    finally:
        if client is not None:
            client.kill()
        proxy.close()
