"""The chat: who is logged in, the rooms, the history, and fan-out of every event.

The chat knows users only as `Member`s (a name, a key, a resume token, the codec of its
transport, its rooms); it opens no socket. It decides typed events
(`lanchat.core.events`) and fans each out encoded once per codec: the same bytes go to
every receiver of that codec. One lock orders everything: a newcomer's `welcome` and
every later frame reach each member in the order the chat decided them, and a room message
is stored before anybody is sent it. Every change (login, logout, join, part, say, topic)
is all-or-nothing: each does every step that can fail before it changes anything, so a
failure (a full disk, a damaged history file) never leaves a name online that nobody
holds, or a member half in a room.

Rooms (protocol 4.2): every member is in one room or more. A member whose client does not
speak rooms (its codec's `rooms` is False) is in the default room only, and sees it as the
whole chat: its `welcome.online` and its joins and leaves are the default room's.

Identity, presence and order (protocol 4.3): a registered name (kept in the history) goes
only to a login that proved its key; a member may rename itself, be away, be asked about;
the chat asks `Moderation` whether a login is banned or a member muted, and expels those
an operator kicks or bans (`lanchat.core.operators` decides who). What 4.3 adds reaches
older clients only as what they know (a rename as a leave and a join, a notice as a
message from `*`) or not at all (away).
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
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from lanchat import identity, names, protocol
from lanchat.core import events, namepassword
from lanchat.core.history import RESUME_CAP, History, StorageError, hash_token
from lanchat.core.moderation import Ban, Moderation
from lanchat.core.passwordguard import PasswordGuard
from lanchat.core.rooms import Member, Room, RoomRules
from lanchat.core.transport import Codec, encode_once, message_event
from lanchat.protocol import Frame, ProtocolError, Token

log = logging.getLogger(__name__)

# Hands (member, bytes) pairs to the I/O layer in one call, so it can batch them.
Deliver = Callable[[Iterable[Tuple[Member, bytes]]], None]

# Calls a function after a delay in seconds, off the caller's stack (the server's I/O loop).
Schedule = Callable[[float, Callable[[], None]], None]

REF_WINDOW = 1000  # refs remembered per user (room and private messages)

# Joins and leaves for clients that take presence in batches wait at most this long, so a
# rush of logins costs one frame per client per batch instead of one per login.
PRESENCE_BATCH_SECONDS = 0.5

Deliveries = List[Tuple[Member, bytes]]


@dataclass(frozen=True)
class Resume:
    """What a returning client tells the chat in its login (all optional)."""

    token: Optional[str] = None  # takes the name over from a stale connection
    last_id: Optional[int] = None  # the last message it saw ...
    history_id: Optional[str] = None  # ... in this history


class Chat:
    """Logins, rooms, history and fan-out of one server.

    `deliver` is called with the lock held and must not block: it queues bytes. Joins and
    leaves for `batch_presence` members wait for a batch, which the chat asks `schedule`
    for; so does an empty room's disappearance. Without `schedule`, presence goes out at
    once in batches of one and empty rooms stay until their place is needed.
    """

    def __init__(
        self,
        deliver: Deliver,
        history: History,
        welcome_size: int = 100,
        clock: Callable[[], float] = time.time,
        schedule: Optional[Schedule] = None,
        rules: Optional[RoomRules] = None,
        moderation: Optional[Moderation] = None,
    ) -> None:
        self._deliver = deliver
        self._history = history
        self.moderation = moderation or Moderation(history)
        self._welcome_size = welcome_size
        self._clock = clock
        self._schedule = schedule
        self.rules = rules = rules or RoomRules()
        self._lock = threading.Lock()
        self._members: Dict[str, Member] = {}  # by name key, in login order
        self._online: Optional[Tuple[str, ...]] = ()  # their names; None: to be counted again
        self._rooms: Dict[str, Room] = {}  # by room key
        for name in (rules.default_room, *rules.fixed):
            room = self._room_from_history(names.validate_room(name), fixed=True)
            self._rooms.setdefault(room.key, room)
        self.default = self._rooms[names.room_key(rules.default_room)]
        self._refs: Dict[str, collections.OrderedDict[str, events.Message]] = {}  # by sender key
        self._password_guard = PasswordGuard()  # name password checks: how many, how often

    def _now(self) -> float:
        return round(self._clock(), 3)

    # -- what others ask -----------------------------------------------------------------

    @property
    def names(self) -> List[str]:
        """Every logged-in name, in the order they logged in."""
        with self._lock:
            if self._online is None:
                self._online = tuple(m.name for m in self._members.values())
            return list(self._online)

    def __len__(self) -> int:
        return len(self._members)

    def who(self, member: Member, room: Optional[str] = None) -> events.Online:
        """Who is online: a room's members, or everybody (for a single-room client, the
        default room's members)."""
        with self._lock:
            if room is not None:
                with _room_errors(room, None):
                    found = self._existing_room(room)
                return _online(found.member_names, found.members.values(), found.name)
            if not member.codec.rooms:
                return _online(self.default.member_names, self.default.members.values())
            everybody = list(self._members.values())
        return _online(tuple(self.names), everybody)

    def room_list(self) -> events.RoomList:
        """Every room, by name, with its member count and topic."""
        with self._lock:
            rooms = sorted(self._rooms.values(), key=lambda r: r.key)
            return events.RoomList(tuple((r.name, len(r.members), r.topic.text) for r in rooms))

    # -- logging in and out ----------------------------------------------------------------

    def join(
        self, member: Member, resume: Resume = Resume(), rooms: Optional[Sequence[str]] = None
    ) -> Optional[Member]:
        """Log a member in, put it in its rooms, welcome it and tell the others.

        A name in use raises name_taken, unless the login presents a resume token that
        holds it. The token of that very session takes the name over silently, rooms
        included; the name's own token (`History.token_hash`: the newest one its owner was
        given, kept across restarts) also takes it back from a stranger, who gets
        `name_reclaimed` and is seen leaving. Either way the member replaced is returned,
        for the caller to close without a leave of its own.

        `rooms` are those a client that speaks rooms asks for (docs/protocol.md, Rooms);
        a room it cannot have is answered with an error after the welcome.

        A banned login raises `banned`; a registered name without its key's proof
        (`member.identity`) `name_registered`; with it, the name's owner takes it over from
        any session still holding it, as with that session's resume token.
        """
        with self._lock:
            now = self._now()
            ban = self.moderation.ban_of(member.identity, member.key, member.address, now)
            if ban is not None:
                refusal = banned_event(ban)
                raise ProtocolError(refusal.code, refusal.message, **refusal.fields)
            registered = self._registration(member.key)
            if registered is not None and member.identity != registered:
                raise ProtocolError(
                    "name_registered", f"{member.name!r} is registered to another key."
                )
            stale = self._members.get(member.key)
            held = self._held_token(member.key, now)
            owner = held is not None and _same_secret(_hash_of(resume.token), held)
            takeover = stale is not None and (
                registered is not None or _same_secret(resume.token, stale.resume_token)
            )
            if stale is not None and not (takeover or owner):
                raise ProtocolError("name_taken", f"{stale.name!r} is online already.")
            stranger = None if takeover else stale  # only the name's own token gets here
            taken_over = stale if takeover else None
            # A session taken over keeps its rooms; a single-room client only the default.
            kept = list(stale.rooms.values()) if stale and takeover and member.codec.rooms else []
            wanted = self._wanted_rooms(member, rooms, owner)
            plan, refusals = self._plan_rooms(kept, wanted)
            histories = [self._history_for(room, resume) for room in plan]  # may fail
            # Before 4.3 the message of the day is a notice after the welcome.
            motd = self.moderation.motd
            motd_notice = [self._notice(motd)] if motd and member.codec.minor < 3 else []
            token = secrets.token_hex(16)
            if held is None or owner:  # else a stranger's token: good until a restart only
                self._save_token(member.key, token, now, [room.name for room in plan])
            # Nothing fails from here on.
            member.resume_token = token
            member.since = member.last_said = now
            member.registered = registered is not None
            member.operator = member.registered and self.moderation.is_operator(member.key)
            deliveries: Deliveries = []
            if stranger is not None:
                notice = events.Error(
                    "name_reclaimed", f"{stranger.name!r} was taken back by the person who had it."
                )
                deliveries += _encoded(notice, [stranger])
                deliveries += self._log_out(stranger, "error", now)
            self._members[member.key] = member  # a takeover keeps the old place in the list
            self._online = None
            if taken_over is not None:
                for room in list(taken_over.rooms.values()):
                    room.add(member)  # in the old member's place, without a word
                    if room not in plan:
                        deliveries += self._exit(room, member, "part", now)
            for room in plan:
                if room.key not in member.rooms:
                    deliveries += self._enter(room, member, now)
            welcome = self._welcome(member, resume, plan, histories, refusals, motd_notice)
            self._deliver(welcome + deliveries)
            return stale

    def _wanted_rooms(
        self, member: Member, asked: Optional[Sequence[str]], owner: bool
    ) -> List[str]:
        """The rooms a login asks for: those it names, else those its owner's token kept,
        else the default room (the only one of a single-room client)."""
        if not member.codec.rooms:
            return [self.default.name]
        if asked:
            return list(asked)
        if owner:
            try:
                remembered = self._history.token_rooms(member.key)
            except StorageError as exc:
                log.warning("rooms of %s unknown: %s", member.name, exc)
                remembered = []
            if remembered:
                return remembered
        return [self.default.name]

    def _plan_rooms(
        self, kept: Sequence[Room], wanted: Sequence[str]
    ) -> Tuple[List[Room], List[events.Error]]:
        """The rooms a login will be in (`kept` from a session it takes over, then those
        `wanted` that it may join), and the errors for those it may not; at least one."""
        plan = list(kept)
        refusals = []
        for name in wanted:
            try:
                room = self._room_for(name, pending=[r for r in plan if r.key not in self._rooms])
                if room not in plan:
                    self._check_room_for(room, len(plan))
                    plan.append(room)
            except ProtocolError as exc:
                fields = {**exc.fields, "room": name}
                refusals.append(events.Error(exc.code, exc.message, None, tuple(fields.items())))
        if not plan:  # nothing asked for could be had: the default room, if it has space
            self._check_room_for(self.default, 0)
            plan.append(self.default)
        return plan, refusals

    def _welcome(
        self,
        member: Member,
        resume: Resume,
        plan: Sequence[Room],
        histories: Sequence[Tuple[List[Frame], bool]],
        refusals: Sequence[events.Error],
        motd_notice: Sequence[events.Notice],
    ) -> Deliveries:
        """The welcome (then `motd_notice`, for older clients), and for a client that speaks
        rooms one `joined` per room and the errors for the rooms it could not have."""
        history_id = self._history.history_id
        token = member.resume_token
        motd = self.moderation.motd
        if not member.codec.rooms:
            history, cut = histories[0]
            messages = tuple(message_event(frame) for frame in history)
            members = list(self.default.members.values())
            welcome = events.Welcome(
                member.name,
                self.default.member_names,
                messages,
                cut,
                token,
                history_id,
                motd=motd,
                operator=member.operator,
                away=_away_of(members),
            )
            single: List[events.Event] = [welcome, *motd_notice]
            return [(member, member.codec.encode(event)) for event in single]
        online = tuple(m.name for m in self._members.values())
        self._online = online
        rooms = tuple(room.name for room in plan)
        welcome = events.Welcome(
            member.name,
            online,
            (),
            False,
            token,
            history_id,
            rooms,
            self.default.name,
            motd,
            member.operator,
            _away_of(self._members.values()),
        )
        sent: List[events.Event] = [welcome, *motd_notice]
        sent += [self._room_joined(room, *history) for room, history in zip(plan, histories)]
        sent += refusals
        return [(member, member.codec.encode(event)) for event in sent]

    def leave(self, member: Member, reason: str, announce: bool = True) -> bool:
        """Log a member out of every room and, with `announce`, tell the others; False if
        it was not in. A quit ends the member's resume token; any other leave counts as
        its last use."""
        with self._lock:
            if self._members.get(member.key) is not member:
                return False
            now = self._now()
            deliveries = self._log_out(member, reason, now, announce)
            self._deliver(deliveries)
            try:
                if reason == "quit":
                    self._history.forget_token(member.key, member.resume_token)
                else:
                    self._history.touch_token(member.key, member.resume_token, now)
            except StorageError:
                pass  # the token just expires sooner (the history logs it)
            return True

    def _log_out(
        self, member: Member, reason: str, now: float, announce: bool = True
    ) -> Deliveries:
        """Take the member out of the chat and its rooms (lock held)."""
        del self._members[member.key]
        self._online = None
        deliveries: Deliveries = []
        for room in list(member.rooms.values()):
            deliveries += self._exit(room, member, reason, now, announce)
        return deliveries

    # -- rooms -------------------------------------------------------------------------------

    def enter(self, member: Member, name: str, ref: Optional[Token] = None) -> None:
        """Put a member in a room, making it if new; a member in it already just gets the
        room afresh."""
        with self._lock:
            self._check_logged_in(member, ref)
            now = self._now()
            with _room_errors(name, ref):
                room = self._room_for(name)
                if room.key not in member.rooms:
                    self._check_room_for(room, len(member.rooms))
            history, cut = self._history_for(room, Resume())  # may fail
            deliveries: Deliveries = []
            if room.key not in member.rooms:
                deliveries = self._enter(room, member, now)
                self._save_rooms(member)
            joined = dataclasses.replace(self._room_joined(room, history, cut), ref=ref)
            self._deliver(_encoded(joined, [member]) + deliveries)

    def part(self, member: Member, name: str, ref: Optional[Token] = None) -> None:
        """Take a member out of a room (never its last)."""
        with self._lock:
            self._check_logged_in(member, ref)
            with _room_errors(name, ref):
                room = self._joined_room(member, name)
                if len(member.rooms) == 1:
                    raise ProtocolError("last_room", "You cannot leave the only room you are in.")
            deliveries = self._exit(room, member, "part", self._now())
            self._save_rooms(member)
            self._deliver(_encoded(events.RoomParted(room.name, ref), [member]) + deliveries)

    def topic(
        self, member: Member, name: str, text: Optional[str] = None, ref: Optional[Token] = None
    ) -> None:
        """Tell a member a room's topic, or (with `text`) set it and tell the room."""
        with self._lock:
            self._check_logged_in(member, ref)
            with _room_errors(name, ref):
                room = (
                    self._existing_room(name) if text is None else self._joined_room(member, name)
                )
            if text is None:
                self._deliver(_encoded(dataclasses.replace(room.topic, ref=ref), [member]))
                return
            topic = events.Topic(room.name, names.clean_topic(text), member.name, self._now())
            with _not_stored_on_failure(ref):
                self._history.save_room(room.key, topic)
            room.topic = topic
            others = [m for m in room.members.values() if m.codec.rooms and m is not member]
            own = dataclasses.replace(topic, ref=ref)
            self._deliver(_encoded(own, [member]) + _encoded(topic, others))

    def _room_for(self, name: str, pending: Sequence[Room] = ()) -> Room:
        """The room of this name: an existing one, one of `pending` (about to be made), or a
        new one (not yet in the chat); raises invalid_room or too_many_rooms."""
        spelt = names.validate_room(name)
        key = names.room_key(spelt)
        found = self._rooms.get(key) or next((r for r in pending if r.key == key), None)
        if found is not None:
            return found
        if len(self._rooms) + len(pending) >= self.rules.max_rooms and not self._evict_empty():
            raise ProtocolError(
                "too_many_rooms",
                f"This server has {self.rules.max_rooms} rooms, as many as it allows.",
                max_rooms=self.rules.max_rooms,
            )
        return self._room_from_history(spelt)

    def _room_from_history(self, name: str, fixed: bool = False) -> Room:
        """A room as it was when it last existed (its spelling and topic), or a new one."""
        key = names.room_key(name)
        try:
            saved = self._history.saved_room(key)
        except StorageError as exc:
            log.warning("topic of %s unknown: %s", name, exc)
            saved = None
        return Room(saved or events.Topic(name), fixed)

    def _check_room_for(self, room: Room, rooms_in: int) -> None:
        """Raise if someone in `rooms_in` rooms may not come into this one."""
        if rooms_in >= self.rules.max_joined:
            raise ProtocolError(
                "too_many_joined",
                f"You are in {self.rules.max_joined} rooms, as many as this server allows.",
                max_joined=self.rules.max_joined,
            )
        most = self.rules.max_members
        if most and len(room.members) >= most:
            raise ProtocolError(
                "room_full", f"{room.name} is full ({most} people).", max_members=most
            )

    def _existing_room(self, name: str) -> Room:
        room = self._rooms.get(names.room_key(names.validate_room(name)))
        if room is None:
            raise ProtocolError("no_such_room", f"There is no room {name}.")
        return room

    def _joined_room(self, member: Member, name: str) -> Room:
        room = member.rooms.get(names.room_key(names.validate_room(name)))
        if room is None:
            raise ProtocolError("not_in_room", f"You are not in {name}.")
        return room

    def _enter(self, room: Room, member: Member, now: float) -> Deliveries:
        """Put the member in the room (making it part of the chat if new) and tell the
        others there (lock held)."""
        if room.key not in self._rooms:
            self._rooms[room.key] = room
            self._save_room(room)
        others = list(room.members.values())
        room.add(member)
        return self._announce(events.Joined(member.name, now, room.name), room, others)

    def _exit(
        self, room: Room, member: Member, reason: str, now: float, announce: bool = True
    ) -> Deliveries:
        """Take the member out of the room and tell the others there (lock held); an empty
        room that is not fixed goes after the linger time."""
        room.remove(member, now)
        if not room.members:
            if not room.fixed and self._schedule is not None:
                emptied = room.emptied_at
                self._schedule(self.rules.linger, lambda: self._expire(room, emptied))
            return []
        if not announce:
            return []
        left = events.Left(member.name, now, reason, room.name)
        return self._announce(left, room, list(room.members.values()))

    def _expire(self, room: Room, emptied: Optional[float]) -> None:
        """Drop a room that has stayed empty since `emptied`."""
        with self._lock:
            if self._rooms.get(room.key) is room and not room.members:
                if room.emptied_at == emptied:
                    del self._rooms[room.key]
                    log.info("room %s is gone (empty for %g s)", room.name, self.rules.linger)

    def _evict_empty(self) -> bool:
        """Make space by dropping the room empty for longest that is not fixed (lock held)."""
        empty = [r for r in self._rooms.values() if not r.members and not r.fixed]
        if not empty:
            return False
        oldest = min(empty, key=lambda r: r.emptied_at or 0.0)
        del self._rooms[oldest.key]
        return True

    def _room_joined(self, room: Room, history: List[Frame], cut: bool) -> events.RoomJoined:
        """The `joined` event of a room, its history in the room's spelling of today."""
        messages = tuple(
            dataclasses.replace(message_event(frame), room=room.name) for frame in history
        )
        away = _away_of(room.members.values())
        operators = _operators_of(room.members.values())
        return events.RoomJoined(
            room.name,
            room.topic.text,
            room.member_names,
            messages,
            cut,
            away=away,
            topic_by=room.topic.by,
            topic_ts=room.topic.ts,
            operators=operators,
        )

    def _save_room(self, room: Room) -> None:
        try:
            self._history.save_room(room.key, room.topic)
        except StorageError:
            pass  # the room just comes back spelt as whoever makes it next (history logs it)

    def _save_rooms(self, member: Member) -> None:
        """Keep the member's rooms with its resume token, for its next login."""
        try:
            self._history.save_rooms(member.key, member.resume_token, member.room_names)
        except StorageError:
            pass  # the next login may land in other rooms (the history logs it)

    # -- presence --------------------------------------------------------------------------

    def _announce(
        self, change: events.PresenceChange, room: Room, receivers: Sequence[Member]
    ) -> Deliveries:
        """A join or leave for `receivers` in `room`: at once for most, in the room's next
        presence batch for those who asked for batches (lock held)."""
        if not room.batch_members:  # the usual room: nobody asked for batches
            return _encoded(change, receivers)
        singles = [m for m in receivers if not m.batch_presence]
        if len(singles) < len(receivers):
            if self._schedule is None:
                batched = [m for m in receivers if m.batch_presence]
                return _encoded(change, singles) + _encoded(events.Presence((change,)), batched)
            if not room.presence:
                self._schedule(PRESENCE_BATCH_SECONDS, lambda: self._flush_presence(room))
            room.presence.append(change)
        return _encoded(change, singles)

    def _flush_presence(self, room: Room) -> None:
        """Send the room's joins and leaves waiting since its last batch, as one `presence`
        event, to every member there that asked for batches."""
        with self._lock:
            changes, room.presence = tuple(room.presence), []
            receivers = [m for m in room.members.values() if m.batch_presence]
            if changes and receivers:
                self._deliver(_encoded(events.Presence(changes), receivers))

    # -- resume tokens -----------------------------------------------------------------------

    def _held_token(self, name_key: str, now: float) -> Optional[str]:
        """The hash of the name's resume token; None if none, or if it cannot be read (a
        damaged token table must not keep everybody out: it only costs the reclaim)."""
        try:
            return self._history.token_hash(name_key, now)
        except StorageError as exc:
            log.warning("resume tokens unknown: %s", exc)
            return None

    def _save_token(self, name_key: str, token: str, now: float, rooms: Sequence[str]) -> None:
        try:
            self._history.save_token(name_key, token, now, rooms)
        except StorageError:
            pass  # the token then holds the name until a restart only (the history logs it)

    def _history_for(self, room: Room, resume: Resume) -> Tuple[List[Frame], bool]:
        if resume.last_id is not None and resume.history_id == self._history.history_id:
            return self._history.after(room.key, resume.last_id, RESUME_CAP)
        return self._history.recent(room.key, self._welcome_size), False

    # -- identity, presence and order (4.3) --------------------------------------------------

    def _registration(self, name_key: str) -> Optional[str]:
        """The identity key the name is registered to; a history that cannot say keeps the
        login out (server_error) rather than let a stranger take a registered name."""
        try:
            return self._history.registration(name_key)
        except StorageError:
            raise ProtocolError("server_error", "The server cannot check names now.") from None

    def _notice(
        self, text: str, room: Optional[str] = None, ref: Optional[Token] = None
    ) -> events.Notice:
        """A notice, with a fresh message id for older clients (lock held); not_stored if
        no id can be had."""
        with _not_stored_on_failure(ref):
            id = self._history.next_id()
        return events.Notice(id, text, self._now(), room, ref)

    def _sharing(self, member: Member) -> List[Member]:
        """Everybody who shares a room with the member, but the member (lock held)."""
        found: Dict[int, Member] = {}
        for room in member.rooms.values():
            for other in room.members.values():
                if other is not member:
                    found.setdefault(id(other), other)
        return list(found.values())

    def now(self) -> float:
        """The chat's clock (wall-clock seconds, to the millisecond)."""
        return self._now()

    def registration(self, name_key: str) -> Optional[str]:
        """The identity key the name is registered to, if it is (server_error if the
        history cannot say)."""
        with self._lock:
            return self._registration(name_key)

    def find(self, name: str) -> Optional[Member]:
        """The member logged in under a name that collides with `name`, if any."""
        with self._lock:
            return self._members.get(names.name_key(name))

    def people(self) -> List[Tuple[str, str, Tuple[str, ...]]]:
        """(name, address, rooms) of everybody logged in, in login order."""
        with self._lock:
            return [(m.name, m.address, tuple(m.room_names)) for m in self._members.values()]

    def rename(self, member: Member, name: str, ref: Optional[Token] = None) -> None:
        """Give a member another name, under the rules of a login name; everybody who
        shares a room with it is told (older clients: a leave and a join per room)."""
        spelt = names.validate_name(name)
        key = names.name_key(spelt)
        with self._lock:
            self._check_logged_in(member, ref)
            now = self._now()
            if key != member.key and key in self._members:
                raise ProtocolError("name_taken", f"{spelt!r} is online already.", ref)
            registered = self._registration(key)
            if registered is not None and registered != member.identity:
                raise ProtocolError("name_registered", f"{spelt!r} is registered to another key.")
            if key != member.key and self.moderation.ban_of(None, key, "", now) is not None:
                raise ProtocolError("invalid_name", f"{spelt!r} is banned on this server.", ref)
            held = self._held_token(key, now) if key != member.key else None
            # Nothing fails from here on.
            old, old_key = member.name, member.key
            member.rename(spelt)
            self._rekey(member, old_key)
            member.registered = registered is not None
            member.operator = member.registered and self.moderation.is_operator(key)
            if key != old_key:
                self._move_token(member, old_key, now, held is None)
            renamed = events.Renamed(old, spelt, now)
            others = self._sharing(member)
            deliveries = _encoded(dataclasses.replace(renamed, ref=ref), [member])
            deliveries += _encoded(renamed, [m for m in others if m.codec.minor >= 3])
            for room in member.rooms.values():
                older = [m for m in room.members.values() if m.codec.minor < 3 and m is not member]
                if older:  # what they know: a leave and a join
                    deliveries += self._announce(
                        events.Left(old, now, "quit", room.name), room, older
                    )
                    deliveries += self._announce(events.Joined(spelt, now, room.name), room, older)
            self._deliver(deliveries)
        log.info("rename %s to %s", old, spelt)

    def _rekey(self, member: Member, old_key: str) -> None:
        """After a rename: the member's place in the chat and its rooms under its new key,
        its refs and mute with it (lock held)."""
        self._members = {(member.key if k == old_key else k): m for k, m in self._members.items()}
        self._online = None
        for room in member.rooms.values():
            room.rekey(member, old_key)
        refs = self._refs.pop(old_key, None)
        if refs is not None:
            self._refs[member.key] = refs
        self.moderation.follow(old_key, member.key)

    def _move_token(self, member: Member, old_key: str, now: float, free: bool) -> None:
        """The resume token follows a rename; the new name's owner's token (`free` False)
        is not overwritten: ours then holds the name until a restart only."""
        try:
            self._history.forget_token(old_key, member.resume_token)
            if free:
                self._history.save_token(member.key, member.resume_token, now, member.room_names)
        except StorageError:
            pass  # the token then holds the name until a restart only (the history logs it)

    def set_away(self, member: Member, text: Optional[str], ref: Optional[Token] = None) -> None:
        """Mark a member away (with a cleaned text) or back (None); 4.3 clients who share a
        room with it are told."""
        with self._lock:
            self._check_logged_in(member, ref)
            member.away = text
            member.told_away.clear()
            away = events.Away(member.name, self._now(), text)
            others = [m for m in self._sharing(member) if m.codec.minor >= 3]
            self._deliver(
                _encoded(dataclasses.replace(away, ref=ref), [member]) + _encoded(away, others)
            )

    def whois(self, asker: Member, name: str, ref: Optional[Token] = None) -> events.Whois:
        """What the server says about somebody online; operators also get the address."""
        with self._lock:
            found = self._members.get(names.name_key(name))
            if found is None:
                raise ProtocolError("no_such_user", f"{name!r} is not online.", ref)
            return events.Whois(
                found.name,
                found.since,
                round(max(0.0, self._now() - found.last_said), 3),
                tuple(found.room_names),
                found.registered,
                found.operator,
                found.away,
                None if found.identity is None else identity.fingerprint(found.identity),
                found.address if asker.operator else None,
                ref,
                found.codec.client,
            )

    def register(self, member: Member, ref: Optional[Token] = None) -> events.Registered:
        """Bind the member's name to its identity key, in the history."""
        with self._lock:
            self._check_logged_in(member, ref)
            if not member.proved_key:
                raise ProtocolError("no_identity", "Log in with an identity key to register.", ref)
            assert member.identity is not None
            with _not_stored_on_failure(ref):
                self._history.register(member.key, member.name, member.identity, self._now())
            member.registered = True
            member.operator = self.moderation.is_operator(member.key)
        log.info("registered %s (%s)", member.name, identity.fingerprint(member.identity))
        return events.Registered(member.name, identity.fingerprint(member.identity), ref)

    def set_name_password(
        self, member: Member, password: Optional[str], ref: Optional[Token] = None
    ) -> events.NamePasswordSet:
        """Set (or with None clear) the password of the member's registered name (4.4).

        The hash is made outside the lock (it is slow on purpose), so the name is checked
        again before it is kept: a name released meanwhile keeps no password."""
        with self._lock:
            self._check_may_set_password(member, ref)
        if password is not None:
            namepassword.check_length(password, ref)
        kept = None if password is None else namepassword.hash_password(password)
        with self._lock:
            self._check_may_set_password(member, ref)
            with _not_stored_on_failure(ref):
                self._history.set_password_hash(member.key, kept)
        log.info("name password of %s %s", member.name, "cleared" if kept is None else "set")
        return events.NamePasswordSet(kept is not None, ref)

    def _check_may_set_password(self, member: Member, ref: Optional[Token]) -> None:
        """Only the key's owner, logged in with its proof, sets its name's password."""
        self._check_logged_in(member, ref)
        if not member.proved_key:
            raise ProtocolError("no_identity", "Log in with your identity key to do that.", ref)
        if self._registration(member.key) != member.identity:
            raise ProtocolError("not_registered", f"{member.name!r} is not registered.", ref)

    def name_password_owner(
        self,
        name: str,
        password: str,
        host: str,
        earlier: Optional[namepassword.Verified] = None,
    ) -> Optional[namepassword.Verified]:
        """Who the name is registered to, if `password` is its name password; None
        otherwise. A client at `host` asks: the check is bounded (PasswordGuard: at once,
        and per address; else rate_limited) and made outside the lock, as it is slow on
        purpose. `earlier`, the server's own record of this check made before (IRC SASL,
        never from the wire), is taken without hashing again while it still holds."""
        key = names.name_key(name)
        with self._lock:
            registered = self._registration(key)
            try:
                kept = self._history.password_hash(key)
            except StorageError:
                raise ProtocolError("server_error", "The server cannot check names now.") from None
        if registered is None or kept is None:
            return None
        verified = namepassword.Verified(key, registered, kept)
        if earlier == verified:
            return earlier
        if not self._password_guard.check(host, lambda: namepassword.verify(password, kept)):
            return None
        return verified

    def release(self, name: str, ref: Optional[Token] = None) -> events.Unregistered:
        """Let a registered name go (its holder, if online, keeps the name, unregistered)."""
        spelt = names.validate_name(name)
        key = names.name_key(spelt)
        with self._lock:
            with _not_stored_on_failure(ref):
                self._history.unregister(key)
            holder = self._members.get(key)
            if holder is not None:
                holder.registered = holder.operator = False
                spelt = holder.name
        return events.Unregistered(spelt, ref)

    def expel(
        self,
        select: Callable[[Member], bool],
        error: events.Error,
        notice: Callable[[str], str],
        commit: Callable[[], None] = lambda: None,
    ) -> List[Member]:
        """Log out every member `select` picks: each gets `error`, the others in its rooms
        see it leave (reason kicked) and a notice; return them, for the caller to close.

        `commit` (keeping a ban) runs under the lock once all that can fail has been
        done, so that a login cannot slip in between, and its failure changes nothing.
        """
        with self._lock:
            now = self._now()
            targets = [m for m in self._members.values() if select(m)]
            notices = [  # made first: a notice id may fail to be had
                [self._notice(notice(t.name), room) for room in t.room_names] for t in targets
            ]
            commit()
            deliveries: Deliveries = []
            for target, told in zip(targets, notices):
                rooms = list(target.rooms.values())
                deliveries += _encoded(error, [target])
                deliveries += self._log_out(target, "kicked", now)
                for room, note in zip(rooms, told):
                    deliveries += _encoded(note, list(room.members.values()))
            self._deliver(deliveries)
            return targets

    def announce(
        self, text: str, room: Optional[str] = None, to: Optional[Member] = None
    ) -> events.Notice:
        """A notice to everybody, to one room's members, or to one member; returned."""
        with self._lock:
            if to is not None:
                receivers = [to] if self._members.get(to.key) is to else []
                found = None
            elif room is not None:
                found = self._existing_room(room)
                receivers = list(found.members.values())
            else:
                found = None
                receivers = list(self._members.values())
            notice = self._notice(text, None if found is None else found.name)
            self._deliver(_encoded(notice, receivers))
            return notice

    def notice_for(self, text: str, ref: Optional[Token] = None) -> events.Notice:
        """A notice for one client to be sent by the caller (an operator's answer)."""
        with self._lock:
            return self._notice(text, ref=ref)

    def set_topic_as(
        self, by: str, name: str, text: str, ref: Optional[Token] = None
    ) -> events.Topic:
        """An operator sets any room's topic: the room's members are told; the topic with
        `ref` is returned for the operator."""
        with self._lock:
            with _room_errors(name, ref):
                room = self._existing_room(name)
            topic = events.Topic(room.name, names.clean_topic(text), by, self._now())
            with _not_stored_on_failure(ref):
                self._history.save_room(room.key, topic)
            room.topic = topic
            self._deliver(_encoded(topic, [m for m in room.members.values() if m.codec.rooms]))
            return dataclasses.replace(topic, ref=ref)

    # -- messages --------------------------------------------------------------------------

    def say(
        self,
        sender: Member,
        text: str,
        to: Optional[str] = None,
        ref: Optional[Token] = None,
        room: Optional[str] = None,
        notice: bool = False,
    ) -> events.Message:
        """Relay a message (text already cleaned) to a room (the default one without
        `room`) or to one user, as a notice if `notice` (4.4); return it.

        A ref this sender already used for the same text is a resend: it is not relayed
        again, and the sender alone gets the original back with its ref.
        """
        with self._lock:
            self._check_logged_in(sender, ref)
            self._check_not_muted(sender, ref)
            with _not_stored_on_failure(ref):
                original = self._resent(sender, text, ref)
            if original is not None:
                self._deliver(_encoded(dataclasses.replace(original, ref=ref), [sender]))
                return original
            receivers: Sequence[Member]
            target: Optional[Room] = None
            recipient: Optional[Member] = None
            if to is not None:
                recipient = self._members.get(names.name_key(to))
                if recipient is None:
                    raise ProtocolError("no_such_user", f"{to!r} is not online.", ref)
                to = recipient.name
                receivers = [] if recipient is sender else [recipient]
            else:
                with _room_errors(room or self.default.name, ref):
                    target = self._joined_room(sender, room or self.default.name)
                receivers = [m for m in target.members.values() if m is not sender]
            with _not_stored_on_failure(ref):
                message = self._store(sender, text, to, ref, target, notice)
            sender.last_said = message.ts
            # a notice is never answered automatically, by the away text neither
            away = [] if recipient is None or notice else self._away_reply(sender, recipient)
            own = message if ref is None else dataclasses.replace(message, ref=ref)
            if ref is not None:
                self._remember(sender, ref, message)
            self._deliver(_encoded(own, [sender]) + _encoded(message, receivers) + away)
            return message

    def _check_not_muted(self, sender: Member, ref: Optional[Token]) -> None:
        mute = self.moderation.mute_of(sender.key, self._now())
        if mute is not None:
            until = {} if mute.until is None else {"until": mute.until}
            raise ProtocolError("muted", "An operator muted you.", ref, **until)

    def _away_reply(self, sender: Member, recipient: Member) -> Deliveries:
        """The recipient's away text for a 4.3 sender, once per away spell (lock held)."""
        if recipient.away is None or sender.codec.minor < 3 or sender.key in recipient.told_away:
            return []
        recipient.told_away.add(sender.key)
        reply = events.Away(recipient.name, self._now(), recipient.away, reply=True)
        return _encoded(reply, [sender])

    def _check_logged_in(self, member: Member, ref: Optional[Token]) -> None:
        if self._members.get(member.key) is not member:  # replaced by a resumed login
            raise ProtocolError("not_logged_in", "This session was taken over.", ref)

    def _store(
        self,
        sender: Member,
        text: str,
        to: Optional[str],
        ref: Optional[Token],
        room: Optional[Room],
        notice: bool,
    ) -> events.Message:
        """The message with its new id; a room message is stored before anybody sees it."""
        room_name = room.name if room is not None else None
        print_ = _fingerprint(sender)
        message = events.Message(
            self._history.next_id(),
            self._now(),
            sender.name,
            text,
            to,
            room=room_name,
            fingerprint=print_,
            notice=notice,
        )
        if room_name is not None:
            frame = protocol.message(message.id, message.ts, message.sender, text, room=room_name)
            if print_ is not None:
                frame["fingerprint"] = print_
            if notice:
                frame["notice"] = True
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


