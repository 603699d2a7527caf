"""Trust on first use checked by address too, as ssh does: a server met at a host:port that
known_servers holds under another name is not a first meeting. Another certificate (or
none) there is refused like a changed certificate; the same certificate under a new name
is a renamed server, and a known server at a new address has moved: both accepted, their
line updated. In-process servers with a TLS listener, as in test_tls_client.py."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import test_tls_client
import tlscerts
from test_tls_client import Lab

from lanchat.chat.connection import Untrusted
from lanchat.chat.known_servers import KnownServers
from lanchat.chat.trust import Meeting, Trust

certificates = tlscerts.certificates  # the shared fixtures, made this module's own
lab = test_tls_client.lab

EARLIER = "2026-12-01T10:00:00Z"


def was_there(known: KnownServers, name: str, fingerprint: str, where: str) -> None:
    """A line of known_servers as an earlier run would have left it."""
    known.remember(name, fingerprint, where)
    text = Path(known.path).read_text(encoding="utf-8")
    Path(known.path).write_text(text.replace(known.find(name).first_seen, EARLIER))  # type: ignore[union-attr]


def where(address: Tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def test_a_new_name_with_another_certificate_at_a_known_address_is_refused(lab: Lab) -> None:
    a, b = lab.certificates
    _, tls_address = lab.start("lab", b)
    was_there(lab.known, "den", a[2], where(tls_address))
    before = Path(lab.known.path).read_text(encoding="utf-8")
    with pytest.raises(Untrusted) as refused:
        Trust(lab.known).check(lab.open(tls_address))
    warning = str(refused.value)
    assert warning.startswith(f"WARNING: the server at {where(tls_address)} has changed its name")
    assert f"was: 'den' with {a[2]} (first seen {EARLIER})" in warning
    assert f"now: 'lab' with {b[2]}" in warning
    assert "lanchat client --forget-server den" in warning
    assert f"lanchat client --tls-fingerprint {b[2]}" in warning
    assert Path(lab.known.path).read_text(encoding="utf-8") == before


def test_a_new_name_in_plain_text_at_a_known_tls_address_is_refused(lab: Lab) -> None:
    """Else a man in the middle would only have to answer in plain text under a new name."""
    a, _ = lab.certificates
    plain_address, _ = lab.start("lab", a)
    was_there(lab.known, "den", a[2], where(plain_address))
    with pytest.raises(Untrusted) as refused:
        Trust(lab.known).check(lab.open(plain_address))
    warning = str(refused.value)
    assert f"the server at {where(plain_address)} has changed its name" in warning
    assert f"was: 'den' with {a[2]}" in warning and "now: 'lab' without TLS" in warning
    assert "lanchat client --forget-server den" in warning


def test_a_new_name_at_another_port_of_a_known_host_is_a_first_meeting(lab: Lab) -> None:
    a, b = lab.certificates
    _, tls_address = lab.start("lab", b)
    was_there(lab.known, "den", a[2], f"{tls_address[0]}:{tls_address[1] + 1}")
    meeting = Trust(lab.known).check(lab.open(tls_address))
    assert meeting == Meeting("lab", where(tls_address), b[2])


def test_forgetting_the_old_name_or_pinning_accepts_the_server_now_at_the_address(
    lab: Lab,
) -> None:
    a, b = lab.certificates
    _, tls_address = lab.start("lab", b)
    was_there(lab.known, "den", a[2], where(tls_address))
    pinned = Trust(lab.known, pin=b[2], say=lambda note: None)
    meeting = pinned.check(lab.open(tls_address))
    assert meeting == Meeting("lab", where(tls_address), b[2], pinned=True)
    pinned.accept(meeting)
    assert Trust(lab.known).check(lab.open(tls_address)) is None  # lab is known by name now
    assert lab.known.forget("lab") is not None
    assert lab.known.forget("den") is not None
    assert Trust(lab.known).check(lab.open(tls_address)) == Meeting("lab", where(tls_address), b[2])


def test_a_renamed_server_with_the_same_certificate_is_accepted_and_its_line_renamed(
    lab: Lab,
) -> None:
    a, _ = lab.certificates
    _, tls_address = lab.start("lab", a)
    was_there(lab.known, "den", a[2], where(tls_address))
    notes: List[str] = []
    assert Trust(lab.known, say=notes.append).check(lab.open(tls_address)) is None
    assert lab.known.find("den") is None
    renamed = lab.known.find("lab")
    assert renamed is not None
    assert (renamed.fingerprint, renamed.first_seen, renamed.address) == (
        a[2],
        EARLIER,
        where(tls_address),
    )
    assert len(notes) == 1
    assert f"server 'lab' at {where(tls_address)} was called 'den'" in notes[0]
    assert a[2] in notes[0] and lab.known.path in notes[0]
    assert Trust(lab.known, say=notes.append).check(lab.open(tls_address)) is None
    assert len(notes) == 1


def test_a_known_server_at_a_new_address_is_accepted_and_its_address_updated(lab: Lab) -> None:
    """Addresses change on a LAN (DHCP): the name and the certificate are what count."""
    a, _ = lab.certificates
    _, tls_address = lab.start("den", a)
    was_there(lab.known, "den", a[2], "10.0.0.5:42070")
    notes: List[str] = []
    assert Trust(lab.known, say=notes.append).check(lab.open(tls_address)) is None
    moved = lab.known.find("den")
    assert moved is not None
    assert (moved.fingerprint, moved.first_seen, moved.address) == (
        a[2],
        EARLIER,
        where(tls_address),
    )
    assert notes == []


def test_a_reconnect_to_a_new_name_and_certificate_at_the_address_is_refused(lab: Lab) -> None:
    a, b = lab.certificates
    _, tls_address = lab.start("lab", b)
    was_there(lab.known, "den", a[2], where(tls_address))
    with pytest.raises(Untrusted, match="has changed its name"):
        Trust(lab.known, accept_new=True).verify(lab.open(tls_address))
    assert lab.known.find("lab") is None
