"""The server's I/O thread on its own: batching, slow receivers, last frames before a close."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, List, Tuple

import pytest
from conftest import StallWatch

from lanchat.ioloop import Channel, IOLoop

Pairs = List[Tuple[Channel, socket.socket]]


@pytest.fixture
def loop_and_peers(
    request: pytest.FixtureRequest, no_thread_leak: None
) -> Iterator[Tuple[IOLoop, Pairs]]:
    """An IOLoop on 127.0.0.1 and three accepted channels with their peers' sockets.

    The longest rest between rounds is the argument of the test's `max_rest` marker
    (default 0); the pace is huge, so every round is followed by that whole rest.
    """
    marker = request.node.get_closest_marker("max_rest")
    max_rest = marker.args[0] if marker else 0.0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: List[Channel] = []
    ready = threading.Semaphore(0)

    def accept(sock: socket.socket, address: tuple) -> None:
        channel = Channel(sock)
        loop.add(channel)
        accepted.append(channel)
        ready.release()

    loop = IOLoop(listener, accept, max_backlog=65536, max_rest=max_rest, pace=1e9)
    thread = threading.Thread(target=loop.run, name="test-ioloop")
    thread.start()
    watch = StallWatch(loop)
    peers = []
    try:
        for _ in range(3):
            peer = socket.create_connection(listener.getsockname(), timeout=5)
            assert ready.acquire(timeout=5)
            peers.append(peer)
        yield loop, list(zip(accepted, peers))
    finally:
        watch.stop()
        loop.stop()
        thread.join(5)
        loop.close_all(b"bye\n", timeout=1)
        loop.close()
        for channel in accepted:
            channel.sock.close()
        for peer in peers:
            peer.close()
        listener.close()
    assert not watch.stalls, "the loop held output without sending it"


@pytest.mark.max_rest(0.5)
def test_frames_queued_during_the_rest_after_a_round_go_out_in_one_send(
    loop_and_peers: Tuple[IOLoop, Pairs],
) -> None:
    loop, pairs = loop_and_peers
    channel, peer = pairs[0]
    loop.deliver([(channel, b"first\n")])
    assert peer.recv(100) == b"first\n"  # an idle loop sends at once
    loop.deliver([(channel, b"second\n")])
    loop.deliver([(channel, b"third\n")])  # within the 0.5 s that follow a round
    assert peer.recv(100) == b"second\nthird\n"


def test_one_delivery_reaches_every_channel(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    loop.deliver([(channel, b"all\n") for channel, _ in pairs])
    assert [peer.recv(100) for _, peer in pairs] == [b"all\n"] * 3


def test_a_receiver_that_never_reads_is_dropped_as_slow(
    loop_and_peers: Tuple[IOLoop, Pairs],
) -> None:
    loop, pairs = loop_and_peers
    (sleeper, _), (reader, reader_peer) = pairs[0], pairs[1]
    chunk = b"x" * 60000 + b"\n"
    for _ in range(200):  # far more than the socket buffers and the 64 KiB backlog hold
        loop.deliver([(sleeper, chunk), (reader, b"ok\n")])
        assert reader_peer.recv(100).startswith(b"ok\n")
        if sleeper.close_reason:
            break
    assert sleeper.close_reason == "slow"
    loop.release(sleeper, timeout=5)
    assert sleeper.released.is_set()


def test_release_sends_the_last_frames_first(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    channel, peer = pairs[2]
    loop.deliver([(channel, b"last words\n")])
    loop.release(channel, timeout=5)
    assert channel.released.is_set()
    channel.sock.close()
    data = b""
    while chunk := peer.recv(100):
        data += chunk
    assert data == b"last words\n"


def test_close_all_sends_the_notice_to_every_channel(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    loop.stop()
    # the fixture's teardown runs close_all; here the channels get it first
    loop.close_all(b"bye\n", timeout=1)
    for _, peer in pairs:
        assert peer.recv(100) == b"bye\n"
