"""A token bucket: how many frames a client may send, on average and at once; and how many
refused frames make it a flooder."""

from __future__ import annotations

import math
import time
from typing import Callable

# A client may have this many frames refused as rate_limited at once, and FLOOD_RATE more
# each second; the next refusal is `flooding` and closes the connection (docs/design.md).
FLOOD_BURST = 1000
FLOOD_RATE = 200


class TokenBucket:
    """Allows `burst` frames at once, refilled at `rate` frames per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def take(self) -> float:
        """Spend one token; return 0 if allowed, else the seconds until one is available.

        The wait is rounded up to a whole millisecond with at least a microsecond to spare
        (more than the float error of a clock reading): it is never 0, and a client that
        waits that long finds a token.
        """
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        wait_ms = (1 - self._tokens) / self.rate * 1000
        return math.ceil(wait_ms + 0.001) / 1000
