"""Real processes, real crashes: nothing is lost, nothing is shown twice.

The built pyz server with a history file, several plain-mode pyz clients typing steadily
through stdin pipes; the server is killed with SIGKILL in the middle of it, the clients
keep typing through the outage, the server comes back on the same port and file. Every
wait polls for a condition with a deadline; every process is killed in a `finally`.
Run with `-s` to see the counts.
"""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Set, Tuple

import pytest
from conftest import free_port
from drivers import PlainClient, Proxy, stop_server, wait_until
from wire import RawClient, login, start_pyz_server

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
CLIENTS = 4
INTERVAL = 0.02  # seconds between two lines of one client
STEADY_LINES = 40  # echoes each client sees before the crash
IN_FLIGHT_LINES = 5  # lines each client sends to the frozen server just before the kill
OUTAGE_LINES = 20  # lines each client types while the server is down
AFTER_LINES = 20  # lines each client types after it is back online


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
