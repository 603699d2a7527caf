"""Regression: after a non-reading flooder is dropped as slow, everyone else still gets
every frame (issue 18: the I/O thread slept with no timeout while outboxes held frames)."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from conftest import free_port
from wire import Frame, RawClient, login, start_pyz_server

ROUNDS = 10
FLOOD_SECONDS = 30.0  # the server cuts a flooder off long before this, even on a busy machine
SAY_EVERY = 0.2  # the scenario's sender speaks this often (the default rate is 5/s)


@pytest.fixture(params=["pyz", "in-process"])
def address(request: pytest.FixtureRequest, pyz: Path) -> Iterator[Tuple[str, int]]:
    """A server with default settings on a free port of 127.0.0.1: the built pyz, or one
    in this process, whose I/O loop the `make_server` fixture watches for stalls."""
    if request.param == "in-process":
        # No rate limit here, so the flooder is dropped as slow (its unread backlog) and
        # never as flooding: the path on which the wake-up was lost. A smaller backlog limit
        # gets there sooner (the test's threads share this process with the server).
        make_server = request.getfixturevalue("make_server")
        yield make_server(rate=1e6, burst=1000000, max_backlog=65536).address
        return
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery"
    )
    try:
        yield address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def flood_without_reading(client: RawClient, seconds: float) -> None:
    """Send `who` as fast as the socket takes it, never reading, until the server cuts us
    off or `seconds` pass."""
    burst = b'{"type":"who"}\n' * 200
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        try:
            client.send_raw(burst)
        except socket.timeout:  # the server reads no faster than it handles: push on
            continue
        except OSError:  # cut off by the server
            return


def frames_for(client: RawClient, seconds: float) -> List[Frame]:
    """Every frame that arrives within `seconds`."""
    frames = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return frames
        readable, _, _ = select.select([client.sock], [], [], left)
        if readable:
            frames.append(client.recv(timeout=5))


def read_until(client: RawClient, frames: List[Frame], **fields: str) -> None:
    """Append frames until one has these field values; each must come within 5 s (not
    when something else happens to wake the server)."""
    while not any(all(frame.get(k) == v for k, v in fields.items()) for frame in frames):
        frames.append(client.recv(timeout=5))


def texts(frames: List[Frame]) -> List[str]:
    return [frame["text"] for frame in frames if frame["type"] == "message"]


def leaves(frames: List[Frame]) -> List[Tuple[str, str]]:
    return [(frame["name"], frame["reason"]) for frame in frames if frame["type"] == "leave"]


def test_others_keep_receiving_after_a_non_reading_flooder_is_dropped(
    address: Tuple[str, int],
) -> None:
    observer, _ = login(address, "obs")
    sender, _ = login(address, "snd")
    observer.expect("join", name="snd")
    for round_ in range(ROUNDS):
        # A small receive buffer: the kernel holds little of what the flooder never reads,
        # so the server's own backlog limit is reached in a moment.
        flooder = RawClient(address, receive_buffer=4096)
        flooder.expect("hello")
        flooder.send({"type": "login", "name": f"flood{round_}", "version": "4.0.0"})
        flooder.expect("welcome")
        for client in (observer, sender):
            client.expect("join", name=f"flood{round_}")
        flooding = threading.Thread(target=flood_without_reading, args=(flooder, FLOOD_SECONDS))
        flooding.start()
        said: List[str] = []
        seen: List[Frame] = []
        while flooding.is_alive():
            said.append(f"round {round_} line {len(said)}")
            sender.send({"type": "say", "text": said[-1]})
            seen += frames_for(observer, SAY_EVERY)
        flooding.join(5)
        read_until(observer, seen, type="leave")
        said.append(f"round {round_} after the flood")
        sender.send({"type": "say", "text": said[-1]})
        read_until(observer, seen, text=said[-1])
        assert texts(seen) == said, f"round {round_}"
        # Dropped as slow for its unread backlog, or as flooding where that comes first.
        assert leaves(seen) in ([(f"flood{round_}", "slow")], [(f"flood{round_}", "error")])
        echoes: List[Frame] = []
        read_until(sender, echoes, text=said[-1])
        assert texts(echoes) == said
        assert leaves(echoes) == leaves(seen)
        flooder.close()
