"""`lanchat client`: find the server, then chat in the curses window or in plain lines.

`run(args)` decides, in order: the name (--name, else the OS user name), the mode (plain
with --plain or when stdin or stdout is not a terminal, or when curses cannot drive this
terminal), the server (--host and --port: that one; --host: a scan of that host's port
range; no --host: LAN discovery, then this machine's port range, from --port if given;
--server NAME picks among the found by name; several left: a picker in the window, or a
list and exit 1 in plain mode), then makes the first connection here, so that "nothing
there" and "incompatible server" are one line on stderr and exit 1 before any window
opens.

The password, for a server that asks for one, comes from --password-file (its first
line), else from LANCHAT_PASSWORD (read by `lanchat.password`, by the server's rule),
else the window asks for it (hidden); plain mode without one is one line and exit 1, a
password file that holds none one line and exit 2 (a bad argument). It is never put on
the command line, the wire or a log.

The identity key (protocol 4.3) comes from --identity, else the config folder, made on
the first run (`chat.keyfile`); one that cannot be read is one line and exit 1, before
any connection. The settings (ignore list, bell) come from the config folder too
(`chat.settings`); a damaged settings file is a line in the chat, not an end.

Each server's TLS certificate is trusted on first use (`chat.trust`, `known_servers`):
a refused one (changed, not the pinned or announced one, a downgrade to plain TCP, or a
new name with another certificate at a known server's address) is a loud warning on
stderr and exit 1 before any login. A first meeting is asked about in
the window, and accepted in plain mode with a note on stderr. `--forget-server NAME`
forgets a server's certificate first; `--tls-fingerprint` pins the one to accept.

Logging goes to --log-file or nowhere: never to stderr while curses owns the screen.
curses is imported only on the way to the curses front end.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from lanchat import names, protocol
from lanchat.chat import finder, keyfile, settings
from lanchat.chat.connection import Incompatible, Link, LinkError, Unreachable, open_link
from lanchat.chat.finder import ServerInfo
from lanchat.chat.keyfile import KeyFileError
from lanchat.chat.known_servers import KnownServers, KnownServersError
from lanchat.chat.model import ClientModel
from lanchat.chat.picker import ServerPicker
from lanchat.chat.trust import Meeting, Trust
from lanchat.chat.trustprompt import TrustPrompt
from lanchat.password import PasswordFileError, read_password

log = logging.getLogger(__name__)


class Failure(Exception):
    """The client cannot start; the message is the one line the user reads."""


def _setup_logging(path: Optional[str]) -> None:
    root = logging.getLogger()
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s")
        )
        root.setLevel(logging.DEBUG)
    else:
        # Without a handler Python's last resort prints warnings to stderr: over the window.
        handler = logging.NullHandler()
    root.addHandler(handler)


def default_name() -> str:
    """The OS user name, the default chat name; "user" if there is none."""
    try:
        return getpass.getuser() or "user"
    except (KeyError, OSError, ImportError):  # no user entry, no pwd module
        return "user"


def _program() -> str:
    """How the user started us, for hints: 'python3 lanchat.pyz' or 'lanchat'."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return f"python3 {argv0}" if argv0.endswith(".pyz") else "lanchat"


def _none_found() -> str:
    return f"no server found; start one with '{_program()} server' or pass --host (and --port)"


def _label(server: ServerInfo) -> str:
    users = "" if server.users is None else f", {server.users} online"
    if not server.compatible:
        return (
            f"{server.name} ({server.address}) - incompatible: version "
            f"{names.strip_controls(server.version)}"
        )
    return f"{server.name} ({server.address}{users})"


def _incompatible(server: ServerInfo) -> str:
    return (
        f"the server at {server.address} speaks lanchat "
        f"{names.strip_controls(server.version)}; this client is {protocol.VERSION} "
        "(the major versions must match)"
    )


def find_candidates(args: argparse.Namespace) -> List[ServerInfo]:
    """The servers the user may mean, compatible ones first; Failure if there is none."""
    if args.host:
        try:
            servers = finder.scan_host(args.host)
        except OSError as exc:
            raise Failure(f"cannot reach {args.host}: {exc}") from None
        where = f"on {args.host} ports {protocol.DEFAULT_PORT}-"
        where += str(protocol.DEFAULT_PORT + protocol.PORT_SPAN)
        if not servers:
            raise Failure(
                f"no server found {where}; start one with '{_program()} server' or pass --port"
            )
    else:
        servers = finder.find_servers(port=args.port or protocol.DEFAULT_PORT)
        if not servers:
            raise Failure(_none_found())
    if args.server:
        named = finder.by_name(servers, args.server)
        if not named:
            found = ", ".join(names.strip_controls(s.name) for s in servers)
            raise Failure(f"no server called {args.server!r} found (found: {found})")
        servers = named
    compatible = [s for s in servers if s.compatible]
    if not compatible:
        raise Failure(_incompatible(servers[0]))
    return [*compatible, *(s for s in servers if not s.compatible)]


