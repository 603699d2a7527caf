"""The IRC gateway's cost per member: lines built once, not once per connection."""

from __future__ import annotations

from lanchat.irc import lines


def test_a_text_that_fits_one_line_is_not_rebuilt() -> None:
    text = "lcb/12345/1764000000123456789 " * 3
    assert lines.split_text(text, 400)[0] is text
    assert lines.split_text("ж" * 200, 400) == ["ж" * 200]  # 400 bytes exactly
    assert lines.split_text("", 400) == [""]
