"""The load generator: many lanchat clients in one process, one epoll loop.

It speaks the wire protocol from the outside, as any third-party client would, over
non-blocking sockets with its own receive buffers split on `\\n`. Callers use, in order:

    gen = LoadGen(host, port, clients)
    gen.login(timeout)        -> LoginReport   (connect, hello, login, welcome)
    gen.settle(timeout)       -> bool          (every join frame has arrived)
    gen.traffic(rate, ...)    -> TrafficReport (room messages at an offered rate)
    gen.idle(seconds)                          (stay connected, answer pings)
    gen.close()

Every room message the bench sends carries its send time in its text,
`lcb/<seq>/<wall-clock ns>`. A delivery's latency runs from there to the kernel's
receive timestamp of the bytes that completed it (SO_TIMESTAMPNS, same clock), so the
time the generator takes to get round to a socket is not counted against the server;
it is measured apart, as read lag. To keep up with 100,000 deliveries a second, a
received line is not JSON-decoded when its bytes show it is one of our room messages
(`message_stamp`) or a `join`; every other line goes through `json.loads`.
`verify=True` decodes every line as well and counts any disagreement, for smoke tests.

`rooms=R` (R > 0) plays clients that speak rooms (protocol 4.2): client i logs in with
`"rooms": ["#bench<i mod R>"]` and says its messages there, so a message is due to the
members of its sender's room only, each of which also gets a `join` carrying `room` for
every later member of its room only. Each client's deliveries are counted against its
own room, so one that reaches a client outside the message's room counts as `misrouted`
rather than as delivered. `rooms=0` is the single-room client of protocol 4.0 (no
`rooms` in its login, no `room` in its frames): every client in one room.

`presence="batch"` asks a 4.1 server for `presence` frames, several logins' `join`s in
one frame, instead of one `join` frame per login; a 4.0 server ignores the field.
`LoadGen` speaks lanchat; a subclass overrides the few dialect hooks (`STAMP`, `JOIN`,
`ECHOES_OWN`, `_on_connect`, `_say`, `_joins_seen_in`, `_check`, `_slow`) to drive
another protocol with the same schedule and measurements (bench/ircgen.py), or `_split`
(the frames in the bytes received) and `_write` to carry lanchat's frames in another
framing (bench/wsgen.py).

epoll directly rather than `selectors`: its wrapper cost about 0.3 us more per ready
socket, some 7 % of the generator's whole cost per delivery. Every loop here is bounded
by a deadline.
"""

from __future__ import annotations

import array
import errno
import json
import math
import re
import select
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

PROTOCOL_VERSION = "4.0.0"  # what the bench logs in as: contract major version 4
ROOMS_VERSION = "4.2.0"  # what it logs in as with rooms
ROOM_PREFIX = "#bench"  # the bench's rooms (and IRC channels) are #bench0, #bench1, ...
MAX_LINE = 8 * 1024 * 1024  # a server frame is at most 4 MiB; twice that is a broken stream
RECV_SIZE = 65536
TEXT_PREFIX = "lcb/"  # "lanchat bench": the texts the bench sends are lcb/<seq>/<sent ns>

# Fast paths for the compact encoding lanchat's server uses (protocol.encode).
_JOIN = re.compile(rb'\{"type":"join",')
_WELCOME_PREFIX = b'{"type":"welcome",'
# A message frame whose field "text" is exactly "lcb/<digits>/<digits>". Inside a JSON
# string every `"` is escaped, so the bytes `,"text":"` can only be a key of the frame
# (message frames are flat): a match is as good as a parse. \d in a bytes pattern is
# ASCII only, and the closing quote right after the digits rules out longer texts.
_STAMP = re.compile(rb'\{"type":"message".*?,"text":"lcb/(\d+)/(\d+)"')
_SAY = b'{"type":"say","text":"' + TEXT_PREFIX.encode() + b'%d/%d","ref":%d}\n'
_SAY_IN_ROOM = b'{"type":"say","room":"%b","text":"' + TEXT_PREFIX.encode() + b'%d/%d","ref":%d}\n'

# Kernel receive timestamps (socket(7)): with SO_TIMESTAMPNS a TCP recvmsg carries when
# the last skb it read arrived, as a struct timespec on CLOCK_REALTIME.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # 35 on x86 and arm Linux
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)

_READABLE = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP

