"""IRC lines without sockets: parsing, formatting, splitting and the nick mapping."""

from __future__ import annotations

from lanchat.irc import lines


def test_parse_reads_tags_source_params_and_trailing() -> None:
    parsed = lines.parse(b"@+typing=active :me!u@h privmsg #room :hello there\r")
    assert parsed == lines.Line("PRIVMSG", ["#room", "hello there"])
    assert lines.parse(b"NICK  bob") == lines.Line("NICK", ["bob"])
    assert lines.parse(b"TOPIC #a :") == lines.Line("TOPIC", ["#a", ""])
    assert lines.parse(b"   ") is None
    assert lines.parse(b"PRIVMSG #a :\xff") == lines.Line("PRIVMSG", ["#a", "\ufffd"])


def test_a_formatted_line_is_always_one_line() -> None:
    sent = lines.line("x", "PRIVMSG", "#a", "one\r\nQUIT :two\x00")
    assert sent == b":x PRIVMSG #a :one  QUIT :two \r\n"
    assert lines.line(None, "PING", "token") == b"PING token\r\n"
    assert lines.line(None, "TOPIC", "#a", "") == b"TOPIC #a :\r\n"
    assert lines.line("s", "X", "a", tags="time=t") == b"@time=t :s X a\r\n"


def test_the_nick_mapping_is_reversible_and_only_touches_dots() -> None:
    for name in ("a.b", "Дмитрий", "x_y-z", "..a"):
        assert lines.lanchat_name(lines.irc_nick(name)) == name
    assert lines.irc_nick("a.b") == "a|b" and lines.irc_nick("Дмитрий") == "Дмитрий"


def test_split_text_cuts_between_characters_within_the_bytes_given() -> None:
    text = "жx" * 300
    pieces = lines.split_text(text, 100)
    assert "".join(pieces) == text
    assert (
        all(len(p.encode()) <= 100 for p in pieces) and len(pieces) == 10
    )  # 33 pairs of 3 bytes each


def test_time_tag_is_utc_with_milliseconds() -> None:
    assert lines.time_tag(1764000000.25) == "time=2025-11-24T16:00:00.250Z"
