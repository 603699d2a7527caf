"""The client model's people (protocol 4.3): renames, away, whois, registered names,
notices, the operator commands, and the ignore list and bell kept in the settings.

`People` is a part of `chat.model.ClientModel` (a base class, as `chat.roomevents` is),
kept apart so the model stays readable. Its commands ask the server through the model's
`Requests` (at the server's pace, each with a `ref` its answer or error carries); the
answers become lines of the message pane. Whom the user ignores and when the bell rings
are `chat.settings.Settings`, written to the settings file when they change.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from lanchat import names, protocol
from lanchat.chat.actions import Action
from lanchat.chat.outbox import Outbox
from lanchat.chat.requests import Requests
from lanchat.chat.rooms import Room, Rooms
from lanchat.chat.settings import BELL_MODES, Ignored, Settings
from lanchat.chat.termtext import safe_text
from lanchat.protocol import Frame

if TYPE_CHECKING:
    from lanchat.chat.model import Entry

FATAL_ERRORS = ("kicked", "banned", "bad_identity")  # the client must not come back by itself
NAME_REFUSALS = ("name_taken", "invalid_name", "name_registered")  # at login: ask another
MOTD_CLEAR = "clear"  # `/motd clear` clears the message of the day


def _str(value: object) -> Optional[str]:
    """A text field of a frame made safe to show, or None if it is not a text."""
    return safe_text(value) if isinstance(value, str) else None


def when(ts: float, now: float) -> str:
    """A moment for a person: HH:MM on the day of `now`, else with the date."""
    today = time.localtime(now)[:3] == time.localtime(ts)[:3]
    return time.strftime("%H:%M" if today else "%Y-%m-%d %H:%M", time.localtime(ts))


def span(seconds: float) -> str:
    """A duration for a person: `42 s`, `5 min`, `3 h 20 min`, `2 d 4 h`."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def until_text(until: object, now: float) -> str:
    """` until HH:MM` for a time, else ` for good` (a ban without an end)."""
    if isinstance(until, (int, float)) and not isinstance(until, bool):
        return f" until {when(float(until), now)}"
    return " for good"


def refusal_text(frame: Frame, now: float) -> str:
    """Why a kick, a ban or a bad identity closed us: who, why and until when."""
    code = frame["code"]
    by, reason, until = _str(frame.get("by")), _str(frame.get("reason")), frame.get("until")
    if code == "bad_identity":
        return f"the server refused our identity key: {safe_text(frame['message'])}"
    text = "kicked" if code == "kicked" else "banned"
    if by:
        text += f" by {by}"
    if code == "banned":
        text += until_text(until, now)
    return text + (f": {reason}" if reason else "")


def _away_line(name: str, text: Optional[str]) -> str:
    return f"{name} is away: {text}" if text is not None else f"{name} is back"


