"""The operators' commands (protocol 4.3): kick, ban, unban, bans, mute, unmute, motd, the
topic of any room, and the release of any registered name.

One path for every operator, a client's session or the server console
(`ChatServer.operate`): `run(chat, by, frame)` checks the frame, changes what it must
(history first: a failure changes nothing), logs who did what to whom and why, and returns
the events that answer the operator and the members the caller must close.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from lanchat import names, protocol
from lanchat.core import events
from lanchat.core.chat import Chat, banned_event
from lanchat.core.moderation import Ban, Mute, address_target
from lanchat.core.rooms import Member
from lanchat.protocol import Frame, ProtocolError

log = logging.getLogger(__name__)

MAX_DURATION = 10 * 365 * 24 * 3600.0  # a longer ban or mute is one for good, spelt oddly

# What only an operator may send (`topic` and `unregister` only on another's behalf).
OPERATOR_FRAMES = ("kick", "ban", "unban", "bans", "mute", "unmute", "motd")
CONSOLE_FRAMES = (*OPERATOR_FRAMES, "topic", "unregister")


@dataclass
class Outcome:
    """What an operator's frame did: the answer for the operator, the members to close."""

    answer: List[events.Event] = field(default_factory=list)
    closed: List[Member] = field(default_factory=list)


def run(chat: Chat, by: str, frame: Frame) -> Outcome:
    """Carry out one operator frame (validated) on behalf of the operator named `by`."""
    return _COMMANDS[frame["type"]](chat, by, frame)


def _kick(chat: Chat, by: str, frame: Frame) -> Outcome:
    target = _online(chat, frame)
    reason = _reason(frame)
    because = f": {reason}" if reason else ""
    error = _error("kicked", f"You were kicked by {by}{because}.", by=by, reason=reason)
    closed = chat.expel(lambda m: m is target, error, lambda n: f"{n} was kicked by {by}{because}")
    log.info("operator %s kicked %s (%s): %s", by, target.name, target.address, reason or "-")
    return _done(chat, frame, f"You kicked {target.name}{because}.", closed)


def _ban(chat: Chat, by: str, frame: Frame) -> Outcome:
    target = frame["target"]
    reason = _reason(frame)
    now = chat.now()
    duration = _duration(frame)
    until = None if duration is None else round(now + duration, 3)
    ban = _ban_for(chat, target, by, reason, until)
    because = f": {reason}" if reason else ""
    closed = chat.expel(
        lambda m: ban.matches(m.identity, m.key, m.address),
        banned_event(ban),
        lambda n: f"{n} was banned by {by}{because}",
        commit=lambda: chat.moderation.add_ban(ban),
    )
    spell = "for good" if duration is None else f"for {duration:g} s"
    log.info(
        "operator %s banned %s (%s %s) %s: %s", by, ban.target, ban.kind, ban.match, spell, reason
    )
    kicked = f" ({', '.join(m.name for m in closed)} closed)" if closed else ""
    return _done(chat, frame, f"You banned {ban.target} ({ban.kind}) {spell}{kicked}.", closed)


def _ban_for(chat: Chat, target: str, by: str, reason: str, until: Optional[float]) -> Ban:
    """The ban a target means: an address; else the name's registered identity, if it has
    one; else the name."""
    address = address_target(target)
    if address is not None:
        return Ban("address", address, target, by, reason, until)
    spelt = names.validate_name(target)
    key = names.name_key(spelt)
    holder = chat.find(spelt)
    registered = chat.registration(key)
    if registered is not None:
        return Ban("identity", registered, holder.name if holder else spelt, by, reason, until)
    return Ban("name", key, holder.name if holder else spelt, by, reason, until)


def _unban(chat: Chat, by: str, frame: Frame) -> Outcome:
    target = frame["target"]
    lifted = chat.moderation.lift(target, chat.now())
    log.info("operator %s lifted %d ban(s) on %s", by, len(lifted), target)
    if not lifted:
        return _done(chat, frame, f"{target} was not banned.")
    return _done(chat, frame, f"You lifted the ban on {target}.")


