"""Protocol 4.3 in the client model, without a terminal: each command's frame, each
answer's line, renames, away, notices, the ignore list and bell kept in the settings file,
and a kicked or banned client that stays out (docs/protocol.md "Identity, presence and
order (4.3)")."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any, List, Optional

import pytest
from test_client_model import frames, type_keys, type_line
from test_client_rooms import ADDRESS, HELLO, JOINED_DEV, JOINED_GENERAL, NOW, WELCOME, message

from lanchat.chat import settings as settings_file
from lanchat.chat.actions import Action, Bell, Exit, GiveUp
from lanchat.chat.connection import Connected, Disconnected, Received
from lanchat.chat.model import LOGGED_IN, NAMING, OFFLINE, STOPPED, ClientModel
from lanchat.chat.plain import format_entry
from lanchat.chat.settings import Settings
from lanchat.chat.view import render, sidebar_rows, status_text
from lanchat.durations import parse_duration
from lanchat.protocol import Frame

BOB_KEY = "3f9a 0c12 77be 41d0"


def receive(model: ClientModel, frame: Frame, now: float = NOW) -> List[Action]:
    return model.handle_event(Received(dict(frame)), now)


def online(name: str = "bob", settings: Optional[Settings] = None, **welcome: Any) -> ClientModel:
    """`name`, logged in to a 4.3 server: in #general (alice, bob, carol) and #dev."""
    model = ClientModel(name, *ADDRESS, ref_prefix="t", window=True, settings=settings)
    model.handle_event(Connected({**HELLO, "version": "4.3.0"}, ADDRESS), NOW)
    receive(model, {**WELCOME, "name": name, **welcome})
    receive(model, JOINED_GENERAL)
    receive(model, JOINED_DEV)
    assert model.login == LOGGED_IN
    return model


def lines(model: ClientModel, after: int = 0) -> List[str]:
    """Every room's new lines, as plain mode prints them (without the time)."""
    return [re.sub(r"^\d\d:\d\d ", "", format_entry(e)) for e in model.entries_after(after)]


def command(model: ClientModel, line: str) -> Frame:
    """The one frame a typed command sends."""
    (frame,) = frames(type_line(model, line))
    return frame


def saved(path: Path) -> Any:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    "line, expected",
    [
        ("/register", {"type": "register"}),
        ("/unregister", {"type": "unregister"}),
        ("/unregister carol", {"type": "unregister", "name": "carol"}),
        ("/nick robert", {"type": "nick", "name": "robert"}),
        ("/away lunch, back at 2", {"type": "away", "text": "lunch, back at 2"}),
        ("/away", {"type": "away", "text": "away"}),
        ("/back", {"type": "away"}),
        ("/whois alice", {"type": "whois", "name": "alice"}),
        ("/kick carol", {"type": "kick", "name": "carol"}),
        ("/kick carol flooding the room", {"type": "kick", "name": "carol",
                                           "reason": "flooding the room"}),
        ("/ban carol", {"type": "ban", "target": "carol"}),
        ("/ban carol 2h spam", {"type": "ban", "target": "carol", "duration": 7200.0,
                                "reason": "spam"}),
        ("/ban 10.0.0.7 7d", {"type": "ban", "target": "10.0.0.7", "duration": 604800.0}),
        ("/ban carol for spam", {"type": "ban", "target": "carol", "reason": "for spam"}),
        ("/unban carol", {"type": "unban", "target": "carol"}),
        ("/bans", {"type": "bans"}),
        ("/mute carol", {"type": "mute", "name": "carol"}),
        ("/mute carol 30m", {"type": "mute", "name": "carol", "duration": 1800.0}),
        ("/unmute carol", {"type": "unmute", "name": "carol"}),
        ("/motd Friday: release", {"type": "motd", "text": "Friday: release"}),
        ("/motd clear", {"type": "motd", "text": ""}),
    ],
)  # fmt: skip
def test_each_command_sends_its_frame_with_a_ref(line: str, expected: Frame) -> None:
    frame = command(online(), line)
    assert frame.pop("ref").startswith("t-")
    assert frame == expected


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("45", 45), ("1.5h", 5400),
     ("2H", 7200), ("soon", None), ("-5m", None), ("5w", None), ("٣m", None)],
)  # fmt: skip
def test_durations(text: str, seconds: Optional[float]) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("line", ["/ban bob 0 spam", "/mute bob 0s"])
def test_a_zero_duration_is_refused_not_taken_for_good(line: str) -> None:
    model = online()
    assert type_line(model, line) == []
    assert model.entries[-1].text.startswith("a duration is more than zero, not '0")


