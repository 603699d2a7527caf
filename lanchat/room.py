"""The chat room: who is online, the history, and fan-out of every frame.

The room knows members only as `Member`s (a name, a key, a resume token); it opens no
socket. Every frame it fans out is encoded once, and the same bytes go to each receiver.
One lock orders everything: a newcomer's `welcome` and every later frame reach each member
in the order the room decided them, and a room message is stored before anybody is sent it.
`join`, `say` and `leave` are all-or-nothing: each does every step that can fail before it
changes the room, so a failure (a full disk, a damaged history file) never leaves a name
online that nobody holds.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from lanchat import protocol
from lanchat.history import RESUME_CAP, History, StorageError, hash_token
from lanchat.protocol import Frame, ProtocolError, Token

log = logging.getLogger(__name__)

# Hands (member, bytes) pairs to the I/O layer in one call, so it can batch them.
Deliver = Callable[[Iterable[Tuple["Member", bytes]]], None]

REF_WINDOW = 1000  # refs remembered per user (room and private messages)


class Member:
    """A user as the room sees one: the name as chosen, its key, and its resume token."""

    def __init__(self, name: str) -> None:
        self.rename(name)
        self.resume_token = ""

    def rename(self, name: str) -> None:
        """Take a (validated) name; the key is what names collide on."""
        self.name = name
        self.key = protocol.name_key(name)


@dataclass(frozen=True)
class Resume:
    """What a returning client tells the room in its login (all optional)."""

    token: Optional[str] = None  # takes the name over from a stale connection
    last_id: Optional[int] = None  # the last message it saw ...
    history_id: Optional[str] = None  # ... in this history


class Room:
    """Membership, history and fan-out of one chat room.

    `deliver` is called with the room lock held and must not block: it queues bytes.
    """

    def __init__(
        self,
        deliver: Deliver,
        history: History,
        welcome_size: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deliver = deliver
        self._history = history
        self._welcome_size = welcome_size
        self._clock = clock
        self._lock = threading.Lock()
        self._members: Dict[str, Member] = {}  # by name key, in join order
        self._refs: Dict[str, collections.OrderedDict[str, Frame]] = {}  # by sender key

    def _now(self) -> float:
        return round(self._clock(), 3)

    @property
    def names(self) -> List[str]:
        """Every logged-in name, in the order they joined."""
        with self._lock:
            return [m.name for m in self._members.values()]

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
            online = [m.name for m in members.values()]
            welcome = self._welcome(member.name, online, resume, token)
            deliveries = [(member, protocol.encode(welcome))]
            others = [m for m in members.values() if m is not member]
            if stranger is not None:
                deliveries += self._reclaim_notices(stranger, others, now)
            if not takeover:
                joined = protocol.encode(protocol.join(member.name, now))
                deliveries += [(m, joined) for m in others]
            if held is None or owner:  # else a stranger's token: good until a restart only
                self._save_token(member.key, token, now)
            self._members = members
            member.resume_token = token
            self._deliver(deliveries)
            return stale

    def _welcome(self, name: str, online: List[str], resume: Resume, token: str) -> Frame:
        """The welcome, with the history the login asked for (a read that may fail)."""
        history, cut = self._history_for(resume)
        return _welcome_within_limit(
            name, online, history, cut, resume=token, history_id=self._history.history_id
        )

    def _reclaim_notices(
        self, stranger: Member, others: List[Member], now: float
    ) -> List[Tuple[Member, bytes]]:
        """What a stranger whose name is taken back gets, and what the others see."""
        notice = protocol.error(
            "name_reclaimed", f"{stranger.name!r} was taken back by the person who had it."
        )
        left = protocol.encode(protocol.leave(stranger.name, now, "error"))
        return [(stranger, protocol.encode(notice))] + [(m, left) for m in others]

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
            left = protocol.encode(protocol.leave(member.name, now, reason))
            del self._members[member.key]
            if announce and self._members:
                self._deliver([(m, left) for m in self._members.values()])
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
    ) -> Frame:
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
                echo = _with_ref(original, ref)
                self._deliver([(sender, protocol.encode(echo))])
                return original
            receivers: Sequence[Member]
            if to is not None:
                recipient = self._members.get(protocol.name_key(to))
                if recipient is None:
                    raise ProtocolError("no_such_user", f"{to!r} is not online.", ref)
                to = recipient.name
                receivers = [] if recipient is sender else [recipient]
            else:
                receivers = [m for m in self._members.values() if m is not sender]
            with _not_stored_on_failure(ref):
                frame = self._store(sender, text, to, ref)
            data = protocol.encode(frame)
            own = data if ref is None else protocol.encode(_with_ref(frame, ref))
            if ref is not None:
                self._remember(sender, ref, frame)
            self._deliver([(sender, own)] + [(m, data) for m in receivers])
            return frame

    def _store(self, sender: Member, text: str, to: Optional[str], ref: Optional[Token]) -> Frame:
        """The message with its new id; a room message is stored before anybody sees it."""
        frame = protocol.message(self._history.next_id(), self._now(), sender.name, text, to)
        if to is None:
            self._history.add(frame, sender.key, ref)
        return frame

    def _resent(self, sender: Member, text: str, ref: Optional[Token]) -> Optional[Frame]:
        if ref is None:
            return None
        refs = self._refs.get(sender.key)
        original = refs.get(json.dumps(ref)) if refs is not None else None
        if original is None:
            original = self._history.find_ref(sender.key, ref)  # from before a restart
        return original if original is not None and original["text"] == text else None

    def _remember(self, sender: Member, ref: Token, frame: Frame) -> None:
        refs = self._refs.setdefault(sender.key, collections.OrderedDict())
        refs[json.dumps(ref)] = frame
        if len(refs) > REF_WINDOW:
            refs.popitem(last=False)


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


def _with_ref(frame: Frame, ref: Optional[Token]) -> Frame:
    return protocol.message(
        frame["id"], frame["ts"], frame["from"], frame["text"], frame.get("to"), ref
    )


def _welcome_within_limit(
    name: str, online: List[str], history: List[Frame], cut: bool, **extensions: object
) -> Frame:
    """The welcome frame, with the oldest history dropped until it fits max_server_frame."""
    while True:
        frame = protocol.welcome(name, online, history, truncated=cut or None, **extensions)
        if not history or len(protocol.encode(frame)) <= protocol.MAX_SERVER_FRAME:
            return frame
        history = history[len(history) // 10 + 1 :]
        cut = True
