"""The client as a newcomer meets it, without a terminal: Tab completion, Alt and Ctrl keys,
the words of the status bar, /help, name colours and the reconnect wait."""

from __future__ import annotations

from typing import List, Sequence

import pytest

from lanchat import protocol
from lanchat.chat import connection
from lanchat.chat.colours import NAME_COLOURS, NameColours, preferred_colour
from lanchat.chat.connection import Backoff, Connected, Disconnected, Received
from lanchat.chat.model import ClientModel
from lanchat.chat.view import render, status_text
from lanchat.client_curses import join_alt_keys
from lanchat.core.chat import Chat
from lanchat.core.history import MemoryHistory
from lanchat.core.rooms import Member
from lanchat.protocol import Frame, ProtocolError

NOW = 1764000000.0
ADDRESS = ("127.0.0.1", 42069)


def connect(model: ClientModel, now: float = NOW) -> None:
    model.handle_event(Connected(protocol.hello("vm", []), ADDRESS), now)


def receive(model: ClientModel, frame: Frame, now: float = NOW) -> None:
    model.handle_event(Received(frame), now)


def logged_in(name: str = "me", online: Sequence[str] = (), window: bool = True) -> ClientModel:
    model = ClientModel(name, *ADDRESS, ref_prefix="t", window=window)
    connect(model)
    receive(model, protocol.welcome(name, [name, *online], []))
    return model


def tab(model: ClientModel, *typed: str) -> str:
    """Type these keys, then Tab; the input line up to the cursor."""
    for key in (*typed, "\t"):
        model.handle_key(key, NOW)
    return model.input[: model.cursor]


# --------------------------------------------------------------------------- Tab


def test_tab_completes_the_common_prefix_then_cycles_through_the_names() -> None:
    model = logged_in(online=("bob", "bobby"))
    assert tab(model, *"bo") == "bob"
    assert tab(model) == "bob: "
    assert tab(model) == "bobby: "
    assert tab(model) == "bob: ", "round again"


def test_tab_on_a_name_that_begins_another_cycles_at_once() -> None:
    model = logged_in(online=("carol", "carol2"))
    assert tab(model, *"carol") == "carol: "
    assert tab(model) == "carol2: "


def test_tab_takes_the_names_spelling_whatever_the_case_typed() -> None:
    model = logged_in(online=("Bob", "bobby"))
    assert tab(model, *"BO") == "Bob"
    assert tab(model) == "Bob: "


def test_tab_completes_a_name_after_an_at_sign() -> None:
    model = logged_in(online=("bob", "bobby"))
    assert tab(model, *"@bobb") == "@bobby "
    assert tab(model, *"ask @b") == "@bobby ask @bob"
    assert tab(model) == "@bobby ask @bob "


def test_tab_completes_commands_at_the_start_of_the_line() -> None:
    model = logged_in()
    assert tab(model, *"/ms") == "/msg "
    model.handle_key("\x15", NOW)
    assert tab(model, *"/m") == "/me "
    assert tab(model) == "/msg "
    model.handle_key("\x15", NOW)
    assert tab(model, *"/WH") == "/who "


def test_tab_completes_the_name_of_msg_and_every_name_after_msg_and_a_space() -> None:
    model = logged_in(online=("alice", "bob"))
    assert tab(model, *"/msg b") == "/msg bob "
    model.handle_key("\x15", NOW)
    assert tab(model, *"/m ") == "/m alice "
    assert tab(model) == "/m bob "


def test_tab_keeps_what_follows_the_cursor() -> None:
    model = logged_in(online=("bob", "alice"))
    for key in (*"al how are you", *["KEY_HOME"], *"KEY_RIGHT KEY_RIGHT".split()):
        model.handle_key(key, NOW)
    assert tab(model) == "alice:"
    assert model.input == "alice: how are you", "no second space"


def test_another_key_ends_the_cycle() -> None:
    model = logged_in(online=("bob", "bobby", "carol", "carol2"))
    assert tab(model, *"bo", "\t") == "bob: "
    assert tab(model, *"and c") == "bob: and carol", "a new word: its own candidates"
    assert tab(model) == "bob: and carol "