# Connection states.
HELLO, LOGIN, ONLINE, CLOSED = "hello", "login", "online", "closed"
PRESENCE_MODES = ("single", "batch")  # one join frame per login, or presence frames (4.1)

Tick = Callable[[], object]  # its result is ignored


def message_stamp(line: bytes) -> Optional[Tuple[int, int]]:
    """(seq, sent ns) of a bench room message, read from raw frame bytes; else None.

    None also means "not sure": the caller then decodes the line as JSON. Only frames
    in lanchat's compact encoding with a text exactly `lcb/<digits>/<digits>` match.
    """
    found = _STAMP.match(line)
    if found is None:
        return None
    return int(found[1]), int(found[2])


def text_stamp(text: Any) -> Optional[Tuple[int, int]]:
    """(seq, sent ns) of a decoded message text the bench sent; else None."""
    if not isinstance(text, str) or not text.startswith(TEXT_PREFIX):
        return None
    seq, slash, sent = text[len(TEXT_PREFIX) :].partition("/")
    if not (slash and seq.isdigit() and sent.isdigit() and seq.isascii() and sent.isascii()):
        return None
    return int(seq), int(sent)


def frame_stamp(frame: Any) -> Optional[Tuple[int, int]]:
    """(seq, sent ns) of a decoded room message the bench sent; else None."""
    if not isinstance(frame, dict) or frame.get("type") != "message" or "to" in frame:
        return None
    return text_stamp(frame.get("text"))


def say_frame(seq: int, sent_ns: int, room: Optional[str] = None) -> bytes:
    """The encoded `say` for bench message `seq`, stamped with its send time; with `room`,
    to that room (protocol 4.2), else to the default room."""
    if room is None:
        return _SAY % (seq, sent_ns, seq)
    return _SAY_IN_ROOM % (room.encode(), seq, sent_ns, seq)


def room_name(room: int) -> str:
    """The name of the bench's room number `room`."""
    return f"{ROOM_PREFIX}{room}"


def _encode(frame: dict) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def percentile(ordered: List[int], fraction: float) -> int:
    """The nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Conn:
    """One simulated client: its socket, buffers, login state and room."""

    __slots__ = ("counts", "inbuf", "index", "name", "outbuf", "room", "sock", "state")

    def __init__(
        self,
        index: int,
        name: str,
        sock: socket.socket,
        room: int = 0,
        counts: Optional[List[int]] = None,
    ) -> None:
        self.index = index
        self.name = name
        self.sock = sock
        self.room = room  # the bench's room number (0 for every client without rooms)
        self.counts = [] if counts is None else counts  # its room's deliveries per seq
        self.inbuf = b""
        self.outbuf = bytearray()
        self.state = HELLO


@dataclass(frozen=True)
class LoginReport:
    """How logging everyone in went."""

    clients: int
    logged_in: int
    failed: int
    seconds: float  # first connect to last welcome
    cpu_s: float  # the generator's own CPU over the same time


@dataclass(frozen=True)
class TrafficReport:
    """What a traffic run offered, what arrived, and how fast."""

    receivers: int  # clients logged in when sending started
    # Deliveries expected per message: the members of the sender's room, less the sender
    # without echo (with rooms of different sizes, the mean over the messages).
    copies: float
    senders: int
    offered_rate: float
    planned: int  # messages the schedule called for
    sent: int
    rejected: int  # answered rate_limited: never relayed, not expected anywhere
    unsent: int  # the sender had gone before its turn
    expected: int  # (sent - rejected) x copies
    received: int  # deliveries of those messages that arrived, duplicates excluded
    lost: int
    duplicates: int
    misrouted: int  # deliveries to clients outside the message's room
    send_s: float  # first send to last send
    active_s: float  # first send to last delivery
    deliveries_per_s: float
    sent_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    send_lag_max_ms: float  # how late the generator sent against its schedule
    read_lag_p99_ms: float  # kernel arrival to our recv: how far behind the reader is
    read_lag_max_ms: float
    events_per_poll: float
    user_stamped: int  # recvs timed on our clock (no kernel stamp): latency overstated
    late_sends: int  # sends more than 5 ms late
    gen_cpu_s: float
    gen_wall_s: float

    @property
    def gen_cpu_percent(self) -> float:
        """The generator's CPU over the run, in percent of one core."""
        return 100.0 * self.gen_cpu_s / self.gen_wall_s if self.gen_wall_s > 0 else 0.0


