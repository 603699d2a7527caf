"""Helpers for the tests of protocol 4.3 (identity, presence, order): raw clients that log
in as 4.3, 4.2 or 4.0 clients, signing the identity proof with lanchat.identity."""

from __future__ import annotations

import hashlib
from typing import Any, List, Optional, Tuple

from wire import Frame, RawClient

from lanchat import identity

Address = Tuple[str, int]
V43 = "4.3.0"


def secret_of(name: str) -> bytes:
    """A fixed identity secret per test person (32 bytes)."""
    return hashlib.sha256(b"test identity " + name.encode()).digest()


def key_of(name: str) -> str:
    """The public key (hex) of `secret_of(name)`."""
    return str(identity.prove(secret_of(name), "00" * 16, name)["key"])


def connect(address: Address, source: str = "") -> Tuple[RawClient, Frame]:
    client = RawClient(address, source=source)
    return client, client.expect("hello")


def login_43(
    address: Address,
    name: str,
    key: Optional[str] = "own",
    rooms: Optional[List[str]] = None,
    source: str = "",
    **extra: Any,
) -> Tuple[RawClient, Frame]:
    """Send a 4.3 login (with the identity proof of `key`'s secret: "own" is the name's,
    None none) and return the client and the first frame answering it."""
    client, hello = connect(address, source)
    login: Frame = {"type": "login", "name": name, "version": V43, **extra}
    if rooms is not None:
        login["rooms"] = rooms
    if key is not None:
        secret = secret_of(name if key == "own" else key)
        login["identity"] = identity.prove(secret, hello["challenge"], name)
    client.send(login)
    return client, client.recv()


def welcome_43(address: Address, name: str, **options: Any) -> Tuple[RawClient, Frame]:
    """A 4.3 client logged in (single room unless `rooms`); its welcome, and its `joined`
    frames read when it speaks rooms."""
    client, welcome = login_43(address, name, **options)
    assert welcome["type"] == "welcome", welcome
    for _ in welcome.get("rooms", ()):
        client.expect("joined")
    return client, welcome


def old_client(address: Address, name: str, rooms: Optional[List[str]] = None) -> RawClient:
    """A 4.0 client logged in, or with `rooms` a 4.2 client; its welcome (and joined
    frames) are read."""
    client, _ = connect(address)
    login: Frame = {"type": "login", "name": name, "version": "4.0.0"}
    if rooms is not None:
        login.update(version="4.2.0", rooms=rooms)
    client.send(login)
    welcome = client.expect("welcome", name=name)
    for _ in welcome.get("rooms", ()):
        client.expect("joined")
    return client


def register(client: RawClient, name: str) -> Frame:
    client.send({"type": "register", "ref": "r"})
    return client.expect("registered", name=name, ref="r")


def operator_client(address: Address, name: str = "alice", **options: Any) -> RawClient:
    """An operator: `name` (given to the server with --operator) registers and logs in
    again with its key; the second welcome must say operator."""
    first, _ = welcome_43(address, name)
    register(first, name)
    first.send({"type": "quit"})
    first.expect_closed()
    client, welcome = welcome_43(address, name, **options)
    assert welcome.get("operator") is True, welcome
    return client


def next_of(client: RawClient, kind: str, **fields: Any) -> Frame:
    """The next frame of this type with these field values, skipping the others (joins,
    leaves ...); each wait is bounded by the client's timeout."""
    while True:
        frame = client.recv()
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame
