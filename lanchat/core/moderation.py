"""Who keeps order on a server, and the rules they set (protocol 4.3): the operators'
names, bans (kept in the history file, until they expire), mutes (in memory, across a
person's reconnects) and the message of the day.

`Moderation` is state and rules only: the chat asks it, under the chat's lock, whether a
login is banned or a member muted; `lanchat.core.operators` changes it. Every change that
is kept is written to the history first, so a failed write changes nothing (`not_stored`).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from lanchat import names
from lanchat.core.admission import address_key
from lanchat.core.history import BanRow, History, StorageError
from lanchat.protocol import ProtocolError

log = logging.getLogger(__name__)

BAN_KINDS = ("identity", "name", "address")


@dataclass(frozen=True)
class Ban:
    """One ban: what it matches (`kind`: an identity key, a name key or an address),
    who it was aimed at as the operator spelt it, by whom, why, and until when (None: for
    good; wall-clock seconds)."""

    kind: str
    match: str
    target: str
    by: str
    reason: str = ""
    until: Optional[float] = None

    @classmethod
    def from_row(cls, row: BanRow) -> Ban:
        return cls(*row)

    def row(self) -> BanRow:
        """The ban as the history keeps it."""
        return (self.kind, self.match, self.target, self.by, self.reason, self.until)

    def entry(self) -> Tuple[Tuple[str, Any], ...]:
        """The ban as an entry of `ban_list`."""
        fields: Tuple[Tuple[str, Any], ...] = (
            ("target", self.target),
            ("kind", self.kind),
            ("by", self.by),
            ("reason", self.reason),
        )
        return fields if self.until is None else (*fields, ("until", self.until))

    def matches(self, identity: Optional[str], name_key: str, address: str) -> bool:
        """True if it bans somebody of this identity key, name key and address."""
        if self.kind == "identity":
            return identity == self.match
        if self.kind == "name":
            return name_key == self.match
        return bool(address) and address_key(address) == self.match

    def in_force(self, now: float) -> bool:
        return self.until is None or self.until > now


def address_target(target: str) -> Optional[str]:
    """The address a ban target names (as `address_key` spells it), None for a name."""
    try:
        ipaddress.ip_address(target)
    except ValueError:
        return None
    return address_key(target)


@dataclass(frozen=True)
class Mute:
    """Somebody may not speak, until `until` (None: while the server runs)."""

    by: str
    until: Optional[float] = None


class Moderation:
    """The operators' names, the bans, the mutes and the message of the day of a server.

    Safe from any thread (its own lock); bans and the motd are read from the history once,
    at start, and written through to it.
    """

    def __init__(self, history: History, operators: Iterable[str] = ()) -> None:
        self._history = history
        self._lock = threading.Lock()
        self.operators = frozenset(names.name_key(name) for name in operators)
        self._mutes: Dict[str, Mute] = {}  # by name key
        try:
            rows = history.load_bans()
            self.motd = history.motd()
        except StorageError as exc:
            log.error("bans and the message of the day unknown: %s", exc)
            rows, self.motd = [], ""
        self._bans: Dict[Tuple[str, str], Ban] = {}
        for row in rows:
            ban = Ban.from_row(row)
            self._bans[ban.kind, ban.match] = ban

    def is_operator(self, name_key: str) -> bool:
        """True if the name is one of the server's operators (registered or not)."""
        return name_key in self.operators

    # -- bans ------------------------------------------------------------------------------

    def ban_of(
        self, identity: Optional[str], name_key: str, address: str, now: float
    ) -> Optional[Ban]:
        """The ban in force that matches somebody, if any."""
        with self._lock:
            for ban in self._bans.values():
                if ban.in_force(now) and ban.matches(identity, name_key, address):
                    return ban
        return None

    def add_ban(self, ban: Ban) -> None:
        """Keep a ban (in place of one with the same kind and match); not_stored if the
        history cannot keep it."""
        with self._lock:
            _write(self._history.save_ban, ban.row())
            self._bans[ban.kind, ban.match] = ban

    def lift(self, target: str, now: float) -> List[Ban]:
        """Lift every ban aimed at `target` (a name, in any spelling that collides, or an
        address); return those lifted (in force)."""
        address = address_target(target)
        key = None if address else names.name_key(target)
        with self._lock:
            found = [
                ban
                for ban in self._bans.values()
                if (ban.match == address if address else names.name_key(ban.target) == key)
            ]
            for ban in found:
                _write(self._history.delete_ban, ban.kind, ban.match)
                del self._bans[ban.kind, ban.match]
        return [ban for ban in found if ban.in_force(now)]

    def bans(self, now: float) -> List[Ban]:
        """The bans in force, oldest first; the expired ones are forgotten."""
        with self._lock:
            for ban in [b for b in self._bans.values() if not b.in_force(now)]:
                try:
                    self._history.delete_ban(ban.kind, ban.match)
                except StorageError:
                    continue  # it is out of force all the same; forgotten next time
                del self._bans[ban.kind, ban.match]
            return [ban for ban in self._bans.values() if ban.in_force(now)]

    # -- mutes -----------------------------------------------------------------------------

    def mute(self, name_key: str, mute: Mute) -> None:
        """Stop the name from speaking."""
        with self._lock:
            self._mutes[name_key] = mute

    def unmute(self, name_key: str, now: float) -> bool:
        """Let the name speak again; False if it was not muted."""
        with self._lock:
            mute = self._mutes.pop(name_key, None)
        return mute is not None and (mute.until is None or mute.until > now)

    def mute_of(self, name_key: str, now: float) -> Optional[Mute]:
        """The mute in force on the name, if any."""
        with self._lock:
            mute = self._mutes.get(name_key)
            if mute is not None and mute.until is not None and mute.until <= now:
                del self._mutes[name_key]
                return None
            return mute

    def follow(self, old_key: str, new_key: str) -> None:
        """A muted member took another name: the mute holds on both."""
        with self._lock:
            mute = self._mutes.get(old_key)
            if mute is not None:
                self._mutes[new_key] = mute

    # -- the message of the day ------------------------------------------------------------

    def set_motd(self, text: str) -> None:
        """Keep the message of the day ("" clears it); not_stored if it cannot be kept."""
        with self._lock:
            _write(self._history.save_motd, text)
            self.motd = text


def _write(method: Any, *arguments: Any) -> None:
    """Call a history write; its StorageError becomes not_stored (nothing changed)."""
    try:
        method(*arguments)
    except StorageError:
        raise ProtocolError("not_stored", "The server cannot keep that now.") from None