@dataclass(frozen=True)
class Target:
    """The server to join: where, whether it speaks TLS (None: not known), and the
    certificate its discovery answer announced, if any."""

    host: str
    port: int
    tls: Optional[bool] = None
    announced: Optional[str] = None

    @classmethod
    def of(cls, server: ServerInfo) -> Target:
        """The target a found server's answer describes."""
        return cls(server.host, server.port, server.tls, server.fingerprint)


def first_link(target: Target) -> Link:
    """Connect and read the hello; Failure with one line if that is not a chat to join."""
    try:
        link = open_link(target.host, target.port, tls=target.tls)
    except Unreachable as exc:
        raise Failure(
            f"{exc}; start a server with '{_program()} server' or check --host and --port"
        ) from None
    except (Incompatible, LinkError) as exc:
        raise Failure(str(exc)) from None
    return link


def check_trust(link: Link, trust: Trust) -> Optional[Meeting]:
    """The link's certificate checked before any login: None (go on), a first meeting,
    or Failure with the warning (the link closed)."""
    try:
        return trust.check(link)
    except (LinkError, KnownServersError) as exc:
        link.close()
        raise Failure(str(exc)) from None


def _stderr(note: str) -> None:
    print(f"lanchat: {note}", file=sys.stderr)


def _curses_problem() -> Optional[str]:
    """Why the window cannot open here (no curses, unknown TERM), or None."""
    try:
        from lanchat import client_curses
    except ImportError:  # Windows CPython has no _curses
        return "this Python has no curses"
    return client_curses.check_terminal()


def run(args: argparse.Namespace) -> int:
    """`lanchat client`: return the exit code (0 when the user chose to leave)."""
    _setup_logging(args.log_file)
    name = args.name or default_name()
    plain = bool(args.plain) or not (sys.stdin.isatty() and sys.stdout.isatty())
    if not plain:
        problem = _curses_problem()
        if problem:
            print(f"lanchat: {problem}; using plain mode", file=sys.stderr)
            plain = True
    try:
        password = read_password(getattr(args, "password_file", None))
    except PasswordFileError as exc:  # a bad argument, like any other
        print(f"lanchat: {exc}", file=sys.stderr)
        return 2
    try:
        secret = keyfile.load_or_create(getattr(args, "identity", None))
    except KeyFileError as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 1
    kept, problem = settings.load()
    user = UserFiles(secret, kept, problem)
    known = KnownServers()
    try:
        forget = getattr(args, "forget_server", None)
        if forget:
            _forget(known, forget)
        address, servers = _choose(args)
        target = _target(address, servers) if address is not None else None
        if target is None and plain:
            listed = "\n".join("  " + _label(s) for s in servers)
            raise Failure(f"several servers found; pass --server NAME or --host:\n{listed}")
        link = first_link(target) if target is not None else None
        pin = getattr(args, "tls_fingerprint", None)
        trust = Trust(known, pin, accept_new=plain, say=_stderr if plain else log.info)
        if target is not None:
            trust.announced = target.announced
        meeting = check_trust(link, trust) if link is not None else None
        if link is not None and plain and not password and link.hello["auth"] == "password":
            link.close()  # nobody to ask in plain mode
            host, port = link.address
            raise Failure(
                f"the server at {host}:{port} needs a password: "
                "pass --password-file FILE or set LANCHAT_PASSWORD"
            )
        if plain and meeting is not None:
            _accept(trust, meeting, link)
    except Failure as exc:
        print(f"lanchat: {exc}", file=sys.stderr)
        return 1
    if plain:
        assert target is not None
        return _run_plain(name, target, link, password, user, trust)
    return _run_curses(name, target, link, meeting, servers, password, user, trust)