class LoadGen:
    """N lanchat clients on one selector loop (see the module docstring for the order)."""

    # The dialect: what a bench message and a join look like in raw bytes (the hot path
    # reads (seq, sent ns) from groups 1 and 2), and whether the sender gets its own back.
    STAMP = _STAMP
    JOIN = _JOIN
    ECHOES_OWN = True

    def __init__(
        self,
        host: str,
        port: int,
        clients: int,
        *,
        login_concurrency: int = 100,
        verify: bool = False,
        name_prefix: str = "b",
        recv_size: int = RECV_SIZE,
        presence: str = "single",
        rooms: int = 0,
    ) -> None:
        if presence not in PRESENCE_MODES:
            raise ValueError(f"presence must be one of {PRESENCE_MODES}, not {presence!r}")
        if rooms < 0:
            raise ValueError(f"rooms must be 0 (one room, no rooms spoken) or more, not {rooms}")
        self.presence = presence
        self.rooms = rooms
        self.host = host
        self.port = port
        self.clients = clients
        self.login_concurrency = max(1, login_concurrency)
        self.verify = verify
        self.name_prefix = name_prefix
        self.recv_size = recv_size
        self._epoll = select.epoll()
        self._by_fd: Dict[int, Conn] = {}
        self._max_events = max(64, clients)
        self.conns: List[Conn] = []
        self._next_index = 0
        self._in_flight = 0  # connected, not yet welcomed
        self.online = 0
        self.login_failed = 0
        self._last_welcome_ns = 0
        # Counted over the whole life of the generator.
        self.joins = 0
        self.leaves = 0
        self.rooms_joined = 0  # `joined` frames for the client's own room (4.2)
        self.presence_frames = 0
        self.errors: Counter = Counter()  # error code -> count
        self.drops: Counter = Counter()  # why our connections closed
        self.shutdowns = 0
        self.pings = 0
        self.other_frames = 0
        self.bad_lines = 0
        self.foreign_messages = 0  # message frames the bench did not send (or not this run)
        self.verify_mismatches = 0
        self.repeats = 0  # verify mode: deliveries of a message a client had already had
        # Per traffic run. Each room's deliveries per message seq; each Conn holds its own
        # room's list, so a delivery counts against the room of the client that got it.
        self._room_counts: List[List[int]] = [[] for _ in range(max(1, rooms))]
        self._had: Set[Tuple[int, int]] = set()  # verify mode: (seq, client) delivered
        self._latency = array.array("q")  # ns, one per delivery
        self._rejected: Set[int] = set()
        self._last_delivery_ns = 0
        self._read_lag = array.array("q")  # ns from kernel arrival to our recv, per recv
        # Loop statistics: events per poll show how well reads batch.
        self.polls = 0
        self.events = 0
        self.user_stamped = 0  # recvs without a kernel timestamp: stamped on our clock

    # -- public phases -------------------------------------------------------------------

    def login(self, timeout: float) -> LoginReport:
        """Connect and log in every client, `login_concurrency` at a time; bounded by timeout."""
        cpu0 = _own_cpu()
        start = time.time_ns()
        deadline = time.monotonic() + timeout
        self._open_more()
        while self.online + self.login_failed < self.clients:
            left = deadline - time.monotonic()
            if left <= 0:
                # No one else may start: dropping a login in flight would open another.
                self.login_failed += self.clients - self._next_index
                self._next_index = self.clients
                for conn in list(self.conns):
                    if conn.state in (HELLO, LOGIN):
                        self._drop(conn, "login_timeout")
                break
            self._poll(min(left, 0.05))
        end = self._last_welcome_ns or time.time_ns()
        return LoginReport(
            clients=self.clients,
            logged_in=self.online,
            failed=self.login_failed,
            seconds=(end - start) / 1e9,
            cpu_s=_own_cpu() - cpu0,
        )

    def settle(self, timeout: float) -> bool:
        """Read until every client has seen the join of each later one; False on timeout.

        With L clients online in a room and none gone, that is L(L-1)/2 joins there,
        whether they came as `join` frames or as changes inside `presence` frames; with
        rooms, the sum over the rooms. Traffic starts after this so that login fan-out does
        not count against message latency.
        """
        want = self.expected_joins()
        deadline = time.monotonic() + timeout
        while self.joins < want:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._poll(min(left, 0.05))
        return True

    def expected_joins(self) -> int:
        """The joins the clients online now see in all, if none leaves (see `settle`)."""
        return sum(self._joins_seen_in(members) for members in self._members().values())

    def traffic(
        self,
        rate: float,
        duration: float,
        drain_quiet: float = 3.0,
        drain_max: float = 60.0,
        tick: Optional[Tick] = None,
        tick_every: float = 0.5,
    ) -> TrafficReport:
        """Send `rate` room messages a second for `duration` s, then wait for deliveries.

        Message k is due at start + k/rate and goes from client k mod N, so the load is
        spread over every client and no one connection nears the server's rate limit.
        With rooms it goes to the sender's room and is due to that room's members only.
        Then it waits for the rest while they keep coming: until all have arrived, or
        none has for `drain_quiet` s, or `drain_max` s after the last send. What has not
        arrived by then is lost (a late delivery is slow, not lost: latency shows it).
        `tick` is called about every `tick_every` s (the runner samples the server).
        """
        senders = [conn for conn in self.conns if conn.state == ONLINE]
        receivers = len(senders)
        if not senders:
            raise RuntimeError("no client is logged in")
        # Deliveries due per message, by the sender's room.
        echo = 0 if self.ECHOES_OWN else 1
        copies_in = {room: members - echo for room, members in self._members().items()}
        planned = max(1, round(rate * duration))
        for counts in self._room_counts:
            counts[:] = [0] * planned  # in place: each Conn holds its room's list
        self._had = set()
        room_of = array.array("i", [-1]) * planned  # the sender's room; -1: not sent
        sent_copies = 0  # deliveries due for the messages sent so far
        self._latency = array.array("q")
        self._read_lag = array.array("q")
        self._rejected = set()
        polls0, events0, user0 = self.polls, self.events, self.user_stamped
        interval_ns = 1e9 / rate
        tick_ns = int(tick_every * 1e9)
        cpu0 = _own_cpu()
        start = time.time_ns()
        next_tick = start + tick_ns
        # Stamps are wall-clock (the kernel stamps arrivals so); this bounds the loop even
        # if the wall clock jumps.
        hard_deadline = time.monotonic() + duration + drain_max + 10
        quiet_ns = int(drain_quiet * 1e9)
        drain_start = 0
        last_send = start
        next_seq = sent = unsent = late = 0
        lag_max = 0
        while time.monotonic() < hard_deadline:
            now = time.time_ns()
            # Send every message that is due; a late loop catches up and the lag is reported.
            while next_seq < planned and start + next_seq * interval_ns <= now:
                sender = senders[next_seq % receivers]
                if sender.state == ONLINE:
                    sent_ns = time.time_ns()
                    self._write(sender, self._say(sender, next_seq, sent_ns))
                    room_of[next_seq] = sender.room
                    sent_copies += copies_in[sender.room]
                    sent += 1
                    last_send = sent_ns
                    lag = sent_ns - int(start + next_seq * interval_ns)
                    lag_max = max(lag_max, lag)
                    if lag > 5_000_000:
                        late += 1
                else:
                    unsent += 1
                next_seq += 1
            if tick is not None and now >= next_tick:
                tick()
                next_tick = now + tick_ns
            if next_seq >= planned:
                if not drain_start:
                    drain_start = now
                expected = sent_copies - self._rejected_copies(room_of, copies_in)
                quiet_until = max(self._last_delivery_ns, drain_start) + quiet_ns
                # More than were due: some went astray (to a client twice, or outside the
                # room), so the count says nothing of the rest: wait for quiet instead.
                if (
                    len(self._latency) == expected
                    or now >= quiet_until
                    or now - drain_start >= drain_max * 1e9
                ):
                    break
                wake = min(next_tick, quiet_until)
            else:
                wake = min(next_tick, int(start + next_seq * interval_ns))
            self._poll(max(0.0, (wake - time.time_ns()) / 1e9))
        wall_ns = time.time_ns() - start
        gen_cpu = _own_cpu() - cpu0

        delivered, lost, duplicates, misrouted = self._tally(room_of, copies_in)
        expected = sent_copies - self._rejected_copies(room_of, copies_in)
        accepted = sent - len(self._rejected)
        ordered = sorted(self._latency)
        lag_ordered = sorted(self._read_lag)
        polls = self.polls - polls0
        active_ns = max(self._last_delivery_ns - start, 1)
        return TrafficReport(
            receivers=receivers,
            copies=_per_message(expected, accepted, copies_in),
            senders=len(senders),
            offered_rate=rate,
            planned=planned,
            sent=sent,
            rejected=len(self._rejected),
            unsent=unsent,
            expected=expected,
            received=delivered,
            lost=lost,
            duplicates=duplicates,
            misrouted=misrouted,
            send_s=(last_send - start) / 1e9,
            active_s=active_ns / 1e9,
            deliveries_per_s=delivered / (active_ns / 1e9),
            sent_per_s=sent / max((last_send - start) / 1e9, 1e-9) if sent > 1 else float(sent),
            latency_p50_ms=percentile(ordered, 0.50) / 1e6,
            latency_p99_ms=percentile(ordered, 0.99) / 1e6,
            latency_max_ms=(ordered[-1] if ordered else 0) / 1e6,
            send_lag_max_ms=lag_max / 1e6,
            read_lag_p99_ms=percentile(lag_ordered, 0.99) / 1e6,
            read_lag_max_ms=(lag_ordered[-1] if lag_ordered else 0) / 1e6,
            events_per_poll=(self.events - events0) / polls if polls else 0.0,
            user_stamped=self.user_stamped - user0,
            late_sends=late,
            gen_cpu_s=gen_cpu,
            gen_wall_s=wall_ns / 1e9,
        )

    def _rejected_copies(self, room_of: array.array, copies_in: Dict[int, int]) -> int:
        """The deliveries no longer due because their messages were rate limited."""
        sent = [seq for seq in self._rejected if 0 <= seq < len(room_of) and room_of[seq] >= 0]
        return sum(copies_in[room_of[seq]] for seq in sent)

    def _tally(self, room_of: array.array, copies_in: Dict[int, int]) -> Tuple[int, ...]:
        """(delivered, lost, duplicates, misrouted) of the messages sent and not refused.

        Each message is due `copies_in[its room]` times in its own room; every copy a
        client of another room got is misrouted, whatever its room's count says.
        """
        delivered = lost = duplicates = misrouted = 0
        for seq, room in enumerate(room_of):
            if room < 0 or seq in self._rejected:
                continue
            copies = copies_in[room]
            for counted_in, counts in enumerate(self._room_counts):
                count = counts[seq]
                if counted_in != room:
                    misrouted += count
                    continue
                delivered += min(count, copies)
                if count < copies:
                    lost += copies - count
                else:
                    duplicates += count - copies
        return delivered, lost, duplicates, misrouted

    def idle(self, duration: float, tick: Optional[Tick] = None, tick_every: float = 0.5) -> None:
        """Stay connected for `duration` s, reading whatever comes (pings are answered)."""
        deadline = time.monotonic() + duration
        next_tick = time.monotonic() + tick_every
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if tick is not None and now >= next_tick:
                tick()
                next_tick = now + tick_every
            self._poll(max(0.0, min(deadline, next_tick) - now))

    def close(self) -> None:
        """Close every connection and the epoll object."""
        for conn in self.conns:
            if conn.state != CLOSED:
                conn.state = CLOSED
                conn.sock.close()
        self._by_fd.clear()
        self._epoll.close()

    def __enter__(self) -> LoadGen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections ---------------------------------------------------------------------

    def _open_more(self) -> None:
        while self._in_flight < self.login_concurrency and self._next_index < self.clients:
            index = self._next_index
            self._next_index += 1
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:  # EMFILE: out of descriptors
                self.login_failed += 1
                self.drops[_errname(exc)] += 1
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                pass  # no kernel receive stamps: each recv is stamped on our clock instead
            err = sock.connect_ex((self.host, self.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                self.login_failed += 1
                self.drops[errno.errorcode.get(err, str(err))] += 1
                continue
            room = index % self.rooms if self.rooms else 0
            conn = Conn(index, f"{self.name_prefix}{index}", sock, room, self._room_counts[room])
            self.conns.append(conn)
            # The server speaks first (hello): readable means connected, or refused.
            self._by_fd[sock.fileno()] = conn
            self._epoll.register(sock.fileno(), _READABLE)
            self._in_flight += 1
            self._on_connect(conn)

    # -- the dialect: lanchat here, overridden for another protocol ----------------------

    def _on_connect(self, conn: Conn) -> None:
        """A connection was opened: lanchat's server speaks first, so nothing to send."""

    def _say(self, conn: Conn, seq: int, sent_ns: int) -> bytes:
        """The bytes that send bench message `seq` to the room of `conn`."""
        return say_frame(seq, sent_ns, self._room_name(conn))

    def _joins_seen_in(self, members: int) -> int:
        """Joins the members of one room see once `members` have come in: each sees every
        later one."""
        return members * (members - 1) // 2

    def _room_name(self, conn: Conn) -> Optional[str]:
        """The room the client is in, as its frames name it; None without rooms."""
        return room_name(conn.room) if self.rooms else None

    def _members(self) -> Counter:
        """How many clients are online in each room (by room number)."""
        return Counter(conn.room for conn in self.conns if conn.state == ONLINE)

    def _welcomed(self, conn: Conn, now: int) -> None:
        """A client finished logging in: it is online, and another may start."""
        conn.state = ONLINE
        self.online += 1
        self._in_flight -= 1
        self._last_welcome_ns = now
        self._open_more()

    def _drop(self, conn: Conn, reason: str) -> None:
        if conn.state == CLOSED:
            return
        was = conn.state
        conn.state = CLOSED
        self.drops[reason] += 1
        fd = conn.sock.fileno()
        self._by_fd.pop(fd, None)
        self._epoll.unregister(fd)
        conn.sock.close()
        if was == ONLINE:
            self.online -= 1
        else:
            self._in_flight -= 1
            self.login_failed += 1
            self._open_more()

    def _write(self, conn: Conn, data: bytes) -> None:
        if conn.state == CLOSED:
            return
        if conn.outbuf:
            conn.outbuf += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._drop(conn, _errname(exc))
            return
        if sent < len(data):
            conn.outbuf += data[sent:]
            self._epoll.modify(conn.sock.fileno(), _READABLE | select.EPOLLOUT)

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, _errname(exc))
            return
        del conn.outbuf[:sent]
        if not conn.outbuf:
            self._epoll.modify(conn.sock.fileno(), _READABLE)

    # -- the hot loop --------------------------------------------------------------------

    def _poll(self, timeout: float) -> None:
        """Wait up to `timeout` s for events and handle them: the generator's hot path."""
        events = self._epoll.poll(timeout, self._max_events)
        if not events:
            return
        # Locals: this loop runs once per delivery, 100,000 times a second.
        by_fd = self._by_fd
        ncounts = len(self._room_counts[0])  # every room's list is as long
        record = self._latency.append
        match = self.STAMP.match
        is_join = self.JOIN.match
        recv_size = self.recv_size
        clock = time.time_ns
        timespec = _TIMESPEC.unpack_from
        record_lag = self._read_lag.append
        split = self._split
        delivered_at = 0
        self.polls += 1
        self.events += len(events)
        for fd, mask in events:
            conn = by_fd.get(fd)
            if conn is None:  # dropped earlier in this batch
                continue
            if mask & select.EPOLLOUT:
                self._flush(conn)
            if conn.state == CLOSED or not mask & _READABLE:
                continue
            try:
                data, ancillary, _, _ = conn.sock.recvmsg(recv_size, _ANCILLARY_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                self._drop(conn, _errname(exc))
                continue
            if not data:
                self._drop(conn, "eof")
                continue
            read_at = clock()
            if ancillary:
                # When the kernel queued the last byte read: our own lag does not count.
                seconds, nanoseconds = timespec(ancillary[0][2])
                now = seconds * 1_000_000_000 + nanoseconds
                record_lag(read_at - now)
            else:
                now = read_at
                self.user_stamped += 1
            lines = split(conn, data)
            counts = conn.counts  # the deliveries of this client's room
            for line in lines:
                found = match(line)
                if found is not None:
                    seq = int(found[1])
                    if seq < ncounts:
                        counts[seq] += 1
                        record(now - int(found[2]))
                        delivered_at = now
                    else:
                        self.foreign_messages += 1
                    if self.verify:
                        self._check(conn, line, (seq, int(found[2])))
                elif is_join(line):
                    self.joins += 1
                    if self.verify:
                        self._check(conn, line, None)
                elif line and line != b"\r":
                    self._slow(conn, line, now)
        if delivered_at:
            self._last_delivery_ns = delivered_at

    def _split(self, conn: Conn, data: bytes) -> List[bytes]:
        """The whole frames in what a client has received so far, in order; the rest waits
        in its `inbuf`. lanchat's frames (and IRC's) are lines."""
        if conn.inbuf:
            data = conn.inbuf + data
        lines = data.split(b"\n")
        conn.inbuf = lines.pop()
        if len(conn.inbuf) > MAX_LINE:
            self._drop(conn, "line_too_long")
            return []
        return lines

    def _delivered(self, conn: Conn, stamp: Optional[Tuple[int, int]], now: int) -> None:
        """Count a delivery found by the slow path (the hot loop inlines the same).

        None, or a stamp of no message of this run, is a message the bench did not send.
        """
        if stamp is not None and stamp[0] < len(conn.counts):
            seq, sent = stamp
            conn.counts[seq] += 1
            self._latency.append(now - sent)
            self._last_delivery_ns = max(self._last_delivery_ns, now)
        else:
            self.foreign_messages += 1

    def _check(self, conn: Conn, line: bytes, stamp: Optional[Tuple[int, int]]) -> None:
        """Verify mode: the fast path must agree with a full decode, the frame must name
        the client's room (none without rooms), and no client may get a message twice."""
        try:
            frame = json.loads(line)
        except ValueError:
            self.verify_mismatches += 1
            return
        if stamp is None:
            ok = isinstance(frame, dict) and frame.get("type") == "join"
        else:
            ok = frame_stamp(frame) == stamp
            self._count_repeat(conn, stamp[0])
        if not ok or frame.get("room") != self._room_name(conn):
            self.verify_mismatches += 1

    def _count_repeat(self, conn: Conn, seq: int) -> None:
        """Verify mode: note that this client got message `seq`; count it if again."""
        if (seq, conn.index) in self._had:
            self.repeats += 1
        self._had.add((seq, conn.index))

    def _slow(self, conn: Conn, line: bytes, now: int) -> None:
        if line.startswith(_WELCOME_PREFIX) and not self.verify:
            kind: Any = "welcome"  # can be megabytes of history and names: not needed
            frame: dict = {}
        else:
            try:
                frame = json.loads(line)
            except ValueError:
                self.bad_lines += 1
                return
            if not isinstance(frame, dict):
                self.bad_lines += 1
                return
            kind = frame.get("type")
        if kind == "message":
            self._delivered(conn, frame_stamp(frame), now)
        elif kind == "hello":
            if conn.state == HELLO:
                conn.state = LOGIN
                login: Dict[str, Any] = {
                    "type": "login",
                    "name": conn.name,
                    "version": ROOMS_VERSION if self.rooms else PROTOCOL_VERSION,
                }
                if self.presence == "batch":
                    login["presence"] = "batch"
                if self.rooms:
                    login["rooms"] = [self._room_name(conn)]
                self._write(conn, _encode(login))
        elif kind == "welcome":
            if conn.state == LOGIN:
                self._welcomed(conn, now)
        elif kind == "joined" and frame.get("room") == self._room_name(conn):
            self.rooms_joined += 1
        elif kind == "join":
            self.joins += 1
        elif kind == "leave":
            self.leaves += 1
        elif kind == "presence":
            self._presence(frame)
        elif kind == "ping":
            self.pings += 1
            pong: dict = {"type": "pong"}
            if "token" in frame:
                pong["token"] = frame["token"]
            self._write(conn, _encode(pong))
        elif kind == "error":
            code = str(frame.get("code"))
            self.errors[code] += 1
            ref = frame.get("ref")
            if code == "rate_limited" and isinstance(ref, int):
                self._rejected.add(ref)
            elif conn.state in (HELLO, LOGIN):
                self._drop(conn, f"error:{code}")  # server_full, name_taken...: no retry
        elif kind == "shutdown":
            self.shutdowns += 1
        else:
            self.other_frames += 1

    def _presence(self, frame: dict) -> None:
        """Count the joins and leaves a batched `presence` frame carries (4.1)."""
        self.presence_frames += 1
        changes = frame.get("changes")
        if not isinstance(changes, list):
            self.bad_lines += 1
            return
        for change in changes:
            kind = change.get("type") if isinstance(change, dict) else None
            if kind == "join":
                self.joins += 1
            elif kind == "leave":
                self.leaves += 1
            else:
                self.bad_lines += 1


def _per_message(expected: int, messages: int, copies_in: Dict[int, int]) -> float:
    """Deliveries due per message: the same for every room, or the mean over messages."""
    if len(set(copies_in.values())) == 1:
        return next(iter(copies_in.values()))
    return round(expected / messages, 2) if messages else 0.0


def _own_cpu() -> float:
    return time.process_time()  # one thread: process CPU is the loop's CPU


def _errname(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)