@pytest.mark.parametrize(
    "line", ["/nick", "/whois", "/unignore", "/kick", "/ban", "/unban", "/mute", "/unmute",
             "/mute carol forever"],
)  # fmt: skip
def test_a_command_without_its_name_says_how_to_use_it(line: str) -> None:
    model = online()
    assert type_line(model, line) == []
    assert model.entries[-1].text.startswith("usage: ")


def test_server_commands_wait_for_the_login_and_a_43_server() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t")
    assert type_line(model, "/nick robert") == []
    assert model.entries[-1].text == "not online right now; try again once connected"
    older = ClientModel("bob", *ADDRESS, ref_prefix="t")
    older.handle_event(Connected(HELLO, ADDRESS), NOW)
    receive(older, WELCOME)
    assert type_line(older, "/whois alice") == []
    assert older.entries[-1].text == "this server (lanchat 4.2.0) has no /whois"


def test_help_lists_the_new_commands() -> None:
    model = online()
    type_line(model, "/help")
    shown = "\n".join(e.text for e in model.entries)
    for word in ("/nick", "/away", "/back", "/whois", "/register", "/unregister", "/ignore",
                 "/unignore", "/bell", "/kick", "/ban", "/unban", "/bans", "/mute", "/unmute",
                 "/motd"):  # fmt: skip
        assert word in shown


def test_tab_completes_names_after_the_commands_that_take_one() -> None:
    model = online()
    for typed in ("/whois a", "/ignore a", "/kick a", "/ban a", "/mute a", "/unignore a"):
        model.input, model.cursor = "", 0
        type_keys(model, *typed, "\t")
        assert model.input == typed[:-1] + "alice "


def test_tab_completes_operator_commands_for_operators_only() -> None:
    plain, operator = online(), online(operator=True)
    for model in (plain, operator):
        type_keys(model, *"/kic", "\t")
    assert plain.input == "/kic"
    assert operator.input == "/kick "


# --------------------------------------------------------------------------- answers


def test_registered_and_unregistered_become_lines() -> None:
    model = online()
    ref = command(model, "/register")["ref"]
    receive(model, {"type": "registered", "name": "bob", "fingerprint": BOB_KEY, "ref": ref})
    ref = command(model, "/unregister")["ref"]
    receive(model, {"type": "unregistered", "name": "bob", "ref": ref})
    assert lines(model)[-2:] == [
        f"-- bob is registered to your key ({BOB_KEY})",
        "-- bob is no longer registered",
    ]
    assert not model.awaiting_answers


def test_whois_shows_when_idle_away_key_rooms_and_address() -> None:
    model = online()
    ref = command(model, "/whois alice")["ref"]
    seq = model.last_seq
    receive(model, {"type": "whois", "name": "alice", "since": NOW - 3600, "idle": 42.5,
                    "away": "lunch", "rooms": ["#general", "#dev"], "fingerprint": BOB_KEY,
                    "registered": True, "operator": True, "address": "10.0.0.7",
                    "ref": ref})  # fmt: skip
    shown = lines(model, seq)
    assert shown[0].startswith("alice: online since ") and shown[0].endswith(", idle 42 s")
    assert shown[1:] == [
        "  away: lunch",
        f"  registered, key {BOB_KEY}, operator",
        "  rooms: #general, #dev",
        "  address: 10.0.0.7",
    ]
    assert not model.awaiting_answers


