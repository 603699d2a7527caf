"""Scrolled back, the view stays on what is being read while messages arrive.

The pure view at fixed sizes (rendered as the curses loop does: render, then tell the
model where the pane is), and the built pyz client in a real pty against the pyz server.
"""

from __future__ import annotations

from typing import Callable, List

import pytest
from drivers import KEYS, PtyClient, clients, server  # noqa: F401  (fixtures)
from wire import login

from lanchat import protocol
from lanchat.chat.connection import Connected, Received
from lanchat.chat.model import ClientModel
from lanchat.chat.view import MORE_BELOW, render

NOW = 1764000000.0


def chat() -> ClientModel:
    model = ClientModel("bob", "127.0.0.1", 42069, ref_prefix="t")
    model.handle_event(Connected(protocol.hello("lab", []), ("127.0.0.1", 42069)), NOW)
    model.handle_event(Received(protocol.welcome("bob", ["alice", "bob"], [])), NOW)
    model.entries.clear()
    return model


def say(model: ClientModel, number: int, text: str = "") -> None:
    frame = protocol.message(number, NOW, "alice", text or f"line {number:02}")
    model.handle_event(Received(frame), NOW)


def draw(model: ClientModel, rows: int = 12, cols: int = 80) -> List[str]:
    """Render as the curses loop does, and tell the model what was drawn."""
    screen = render(model, rows, cols)
    model.set_viewport(screen.page, screen.max_scroll, screen.scroll)
    return screen.text()


def scrolled_back(lines: int = 40, rows: int = 12, cols: int = 80) -> ClientModel:
    model = chat()
    for number in range(1, lines + 1):
        say(model, number)
    draw(model, rows, cols)
    model.handle_key("KEY_PPAGE", NOW)
    return model


def test_new_messages_leave_a_scrolled_back_view_where_it_is() -> None:
    model = scrolled_back()
    before = draw(model)
    assert "line 31" in before[9] and MORE_BELOW in before[10]
    for number in (41, 42, 43):
        say(model, number)
        assert draw(model)[1:10] == before[1:10]
    assert draw(model)[10].startswith("-- 3 new messages below (PgDn) --")


def test_long_new_messages_that_wrap_do_not_move_it_either() -> None:
    model = scrolled_back(cols=40)
    before = draw(model, 12, 40)
    say(model, 41, "a long message that takes several rows " * 4)
    say(model, 42, "你好世界" * 30)
    after = draw(model, 12, 40)
    assert after[1:10] == before[1:10]
    assert after[10].startswith("-- 2 new messages below (PgDn) --")


def test_one_new_message_is_counted_in_the_singular() -> None:
    model = scrolled_back()
    draw(model)
    say(model, 41)
    assert draw(model)[10].startswith("-- 1 new message below (PgDn) --")


def test_the_view_stays_put_between_renders_without_the_loop_telling_the_model() -> None:
    model = scrolled_back()
    before = render(model, 12, 80).text()
    say(model, 41)
    say(model, 42)
    assert render(model, 12, 80).text()[1:10] == before[1:10]


def test_page_down_walks_through_the_new_messages_then_follows_again() -> None:
    model = scrolled_back()
    draw(model)
    for number in range(41, 53):  # 12 new: more than a page
        say(model, number)
    draw(model)
    model.handle_key("KEY_NPAGE", NOW)
    page = draw(model)
    assert "line 32" in page[1] and "line 40" in page[9], "the page right below, whole"
    assert page[10].startswith("-- 12 new messages below (PgDn) --")
    model.handle_key("KEY_NPAGE", NOW)
    page = draw(model)
    assert "line 41" in page[1] and "line 49" in page[9]
    assert page[10].startswith("-- 3 new messages below (PgDn) --"), "fewer once seen"
    model.handle_key("KEY_NPAGE", NOW)
    newest = draw(model)
    assert "line 52" in newest[10] and "below" not in "".join(newest)
    say(model, 53)
    assert "line 53" in draw(model)[10], "at the bottom again, new lines show"


def test_messages_arriving_while_scrolled_do_not_count_once_seen() -> None:
    model = scrolled_back()
    draw(model)
    say(model, 41)
    draw(model)
    model.handle_key("\x1b", NOW)  # back to the newest, then up again
    draw(model)
    model.handle_key("KEY_PPAGE", NOW)
    assert draw(model)[10].startswith(MORE_BELOW)


# --------------------------------------------------------------------------- pyz in a pty


@pytest.mark.pyz
def test_a_scrolled_back_window_keeps_its_lines_while_messages_arrive(
    server: tuple,  # noqa: F811
    clients: Callable[..., PtyClient],  # noqa: F811
) -> None:
    _, address = server
    talker, _ = login(address, "talker")
    client = clients(address, "reader", rows=13, cols=60)  # a pane of 10 rows, and the room bar
    client.wait_for("you are reader")
    talker.expect("join")
    for number in range(1, 21):  # within the server's burst of 30
        talker.send(protocol.say(f"line {number:02}"))
        talker.expect("message")
    client.wait_for("talker: line 20")
    client.type(KEYS["ppage"])
    before = client.wait_for("more below")
    assert "line 11" in before[9], before
    for number in range(21, 24):
        talker.send(protocol.say(f"line {number:02}"))
        talker.expect("message")
    after = client.wait_for("3 new messages below (PgDn)")
    assert after[1:10] == before[1:10]
    client.type(KEYS["npage"])  # the page right below: still above the new ones
    client.wait_for(lambda lines: "talker: line 12" in lines[1] and "line 20" in lines[9])
    client.type(KEYS["npage"])
    newest = client.wait_for(lambda lines: "talker: line 23" in lines[10])
    assert "below" not in "\n".join(newest)
