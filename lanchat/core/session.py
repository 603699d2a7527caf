"""One client's session, without I/O: frames and clock ticks in, effects out.

In the spirit of h11: a `Session` is fed `(frame, now)` (or a decoding error, or a tick
when its `deadline` has come) and returns `Effects`: events for its own client, whether
the connection ends (and with which leave reason), and sessions of the same name it
replaced. It acts on the chat directly (the chat is domain logic, not I/O) but never
touches a socket or a clock of its own, so every phase, error and timer is testable
without a network (tests/test_session.py).

The login phases are handler tables: what a frame type means depends on the phase, and
one function (`_refuse`) decides whether an error closes the connection.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import secrets
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from lanchat import identity, names, protocol
from lanchat.core import events, namepassword, operators
from lanchat.core.chat import Chat, Resume
from lanchat.core.ratelimit import FLOOD_BURST, FLOOD_RATE, TokenBucket
from lanchat.core.rooms import Member
from lanchat.protocol import Frame, ProtocolError

log = logging.getLogger(__name__)

AUTH_FAILURE_DELAY = 1.0  # seconds before a wrong password is answered: slows guessing
REFUSAL_LOG_INTERVAL = 60.0  # a connection's rate-limit refusals are logged at most this often
NICK_BURST = 2  # renames at once ...
NICK_RATE = 0.1  # ... and then one every 10 seconds
MAX_AWAY = 300  # code points of an away text, as sent

_ping_tokens = itertools.count(1)


@dataclass(frozen=True)
class SessionConfig:
    """What every session of one server shares."""

    server_name: str
    rate: float = 5.0
    burst: int = 30
    login_timeout: float = protocol.LOGIN_TIMEOUT
    idle_timeout: float = protocol.IDLE_TIMEOUT
    password: Optional[str] = None
    log_messages: bool = False


@dataclass
class Effects:
    """What the caller must do after feeding a session."""

    send: List[events.Event] = field(default_factory=list)
    close: Optional[str] = None  # a leave reason: the connection ends after `send`
    replaced: List[Member] = field(default_factory=list)  # close these, without a leave
    kicked: List[Member] = field(default_factory=list)  # close these: expelled (leave: kicked)


Handler = Callable[["Session", Frame, float], Effects]


class Session:
    """The protocol state of one connection: phase, rate limits, timers, its chat member."""

    def __init__(
        self,
        config: SessionConfig,
        chat: Chat,
        member: Member,
        peer: str,
        now: float,
        verified: Optional[namepassword.Verified] = None,
    ) -> None:
        """`verified`: a name password the transport checked before the session (IRC
        SASL), taken at login without hashing again; never from the wire."""
        self.config = config
        self.verified = verified
        self.chat = chat
        self.member = member
        self.peer = peer
        self._now = self.connected_at = self.last_heard = now  # the latest time fed in
        self.logged_in = False
        self.ended = False
        self.pinged = False
        self.nonce = secrets.token_hex(16) if config.password else None
        self.challenge = secrets.token_hex(16)  # for this connection's identity proof (4.3)
        self._phase: Dict[str, Handler] = _LOGIN_PHASE
        self._auth_failed_at: Optional[float] = None
        self._bucket = TokenBucket(config.rate, config.burst, clock=lambda: self._now)
        self._flood_allowance = TokenBucket(FLOOD_RATE, FLOOD_BURST, clock=lambda: self._now)
        self._refused = 0  # frames refused as rate_limited and not logged yet
        self._refusals_logged_at: Optional[float] = None
        self._renames = TokenBucket(NICK_RATE, NICK_BURST, clock=lambda: self._now)

    def __repr__(self) -> str:
        return f"<Session {self.member.name or '-'} {self.peer}>"

    # -- what the caller feeds in ----------------------------------------------------

    def start(self) -> Effects:
        """The greeting for a new connection."""
        log.info("connect %s", self.peer)
        online = () if self.nonce else tuple(self.chat.names)
        hello = events.Hello(
            self.config.server_name,
            online,
            self.nonce,
            self.config.rate,
            self.config.burst,
            self.chat.rules.max_joined,
            self.challenge,
        )
        return Effects([hello])

    def receive(self, frame: Frame, now: float) -> Effects:
        """Act on one decoded frame."""
        self._heard(now)
        if self._auth_failed_at is not None:
            return Effects()  # the connection is about to close: nothing more is read
        try:
            refusal = self._charge_rate_limit()
            if refusal is not None:
                raise refusal
            kind = frame["type"]
            handler = self._phase.get(kind)
            if handler is None:
                raise _not_here(kind)
            protocol.validate(frame, protocol.CLIENT_FRAMES)
            return handler(self, frame, now)
        except ProtocolError as exc:
            if exc.ref is None:
                exc.ref = protocol.ref_of(frame)
            return self._refuse(exc)
        except Exception:  # a bug or a broken store: an error frame and a clean leave
            log.exception("handling a frame from %s failed", self.peer)
            message = protocol.ERROR_CODES["server_error"][0]
            error = events.Error("server_error", message, protocol.ref_of(frame))
            return Effects([error], close="error")

    def bad_input(self, exc: ProtocolError, now: float) -> Effects:
        """Answer a line the decoder could not make a frame of."""
        self._heard(now)
        if self._auth_failed_at is not None:
            return Effects()
        if exc.code == "too_long":  # a line over max_frame: the stream cannot be trusted
            return self._refuse(exc, closes=True)
        if self.logged_in:  # a bad line costs like a frame
            exc = self._charge_rate_limit() or exc
        return self._refuse(exc)

    def tick(self, now: float) -> Effects:
        """Run the timers that are due (call when `deadline` has passed)."""
        self._now = now
        if self._auth_failed_at is not None:
            if now >= self._auth_failed_at + AUTH_FAILURE_DELAY:
                error = events.Error("auth_failed", "Wrong or missing password.")
                return Effects([error], close="error")
            return Effects()
        if not self.logged_in:
            if now >= self.connected_at + self.config.login_timeout:
                return Effects([events.Error("timeout", "Login took too long.")], close="timeout")
            return Effects()
        quiet = now - self.last_heard
        if quiet >= self.config.idle_timeout:
            error = events.Error("timeout", "Nothing heard from you for too long.")
            return Effects([error], close="timeout")
        if quiet >= self.config.idle_timeout / 2 and not self.pinged:
            self.pinged = True
            return Effects([events.Ping(f"idle-{next(_ping_tokens)}")])
        return Effects()

    @property
    def deadline(self) -> float:
        """When `tick` must run next (a monotonic time like the `now`s fed in)."""
        if self._auth_failed_at is not None:
            return self._auth_failed_at + AUTH_FAILURE_DELAY
        if not self.logged_in:
            return self.connected_at + self.config.login_timeout
        if self.pinged:
            return self.last_heard + self.config.idle_timeout
        return self.last_heard + self.config.idle_timeout / 2

    def end(self, reason: str, announce: bool = True) -> None:
        """The connection is over: leave the chat (telling the others, with `announce`)."""
        if self.ended:
            return
        self.ended = True
        self._log_refusals()
        if self.logged_in:
            if self.chat.leave(self.member, reason, announce=announce):
                log.info("leave %s %s (%s)", self.member.name, self.peer, reason)
        else:
            log.info("disconnect %s before login (%s)", self.peer, reason)

    # -- decisions ---------------------------------------------------------------------

    def _heard(self, now: float) -> None:
        self._now = self.last_heard = now
        self.pinged = False

    def _refuse(self, exc: ProtocolError, closes: bool = False) -> Effects:
        """The one place that answers an error and decides whether it closes."""
        extra = tuple(exc.fields.items())
        effects = Effects([events.Error(exc.code, exc.message, exc.ref, extra)])
        closes = (
            closes
            or protocol.closes_connection(exc.code)
            or (exc.code == "bad_frame" and not self.logged_in)
        )
        if closes:
            log.info("closing %s after %s", self.peer, exc.code)
            effects.close = "error"
        return effects

    def _charge_rate_limit(self) -> Optional[ProtocolError]:
        """Charge one frame: None if allowed, else `rate_limited`, or `flooding` once far
        too many were refused."""
        wait = self._bucket.take()
        if not wait:
            return None
        self._refused += 1
        logged = self._refusals_logged_at
        if logged is None or self._now - logged >= REFUSAL_LOG_INTERVAL:
            self._log_refusals()
        if self._flood_allowance.take():
            return ProtocolError("flooding", "Far too many frames too fast; goodbye.")
        return ProtocolError("rate_limited", "Too many frames; wait a moment.", retry_after=wait)

    def _log_refusals(self) -> None:
        """Log in one line the rate-limit refusals not logged yet."""
        if self._refused:
            count = self._refused
            frames = "frame" if count == 1 else "frames"
            log.info(
                "rate limited %s %s: %d %s refused",
                self.member.name or "-",
                self.peer,
                count,
                frames,
            )
            self._refused = 0
            self._refusals_logged_at = self._now

    # -- handlers, by phase ----------------------------------------------------------------

    def _on_login(self, frame: Frame, now: float) -> Effects:
        if not protocol.is_compatible(frame["version"]):
            log.info("refused %s: version %r", self.peer, frame["version"])
            raise ProtocolError(
                "incompatible_version",
                f"This server speaks lanchat {protocol.VERSION}; you have {frame['version']}.",
                server_version=protocol.VERSION,
            )
        self.member.address = self.peer.rsplit(":", 1)[0]
        if self.nonce is not None and not self._proof_is_right(frame):
            log.warning("auth failed from %s for name %r", self.peer, frame["name"])
            self._auth_failed_at = now
            return Effects()
        if "identity" in frame:
            key = identity.check(frame["identity"], self.challenge, frame["name"])
            if key is None:
                log.warning("wrong identity proof from %s for name %r", self.peer, frame["name"])
                raise ProtocolError("bad_identity", "That identity proof is wrong.")
            self.member.identity = key
        elif "name_password" in frame:
            self._check_name_password(frame["name"], frame["name_password"])
        resume = Resume(frame.get("resume"), frame.get("last_id"), frame.get("history_id"))
        rooms = frame.get("rooms")  # present: the client speaks rooms (4.2)
        try:
            self.member.rename(names.validate_name(frame["name"]))
            self.member.batch_presence = frame.get("presence") == "batch"
            self.member.codec = self.member.codec.for_login(rooms is not None, frame["version"])
            stale = self.chat.join(self.member, resume, rooms)
        except ProtocolError as exc:
            log.info(
                "refused name %r from %s: %s %s", frame["name"], self.peer, exc.code, exc.message
            )
            raise
        self.logged_in = True
        self._phase = _CHAT_PHASE
        self._bucket = TokenBucket(self.config.rate, self.config.burst, clock=lambda: self._now)
        if stale is None:
            log.info("login %s %s", self.member.name, self.peer)
            return Effects()
        log.info("login %s %s takes over from %s", self.member.name, self.peer, stale)
        return Effects(replaced=[stale])

    def _check_name_password(self, name: str, password: str) -> None:
        """A login by name password (4.4): it counts as the owner's key proof, or is
        bad_identity (or rate_limited: too many checks). Runs on the pool worker that
        handles this connection."""
        spelt = names.validate_name(name)
        found = self.chat.name_password_owner(spelt, password, self.member.address, self.verified)
        if found is None:
            log.warning("wrong name password from %s for name %r", self.peer, name)
            raise ProtocolError("bad_identity", "That name password is wrong.")
        self.member.identity = found.owner
        self.member.by_password = True

    def _proof_is_right(self, frame: Frame) -> bool:
        assert self.config.password is not None and self.nonce is not None
        expected = protocol.password_proof(self.config.password, self.nonce, frame["name"])
        return hmac.compare_digest(str(frame.get("auth", "")), expected)

    def _on_say(self, frame: Frame, now: float) -> Effects:
        room = self._room_field(frame)
        if room is not None and "to" in frame:
            raise ProtocolError("bad_frame", "A message goes to a room or to a person, not both.")
        text = names.clean_text(frame["text"])
        message = self.chat.say(
            self.member, text, frame.get("to"), frame.get("ref"), room, frame.get("notice", False)
        )
        if self.config.log_messages and message.to is None:  # private ones stay private
            log.info(
                "message %d from %s in %s: %s", message.id, self.member.name, message.room, text
            )
        return Effects()

    def _on_who(self, frame: Frame, now: float) -> Effects:
        return Effects([self.chat.who(self.member, self._room_field(frame))])

    def _on_join(self, frame: Frame, now: float) -> Effects:
        self.chat.enter(self.member, self._room_field(frame) or "", frame.get("ref"))
        return Effects()

    def _on_part(self, frame: Frame, now: float) -> Effects:
        self.chat.part(self.member, self._room_field(frame) or "", frame.get("ref"))
        return Effects()

    def _on_topic(self, frame: Frame, now: float) -> Effects:
        room = self._room_field(frame) or ""
        if self.member.operator and "text" in frame and not self._in_room(room):
            return self._operate(frame)  # an operator sets the topic of any room
        self.chat.topic(self.member, room, frame.get("text"), frame.get("ref"))
        return Effects()

    def _in_room(self, room: str) -> bool:
        try:
            return names.room_key(names.validate_room(room)) in self.member.rooms
        except ProtocolError:
            return True  # the usual path answers it

    def _on_nick(self, frame: Frame, now: float) -> Effects:
        wait = self._renames.take()
        if wait:
            raise ProtocolError(
                "rate_limited", "Too many renames; wait a moment.", retry_after=wait
            )
        self.chat.rename(self.member, frame["name"], frame.get("ref"))
        return Effects()

    def _on_away(self, frame: Frame, now: float) -> Effects:
        text = frame.get("text")
        if text is not None:
            if len(text) > MAX_AWAY:
                raise ProtocolError("too_long", f"An away text is at most {MAX_AWAY} characters.")
            text = names.strip_controls(text).strip() or None  # empty: back
        self.chat.set_away(self.member, text, frame.get("ref"))
        return Effects()

    def _on_whois(self, frame: Frame, now: float) -> Effects:
        return Effects([self.chat.whois(self.member, frame["name"], frame.get("ref"))])

    def _on_register(self, frame: Frame, now: float) -> Effects:
        return Effects([self.chat.register(self.member, frame.get("ref"))])

    def _on_unregister(self, frame: Frame, now: float) -> Effects:
        name = frame.get("name")
        if name is not None and names.name_key(name) != self.member.key:
            return self._operate(frame)  # another's name: an operator's release
        if not self.member.proved_key:
            raise ProtocolError("no_identity", "You logged in without an identity key.")
        return Effects([self.chat.release(self.member.name, frame.get("ref"))])

    def _on_name_password(self, frame: Frame, now: float) -> Effects:
        password = frame.get("password") or None  # none, or "": clear it
        return Effects([self.chat.set_name_password(self.member, password, frame.get("ref"))])

    def _on_operator_frame(self, frame: Frame, now: float) -> Effects:
        return self._operate(frame)

    def _operate(self, frame: Frame) -> Effects:
        """Run an operator's frame, or refuse it (not_operator)."""
        if not self.member.operator:
            raise ProtocolError("not_operator", "Only an operator may do that.")
        done = operators.run(self.chat, self.member.name, frame)
        return Effects(done.answer, kicked=done.closed)

    def _on_rooms(self, frame: Frame, now: float) -> Effects:
        self._check_speaks_rooms()
        return Effects([self.chat.room_list()])

    def _room_field(self, frame: Frame) -> Optional[str]:
        """The frame's `room`, from a client that speaks rooms."""
        room = frame.get("room")
        if room is not None:
            self._check_speaks_rooms()
        return room

    def _check_speaks_rooms(self) -> None:
        if not self.member.codec.rooms:
            raise ProtocolError(
                "bad_frame", "Rooms are for clients that log in with a 'rooms' field."
            )

    def _on_ping(self, frame: Frame, now: float) -> Effects:
        return Effects([events.Pong(frame.get("token"))])

    def _on_pong(self, frame: Frame, now: float) -> Effects:
        return Effects()  # hearing anything at all already reset the idle timer

    def _on_quit(self, frame: Frame, now: float) -> Effects:
        return Effects(close="quit")

    def _on_second_login(self, frame: Frame, now: float) -> Effects:
        raise ProtocolError("bad_frame", "You are logged in already.")


def _not_here(kind: str) -> ProtocolError:
    """The error for a frame type the current phase has no handler for."""
    if kind not in protocol.CLIENT_FRAMES:
        return ProtocolError("unknown_type", f"Unknown frame type {kind!r}.")
    return ProtocolError("not_logged_in", "Log in first.")


# Before login a client may only log in, ping and quit (the contract's Handshake, 6.).
_LOGIN_PHASE: Dict[str, Handler] = {
    "login": Session._on_login,
    "ping": Session._on_ping,
    "quit": Session._on_quit,
}
_CHAT_PHASE: Dict[str, Handler] = {
    "login": Session._on_second_login,
    "say": Session._on_say,
    "who": Session._on_who,
    "join": Session._on_join,
    "part": Session._on_part,
    "topic": Session._on_topic,
    "rooms": Session._on_rooms,
    "nick": Session._on_nick,
    "away": Session._on_away,
    "whois": Session._on_whois,
    "register": Session._on_register,
    "unregister": Session._on_unregister,
    "name_password": Session._on_name_password,
    **{kind: Session._on_operator_frame for kind in operators.OPERATOR_FRAMES},
    "ping": Session._on_ping,
    "pong": Session._on_pong,
    "quit": Session._on_quit,
}
