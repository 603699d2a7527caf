"""Protocol 4.3 in the built pyz client against the built pyz server: registered names,
/nick, /away, /whois, the ignore list kept across client restarts, and an operator's
/kick from the window with the kicked client staying out. Clients run in a real
pseudo-terminal and in plain mode; each has a config folder of its own (its identity key
and settings) in a temporary folder, never the user's."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import drivers
import pytest
from conftest import free_port
from drivers import WAIT, PipedClient, PtyClient, client_argv, client_env
from wire import RawClient, start_pyz_server

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]
STAMP = r"\d\d:\d\d "


@pytest.fixture
def server(pyz: Path, tmp_path: Path) -> Iterator[Address]:
    """The pyz server with a history file of its own, `alice` one of its operators."""
    proc, address = start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
        "--log-level", "warning", "--name", "testlab", "--operator", "alice",
        "--history-db", str(tmp_path / "history.sqlite"),
    )  # fmt: skip
    try:
        yield address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def home(tmp_path: Path, who: str) -> Dict[str, str]:
    """The environment of a client whose config folder (key, settings) is its own."""
    return {**client_env(), "XDG_CONFIG_HOME": str(tmp_path / f"config-{who}")}


@pytest.fixture
def plain(pyz: Path, server: Address, tmp_path: Path) -> Iterator[Callable[..., PipedClient]]:
    """Start plain-mode clients, each as `who` (its config folder); all killed at the end."""
    started: List[PipedClient] = []

    def start(name: str, who: str = "", *extra: str) -> PipedClient:
        argv = client_argv(pyz, server, name, *extra)
        client = PipedClient(argv, env=home(tmp_path, who or name))
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


@pytest.fixture
def window(pyz: Path, server: Address, tmp_path: Path) -> Iterator[Callable[..., PtyClient]]:
    """Start clients in a pseudo-terminal, each as `who`; all killed at the end."""
    started: List[PtyClient] = []

    def start(name: str, who: str = "") -> PtyClient:
        argv = [sys.executable, *client_argv(pyz, server, name)[1:]]
        client = PtyClient(argv, env=home(tmp_path, who or name))
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def raw(address: Address, name: str) -> RawClient:
    """A raw 4.3 client without an identity key, logged in, in #general."""
    client = RawClient(address, timeout=WAIT)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.3.0", "rooms": []})
    client.expect("welcome", name=name)
    return client


def awaited(client: RawClient, kind: str, **fields: Any) -> Dict[str, Any]:
    """The first frame of this type with these fields, the others before it skipped."""
    while True:
        frame = client.recv(WAIT)
        if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
            return frame


def finished(client: PipedClient) -> Tuple[int, str, str]:
    client.close_stdin()
    return client.finish(drivers.LONG_WAIT)


# --------------------------------------------------------------------------- registered names


def test_a_registered_name_is_refused_to_another_key_while_its_owner_is_on_and_off(
    window: Callable[..., PtyClient], plain: Callable[..., PipedClient]
) -> None:
    owner = window("carol")
    owner.wait_for("you are carol on testlab")
    owner.line("/register")
    owner.wait_for("carol is registered to your key (")
    stranger = plain("carol", who="stranger")
    stranger.wait_line("'carol' is registered to another key")
    code, out, _ = finished(stranger)
    assert code == 1 and "!! pass another --name" in out
    owner.line("/quit")
    assert owner.wait_exit() == 0
    stranger = plain("carol", who="stranger")
    stranger.wait_line("'carol' is registered to another key")
    assert finished(stranger)[0] == 1, "refused while its owner is offline too"
    back = plain("carol")  # the owner again, with the same key
    back.wait_line("-- you are carol on testlab")
    assert finished(back)[0] == 0


def test_a_stranger_in_the_window_is_asked_for_another_name(
    window: Callable[..., PtyClient], plain: Callable[..., PipedClient]
) -> None:
    owner = plain("dave")
    owner.write("/register\n")
    owner.wait_line("dave is registered to your key")
    stranger = window("dave", who="stranger")
    stranger.wait_for("'dave' is registered to another key. Type another name")
    stranger.wait_for("name: dave2")
    stranger.line("")
    stranger.wait_for("you are dave2 on testlab")


