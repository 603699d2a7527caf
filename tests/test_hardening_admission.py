"""Admission and lifetime hardening: one host cannot fill the server, connection threads
end after a rush, and SIGHUP stops the server as cleanly as SIGTERM.

Per-address tests bind their client sockets to other loopback addresses (127.0.0.2, ...):
on Linux the whole of 127.0.0.0/8 is local, so each address stands for another machine.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
from conftest import MakeServer, free_port
from wire import RawClient, login, start_pyz_server

from lanchat.core.admission import AddressShares, address_key
from lanchat.core.config import ServerConfig
from lanchat.server import ChatServer

WAIT = 30.0  # seconds: generous bounds for a loaded 2-core machine, never hit when healthy
Address = Tuple[str, int]

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


@contextlib.contextmanager
def pyz_server(pyz: Path, *options: str) -> Iterator[Tuple[subprocess.Popen[str], Address]]:
    """`lanchat.pyz server` on a free port of 127.0.0.1 with these options; killed after."""
    proc, address = start_pyz_server(
        str(pyz),
        *("--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery", "--no-history"),
        *options,
    )
    try:
        yield proc, address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def assert_refused(client: RawClient, code: str) -> None:
    """The server greets, refuses with this error code and closes."""
    frames = client.expect_closed()
    assert [f["type"] for f in frames] == ["hello", "error"], frames
    assert frames[-1]["code"] == code, frames


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition()` until it is true; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        time.sleep(0.02)


# -- item 7: a per-address share -------------------------------------------------------------


def test_one_address_cannot_fill_a_default_server(pyz: Path) -> None:
    """50 idle sockets from one address: 10 get in, 40 get too_many_connections, and the
    others still get in (loopback counts like any LAN address)."""
    with pyz_server(pyz) as (_, address):
        hog = [RawClient(address, source="127.0.0.2") for _ in range(50)]
        for client in hog[:10]:
            client.expect("hello")
        for client in hog[10:]:
            assert_refused(client, "too_many_connections")
        alice, welcome = login(address, "alice")  # from 127.0.0.1
        assert welcome["online"] == ["alice"]
        bob = RawClient(address, source="127.0.0.3")
        bob.expect("hello")
        bob.send({"type": "login", "name": "bob", "version": "4.0.0"})
        bob.expect("welcome")
        alice.expect("join", name="bob")


def test_a_connection_that_ends_gives_its_share_back(make_server: MakeServer) -> None:
    server = make_server(max_per_address=2)
    first, second = (RawClient(server.address, source="127.0.0.2") for _ in range(2))
    first.expect("hello")
    second.expect("hello")
    assert_refused(RawClient(server.address, source="127.0.0.2"), "too_many_connections")
    first.close()
    wait_until(lambda: server.connections == 1, "the closed connection is counted out")
    third = RawClient(server.address, source="127.0.0.2")
    third.expect("hello")
    third.send({"type": "login", "name": "third", "version": "4.0.0"})
    third.expect("welcome")


def test_the_share_is_per_address_and_capacity_still_counts(
    make_server: MakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each address holds at most its share; past max_clients it is still server_full."""
    caplog.set_level("INFO", logger="lanchat.server")
    server = make_server(max_per_address=1, max_clients=3)
    held = []
    for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        client = RawClient(server.address, source=source)
        client.expect("hello")
        held.append(client)
        refused = RawClient(server.address, source=source)
        port = refused.sock.getsockname()[1]
        assert_refused(refused, "too_many_connections")
        assert f"refused {source}:{port}: too many connections from its address" in caplog.text
    assert_refused(RawClient(server.address, source="127.0.0.4"), "server_full")


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address() -> None:
    """A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d: the same host."""
    shares = AddressShares(1)
    assert shares.take("::ffff:10.0.0.7")
    assert not shares.take("10.0.0.7")
    shares.give_back("10.0.0.7")
    assert shares.take("10.0.0.7")
    assert shares.take("::1") and shares.take("10.0.0.8")


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("::ffff:192.168.1.5", "192.168.1.5"),
        ("::FFFF:c0a8:105", "192.168.1.5"),
        ("192.168.1.5", "192.168.1.5"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
    ],
)
def test_address_key_spells_each_host_one_way(host: str, key: str) -> None:
    assert address_key(host) == key


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_a_dual_stack_server_counts_ipv4_peers_by_their_address(no_thread_leak: None) -> None:
    server = ChatServer(
        ServerConfig(bind="::", port=0, name="test", discovery=False, max_per_address=1)
    )
    thread = threading.Thread(target=server.serve_forever, name="test-server")
    thread.start()
    try:
        port = server.address[1]
        ipv4 = RawClient(("127.0.0.1", port), source="127.0.0.2")
        ipv4.expect("hello")
        assert_refused(RawClient(("127.0.0.1", port), source="127.0.0.2"), "too_many_connections")
        ipv6 = RawClient(("::1", port))
        ipv6.expect("hello")
    finally:
        assert server.shutdown(timeout=10)
        thread.join(10)
        server.server_close()


# -- item 8: connection threads end after a rush -----------------------------------------------


def threads_of(pid: int) -> int:
    """The number of threads of a process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads line for {pid}")


@linux_only
def test_threads_go_back_to_the_baseline_after_a_rush(pyz: Path) -> None:
    """100 people who log in and drop start no thread of their own: at most the fixed
    pool's workers (4 here) run, and once the last leave is handled and they are idle,
    the server's thread count comes back to what it was before (counts, not timings)."""
    rush, workers = 100, 4
    options = ["--worker-idle-timeout", "0.5", "--max-clients", "200", "--workers", "4"]
    with pyz_server(pyz, *options, "--max-per-address", "200") as (proc, address):
        baseline = threads_of(proc.pid)
        watcher, _ = login(address, "watcher")
        clients: List[RawClient] = [login(address, f"r{n}")[0] for n in range(rush)]
        assert threads_of(proc.pid) <= baseline + workers
        for client in clients:
            client.close()
        frames = [watcher.recv() for _ in range(2 * rush)]  # every join, then every leave
        assert sum(frame["type"] == "leave" for frame in frames) == rush
        wait_until(lambda: threads_of(proc.pid) == baseline, "threads back to the baseline")
        login(address, "after")  # a fresh connection is served by a fresh worker
        assert threads_of(proc.pid) <= baseline + 1


# -- item 11: SIGHUP ------------------------------------------------------------------------


def test_sighup_sends_shutdown_logs_it_and_exits_0(pyz: Path) -> None:
    with pyz_server(pyz) as (proc, address):
        alice, _ = login(address, "alice")
        bob, _ = login(address, "bob")
        alice.expect("join")
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=WAIT) == 0
        for client in (alice, bob):
            assert [f["type"] for f in client.expect_closed()] == ["shutdown"]
        _, err = proc.communicate(timeout=10)
    assert "stopped by SIGHUP" in err


@linux_only
def test_sighup_stays_ignored_under_nohup(pyz: Path) -> None:
    """`nohup lanchat server` must outlive its terminal: an ignored SIGHUP stays ignored."""
    # What nohup does: start the server with SIGHUP ignored (a child inherits that).
    with contextlib.ExitStack() as stack:
        previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            proc, address = stack.enter_context(pyz_server(pyz))
        finally:
            signal.signal(signal.SIGHUP, previous)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        ignored = int(status.split("SigIgn:")[1].split()[0], 16)
        assert ignored & (1 << (signal.SIGHUP - 1)), "the server stopped ignoring SIGHUP"
        proc.send_signal(signal.SIGHUP)
        login(address, "still_here")
        assert proc.poll() is None