def test_a_rename_is_shown_where_they_are_and_the_lists_follow() -> None:
    model = online()
    seq = model.last_seq
    receive(model, {"type": "nick", "old": "alice", "new": "alicia", "ts": NOW})
    assert lines(model, seq) == ["#general -- alice is now alicia", "#dev -- alice is now alicia"]
    assert model.online == ["alicia", "bob", "carol"]
    assert model.rooms.rooms[1].members == ["alicia", "bob"]


def test_our_own_rename_changes_our_name_and_the_next_login_uses_it() -> None:
    model = online()
    ref = command(model, "/nick robert")["ref"]
    receive(model, {"type": "nick", "old": "bob", "new": "robert", "ts": NOW})
    assert model.name == "robert" and not model.awaiting_answers
    assert "you are now robert" in lines(model)[-1]
    assert "robert" in status_text(model, 80)
    type_line(model, "hello")  # the outbox goes on under the new name
    model.handle_event(Disconnected("gone", 0.5), NOW)
    (login,) = frames(model.handle_event(Connected(HELLO, ADDRESS), NOW + 1))
    assert login["name"] == "robert" and login["resume"] == WELCOME["resume"]
    assert ref.startswith("t-")


def test_a_refused_or_rate_limited_rename_keeps_our_name() -> None:
    model = online()
    ref = command(model, "/nick alice")["ref"]
    receive(model, {"type": "error", "code": "name_taken", "ref": ref,
                    "message": "'alice' is online already."})  # fmt: skip
    assert model.name == "bob" and model.login == LOGGED_IN and not model.awaiting_answers
    assert lines(model)[-1] == "!! 'alice' is online already."
    ref = command(model, "/nick robert")["ref"]
    receive(model, {"type": "error", "code": "rate_limited", "ref": ref, "retry_after": 2.0,
                    "message": "Slow down."})  # fmt: skip
    assert frames(model.tick(NOW + 1)) == []
    assert frames(model.tick(NOW + 2.5)) == [{"type": "nick", "name": "robert", "ref": ref}]


def test_away_is_dimmed_in_the_list_shown_and_answered_once() -> None:
    model = online(away={"carol": "in a meeting"})
    assert model.is_away("carol") and not model.is_away("alice")
    styles = {row[0][0].strip(): row[0][1] for row in sidebar_rows(model, 20, 6)}
    assert styles["carol"] == "dim" and styles["alice"] != "dim"
    seq = model.last_seq
    receive(model, {"type": "away", "name": "alice", "text": "lunch", "ts": NOW})
    receive(model, {"type": "away", "name": "carol", "ts": NOW})
    assert model.is_away("alice") and not model.is_away("carol")
    assert lines(model, seq) == [
        "#general -- alice is away: lunch",
        "#dev -- alice is away: lunch",
        "#general -- carol is back",
    ]
    seq = model.last_seq
    receive(model, {"type": "away", "name": "alice", "text": "lunch", "reply": True, "ts": NOW})
    assert lines(model, seq) == ["-- alice is away: lunch"], "as private messages: no room"


def test_our_own_away_and_back() -> None:
    model = online()
    ref = command(model, "/away lunch")["ref"]
    receive(model, {"type": "away", "name": "bob", "text": "lunch", "ts": NOW, "ref": ref})
    command(model, "/back")
    receive(model, {"type": "away", "name": "bob", "ts": NOW})
    assert lines(model)[-2:] == ["-- you are away: lunch", "-- you are back"]
    assert not model.awaiting_answers


def test_a_notice_shows_in_its_room_or_the_current_one_and_answers_the_operator() -> None:
    model = online(operator=True)
    assert "you: bob (op)" in status_text(model, 80)
    ref = command(model, "/kick carol flooding")["ref"]
    seq = model.last_seq
    receive(model, {"type": "notice", "text": "carol was kicked by bob: flooding",
                    "room": "#dev", "ts": NOW, "ref": ref})  # fmt: skip
    receive(model, {"type": "notice", "text": "the server restarts at 6", "ts": NOW})
    assert lines(model, seq) == [
        "#dev -- server: carol was kicked by bob: flooding",
        "#general -- server: the server restarts at 6",
    ]
    assert not model.awaiting_answers


