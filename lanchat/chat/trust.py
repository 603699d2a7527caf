"""Trust on first use: whether a server's TLS certificate is the one to trust, the way
ssh trusts host keys.

`Trust.check(link)` decides before the client logs in, from the server's name (in its
hello) and the certificate's fingerprint (None on plain TCP):

1. a pinned fingerprint (`--tls-fingerprint`): the certificate must be that one;
2. the fingerprint its discovery answer announced: the certificate must be that one;
3. `known_servers`: a server known by its name must show the certificate first trusted
   (at any address: addresses change on a LAN; its line takes the new one);
4. a name it does not know, at an address (host:port) where a server known by another
   name was last reached: the same certificate is a renamed server (its line is renamed,
   and that is said); another certificate, or none, is refused, as ssh refuses another
   host key at a known address;
5. else it is a first meeting, for the caller to accept (plain mode, scripts: at once,
   saying so, like ssh's `accept-new`) or to ask a person about (the window).

A server that is pinned, announced TLS, or known with a certificate, and answers in plain
text, is a downgrade: refused like a changed certificate. Every refusal is `Untrusted`,
with a warning that says what changed and how to accept it on purpose.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

from lanchat import names
from lanchat.chat.connection import Link, Untrusted
from lanchat.chat.known_servers import KnownServer, KnownServers, KnownServersError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Meeting:
    """A certificate to trust from now on: met for the first time, or the pinned one."""

    name: str
    where: str
    fingerprint: str
    pinned: bool = False  # given on the command line: never asked about
    announced: bool = False  # the very one the server's discovery answer announced


def server_name(link: Link) -> str:
    """The name a server is known by: its hello's, else (none given) its address."""
    return names.strip_controls(str(link.hello.get("server", ""))).strip() or link.where


def _how_to_accept(name: str, fingerprint: Optional[str]) -> str:
    forget = f"  lanchat client --forget-server {shlex.quote(name)}"
    if fingerprint is None:
        return f"If you know it was done on purpose, forget the old certificate with\n{forget}"
    return (
        "If you know the certificate changed on purpose, accept the new one with\n"
        f"{forget}\nor pin it with\n  lanchat client --tls-fingerprint {fingerprint}"
    )


def _trusted_line(known: KnownServer) -> str:
    return (
        f"  trusted: {known.fingerprint} (first seen {known.first_seen}, last at {known.address})"
    )


def _changed_name(known: KnownServer, name: str, link: Link) -> str:
    """The warning for a server at a known server's address under another name, with
    another certificate or none."""
    fingerprint = link.fingerprint
    what, now = (
        ("answers without TLS", "without TLS")
        if fingerprint is None
        else ("its TLS certificate", f"with {fingerprint}")
    )
    return (
        f"WARNING: the server at {link.where} has changed its name and {what}!\n"
        f"  was: '{known.name}' with {known.fingerprint} (first seen {known.first_seen})\n"
        f"  now: '{name}' {now}\nSomebody may be pretending to be a server new to you at the "
        "address of one you know, or another server now has that address. Not connected.\n"
        f"{_how_to_accept(known.name, fingerprint)}"
    )


