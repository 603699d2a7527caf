"""Line editing as pure functions: `(cursor, line) -> (cursor, line)`, as in bpython.

The cursor is an index into the line's code points and always sits at the start of a
character cluster, so a wide character, a letter with its combining marks or an emoji
sequence moves and deletes as one. Nothing here knows about keys or terminals.
"""

from __future__ import annotations

from typing import Tuple

from lanchat.chat.termtext import cluster_end, cluster_start

Edit = Tuple[int, str]


def insert(cursor: int, line: str, text: str, limit: int = 0) -> Edit:
    """Insert text at the cursor; with a limit, the line never grows past it."""
    if limit:
        text = text[: max(0, limit - len(line))]
    return cursor + len(text), line[:cursor] + text + line[cursor:]


def left(cursor: int, line: str) -> Edit:
    """Move one character left."""
    return cluster_start(line, cursor), line


def right(cursor: int, line: str) -> Edit:
    """Move one character right."""
    return cluster_end(line, cursor), line


def home(cursor: int, line: str) -> Edit:
    """Move to the start of the line."""
    return 0, line


def end(cursor: int, line: str) -> Edit:
    """Move to the end of the line."""
    return len(line), line


def backspace(cursor: int, line: str) -> Edit:
    """Delete the character before the cursor."""
    start = cluster_start(line, cursor)
    return start, line[:start] + line[cursor:]


def delete(cursor: int, line: str) -> Edit:
    """Delete the character under the cursor."""
    return cursor, line[:cursor] + line[cluster_end(line, cursor) :]


def kill_to_start(cursor: int, line: str) -> Edit:
    """Delete from the start of the line to the cursor (Ctrl-U)."""
    return 0, line[cursor:]


def kill_to_end(cursor: int, line: str) -> Edit:
    """Delete from the cursor to the end of the line (Ctrl-K)."""
    return cursor, line[:cursor]


def delete_word_back(cursor: int, line: str) -> Edit:
    """Delete the word before the cursor and the spaces after it (Ctrl-W)."""
    start = cursor
    while start > 0 and line[start - 1].isspace():
        start -= 1
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    return start, line[:start] + line[cursor:]


def word_left(cursor: int, line: str) -> Edit:
    """Move to the start of the word before the cursor."""
    start = cursor
    while start > 0 and line[start - 1].isspace():
        start -= 1
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    return start, line


def word_right(cursor: int, line: str) -> Edit:
    """Move past the end of the word after the cursor."""
    stop = cursor
    while stop < len(line) and line[stop].isspace():
        stop += 1
    while stop < len(line) and not line[stop].isspace():
        stop += 1
    return stop, line
