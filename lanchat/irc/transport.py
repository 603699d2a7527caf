"""The IRC transport: IRC clients (irssi, WeeChat, HexChat, bots) as lanchat members.

An `IrcCodec` is what the IRC port's listener speaks. IRC has a say of its own before
the session (CAP negotiation, PASS, NICK and USER) and beside it (PING, MOTD, the CAP
replies), which the decoder answers itself with `take_reply`; once NICK and USER are in
(and CAP ended) it is `opened`, and from then on each command becomes a lanchat frame
(`login`, `join`, `say` ...). The words an IRC client reads depend on the connection
(its nick is in every numeric; server-time and echo-message are per connection), so
every connection has a codec of its own (`IrcCodec.decoder` hands it over with the
decoder, and `Link` takes it). What every member of a room reads alike (a message, JOIN,
PART ...) the connections of a listener share through its `SharedLines`: built once per
flavour (the capabilities that change the bytes), like a lanchat line once per codec.
"""

from __future__ import annotations

import collections
from typing import Callable, Deque, List, Optional

from lanchat import names, protocol
from lanchat.core import events
from lanchat.irc import lines, masks, modes, sasl
from lanchat.irc.encoder import IrcLinkCodec, SharedLines
from lanchat.irc.lines import SERVER, line, numeric
from lanchat.irc.state import MAX_ASKED, Gathered, IrcState
from lanchat.protocol import Frame, ProtocolError

IRC_PORT = 6667  # the first port --irc tries (then the next PORT_SPAN) ...
IRC_TLS_PORT = 6697  # ... and with --tls
MAX_USERHOST = 5  # nicks one USERHOST asks about (RFC 2812 4.8)
CAPS = ("server-time", "message-tags", "echo-message", "away-notify", "multi-prefix", "sasl")


class IrcCodec:
    """The listener's codec: it makes each connection a decoder with a codec of its own,
    all of them sharing the lines a room's members read alike."""

    name = "irc"
    client = "irc"
    rooms = True
    minor = protocol.MINOR

    def for_login(self, speaks_rooms: bool, version: str) -> IrcCodec:
        """IRC speaks rooms and everything of this version."""
        return self

    def __init__(self, check: Optional[sasl.Check] = None) -> None:
        self._check = check or (lambda name, password, host: None)
        self._shared = SharedLines()

    def decoder(self) -> IrcDecoder:
        """A new connection's decoder; its `codec` is the connection's own."""
        return IrcDecoder(IrcState(), sasl.SaslPlain(self._check), self._shared)

    def encode(self, event: events.Event) -> bytes:
        """Nothing: events go to connections' own codecs only."""
        return b""

    def refusal(self, hello: events.Hello, error: events.Error) -> bytes:
        """A connection over the limits: ERROR with the reason."""
        return line(None, "ERROR", error.message)

    def tls_refusal(self, received: bytes) -> bytes:
        """ERROR to a client that spoke plain text to the TLS port; a silent one waits."""
        if not received:
            return b""
        return line(None, "ERROR", "This port speaks TLS only: connect with TLS (irssi -tls).")


