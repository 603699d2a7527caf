"""SASL PLAIN on the IRC gateway (issue 16): a registered name is used from IRC by its owner,
with the name password set from a lanchat client (protocol 4.4); real sockets, in process."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Iterator, List, Tuple

import pytest
from conftest import MakeServer
from ircclient import IrcClient, Msg
from wire43 import register, welcome_43

SECRET = "correct horse battery"


@pytest.fixture
def chat(make_server: MakeServer) -> Iterator[SimpleNamespace]:
    """A server with IRC on, `alice` one of its operators; `.irc()` opens an IRC client."""
    clients: List[IrcClient] = []
    server = make_server(irc=True, operators=("alice",))
    assert server.irc_address is not None

    def irc() -> IrcClient:
        client = IrcClient(server.irc_address)
        clients.append(client)
        return client

    yield SimpleNamespace(server=server, irc=irc, lanchat=server.address)
    for client in clients:
        client.close()


def owner_with_password(address: Tuple[str, int], name: str = "bob") -> None:
    """`name` registers its key from a lanchat client, sets its name password, and leaves."""
    owner, _ = welcome_43(address, name)
    register(owner, name)
    owner.send({"type": "name_password", "password": SECRET, "ref": "p"})
    assert owner.expect("name_password", ref="p")["set"] is True
    owner.send({"type": "quit"})
    owner.expect_closed()


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def start_sasl(client: IrcClient) -> None:
    client.send("CAP LS 302")
    client.expect("CAP")
    client.send("CAP REQ :sasl")
    assert client.expect("CAP").params[1:] == ["ACK", "sasl"]
    client.send("AUTHENTICATE PLAIN")
    assert client.expect("AUTHENTICATE").params == ["+"]


def finish_registration(client: IrcClient, nick: str) -> List[Msg]:
    client.send("CAP END")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    return client.until("001")


def sasl_login(chat: SimpleNamespace, nick: str, password: str = SECRET) -> IrcClient:
    """An IRC client logged in by SASL as `nick`, past its MOTD."""
    client = chat.irc()
    start_sasl(client)
    client.send(f"AUTHENTICATE {plain(nick, password)}")
    assert client.expect("900").params[2] == nick
    client.expect("903")
    assert finish_registration(client, nick)[-1].params[0] == nick
    client.until("422")
    return client


def test_cap_ls_offers_sasl_with_plain_on_302(chat: SimpleNamespace) -> None:
    client = chat.irc()
    client.send("CAP LS 302")
    assert "sasl=PLAIN" in client.expect("CAP").params[2].split()
    client.send("CAP LS")
    assert "sasl" in client.expect("CAP").params[2].split()


def test_sasl_plain_logs_a_registered_name_in_from_irc(chat: SimpleNamespace) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    start_sasl(client)
    client.send(f"AUTHENTICATE {plain('bob', SECRET)}")
    logged_in = client.expect("900")
    assert logged_in.params[:3] == ["*", "*!*@lanchat", "bob"]
    assert client.expect("903").params[-1] == "SASL authentication successful"
    assert finish_registration(client, "bob")[-1].params[0] == "bob"
    client.send("AUTHENTICATE PLAIN")
    client.expect("907")
    client.send("WHOIS bob")
    whois = client.until("318")
    assert "330" in [m.command for m in whois]  # registered: it is the owner's login


def test_a_registered_nick_without_sasl_is_433_and_another_nick_registers(
    chat: SimpleNamespace,
) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    client.send("NICK bob")
    client.send("USER bob 0 * :Bob")
    refused = client.expect("433")
    assert refused.params[1] == "bob" and "SASL" in refused.params[2]
    client.send("NICK bobby")
    assert client.expect("001").params[0] == "bobby"


def test_sasl_for_another_name_does_not_open_the_registered_nick(chat: SimpleNamespace) -> None:
    owner_with_password(chat.lanchat, "bob")
    owner_with_password(chat.lanchat, "carl")
    client = chat.irc()
    start_sasl(client)
    client.send(f"AUTHENTICATE {plain('carl', SECRET)}")
    client.expect("903")
    client.send("CAP END")
    client.send("NICK bob")
    client.send("USER bob 0 * :Bob")
    assert client.expect("433").params[1] == "bob"


def test_a_wrong_password_is_904_and_the_client_may_retry(chat: SimpleNamespace) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    start_sasl(client)
    client.send(f"AUTHENTICATE {plain('bob', 'wrong password')}")
    assert client.expect("904").params[-1] == "SASL authentication failed"
    client.send("AUTHENTICATE PLAIN")
    client.expect("AUTHENTICATE")
    client.send(f"AUTHENTICATE {plain('bob', SECRET)}")
    client.expect("903")
    assert finish_registration(client, "bob")[-1].params[0] == "bob"


def test_a_failed_sasl_may_go_on_unauthenticated_under_another_nick(
    chat: SimpleNamespace,
) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    start_sasl(client)
    client.send(f"AUTHENTICATE {plain('bob', 'wrong password')}")
    client.expect("904")
    assert finish_registration(client, "guest")[-1].params[0] == "guest"


def test_three_wrong_passwords_close_the_connection(chat: SimpleNamespace) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    start_sasl(client)
    for attempt in range(3):
        if attempt:
            client.send("AUTHENTICATE PLAIN")
            client.expect("AUTHENTICATE")
        client.send(f"AUTHENTICATE {plain('bob', f'wrong password {attempt}')}")
        client.expect("904")
    closing = client.expect_closed()
    assert closing and closing[-1].command == "ERROR"


def test_an_unknown_mechanism_is_908_and_904(chat: SimpleNamespace) -> None:
    client = chat.irc()
    client.send("AUTHENTICATE EXTERNAL")
    assert client.expect("908").params[1] == "PLAIN"
    client.expect("904")


def test_abort_is_906_and_an_over_long_chunk_905(chat: SimpleNamespace) -> None:
    client = chat.irc()
    start_sasl(client)
    client.send("AUTHENTICATE *")
    client.expect("906")
    client.send("AUTHENTICATE PLAIN")
    client.expect("AUTHENTICATE")
    client.send("AUTHENTICATE " + "A" * 401)
    client.expect("905")


def test_garbage_and_someone_elses_authzid_are_904(chat: SimpleNamespace) -> None:
    owner_with_password(chat.lanchat)
    client = chat.irc()
    for payload in ("not base64!", plain("bob", SECRET, authzid="carl")):
        client.send("AUTHENTICATE PLAIN")
        client.expect("AUTHENTICATE")
        client.send(f"AUTHENTICATE {payload}")
        client.expect("904")


@pytest.mark.parametrize("extra", [0, 1])
def test_a_payload_in_400_byte_chunks(chat: SimpleNamespace, extra: int) -> None:
    """Exactly 400 bytes of base64 is followed by `+`; more comes in a second chunk."""
    # "\0bob\0" and 291 + 4 bytes: 300 bytes, 400 of base64; or 5 + 330: 448 of base64
    password = "字" * 97 + "abcd" if not extra else "字" * 110
    owner, _ = welcome_43(chat.lanchat, "bob")
    register(owner, "bob")
    owner.send({"type": "name_password", "password": password, "ref": "p"})
    owner.expect("name_password", ref="p")
    payload = plain("bob", password)
    assert len(payload) == (400 if not extra else 448)
    client = chat.irc()
    start_sasl(client)
    chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)]
    for chunk in chunks:
        client.send(f"AUTHENTICATE {chunk}")
    if len(chunks[-1]) == 400:
        client.send("AUTHENTICATE +")
    client.expect("903")


def test_before_registration_authenticate_is_not_451(chat: SimpleNamespace) -> None:
    """AUTHENTICATE works before NICK and USER (clients send it in CAP negotiation)."""
    client = chat.irc()
    client.send("AUTHENTICATE PLAIN")
    assert client.expect("AUTHENTICATE").params == ["+"]
