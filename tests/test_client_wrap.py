"""Wrapping: CJK breaks between any two characters, a long URL continues at the left edge.

`wrap` and the message pane at fixed sizes, and the built pyz client in a real pty.
"""

from __future__ import annotations

from typing import Callable, List

import pytest
from drivers import PtyClient, clients, server  # noqa: F401  (fixtures)
from wire import login

from lanchat import protocol
from lanchat.chat.termtext import text_width
from lanchat.chat.view import wrap

URL = "https://example.com/a/very/long/path/that/does/not/fit/on/one/row?query=1&and=2#end"


def lines(text: str, width: int, indent: int = 6) -> List[str]:
    return ["".join(part for part, _ in row) for row in wrap([(text, "")], width, indent)]


def test_cjk_without_spaces_starts_right_after_the_name() -> None:
    rows = lines("20:26 bob: " + "你好世界" * 10, 30)
    assert rows[0] == "20:26 bob: 你好世界你好世界你 "
    assert all(row.startswith("      ") for row in rows[1:])
    assert "".join(row.strip() for row in rows) == "20:26 bob: " + "你好世界" * 10


def test_cjk_rows_never_start_with_a_closing_mark() -> None:
    text = "20:26 bob: " + "「你好」世界，这是一个测试。" * 6
    rows = lines(text, 24)
    for row in rows[1:]:
        assert row.strip()[0] not in "，。」", rows
    assert all(text_width(row) == 24 for row in rows)


def test_a_latin_word_still_moves_down_whole() -> None:
    assert lines("20:26 bob: hello wonderful", 20) == [
        "20:26 bob: hello    ",
        "      wonderful     ",
    ]


def test_a_url_too_long_for_a_row_continues_unindented_and_copies_whole() -> None:
    rows = lines(f"20:26 bob: see {URL} there", 30)
    assert rows[0] == "20:26 bob: see https://example"
    continued = rows[1:]
    assert all(not row.startswith(" ") for row in continued), rows
    copied = "".join(row.rstrip() for row in rows).split(" ")[3]
    assert copied == URL
    assert rows[-1].rstrip().endswith("#end there")


def test_a_url_in_brackets_continues_unindented_too() -> None:
    rows = lines(f"20:26 bob: ({URL})", 30)
    assert all(not row.startswith(" ") for row in rows[1:]), rows
    assert "".join(row.rstrip() for row in rows).endswith(f"({URL})")


def test_a_url_that_fits_a_row_moves_down_whole_under_the_text() -> None:
    assert lines("20:26 bob: see https://example.com/x", 30) == [
        "20:26 bob: see                ",
        "      https://example.com/x   ",
    ]


def test_text_after_a_url_wraps_under_the_text_again() -> None:
    rows = lines(f"20:26 bob: {URL} " + "word " * 12, 30)
    assert rows[-1].startswith("      word")


# --------------------------------------------------------------------------- pyz in a pty


@pytest.mark.pyz
def test_the_window_wraps_cjk_after_the_name_and_urls_unindented(
    server: tuple,  # noqa: F811
    clients: Callable[..., PtyClient],  # noqa: F811
) -> None:
    _, address = server
    sender, _ = login(address, "alice")
    client = clients(address, "reader", rows=16, cols=40)
    client.wait_for("you are reader")
    sender.send(protocol.say("你好世界" * 12))
    shown = client.wait_for("alice: 你好")
    row = next(line for line in shown if "alice: " in line)
    assert row.rstrip().endswith("alice: 你好世界你好世界你好世界你"), "the row is filled"
    sender.send(protocol.say(f"look {URL}"))
    shown = client.wait_for(lambda screen: any("#end" in line for line in screen))
    first = next(y for y, line in enumerate(shown) if "alice: look" in line)
    last = next(y for y, line in enumerate(shown) if "#end" in line)
    assert last > first + 1, "the URL takes several rows"
    assert all(not shown[y].startswith(" ") for y in range(first + 1, last + 1)), shown
    assert "".join(line.rstrip() for line in shown[first : last + 1]).endswith(" " + URL)
