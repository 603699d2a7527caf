"""Line editing: pure `(cursor, line) -> (cursor, line)` functions, cluster-aware."""

from __future__ import annotations

from typing import Callable, Tuple

import pytest

from lanchat.chat import lineedit
from lanchat.chat.termtext import char_width, clusters, fit, pad, safe_text, text_width

Edit = Callable[[int, str], Tuple[int, str]]

E_ACUTE = "e\u0301"  # e + combining acute: one character on screen
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji made of three

CASES = [
    # (function, cursor, line, expected cursor, expected line)
    (lineedit.left, 3, "abc", 2, "abc"),
    (lineedit.left, 0, "abc", 0, "abc"),
    (lineedit.right, 1, "abc", 2, "abc"),
    (lineedit.right, 3, "abc", 3, "abc"),
    (lineedit.home, 2, "abc", 0, "abc"),
    (lineedit.end, 0, "abc", 3, "abc"),
    (lineedit.backspace, 2, "abc", 1, "ac"),
    (lineedit.backspace, 0, "abc", 0, "abc"),
    (lineedit.delete, 1, "abc", 1, "ac"),
    (lineedit.delete, 3, "abc", 3, "abc"),
    (lineedit.kill_to_start, 2, "abcd", 0, "cd"),
    (lineedit.kill_to_end, 2, "abcd", 2, "ab"),
    (lineedit.delete_word_back, 10, "hello big world", 6, "hello world"),
    (lineedit.delete_word_back, 10, "hello big ", 6, "hello "),
    (lineedit.delete_word_back, 0, "hello", 0, "hello"),
    (lineedit.word_left, 15, "hello big world", 10, "hello big world"),
    (lineedit.word_right, 0, "hello big world", 5, "hello big world"),
    # wide characters are one step each
    (lineedit.left, 2, "你好", 1, "你好"),
    (lineedit.backspace, 2, "你好", 1, "你"),
    # a letter and its combining mark move and delete as one
    (lineedit.left, 3, "a" + E_ACUTE, 1, "a" + E_ACUTE),
    (lineedit.right, 1, "a" + E_ACUTE + "b", 3, "a" + E_ACUTE + "b"),
    (lineedit.backspace, 3, "a" + E_ACUTE, 1, "a"),
    (lineedit.delete, 0, E_ACUTE + "x", 0, "x"),
    # an emoji joined with ZWJ is one character
    (lineedit.backspace, len(FAMILY), FAMILY, 0, ""),
    (lineedit.left, len(FAMILY) + 1, FAMILY + "x", len(FAMILY), FAMILY + "x"),
    (lineedit.right, 0, FAMILY + "x", len(FAMILY), FAMILY + "x"),
]


@pytest.mark.parametrize(("edit", "cursor", "line", "want_cursor", "want_line"), CASES)
def test_edit(edit: Edit, cursor: int, line: str, want_cursor: int, want_line: str) -> None:
    assert edit(cursor, line) == (want_cursor, want_line)


def test_insert_at_cursor() -> None:
    assert lineedit.insert(1, "ac", "b") == (2, "abc")
    assert lineedit.insert(0, "", "你好😀") == (3, "你好😀")


def test_insert_respects_a_limit() -> None:
    assert lineedit.insert(3, "abc", "def", limit=5) == (5, "abcde")
    assert lineedit.insert(3, "abc", "x", limit=3) == (3, "abc")


def test_widths_count_cells_not_code_points() -> None:
    assert text_width("abc") == 3
    assert text_width("你好") == 4
    assert text_width(E_ACUTE) == 1
    assert text_width("😀") == 2
    assert char_width("\u200d") == 0
    assert char_width("\x1b") == 0


def test_fit_and_pad_never_cut_a_wide_character() -> None:
    assert fit("你好吗", 5) == "你好"
    assert pad("你好吗", 5) == "你好 "
    assert text_width(pad("a" + E_ACUTE + "你", 4)) == 4
    assert clusters("a" + E_ACUTE + FAMILY) == ["a", E_ACUTE, FAMILY]


def test_safe_text_leaves_no_controls_or_bidi_overrides() -> None:
    hostile = "a\x1b[31mred\x07\r\nb\u202egnp.exe\u2028c\u200fd\x9b"
    cleaned = safe_text(hostile)
    assert cleaned == "a[31mred  bgnp.exe cd"
    assert all(c.isprintable() or c == " " for c in cleaned)
