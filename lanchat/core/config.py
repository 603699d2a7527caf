"""The server's settings: `ServerConfig`, and the `lanchat server` options that set it.

Each option is written once, on the ServerConfig field it sets: its flag, parser, default
and help. `add_server_options` makes the argparse options of them and `config_from_args`
the ServerConfig of the parsed options. The few options `server.run` reads itself
(logging, the password file, the history file) are in `RUN_OPTIONS`.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from lanchat import names, protocol
from lanchat.core.ratelimit import FLOOD_BURST, FLOOD_RATE
from lanchat.core.rooms import RoomRules
from lanchat.protocol import ProtocolError
from lanchat.threadpool import default_workers

# -- parsers of option values: a bad value is one line and exit 2 ------------------------


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A parser of whole numbers from low to high."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def positive_float(text: str) -> float:
    """A finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def non_negative_float(text: str) -> float:
    """A finite number, zero or above."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not zero or a positive number")
    return value


def ip_address(text: str) -> str:
    """An IPv4 or IPv6 address, in its usual spelling."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def room_name(text: str) -> str:
    """A room name, with or without its '#' (`general` is `#general`)."""
    try:
        return names.validate_room(text if text.startswith("#") else "#" + text)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.message}") from None


def room_names(text: str) -> Tuple[str, ...]:
    """Room names separated by commas: `general,random`."""
    return tuple(room_name(part.strip()) for part in text.split(",") if part.strip())


def operator_name(text: str) -> str:
    """A name that may log in (an operator's)."""
    try:
        return names.validate_name(text)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.message}") from None


class OperatorsFileError(ValueError):
    """The operators file cannot be read or holds a name that is not allowed."""


def read_operators_file(path: Optional[str]) -> Tuple[str, ...]:
    """The operators' names in a file: one a line, `#` starts a comment; () without a
    path. OperatorsFileError, with a sentence for a person, for a bad file."""
    if path is None:
        return ()
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise OperatorsFileError(f"cannot read the operators file {path}: {exc}") from None
    found = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                found.append(names.validate_name(text))
            except ProtocolError as exc:
                raise OperatorsFileError(f"{path}, line {number}: {exc.message}") from None
    return tuple(found)


PORT = int_in(1, 65535 - protocol.PORT_SPAN)
LOG_LEVELS = ("debug", "info", "warning", "error")


# -- options ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag, default, help and how its value is read."""

    flag: str
    help: str
    default: Any = None
    type: Optional[Callable[[str], Any]] = None
    metavar: Optional[str] = None
    choices: Optional[Sequence[str]] = None
    action: Optional[str] = None  # "store_true" or "store_false" for a switch, or "append"
    group: str = ""  # the options of one group exclude each other

    def add_to(self, parser: Any, dest: str) -> None:
        """Add it to an argparse parser (or group), its value going to `dest`."""
        extra = {"type": self.type, "metavar": self.metavar, "choices": self.choices}
        given: Dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
        if self.action:
            given["action"] = self.action
        parser.add_argument(self.flag, dest=dest, default=self.default, help=self.help, **given)


_OPTION = "option"  # the key of a field's Option in its metadata


def _option(option: Option) -> Any:
    """A ServerConfig field set by this option; its default is the option's."""
    return field(default=option.default, metadata={_OPTION: option})


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server is started with; the defaults are the contract's."""

    bind: str = _option(
        Option(
            "--bind",
            "IP address to listen on (default: all IPv4 interfaces)",
            "0.0.0.0",
            ip_address,
            "ADDR",
        )
    )
    port: int = _option(
        Option(
            "--port",
            f"first port to try; the next {protocol.PORT_SPAN} are tried if taken "
            "(default %(default)s)",
            protocol.DEFAULT_PORT,
            PORT,
            "BASE",
        )
    )
    name: str = _option(Option("--name", "server name shown to users (default: the host name)", ""))
    max_clients: int = _option(
        Option(
            "--max-clients",
            "connections at once, logged in or not (default %(default)s)",
            50,
            int_in(1, 100000),
            "N",
        )
    )
    max_per_address: int = _option(
        Option(
            "--max-per-address",
            "connections at once from one IP address, loopback included, so that one "
            "host cannot fill the server; more get error too_many_connections "
            "(default %(default)s)",
            10,
            int_in(1, 100000),
            "N",
        )
    )
    worker_idle_timeout: float = _option(
        Option(
            "--worker-idle-timeout",
            "a worker thread left without work this long ends, so threads and memory "
            "go back down after a rush (default %(default)s)",
            10.0,
            positive_float,
            "SECONDS",
        )
    )
    workers: int = _option(
        Option(
            "--workers",
            "threads that handle the clients' frames, however many clients there are "
            "(default %(default)s on this machine: a few per core)",
            default_workers(),
            int_in(1, 64),
            "N",
        )
    )
    history: int = _option(
        Option(
            "--history",
            "room messages a newcomer is shown (default %(default)s)",
            100,
            int_in(protocol.MIN_HISTORY, 100000),
            "N",
        )
    )
    login_timeout: float = _option(
        Option(
            "--login-timeout",
            "time allowed to log in (default %(default)s)",
            protocol.LOGIN_TIMEOUT,
            positive_float,
            "SECONDS",
        )
    )
    idle_timeout: float = _option(
        Option(
            "--idle-timeout",
            "silence before a client is dropped; it is pinged at half (default %(default)s)",
            protocol.IDLE_TIMEOUT,
            positive_float,
            "SECONDS",
        )
    )
    rate: float = _option(
        Option(
            "--rate",
            "frames per second a client may send on average; beyond that frames are "
            f"refused (rate_limited), and a client with more than {FLOOD_BURST} frames "
            f"refused at once (refilled at {FLOOD_RATE} a second) is closed as flooding "
            "(default %(default)s)",
            5.0,
            positive_float,
            "FRAMES",
        )
    )
    burst: int = _option(
        Option(
            "--burst",
            "frames a client may send at once (default %(default)s)",
            30,
            int_in(20, 1000000),
            "FRAMES",
        )
    )
    max_backlog: int = _option(
        Option(
            "--max-backlog",
            "unsent bytes a client may fall behind before it is dropped as slow "
            "(default %(default)s)",
            1024 * 1024,
            int_in(protocol.MAX_FRAME, 2**31),
            "BYTES",
        )
    )
    max_rest: float = _option(
        Option(
            "--max-rest",
            "under load the server rests between rounds of sends (twice as long as the "
            "last round took) so that frames share sends; this caps the rest, and the "
            "latency it adds; 0 sends at once (default %(default)s)",
            0.05,
            non_negative_float,
            "SECONDS",
        )
    )
    discovery: bool = _option(
        Option("--no-discovery", "do not answer LAN discovery probes", True, action="store_false")
    )
    web: bool = _option(
        Option(
            "--no-web",
            "do not serve the web client (its page and WebSocket on the web port)",
            True,
            action="store_false",
        )
    )
    web_port: Optional[int] = _option(
        Option(
            "--web-port",
            "first port to try for the web client, http://ADDRESS:PORT/ (its page and its "
            f"WebSocket); the next {protocol.PORT_SPAN} are tried if taken "
            f"(default: the lanchat port + {protocol.WEB_PORT_OFFSET})",
            None,
            PORT,
            "BASE",
        )
    )
    irc: bool = _option(
        Option(
            "--irc",
            "also let IRC clients in (irssi, WeeChat, HexChat, bots): rooms are channels, "
            "names are nicks; on port 6667 (6697 with --tls), or the next free of the following "
            f"{protocol.PORT_SPAN} (docs/irc.md)",
            False,
            action="store_true",
        )
    )
    irc_port: Optional[int] = _option(
        Option(
            "--irc-port",
            "first port to try for IRC clients (turns IRC on; the next "
            f"{protocol.PORT_SPAN} are tried if taken)",
            None,
            PORT,
            "BASE",
        )
    )
    log_messages: bool = _option(
        Option(
            "--log-messages",
            "also log the texts of room messages (off by default: chats stay private); "
            "private messages are never logged",
            False,
            action="store_true",
        )
    )
    rooms: Tuple[str, ...] = _option(
        Option(
            "--rooms",
            "rooms that always exist, besides the default room, separated by commas "
            "(default: none; people make more by joining them)",
            (),
            room_names,
            "ROOM,...",
        )
    )
    default_room: str = _option(
        Option(
            "--default-room",
            "the room everybody starts in, and the only one that clients without rooms "
            "(lanchat 4.0, 4.1) see (default %(default)s)",
            "#general",
            room_name,
            "ROOM",
        )
    )
    max_rooms: int = _option(
        Option(
            "--max-rooms",
            "rooms at once, the default room and --rooms included; joining a new one "
            "beyond gets error too_many_rooms (default %(default)s)",
            100,
            int_in(1, 100000),
            "N",
        )
    )
    max_joined: int = _option(
        Option(
            "--max-joined",
            "rooms one person may be in at once (default %(default)s)",
            20,
            int_in(1, 10000),
            "N",
        )
    )
    max_room_members: int = _option(
        Option(
            "--max-room-members",
            "people in one room at once; 0: no limit but --max-clients (default %(default)s)",
            0,
            int_in(0, 100000),
            "N",
        )
    )
    room_linger: float = _option(
        Option(
            "--room-linger",
            "an empty room that is not the default room or in --rooms goes after this "
            "long; its messages and topic stay in the history (default %(default)s)",
            600.0,
            positive_float,
            "SECONDS",
        )
    )
    # Not options of their own: fixed, or made by `server.run` from RUN_OPTIONS.
    port_span: int = protocol.PORT_SPAN
    flush_timeout: float = 1.0  # how long shutdown waits for outboxes to drain
    history_db: Optional[str] = None  # a path ({port}: the real port); None: memory only
    password: Optional[str] = None
    operators: Tuple[str, ...] = ()  # --operator and --operators-file, together
    tls_cert: Optional[str] = None  # TLS on every port with this certificate (None: plain) ...
    tls_key: Optional[str] = None  # ... and this key (None: in the certificate's file)

    @property
    def room_rules(self) -> RoomRules:
        """What the rooms options say, for the chat."""
        return RoomRules(
            self.default_room,
            self.rooms,
            self.max_rooms,
            self.max_joined,
            self.max_room_members,
            self.room_linger,
        )


