"""The one entry point: `lanchat server`, `lanchat client`, `lanchat discover`.

It parses the command line and hands the parsed options to the subcommand's module. A bad
argument gets argparse's usage and one line, and exit code 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Callable, List, Optional

from lanchat import __version__, protocol
from lanchat.core.ratelimit import FLOOD_BURST, FLOOD_RATE
from lanchat.threadpool import default_workers


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _ip_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not zero or a positive number")
    return value


PORT = _int_in(1, 65535 - protocol.PORT_SPAN)
LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand and option."""
    parser = argparse.ArgumentParser(
        prog="lanchat",
        description="A chat for the people on one local network.",
        epilog="Run 'lanchat COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"lanchat {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    server = commands.add_parser(
        "server", help="run a chat server", description="Run a headless lanchat server."
    )
    server.add_argument(
        "--bind",
        type=_ip_address,
        default="0.0.0.0",
        metavar="ADDR",
        help="IP address to listen on (default: all IPv4 interfaces)",
    )
    server.add_argument(
        "--port",
        type=PORT,
        default=protocol.DEFAULT_PORT,
        metavar="BASE",
        help=f"first port to try; the next {protocol.PORT_SPAN} are tried if taken "
        "(default %(default)s)",
    )
    server.add_argument("--name", help="server name shown to users (default: the host name)")
    server.add_argument(
        "--max-clients",
        type=_int_in(1, 100000),
        default=50,
        metavar="N",
        help="connections at once, logged in or not (default %(default)s)",
    )
    server.add_argument(
        "--max-per-address",
        type=_int_in(1, 100000),
        default=10,
        metavar="N",
        help="connections at once from one IP address, loopback included, so that one "
        "host cannot fill the server; more get error too_many_connections "
        "(default %(default)s)",
    )
    server.add_argument(
        "--worker-idle-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="a worker thread left without work this long ends, so threads and memory "
        "go back down after a rush (default %(default)s)",
    )
    server.add_argument(
        "--workers",
        type=_int_in(1, 64),
        default=default_workers(),
        metavar="N",
        help="threads that handle the clients' frames, however many clients there are "
        "(default %(default)s on this machine: a few per core)",
    )
    server.add_argument(
        "--history",
        type=_int_in(protocol.MIN_HISTORY, 100000),
        default=100,
        metavar="N",
        help="room messages a newcomer is shown (default %(default)s)",
    )
    server.add_argument(
        "--login-timeout",
        type=_positive_float,
        default=protocol.LOGIN_TIMEOUT,
        metavar="SECONDS",
        help="time allowed to log in (default %(default)s)",
    )
    server.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=protocol.IDLE_TIMEOUT,
        metavar="SECONDS",
        help="silence before a client is dropped; it is pinged at half (default %(default)s)",
    )
    server.add_argument(
        "--rate",
        type=_positive_float,
        default=5.0,
        metavar="FRAMES",
        help="frames per second a client may send on average; beyond that frames are "
        f"refused (rate_limited), and a client with more than {FLOOD_BURST} frames refused "
        f"at once (refilled at {FLOOD_RATE} a second) is closed as flooding "
        "(default %(default)s)",
    )
    server.add_argument(
        "--burst",
        type=_int_in(20, 1000000),
        default=30,
        metavar="FRAMES",
        help="frames a client may send at once (default %(default)s)",
    )
    server.add_argument(
        "--max-backlog",
        type=_int_in(protocol.MAX_FRAME, 2**31),
        default=1024 * 1024,
        metavar="BYTES",
        help="unsent bytes a client may fall behind before it is dropped as slow "
        "(default %(default)s)",
    )
    server.add_argument(
        "--max-rest",
        type=_non_negative_float,
        default=0.05,
        metavar="SECONDS",
        help="under load the server rests between rounds of sends (twice as long as the "
        "last round took) so that frames share sends; this caps the rest, and the "
        "latency it adds; 0 sends at once (default %(default)s)",
    )
    history = server.add_mutually_exclusive_group()
    history.add_argument(
        "--history-db",
        metavar="PATH",
        help="SQLite file that keeps the room's messages and the hashed resume tokens that "
        "give people their names back after a restart, on a local disk (not NFS); "
        "{port} is replaced by the port (default: "
        "$XDG_DATA_HOME/lanchat/history-HOST-{port}.sqlite3, HOST being this machine's "
        "name); created readable by its owner only",
    )
    history.add_argument(
        "--no-history",
        action="store_true",
        help="keep messages and resume tokens in memory only (a restart forgets them)",
    )
    server.add_argument(
        "--password-file",
        metavar="PATH",
        help="require the password in this file (its first line; a file whose first line is "
        "empty or not UTF-8 stops the server with exit 2); or set LANCHAT_PASSWORD",
    )
    server.add_argument(
        "--no-discovery", action="store_true", help="do not answer LAN discovery probes"
    )
    server.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="(default %(default)s)"
    )
    server.add_argument("--log-file", metavar="PATH", help="log here instead of to stderr")
    server.add_argument(
        "--log-messages",
        action="store_true",
        help="also log the texts of room messages (off by default: chats stay private); "
        "private messages are never logged",
    )

    client = commands.add_parser(
        "client",
        help="open the chat window",
        description="Open the chat. Without --host it finds a server on the LAN by itself.",
    )
    client.add_argument("--name", help="your name (default: your user name)")
    client.add_argument("--host", help="server address; skips LAN discovery")
    client.add_argument(
        "--port",
        type=PORT,
        metavar="PORT",
        help=f"server port (default: the first lanchat server on ports "
        f"{protocol.DEFAULT_PORT}-{protocol.DEFAULT_PORT + protocol.PORT_SPAN}); without "
        "--host, the base port of the servers to look for on the LAN",
    )
    client.add_argument("--server", metavar="NAME", help="join the discovered server of this name")
    client.add_argument(
        "--plain",
        action="store_true",
        help="no full screen: print lines, send lines read from stdin "
        "(automatic when stdin or stdout is not a terminal)",
    )
    client.add_argument(
        "--password-file",
        metavar="PATH",
        help="for a server that wants a password: read it from this file (its first line, "
        "which must not be empty); or set LANCHAT_PASSWORD; else the window asks for it",
    )
    client.add_argument(
        "--log-file", metavar="PATH", help="write a debug log here (the screen never shows it)"
    )

    discover = commands.add_parser(
        "discover",
        help="list the lanchat servers on the LAN",
        description="List the lanchat servers that answer on the LAN.",
    )
    discover.add_argument("--json", action="store_true", help="one JSON object per line")
    discover.add_argument(
        "--host", help="ask this address (a host or a broadcast address) instead of the LAN"
    )
    discover.add_argument(
        "--port",
        type=PORT,
        default=protocol.DEFAULT_PORT,
        metavar="BASE",
        help="the servers' base port (their --port): probed by UDP, and it and the next "
        f"{protocol.PORT_SPAN} tried by TCP on --host or this machine (default %(default)s)",
    )
    discover.add_argument(
        "--timeout",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="how long to collect answers (default %(default)s)",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run lanchat with these arguments; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "server":
        from lanchat import server

        return server.run(args)
    if args.command == "client":
        from lanchat.chat import app

        return app.run(args)
    from lanchat.chat import finder

    return finder.run(args)


if __name__ == "__main__":
    sys.exit(main())
