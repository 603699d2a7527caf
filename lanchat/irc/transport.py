"""The IRC transport: IRC clients (irssi, WeeChat, HexChat, bots) as lanchat members.

An `IrcCodec` is what the IRC port's listener speaks. IRC has a say of its own before
the session (CAP negotiation, PASS, NICK and USER) and beside it (PING, MOTD, the CAP
replies), which the decoder answers itself with `take_reply`; once NICK and USER are in
(and CAP ended) it is `opened`, and from then on each command becomes a lanchat frame
(`login`, `join`, `say` ...). The words an IRC client reads depend on the connection
(its nick is in every numeric; server-time and echo-message are per connection), so
every connection has a codec of its own (`IrcCodec.decoder` hands it over with the
decoder, and `Link` takes it): an IRC event is encoded once per IRC member, unlike a
lanchat line.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Type

from lanchat import names, protocol
from lanchat.core import events
from lanchat.irc import lines
from lanchat.irc.lines import SERVER, line, numeric, prefix
from lanchat.protocol import Frame, ProtocolError

IRC_PORT = 6667  # the first port --irc tries (then the next PORT_SPAN)
CAPS = ("server-time", "message-tags", "echo-message", "away-notify", "multi-prefix")
MAX_ASKED = 256  # commands remembered until answered, per connection
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
    "name_registered": ("433", "Nickname is registered to somebody else's key"),
    "name_reclaimed": ("433", "Nickname was taken back by its owner"),
    "not_logged_in": ("451", "You have not registered"),
    "auth_failed": ("464", "Password incorrect"),
    "not_operator": ("482", "You're not channel operator"),
}


class Asked:
    """What a command asked, kept under its ref until the answer comes."""

    def __init__(self, command: str, target: str = "") -> None:
        self.command = command
        self.target = target


class IrcState:
    """One IRC connection's state, shared by its decoder and its codec."""

    def __init__(self) -> None:
        self.nick = ""  # as IRC shows it
        self.user = ""
        self.caps: set = set()
        self.password: Optional[str] = None
        self.nonce: Optional[str] = None  # from the session's hello: a password is asked
        self.max_joined = 0
        self.logged_in = False
        self.motd = ""
        self.online = 0
        self.asked: Dict[str, Asked] = {}
        self.lists: Deque[Asked] = collections.deque(maxlen=MAX_ASKED)  # WHO/NAMES, in order
        self._refs = itertools.count(1)

    def ref(self, command: str, target: str = "") -> str:
        """A fresh ref for a frame, remembering what it asked."""
        token = f"irc{next(self._refs)}"
        self.asked[token] = Asked(command, target)
        if len(self.asked) > MAX_ASKED:  # answers that never came: forget the oldest
            del self.asked[next(iter(self.asked))]
        return token

    def answered(self, ref: Optional[Any]) -> Optional[Asked]:
        """What the frame of this ref asked (once), or None."""
        return self.asked.pop(ref, None) if isinstance(ref, str) else None

    def tags(self, ts: Optional[float]) -> str:
        """The tags of a line about something at `ts`, when the client asked for them."""
        return lines.time_tag(ts) if ts is not None and "server-time" in self.caps else ""


class IrcCodec:
    """The listener's codec: it makes each connection a decoder with a codec of its own."""

    name = "irc"
    rooms = True
    minor = protocol.MINOR

    def for_login(self, speaks_rooms: bool, version: str) -> IrcCodec:
        """IRC speaks rooms and everything of this version."""
        return self

    def decoder(self) -> IrcDecoder:
        """A new connection's decoder; its `codec` is the connection's own."""
        return IrcDecoder(IrcState())

    def encode(self, event: events.Event) -> bytes:
        """Nothing: events go to connections' own codecs only."""
        return b""

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """A connection over the limits: ERROR with the reason."""
        return line(None, "ERROR", error.message)


