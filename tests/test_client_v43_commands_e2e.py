"""Each client command of protocol 4.3 on the built pyz, typed by a person in a real
pseudo-terminal and in plain mode (every test runs in both): what the person sees, and what
the others get (a raw client's frames, a kicked, banned or muted client's own screen, a
name that is free or refused). The fixtures and helpers are test_client_v43_e2e's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple, Union

import drivers
import pytest
from drivers import WAIT, PipedClient, PtyClient, wait_until
from test_client_v43_e2e import (  # noqa: F401 (fixtures used by name)
    Address,
    awaited,
    finished,
    plain,
    raw,
    server,
    window,
)
from wire import RawClient

pytestmark = pytest.mark.pyz

BELL = b"\x07"


class Person:
    """A client as its user sees it, in a window or in plain mode: the lines typed, the
    lines shown, and how it ends."""

    def __init__(self, client: Union[PtyClient, PipedClient]) -> None:
        self.client = client
        self.in_window = isinstance(client, PtyClient)

    def types(self, line: str) -> None:
        if isinstance(self.client, PtyClient):
            self.client.line(line)
        else:
            self.client.write(line + "\n")

    def sees(self, text: str) -> None:
        """Wait until a line shows the text (in a window: the screen does)."""
        if isinstance(self.client, PtyClient):
            self.client.wait_for(text)
        else:
            self.client.wait_line(text)

    def never_saw(self, text: str) -> bool:
        """True if nothing shown so far holds the text (in a window: the screen now)."""
        if isinstance(self.client, PtyClient):
            return text not in self.client.text()
        return not any(text in line for line in self.client.lines)

    def quits(self) -> None:
        self.types("/quit")
        if isinstance(self.client, PtyClient):
            assert self.client.wait_exit() == 0
        else:
            assert self.client.finish(drivers.LONG_WAIT)[0] == 0

    def is_stopped(self, note: str) -> None:
        """It ended with code 1, saying `note` (kicked or banned: who, why) on its way out,
        and does not come back by itself."""
        if isinstance(self.client, PtyClient):
            assert self.client.wait_exit() == 1
            assert f"lanchat: {note}" in self.client.output.decode("utf-8", "replace")
        else:
            self.client.wait_line(f"!! {note}")
            code, _, err = self.client.finish(drivers.LONG_WAIT)
            assert code == 1 and f"lanchat: {note}" in err, err


@pytest.fixture(params=["window", "plain"])
def person(
    request: pytest.FixtureRequest,
    window: Callable[..., PtyClient],  # noqa: F811
    plain: Callable[..., PipedClient],  # noqa: F811
) -> Iterator[Callable[..., Person]]:
    """Start clients as people, each as `who` (its config folder): in a pseudo-terminal,
    or in plain mode."""

    def start(name: str, who: str = "") -> Person:
        started = window if request.param == "window" else plain
        somebody = Person(started(name, who))
        somebody.sees(f"you are {name} on testlab")
        return somebody

    yield start


def registered(
    plain: Callable[..., PipedClient],  # noqa: F811
    name: str,
) -> None:
    """`name` registers its key (from plain mode) and leaves."""
    owner = plain(name)
    owner.write("/register\n")
    owner.wait_line(f"{name} is registered to your key")
    assert finished(owner)[0] == 0


def operator(
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> Person:
    """alice, an operator of the server: registered, then logged in with her key."""
    registered(plain, "alice")
    alice = person("alice")
    if alice.in_window:
        alice.sees("you: alice (op)")
    return alice


def login(address: Address, name: str, source: str = "") -> Tuple[RawClient, Dict[str, Any]]:
    """A raw 4.3 login (from the local address `source` if given) and its answer: the
    welcome, or the error that refuses it."""
    client = RawClient(address, timeout=WAIT, source=source)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.3.0", "rooms": []})
    answer = client.recv(WAIT)
    assert answer["type"] in ("welcome", "error"), answer
    return client, answer


def settings_of(tmp_path: Path, who: str) -> Any:
    return json.loads((tmp_path / f"config-{who}" / "lanchat" / "settings.json").read_text())


# --------------------------------------------------------------------------- your name


def test_unregister_lets_the_name_go(
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    ivy = person("ivy")
    ivy.types("/register")
    ivy.sees("ivy is registered to your key (")
    ivy.types("/unregister")
    ivy.sees("ivy is no longer registered")
    ivy.quits()
    stranger = plain("ivy", who="stranger")
    stranger.wait_line("-- you are ivy on testlab")
    assert finished(stranger)[0] == 0


def test_nick_away_back_and_whois(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
) -> None:
    erin = raw(server, "erin")
    bob = person("bob")
    bob.types("/whois erin")
    bob.sees("erin: online since ")
    bob.sees("  not registered")
    bob.sees("  rooms: #general")

    bob.types("/nick robert")
    bob.sees("you are now robert")
    awaited(erin, "nick", old="bob", new="robert")

    bob.types("/away")  # without a text: just away
    bob.sees("you are away: away")
    awaited(erin, "away", name="robert", text="away")
    erin.send({"type": "say", "to": "robert", "text": "there?", "ref": "e1"})
    awaited(erin, "away", name="robert", text="away", reply=True)
    bob.sees("there?")

    bob.types("/away in a meeting")
    bob.sees("you are away: in a meeting")
    awaited(erin, "away", name="robert", text="in a meeting")
    bob.types("/back")
    bob.sees("you are back")
    back = awaited(erin, "away", name="robert")
    assert "text" not in back, back


# --------------------------------------------------------------------------- ignore and bell


def test_ignore_the_list_and_unignore(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    tmp_path: Path,
) -> None:
    pest = raw(server, "pest")
    gina = raw(server, "gina")
    frank = person("frank")
    frank.types("/ignore pest")
    frank.sees("ignoring pest")
    pest.send({"type": "say", "text": "buy my stuff", "ref": "p1"})
    awaited(pest, "message", text="buy my stuff")
    gina.send({"type": "say", "text": "first mark", "ref": "g1"})
    frank.sees("gina: first mark")
    assert frank.never_saw("buy my stuff")
    frank.types("/ignore")
    frank.sees("ignoring (1): pest")
    assert [entry["name"] for entry in settings_of(tmp_path, "frank")["ignore"]] == ["pest"]

    frank.types("/unignore pest")
    frank.sees("no longer ignoring pest")
    pest.send({"type": "say", "text": "on sale today", "ref": "p2"})
    frank.sees("pest: on sale today")
    frank.types("/ignore")
    frank.sees("ignoring nobody")
    assert settings_of(tmp_path, "frank")["ignore"] == []


def test_the_bell_setting_rings_as_set_and_is_kept(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    tmp_path: Path,
) -> None:
    gina = raw(server, "gina")
    hank = person("hank")
    hank.types("/bell off")
    hank.sees("bell: off")
    rung = hank.client.output.count(BELL) if isinstance(hank.client, PtyClient) else 0
    gina.send({"type": "say", "text": "hank, a mention", "ref": 1})
    hank.sees("gina: hank, a mention")
    if isinstance(hank.client, PtyClient):  # plain mode never rings
        assert hank.client.output.count(BELL) == rung, "off: not even a mention rings"
        hank.types("/bell all")
        hank.sees("bell: all")
        gina.send({"type": "say", "text": "nothing for hank", "ref": 2})
        hank.sees("gina: nothing for hank")
        client = hank.client
        wait_until(lambda: client.output.count(BELL) > rung, "the bell", WAIT)
    hank.types("/bell mentions")
    hank.sees("bell: mentions")
    hank.quits()
    assert settings_of(tmp_path, "hank")["bell"] == "mentions"
    again = person("hank")  # a new run reads it back
    again.types("/bell")
    again.sees("bell: mentions (/bell off|mentions|all)")


# --------------------------------------------------------------------------- operators


def test_an_operator_mutes_and_unmutes(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    alice = operator(person, plain)
    bob = person("bob")
    watcher = raw(server, "watcher")

    alice.types("/mute bob 1h")
    alice.sees("server: You muted bob for 3600 s.")
    bob.sees("server: alice muted you for 3600 s.")
    bob.types("let me speak")
    bob.sees("not sent to #general: An operator muted you.")

    alice.types("/unmute bob")
    alice.sees("server: You unmuted bob.")
    bob.sees("server: alice let you speak again.")
    bob.types("free again")
    alice.sees("bob: free again")
    said = awaited(watcher, "message", **{"from": "bob"})
    assert said["text"] == "free again", "the muted line was never said"


def test_an_operator_kicks_bans_lists_and_lifts_the_ban(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    alice = operator(person, plain)
    mallory = person("mallory")
    trent = person("trent")
    watcher = raw(server, "watcher")

    alice.types("/kick mallory flooding")
    alice.sees("server: You kicked mallory: flooding.")
    mallory.is_stopped("kicked by alice: flooding")
    awaited(watcher, "leave", name="mallory", reason="kicked")
    awaited(watcher, "notice", text="mallory was kicked by alice: flooding")

    alice.types("/ban trent 1h spam")
    alice.sees("server: You banned trent (name)")
    trent.is_stopped("banned by alice until ")
    awaited(watcher, "notice", text="trent was banned by alice: spam")
    _, refused = login(server, "trent")
    assert (refused["code"], refused["by"], refused["reason"]) == ("banned", "alice", "spam")

    alice.types("/bans")
    alice.sees("bans (1):")
    alice.sees("  trent (name) by alice until ")
    alice.types("/unban trent")
    alice.sees("server: You lifted the ban on trent.")
    alice.types("/bans")
    alice.sees("no bans")
    _, welcome = login(server, "trent")
    assert welcome["type"] == "welcome", welcome


def test_a_ban_of_a_registered_name_keeps_its_key_out_under_any_name(
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    registered(plain, "carol")
    alice = operator(person, plain)
    carol = person("carol")

    alice.types("/ban carol")
    alice.sees("server: You banned carol (identity) for good")
    carol.is_stopped("banned by alice for good")
    again = plain("caroline", who="carol")  # the same key under another name
    again.wait_line("!! banned by alice for good")
    code, _, err = finished(again)
    assert code == 1 and "lanchat: banned by alice for good" in err, err
    alice.types("/bans")
    alice.sees("  carol (identity) by alice for good")
    other = plain("caroline", who="somebody else")
    other.wait_line("-- you are caroline on testlab")


def test_an_operator_bans_an_address_for_a_while(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    alice = operator(person, plain)
    dan, _ = login(server, "dan", source="127.0.0.3")

    alice.types("/ban 127.0.0.3 2h proxy abuse")
    alice.sees("server: You banned 127.0.0.3 (address)")
    error = awaited(dan, "error", code="banned")
    assert (error["by"], error["reason"]) == ("alice", "proxy abuse") and "until" in error
    dan.expect_closed()
    _, refused = login(server, "someone", source="127.0.0.3")
    assert refused["code"] == "banned", refused
    _, welcome = login(server, "someone", source="127.0.0.4")
    assert welcome["type"] == "welcome", "only that address"

    alice.types("/bans")
    alice.sees("127.0.0.3 (address) by alice until ")
    alice.types("/unban 127.0.0.3")
    alice.sees("server: You lifted the ban on 127.0.0.3.")
    _, welcome = login(server, "dan", source="127.0.0.3")
    assert welcome["type"] == "welcome", welcome


def test_an_operator_sets_the_motd_and_releases_a_registered_name(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    registered(plain, "carol")
    alice = operator(person, plain)

    alice.types("/motd release on Friday")
    alice.sees("server: You set the message of the day.")
    newcomer = plain("newcomer")
    newcomer.wait_line("-- message of the day: release on Friday")
    assert login(server, "olga")[1]["motd"] == "release on Friday"
    alice.types("/motd clear")
    alice.sees("server: No motd now.")
    assert not login(server, "pat")[1].get("motd")

    stranger = plain("carol", who="stranger")
    stranger.wait_line("'carol' is registered to another key")
    assert finished(stranger)[0] == 1
    alice.types("/unregister carol")
    alice.sees("carol is no longer registered")
    stranger = plain("carol", who="stranger")
    stranger.wait_line("-- you are carol on testlab")
    assert finished(stranger)[0] == 0


def test_an_operator_sets_the_topic_of_a_room_it_is_not_in(
    server: Address,  # noqa: F811
    person: Callable[..., Person],
    plain: Callable[..., PipedClient],  # noqa: F811
) -> None:
    rita = raw(server, "rita")
    rita.send({"type": "join", "room": "#dev", "ref": "j"})
    awaited(rita, "joined", room="#dev")
    alice = operator(person, plain)

    alice.types("/topic #dev release on Friday")
    topic = awaited(rita, "topic", room="#dev")
    assert (topic["text"], topic["by"]) == ("release on Friday", "alice")
    alice.sees("release on Friday")
