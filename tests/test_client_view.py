"""The pure view: `render(model, rows, cols)` at fixed sizes, without any terminal."""

from __future__ import annotations

import unicodedata
from typing import List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanchat import protocol
from lanchat.chat.connection import Connected, Disconnected, Received
from lanchat.chat.model import ClientModel
from lanchat.chat.picker import ServerPicker
from lanchat.chat.termtext import text_width
from lanchat.chat.view import (
    MORE_BELOW,
    Screen,
    clock,
    name_style,
    render,
    render_picker,
    wrap,
)

NOW = 1764000000.0
HHMM = clock(NOW)


def chat(name: str = "bob", online: Sequence[str] = ("alice", "bob")) -> ClientModel:
    model = ClientModel(name, "127.0.0.1", 42069, ref_prefix="t")
    model.handle_event(Connected(protocol.hello("lab", []), ("127.0.0.1", 42069)), NOW)
    model.handle_event(Received(protocol.welcome(name, list(online), [])), NOW)
    model.entries.clear()  # start from an empty pane
    return model


def say(model: ClientModel, sender: str, text: str, number: int = 1, **extra: object) -> None:
    frame = protocol.message(number, NOW, sender, text, **extra)  # type: ignore[arg-type]
    model.handle_event(Received(frame), NOW)


def assert_shape(screen: Screen, rows: int, cols: int) -> None:
    assert len(screen.rows) == rows
    for row in screen.rows:
        assert sum(text_width(text) for text, _ in row) == cols, row


def styles_of(screen: Screen, needle: str) -> List[str]:
    return [style for row in screen.rows for text, style in row if needle in text]


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize(("rows", "cols"), [(24, 80), (6, 20), (50, 200), (7, 59), (10, 60)])
def test_render_fills_exactly_the_size_asked(rows: int, cols: int) -> None:
    model = chat()
    say(model, "alice", "a long line " * 30)
    say(model, "alice", "你好" * 40, number=2)
    screen = render(model, rows, cols)
    assert_shape(screen, rows, cols)
    assert screen.cursor is not None and screen.cursor[0] == rows - 1


@pytest.mark.parametrize(("rows", "cols"), [(5, 80), (24, 19), (1, 1), (0, 0), (3, 8)])
def test_smaller_than_20x6_is_a_short_note(rows: int, cols: int) -> None:
    screen = render(chat(), rows, cols)
    assert_shape(screen, rows, cols)
    assert screen.cursor is None
    if rows and cols >= 9:
        assert screen.text()[0].strip() in ("lanchat needs 20x6", "too small")


def test_status_bar_says_server_address_name_count_and_state() -> None:
    status = render(chat(), 24, 80).text()[0]
    assert "lab (127.0.0.1:42069)" in status
    assert "you: bob" in status
    assert "2 online" in status
    assert "connected" in status


def test_status_bar_says_when_the_server_is_gone() -> None:
    model = chat()
    model.handle_event(Disconnected("connection lost", 1.0), NOW)
    assert "offline, reconnecting" in render(model, 24, 80).text()[0]
    assert render(model, 6, 40).text()[0].strip().endswith("offline, reconnecting")


def test_online_list_at_the_side_when_wide_hidden_when_narrow() -> None:
    model = chat(online=("alice", "bob", "carol"))
    wide = render(model, 24, 80).text()
    assert wide[1].rstrip().endswith("online (3)")
    assert wide[2].rstrip().endswith("alice")
    assert wide[4].rstrip().endswith("carol")
    narrow = render(model, 24, 40).text()
    assert not any("online (3)" in row for row in narrow[1:])


def test_a_long_online_list_ends_with_a_count_of_the_rest() -> None:
    names = [f"user{i}" for i in range(30)]
    text = render(chat("user0", names), 10, 80).text()
    assert text[8].rstrip().endswith("+24 more")


# --------------------------------------------------------------------------- messages


def test_a_message_shows_time_name_in_its_colour_and_text() -> None:
    model = chat()
    say(model, "alice", "hello bob and all")
    screen = render(model, 24, 80)
    assert screen.text()[1].startswith(f"{HHMM} alice: hello bob and all")
    assert styles_of(screen, "alice")[0] == name_style("alice")
    assert name_style("alice") == name_style("ALICE"), "colour by the name's key"


def test_own_lines_private_and_pending_are_marked() -> None:
    model = chat()
    say(model, "bob", "mine", ref="zz")
    say(model, "alice", "secret", number=2, to="bob")
    model.handle_key("\x15", NOW)
    model.handle_event(Disconnected("connection lost", 1.0), NOW)
    for key in "later\n":
        model.handle_key(key, NOW)
    screen = render(model, 24, 80)
    text = screen.text()
    assert text[1].startswith(f"{HHMM} bob: mine")
    assert [style for part, style in screen.rows[1] if part == "bob"] == ["own"]
    assert text[2].startswith(f"{HHMM} [private] alice: secret")
    assert "pm" in styles_of(screen, "[private]")
    assert any(row.startswith(f"{HHMM} bob: later (pending)") for row in text)


def test_joins_and_leaves_are_quiet_system_lines() -> None:
    model = chat()
    model.handle_event(Received(protocol.join("carol", NOW)), NOW)
    screen = render(model, 24, 80)
    assert screen.text()[1].startswith(f"{HHMM} -- carol joined")
    assert styles_of(screen, "carol joined") == ["sys"]


def test_a_mention_is_highlighted() -> None:
    model = chat()
    say(model, "alice", "bob: look")
    assert "mention" in styles_of(render(model, 24, 80), "look")


