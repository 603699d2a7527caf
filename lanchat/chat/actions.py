"""What the client model asks its caller to do: the actions its doors return.

The window (`client_curses`) and plain mode (`chat.plain`) carry them out: send a frame,
ring the bell, drop the link, stop reconnecting, exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from lanchat.protocol import Frame


@dataclass(frozen=True)
class Send:
    """Send this frame to the server (dropped if there is no link)."""

    frame: Frame


@dataclass(frozen=True)
class Bell:
    """Ring the terminal bell."""


@dataclass(frozen=True)
class Drop:
    """Close the current link; the connection reconnects by itself."""


@dataclass(frozen=True)
class GiveUp:
    """Stop reconnecting: this server will never take us."""

    reason: str


@dataclass(frozen=True)
class Exit:
    """Leave the client with this exit code."""

    code: int


Action = Union[Send, Bell, Drop, GiveUp, Exit]
