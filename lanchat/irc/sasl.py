"""SASL PLAIN on the IRC port (IRCv3 `sasl`, RFC 4616): a registered lanchat name's owner
logs in from IRC with the name password set in a lanchat client (protocol 4.4).

The exchange comes before registration ends (the client holds CAP END until 903 or 904),
before any session, so the password is checked here, with the chat's check, on the pool
worker that feeds this connection's decoder. The check is bounded like any (at once and
per address: lanchat.core.passwordguard); one refused is a 904 that says when to try
again. The login that follows carries the password as `name_password`, and the session
decides who is logged in: it takes this check's `verified` record (handed over inside
the server, never from the wire) without hashing again, while that record still holds.
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, List, Optional, Tuple

from lanchat import names
from lanchat.core.namepassword import Verified
from lanchat.irc.lines import SERVER, line, numeric
from lanchat.protocol import ProtocolError

MECHANISM = "PLAIN"
CHUNK = 400  # bytes of base64 in one AUTHENTICATE; a full one means more is coming
MAX_CHUNKS = 3  # "authzid NUL authcid NUL password" of lanchat's sizes fits in fewer
MAX_FAILURES = 3  # 904s for a password (wrong, or not checked now) before it is closed

# (name, password, the client's address) -> the check's record if the password is that
# registered name's name password, else None; or ProtocolError (rate_limited ...)
Check = Callable[[str, str, str], Optional[Verified]]


class SaslPlain:
    """One connection's SASL: the exchange in progress, and the account once it is done."""

    def __init__(self, check: Check) -> None:
        self._check = check
        self.host = ""  # the client's address, set by the server: checks count against it
        self.account: Optional[str] = None  # the lanchat name logged in to
        self.password: Optional[str] = None  # its name password, for the login frame
        self.verified: Optional[Verified] = None  # the check that let it in
        self.failures = 0
        self._started = False  # AUTHENTICATE PLAIN came; the payload has not (all)
        self._chunks: List[str] = []

    def authenticate(self, nick: str, argument: str, registered: bool) -> bytes:
        """The answer to one `AUTHENTICATE argument` from a client called `nick`."""
        if self.account is not None:
            return numeric("907", nick, "You have already authenticated using SASL")
        if registered:
            return self._fail(nick, "SASL is only before registration here", counts=False)
        if argument == "*":
            self._reset()
            return numeric("906", nick, "SASL authentication aborted")
        if not self._started:
            if argument.upper() != MECHANISM:
                mechanisms = numeric("908", nick, MECHANISM, "are available SASL mechanisms")
                return mechanisms + self._fail(nick, "SASL authentication failed", counts=False)
            self._started = True
            return line(None, "AUTHENTICATE", "+")
        if len(argument) > CHUNK:
            return self._too_long(nick)
        if argument != "+":
            self._chunks.append(argument)
        if len(argument) == CHUNK:
            return b"" if len(self._chunks) < MAX_CHUNKS else self._too_long(nick)
        return self._finish(nick)

    def _finish(self, nick: str) -> bytes:
        payload = "".join(self._chunks)
        self._reset()
        credentials = _plain_credentials(payload)
        if credentials is None:
            return self._fail(nick, "SASL authentication failed")
        try:
            verified = self._check(*credentials, self.host)
        except ProtocolError as exc:  # rate_limited: when to try again
            return self._fail(nick, f"SASL authentication failed: {exc.message}")
        if verified is None:
            return self._fail(nick, "SASL authentication failed")
        self.account, self.password = credentials
        self.verified = verified
        who = nick or "*"
        mask = f"{who}!{who}@{SERVER}"
        logged_in = numeric(
            "900", nick, mask, self.account, f"You are now logged in as {self.account}"
        )
        return logged_in + numeric("903", nick, "SASL authentication successful")

    def _too_long(self, nick: str) -> bytes:
        self._reset()
        return numeric("905", nick, "SASL message too long")

    def _fail(self, nick: str, text: str, counts: bool = True) -> bytes:
        self._reset()
        self.failures += counts
        return numeric("904", nick, text)

    def _reset(self) -> None:
        self._started = False
        self._chunks = []


def _plain_credentials(payload: str) -> Optional[Tuple[str, str]]:
    """(name, password) from PLAIN's `authzid NUL authcid NUL password` in base64; None
    when it is not that, or authzid names somebody else (no one acts for another here)."""
    try:
        decoded = base64.b64decode(payload, validate=True).decode("utf-8")
        authzid, authcid, password = decoded.split("\0")
        name = names.validate_name(authcid)
    except (binascii.Error, UnicodeDecodeError, ValueError, ProtocolError):
        return None
    if authzid and names.name_key(authzid) != names.name_key(name):
        return None
    return name, password