def test_ban_list_and_errors_of_operator_commands() -> None:
    model = online()
    ref = command(model, "/bans")["ref"]
    seq = model.last_seq
    receive(model, {"type": "ban_list", "ref": ref, "bans": [
        {"target": "carol", "kind": "identity", "by": "alice", "reason": "spam"},
        {"target": "10.0.0.7", "kind": "address", "by": "alice", "until": NOW + 3600},
    ]})  # fmt: skip
    shown = lines(model, seq)
    assert shown[:2] == ["bans (2):", "  carol (identity) by alice for good: spam"]
    assert shown[2].startswith("  10.0.0.7 (address) by alice until ")
    ref = command(model, "/kick carol")["ref"]
    receive(model, {"type": "error", "code": "not_operator", "ref": ref,
                    "message": "Only an operator may do that."})  # fmt: skip
    assert lines(model)[-1] == "!! Only an operator may do that."
    assert not model.awaiting_answers


def test_the_motd_of_the_welcome_is_shown_and_slash_motd_shows_it_again() -> None:
    model = online(motd="be nice")
    assert "-- message of the day: be nice" in lines(model)
    assert type_line(model, "/motd") == []
    assert lines(model)[-1] == "message of the day: be nice"


def test_a_muted_message_says_until_when() -> None:
    model = online()
    (say,) = frames(type_line(model, "hello"))
    receive(model, {"type": "error", "code": "muted", "message": "You may not speak now.",
                    "until": NOW + 600, "ref": say["ref"]})  # fmt: skip
    assert "not sent to #general: You may not speak now. (muted until " in lines(model)[-1]


# --------------------------------------------------------------------------- ignore and bell


def test_ignore_hides_messages_and_private_messages_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "lanchat" / "settings.json"
    model = online(settings=Settings(str(path)))
    type_line(model, "/ignore carol")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert saved(path)["ignore"] == [{"name": "carol"}]
    seq = model.last_seq
    assert receive(model, message(5, "carol", "hey bob", "#general")) == []
    assert receive(model, {**message(6, "carol", "psst bob", "#general"), "to": "bob"}) == []
    receive(model, message(7, "alice", "hi", "#general"))
    assert lines(model, seq) == ["#general alice: hi"]
    type_line(model, "/ignore")
    assert lines(model)[-1] == "ignoring (1): carol"
    type_line(model, "/unignore carol")
    receive(model, message(8, "carol", "back", "#general"))
    assert lines(model)[-1] == "#general carol: back"
    assert saved(path)["ignore"] == []


def test_an_ignored_registered_person_stays_ignored_after_a_rename_and_a_restart(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "settings.json")
    model = online(settings=Settings(path))
    receive(model, message(5, "carol", "hi", "#general", fingerprint=BOB_KEY))
    type_line(model, "/ignore carol")
    assert saved(Path(path))["ignore"] == [{"name": "carol", "fingerprint": BOB_KEY}]
    receive(model, {"type": "nick", "old": "carol", "new": "caroline", "ts": NOW})
    assert saved(Path(path))["ignore"] == [{"name": "caroline", "fingerprint": BOB_KEY}]
    kept, problem = settings_file.load(path)
    assert problem is None
    again = online(settings=kept)  # a new run of the client
    seq = again.last_seq
    receive(again, message(9, "carrie", "it is me", "#general", fingerprint=BOB_KEY))
    other_key = "0000 1111 2222 3333"
    receive(again, message(10, "caroline", "someone else", "#general", fingerprint=other_key))
    assert lines(again, seq) == ["#general caroline: someone else"]


