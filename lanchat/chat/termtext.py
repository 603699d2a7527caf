"""Text as a terminal shows it: cell widths, character clusters, and what may be drawn.

Pure functions used by the line editor and the client view. A terminal cell count is not
a code point count: East Asian wide and fullwidth characters take two cells, combining
marks and joiners none. Received text is made safe here before it is ever drawn: no
control character, bidi override or line separator reaches the screen.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import List

from lanchat import names

_ZWJ = "\u200d"
_ZERO_WIDTH_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
# Line and paragraph separators move the cursor on some terminals; bidi marks reorder.
_SAFE_TABLE = {0x2028: " ", 0x2029: " ", 0x200E: None, 0x200F: None, 0x061C: None}


@lru_cache(maxsize=4096)
def char_width(char: str) -> int:
    """The cells one code point takes: 0 for marks, joiners and controls, 2 for wide."""
    category = unicodedata.category(char)
    if category in _ZERO_WIDTH_CATEGORIES or category == "Cc" or unicodedata.combining(char):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


_BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def is_typeable(char: str) -> bool:
    """True for a character a person may type into a message: printable ones, and the
    invisible joiners scripts and emoji need (ZWJ, ZWNJ), but no control or bidi override."""
    if char.isprintable() or char == " ":
        return True
    return unicodedata.category(char) == "Cf" and ord(char) not in _BIDI_CONTROLS


def text_width(text: str) -> int:
    """The cells a whole string takes."""
    return sum(char_width(c) for c in text)


def safe_text(text: str) -> str:
    """Received text as it may be drawn: no controls, bidi overrides or line separators."""
    return names.strip_controls(text).translate(_SAFE_TABLE)


def cluster_end(text: str, index: int) -> int:
    """The index just after the character cluster that starts at `index`.

    A cluster is one visible character: a base code point and the zero-width ones after it,
    and after a zero-width joiner the next code point too (emoji sequences).
    """
    if index >= len(text):
        return len(text)
    end = index + 1
    while end < len(text):
        if text[end - 1] == _ZWJ:
            end += 1
        elif char_width(text[end]) == 0:
            end += 1
        else:
            break
    return min(end, len(text))


def cluster_start(text: str, index: int) -> int:
    """The index where the cluster that ends at `index` (exclusive) begins."""
    if index <= 0:
        return 0
    start = 0
    position = 0
    while position < index:
        start = position
        position = cluster_end(text, position)
    return start


def clusters(text: str) -> List[str]:
    """The text cut into clusters, each drawn as one character."""
    out = []
    position = 0
    while position < len(text):
        end = cluster_end(text, position)
        out.append(text[position:end])
        position = end
    return out


def fit(text: str, width: int) -> str:
    """The longest start of `text` that fits in `width` cells, never cutting a cluster."""
    out = []
    used = 0
    for cluster in clusters(text):
        cells = text_width(cluster)
        if used + cells > width:
            break
        out.append(cluster)
        used += cells
    return "".join(out)


def pad(text: str, width: int) -> str:
    """`text` cut to `width` cells and filled with spaces to exactly `width` cells."""
    cut = fit(text, width)
    return cut + " " * (width - text_width(cut))