class Trust:
    """The certificates this client trusts: known_servers, a pin, an announcement.

    `say` gets each note worth telling the user (a certificate now trusted).
    `accept_new`: a first meeting on a reconnect is accepted (plain mode), else refused
    (the window asks only before it connects the first time).
    """

    def __init__(
        self,
        known: KnownServers,
        pin: Optional[str] = None,
        announced: Optional[str] = None,
        accept_new: bool = True,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.known = known
        self.pin = pin
        self.announced = announced
        self.accept_new = accept_new
        self.say = say

    def check(self, link: Link) -> Optional[Meeting]:
        """None when the link may be used as it is; a Meeting when its certificate is
        new to this client (or pinned and not yet remembered); Untrusted when refused."""
        name, fingerprint = server_name(link), link.fingerprint
        if self.pin is not None:
            return self._check_pin(link, name)
        if self.announced is not None:
            self._check_announced(link, name)
        known = self.known.find(name)
        if known is None:
            return self._check_address(link, name)
        if fingerprint is None:
            raise Untrusted(
                f"WARNING: server '{name}' at {link.where} answered without TLS, but it is "
                f"known with TLS:\n{_trusted_line(known)}\nSomebody may be pretending to be "
                "the server to read what you send, or its operator turned TLS off. Not "
                f"connected.\n{_how_to_accept(name, None)}"
            )
        if fingerprint != known.fingerprint:
            raise Untrusted(
                f"WARNING: the TLS certificate of server '{name}' has changed!\n"
                f"{_trusted_line(known)}\n  now:     {fingerprint} (at {link.where})\n"
                "Somebody may be pretending to be the server, or its operator gave it a new "
                f"certificate. Not connected.\n{_how_to_accept(name, fingerprint)}"
            )
        self._moved(known, link)
        return None

    def _check_address(self, link: Link, name: str) -> Optional[Meeting]:
        """A name this client does not know: a first meeting, unless a server known by
        another name was last reached at this address."""
        fingerprint = link.fingerprint
        there = self.known.find_at(link.where)
        same = [known for known in there if known.fingerprint == fingerprint]
        if same:
            self._renamed(same[-1], name, link)
            return None
        if there:
            raise Untrusted(_changed_name(there[-1], name, link))
        if fingerprint is None:
            return None  # a plain server met before or not: nothing to trust
        return Meeting(name, link.where, fingerprint, announced=self.announced is not None)

    def _moved(self, known: KnownServer, link: Link) -> None:
        """A known server reached at another address than last time: keep the new one."""
        if known.address != link.where:
            self.known.replace(known.name, dataclasses.replace(known, address=link.where))
            log.info("server '%s' moved from %s to %s", known.name, known.address, link.where)

    def _renamed(self, known: KnownServer, name: str, link: Link) -> None:
        """The certificate last met at this address, under a new name: its operator
        renamed the server. Its line takes the new name, and that is said."""
        self.known.replace(
            known.name, KnownServer(name, known.fingerprint, known.first_seen, link.where)
        )
        self.say(
            f"server '{name}' at {link.where} was called '{known.name}', with this same "
            f"certificate {known.fingerprint}: now remembered under its new name (in "
            f"{self.known.path})"
        )

    def _check_pin(self, link: Link, name: str) -> Optional[Meeting]:
        fingerprint = link.fingerprint
        if fingerprint is None:
            raise Untrusted(
                f"WARNING: server '{name}' at {link.where} answered without TLS, but "
                f"--tls-fingerprint asks for TLS with {self.pin}. Not connected."
            )
        if fingerprint != self.pin:
            raise Untrusted(
                f"WARNING: the TLS certificate of server '{name}' at {link.where} is not "
                f"the pinned one:\n  pinned:  {self.pin}\n  now:     {fingerprint}\n"
                "Not connected."
            )
        known = self.known.find(name)
        if known is not None and known.fingerprint == fingerprint:
            self._moved(known, link)
            return None
        return Meeting(name, link.where, fingerprint, pinned=True)

    def _check_announced(self, link: Link, name: str) -> None:
        if link.fingerprint == self.announced:
            return
        now = "no TLS" if link.fingerprint is None else link.fingerprint
        raise Untrusted(
            f"WARNING: server '{name}' at {link.where} does not show the TLS certificate "
            f"its discovery answer announced:\n  announced: {self.announced}\n"
            f"  now:       {now}\nSomebody may be between you and the server. Not connected."
        )

    def accept(self, meeting: Meeting) -> None:
        """Trust this certificate from now on, and say so (KnownServersError if the file
        cannot be written)."""
        self.known.remember(meeting.name, meeting.fingerprint, meeting.where)
        if meeting.pinned:
            why = "the pinned certificate"
        elif meeting.announced:
            why = "first connection; its certificate, as its discovery answer announced,"
        else:
            why = "first connection; its certificate"
        self.say(
            f"server '{meeting.name}' at {meeting.where}: {why} {meeting.fingerprint} "
            f"is now trusted (remembered in {self.known.path})"
        )

    def verify(self, link: Link) -> None:
        """A reconnect's check (`Connection`'s `verify`): accept what `check` accepts,
        and a first meeting only with `accept_new`; else Untrusted."""
        try:
            meeting = self.check(link)
            if meeting is None:
                return
            if not (meeting.pinned or self.accept_new):
                raise Untrusted(
                    f"server '{meeting.name}' at {meeting.where} now speaks TLS with a "
                    f"certificate this client has not seen ({meeting.fingerprint}): start "
                    "the client again to be asked about it"
                )
            self.accept(meeting)
        except KnownServersError as exc:  # what cannot be checked is not trusted
            raise Untrusted(str(exc)) from None
