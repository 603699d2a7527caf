"""A bound on name password checks (protocol 4.4), so guessing cannot freeze the server.

A check hashes for about 0.1 s of a core on a pool worker (lanchat.core.namepassword).
Many connections guessing at once would keep every worker hashing and delivery would
stop for everybody. So `PasswordGuard.check` runs at most `at_once` checks in the whole
server (fewer than the workers): one that cannot start at once is refused at once, as
`rate_limited`, never queued; and each address may fail `FAILURES` checks in `WINDOW`
seconds, then it is refused without hashing until the oldest failure is that old.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List

from lanchat.core.admission import address_key
from lanchat.protocol import ProtocolError

BUSY_RETRY = 0.5  # seconds a check refused for want of a free slot is told to wait


class PasswordGuard:
    """Runs name password checks within the server's bounds; safe from any thread.

    One check at once by default: on a server of two workers or more, a worker (and on a
    small machine, a core) always stays free for delivery."""

    FAILURES = 5  # failed checks an address may have in WINDOW seconds
    WINDOW = 60.0

    def __init__(self, at_once: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.at_once = at_once
        self._clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._failures: Dict[str, List[float]] = {}  # address -> when its checks failed
        self._swept_at = clock()

    def check(self, host: str, verify: Callable[[], bool]) -> bool:
        """What `verify()` says, if a check from `host` may run now; else rate_limited
        with retry_after (seconds), and nothing is hashed."""
        key = address_key(host)
        with self._lock:
            now = self._clock()
            self._forget_old(now)
            failures = [when for when in self._failures.get(key, ()) if when > now - self.WINDOW]
            if len(failures) >= self.FAILURES:
                wait = failures[0] + self.WINDOW - now
                raise _refusal("Too many wrong passwords from your address", wait)
            if self._running >= self.at_once:
                raise _refusal("The server is busy checking passwords", BUSY_RETRY)
            self._running += 1
            # Counted as failed until it passes: checks of one address running at once
            # cannot go past its budget.
            failures.append(now)
            self._failures[key] = failures
        passed = False
        try:
            passed = verify()
        finally:
            with self._lock:
                self._running -= 1
                failures = self._failures.get(key, [])
                if passed and now in failures:
                    failures.remove(now)
        return passed

    def _forget_old(self, now: float) -> None:
        """Once a window: drop the addresses with no failure within it (the table holds
        no more addresses than checks can fail in two windows, one at a time)."""
        if now < self._swept_at + self.WINDOW:
            return
        self._swept_at = now
        self._failures = {
            key: failures
            for key, failures in self._failures.items()
            if failures and failures[-1] > now - self.WINDOW
        }


def _refusal(why: str, wait: float) -> ProtocolError:
    seconds = round(max(wait, 0.001), 3)
    return ProtocolError("rate_limited", f"{why}; try again in {seconds:g} s.", retry_after=seconds)