class IrcDecoder:
    """One IRC connection's lines: registration, then lanchat frames."""

    def __init__(self, state: IrcState) -> None:
        self.state = state
        self.codec = IrcLinkCodec(state)
        self.opened = False  # NICK and USER are in: the session may start
        self.ending: Optional[str] = None
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long line
        self._negotiating = False  # CAP LS came and CAP END has not
        self._frames: Deque[Frame] = collections.deque()
        self._login_due = False
        self._held: List[lines.Line] = []  # commands sent before the login was through
        self._replies: List[bytes] = []

    # -- the Decoder protocol ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes; act on each whole line (at most 512 bytes past the tags)."""
        if self.ending:
            return
        self._buffer += data
        while not self.ending:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > lines.MAX_TAGS + lines.MAX_LINE:
                    self._buffer.clear()
                    self._skipping = True
                return
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                self._reply(numeric("417", self.state.nick, "Input line was too long"))
            elif len(raw) - _tags_length(raw) > lines.MAX_LINE:
                self._reply(numeric("417", self.state.nick, "Input line was too long"))
            else:
                self._command(raw)

    def next_frame(self) -> Optional[Frame]:
        """The next lanchat frame (the login is made once the session has said hello)."""
        if self._login_due:
            self._login_due = False
            return self._login()
        if not self._frames and self._held and self.state.logged_in:
            held, self._held = self._held, []
            for command, params in held:
                self._run(command, params)
        return self._frames.popleft() if self._frames else None

    def take_reply(self) -> bytes:
        """What the transport answers itself, once."""
        reply = b"".join(self._replies)
        self._replies = []
        return reply

    def farewell(self, reason: str) -> bytes:
        """ERROR before the server closes the link."""
        if self.ending:
            return b""  # it said goodbye already (a QUIT before the session)
        self.ending = reason
        return line(None, "ERROR", f"Closing link: {reason}")

    # -- commands ------------------------------------------------------------------------

    def _reply(self, data: bytes) -> None:
        self._replies.append(data)

    def _command(self, raw: bytes) -> None:
        parsed = lines.parse(raw)
        if parsed is None:
            return
        command, params = parsed
        if self.opened and not self.state.logged_in and command in _AFTER:
            if len(self._held) < MAX_ASKED:  # a client that did not wait for 001
                self._held.append(parsed)
            return
        self._run(command, params)

    def _run(self, command: str, params: List[str]) -> None:
        handler = _ALWAYS.get(command) or (_AFTER.get(command) if self.state.logged_in else None)
        if handler is None:
            if self.state.logged_in:
                self._reply(numeric("421", self.state.nick, command, "Unknown command"))
            else:  # before registration every other command is 451 (RFC 2812 5.2)
                self._reply(numeric("451", self.state.nick, "You have not registered"))
            return
        if len(params) < handler.needs:
            self._reply(numeric("461", self.state.nick, command, "Not enough parameters"))
            return
        handler.run(self, params)

    def _cap(self, params: List[str]) -> None:
        sub = params[0].upper()
        nick = self.state.nick or "*"
        if sub == "LS":
            self._negotiating = not self.state.logged_in
            self._reply(line(SERVER, "CAP", nick, "LS", " ".join(CAPS)))
        elif sub == "LIST":
            self._reply(line(SERVER, "CAP", nick, "LIST", " ".join(sorted(self.state.caps))))
        elif sub == "REQ" and len(params) > 1:
            self._negotiating = not self.state.logged_in
            wanted = params[1].split()
            known = all(w.lstrip("-") in CAPS for w in wanted)
            if known:
                for w in wanted:
                    if w.startswith("-"):
                        self.state.caps.discard(w[1:])
                    else:
                        self.state.caps.add(w)
            self._reply(line(SERVER, "CAP", nick, "ACK" if known else "NAK", params[1]))
        elif sub == "END":
            self._negotiating = False
            self._register()
        else:
            self._reply(numeric("410", nick, params[0], "Invalid CAP command"))

    def _pass(self, params: List[str]) -> None:
        if self.opened:
            self._reply(numeric("462", self.state.nick, "You may not reregister"))
            return
        self.state.password = params[0]

    def _nick(self, params: List[str]) -> None:
        nick = params[0]
        try:
            if "." in nick:
                raise ProtocolError("invalid_name", "'.' is shown as '|' on IRC")
            name = names.validate_name(lines.lanchat_name(nick))
        except ProtocolError:
            self._reply(numeric("432", self.state.nick, nick, "Erroneous nickname"))
            return
        if self.state.logged_in:
            self._frames.append(protocol.nick(name, ref=self.state.ref("NICK", nick)))
            return
        self.state.nick = lines.irc_nick(name)
        if self.opened:
            self._login_due = True  # another try after 433
        else:
            self._register()

    def _user(self, params: List[str]) -> None:
        if self.opened:
            self._reply(numeric("462", self.state.nick, "You may not reregister"))
            return
        self.state.user = params[0]
        self._register()

    def _register(self) -> None:
        if self.state.nick and self.state.user and not self._negotiating and not self.opened:
            self.opened = True
            self._login_due = True

    def _login(self) -> Frame:
        name = lines.lanchat_name(self.state.nick)
        auth = None
        if self.state.nonce is not None:
            proof = protocol.password_proof(self.state.password or "", self.state.nonce, name)
            auth = proof if self.state.password is not None else ""
        return protocol.login(name, auth=auth, rooms=[])

    def _ping(self, params: List[str]) -> None:
        """PING: the session's ping once it runs (so it counts against the rate limit)."""
        if self.opened:
            self._frames.append(protocol.ping(params[0]))
        else:
            self._reply(line(SERVER, "PONG", SERVER, params[0]))

    def _pong(self, params: List[str]) -> None:
        if self.opened:
            self._frames.append(protocol.pong(params[-1]))

    def _quit(self, params: List[str]) -> None:
        if self.opened:
            self._frames.append(protocol.quit())
        else:
            self.ending = "quit"
            self._reply(line(None, "ERROR", "Closing link: quit"))

    def _join(self, params: List[str]) -> None:
        for room in params[0].split(","):
            if self._room_ok(room):
                self._frames.append(protocol.join_room(room, ref=self.state.ref("JOIN", room)))

    def _part(self, params: List[str]) -> None:
        for room in params[0].split(","):
            if self._room_ok(room):
                self._frames.append(protocol.part_room(room, ref=self.state.ref("PART", room)))

    def _room_ok(self, room: str) -> bool:
        """Whether a channel name is a lanchat room name; 403 when it is not."""
        try:
            names.validate_room(room)
        except ProtocolError:
            self._reply(numeric("403", self.state.nick, room, "No such channel"))
            return False
        return True

    def _privmsg(self, params: List[str], command: str = "PRIVMSG") -> None:
        if len(params) < 2:
            code, text = ("411", "No recipient given") if not params else ("412", "No text to send")
            if command == "PRIVMSG":
                self._reply(numeric(code, self.state.nick, text))
            return
        target, text = params[0], params[1]
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            text = "/me " + text[8:-1]  # lanchat's clients show "/me" as an action
        for one in target.split(","):
            ref = self.state.ref(command, one)
            if one.startswith("#"):
                frame = protocol.say(text, ref=ref, room=one)
            else:
                frame = protocol.say(text, to=lines.lanchat_name(one), ref=ref)
            self._frames.append(frame)

    def _notice(self, params: List[str]) -> None:
        self._privmsg(params, "NOTICE")

    def _topic(self, params: List[str]) -> None:
        room = params[0]
        if not self._room_ok(room):
            return
        if len(params) > 1:
            self._frames.append(protocol.set_topic(room, params[1], self.state.ref("TOPIC", room)))
        else:
            self._frames.append(protocol.set_topic(room, None, self.state.ref("TOPIC?", room)))

    def _names(self, params: List[str], command: str = "NAMES") -> None:
        """NAMES or WHO of a channel, or of everybody online."""
        room = params[0] if params and params[0] != "*" else ""
        if room and not room.startswith("#"):
            self._reply(numeric("366", self.state.nick, room, "End of /NAMES list"))
            return
        self.state.lists.append(Asked(command, room or "*"))
        self._frames.append(protocol.who(room or None))

    def _who(self, params: List[str]) -> None:
        """WHO of a channel or everybody (`who`), or of one nick (`whois`)."""
        target = params[0] if params else "*"
        if target.startswith("#") or target == "*":
            self._names(params, "WHO")
        else:
            ref = self.state.ref("WHO", target)
            self._frames.append(protocol.whois(lines.lanchat_name(target), ref=ref))

    def _list(self, params: List[str]) -> None:
        self._frames.append(protocol.list_rooms())

    def _away(self, params: List[str]) -> None:
        text = params[0] if params and params[0] else None
        self._frames.append(protocol.away(text, ref=self.state.ref("AWAY")))

    def _whois(self, params: List[str]) -> None:
        nick = params[-1]
        self._frames.append(
            protocol.whois(lines.lanchat_name(nick), ref=self.state.ref("WHOIS", nick))
        )

    def _mode(self, params: List[str]) -> None:
        """MODE queries: no user modes, no channel modes, no ban list over IRC yet."""
        target = params[0]
        nick = self.state.nick
        if not target.startswith("#"):
            if lines.lanchat_name(target) != lines.lanchat_name(nick):
                self._reply(numeric("502", nick, "Cannot change mode for other users"))
            elif len(params) == 1:
                self._reply(numeric("221", nick, "+"))
        elif len(params) == 1:
            self._reply(numeric("324", nick, target, "+"))
        elif params[1] in ("b", "+b") and len(params) == 2:
            self._reply(numeric("368", nick, target, "End of channel ban list"))
        else:
            self._reply(numeric("482", nick, target, "Channel modes are not settable over IRC yet"))

    def _kick(self, params: List[str]) -> None:
        """KICK is lanchat's kick (it closes the connection; operators only)."""
        room, nick = params[0], params[1]
        reason = params[2] if len(params) > 2 else None
        ref = self.state.ref("KICK", room)
        self._frames.append(protocol.kick(lines.lanchat_name(nick), reason, ref))

    def _help(self, params: List[str]) -> None:
        nick = self.state.nick
        subject = params[0] if params else "*"
        known = " ".join(sorted({*_ALWAYS, *_AFTER}))
        self._reply(numeric("704", nick, subject, "lanchat over IRC knows these commands:"))
        self._reply(numeric("705", nick, subject, known))
        self._reply(numeric("706", nick, subject, "End of /HELP"))

    def _motd(self, params: List[str]) -> None:
        self._reply(self.codec.motd())

    def _lusers(self, params: List[str]) -> None:
        self._reply(self.codec.lusers())