class People:
    """4.3 frames in, 4.3 commands out, the ignore list and the bell: the people half of
    the client model."""

    name: str
    rooms: Rooms
    settings: Settings
    server_version: str
    _requests: Requests
    _out: Outbox

    if TYPE_CHECKING:  # the model's own, which these use

        @property
        def online_is_live(self) -> bool: ...
        def _add(
            self, kind: str, text: str, into: Optional[Room] = None, **fields: object
        ) -> Entry: ...
        def _ask(self, frame: Frame, answer: str, now: float) -> List[Action]: ...
        def _set_members(self, room: Room, members: Sequence[str]) -> None: ...
        def _is_me(self, name: str) -> bool: ...
        def _set_name(self, name: str) -> None: ...
        def _room_field(self, room: Room) -> Optional[str]: ...
        def _give_up(self, reason: str, now: float) -> List[Action]: ...

    def _init_people(self, settings: Optional[Settings]) -> None:
        self.settings = settings or Settings()
        self.operator = False  # the welcome said we are an operator
        self.motd = ""  # the message of the day of the last welcome
        self.away_texts: Dict[str, str] = {}  # name key -> away text, of those away
        self._fingerprints: Dict[str, str] = {}  # name key -> fingerprint seen this run
        self.fatal = False  # kicked, banned or our key refused: we do not come back by ourselves

    # ------------------------------------------------------------------ state

    def is_away(self, name: str) -> bool:
        """True if this person is away (the online list dims them)."""
        return names.name_key(name) in self.away_texts

    def _take_away(self, away: object) -> None:
        """Who is away, from a welcome or a joined (4.3): name -> text."""
        if isinstance(away, dict):
            for name, text in away.items():
                if isinstance(name, str) and isinstance(text, str):
                    self.away_texts[names.name_key(name)] = safe_text(text)

    def _welcome_people(self, frame: Frame, now: float) -> None:
        """What a welcome says of us and the others (4.3): operator, motd, who is away."""
        self.operator = frame.get("operator") is True
        self.away_texts.clear()
        self._take_away(frame.get("away"))
        motd = _str(frame.get("motd")) or ""
        if motd and motd != self.motd:
            self._add("system", f"message of the day: {motd}", ts=now)
        self.motd = motd

    def _ignores(self, frame: Frame, now: float) -> bool:
        """True if the sender of this message is ignored. Learns the fingerprint of a
        registered sender, and keeps it for an ignored one who had none yet."""
        sender = safe_text(frame["from"])
        fingerprint = _str(frame.get("fingerprint"))
        if fingerprint:
            self._fingerprints[names.name_key(sender)] = fingerprint
        if self._is_me(sender):
            return False
        ignored = self.settings.find_ignored(sender, fingerprint)
        if ignored is not None and fingerprint and ignored.fingerprint is None:
            ignored.fingerprint = fingerprint
            self._save_settings(now)
        return ignored is not None

    def _rings(self, rang: bool) -> bool:
        """Whether the bell rings for a message from somebody else: `rang` is what
        `mentions` does (a mention where we look, a room's first one elsewhere)."""
        if self.settings.bell == "off":
            return False
        return True if self.settings.bell == "all" else rang

    def _save_settings(self, now: float) -> None:
        problem = self.settings.save()
        if problem:
            self._add("error", problem, ts=now)

    # ------------------------------------------------------------------ frames

    def _refused_for_good(self, frame: Frame, now: float) -> List[Action]:
        """Kicked, banned or our identity refused: say who and why, and stop."""
        self.fatal = True
        return self._give_up(refusal_text(frame, now), now)

    def _shared_rooms(self, name: str) -> List[Room]:
        """The rooms we know this person is in (none known: the current one)."""
        key = names.name_key(name)
        shared = [r for r in self.rooms.rooms if any(names.name_key(m) == key for m in r.members)]
        return shared or [self.rooms.current]

    def _about(self, name: str, text: str, ts: float) -> None:
        """A system line about somebody in each room we share with them."""
        for room in self._shared_rooms(name):
            self._add("system", text, room, ts=ts, room=self._room_field(room))

    def _frame_nick(self, frame: Frame, now: float) -> List[Action]:
        """Somebody (or we) took another name (4.3): the lists, away texts, known keys and
        ignore list follow them."""
        old, new = safe_text(frame["old"]), safe_text(frame["new"])
        old_key = names.name_key(old)
        rooms = self._shared_rooms(old)
        mine = self._is_me(old)
        if mine:  # first: our new name is drawn as ours, never given a colour
            self._requests.answered("nick", None, frame.get("ref"))
            self._set_name(new)
        for room in rooms:
            if any(names.name_key(m) == old_key for m in room.members):
                others = [m for m in room.members if names.name_key(m) != old_key]
                self._set_members(room, [*others, new])
        for known in (self.away_texts, self._fingerprints):
            if old_key in known:
                known[names.name_key(new)] = known.pop(old_key)
        if mine:
            self._add("system", f"you are now {new}", ts=frame["ts"])
            return []
        renamed = [item for item in self.settings.ignored if names.name_key(item.name) == old_key]
        for item in renamed:
            item.name = new
        if renamed:
            self._save_settings(now)
        for room in rooms:
            line = f"{old} is now {new}"
            self._add("system", line, room, ts=frame["ts"], room=self._room_field(room))
        return []

    def _frame_away(self, frame: Frame, now: float) -> List[Action]:
        """Somebody is away or back, or answers our private message with their away text."""
        name, text = safe_text(frame["name"]), _str(frame.get("text"))
        if frame.get("reply") is True:
            if not self.settings.find_ignored(name, self._fingerprints.get(names.name_key(name))):
                self._add("system", _away_line(name, text or "away"), ts=frame["ts"])
            return []
        key = names.name_key(name)
        if text is None:
            self.away_texts.pop(key, None)
        else:
            self.away_texts[key] = text
        if self._is_me(name):
            self._requests.answered("away", None, frame.get("ref"))
            line = f"you are away: {text}" if text is not None else "you are back"
            self._add("system", line, ts=frame["ts"])
        elif self.settings.find_ignored(name, self._fingerprints.get(key)) is None:
            self._about(name, _away_line(name, text), frame["ts"])
        return []

    def _frame_whois(self, frame: Frame, now: float) -> List[Action]:
        """/whois answered: when they came, idle time, away, identity, client, rooms."""
        self._requests.answered("whois", None, frame.get("ref"))
        name = safe_text(frame["name"])
        fingerprint = _str(frame.get("fingerprint"))
        if fingerprint:
            self._fingerprints[names.name_key(name)] = fingerprint
            ignored = self.settings.find_ignored(name)
            if ignored is not None and ignored.fingerprint is None:
                ignored.fingerprint = fingerprint
                self._save_settings(now)
        since, idle = frame["since"], frame["idle"]
        lines = [f"{name}: online since {when(since, now)}, idle {span(idle)}"]
        away = _str(frame.get("away"))
        if away is not None:
            lines.append(f"  away: {away}")
        registered = "registered" if frame["registered"] is True else "not registered"
        key = f", key {fingerprint}" if fingerprint else ""
        operator = ", operator" if frame["operator"] is True else ""
        lines.append(f"  {registered}{key}{operator}")
        client = _str(frame.get("client"))  # 4.4: lanchat, web or irc
        if client:
            lines.append(f"  client: {client}")
        rooms = [safe_text(r) for r in frame["rooms"]]
        if rooms:
            lines.append(f"  rooms: {', '.join(rooms)}")
        address = _str(frame.get("address"))
        if address:
            lines.append(f"  address: {address}")
        for line in lines:
            self._add("info", line, ts=now)
        return []

    def _frame_registered(self, frame: Frame, now: float) -> List[Action]:
        """/register answered: our name is bound to our key on this server."""
        self._requests.answered("registered", None, frame.get("ref"))
        name, fingerprint = safe_text(frame["name"]), safe_text(frame["fingerprint"])
        self._add("system", f"{name} is registered to your key ({fingerprint})", ts=now)
        return []

    def _frame_unregistered(self, frame: Frame, now: float) -> List[Action]:
        """/unregister answered: that name is free for anybody now."""
        self._requests.answered("unregistered", None, frame.get("ref"))
        self._add("system", f"{safe_text(frame['name'])} is no longer registered", ts=now)
        return []

    def _frame_name_password(self, frame: Frame, now: float) -> List[Action]:
        """/namepassword answered (4.4): whether our registered name has a password now."""
        self._requests.answered("name_password", None, frame.get("ref"))
        if frame["set"] is True:
            name = safe_text(self.name)
            text = f"your name password is set: IRC clients and bots may log in as {name} with it"
        else:
            text = "your name password is cleared: only your key logs in under your name"
        self._add("system", text, ts=now)
        return []

    def _frame_notice(self, frame: Frame, now: float) -> List[Action]:
        """What the server says (4.3): in its room if we are in it, else the current one."""
        ref = frame.get("ref")
        if ref is not None:
            self._requests.answered_by(ref)  # the answer to an operator command
        room_name = frame.get("room")
        room = self.rooms.find(room_name) if isinstance(room_name, str) else None
        room = room or self.rooms.current
        text = safe_text(frame["text"])
        self._add("system", f"server: {text}", room, ts=frame["ts"], room=self._room_field(room))
        return []

    def _frame_ban_list(self, frame: Frame, now: float) -> List[Action]:
        """/bans answered: each ban, its kind, who made it, until when and why."""
        self._requests.answered("ban_list", None, frame.get("ref"))
        bans = [item for item in frame["bans"] if isinstance(item.get("target"), str)]
        self._add("info", f"bans ({len(bans)}):" if bans else "no bans", ts=now)
        for item in bans:
            kind, by, reason = (_str(item.get(k)) for k in ("kind", "by", "reason"))
            line = f"  {safe_text(item['target'])}" + (f" ({kind})" if kind else "")
            line += (f" by {by}" if by else "") + until_text(item.get("until"), now)
            self._add("info", line + (f": {reason}" if reason else ""), ts=now)
        return []

    # ------------------------------------------------------------------ commands

    def ask_server(self, frame: Frame, answer: str, now: float) -> List[Action]:
        """A 4.3 command: sent with a ref at the server's pace, once logged in to a
        server that knows it; `answer` is the type of the frame that answers it."""
        if not self.online_is_live:
            self._add("info", "not online right now; try again once connected", ts=now)
            return []
        if protocol.minor_of(self.server_version) < 3:
            what = f"/{frame['type']}"
            self._add("info", f"this server (lanchat {self.server_version}) has no {what}", ts=now)
            return []
        frame["ref"] = self._out.new_ref()
        return self._ask(frame, answer, now)

    def ignore(self, name: str, now: float) -> List[Action]:
        """/ignore NAME: hide their messages and private messages, and kept so."""
        key = names.name_key(name)
        known = next((i for i in self.settings.ignored if names.name_key(i.name) == key), None)
        if known is not None:
            self._add("info", f"you already ignore {known.name}", ts=now)
            return []
        if self._is_me(name):
            self._add("info", "you cannot ignore yourself", ts=now)
            return []
        fingerprint = self._fingerprints.get(key)
        self.settings.ignored.append(Ignored(name, fingerprint))
        by_key = f" (and their key {fingerprint}, under any name)" if fingerprint else ""
        self._add("info", f"ignoring {name}{by_key}", ts=now)
        self._save_settings(now)
        return []

    def unignore(self, name: str, now: float) -> List[Action]:
        """/unignore NAME: show them again."""
        key = names.name_key(name)
        kept = [i for i in self.settings.ignored if names.name_key(i.name) != key]
        if len(kept) == len(self.settings.ignored):
            self._add("info", f"you do not ignore {name}", ts=now)
            return []
        self.settings.ignored = kept
        self._add("info", f"no longer ignoring {name}", ts=now)
        self._save_settings(now)
        return []

    def list_ignored(self, now: float) -> List[Action]:
        """/ignore alone: whom we ignore."""
        listed = [
            i.name + (f" ({i.fingerprint})" if i.fingerprint else "") for i in self.settings.ignored
        ]
        text = f"ignoring ({len(listed)}): {', '.join(listed)}" if listed else "ignoring nobody"
        self._add("info", text, ts=now)
        return []

    def set_bell(self, mode: str, now: float) -> List[Action]:
        """/bell off|mentions|all (alone: say which)."""
        if not mode:
            self._add("info", f"bell: {self.settings.bell} (/bell off|mentions|all)", ts=now)
            return []
        if mode not in BELL_MODES:
            self._add("info", "usage: /bell off|mentions|all", ts=now)
            return []
        self.settings.bell = mode
        self._add("info", f"bell: {mode}", ts=now)
        self._save_settings(now)
        return []

    def show_motd(self, now: float) -> List[Action]:
        """/motd alone: the message of the day of this server, as the welcome said."""
        self._add(
            "info",
            f"message of the day: {self.motd}" if self.motd else "no message of the day",
            ts=now,
        )
        return []