def test_the_same_key_file_elsewhere_is_the_same_person(
    plain: Callable[..., PipedClient], tmp_path: Path
) -> None:
    key = tmp_path / "bot.key"
    bot = plain("ci", "first machine", "--identity", str(key))
    bot.write("/register\n")
    bot.wait_line("ci is registered to your key")
    assert finished(bot)[0] == 0
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    copy = tmp_path / "copied.key"
    copy.write_bytes(key.read_bytes())
    again = plain("ci", "second machine", "--identity", str(copy))
    again.wait_line("-- you are ci on testlab")
    assert finished(again)[0] == 0
    stranger = plain("ci", "second machine")  # that machine's own key: somebody else
    stranger.wait_line("'ci' is registered to another key")
    assert finished(stranger)[0] == 1


# --------------------------------------------------------------------------- presence


def test_nick_away_and_whois_are_seen_by_the_others(
    server: Address, window: Callable[..., PtyClient], plain: Callable[..., PipedClient]
) -> None:
    erin = raw(server, "erin")
    bob = window("bob")
    bob.wait_for("you are bob on testlab")
    watcher = plain("watcher")
    watcher.wait_line("-- you are watcher on testlab")

    bob.line("/nick robert")
    assert awaited(erin, "nick", old="bob", new="robert")
    bob.wait_for("you are now robert")
    bob.wait_for(lambda lines: "you: robert" in lines[0])
    line = watcher.wait_line("bob is now robert")
    assert re.fullmatch(STAMP + "#general -- bob is now robert", line), line

    bob.line("/away lunch")
    bob.wait_for("you are away: lunch")
    assert awaited(erin, "away", name="robert", text="lunch")
    watcher.wait_line("robert is away: lunch")
    watcher.write("/whois robert\n")
    assert watcher.wait_line("robert: online since ").strip().startswith("robert: online since")
    assert watcher.wait_line("  away: lunch")
    watcher.wait_line("  not registered")

    erin.send({"type": "say", "to": "robert", "text": "are you there?"})
    assert awaited(erin, "away", name="robert", text="lunch", reply=True)
    bob.line("/back")
    watcher.wait_line("robert is back")
    bob.line("still me")
    line = watcher.wait_line("still me")
    assert re.fullmatch(STAMP + "#general robert: still me", line), line


# --------------------------------------------------------------------------- ignore


def test_the_ignore_list_is_kept_across_client_restarts(
    server: Address, plain: Callable[..., PipedClient], tmp_path: Path
) -> None:
    pest = raw(server, "pest")
    frank = plain("frank")
    frank.wait_line("-- you are frank on testlab")
    frank.write("/ignore pest\n")
    frank.wait_line("ignoring pest")
    pest.send({"type": "say", "text": "buy my stuff", "ref": "p1"})
    awaited(pest, "message", text="buy my stuff")
    pest.send({"type": "say", "to": "frank", "text": "psst", "ref": "p2"})
    awaited(pest, "message", text="psst")
    code, out, _ = finished(frank)
    assert code == 0
    assert "buy my stuff" not in out and "psst" not in out
    settings = tmp_path / "config-frank" / "lanchat" / "settings.json"
    assert oct(settings.stat().st_mode & 0o777) == "0o600"

    again = plain("frank")  # a new run: the history brings pest's message back
    again.wait_line("-- you are frank on testlab")
    pest.send({"type": "say", "text": "still selling", "ref": "p3"})
    awaited(pest, "message", text="still selling")
    marker = raw(server, "gina")
    marker.send({"type": "say", "text": "the end", "ref": "g1"})
    again.wait_line("gina: the end")
    again.write("/ignore\n")
    again.wait_line("ignoring (1): pest")
    code, out, _ = finished(again)
    assert code == 0
    assert "buy my stuff" not in out and "still selling" not in out, out


