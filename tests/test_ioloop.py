"""The server's I/O thread on its own: batching, slow receivers, last frames before a close,
input handed on in order, and a flooder's input bounded."""

from __future__ import annotations

import socket
import threading
import time
from typing import Dict, Iterator, List, Tuple

import pytest
from conftest import StallWatch

from lanchat.core.ioloop import MAX_INBOX_BYTES, IOLoop, Item, Link
from lanchat.core.transport import LANCHAT
from lanchat.threadpool import ThreadPool

Pairs = List[Tuple[Link, socket.socket]]


class Recorder:
    """The loop's `handle`: keeps every item per link, and checks no link is handled by
    two workers at once."""

    def __init__(self) -> None:
        self.items: Dict[Link, List[Item]] = {}
        self.overlaps = 0
        self.hold = threading.Event()  # while clear, handling waits (a slow worker)
        self.hold.set()
        self._busy: set = set()
        self._lock = threading.Lock()

    def __call__(self, link: Link, item: Item) -> None:
        with self._lock:
            if link in self._busy:
                self.overlaps += 1
            self._busy.add(link)
        self.hold.wait(10)
        with self._lock:
            self.items.setdefault(link, []).append(item)
            self._busy.discard(link)

    def data(self, link: Link) -> bytes:
        with self._lock:
            return b"".join(v for k, v in self.items.get(link, []) if k == "data")  # type: ignore[misc]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def loop_and_peers(
    request: pytest.FixtureRequest, recorder: Recorder, no_thread_leak: None
) -> Iterator[Tuple[IOLoop, Pairs]]:
    """An IOLoop on 127.0.0.1 and three accepted links with their peers' sockets.

    The longest rest between rounds is the argument of the test's `max_rest` marker
    (default 0); the pace is huge, so every round is followed by that whole rest.
    """
    marker = request.node.get_closest_marker("max_rest")
    max_rest = marker.args[0] if marker else 0.0
    marker = request.node.get_closest_marker("max_backlog")
    max_backlog = marker.args[0] if marker else 65536
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: List[Link] = []
    ready = threading.Semaphore(0)

    def admit(sock: socket.socket, address: tuple, codec: object) -> Link:
        link = Link(sock, f"{address[0]}:{address[1]}", LANCHAT)
        accepted.append(link)
        ready.release()
        return link

    pool = ThreadPool(4, "test-ioloop-worker")
    loop = IOLoop(pool, admit, recorder, max_backlog=max_backlog, max_rest=max_rest, pace=1e9)
    loop.listen(listener, LANCHAT)
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
        recorder.hold.set()
        loop.stop()
        thread.join(5)
        loop.close_all(lambda link: b"bye\n", timeout=1)
        loop.close()
        pool.shutdown(wait=True, timeout=5)
        for peer in peers:
            peer.close()
        listener.close()
    assert not watch.stalls, "the loop held output without sending it"