# The options `server.run` reads itself, before there is a ServerConfig.
RUN_OPTIONS = (
    Option(
        "--history-db",
        "SQLite file that keeps the room's messages and the hashed resume tokens that "
        "give people their names back after a restart, and the registered names, the "
        "bans and the message of the day, on a local disk (not NFS); "
        "{port} is replaced by the port (default: "
        "$XDG_DATA_HOME/lanchat/history-HOST-{port}.sqlite3, HOST being this machine's "
        "name); created readable by its owner only",
        metavar="PATH",
        group="history",
    ),
    Option(
        "--no-history",
        "keep messages and resume tokens in memory only, and the registered names, bans "
        "and the message of the day (a restart forgets them)",
        False,
        action="store_true",
        group="history",
    ),
    Option(
        "--password-file",
        "require the password in this file (its first line; a file whose first line is "
        "empty or not UTF-8 stops the server with exit 2); or set LANCHAT_PASSWORD",
        metavar="PATH",
    ),
    Option(
        "--operator",
        "this name is an operator once it is registered and logged in with its key: it may "
        "kick, ban, mute, set any topic and the message of the day (repeat for more)",
        type=operator_name,
        metavar="NAME",
        action="append",
    ),
    Option(
        "--operators-file",
        "more operators' names, one a line ('#' starts a comment); a file that cannot be "
        "read or holds a name that is not allowed stops the server with exit 2",
        metavar="PATH",
    ),
    Option(
        "--tls",
        "speak TLS only, on every port (lanchat, web: https, IRC: 6697); without "
        "--tls-cert, with a self-signed certificate made once by the openssl command in "
        "$XDG_DATA_HOME/lanchat/tls-HOST/; its fingerprint is shown at start-up and in "
        "discovery, for clients to check",
        False,
        action="store_true",
    ),
    Option(
        "--tls-cert",
        "the certificate (PEM, a chain if need be) to use instead (implies --tls; needs --tls-key)",
        metavar="PATH",
    ),
    Option("--tls-key", "its private key (PEM, unencrypted)", metavar="PATH"),
    Option("--log-level", "(default %(default)s)", "info", choices=LOG_LEVELS),
    Option("--log-file", "log here instead of to stderr", metavar="PATH"),
    Option(
        "--console",
        "show the running server in the terminal: the live log, who is online, the rooms, "
        "and a command line for the operator's commands (stdout must be a terminal)",
        False,
        action="store_true",
    ),
)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Add every option of `lanchat server`: ServerConfig's, then RUN_OPTIONS."""
    for config_field in fields(ServerConfig):
        if _OPTION in config_field.metadata:
            config_field.metadata[_OPTION].add_to(parser, config_field.name)
    groups: Dict[str, Any] = {}
    for option in RUN_OPTIONS:
        target: Any = parser
        if option.group:
            if option.group not in groups:
                groups[option.group] = parser.add_mutually_exclusive_group()
            target = groups[option.group]
        option.add_to(target, option.flag.lstrip("-").replace("-", "_"))


def config_from_args(args: argparse.Namespace, **made: Any) -> ServerConfig:
    """The ServerConfig of parsed `lanchat server` options, plus the fields `made` by the
    caller from RUN_OPTIONS."""
    given = {f.name: getattr(args, f.name) for f in fields(ServerConfig) if _OPTION in f.metadata}
    return ServerConfig(**given, **made)