def test_tab_offers_neither_my_own_name_nor_anything_for_an_empty_word() -> None:
    model = logged_in(name="bob", online=("bobby",))
    assert tab(model, *"bo") == "bobby: "
    assert tab(model, *"x ") == "bobby: x ", "nothing to complete after a space"


def test_tab_completes_nothing_while_a_name_is_asked_for() -> None:
    model = ClientModel("bob", *ADDRESS, window=True)
    connect(model)
    receive(model, protocol.online(["bob", "bobby"]))
    receive(model, protocol.error("name_taken", "'bob' is online already."))
    model.handle_key("\x15", NOW)
    assert tab(model, *"bo") == "bo"


# --------------------------------------------------------------------------- keys


def test_alt_b_and_alt_f_move_by_word() -> None:
    model = logged_in()
    for key in "one two three":
        model.handle_key(key, NOW)
    model.handle_key("\x1bb", NOW)
    assert model.cursor == len("one two ")
    model.handle_key("\x1bb", NOW)
    assert model.cursor == len("one ")
    model.handle_key("\x1bf", NOW)
    assert model.cursor == len("one two")
    assert model.input == "one two three"


@pytest.mark.parametrize(
    ("read", "keys"),
    [
        (["\x1b", "b"], ["\x1bb"]),
        (["a", "\x1b", "f", "c"], ["a", "\x1bf", "c"]),
        (["\x1b"], ["\x1b"]),
        (["\x1b", "KEY_UP"], ["\x1b", "KEY_UP"]),
        (["\x1b", "\x1b", "b"], ["\x1b", "\x1bb"]),
        (["\x1b", "\n"], ["\x1b", "\n"]),
    ],
)
def test_esc_and_the_character_with_it_are_one_alt_key(read: List[str], keys: List[str]) -> None:
    assert join_alt_keys(read) == keys


def test_help_lists_keys_only_where_there_are_keys() -> None:
    window = logged_in(window=True)
    window.submit("/help", NOW)
    shown = "\n".join(e.text for e in window.entries)
    for key in ("Tab", "Alt-B/Alt-F", "Ctrl-L", "PgUp"):
        assert key in shown
    plain = logged_in(window=False)
    plain.submit("/help", NOW)
    shown = "\n".join(e.text for e in plain.entries)
    assert "/msg NAME text" in shown
    for key in ("Keys", "Tab", "Ctrl", "PgUp", "Esc"):
        assert key not in shown


# --------------------------------------------------------------------------- words


def test_offline_the_count_is_left_out_and_the_list_is_the_last_one_seen() -> None:
    model = logged_in(name="bob", online=("alice", "carol"))
    assert "3 online" in status_text(model, 80)
    model.handle_event(Disconnected("the server closed the connection", 0.5), NOW)
    text = render(model, 24, 80).text()
    assert "online" not in text[0].replace("offline", ""), text[0]
    assert "offline, reconnecting" in text[0]
    assert text[1].rstrip().endswith("last seen (3)")
    connect(model)
    assert "online" not in status_text(model, 80).replace("offline", ""), "not yet back"
    receive(model, protocol.welcome("bob", ["alice", "bob"], []))
    assert "2 online" in status_text(model, 80)
    assert render(model, 24, 80).text()[1].rstrip().endswith("online (2)")


def test_while_a_name_is_asked_for_the_status_names_neither_you_nor_a_count() -> None:
    model = ClientModel("BOB", *ADDRESS)
    connect(model)
    receive(model, protocol.error("name_taken", "'bob' is online already."))
    for cols in (80, 40, 25):
        status = status_text(model, cols)
        assert "choose a name" in status
        assert "BOB" not in status and "online" not in status, status
    assert render(model, 24, 80).text()[1].rstrip().endswith("|online"), "no count known"


def test_a_shutdown_that_says_so_itself_is_said_once() -> None:
    model = logged_in()
    receive(model, protocol.shutdown("vm is shutting down."))
    assert model.entries[-1].text == "vm is shutting down."
    receive(model, protocol.shutdown("maintenance"))
    assert model.entries[-1].text == "the server is shutting down: maintenance"
    receive(model, {"type": "shutdown"})
    assert model.entries[-1].text == "the server is shutting down"


def full_server_refuses(model: ClientModel, now: float, retry_in: float) -> None:
    """One attempt on a full server: hello, login, server_full, closed."""
    connect(model, now)
    receive(model, protocol.error("server_full", "The server is full (1)."), now)
    model.handle_event(Disconnected("the server closed the connection", retry_in), now)