def wait_until(condition: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.mark.max_rest(0.5)
def test_frames_queued_during_the_rest_after_a_round_go_out_in_one_send(
    loop_and_peers: Tuple[IOLoop, Pairs],
) -> None:
    loop, pairs = loop_and_peers
    link, peer = pairs[0]
    loop.deliver([(link, b"first\n")])
    assert peer.recv(100) == b"first\n"  # an idle loop sends at once
    loop.deliver([(link, b"second\n")])
    loop.deliver([(link, b"third\n")])  # within the 0.5 s that follow a round
    assert peer.recv(100) == b"second\nthird\n"


def test_one_delivery_reaches_every_link(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    loop.deliver([(link, b"all\n") for link, _ in pairs])
    assert [peer.recv(100) for _, peer in pairs] == [b"all\n"] * 3


def test_a_receiver_that_never_reads_is_ended_as_slow(
    loop_and_peers: Tuple[IOLoop, Pairs], recorder: Recorder
) -> None:
    loop, pairs = loop_and_peers
    (sleeper, _), (reader, reader_peer) = pairs[0], pairs[1]
    chunk = b"x" * 60000 + b"\n"
    for _ in range(200):  # far more than the socket buffers and the 64 KiB backlog hold
        loop.deliver([(sleeper, chunk), (reader, b"ok\n")])
        assert reader_peer.recv(100).startswith(b"ok\n")
        if sleeper.slow:
            break
    assert sleeper.slow
    wait_until(lambda: recorder.items.get(sleeper, [])[-1:] == [("end", "slow")], "told slow")
    loop.close_link(sleeper, linger=False)
    assert sleeper.closed.wait(5)


def test_close_link_sends_the_last_frames_first(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    link, peer = pairs[2]
    loop.deliver([(link, b"last words\n")])
    loop.close_link(link, linger=True)
    data = b""
    while chunk := peer.recv(100):  # the FIN comes after them
        data += chunk
    assert data == b"last words\n"
    peer.close()
    assert link.closed.wait(5)


def test_close_all_sends_the_notice_to_every_link(loop_and_peers: Tuple[IOLoop, Pairs]) -> None:
    loop, pairs = loop_and_peers
    loop.stop()
    for thread in threading.enumerate():  # close_all runs after `run`, as in the server
        if thread.name == "test-ioloop":
            thread.join(5)
    # the fixture's teardown runs close_all; here the links get it first
    loop.close_all(lambda link: b"bye\n", timeout=1)
    for _, peer in pairs:
        assert peer.recv(100) == b"bye\n"


def test_input_reaches_the_handler_in_order_one_worker_at_a_time(
    loop_and_peers: Tuple[IOLoop, Pairs], recorder: Recorder
) -> None:
    _, pairs = loop_and_peers
    expected = {}
    for n in range(200):
        for index, (link, peer) in enumerate(pairs):
            line = f"{index}:{n}\n".encode()
            peer.sendall(line)
            expected[link] = expected.get(link, b"") + line
    for link, _ in pairs:
        wait_until(lambda k=link: recorder.data(k) == expected[k], "every byte, in order")
    assert recorder.overlaps == 0


def test_the_end_of_input_is_told_after_the_input(
    loop_and_peers: Tuple[IOLoop, Pairs], recorder: Recorder
) -> None:
    _, pairs = loop_and_peers
    link, peer = pairs[0]
    peer.sendall(b"bye\n")
    peer.close()
    wait_until(lambda: recorder.items.get(link, [])[-1:] == [("end", "disconnect")], "told")
    assert recorder.data(link) == b"bye\n"


def test_a_link_whose_worker_lags_is_not_read_past_the_inbox_limit(
    loop_and_peers: Tuple[IOLoop, Pairs], recorder: Recorder
) -> None:
    _, pairs = loop_and_peers
    link, peer = pairs[0]
    recorder.hold.clear()  # the worker is stuck
    peer.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the kernel's buffers are full too
        try:
            sent += peer.send(b"x" * 65536)
        except BlockingIOError:
            if sent > MAX_INBOX_BYTES * 4:
                break
            time.sleep(0.01)
    assert link.inbox_bytes <= MAX_INBOX_BYTES + 65536 * 4, "reading stopped"
    assert sent > MAX_INBOX_BYTES * 4
    recorder.hold.set()
    wait_until(lambda: len(recorder.data(link)) == sent, "every byte once the worker is back")


# Four threads may hold the GIL for whole switch intervals in a row, queueing thousands of
# lines before the I/O thread runs: a 64 KiB backlog would end links as slow, which is not
# what this test is about.
@pytest.mark.max_backlog(1 << 20)
def test_deliveries_from_many_threads_at_once_all_go_out(
    loop_and_peers: Tuple[IOLoop, Pairs],
) -> None:
    """Deliveries racing with the rounds that take the dirty set away: none may be
    stranded (a set captured outside the lock once lost them)."""
    loop, pairs = loop_and_peers
    line = b"x" * 20 + b"\n"
    per_thread, threads = 3000, 4

    def deliver_many() -> None:
        for _ in range(per_thread):
            for link, _ in pairs:
                loop.deliver([(link, line)])

    senders = [threading.Thread(target=deliver_many) for _ in range(threads)]
    for sender in senders:
        sender.start()
    expected = len(line) * per_thread * threads
    for _, peer in pairs:
        received = 0
        peer.settimeout(5)
        while received < expected:
            chunk = peer.recv(1 << 20)
            assert chunk, "closed early"
            received += len(chunk)
    for sender in senders:
        sender.join(5)


def test_a_close_waits_for_frames_queued_after_the_round_took_the_outboxes(
    recorder: Recorder, no_thread_leak: None
) -> None:
    """A worker queues its last frame (an error) and closes the link while the I/O thread
    is sending a round that took the outboxes before that frame came: the frame must still
    go out before the close (it was lost about one kick in eight)."""
    pool = ThreadPool(1, "test-ioloop-worker")
    loop = IOLoop(pool, lambda *_: b"", recorder, max_backlog=65536, max_rest=0.0)
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)
    link = Link(ours, "pair", LANCHAT)
    try:
        loop.deliver([(link, b"error\n")])  # the worker, after the round took the outboxes
        loop.close_link(link, linger=False)
        loop._flush(link, [])  # the I/O thread ends that round: the error is still queued
        assert not link.closed.is_set(), "closed with the error still queued"
        loop._flush_dirty()  # the next round
        assert peer.recv(100) == b"error\n"
        assert peer.recv(100) == b"", "then the close"
        assert link.closed.is_set()
    finally:
        loop.close()
        pool.shutdown(wait=True, timeout=5)
        ours.close()
        peer.close()