def _bans(chat: Chat, by: str, frame: Frame) -> Outcome:
    entries = tuple(ban.entry() for ban in chat.moderation.bans(chat.now()))
    return Outcome([events.BanList(entries, protocol.ref_of(frame))])


def _mute(chat: Chat, by: str, frame: Frame) -> Outcome:
    spelt = names.validate_name(frame["name"])
    duration = _duration(frame)
    now = chat.now()
    until = None if duration is None else round(now + duration, 3)
    chat.moderation.mute(names.name_key(spelt), Mute(by, until))
    spell = "while the server runs" if duration is None else f"for {duration:g} s"
    holder = chat.find(spelt)
    if holder is not None:
        chat.announce(f"{by} muted you {spell}.", to=holder)
    log.info("operator %s muted %s %s", by, spelt, spell)
    return _done(chat, frame, f"You muted {spelt} {spell}.")


def _unmute(chat: Chat, by: str, frame: Frame) -> Outcome:
    spelt = names.validate_name(frame["name"])
    if not chat.moderation.unmute(names.name_key(spelt), chat.now()):
        return _done(chat, frame, f"{spelt} was not muted.")
    holder = chat.find(spelt)
    if holder is not None:
        chat.announce(f"{by} let you speak again.", to=holder)
    log.info("operator %s unmuted %s", by, spelt)
    return _done(chat, frame, f"You unmuted {spelt}.")


def _motd(chat: Chat, by: str, frame: Frame) -> Outcome:
    text = frame["text"]
    if len(text) > protocol.MAX_TEXT:
        raise ProtocolError("too_long", f"A message of the day is at most {protocol.MAX_TEXT}.")
    cleaned = names.strip_controls(text).strip()
    chat.moderation.set_motd(cleaned)
    log.info("operator %s set the message of the day: %s", by, cleaned or "(none)")
    return _done(chat, frame, "You set the message of the day." if cleaned else "No motd now.")


def _topic(chat: Chat, by: str, frame: Frame) -> Outcome:
    text = frame.get("text")
    if text is None:
        raise ProtocolError("bad_frame", "An operator's topic needs a 'text'.")
    topic = chat.set_topic_as(by, frame["room"], text, protocol.ref_of(frame))
    log.info("operator %s set the topic of %s: %s", by, topic.room, topic.text)
    return Outcome([topic])


def _unregister(chat: Chat, by: str, frame: Frame) -> Outcome:
    name = frame.get("name")
    if name is None:
        raise ProtocolError("bad_frame", "Name the name to release.")
    released = chat.release(name, protocol.ref_of(frame))
    log.info("operator %s released the registered name %s", by, released.name)
    return Outcome([released])


_COMMANDS: Dict[str, Callable[[Chat, str, Frame], Outcome]] = {
    "kick": _kick,
    "ban": _ban,
    "unban": _unban,
    "bans": _bans,
    "mute": _mute,
    "unmute": _unmute,
    "motd": _motd,
    "topic": _topic,
    "unregister": _unregister,
}


def _online(chat: Chat, frame: Frame) -> Member:
    member = chat.find(frame["name"])
    if member is None:
        raise ProtocolError("no_such_user", f"{frame['name']!r} is not online.")
    return member


def _reason(frame: Frame) -> str:
    """The frame's reason, cleaned like a topic ("" for none)."""
    return names.clean_topic(frame.get("reason", ""))


def _duration(frame: Frame) -> Optional[float]:
    """The frame's duration in seconds; None for good."""
    duration = frame.get("duration")
    if duration is None:
        return None
    if not (0 < duration and math.isfinite(duration)):
        raise ProtocolError("bad_frame", "A duration is a number of seconds above 0.")
    return None if duration > MAX_DURATION else float(duration)


def _error(code: str, message: str, **fields: object) -> events.Error:
    return events.Error(code, message, None, tuple(fields.items()))


def _done(chat: Chat, frame: Frame, text: str, closed: Optional[List[Member]] = None) -> Outcome:
    """The notice that tells the operator what was done, with the frame's ref."""
    return Outcome([chat.notice_for(text, protocol.ref_of(frame))], closed or [])