def test_a_fingerprint_seen_later_is_kept_with_a_name_ignored_before(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    model = online(settings=Settings(str(path)))
    type_line(model, "/ignore carol")
    assert receive(model, message(5, "carol", "hi", "#general", fingerprint=BOB_KEY)) == []
    assert saved(path)["ignore"] == [{"name": "carol", "fingerprint": BOB_KEY}]


def test_whois_gives_the_key_of_a_name_ignored_before(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    model = online(settings=Settings(str(path)))
    type_line(model, "/ignore alice")
    ref = command(model, "/whois alice")["ref"]
    receive(model, {"type": "whois", "name": "alice", "since": NOW, "idle": 0.0, "rooms": [],
                    "registered": True, "operator": False, "fingerprint": BOB_KEY,
                    "ref": ref})  # fmt: skip
    assert saved(path)["ignore"] == [{"name": "alice", "fingerprint": BOB_KEY}]


def test_a_damaged_settings_file_is_reported_and_the_defaults_are_used(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    kept, problem = settings_file.load(str(path))
    assert problem is not None and "ignored" in problem and str(path) in problem
    assert kept.bell == "mentions" and kept.ignored == []
    path.write_text('{"bell": "loud", "ignore": 7}')
    kept, problem = settings_file.load(str(path))
    assert problem is None and kept.bell == "mentions" and kept.ignored == []


def bells(model: ClientModel, frame: Frame) -> int:
    return sum(isinstance(a, Bell) for a in receive(model, frame))


def test_bell_off_mentions_and_all(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    model = online(settings=Settings(str(path)))
    assert bells(model, message(5, "alice", "hi all", "#general")) == 0
    assert bells(model, message(6, "alice", "hi bob", "#general")) == 1, "mentions: as before"
    type_line(model, "/bell all")
    assert saved(path)["bell"] == "all"
    assert bells(model, message(7, "alice", "hi all", "#general")) == 1
    assert bells(model, message(8, "alice", "in dev", "#dev")) == 1
    type_line(model, "/bell off")
    assert bells(model, message(9, "alice", "hi bob", "#general")) == 0
    assert bells(model, {**message(10, "alice", "psst", "#general"), "to": "bob"}) == 0
    type_line(model, "/bell loud")
    assert lines(model)[-1] == "usage: /bell off|mentions|all"
    assert settings_file.load(str(path))[0].bell == "off"


def test_an_ignored_person_never_rings(tmp_path: Path) -> None:
    model = online(settings=Settings(str(tmp_path / "settings.json"), bell="all"))
    type_line(model, "/ignore alice")
    assert bells(model, message(5, "alice", "hi bob", "#general")) == 0


# --------------------------------------------------------------------------- kicked, banned


@pytest.mark.parametrize(
    "error, shown",
    [
        ({"code": "kicked", "by": "alice", "reason": "flooding"}, "kicked by alice: flooding"),
        ({"code": "kicked"}, "kicked"),
        ({"code": "banned", "by": "alice", "reason": "spam"}, "banned by alice for good: spam"),
    ],
)
def test_kicked_or_banned_says_who_and_why_and_never_reconnects(error: Frame, shown: str) -> None:
    model = online()
    actions = receive(model, {"type": "error", "message": "closed", **error})
    assert any(isinstance(a, GiveUp) for a in actions) and Exit(1) in actions
    assert model.exit_note == shown and model.fatal and model.link == STOPPED
    assert model.handle_event(Disconnected("the server closed the connection", 0.5), NOW) == []
    assert model.link == STOPPED, "no reconnecting"
    assert "stopped: " + shown in render(model, 10, 80).text()[0]


def test_a_timed_ban_says_until_when() -> None:
    model = online()
    receive(model, {"type": "error", "code": "banned", "message": "banned", "by": "alice",
                    "until": NOW + 7200})  # fmt: skip
    assert model.exit_note.startswith("banned by alice until ")


def test_a_plain_drop_still_reconnects() -> None:
    model = online()
    assert model.handle_event(Disconnected("gone", 0.5), NOW) == []
    assert model.link == OFFLINE and not model.fatal


def test_a_registered_name_at_login_asks_for_another_like_a_taken_one() -> None:
    model = ClientModel("bob", *ADDRESS, ref_prefix="t", window=True, ask_password=True)
    model.handle_event(Connected({**HELLO, "version": "4.3.0"}, ADDRESS), NOW)
    refused = "That name is registered to somebody else's key."
    actions = receive(model, {"type": "error", "code": "name_registered", "message": refused})
    assert model.login == NAMING and Bell() in actions
    assert "registered to somebody else's key. Type another name" in model.entries[-1].text