def test_a_registered_person_stays_ignored_under_a_new_name_and_after_a_restart(
    plain: Callable[..., PipedClient], tmp_path: Path
) -> None:
    pest = plain("pest")
    pest.write("/register\n")
    pest.wait_line("pest is registered to your key")
    frank = plain("frank")
    frank.wait_line("-- you are frank on testlab")
    pest.write("first pitch\n")
    frank.wait_line("pest: first pitch")  # seen once: its key is known now
    frank.write("/ignore pest\n")
    frank.wait_line("ignoring pest (and their key ")
    pest.write("/nick seller\n")
    frank.wait_line("pest is now seller")
    pest.write("second pitch\n")
    pest.wait_line("seller: second pitch")
    code, out, _ = finished(frank)
    assert code == 0 and "second pitch" not in out
    kept = json.loads((tmp_path / "config-frank" / "lanchat" / "settings.json").read_text())
    ((entry),) = kept["ignore"]
    assert entry["name"] == "seller" and re.fullmatch(
        r"(?:[0-9a-f]{4} ){3}[0-9a-f]{4}", entry["fingerprint"]
    )

    # Back to the registered name while frank is away: frank knows "seller" and the key,
    # and only the key (which a registered name's messages carry) tells it is pest.
    pest.write("/nick pest\nthird pitch\n")
    pest.wait_line("pest: third pitch")
    again = plain("frank")
    again.wait_line("-- you are frank on testlab")
    pest.write("fourth pitch\n")
    pest.wait_line("pest: fourth pitch")
    marker = plain("gina")
    marker.write("the end\n")
    again.wait_line("gina: the end")
    code, out, _ = finished(again)
    assert code == 0
    for pitch in ("first pitch", "second pitch", "third pitch", "fourth pitch"):
        assert pitch not in out, out  # the history's too


# --------------------------------------------------------------------------- operators


def test_an_operator_kicks_from_the_window_and_the_kicked_client_stays_out(
    server: Address, window: Callable[..., PtyClient], plain: Callable[..., PipedClient]
) -> None:
    alice = window("alice")
    alice.wait_for("you are alice on testlab")
    alice.line("/register")
    alice.wait_for("alice is registered to your key")
    alice.line("/quit")
    assert alice.wait_exit() == 0
    alice = window("alice")  # logged in with her key, a registered operator name
    alice.wait_for(lambda lines: "you: alice (op)" in lines[0])

    alice.line("/motd be nice")
    alice.wait_for("server: ")
    pty_victim = window("mallory")
    pty_victim.wait_for("-- message of the day: be nice")
    pty_victim.wait_for("you are mallory on testlab")
    bot_victim = plain("trent")
    bot_victim.wait_line("-- you are trent on testlab")
    watcher = raw(server, "watcher")

    alice.line("/kick mallory flooding")
    alice.wait_for("server: ")
    assert pty_victim.wait_exit() == 1
    assert "lanchat: kicked by alice: flooding" in pty_victim.output.decode("utf-8", "replace")
    awaited(watcher, "leave", name="mallory")

    alice.line("/ban trent 1h spam")
    bot_victim.wait_line("!! banned by alice until ")
    code, _, err = bot_victim.finish(drivers.LONG_WAIT)
    assert code == 1
    assert re.search(r"^lanchat: banned by alice until \S+: spam$", err, re.M), err
    awaited(watcher, "leave", name="trent")

    watcher.send({"type": "who", "room": "#general"})
    names = awaited(watcher, "online")["names"]
    assert "mallory" not in names and "trent" not in names, "the kicked stay out"


def test_a_damaged_settings_file_is_one_line_and_the_client_goes_on(
    plain: Callable[..., PipedClient], tmp_path: Path
) -> None:
    folder = tmp_path / "config-henry" / "lanchat"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text("{damaged")
    henry = plain("henry")
    line = henry.wait_line("settings file")
    assert line.endswith(f"!! settings file {folder / 'settings.json'} ignored: it is damaged")
    henry.wait_line("-- you are henry on testlab")
    henry.write("/bell all\n")
    henry.wait_line("bell: all")
    assert finished(henry)[0] == 0
    assert json.loads((folder / "settings.json").read_text()) == {"bell": "all", "ignore": []}
