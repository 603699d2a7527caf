"""`/namepassword` in the lanchat client (protocol 4.4): in the model, and typed by a person
on the built pyz, in a real pseudo-terminal and in plain mode."""

from __future__ import annotations

from typing import Callable

import drivers
import pytest
from drivers import WAIT, PipedClient
from test_client_model import frames, logged_in, receive, type_keys, type_line
from test_client_v43_commands_e2e import Person, person  # noqa: F401 (fixture used by name)
from test_client_v43_e2e import (  # noqa: F401 (fixtures used by name)
    Address,
    plain,
    server,
    window,
)
from wire import RawClient

from lanchat import protocol

SECRET = "correct horse battery"


def test_namepassword_sends_the_password_and_clear_clears_it() -> None:
    model = logged_in()
    model.server_version = "4.4.0"
    sent = frames(type_line(model, f"/namepassword {SECRET}"))
    assert [(f["type"], f.get("password")) for f in sent] == [("name_password", SECRET)]
    receive(model, protocol.name_password_set(True, sent[0]["ref"]))
    assert "your name password is set" in model.entries[-1].text
    cleared = frames(type_line(model, "/namepassword clear"))
    assert [(f["type"], "password" in f) for f in cleared] == [("name_password", False)]
    receive(model, protocol.name_password_set(False, cleared[0]["ref"]))
    assert "your name password is cleared" in model.entries[-1].text


def test_namepassword_alone_says_how_and_sends_nothing() -> None:
    model = logged_in()
    assert frames(type_line(model, "/namepassword")) == []
    assert "usage: /namepassword PASSWORD" in model.entries[-1].text


def test_the_password_line_is_not_kept_for_up_and_down() -> None:
    model = logged_in()
    type_line(model, "hello")
    type_line(model, f"/namepassword {SECRET}")
    type_keys(model, "KEY_UP")
    assert model.input == "hello"


def password_login(address: Address, name: str, password: str) -> dict:
    """The first answer to a 4.4 login by name password."""
    client = RawClient(address, timeout=WAIT)
    client.expect("hello")
    client.send(
        {"type": "login", "name": name, "version": "4.4.0", "rooms": [], "name_password": password}
    )
    answer = client.recv(WAIT)
    client.close()
    return answer


@pytest.mark.pyz
def test_a_person_sets_and_clears_the_name_password(
    person: Callable[..., Person],  # noqa: F811
    server: Address,  # noqa: F811
) -> None:
    ivy = person("ivy")
    ivy.types("/register")
    ivy.sees("ivy is registered to your key (")
    ivy.types(f"/namepassword {SECRET}")
    ivy.sees("your name password is set")
    ivy.types("/namepassword short")
    ivy.sees("A name password has 8 to 128 characters.")
    ivy.types("/namepassword clear")
    ivy.sees("your name password is cleared")
    assert password_login(server, "ivy", SECRET)["code"] == "bad_identity"
    ivy.types(f"/namepassword {SECRET}")
    ivy.sees("your name password is set")
    ivy.quits()
    assert password_login(server, "ivy", SECRET)["type"] == "welcome"


@pytest.mark.pyz
def test_an_unregistered_name_is_told_so(
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    kim = plain("kim")
    kim.wait_line("-- you are kim on testlab")
    kim.write(f"/namepassword {SECRET}\n")
    kim.wait_line("'kim' is not registered.")
    kim.write("/quit\n")
    assert kim.finish(drivers.LONG_WAIT)[0] == 0
