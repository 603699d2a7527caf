"""The chat room: who is online, the history, and fan-out of every event.

The room knows members only as `Member`s (a name, a key, a resume token, the codec of its
transport); it opens no socket. It decides typed events (`lanchat.core.events`) and fans each
out encoded once per codec: the same bytes go to every receiver of that codec. One lock
orders everything: a newcomer's `welcome` and every later frame reach each member
in the order the room decided them, and a room message is stored before anybody is sent it.
`join`, `say` and `leave` are all-or-nothing: each does every step that can fail before it
changes the room, so a failure (a full disk, a damaged history file) never leaves a name
online that nobody holds.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from lanchat import names, protocol
from lanchat.core import events
from lanchat.core.history import RESUME_CAP, History, StorageError, hash_token
from lanchat.core.transport import LANCHAT, Codec, encode_once, message_event
from lanchat.protocol import Frame, ProtocolError, Token

log = logging.getLogger(__name__)

# Hands (member, bytes) pairs to the I/O layer in one call, so it can batch them.
Deliver = Callable[[Iterable[Tuple["Member", bytes]]], None]

# Schedules a call a little later, off the caller's stack (the server's I/O loop does).
Schedule = Callable[[Callable[[], None]], None]

REF_WINDOW = 1000  # refs remembered per user (room and private messages)


class Member:
    """A user as the room sees one: the name as chosen, its key, its resume token, and
    the codec its transport speaks; `batch_presence` members get joins and leaves in
    `presence` batches (protocol 4.1)."""

    def __init__(self, name: str, codec: Codec = LANCHAT) -> None:
        self.rename(name)
        self.resume_token = ""
        self.codec = codec
        self.batch_presence = False

    def rename(self, name: str) -> None:
        """Take a (validated) name; the key is what names collide on."""
        self.name = name
        self.key = names.name_key(name)


@dataclass(frozen=True)
class Resume:
    """What a returning client tells the room in its login (all optional)."""

    token: Optional[str] = None  # takes the name over from a stale connection
    last_id: Optional[int] = None  # the last message it saw ...
    history_id: Optional[str] = None  # ... in this history


class Room:
    """Membership, history and fan-out of one chat room.

    `deliver` is called with the room lock held and must not block: it queues bytes.
    Joins and leaves for `batch_presence` members wait for a `flush_presence`, which the
    room asks `schedule` for (without one, each goes out at once, in a batch of one).
    """

    def __init__(
        self,
        deliver: Deliver,
        history: History,
        welcome_size: int = 100,
        clock: Callable[[], float] = time.time,
        schedule: Optional[Schedule] = None,
    ) -> None:
        self._deliver = deliver
        self._history = history
        self._welcome_size = welcome_size
        self._clock = clock
        self._schedule = schedule
        self._lock = threading.Lock()
        self._members: Dict[str, Member] = {}  # by name key, in join order
        self._online: Optional[Tuple[str, ...]] = ()  # their names; None: to be counted again
        self._batch_members = 0  # how many of them take presence in batches
        self._refs: Dict[str, collections.OrderedDict[str, events.Message]] = {}  # by sender key
        self._presence: List[events.PresenceChange] = []  # not yet sent to batch members

    def _now(self) -> float:
        return round(self._clock(), 3)

    @property
    def names(self) -> List[str]:
        """Every logged-in name, in the order they joined."""
        with self._lock:
            if self._online is None:
                self._online = tuple(m.name for m in self._members.values())
            return list(self._online)

    def __len__(self) -> int:
        return len(self._members)

    def join(self, member: Member, resume: Resume = Resume()) -> Optional[Member]:
        """Add a member, welcome it and tell everybody else.

        A name in use raises name_taken, unless the login presents a resume token that
        holds it. The token of that very session takes the name over silently; the name's
        own token (`History.token_hash`: the newest one its owner was given, kept across
        restarts) also takes it back from a stranger, who gets `name_reclaimed` and is seen
        leaving. Either way the member replaced is returned, for the caller to close
        without a leave of its own.
        """
        with self._lock:
            now = self._now()
            stale = self._members.get(member.key)
            held = self._held_token(member.key, now)
            owner = held is not None and _same_secret(_hash_of(resume.token), held)
            takeover = stale is not None and _same_secret(resume.token, stale.resume_token)
            if stale is not None and not (takeover or owner):
                raise ProtocolError("name_taken", f"{stale.name!r} is online already.")
            stranger = None if takeover else stale  # only the name's own token gets here
            token = secrets.token_hex(16)
            members = dict(self._members)
            if stranger is not None:
                del members[member.key]  # the stranger leaves; the owner joins at the end
            members[member.key] = member  # a takeover keeps the old place in the list
            online = tuple(m.name for m in members.values())
            welcome = self._welcome(member.name, online, resume, token)
            others = [m for m in members.values() if m is not member]
            if held is None or owner:  # else a stranger's token: good until a restart only
                self._save_token(member.key, token, now)
            self._members = members
            self._online = online
            self._batch_members += member.batch_presence - (stale.batch_presence if stale else 0)
            member.resume_token = token
            deliveries = _encoded(welcome, [member])
            if stranger is not None:
                notice = events.Error(
                    "name_reclaimed", f"{stranger.name!r} was taken back by the person who had it."
                )
                deliveries += _encoded(notice, [stranger])
                deliveries += self._announce(events.Left(stranger.name, now, "error"), others)
            if not takeover:
                deliveries += self._announce(events.Joined(member.name, now), others)
            self._deliver(deliveries)
            return stale

    def _welcome(
        self, name: str, online: Tuple[str, ...], resume: Resume, token: str
    ) -> events.Welcome:
        """The welcome, with the history the login asked for (a read that may fail)."""
        history, cut = self._history_for(resume)
        messages = tuple(message_event(frame) for frame in history)
        return events.Welcome(name, online, messages, cut, token, self._history.history_id)

    def _announce(
        self, change: events.PresenceChange, receivers: Sequence[Member]
    ) -> List[Tuple[Member, bytes]]:
        """A join or leave for `receivers`: at once for most, in the next presence batch for
        those who asked for batches (lock held)."""
        if not self._batch_members:  # the usual room: nobody asked for batches
            singles = list(receivers)
        elif self._batch_members == len(self._members):
            singles = []
        else:
            singles = [m for m in receivers if not m.batch_presence]
        if len(singles) < len(receivers):
            if self._schedule is None:
                batched = [m for m in receivers if m.batch_presence]
                return _encoded(change, singles) + _encoded(events.Presence((change,)), batched)
            if not self._presence:
                self._schedule(self.flush_presence)
            self._presence.append(change)
        return _encoded(change, singles)

    def flush_presence(self) -> None:
        """Send the joins and leaves waiting since the last batch, as one `presence` event,
        to every member that asked for batches."""
        with self._lock:
            changes, self._presence = tuple(self._presence), []
            receivers = [m for m in self._members.values() if m.batch_presence]
            if changes and receivers:
                self._deliver(_encoded(events.Presence(changes), receivers))

    def _held_token(self, name_key: str, now: float) -> Optional[str]:
        """The hash of the name's resume token; None if none, or if it cannot be read (a
        damaged token table must not keep everybody out: it only costs the reclaim)."""
        try:
            return self._history.token_hash(name_key, now)
        except StorageError as exc:
            log.warning("resume tokens unknown: %s", exc)
            return None

    def _save_token(self, name_key: str, token: str, now: float) -> None:
        try:
            self._history.save_token(name_key, token, now)
        except StorageError:
            pass  # the token then holds the name until a restart only (the history logs it)

    def _history_for(self, resume: Resume) -> Tuple[List[Frame], bool]:
        if resume.last_id is not None and resume.history_id == self._history.history_id:
            return self._history.after(resume.last_id, RESUME_CAP)
        return self._history.recent(self._welcome_size), False

    def leave(self, member: Member, reason: str, announce: bool = True) -> bool:
        """Remove a member and, with `announce`, tell the others; False if it was not in.

        A quit ends the member's resume token; any other leave counts as its last use.
        """
        with self._lock:
            if self._members.get(member.key) is not member:
                return False
            now = self._now()
            del self._members[member.key]
            self._online = None
            self._batch_members -= member.batch_presence
            if announce and self._members:
                left = events.Left(member.name, now, reason)
                self._deliver(self._announce(left, list(self._members.values())))
            try:
                if reason == "quit":
                    self._history.forget_token(member.key, member.resume_token)
                else:
                    self._history.touch_token(member.key, member.resume_token, now)
            except StorageError:
                pass  # the token just expires sooner (the history logs it)
            return True

    def say(
        self, sender: Member, text: str, to: Optional[str] = None, ref: Optional[Token] = None
    ) -> events.Message:
        """Relay a message (text already cleaned) to the room or to one user; return it.

        A ref this sender already used for the same text is a resend: it is not relayed
        again, and the sender alone gets the original back with its ref.
        """
        with self._lock:
            if self._members.get(sender.key) is not sender:  # replaced by a resumed login
                raise ProtocolError("not_logged_in", "This session was taken over.", ref)
            with _not_stored_on_failure(ref):
                original = self._resent(sender, text, ref)
            if original is not None:
                self._deliver(_encoded(dataclasses.replace(original, ref=ref), [sender]))
                return original
            receivers: Sequence[Member]
            if to is not None:
                recipient = self._members.get(names.name_key(to))
                if recipient is None:
                    raise ProtocolError("no_such_user", f"{to!r} is not online.", ref)
                to = recipient.name
                receivers = [] if recipient is sender else [recipient]
            else:
                receivers = [m for m in self._members.values() if m is not sender]
            with _not_stored_on_failure(ref):
                message = self._store(sender, text, to, ref)
            own = message if ref is None else dataclasses.replace(message, ref=ref)
            if ref is not None:
                self._remember(sender, ref, message)
            self._deliver(_encoded(own, [sender]) + _encoded(message, receivers))
            return message

    def _store(
        self, sender: Member, text: str, to: Optional[str], ref: Optional[Token]
    ) -> events.Message:
        """The message with its new id; a room message is stored before anybody sees it."""
        message = events.Message(self._history.next_id(), self._now(), sender.name, text, to)
        if to is None:
            frame = protocol.message(message.id, message.ts, message.sender, text)
            self._history.add(frame, sender.key, ref)
        return message

    def _resent(self, sender: Member, text: str, ref: Optional[Token]) -> Optional[events.Message]:
        if ref is None:
            return None
        refs = self._refs.get(sender.key)
        original = refs.get(json.dumps(ref)) if refs is not None else None
        if original is None:
            stored = self._history.find_ref(sender.key, ref)  # from before a restart
            original = message_event(stored) if stored is not None else None
        return original if original is not None and original.text == text else None

    def _remember(self, sender: Member, ref: Token, message: events.Message) -> None:
        refs = self._refs.setdefault(sender.key, collections.OrderedDict())
        refs[json.dumps(ref)] = message
        if len(refs) > REF_WINDOW:
            refs.popitem(last=False)


def _encoded(event: events.Event, receivers: Iterable[Member]) -> List[Tuple[Member, bytes]]:
    """The event's bytes for each receiver, encoded once per codec."""
    cache: Dict[str, bytes] = {}
    codec: Optional[Codec] = None
    data = b""
    pairs = []
    for member in receivers:  # one fan-out is a run of members of one codec, mostly
        if member.codec is not codec:
            codec = member.codec
            data = encode_once(codec, event, cache)
        pairs.append((member, data))
    return pairs


def _same_secret(given: Optional[str], expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), expected)


def _hash_of(token: Optional[str]) -> Optional[str]:
    return hash_token(token) if token else None


@contextlib.contextmanager
def _not_stored_on_failure(ref: Optional[Token]) -> Iterator[None]:
    """Turn a history failure into not_stored: the message is neither stored nor relayed."""
    try:
        yield
    except StorageError:
        raise ProtocolError("not_stored", "The server cannot store messages now.", ref) from None
