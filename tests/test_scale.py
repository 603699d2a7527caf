"""Threads do not grow with clients: the built pyz server holds 3000 logged-in clients with
a small fixed pool (counted from /proc, never timed)."""

from __future__ import annotations

import json
import resource
import selectors
import socket
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from conftest import free_port
from wire import start_pyz_server

CLIENTS = 3000
MAX_THREADS = 64


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for 3000 sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 200:
        pytest.skip(f"the open-files limit ({hard}) is below {CLIENTS + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def log_in_all(address: Tuple[str, int], count: int, timeout: float) -> List[socket.socket]:
    """Connect `count` clients and log each in (presence in batches, so the test does not
    read 4.5 million joins); return their sockets once every welcome has arrived."""
    selector = selectors.DefaultSelector()
    socks: List[socket.socket] = []
    buffers = {}
    welcomed = 0
    deadline = time.monotonic() + timeout
    for n in range(count):
        sock = socket.create_connection(address, timeout=5)
        sock.sendall(
            json.dumps(
                {"type": "login", "name": f"u{n}", "version": "4.0.0", "presence": "batch"}
            ).encode()
            + b"\n"
        )
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
        buffers[sock] = b""
    while welcomed < count:
        assert time.monotonic() < deadline, f"only {welcomed} of {count} welcomed in time"
        for key, _ in selector.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(1 << 20)
            assert data, "the server closed a client"
            buffers[sock] += data
            if b'"type":"welcome"' in buffers[sock] or b'"type": "welcome"' in buffers[sock]:
                welcomed += 1
                selector.unregister(sock)
                buffers[sock] = b""
    selector.close()
    return socks


def test_3000_logged_in_clients_take_at_most_64_threads(pyz: Path, many_files: None) -> None:
    proc, address = start_pyz_server(
        str(pyz),
        "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery", "--no-history",
        "--max-clients", str(CLIENTS + 10), "--max-per-address", str(CLIENTS + 10),
        "--log-level", "warning",
    )  # fmt: skip
    socks: List[socket.socket] = []
    try:
        socks = log_in_all(address, CLIENTS, timeout=240)
        threads = threads_of(proc.pid)
        assert threads <= MAX_THREADS, f"{threads} threads for {CLIENTS} clients"
    finally:
        for sock in socks:
            sock.close()
        proc.kill()
        proc.communicate(timeout=10)