class IrcDecoder:
    """One IRC connection's lines: registration, then lanchat frames."""

    def __init__(self, state: IrcState, sasl_plain: sasl.SaslPlain, shared: SharedLines) -> None:
        self.state = state
        self.codec = IrcLinkCodec(state, shared)
        self.sasl = sasl_plain
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
        """Answer the client; once logged in, through the session as a ping it answers, so
        what the gateway answers itself costs like any frame (the rate limit, `flooding`)."""
        if not self.state.logged_in:
            self._replies.append(data)
            return
        asked = self.state.ask("REPLY")
        asked.reply = data
        self._frames.append(_with_ref(protocol.ping(asked.ref), asked.ref))

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
            offered = CAPS if params[1:2] != ["302"] else _CAPS_302  # 302 says mechanisms
            self._reply(line(SERVER, "CAP", nick, "LS", " ".join(offered)))
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

    def _authenticate(self, params: List[str]) -> None:
        """SASL PLAIN (lanchat.irc.sasl); too many wrong passwords close the connection."""
        self._reply(self.sasl.authenticate(self.state.nick, params[0], self.opened))
        if self.sasl.failures >= sasl.MAX_FAILURES:
            self.ending = "error"
            self._reply(line(None, "ERROR", "Closing link: too many failed SASL logins"))

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
        account = self.sasl.account
        mine = account is not None and names.name_key(account) == names.name_key(name)
        password = self.sasl.password if mine else None  # SASL is for its own name
        return protocol.login(name, auth=auth, rooms=[], name_password=password)

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
        notice = command == "NOTICE"
        for one in target.split(","):
            ref = self.state.ref(command, one)
            if one.startswith("#"):
                frame = protocol.say(text, ref=ref, room=one, notice=notice)
            else:
                frame = protocol.say(text, to=lines.lanchat_name(one), ref=ref, notice=notice)
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
        self._who_frame(room or None, command, room or "*")

    def _who_frame(self, room: Optional[str], command: str, target: str = "") -> None:
        """A `who` (of a room, or of everybody) whose `online` answer the command reads."""
        ref = self.state.ask_in_order(self.state.lists, command, target)
        self._frames.append(_with_ref(protocol.who(room), ref))

    def _who(self, params: List[str]) -> None:
        """WHO of a channel or everybody (`who`), of a mask (everybody, matched), or of
        one nick (`whois`)."""
        target = params[0] if params else "*"
        if target.startswith("#") or target == "*":
            self._names(params, "WHO")
        elif masks.has_wildcards(target):
            self._who_frame(None, "WHO", target)
        else:
            ref = self.state.ref("WHO", target)
            self._frames.append(protocol.whois(lines.lanchat_name(target), ref=ref))

    def _list(self, params: List[str]) -> None:
        """LIST, with the filters of ELIST (`>n`, `<n`, masks, `!mask`) when given."""
        ref = self.state.ask_in_order(self.state.room_lists, "LIST", params[0] if params else "")
        self._frames.append(_with_ref(protocol.list_rooms(), ref))

    def _ison(self, params: List[str]) -> None:
        """ISON: which of these nicks are online, from who is online now."""
        self._who_frame(None, "ISON", " ".join(params))

    def _userhost(self, params: List[str]) -> None:
        """USERHOST: one 302 for up to five nicks, from a whois of each."""
        nicks = " ".join(params).split()[:MAX_USERHOST]
        if not nicks:
            self._reply(numeric("461", self.state.nick, "USERHOST", "Not enough parameters"))
            return
        gathered = Gathered(len(nicks))
        for index, nick in enumerate(nicks):
            asked = self.state.ask("USERHOST", nick)
            asked.gathered, asked.index = gathered, index
            self._frames.append(protocol.whois(lines.lanchat_name(nick), ref=asked.ref))

    def _away(self, params: List[str]) -> None:
        text = params[0] if params and params[0] else None
        self._frames.append(protocol.away(text, ref=self.state.ref("AWAY")))

    def _whois(self, params: List[str]) -> None:
        nick = params[-1]
        self._frames.append(
            protocol.whois(lines.lanchat_name(nick), ref=self.state.ref("WHOIS", nick))
        )

    def _mode(self, params: List[str]) -> None:
        """MODE: no user modes; a channel's modes are its bans (`lanchat.irc.modes`)."""
        target = params[0]
        nick = self.state.nick
        if not target.startswith("#"):
            if lines.lanchat_name(target) != lines.lanchat_name(nick):
                self._reply(numeric("502", nick, "Cannot change mode for other users"))
            elif len(params) == 1:
                self._reply(numeric("221", nick, "+"))
        elif len(params) == 1:
            self._reply(numeric("324", nick, target, "+"))
        elif self._room_ok(target):
            frames, replies = modes.channel_mode(self.state, target, params[1:])
            self._frames.extend(frames)
            self._reply(replies)

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
        """LUSERS: counted now, from who is online."""
        self._who_frame(None, "LUSERS")


def _with_ref(frame: Frame, ref: str) -> Frame:
    """A frame (`who`, `rooms`, `ping`) with a ref only an error answers with: a refusal
    (rate limited ...) so says which command it refuses."""
    frame["ref"] = ref
    return frame


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


_CAPS_302 = tuple(f"sasl={sasl.MECHANISM}" if cap == "sasl" else cap for cap in CAPS)
_ALWAYS = {
    "CAP": _Handler(IrcDecoder._cap, 1),
    "AUTHENTICATE": _Handler(IrcDecoder._authenticate, 1),
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
    "ISON": _Handler(IrcDecoder._ison, 1),
    "USERHOST": _Handler(IrcDecoder._userhost, 1),
}
