"""Shared test fixtures: the built pyz, free ports, and a guard against leaked threads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from wire import PyzServer

from lanchat.core.config import ServerConfig
from lanchat.core.ioloop import IOLoop
from lanchat.server import ChatServer
from lanchat.tls import CertificateError, self_signed

ROOT = Path(__file__).resolve().parent.parent
PYZ = Path(os.environ.get("LANCHAT_PYZ", ROOT / "dist" / "lanchat.pyz"))


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers started by tests keep their history files in a temporary folder, never in
    the user's data directory (where a file of an earlier run could share a port number);
    clients keep their identity key and settings in another (4.3), never in the user's."""
    old = {name: os.environ.get(name) for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config-home"))
    yield
    for name, value in old.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def pyz() -> Path:
    """The built zipapp (`make pyz`); `make test` builds it first."""
    if not PYZ.is_file():
        pytest.fail(f"{PYZ} is missing: run 'make pyz' (make test builds it)")
    return PYZ


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """A self-signed certificate and its key for localhost, made as `lanchat server --tls`
    makes its own (by openssl; skipped where there is no openssl)."""
    try:
        return self_signed(tmp_path_factory.mktemp("tls") / "pair", "localhost")
    except CertificateError as exc:
        pytest.skip(str(exc))


def pyz_command(*args: str) -> list:
    """The argv that runs the built pyz with this Python."""
    return [sys.executable, str(PYZ), *args]


def discover_on_loopback(port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    """`lanchat.pyz discover --host 127.0.0.1 --port PORT FLAGS...`, run to its end."""
    return subprocess.run(
        pyz_command("discover", "--host", "127.0.0.1", "--port", str(port), *flags),
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _close_raw_clients() -> Iterator[None]:
    """Close the sockets of the test's RawClients, even when it failed."""
    yield
    from wire import close_all_clients

    close_all_clients()


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail the test if it leaves threads running (given a moment to end)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


class StallWatch:
    """Watches an I/O loop from outside: output that waits (a dirty link, or bytes in an
    outbox) through two whole sample intervals in which the loop sent nothing is a stall
    (a lost wake-up, issue 18)."""

    INTERVAL = 1.0  # far above the loop's longest rest between rounds (50 ms)

    def __init__(self, loop: IOLoop) -> None:
        self.stalls = 0
        self._loop = loop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="test-stall-watch")
        self._thread.start()

    def _watch(self) -> None:
        stuck = 0
        rounds = self._loop.rounds
        while not self._done.wait(self.INTERVAL):
            waiting = self._loop.has_output() or self._loop.outboxes_waiting()
            rounds_before, rounds = rounds, self._loop.rounds
            stuck = stuck + 1 if waiting and rounds == rounds_before else 0
            if stuck == 2:
                self.stalls += 1

    def stop(self) -> None:
        self._done.set()
        self._thread.join(5)


MakeServer = Callable[..., ChatServer]


@pytest.fixture
def make_server(no_thread_leak: None) -> Iterator[MakeServer]:
    """Start in-process servers on free ports; shut them down and join them afterwards.

    Each server's I/O loop is watched for stalls (output waiting while the loop sleeps);
    a stall fails the test."""
    running: List[tuple] = []

    def start(**options: Any) -> ChatServer:
        options.setdefault("discovery", False)
        server = ChatServer(ServerConfig(bind="127.0.0.1", port=0, name="test", **options))
        thread = threading.Thread(target=server.serve_forever, name="test-server")
        thread.start()
        running.append((server, thread, StallWatch(server._loop)))
        return server

    try:
        yield start
    finally:
        for server, thread, watch in running:
            try:
                watch.stop()
                assert server.shutdown(timeout=10), "serve_forever did not return"
                thread.join(10)
            finally:
                server.server_close()
        stalls = sum(watch.stalls for _, _, watch in running)
        assert not stalls, f"an I/O loop held output without sending it ({stalls} stalls)"


Address = Tuple[str, int]
Serve = Callable[..., Address]


@pytest.fixture(params=["in-process", "pyz"])
def serve(request: pytest.FixtureRequest, make_server: MakeServer, pyz: Path) -> Iterator[Serve]:
    """Start a server with these ServerConfig options and return its address: in this
    process (its I/O loop watched for stalls), or the built pyz with the same options as
    flags (and `--no-history`)."""
    started: List[PyzServer] = []

    def start(**options: Any) -> Address:
        if request.param == "in-process":
            return make_server(**options).address
        flags = ["--no-history"]
        for key, value in options.items():
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            flags += ["--" + key.replace("_", "-"), text]
        started.append(PyzServer(str(pyz), *flags))
        return started[-1].start()

    try:
        yield start
    finally:
        for server in started:
            server.kill()
