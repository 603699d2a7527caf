"""The outbox: what the user sent that the server has not answered yet, and its pace.

Each `say` carries a `ref` (a random client token). The message stays in the outbox,
shown as pending, until its echo (a `message` with the same `ref`) arrives; after a
reconnect the outbox is sent again, with the same refs, once logged in (the server
relays a ref it has seen before only once and echoes the original instead).

The outbox goes out in order, one message at a time: the next is sent once the server has
answered the one before (echo or error), so a refused message goes again before any later
one, and nothing overtakes it. (Sent back to back, a message the server refuses can be
overtaken by the next one, which a token refilled in between lets through.) Sends are
paced to the server's limit: a server that announces its `rate` and `burst` in
`hello.limits` (4.1) gets a copy of its token bucket here (one frame of the burst kept
spare, for network jitter), so it need not refuse us; from any server, `rate_limited`
holds every paced send back for `retry_after`. Leaving (`quit`) gives pending messages up
to `LEAVE_GRACE` seconds to go.

No I/O and no clock: `now` is passed in, as everywhere in the client model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

from lanchat import protocol
from lanchat.core.ratelimit import TokenBucket
from lanchat.protocol import Frame

SPARE_TOKENS = 1  # frames of the server's burst left unused: slack for network jitter
MAX_RETRY_AFTER = 60.0  # a longer retry_after is taken as this
LEAVE_GRACE = 2.0  # seconds pending messages get to go when the user leaves


@dataclass
class Outgoing:
    """A message the user sent that the server has not echoed yet."""

    ref: str
    text: str
    to: Optional[str]
    ts: float
    sent: bool = False  # sent on the current link, the answer not yet here
    room: Optional[str] = None  # the room it goes to (4.2); None: private, or no rooms

    def frame(self) -> Frame:
        """The say frame for this message: the same room and ref every time it is sent."""
        return protocol.say(self.text, to=self.to, ref=self.ref, room=self.room)


def announced_pace(limits: object) -> Optional[Tuple[float, int]]:
    """The (rate, burst) a 4.1 server announces in `hello.limits`; None if it does not."""
    if not isinstance(limits, dict):
        return None
    rate, burst = limits.get("rate"), limits.get("burst")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
        return None
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        return None
    return float(rate), burst


class Outbox:
    """The messages sent and not answered yet, in order, and when the next may go."""

    def __init__(self, ref_prefix: Optional[str] = None) -> None:
        self.messages: List[Outgoing] = []
        self._refs = 0
        # Random, so refs stay unique per user across runs: the server keeps them for good.
        self._ref_prefix = ref_prefix if ref_prefix is not None else os.urandom(8).hex()
        self.pace: Optional[Tuple[float, int]] = None  # the server's (rate, burst), if said
        self._bucket: Optional[TokenBucket] = None  # our copy of the server's bucket
        self._bucket_now = 0.0  # the time our bucket reads: the `now` of the current call
        self.paced_until = 0.0  # nothing paced is sent before this time
        self.leave_by: Optional[float] = None  # leaving: give up on pending ones then

    def add(self, text: str, to: Optional[str], now: float, room: Optional[str] = None) -> None:
        """Queue a message (to `room`, if the server has rooms) under a fresh ref."""
        self.messages.append(Outgoing(self.new_ref(), text, to, now, room=room))

    def new_ref(self) -> str:
        """A ref never used before by this user (a random prefix per run, a counter)."""
        self._refs += 1
        return f"{self._ref_prefix}-{self._refs}"

    def find(self, ref: object) -> Optional[Outgoing]:
        """The pending message with this ref, if any."""
        if ref is None:
            return None
        for outgoing in self.messages:
            if outgoing.ref == ref:
                return outgoing
        return None

    def unsent(self) -> None:
        """A new link, or none: nothing is in flight any more, all goes again."""
        for outgoing in self.messages:
            outgoing.sent = False

    def head_waits(self) -> bool:
        """True if the oldest message of the outbox is due to be sent (nothing in flight)."""
        return bool(self.messages) and not self.messages[0].sent

    def send_head(self) -> Frame:
        """The say frame of the oldest message, now in flight."""
        self.messages[0].sent = True
        return self.messages[0].frame()

    def start_pacing(self, now: float) -> None:
        """A fresh login: the server's bucket is full again, and so is our copy of it."""
        self.paced_until = 0.0
        self._bucket = None
        if self.pace is not None:
            rate, burst = self.pace
            self._bucket_now = now
            self._bucket = TokenBucket(
                rate, max(1, burst - SPARE_TOKENS), clock=lambda: self._bucket_now
            )

    def take_token(self, now: float) -> float:
        """Spend a token of our copy of the server's bucket: 0, else the seconds until one."""
        if self._bucket is None:  # a server that announced no pace: rate_limited tells us
            return 0.0
        self._bucket_now = now
        return self._bucket.take()

    def paced(self, now: float) -> bool:
        """True if a paced frame may go now; it spends the token. Else note when to try."""
        if now < self.paced_until:
            return False
        wait = self.take_token(now)
        if wait:
            self.paced_until = now + wait
        return not wait

    def hold_off(self, now: float, retry_after: object) -> None:
        """rate_limited: nothing paced goes for `retry_after` seconds (1 if it says none)."""
        valid = isinstance(retry_after, (int, float)) and retry_after > 0
        wait = float(retry_after) if valid else 1.0  # type: ignore[arg-type]
        self.paced_until = now + min(wait, MAX_RETRY_AFTER)
