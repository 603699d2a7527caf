"""Shared test fixtures: the built pyz, free ports, and a guard against leaked threads."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYZ = Path(os.environ.get("LANCHAT_PYZ", ROOT / "dist" / "lanchat.pyz"))


@pytest.fixture(scope="session")
def pyz() -> Path:
    """The built zipapp (`make pyz`); `make test` builds it first."""
    if not PYZ.is_file():
        pytest.fail(f"{PYZ} is missing: run 'make pyz' (make test builds it)")
    return PYZ


def pyz_command(*args: str) -> list:
    """The argv that runs the built pyz with this Python."""
    return [sys.executable, str(PYZ), *args]


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