def _forget(known: KnownServers, name: str) -> None:
    """--forget-server: trust no certificate for that server any more, and say so."""
    try:
        forgotten = known.forget(name)
    except KnownServersError as exc:
        raise Failure(str(exc)) from None
    if forgotten is None:
        _stderr(f"no server called '{name}' is in {known.path}: nothing to forget")
    else:
        _stderr(f"forgot server '{name}' and its certificate {forgotten.fingerprint}")


def _accept(trust: Trust, meeting: Meeting, link: Optional[Link]) -> None:
    """Trust a first met (or pinned) certificate from now on; Failure if it cannot be
    remembered (then the link is closed)."""
    try:
        trust.accept(meeting)
    except KnownServersError as exc:
        if link is not None:
            link.close()
        raise Failure(str(exc)) from None


@dataclass(frozen=True)
class UserFiles:
    """What the client keeps of its user: the identity key and the settings (and why the
    settings file could not be read, if it could not)."""

    secret: bytes
    settings: settings.Settings
    problem: Optional[str]

    def model_options(self) -> Dict[str, Any]:
        """The model's arguments for them."""
        return {"secret": self.secret, "settings": self.settings}

    def report(self, model: ClientModel) -> None:
        """Say in the chat what went wrong with the settings file."""
        if self.problem:
            model.note("error", self.problem, time.time())


def _choose(args: argparse.Namespace) -> Tuple[Optional[Tuple[str, int]], List[ServerInfo]]:
    """(host, port) to join, or None and the list to pick from."""
    if args.host and args.port:
        return (args.host, args.port), []
    servers = find_candidates(args)
    joinable = [s for s in servers if s.compatible]
    if len(joinable) == 1:
        return (joinable[0].host, joinable[0].port), servers
    return None, servers


def _target(address: Tuple[str, int], servers: List[ServerInfo]) -> Target:
    """The target at this address, with what its answer said if it was found."""
    found = [s for s in servers if (s.host, s.port) == address]
    return Target.of(found[0]) if found else Target(*address)


def _run_plain(
    name: str,
    target: Target,
    link: Optional[Link],
    password: Optional[str],
    user: UserFiles,
    trust: Trust,
) -> int:
    from lanchat.chat import plain

    model = ClientModel(name, target.host, target.port, password=password, **user.model_options())
    user.report(model)
    stdout = sys.stdout
    reconfigure = getattr(stdout, "reconfigure", None)
    if reconfigure is not None:  # a name or text the output encoding lacks becomes "?"
        reconfigure(errors="replace")
    code = plain.run(
        model, target.host, target.port, link, sys.stdin.fileno(), stdout, trust.verify
    )
    if model.fatal:  # kicked, banned, a certificate refused: on stderr too, for the bot's owner
        print(f"lanchat: {model.exit_note}", file=sys.stderr)
    return code


def _run_curses(
    name: str,
    target: Optional[Target],
    link: Optional[Link],
    meeting: Optional[Meeting],
    servers: List[ServerInfo],
    password: Optional[str],
    user: UserFiles,
    trust: Trust,
) -> int:
    from lanchat import client_curses

    model: Optional[ClientModel] = None
    try:
        with client_curses.Terminal() as terminal:
            if target is None:
                picker = ServerPicker([(_label(s), s.compatible) for s in servers])
                if not terminal.pick(picker):
                    return 0
                target = Target.of(servers[picker.selected])
                trust.announced = target.announced
                link = first_link(target)
                meeting = check_trust(link, trust)
            if meeting is not None:
                if not (meeting.pinned or terminal.ask_trust(TrustPrompt(meeting))):
                    raise Failure(
                        f"not connected: the certificate of '{meeting.name}' was not trusted"
                    )
                _accept(trust, meeting, link)
            model = ClientModel(
                name,
                target.host,
                target.port,
                password=password,
                ask_password=True,
                window=True,
                **user.model_options(),
            )
            user.report(model)
            return terminal.chat(model, target.host, target.port, link, trust.verify)
    except Failure as exc:  # the window is gone: the line shows
        _stderr(str(exc))
        return 1
    except client_curses.Terminated as exc:  # SIGTERM or SIGHUP before the chat began
        return 128 + exc.signum
    except KeyboardInterrupt:  # Ctrl-C in the picker
        return 0
    finally:
        if link is not None:
            link.close()  # harmless if the connection closed it already
        if model is not None and model.exit_note:  # the window that showed it is gone
            print(f"lanchat: {model.exit_note}", file=sys.stderr)
        if model is not None and model.outbox:
            print(f"lanchat: {len(model.outbox)} message(s) were not sent", file=sys.stderr)
