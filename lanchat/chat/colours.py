"""Which colour each name is drawn in: one of the window's palette, kept for good.

A name's preferred colour comes from the name itself, so it is the same in every client;
`NameColours` keeps those online apart while the palette allows.
"""

from __future__ import annotations

import zlib
from typing import Dict, Sequence, Set

from lanchat import names

NAME_COLOURS = 6  # colours for names in the palette of the window
MAX_COLOURED = 1000  # names whose colour is remembered; beyond, only those online


def preferred_colour(name: str) -> int:
    """The colour a name gets when it is free: taken from the name, so the same everywhere."""
    return zlib.crc32(names.name_key(name).encode("utf-8")) % NAME_COLOURS


class NameColours:
    """Which colour of the palette each name is drawn in.

    A name keeps its colour for as long as the client runs, so its lines do not change
    colour. Those online get distinct colours while the palette allows: one who comes
    online takes their earlier colour, else their preferred one, else a free one, if it
    is not in use by someone online already.
    """

    def __init__(self) -> None:
        self._given: Dict[str, int] = {}  # name_key -> colour
        self._online: Set[str] = set()  # the name keys online at the last `give`

    def of(self, name: str) -> int:
        """The colour of this name."""
        key = names.name_key(name)
        colour = self._given.get(key)
        return colour if colour is not None else preferred_colour(name)

    def give(self, online: Sequence[str]) -> None:
        """Colour the people now online: those who were online keep their colours."""
        keys = {names.name_key(name): name for name in online}
        in_use: Set[int] = set()
        newcomers = []
        for key in keys:  # those online before first: they never change colour
            colour = self._given.get(key)
            if key in self._online and colour is not None and colour not in in_use:
                in_use.add(colour)
            else:
                newcomers.append(key)
        for key in newcomers:
            earlier = self._given.get(key)
            preferred = preferred_colour(keys[key])
            wanted = (earlier, preferred, *range(NAME_COLOURS))
            free = [c for c in wanted if c is not None and c not in in_use]
            # more people than colours: some share, and nobody's colour changes for it
            colour = free[0] if free else (earlier if earlier is not None else preferred)
            self._given[key] = colour
            in_use.add(colour)
        self._online = set(keys)
        if len(self._given) > MAX_COLOURED:
            self._given = {k: c for k, c in self._given.items() if k in self._online}
