"""Picking one of several servers found: the list the window shows before it connects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple


@dataclass
class ServerPicker:
    """A list of found servers and the highlighted one; Enter picks, Esc or q cancels.

    `servers` holds (label, joinable) pairs; incompatible servers are listed, never picked.
    """

    servers: Sequence[Tuple[str, bool]]
    selected: int = 0
    done: Optional[bool] = None  # True: picked `selected`; False: cancelled
    _keys: Dict[str, int] = field(
        default_factory=lambda: {"KEY_UP": -1, "k": -1, "KEY_DOWN": 1, "j": 1}
    )

    def __post_init__(self) -> None:
        joinable = [i for i, (_, ok) in enumerate(self.servers) if ok]
        self.selected = joinable[0] if joinable else 0

    def handle_key(self, key: str) -> None:
        """Move, pick or cancel."""
        step = self._keys.get(key)
        if step is not None:
            position = self.selected
            while 0 <= position + step < len(self.servers):
                position += step
                if self.servers[position][1]:
                    self.selected = position
                    break
        elif key in ("\n", "\r", "KEY_ENTER"):
            if self.servers and self.servers[self.selected][1]:
                self.done = True
        elif key in ("\x1b", "q", "\x03", "\x04"):
            self.done = False