def test_a_full_server_is_said_once_and_the_status_counts_down_to_the_next_try() -> None:
    model = ClientModel("bob", *ADDRESS)
    for attempt, wait in enumerate((0.25, 0.5, 1.0, 2.0, 4.0)):
        full_server_refuses(model, NOW + attempt * 10, wait)
    said = [e.text for e in model.entries]
    assert said == ["server: The server is full (1). Trying again until there is room."]
    start = NOW + 40
    assert status_text(model, 80).endswith("server full, retrying in 4 s")
    model.tick(start + 1.5)
    assert status_text(model, 80).endswith("server full, retrying in 3 s")
    model.tick(start + 4.0)
    assert status_text(model, 80).endswith("server full, retrying")
    connect(model, start + 4.1)
    receive(model, protocol.welcome("bob", ["bob"], []), start + 4.1)
    assert not model.server_full
    full_server_refuses(model, start + 100, 0.25)
    assert model.entries[-1].text.startswith("server: The server is full"), "news again"


def test_a_full_server_gone_quiet_is_news_again_when_it_answers_full() -> None:
    model = ClientModel("bob", *ADDRESS)
    full_server_refuses(model, NOW, 0.25)
    model.handle_event(Disconnected("cannot connect: Connection refused", 0.5), NOW + 1)
    assert "offline, reconnecting" in status_text(model, 80)
    full_server_refuses(model, NOW + 2, 1.0)
    assert [e.text for e in model.entries].count(model.entries[0].text) == 2


def test_name_taken_names_the_one_online() -> None:
    room = Chat(lambda items: None, MemoryHistory(), welcome_size=50, clock=lambda: NOW)
    room.join(Member("bob"))
    with pytest.raises(ProtocolError) as caught:
        room.join(Member("BOB"))
    assert caught.value.message == "'bob' is online already."


# --------------------------------------------------------------------------- colours


def two_sharing_a_colour() -> List[str]:
    """Two names that prefer the same colour."""
    first: dict = {}
    for number in range(100):
        name = f"user{number}"
        colour = preferred_colour(name)
        if colour in first:
            return [first[colour], name]
        first[colour] = name
    raise AssertionError("unreachable: 100 names in 6 colours")


def test_two_online_get_distinct_colours_though_their_names_prefer_one() -> None:
    one, other = two_sharing_a_colour()
    model = logged_in(online=(one, other))
    assert model.colours.of(one) != model.colours.of(other)


def test_everyone_online_has_a_colour_of_their_own_while_the_palette_allows() -> None:
    names = [f"user{n}" for n in range(NAME_COLOURS)]
    model = logged_in(online=names[:2])
    for name in names[2:]:
        receive(model, protocol.join(name, NOW))
    assert sorted(model.colours.of(n) for n in names) == list(range(NAME_COLOURS))
    before = {n: model.colours.of(n) for n in names}
    receive(model, protocol.join("one_too_many", NOW))
    assert {n: model.colours.of(n) for n in names} == before, "nobody's colour changes"


def test_a_colour_stays_with_its_name_and_comes_back_with_it() -> None:
    one, other = two_sharing_a_colour()
    colours = NameColours()
    colours.give([one])
    first = colours.of(one)
    assert first == preferred_colour(one)
    colours.give([one, other])
    assert colours.of(one) == first, "the one online before keeps it"
    taken = colours.of(other)
    colours.give([other])
    colours.give([one, other])
    assert (colours.of(one), colours.of(other)) == (first, taken)


def test_my_own_name_takes_no_colour_from_the_others() -> None:
    names = [f"user{n}" for n in range(NAME_COLOURS)]
    model = logged_in(name="me", online=names)
    assert sorted(model.colours.of(n) for n in names) == list(range(NAME_COLOURS))


# --------------------------------------------------------------------------- backoff


def test_the_reconnect_wait_never_passes_its_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection.random, "uniform", lambda low, high: high)  # most jitter
    backoff = Backoff(first=0.25, most=10.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[:6] == pytest.approx([0.3, 0.6, 1.2, 2.4, 4.8, 9.6])
    assert delays[6:] == [10.0] * 4