def banned_event(ban: Ban) -> events.Error:
    """The `banned` error for somebody this ban matches."""
    fields: Tuple[Tuple[str, Any], ...] = (("by", ban.by), ("reason", ban.reason))
    if ban.until is not None:
        fields += (("until", ban.until),)
    because = f": {ban.reason}" if ban.reason else ""
    message = f"You are banned from this server by {ban.by}{because}."
    return events.Error("banned", message, None, fields)


def _fingerprint(member: Member) -> Optional[str]:
    """A registered member's fingerprint; None for others."""
    if member.registered and member.identity is not None:
        return identity.fingerprint(member.identity)
    return None


def _away_of(members: Iterable[Member]) -> Tuple[Tuple[str, str], ...]:
    """(name, away text) of those of the members who are away."""
    return tuple((m.name, m.away) for m in members if m.away is not None)


def _operators_of(members: Iterable[Member]) -> Tuple[str, ...]:
    """The names of those of the members who are operators."""
    return tuple(m.name for m in members if m.operator)


def _online(
    member_names: Tuple[str, ...], members: Iterable[Member], room: Optional[str] = None
) -> events.Online:
    """The answer to a `who`: these names, and which of them are operators, which away."""
    members = list(members)
    away = tuple(m.name for m in members if m.away is not None)
    return events.Online(member_names, room, _operators_of(members), away)


def _encoded(event: events.Event, receivers: Iterable[Member]) -> Deliveries:
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


@contextlib.contextmanager
def _room_errors(room: str, ref: Optional[Token]) -> Iterator[None]:
    """Put the room (as the client named it) and the frame's ref on a room error."""
    try:
        yield
    except ProtocolError as exc:
        exc.fields.setdefault("room", room)
        if exc.ref is None:
            exc.ref = ref
        raise