def _tags_length(raw: bytes) -> int:
    """Bytes of a line's tags, '@' and the space after them included."""
    if not raw.startswith(b"@"):
        return 0
    space = raw.find(b" ")
    return len(raw) if space < 0 else space + 1


class _Handler:
    def __init__(self, run: Callable[[IrcDecoder, List[str]], None], needs: int = 0) -> None:
        self.run = run
        self.needs = needs


_ALWAYS = {
    "CAP": _Handler(IrcDecoder._cap, 1),
    "PING": _Handler(IrcDecoder._ping, 1),
    "PONG": _Handler(IrcDecoder._pong, 1),
    "QUIT": _Handler(IrcDecoder._quit),
    "NICK": _Handler(IrcDecoder._nick, 1),
    "PASS": _Handler(IrcDecoder._pass, 1),
    "USER": _Handler(IrcDecoder._user, 4),
}
_AFTER = {
    "JOIN": _Handler(IrcDecoder._join, 1),
    "PART": _Handler(IrcDecoder._part, 1),
    "PRIVMSG": _Handler(IrcDecoder._privmsg),
    "NOTICE": _Handler(IrcDecoder._notice),
    "TOPIC": _Handler(IrcDecoder._topic, 1),
    "NAMES": _Handler(IrcDecoder._names),
    "WHO": _Handler(IrcDecoder._who),
    "LIST": _Handler(IrcDecoder._list),
    "AWAY": _Handler(IrcDecoder._away),
    "WHOIS": _Handler(IrcDecoder._whois, 1),
    "MODE": _Handler(IrcDecoder._mode, 1),
    "KICK": _Handler(IrcDecoder._kick, 2),
    "HELP": _Handler(IrcDecoder._help),
    "TAGMSG": _Handler(lambda decoder, params: None),  # typing notices ...: nothing to carry
    "MOTD": _Handler(IrcDecoder._motd),
    "LUSERS": _Handler(IrcDecoder._lusers),
}


