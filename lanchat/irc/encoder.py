"""Lanchat events as the IRC lines one connection's client reads.

An IRC line depends on the connection (its nick is in every numeric; server-time and
echo-message are per client), so each connection has an encoder of its own, sharing the
connection's `IrcState` with its decoder. What a room's members all read alike (a
message, JOIN, PART, QUIT, NICK, AWAY, TOPIC) is built once per flavour and the same bytes
go to every connection of that flavour (`SharedLines`).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from lanchat import names, protocol
from lanchat.core import events
from lanchat.core.transport import Decoder
from lanchat.irc import lines, masks, modes
from lanchat.irc.lines import SERVER, line, numeric, prefix
from lanchat.irc.state import Asked, IrcState

_connections = itertools.count(1)

# lanchat error codes as IRC numerics (the target, when the command had one, goes first)
ERROR_NUMERICS = {
    "no_such_user": ("401", "No such nick"),
    "no_such_room": ("403", "No such channel"),
    "invalid_room": ("403", "Bad channel name"),
    "not_in_room": ("442", "You're not on that channel"),
    "muted": ("404", "Cannot send to channel (you are muted)"),
    "too_many_joined": ("405", "You have joined too many channels"),
    "bad_text": ("412", "No text to send"),
    "invalid_name": ("432", "Erroneous nickname"),
    "name_taken": ("433", "Nickname is already in use"),
    "name_registered": ("433", "Nickname is registered: its owner logs in with SASL PLAIN"),
    "name_reclaimed": ("433", "Nickname was taken back by its owner"),
    "not_logged_in": ("451", "You have not registered"),
    "auth_failed": ("464", "Password incorrect"),
    "not_operator": ("482", "You're not channel operator"),
}
CLIENTS = {"lanchat": "the lanchat client", "web": "the web client", "irc": "an IRC client"}
# errors that mean there is nothing to answer with: said by an empty answer alone
NOTHING_THERE = ("no_such_room", "invalid_room", "not_in_room", "no_such_user")
# what ends the answer of a list, when there is nothing (more) to list
LIST_ENDS = {
    "WHO": ("315", "End of /WHO list"),
    "NAMES": ("366", "End of /NAMES list"),
    "LIST": ("323", "End of /LIST"),
}


class SharedLines:
    """The lines of the last event built for each flavour, shared by the IRC connections
    of one listener.

    The core encodes an event once per codec, and each IRC connection is a codec of its
    own; but a room's event reads the same for all its members of one flavour (the
    capabilities that change the bytes, `IrcState.flavour`), so the first of them builds
    the lines and the others take the same bytes. A fan-out encodes its event for its
    members one after the other, so the last event is the one asked for again. No lock:
    a look-up and a store are one dict operation each; two fan-outs that race build
    their lines twice, never wrong ones (the event is kept with its bytes, so `is` cannot
    meet another event that reuses its id).
    """

    def __init__(self) -> None:
        self._last: Dict[str, Tuple[object, bytes]] = {}

    def of(self, event: object, flavour: str, build: Callable[[], bytes]) -> bytes:
        """The event's lines for this flavour: the same bytes as last time, or built now."""
        last = self._last.get(flavour)
        if last is not None and last[0] is event:
            return last[1]
        data = build()
        self._last[flavour] = (event, data)
        return data


