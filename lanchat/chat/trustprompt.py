"""The window's question on meeting a TLS server for the first time: trust its
certificate (y) or do not connect (n)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from lanchat.chat.trust import Meeting


@dataclass
class TrustPrompt:
    """A first meeting shown to a person; `done` is True (trust it), False (do not
    connect) or None (not answered yet). Only y and n answer: Enter alone must not
    trust a certificate by accident."""

    meeting: Meeting
    done: Optional[bool] = None

    def handle_key(self, key: str) -> None:
        """y trusts; n, Esc, q or Ctrl-C refuses; other keys do nothing."""
        if key in ("y", "Y"):
            self.done = True
        elif key in ("n", "N", "\x1b", "q", "\x03", "\x04"):
            self.done = False

    def lines(self) -> List[str]:
        """What the window shows, one string per line (the fingerprint over two)."""
        pairs = self.meeting.fingerprint.split(":", 1)[1].split(":")
        half = (len(pairs) + 1) // 2
        if self.meeting.announced:
            check = "It is the one the server's discovery answer announced."
        else:
            check = "Compare it with the one the server printed at start (TLS: SHA256:...)."
        return [
            f"Server '{self.meeting.name}' at {self.meeting.where} is new to this client.",
            "Its TLS certificate's SHA-256 fingerprint is:",
            "",
            "  " + ":".join(pairs[:half]) + ":",
            "  " + ":".join(pairs[half:]),
            "",
            check,
            "Once trusted, it is remembered; a different certificate later is refused.",
        ]