def test_long_lines_wrap_under_the_text() -> None:
    model = chat()
    say(model, "alice", "word " * 30)
    text = render(model, 24, 40).text()
    assert text[1].startswith(f"{HHMM} alice: word word")
    assert text[2].startswith("      word")
    assert all(text_width(row) == 40 for row in text)


def test_wide_characters_wrap_without_breaking_the_layout() -> None:
    model = chat()
    say(model, "李雷", "你好世界" * 20)
    screen = render(model, 24, 50)
    assert_shape(screen, 24, 50)
    assert "你好世界" in screen.text()[2]


def test_wrap_breaks_at_spaces_and_never_overflows() -> None:
    rows = wrap([("aaa bbb ccc", "")], 7)
    assert ["".join(t for t, _ in row) for row in rows] == ["aaa bbb", "ccc    "]
    rows = wrap([("x" * 15, "")], 7, indent=2)
    assert ["".join(t for t, _ in row) for row in rows] == ["xxxxxxx", "  xxxxx", "  xxx  "]
    rows = wrap([("好" * 5, "")], 5)
    assert ["".join(t for t, _ in row) for row in rows] == ["好好 ", "好好 ", "好   "]


def test_scrolling_back_shows_a_more_below_mark() -> None:
    model = chat()
    for number in range(1, 41):
        say(model, "alice", f"line {number}", number=number)
    screen = render(model, 12, 80)
    model.set_viewport(screen.page, screen.max_scroll)
    assert "line 40" in screen.text()[10]
    model.handle_key("KEY_PPAGE", NOW)
    scrolled = render(model, 12, 80).text()
    assert MORE_BELOW in scrolled[10]
    assert "line 40" not in "".join(scrolled)
    assert "line 31" in scrolled[9]
    for _ in range(10):
        model.handle_key("KEY_PPAGE", NOW)
        model.set_viewport(*_viewport(render(model, 12, 80)))
    assert "line 1 " in render(model, 12, 80).text()[1]


def _viewport(screen: Screen) -> tuple:
    return screen.page, screen.max_scroll


# --------------------------------------------------------------------------- input


def test_cursor_counts_wide_characters_as_two_cells() -> None:
    model = chat()
    for key in "你好😀a":
        model.handle_key(key, NOW)
    screen = render(model, 24, 80)
    assert screen.text()[23].startswith("> 你好😀a")
    assert screen.cursor == (23, 2 + 7)
    model.handle_key("KEY_LEFT", NOW)
    model.handle_key("KEY_LEFT", NOW)
    assert render(model, 24, 80).cursor == (23, 2 + 4)


def test_a_long_input_line_scrolls_to_keep_the_cursor_visible() -> None:
    model = chat()
    model.handle_key("0123456789" * 10, NOW)
    screen = render(model, 6, 30)
    assert_shape(screen, 6, 30)
    assert screen.cursor == (5, 29), "the cursor sits in the last cell, after the text"
    assert screen.text()[5].rstrip().endswith("789")
    model.handle_key("KEY_HOME", NOW)
    screen = render(model, 6, 30)
    assert screen.cursor == (5, 2)
    assert screen.text()[5].startswith("> 0123")


def test_the_name_prompt_replaces_the_input_prompt() -> None:
    model = ClientModel("bob", "127.0.0.1", 1)
    model.handle_event(Connected(protocol.hello("lab", []), ("127.0.0.1", 1)), NOW)
    model.handle_event(Received(protocol.error("name_taken")), NOW)
    text = render(model, 24, 80).text()
    assert text[23].startswith("name: bob2")
    assert "choose a name" in text[0]


def test_a_password_being_typed_is_not_shown_not_even_its_length() -> None:
    model = ClientModel("bob", "127.0.0.1", 1, ask_password=True)
    hello = protocol.hello("lab", [], nonce="00" * 16)
    model.handle_event(Connected(hello, ("127.0.0.1", 1)), NOW)
    for key in "hunter2":
        model.handle_key(key, NOW)
    screen = render(model, 24, 80)
    text = screen.text()
    assert_shape(screen, 24, 80)
    assert text[23].rstrip() == "password:"
    assert screen.cursor == (23, len("password: "))
    assert "hunter2" not in "\n".join(text)
    assert "*" not in text[23]
    assert "password needed" in text[0]


# --------------------------------------------------------------------------- safety


HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates on the wire
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(sender=HOSTILE, text=HOSTILE, rows=st.integers(0, 30), cols=st.integers(0, 120))
def test_anything_received_is_drawn_in_shape_without_control_characters(
    sender: str, text: str, rows: int, cols: int
) -> None:
    model = chat()
    say(model, sender or "x", text or "y")
    model.handle_event(Received(protocol.join(sender or "x", NOW)), NOW)
    model.handle_event(Received(protocol.online([sender or "x", "bob"])), NOW)
    screen = render(model, rows, cols)
    assert_shape(screen, rows, cols)
    for row in screen.rows:
        for segment, _ in row:
            for char in segment:
                category = unicodedata.category(char)
                assert category not in ("Cc", "Zl", "Zp"), repr(char)
                assert not 0x202A <= ord(char) <= 0x202E and not 0x2066 <= ord(char) <= 0x2069


def test_picker_lists_servers_and_marks_the_chosen_one() -> None:
    picker = ServerPicker(
        [("lab (10.0.0.2:42069)", True), ("old (10.0.0.3:42069) - incompatible", False)]
    )
    screen = render_picker(picker, 10, 60)
    assert_shape(screen, 10, 60)
    text = screen.text()
    assert text[1].startswith("> lab")
    assert text[2].startswith("  old")
    assert styles_of(screen, "old") == ["dim"]
