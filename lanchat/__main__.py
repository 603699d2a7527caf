"""The one entry point: `lanchat server`, `lanchat client`, `lanchat discover`.

It parses the command line and hands the parsed options to the subcommand's module. A bad
argument gets argparse's usage and one line, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from lanchat import __version__, protocol, tls
from lanchat.core.config import PORT, add_server_options, positive_float


def tls_fingerprint(text: str) -> str:
    """A certificate fingerprint typed on the command line, in its canonical form."""
    fingerprint = tls.parse_fingerprint(text)
    if fingerprint is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fingerprint: 'SHA256:' and 64 hex digits, as the server prints it"
        )
    return fingerprint


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
        "server",
        help="run a chat server",
        description="Run a lanchat server: headless, or with --console on this terminal.",
    )
    add_server_options(server)

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
        "--identity",
        metavar="FILE",
        help="your identity key: who you are on every server (made if missing; default "
        "$XDG_CONFIG_HOME/lanchat/identity.key, else ~/.config/lanchat/identity.key)",
    )
    client.add_argument(
        "--tls-fingerprint",
        type=tls_fingerprint,
        metavar="SHA256:...",
        help="accept the server's TLS certificate only if it has this fingerprint (as the "
        "server prints it at start), whatever known_servers says; never asks",
    )
    client.add_argument(
        "--forget-server",
        metavar="NAME",
        help="first forget the TLS certificate trusted for the server of this name (in "
        "$XDG_CONFIG_HOME/lanchat/known_servers), so that its new one is met anew",
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
        type=positive_float,
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