class IrcLinkCodec:
    """One IRC connection's encoder: lanchat events as the IRC lines its client reads."""

    rooms = True
    minor = protocol.MINOR

    def __init__(self, state: IrcState) -> None:
        self.state = state
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
            events.BanList: lambda e: self._server_notice(f"{len(e.bans)} bans."),
            events.Ping: lambda e: line(None, "PING", str(e.token or SERVER)),
            events.Pong: lambda e: line(SERVER, "PONG", SERVER, str(e.token or SERVER)),
            events.Error: self._error,
            events.Shutdown: lambda e: self._server_notice(e.message),
        }

    def for_login(self, speaks_rooms: bool, version: str) -> IrcLinkCodec:
        """Itself: IRC speaks rooms and this version."""
        return self

    def decoder(self) -> IrcDecoder:
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

    def _notice(self, event: events.Notice) -> bytes:
        self.state.answered(event.ref)
        return self._server_notice(event.text, event.room)

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
        self.state.online = len(event.online)
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
                self.lusers(),
                self.motd(),
            ]
        )

    def lusers(self) -> bytes:
        """251: how many are online (as of the welcome)."""
        users = f"There are {self.state.online} users on 1 server"
        return numeric("251", self._nick, users)

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
        out.append(self._names(event.room, event.members))
        out.extend(self._message(m) for m in event.history)
        return b"".join(out)

    def _names(self, room: str, members: Tuple[str, ...]) -> bytes:
        """353 (as many as it takes) and 366."""
        out: List[bytes] = []
        nicks = [lines.irc_nick(m) for m in members]
        while nicks:
            chunk, size = [], 0
            while nicks and size + len(nicks[0].encode()) + 1 < 400:
                size += len(nicks[0].encode()) + 1
                chunk.append(nicks.pop(0))
            out.append(numeric("353", self._nick, "=", room, " ".join(chunk)))
        out.append(numeric("366", self._nick, room, "End of /NAMES list"))
        return b"".join(out)

    def _online(self, event: events.Online) -> bytes:
        asked = (
            self.state.lists.popleft() if self.state.lists else Asked("NAMES", event.room or "*")
        )
        room = event.room or "*"
        if asked.command == "NAMES":
            return self._names(room, event.names)
        who = [self._who_row(room, n, away=False) for n in event.names]
        return b"".join(who) + numeric("315", self._nick, asked.target, "End of /WHO list")

    def _who_row(self, room: str, name: str, away: bool) -> bytes:
        """352: one member, H(ere) or G(one), with its lanchat name as the real name."""
        nick = lines.irc_nick(name)
        here = "G" if away else "H"
        return numeric("352", self._nick, room, nick, SERVER, SERVER, nick, here, "0 " + name)

    def _room_list(self, event: events.RoomList) -> bytes:
        out = [numeric("321", self._nick, "Channel", "Users  Name")]
        out += [numeric("322", self._nick, r, str(n), t or " ") for r, n, t in event.rooms]
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
                out += numeric(
                    "333", self._nick, event.room, lines.irc_nick(event.by), str(int(event.ts))
                )
            return out
        source = prefix(event.by) if event.by else SERVER
        return line(source, "TOPIC", event.room, event.text, tags=self.state.tags(event.ts))

    def _presence_change(self, event: events.PresenceChange) -> bytes:
        tags = self.state.tags(event.ts)
        if isinstance(event, events.Joined):
            return line(prefix(event.name), "JOIN", event.room, tags=tags)
        if event.reason == "part":
            return line(prefix(event.name), "PART", event.room, tags=tags)
        if event.reason == "kicked":
            return line(SERVER, "KICK", event.room, lines.irc_nick(event.name), "kicked", tags=tags)
        if self._last_quit == (event.name, event.ts):
            return b""  # lanchat says it once per room; IRC says QUIT once
        self._last_quit = (event.name, event.ts)
        return line(prefix(event.name), "QUIT", event.reason.capitalize(), tags=tags)

    # -- messages and people -------------------------------------------------------------

    def _message(self, event: events.Message) -> bytes:
        asked = self.state.answered(event.ref)
        mine = event.sender == self._name
        if mine and "echo-message" not in self.state.caps and event.ref is not None:
            return b""
        command = asked.command if asked is not None and asked.command == "NOTICE" else "PRIVMSG"
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
        return line(prefix(event.old), "NICK", lines.irc_nick(event.new))

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
        if event.text:
            return line(prefix(event.name), "AWAY", event.text)
        return line(prefix(event.name), "AWAY")

    def _whois(self, event: events.Whois) -> bytes:
        asked = self.state.answered(event.ref)
        nick = lines.irc_nick(event.name)
        me = self._nick
        if asked is not None and asked.command == "WHO":
            row = self._who_row("*", event.name, away=event.away is not None)
            return row + numeric("315", me, asked.target, "End of /WHO list")
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
        return b"".join(out) + numeric("318", me, nick, "End of /WHOIS list")

    def _error(self, event: events.Error) -> bytes:
        asked = self.state.answered(event.ref)
        if (
            asked is None
            and event.code in ("no_such_room", "invalid_room", "not_in_room")
            and self.state.lists
        ):
            asked = self.state.lists.popleft()  # a WHO or NAMES of a room that is not there
            end = "315" if asked.command == "WHO" else "366"
            return numeric(end, self._nick, asked.target, "End of list")
        if asked is not None and asked.command == "NOTICE":
            return b""  # NOTICE is never answered (RFC 2812 3.3.2)
        if asked is not None and asked.command == "WHO":
            return numeric("315", self._nick, asked.target, "End of /WHO list")
        mapped = ERROR_NUMERICS.get(event.code)
        if mapped is None:
            return self._server_notice(event.message)
        code, text = mapped
        if code == "442" and asked is not None and asked.command == "PRIVMSG":
            code, text = "404", "Cannot send to channel"
        if code in ("432", "433"):
            target = asked.target if asked is not None else self._nick
            return numeric(code, self._nick if self.state.logged_in else "*", target, text)
        if code in ("412", "451", "464"):
            return numeric(code, self._nick, text)
        target = asked.target if asked is not None else ""
        return numeric(code, self._nick, *((target,) if target else ()), text)
