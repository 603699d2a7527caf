"""The server console without a terminal: its command parser, log buffer, model and view.

The parser must build exactly the frames an operator's client sends; the model and the
view are pure, rendered at fixed sizes (as the chat's view is in test_client_view.py).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import List, Sequence, Tuple

import pytest
from conftest import ROOT, MakeServer
from hypothesis import given
from hypothesis import strategies as st
from wire import login

from lanchat import protocol
from lanchat.chat.termtext import text_width
from lanchat.console import commands
from lanchat.console.commands import (
    Announce,
    CommandError,
    Operate,
    Show,
    Shutdown,
    parse,
    parse_duration,
)
from lanchat.console.logbuffer import LogBuffer
from lanchat.console.model import ConsoleModel, Person, RoomInfo
from lanchat.console.operator import carry_out, describe, describe_bans, snapshot
from lanchat.console.view import ConsoleScreen, render, wrap
from lanchat.core import events
from lanchat.core.safelog import SafeFormatter
from lanchat.server import ChatServer

TITLE = "lanchat 4.4.0 server 'lab' (no password) listening on 127.0.0.1:42069"


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("word", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("15", 15), ("1.5h", 5400),
     ("2H", 7200), ("0.5", 0.5)],
)  # fmt: skip
def test_durations_have_units_and_a_bare_number_is_seconds(word: str, seconds: float) -> None:
    assert parse_duration(word) == seconds


@pytest.mark.parametrize("word", ["spam", "2w", "h", "-5", "1e3", "٣", "2 h", ""])
def test_a_word_that_is_no_duration_is_none(word: str) -> None:
    assert parse_duration(word) is None


@pytest.mark.parametrize("word", ["0", "0s", "0.0h"])
def test_a_zero_duration_is_refused(word: str) -> None:
    with pytest.raises(CommandError, match="more than zero"):
        parse_duration(word)


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("line", "frame"),
    [
        ("/kick bob", {"type": "kick", "name": "bob"}),
        ("/kick bob stop it", {"type": "kick", "name": "bob", "reason": "stop it"}),
        ("/ban bob", {"type": "ban", "target": "bob"}),
        ("/ban 10.0.0.7 2h", {"type": "ban", "target": "10.0.0.7", "duration": 7200}),
        ("/ban bob 30m spam, again",
         {"type": "ban", "target": "bob", "duration": 1800, "reason": "spam, again"}),
        ("/ban bob spam again", {"type": "ban", "target": "bob", "reason": "spam again"}),
        ("/ban bob 90 ", {"type": "ban", "target": "bob", "duration": 90}),
        ("/unban bob", {"type": "unban", "target": "bob"}),
        ("/bans", {"type": "bans"}),
        ("/mute bob", {"type": "mute", "name": "bob"}),
        ("/mute bob 7d", {"type": "mute", "name": "bob", "duration": 604800}),
        ("/unmute bob", {"type": "unmute", "name": "bob"}),
        ("/topic #dev on Friday", {"type": "topic", "room": "#dev", "text": "on Friday"}),
        ("/topic dev release", {"type": "topic", "room": "#dev", "text": "release"}),
        ("/topic #dev", {"type": "topic", "room": "#dev"}),
        ("/motd Welcome to the lab", {"type": "motd", "text": "Welcome to the lab"}),
        ("/motd clear", {"type": "motd", "text": ""}),  # as in the chat client
        ("/unregister bob", {"type": "unregister", "name": "bob"}),
        ("  /KICK  bob  ", {"type": "kick", "name": "bob"}),
    ],
)  # fmt: skip
def test_operator_commands_build_the_frames_a_client_sends(line: str, frame: dict) -> None:
    action = parse(line)
    assert action == Operate(frame)
    assert isinstance(action, Operate)
    assert protocol.validate(action.frame, protocol.CLIENT_FRAMES) == frame


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("/say the server restarts at noon", Announce("the server restarts at noon")),
        ("/say #dev build is green", Announce("build is green", "#dev")),
        ("/shutdown", Shutdown(None)),
        ("/shutdown back in 5 minutes", Shutdown("back in 5 minutes")),
    ],
)
def test_say_and_shutdown_are_actions_of_their_own(line: str, action: object) -> None:
    assert parse(line) == action


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/kick", "usage: /kick NAME"),
        ("/ban", "usage: /ban NAME|ADDRESS"),
        ("/unban", "usage: /unban"),
        ("/unban bob alice", "usage: /unban"),
        ("/bans all", "usage: /bans"),
        ("/mute", "usage: /mute"),
        ("/mute bob forever", "'forever' is no duration"),
        ("/mute bob 2h more", "usage: /mute"),
        ("/ban bob 0 spam", "more than zero"),
        ("/topic", "usage: /topic"),
        ("/unregister", "usage: /unregister"),
        ("/say", "usage: /say"),
        ("/say #dev", "usage: /say"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("hello everybody", "commands start with /"),
    ],
)
def test_a_bad_line_says_how_the_command_is_used(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("|", r"\|")):
        parse(line)


def test_help_lists_every_command_with_its_usage() -> None:
    action = parse("/help")
    assert isinstance(action, Show)
    text = "\n".join(action.lines)
    for name, command in commands.COMMANDS.items():
        assert command.usage in text, name
    assert "90s, 30m, 2h, 7d" in text


# --------------------------------------------------------------------------- the log buffer


def logger_into(buffer: LogBuffer) -> logging.Logger:
    buffer.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"test-console-{id(buffer)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(buffer)
    return logger


def test_the_log_buffer_keeps_the_newest_lines_only() -> None:
    buffer = LogBuffer(limit=3)
    logger = logger_into(buffer)
    for number in range(5):
        logger.info("record %d", number)
    assert [line.text for line in buffer.snapshot()] == [
        "INFO record 2",
        "INFO record 3",
        "INFO record 4",
    ]
    assert [line.seq for line in buffer.snapshot()] == [3, 4, 5]
    assert buffer.added == 5


def test_the_log_buffer_escapes_what_clients_chose_like_the_log_file() -> None:
    buffer = LogBuffer()
    logger = logger_into(buffer)
    logger.info("login %s", "evil\r\nINFO login admin\x1b[2J\u202e")
    buffer.add("> /kick \x1b[31mbob")
    texts = [line.text for line in buffer.snapshot()]
    assert texts == ["INFO login evil\\r\\nINFO login admin\\x1b[2J\\u202e", "> /kick \\x1b[31mbob"]


def test_warnings_stand_out_and_a_traceback_is_several_indented_lines() -> None:
    buffer = LogBuffer()
    logger = logger_into(buffer)
    logger.warning("disk nearly full")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("failed")
    lines = buffer.snapshot()
    assert (lines[0].text, lines[0].style) == ("WARNING disk nearly full", "err")
    assert lines[1].text == "ERROR failed"
    assert len(lines) > 3 and all(line.text.startswith("    ") for line in lines[2:])


# --------------------------------------------------------------------------- the model


def console(lines: int = 0) -> ConsoleModel:
    buffer = LogBuffer()
    for number in range(1, lines + 1):
        buffer.add(f"line {number}")
    return ConsoleModel(buffer, TITLE)


def type_line(model: ConsoleModel, text: str) -> List[object]:
    for char in text:
        assert model.handle_key(char) == []
    return list(model.handle_key("\r"))


def log_texts(model: ConsoleModel) -> List[str]:
    return [line.text for line in model.log.snapshot()]


def test_enter_runs_the_line_echoed_in_the_log() -> None:
    model = console()
    assert type_line(model, "/kick bob flooding") == [Operate(protocol.kick("bob", "flooding"))]
    assert log_texts(model) == ["> /kick bob flooding"]
    assert (model.line, model.cursor) == ("", 0)


def test_a_bad_line_is_answered_in_the_log_and_asks_for_nothing() -> None:
    model = console()
    assert type_line(model, "/mute bob forever") == []
    assert model.log.snapshot()[-1].style == "err"
    assert "'forever' is no duration" in log_texts(model)[-1]


def test_help_is_shown_in_the_log() -> None:
    model = console()
    assert type_line(model, "/help") == []
    assert any(text.startswith("/kick NAME [REASON]") for text in log_texts(model))


def test_an_empty_line_does_nothing() -> None:
    model = console()
    assert type_line(model, "   ") == []
    assert log_texts(model) == []


def test_the_line_edits_like_the_chats() -> None:
    model = console()
    for key in ["/", "k", "c", "KEY_LEFT", "i", "KEY_END", "k", "KEY_HOME", "KEY_DC"]:
        model.handle_key(key)
    assert (model.line, model.cursor) == ("kick", 0)
    model.handle_key("\x0b")  # Ctrl-K
    assert model.line == ""
    for key in "/bans x":
        model.handle_key(key)
    model.handle_key("KEY_BACKSPACE")
    model.handle_key("\x7f")
    assert model.line == "/bans"
    model.handle_key("\x1b[A")  # a stray sequence is not typed
    assert model.line == "/bans"


def test_up_and_down_recall_earlier_lines_and_the_one_being_typed() -> None:
    model = console()
    type_line(model, "/bans")
    type_line(model, "/kick bob")
    for char in "/mu":
        model.handle_key(char)
    model.handle_key("KEY_UP")
    assert model.line == "/kick bob"
    model.handle_key("KEY_UP")
    assert model.line == "/bans"
    model.handle_key("KEY_UP")
    assert model.line == "/bans"
    model.handle_key("KEY_DOWN")
    model.handle_key("KEY_DOWN")
    assert (model.line, model.cursor) == ("/mu", 3)


def test_refresh_takes_the_snapshots_people_sorted_by_name() -> None:
    model = console()
    model.refresh(
        [("bob", "127.0.0.2:5000", ("#general",)), ("Alice", "127.0.0.1:4000", ())],
        [("#general", 2, "")],
    )
    assert [person[0] for person in model.people] == ["Alice", "bob"]
    assert model.rooms == [("#general", 2, "")]


# --------------------------------------------------------------------------- the view


def assert_shape(screen: ConsoleScreen, rows: int, cols: int) -> None:
    assert len(screen.rows) == rows
    for row in screen.rows:
        assert sum(text_width(text) for text, _ in row) == cols, row


PEOPLE: Sequence[Person] = [
    ("alice", "127.0.0.1:40001", ("#general", "#dev")),
    ("bob", "10.0.0.7:51234", ("#general",)),
]
ROOMS: Sequence[RoomInfo] = [("#dev", 1, "release on Friday"), ("#general", 2, "")]


@pytest.mark.parametrize(("rows", "cols"), [(24, 80), (6, 20), (50, 200), (5, 80), (24, 19)])
def test_render_fills_exactly_the_size_asked(rows: int, cols: int) -> None:
    model = console(100)
    model.refresh(PEOPLE, ROOMS)
    assert_shape(render(model, rows, cols), rows, cols)


def test_the_screen_shows_the_server_the_online_list_the_rooms_and_the_log() -> None:
    model = console(3)
    model.refresh(PEOPLE, ROOMS)
    screen = render(model, 24, 100)
    text = screen.text()
    assert text[0].startswith(" " + TITLE)
    assert "online (2)" in text[1] and "rooms (2)" in text[1]
    assert "alice  127.0.0.1:40001  #general #dev" in text[2]
    assert "bob    10.0.0.7:51234   #general" in text[3]
    assert "#dev      1  release on Friday" in text[2]
    assert "#general  2" in text[3]
    assert "── log" in text[4]
    assert [row.rstrip() for row in text[5:8]] == ["line 1", "line 2", "line 3"]
    assert text[-1].startswith("> ")
    assert screen.cursor == (23, 2)


def test_a_long_online_list_ends_with_how_many_more() -> None:
    model = console()
    model.refresh([(f"user{n:03}", f"127.0.0.1:{n}", ()) for n in range(50)], ROOMS)
    text = render(model, 24, 80).text()
    lists = text[1 : 1 + (24 - 3) // 3]
    assert "online (50)" in lists[0]
    assert "… 45 more" in lists[-1]
    assert "── log" in text[len(lists) + 1]


def test_received_text_is_made_safe_before_it_is_drawn() -> None:
    model = console()
    model.refresh([("bob", "127.0.0.1:1", ())], [("#dev", 1, "evil\x1b[2J\u202etopic")])
    text = "\n".join(render(model, 24, 80).text())
    assert "\x1b" not in text and "\u202e" not in text
    assert "evil[2Jtopic" in text


def test_the_log_follows_the_newest_lines() -> None:
    model = console(100)
    screen = render(model, 24, 80)
    log_rows = [row.rstrip() for row in screen.text()[-1 - screen.page : -1]]
    assert log_rows[-1] == "line 100"
    assert log_rows[0] == f"line {101 - screen.page}"
    assert screen.top == 101 - screen.page


def scroll(model: ConsoleModel, key: str, rows: int = 24, cols: int = 80) -> List[str]:
    screen = render(model, rows, cols)
    model.set_viewport(screen.page, screen.top)
    model.handle_key(key)
    screen = render(model, rows, cols)
    model.set_viewport(screen.page, screen.top)
    return [row.rstrip() for row in screen.text()[-1 - screen.page : -1]]


def test_page_up_and_down_scroll_the_log_and_esc_follows_it_again() -> None:
    model = console(100)
    page = render(model, 24, 80).page
    shown = scroll(model, "KEY_PPAGE")
    assert shown[-1] == f"line {101 - page}"  # the top line became the bottom one
    assert "scrolled back" in "\n".join(render(model, 24, 80).text())
    model.log.add("line 101")  # news while scrolled back does not move the view
    assert scroll(model, "KEY_F(1)")[-1] == f"line {101 - page}"
    shown = scroll(model, "KEY_NPAGE")
    assert shown[-1] == f"line {101 - page + page - 1}"
    scroll(model, "\x1b")
    assert model.bottom is None
    assert scroll(model, "KEY_F(1)")[-1] == "line 101"


def test_page_up_stops_at_the_oldest_line_and_page_down_at_the_newest() -> None:
    model = console(30)
    for _ in range(5):
        shown = scroll(model, "KEY_PPAGE")
    assert shown[0] == "line 1"
    for _ in range(5):
        shown = scroll(model, "KEY_NPAGE")
    assert model.bottom is None and shown[-1] == "line 30"


def test_long_log_lines_wrap_and_wide_characters_stay_whole() -> None:
    assert wrap("a" * 25, 10) == ["a" * 10, "a" * 10, "aaaaa"]
    assert wrap("", 10) == [""]
    assert wrap("ab漢字漢字", 5) == ["ab漢", "字漢", "字"]
    model = console()
    model.log.add("x" * 150)
    rows = [row.rstrip() for row in render(model, 24, 80).text()]
    rule = next(i for i, row in enumerate(rows) if "── log" in row)
    assert rows[rule + 1 : rule + 4] == ["x" * 80, "x" * 70, ""]


@given(st.text(min_size=0, max_size=60), st.integers(min_value=1, max_value=30))
def test_wrapped_rows_keep_every_character_and_fit(text: str, cols: int) -> None:
    safe = "".join(c for c in text if c.isprintable() and text_width(c) > 0)
    rows = wrap(safe, max(cols, 2))
    assert "".join(rows) == safe
    assert all(text_width(row) <= max(cols, 2) for row in rows)


def test_a_long_command_line_scrolls_to_keep_the_cursor_in_sight() -> None:
    model = console()
    for char in "/say " + "x" * 200:
        model.handle_key(char)
    screen = render(model, 24, 80)
    assert screen.cursor == (23, 79)
    assert screen.text()[-1] == "> " + "x" * 77 + " "  # the cursor after the last one
    model.handle_key("KEY_HOME")
    screen = render(model, 24, 80)
    assert screen.cursor == (23, 2)
    assert screen.text()[-1].startswith("> /say xxx")


# --------------------------------------------------------------------------- answers


def test_answers_read_as_a_client_would_get_them() -> None:
    assert describe(events.Error("no_such_user", "Nobody called 'zed' is online.")) == [
        "no_such_user: Nobody called 'zed' is online."
    ]
    topic = events.Topic("#dev", "release on Friday", "console", 1764000000.0)
    assert describe(topic) == ["topic of #dev: release on Friday (set by console)"]


def test_the_ban_list_is_a_line_per_ban() -> None:
    assert describe_bans([]) == ["no bans"]
    lines = describe_bans(
        [
            {"target": "bob", "kind": "identity", "by": "alice", "reason": "spam"},
            {"target": "10.0.0.7", "kind": "address", "by": "console", "until": 1764003600.0},
        ]
    )
    assert lines[0] == "bans (2):"
    assert lines[1] == "  bob (identity) by alice, for good: spam"
    assert lines[2].startswith("  10.0.0.7 (address) by console, until 2025-")


def test_the_server_and_the_console_s_pure_parts_import_no_curses() -> None:
    """A Python without curses (Windows) runs the headless server, and the model and the
    view are tested here without a terminal."""
    modules = "lanchat.server lanchat.console.model lanchat.console.view lanchat.console.operator"
    code = (
        f"import sys\nfor m in {modules.split()!r}: __import__(m)\nprint('_curses' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "False"


def test_the_docs_list_every_command_as_help_does() -> None:
    docs = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    for command in commands.COMMANDS.values():
        assert f"| `{command.usage.replace('|', chr(92) + '|')}` | {command.help}" in docs


# --------------------------------------------------------------------------- a real server


def operated(make_server: MakeServer) -> Tuple[ChatServer, ConsoleModel]:
    server = make_server()
    return server, console()


def run_line(server: ChatServer, model: ConsoleModel, line: str) -> List[str]:
    """Type a command line and carry out what it asks; the log lines it added."""
    before = model.log.added
    for request in type_line(model, line):
        assert isinstance(request, (Operate, Announce))
        carry_out(request, server, model)
    return [entry.text for entry in model.log.snapshot() if entry.seq > before]


def test_a_command_answers_with_the_servers_notice(make_server: MakeServer) -> None:
    server, model = operated(make_server)
    bob, _ = login(server.address, "bob")
    assert run_line(server, model, "/kick bob flooding") == [
        "> /kick bob flooding",
        "You kicked bob: flooding.",
    ]
    bob.expect_closed()  # its `kicked` error: tests/test_console_e2e.py
    assert snapshot(server)[0] == []


def test_bans_answer_with_the_ban_list(make_server: MakeServer) -> None:
    server, model = operated(make_server)
    assert run_line(server, model, "/bans")[1:] == ["no bans"]
    run_line(server, model, "/ban 10.0.0.7 2h spam")
    shown = run_line(server, model, "/bans")
    assert shown[1] == "bans (1):"
    assert shown[2].startswith("  10.0.0.7 (address) by console, until ")
    assert shown[2].endswith(": spam")


def test_a_refused_command_answers_with_the_error(make_server: MakeServer) -> None:
    server, model = operated(make_server)
    assert run_line(server, model, "/kick nobody")[1].startswith("no_such_user: ")
    assert model.log.snapshot()[-1].style == "err"
    assert run_line(server, model, "/say #nowhere hello")[1].startswith("no_such_room: ")


def test_say_is_a_notice_and_the_snapshot_shows_people_and_rooms(
    make_server: MakeServer,
) -> None:
    server, model = operated(make_server)
    alice, _ = login(server.address, "alice")
    assert run_line(server, model, "/say lunch at noon")[1] == "notice to everybody: lunch at noon"
    message = alice.expect("message")  # a 4.0 client: a notice is a message from *
    assert (message["from"], message["text"]) == ("*", "lunch at noon")
    people, rooms = snapshot(server)
    assert [(name, rooms_in) for name, _, rooms_in in people] == [("alice", ("#general",))]
    assert people[0][1].startswith("127.0.0.1")
    assert rooms == [("#general", 1, "")]