class IrcLinkCodec:
    """One IRC connection's encoder: lanchat events as the IRC lines its client reads."""

    client = "irc"
    rooms = True
    minor = protocol.MINOR

    def __init__(self, state: IrcState, shared: SharedLines) -> None:
        self.state = state
        self._shared = shared
        self.name = f"irc#{next(_connections)}"  # encoded for this connection only
        self._last_quit: Tuple[str, float] = ("", 0.0)  # who left the server last, when
        self._lines: Dict[Type[Any], Callable[[Any], bytes]] = {
            events.Hello: self._hello,
            events.Welcome: self._welcome,
            events.Joined: self._presence_change,
            events.Left: self._presence_change,
            events.Presence: lambda e: b"".join(self._presence_change(c) for c in e.changes),
            events.Message: self._message,
            events.Online: self._online,
            events.RoomJoined: self._room_joined,
            events.RoomParted: self._parted,
            events.Topic: self._topic,
            events.RoomList: self._room_list,
            events.Notice: self._notice,
            events.Renamed: self._renamed,
            events.Away: self._away,
            events.Whois: self._whois,
            events.Registered: lambda e: self._server_notice(f"{e.name} is registered now."),
            events.Unregistered: lambda e: self._server_notice(f"{e.name} is not registered now."),
            events.BanList: self._ban_list,
            events.Ping: lambda e: line(None, "PING", str(e.token or SERVER)),
            events.Pong: self._pong,
            events.Error: self._error,
            events.Shutdown: lambda e: self._server_notice(e.message),
        }

    def for_login(self, speaks_rooms: bool, version: str) -> IrcLinkCodec:
        """Itself: IRC speaks rooms and this version."""
        return self

    def decoder(self) -> Decoder:
        """Not used: the listener's IrcCodec makes decoders."""
        raise NotImplementedError

    def encode(self, event: events.Event) -> bytes:
        """The event as IRC lines for this connection."""
        return self._lines[type(event)](event)

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """ERROR with the reason."""
        return line(None, "ERROR", error.message)

    @property
    def _nick(self) -> str:
        return self.state.nick or "*"

    @property
    def _name(self) -> str:
        return lines.lanchat_name(self.state.nick)

    def _same_for_all(self, event: object, build: Callable[[], bytes]) -> bytes:
        """Lines that depend on the event and this connection's flavour alone."""
        return self._shared.of(event, self.state.flavour(), build)

    def _notice(self, event: events.Notice) -> bytes:
        asked = self.state.answered(event.ref)
        notice = self._server_notice(event.text, event.room)
        if asked is not None and asked.command in (modes.BAN, modes.UNBAN):
            sign = "+b" if asked.command == modes.BAN else "-b"
            return line(prefix(self._name), "MODE", asked.target, sign, asked.detail) + notice
        return notice

    def _server_notice(self, text: str, room: Optional[str] = None) -> bytes:
        return b"".join(
            line(SERVER, "NOTICE", room or self._nick, t) for t in lines.split_text(text, 400)
        )

    # -- registration --------------------------------------------------------------------

    def _hello(self, event: events.Hello) -> bytes:
        """Nothing on IRC: the nonce says whether the login needs the PASS."""
        self.state.nonce = event.nonce
        self.state.max_joined = event.max_joined or 0
        return b""

    def _welcome(self, event: events.Welcome) -> bytes:
        self.state.logged_in = True
        self.state.nick = lines.irc_nick(event.name)
        self.state.motd = event.motd
        nick = self._nick
        version = f"lanchat-{protocol.VERSION}"
        isupport = [
            "CHANTYPES=#",
            "CASEMAPPING=rfc8265",
            f"NICKLEN={protocol.MAX_NAME}",
            f"CHANNELLEN={protocol.MAX_ROOM + 1}",
            f"TOPICLEN={protocol.MAX_TOPIC}",
            "UTF8ONLY",
            "NETWORK=lanchat",
            "PREFIX=(o)@",
            "CHANMODES=b,,,",
            f"ELIST={masks.ELIST}",
        ]
        if self.state.max_joined:
            isupport.append(f"CHANLIMIT=#:{self.state.max_joined}")
        return b"".join(
            [
                numeric("001", nick, f"Welcome to lanchat, {nick}"),
                numeric("002", nick, f"Your host is {SERVER}, running {version}"),
                numeric("003", nick, "This server speaks lanchat rooms over IRC"),
                numeric("004", nick, SERVER, version, "o", "b"),
                numeric("005", nick, *isupport, "are supported by this server"),
                self.lusers(len(event.online)),
                self.motd(),
            ]
        )

    def lusers(self, online: int) -> bytes:
        """251 and 255 (modern IRC's must): how many are online."""
        users = f"There are {online} users and 0 invisible on 1 servers"
        me = f"I have {online} clients and 0 servers"
        return numeric("251", self._nick, users) + numeric("255", self._nick, me)

    def motd(self) -> bytes:
        """The message of the day (375/372/376), or 422 when there is none."""
        if not self.state.motd:
            return numeric("422", self._nick, "MOTD File is missing")
        body = [
            numeric("372", self._nick, "- " + t) for t in lines.split_text(self.state.motd, 400)
        ]
        start = numeric("375", self._nick, f"- {SERVER} Message of the day -")
        return start + b"".join(body) + numeric("376", self._nick, "End of /MOTD command")

    # -- rooms ---------------------------------------------------------------------------

    def _room_joined(self, event: events.RoomJoined) -> bytes:
        self.state.answered(event.ref)
        out = [line(prefix(self._name), "JOIN", event.room)]
        if event.topic:
            out.append(numeric("332", self._nick, event.room, event.topic))
            if event.topic_by and event.topic_ts:
                out.append(self._topic_by(event.room, event.topic_by, event.topic_ts))
        out.append(self._names(event.room, event.members, event.operators))
        out.extend(self._message(m) for m in event.history)
        return b"".join(out)

    def _names(self, room: str, members: Tuple[str, ...], operators: Tuple[str, ...]) -> bytes:
        """353 (as many as it takes; operators with `@`) and 366."""
        out: List[bytes] = []
        nicks = [("@" if m in operators else "") + lines.irc_nick(m) for m in members]
        while nicks:
            chunk, size = [], 0
            while nicks and size + len(nicks[0].encode()) + 1 < 400:
                size += len(nicks[0].encode()) + 1
                chunk.append(nicks.pop(0))
            out.append(numeric("353", self._nick, "=", room, " ".join(chunk)))
        out.append(numeric("366", self._nick, room, "End of /NAMES list"))
        return b"".join(out)

    def _online(self, event: events.Online) -> bytes:
        """The answer to a `who`: what the command that asked it wants of it."""
        room = event.room or "*"
        asked = self.state.next_in(self.state.lists) or Asked("NAMES", room)
        if asked.command == "NAMES":
            return self._names(room, event.names, event.operators)
        if asked.command == "ISON":
            return self._ison(asked.target.split(), event.names)
        if asked.command == "LUSERS":
            return self.lusers(len(event.names))
        shown = event.names
        if masks.has_wildcards(asked.target) and not asked.target.startswith("#"):
            shown = tuple(n for n in shown if self._matches(asked.target, n))
        away, operators = set(event.away), set(event.operators)
        who = [self._who_row(room, n, n in away, n in operators) for n in shown]
        return b"".join(who) + numeric("315", self._nick, asked.target, "End of /WHO list")

    @staticmethod
    def _matches(mask: str, name: str) -> bool:
        """Whether a WHO mask matches somebody, by nick or by lanchat name."""
        return masks.matches(mask, lines.irc_nick(name)) or masks.matches(mask, name)

    def _ison(self, nicks: List[str], online: Tuple[str, ...]) -> bytes:
        """303: those of the nicks asked about who are online, as they are spelt."""
        keys = {names.name_key(n): n for n in online}
        found = [keys.get(names.name_key(lines.lanchat_name(n))) for n in nicks]
        return numeric("303", self._nick, " ".join(lines.irc_nick(n) for n in found if n))

    def _who_row(self, room: str, name: str, away: bool, operator: bool) -> bytes:
        """352: one member, H(ere) or G(one) (and `@` for an operator), with its lanchat name
        as the real name."""
        nick = lines.irc_nick(name)
        here = ("G" if away else "H") + ("@" if operator else "")
        return numeric("352", self._nick, room, nick, SERVER, SERVER, nick, here, "0 " + name)

    def _room_list(self, event: events.RoomList) -> bytes:
        asked = self.state.next_in(self.state.room_lists)
        wanted = masks.RoomFilter(asked.target if asked is not None else "")
        out = [numeric("321", self._nick, "Channel", "Users  Name")]
        for room, users, topic in event.rooms:
            if wanted.passes(room, users):
                out.append(numeric("322", self._nick, room, str(users), topic or " "))
        return b"".join(out) + numeric("323", self._nick, "End of /LIST")

    def _parted(self, event: events.RoomParted) -> bytes:
        self.state.answered(event.ref)
        return line(prefix(self._name), "PART", event.room)

    def _topic(self, event: events.Topic) -> bytes:
        asked = self.state.answered(event.ref)
        if asked is not None and asked.command == "TOPIC?":
            if not event.text:
                return numeric("331", self._nick, event.room, "No topic is set")
            out = numeric("332", self._nick, event.room, event.text)
            if event.by and event.ts:
                out += self._topic_by(event.room, event.by, event.ts)
            return out
        return self._same_for_all(event, lambda: self._topic_line(event))

    def _topic_line(self, event: events.Topic) -> bytes:
        """TOPIC, from who set it (or the server)."""
        source = prefix(event.by) if event.by else SERVER
        return line(source, "TOPIC", event.room, event.text, tags=self.state.tags(event.ts))

    def _topic_by(self, room: str, by: str, ts: float) -> bytes:
        """333: who set a room's topic, and when."""
        return numeric("333", self._nick, room, lines.irc_nick(by), str(int(ts)))

    def _presence_change(self, event: events.PresenceChange) -> bytes:
        if isinstance(event, events.Left) and event.reason not in ("part", "kicked"):
            if self._last_quit == (event.name, event.ts):
                return b""  # lanchat says it once per room; IRC says QUIT once
            self._last_quit = (event.name, event.ts)
        return self._same_for_all(event, lambda: self._presence_line(event))

    def _presence_line(self, event: events.PresenceChange) -> bytes:
        """JOIN, PART, KICK or QUIT."""
        tags = self.state.tags(event.ts)
        if isinstance(event, events.Joined):
            return line(prefix(event.name), "JOIN", event.room, tags=tags)
        if event.reason == "part":
            return line(prefix(event.name), "PART", event.room, tags=tags)
        if event.reason == "kicked":
            return line(SERVER, "KICK", event.room, lines.irc_nick(event.name), "kicked", tags=tags)
        return line(prefix(event.name), "QUIT", event.reason.capitalize(), tags=tags)

    # -- messages and people -------------------------------------------------------------

    def _message(self, event: events.Message) -> bytes:
        # the hot path (a room's message relayed, without a ref) asks nothing of the state
        asked = self.state.answered(event.ref) if event.ref is not None else None
        own = event.ref is not None and event.sender == self._name
        if own and "echo-message" not in self.state.caps:
            return b""
        if event.room is not None and asked is None:  # read alike by all of a flavour
            return self._same_for_all(event, lambda: self._message_lines(event, False))
        return self._message_lines(event, event.sender == self._name)

    def _message_lines(self, event: events.Message, mine: bool) -> bytes:
        """PRIVMSG (NOTICE for a notice), as many as the text takes."""
        command = "NOTICE" if event.notice else "PRIVMSG"
        target = event.room or lines.irc_nick(event.to if mine and event.to else self._name)
        source = prefix(event.sender)
        text = event.text
        action = text.startswith("/me ")
        if action:
            text = text[4:]
        head = len(f":{source} {command} {target} :".encode()) + 2 + (9 if action else 0)
        tags = self.state.tags(event.ts)
        out = []
        for piece in lines.split_text(text, lines.MAX_LINE - head):
            body = f"\x01ACTION {piece}\x01" if action else piece
            out.append(line(source, command, target, body, tags=tags))
        return b"".join(out)

    def _renamed(self, event: events.Renamed) -> bytes:
        self.state.answered(event.ref)
        if event.old == self._name:
            self.state.nick = lines.irc_nick(event.new)
        return self._same_for_all(
            event, lambda: line(prefix(event.old), "NICK", lines.irc_nick(event.new))
        )

    def _away(self, event: events.Away) -> bytes:
        asked = self.state.answered(event.ref)
        if asked is not None and asked.command == "AWAY":
            if event.text:
                return numeric("306", self._nick, "You have been marked as being away")
            return numeric("305", self._nick, "You are no longer marked as being away")
        if event.reply:
            return numeric("301", self._nick, lines.irc_nick(event.name), event.text or "away")
        if "away-notify" not in self.state.caps:
            return b""
        away = (event.text,) if event.text else ()
        return self._same_for_all(event, lambda: line(prefix(event.name), "AWAY", *away))

    def _whois(self, event: events.Whois) -> bytes:
        asked = self.state.answered(event.ref)
        nick = lines.irc_nick(event.name)
        me = self._nick
        if asked is not None and asked.command == "WHO":
            row = self._who_row("*", event.name, event.away is not None, event.operator)
            return row + numeric("315", me, asked.target, "End of /WHO list")
        if asked is not None and asked.gathered is not None:
            here = "-" if event.away else "+"
            operator = "*" if event.operator else ""
            return self._userhost(asked, f"{nick}{operator}={here}{nick}@{SERVER}")
        out = [numeric("311", me, nick, nick, SERVER, "*", event.name)]
        if event.rooms:
            out.append(numeric("319", me, nick, " ".join(event.rooms)))
        out.append(numeric("312", me, nick, SERVER, "lanchat"))
        if event.away:
            out.append(numeric("301", me, nick, event.away))
        if event.operator:
            out.append(numeric("313", me, nick, "is an operator"))
        if event.registered:
            out.append(numeric("330", me, nick, nick, "has a registered name"))
        if event.client:
            out.append(
                numeric("320", me, nick, f"is using {CLIENTS.get(event.client, 'a client')}")
            )
        out.append(
            numeric(
                "317",
                me,
                nick,
                str(int(event.idle)),
                str(int(event.since)),
                "seconds idle, signon time",
            )
        )
        return b"".join(out) + _end_of_whois(me, asked.target if asked is not None else nick)

    def _pong(self, event: events.Pong) -> bytes:
        """PONG, or the gateway's own reply a ping of its own carried through the session."""
        reply = self.state.reply_of(event.token)
        if reply is not None:
            return reply
        return line(SERVER, "PONG", SERVER, str(event.token or SERVER))

    def _userhost(self, asked: Asked, entry: str) -> bytes:
        """302 once every nick of a USERHOST is answered ("" for one not online)."""
        assert asked.gathered is not None
        if not asked.gathered.add(asked.index, entry):
            return b""
        return numeric("302", self._nick, " ".join(e for e in asked.gathered.entries if e))

    def _said(self, event: events.Error) -> bytes:
        """An error IRC has no numeric for, as a NOTICE from the server."""
        return self._server_notice(event.message)

    def _ban_list(self, event: events.BanList) -> bytes:
        """367 per ban (its mask, who set it), then 368; to the channel MODE asked about."""
        asked = self.state.answered(event.ref)
        room = asked.target if asked is not None else "*"
        out = []
        for fields in event.bans:
            ban = dict(fields)
            mask = modes.ban_mask(str(ban["kind"]), str(ban["target"]))
            out.append(numeric("367", self._nick, room, mask, lines.irc_nick(str(ban["by"]))))
        return b"".join(out) + self._end_of_bans(room)

    def _end_of_bans(self, room: str) -> bytes:
        return numeric("368", self._nick, room, "End of channel ban list")

    def _error(self, event: events.Error) -> bytes:
        asked = self.state.answered(event.ref)
        if asked is not None and asked.command in LIST_ENDS:
            # a list asked of a room that is not there ends empty; any other refusal
            # (rate limited ...) is said, and ends it too, so the client waits no more
            code, text = LIST_ENDS[asked.command]
            about = () if asked.command == "LIST" else (asked.target,)  # 323 names none
            end = numeric(code, self._nick, *about, text)
            said = b"" if event.code in NOTHING_THERE else self._said(event)
            return said + end
        if asked is not None and asked.gathered is not None:
            said = b"" if event.code in NOTHING_THERE else self._said(event)
            return said + self._userhost(asked, "")
        if asked is not None and asked.command == "NOTICE":
            return b""  # NOTICE is never answered (RFC 2812 3.3.2)
        if asked is not None and asked.command == modes.BAN_LIST and event.code == "not_operator":
            return self._end_of_bans(asked.target)  # lanchat shows its bans to operators only
        mapped = ERROR_NUMERICS.get(event.code)
        if mapped is None:
            return self._said(event)
        code, text = mapped
        if code == "442" and asked is not None and asked.command == "PRIVMSG":
            code, text = "404", "Cannot send to channel"
        if code in ("432", "433"):
            target = asked.target if asked is not None else self._nick
            return numeric(code, self._nick if self.state.logged_in else "*", target, text)
        if code in ("412", "451", "464"):
            return numeric(code, self._nick, text)
        target = asked.target if asked is not None else ""
        reply = numeric(code, self._nick, *((target,) if target else ()), text)
        if asked is not None and asked.command == "WHOIS":
            reply += _end_of_whois(self._nick, target)  # a WHOIS always ends so
        return reply


def _end_of_whois(me: str, asked: str) -> bytes:
    """318, naming the nick exactly as the WHOIS did (modern IRC)."""
    return numeric("318", me, asked, "End of /WHOIS list")
