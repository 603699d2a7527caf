"""Durations as operators type them, in the chat client and the server console alike:
`90s`, `30m`, `2h`, `7d`, or a bare number of seconds."""

from __future__ import annotations

import re
from typing import Optional

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")  # ASCII digits only


class ZeroDuration(ValueError):
    """A duration of no time at all: refused, so that it is never read as "for good"."""


def parse_duration(word: str) -> Optional[float]:
    """The seconds a word such as `90s`, `30m`, `2h`, `7d` or `15` says (an int when
    whole); None for a word that is no duration; ZeroDuration for a zero one."""
    match = _DURATION.fullmatch(word.strip().lower())
    if match is None:
        return None
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise ZeroDuration(f"a duration is more than zero, not {word!r}")
    return int(seconds) if seconds.is_integer() else seconds
