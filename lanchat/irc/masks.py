"""IRC masks (`*` any run of characters, `?` one) and the filters of `LIST`.

Both compare without case, the way lanchat's names and rooms compare (casefold).
"""

from __future__ import annotations

from typing import List, Optional

ELIST = "MNU"  # what LIST takes (ISUPPORT): masks, negative masks, user counts


def matches(mask: str, text: str) -> bool:
    """Whether `text` matches an IRC mask, without case.

    The usual walk that goes back to the last `*` on a mismatch: at most len(mask) x
    len(text) steps, where a regular expression of many `*` may take exponential time
    (fnmatch before Python 3.9)."""
    mask, text = mask.casefold(), text.casefold()
    m = t = 0
    star, star_t = -1, 0  # the last `*` passed in mask, and where text stood then
    while t < len(text):
        if m < len(mask) and mask[m] == "*":
            star, star_t = m, t
            m += 1
        elif m < len(mask) and mask[m] in ("?", text[t]):
            m += 1
            t += 1
        elif star >= 0:  # let the last `*` take one more character
            star_t += 1
            m, t = star + 1, star_t
        else:
            return False
    return all(c == "*" for c in mask[m:])


def has_wildcards(mask: str) -> bool:
    """Whether a mask is a pattern rather than a plain nick or channel name."""
    return "*" in mask or "?" in mask


class RoomFilter:
    """What `LIST` asked for: `>n` / `<n` (more / fewer users than n), masks, and `!mask`
    (not matching), comma-separated; a room is listed when it passes every kind given."""

    def __init__(self, spec: str = "") -> None:
        self.more_than: Optional[int] = None
        self.fewer_than: Optional[int] = None
        self.masks: List[str] = []
        self.not_masks: List[str] = []
        for item in filter(None, spec.split(",")):
            if item[0] in "<>" and item[1:].isdigit():
                if item[0] == ">":
                    self.more_than = int(item[1:])
                else:
                    self.fewer_than = int(item[1:])
            elif item.startswith("!"):
                self.not_masks.append(item[1:])
            else:
                self.masks.append(item)

    def passes(self, room: str, users: int) -> bool:
        """Whether a room of this many users is listed."""
        if self.more_than is not None and users <= self.more_than:
            return False
        if self.fewer_than is not None and users >= self.fewer_than:
            return False
        if self.masks and not any(matches(m, room) for m in self.masks):
            return False
        return not any(matches(m, room) for m in self.not_masks)
