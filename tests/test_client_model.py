"""The client model without a terminal: events, frames and keys in, actions out."""

from __future__ import annotations

from typing import List, Optional, Sequence

import pytest

from lanchat import protocol
from lanchat.chat import model as client_model
from lanchat.chat.actions import Action, Bell, Drop, Exit, GiveUp, Send
from lanchat.chat.connection import Connected, Disconnected, Received, Stopped
from lanchat.chat.model import (
    CONNECTED,
    LOGGED_IN,
    LOGGED_OUT,
    LOGGING_IN,
    NAMING,
    OFFLINE,
    PASSWORD,
    PING_AFTER,
    PING_TIMEOUT,
    STOPPED,
    ClientModel,
    suggest_name,
)
from lanchat.chat.picker import ServerPicker
from lanchat.protocol import Frame

NOW = 1764000000.0
ADDRESS = ("127.0.0.1", 42069)


NONCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NONCE2 = "ffeeddccbbaa99887766554433221100"


def connected(model: ClientModel, auth_nonce: str = "") -> List[Action]:
    hello = protocol.hello("lab", ["alice"], nonce=auth_nonce or None)
    return model.handle_event(Connected(hello, ADDRESS), NOW)


def reconnected(model: ClientModel, auth_nonce: str = "") -> List[Action]:
    """The link drops and a new one answers; return what the model does with the new one."""
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    return connected(model, auth_nonce)


def receive(model: ClientModel, frame: Frame, now: float = NOW) -> List[Action]:
    return model.handle_event(Received(frame), now)


def logged_in(name: str = "bob", online: Sequence[str] = ("alice", "bob")) -> ClientModel:
    model = ClientModel(name, *ADDRESS, ref_prefix="t")
    assert connected(model) == [Send(protocol.login(name, rooms=[]))]
    assert receive(model, protocol.welcome(name, list(online), [])) == []
    return model


def type_keys(model: ClientModel, *keys: str) -> List[Action]:
    actions: List[Action] = []
    for key in keys:
        actions += model.handle_key(key, NOW)
    return actions


def type_line(model: ClientModel, text: str) -> List[Action]:
    return type_keys(model, *text, "\n")


def frames(actions: Sequence[Action]) -> List[Frame]:
    return [a.frame for a in actions if isinstance(a, Send)]


def kinds(model: ClientModel) -> List[str]:
    return [e.kind for e in model.entries]


# --------------------------------------------------------------------------- login


def test_connected_sends_login_with_our_name() -> None:
    model = ClientModel("bob", *ADDRESS)
    assert connected(model) == [Send(protocol.login("bob", rooms=[]))]
    assert (model.link, model.login) == (CONNECTED, LOGGING_IN)
    assert model.server_name == "lab"


def test_welcome_logs_in_and_takes_the_online_list() -> None:
    model = logged_in(online=("carol", "Bob", "alice"))
    assert model.login == LOGGED_IN
    assert model.online == ["alice", "Bob", "carol"]
    assert model.entries[-1].kind == "system"
    assert "you are bob on lab" in model.entries[-1].text


def test_welcome_history_is_shown_without_ringing() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    history = [protocol.message(1, NOW, "alice", "earlier, bob")]
    assert receive(model, protocol.welcome("bob", ["alice", "bob"], history)) == []
    said = [e for e in model.entries if e.kind == "message"]
    assert [(e.sender, e.text, e.mention) for e in said] == [("alice", "earlier, bob", False)]


def test_name_taken_asks_for_another_name_on_the_spot() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    actions = receive(model, protocol.error("name_taken", "'bob' is online already."))
    assert actions == [Bell()]
    assert model.login == NAMING
    assert model.input == "bob2", "a free-looking name is offered"
    assert "Type another name" in model.entries[-1].text
    actions = type_keys(model, "\x15", *"robert", "\n")
    assert frames(actions) == [protocol.login("robert", rooms=[])]
    assert model.name == "robert"
    receive(model, protocol.welcome("robert", ["robert"], []))
    assert model.login == LOGGED_IN


def test_a_message_typed_before_the_name_prompt_is_kept() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    type_keys(model, *"half a thought")
    receive(model, protocol.error("name_taken"))
    type_keys(model, "\n")
    assert model.input == "half a thought"


def test_an_invalid_name_is_refused_locally_before_sending() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    receive(model, protocol.error("name_taken"))
    actions = type_keys(model, "\x15", *"no spaces", "\n")
    assert frames(actions) == []
    assert model.login == NAMING
    assert model.entries[-1].kind == "error"


def test_quit_works_at_the_name_prompt() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    receive(model, protocol.error("invalid_name"))
    assert type_keys(model, "\x15", *"/quit", "\n") == [Send(protocol.quit()), Exit(0)]


def test_suggested_names() -> None:
    assert suggest_name("bob") == "bob2"
    assert suggest_name("bob9") == "bob10"
    assert suggest_name("John Smith") == "John_Smith"
    assert suggest_name("x" * 24) == "x" * 23 + "2"
    assert suggest_name("!!!") == ""


# --------------------------------------------------------------------------- passwords


def sent_bytes(actions: Sequence[Action]) -> bytes:
    return b"".join(protocol.encode(f) for f in frames(actions))


def test_a_known_password_is_proved_for_the_nonce_and_never_sent() -> None:
    model = ClientModel("bob", *ADDRESS, password="hunter2")
    actions = connected(model, auth_nonce=NONCE)
    proof = protocol.password_proof("hunter2", NONCE, "bob")
    assert actions == [Send(protocol.login("bob", rooms=[], auth=proof))]
    assert b"hunter2" not in sent_bytes(actions)


def test_a_server_without_a_password_gets_no_proof() -> None:
    model = ClientModel("bob", *ADDRESS, password="hunter2")
    assert connected(model) == [Send(protocol.login("bob", rooms=[]))]


def test_a_password_server_and_no_password_and_nobody_to_ask_exits_1() -> None:
    model = ClientModel("bob", *ADDRESS)  # plain mode: ask_password is off
    actions = connected(model, auth_nonce=NONCE)
    assert [type(a) for a in actions] == [GiveUp, Exit]
    assert actions[-1] == Exit(1)
    assert model.link == STOPPED
    assert "--password-file" in model.exit_note and "LANCHAT_PASSWORD" in model.exit_note
    assert [e.kind for e in model.entries] == ["error"]


def test_the_window_asks_for_the_password_and_logs_in_with_its_proof() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    type_keys(model, *"draft")
    assert connected(model, auth_nonce=NONCE) == [Bell()]
    assert model.login == PASSWORD
    assert (model.input, model.cursor) == ("", 0)
    assert "needs a password" in model.entries[-1].text
    actions = type_line(model, "s3cret pass")
    proof = protocol.password_proof("s3cret pass", NONCE, "bob")
    assert frames(actions) == [protocol.login("bob", rooms=[], auth=proof)]
    assert model.login == LOGGING_IN
    assert model.input == "draft", "what was typed before comes back"
    assert model.history == [], "a password is not kept for Up/Down"


def test_no_up_down_tab_or_scrolling_while_the_password_is_typed() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    connected(model, auth_nonce=NONCE)
    model.history = ["earlier line"]
    type_keys(model, *"al", "\t", "KEY_UP", "KEY_PPAGE")
    assert (model.input, model.scroll) == ("al", 0)


def test_an_empty_password_is_not_sent() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    connected(model, auth_nonce=NONCE)
    assert frames(type_keys(model, "\n")) == []
    assert model.login == PASSWORD


def test_a_password_typed_while_offline_goes_with_the_next_login() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    connected(model, auth_nonce=NONCE)
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    assert model.login == PASSWORD, "still asking"
    assert frames(type_line(model, "pw")) == []
    assert model.login == LOGGED_OUT
    proof = protocol.password_proof("pw", NONCE2, "bob")
    assert connected(model, auth_nonce=NONCE2) == [
        Send(protocol.login("bob", rooms=[], auth=proof))
    ]


def test_a_wrong_password_is_asked_again_once_then_the_window_exits_1() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    connected(model, auth_nonce=NONCE)
    type_line(model, "wrong")
    assert receive(model, protocol.error("auth_failed", "Wrong or missing password.")) == [Bell()]
    assert model.login == PASSWORD
    assert model.entries[-1].kind == "error" and "Wrong password" in model.entries[-1].text
    shown = len(model.entries)
    assert reconnected(model, auth_nonce=NONCE2) == [], "waits for the password again"
    assert len(model.entries) == shown, "the server closing after auth_failed is no news"
    proof = protocol.password_proof("wrong again", NONCE2, "bob")
    assert frames(type_line(model, "wrong again")) == [protocol.login("bob", rooms=[], auth=proof)]
    actions = receive(model, protocol.error("auth_failed", "Wrong or missing password."))
    assert [type(a) for a in actions] == [GiveUp, Exit] and actions[-1] == Exit(1)
    assert model.link == STOPPED
    assert model.exit_note.startswith("wrong password")


def test_a_wrong_password_from_a_file_is_asked_for_in_the_window() -> None:
    model = ClientModel("bob", *ADDRESS, password="stale", ask_password=True)
    connected(model, auth_nonce=NONCE)
    assert receive(model, protocol.error("auth_failed")) == [Bell()]
    assert model.login == PASSWORD


def test_a_wrong_password_in_plain_mode_exits_1_at_once() -> None:
    model = ClientModel("bob", *ADDRESS, password="wrong")
    connected(model, auth_nonce=NONCE)
    actions = receive(model, protocol.error("auth_failed", "Wrong or missing password."))
    assert [type(a) for a in actions] == [GiveUp, Exit] and actions[-1] == Exit(1)
    assert [e.kind for e in model.entries] == ["error"]
    assert "wrong password" in model.entries[0].text


def test_every_reconnect_proves_the_password_for_its_own_nonce() -> None:
    model = ClientModel("bob", *ADDRESS, password="pw", ref_prefix="t")
    connected(model, auth_nonce=NONCE)
    receive(model, protocol.welcome("bob", ["bob"], [], resume="r1", history_id="h1"))
    actions = reconnected(model, auth_nonce=NONCE2)
    proof = protocol.password_proof("pw", NONCE2, "bob")
    assert frames(actions) == [
        protocol.login("bob", rooms=[], auth=proof, last_id=0, history_id="h1", resume="r1")
    ]


def test_a_login_timeout_while_the_password_is_typed_is_not_an_error() -> None:
    model = ClientModel("bob", *ADDRESS, ask_password=True)
    connected(model, auth_nonce=NONCE)
    shown = len(model.entries)
    assert receive(model, protocol.error("timeout", "Login took too long.")) == []
    assert len(model.entries) == shown


@pytest.mark.parametrize("nonce", [None, "xyz", "abc"])
def test_a_password_hello_without_a_usable_nonce_is_given_up_on(nonce: Optional[str]) -> None:
    model = ClientModel("bob", *ADDRESS, password="pw")
    hello = dict(protocol.hello("lab", []), auth="password")
    if nonce is not None:
        hello["nonce"] = nonce
    actions = model.handle_event(Connected(hello, ADDRESS), NOW)
    assert Exit(1) in actions
    assert model.link == STOPPED


def test_an_unknown_kind_of_login_is_given_up_on() -> None:
    model = ClientModel("bob", *ADDRESS, password="pw")
    hello = dict(protocol.hello("lab", []), auth="kerberos")
    actions = model.handle_event(Connected(hello, ADDRESS), NOW)
    assert Exit(1) in actions
    assert "kerberos" in model.exit_note


# --------------------------------------------------------------------------- chatting


def test_a_line_is_sent_with_a_ref_and_pending_until_its_echo() -> None:
    model = logged_in()
    actions = type_line(model, "hello all")
    assert frames(actions) == [protocol.say("hello all", ref="t-1")]
    assert [o.text for o in model.outbox] == ["hello all"]
    receive(model, protocol.message(5, NOW, "bob", "hello all", ref="t-1"))
    assert model.outbox == []
    assert model.entries[-1].own and model.entries[-1].text == "hello all"


def test_someone_elses_message_is_an_entry_with_their_name() -> None:
    model = logged_in()
    assert receive(model, protocol.message(5, NOW, "alice", "hi there")) == []
    entry = model.entries[-1]
    assert (entry.kind, entry.sender, entry.text, entry.own) == (
        "message",
        "alice",
        "hi there",
        False,
    )


def test_typing_offline_waits_in_the_outbox_and_goes_after_login() -> None:
    model = logged_in()
    model.handle_event(Disconnected("the server closed the connection", 0.5), NOW)
    assert model.link == OFFLINE
    assert model.entries[-1].kind == "system"
    assert frames(type_line(model, "are you there?")) == []
    assert [o.sent for o in model.outbox] == [False]
    assert connected(model) == [Send(protocol.login("bob", rooms=[]))]
    actions = receive(model, protocol.welcome("bob", ["bob"], []))
    assert frames(actions) == [protocol.say("are you there?", ref="t-1")]
    assert "back online" in model.entries[-1].text


def test_a_message_sent_but_not_echoed_is_sent_again_after_reconnecting() -> None:
    model = logged_in()
    type_line(model, "lost?")
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    connected(model)
    actions = receive(model, protocol.welcome("bob", ["bob"], []))
    assert frames(actions) == [protocol.say("lost?", ref="t-1")]


# --------------------------------------------------------------------------- resuming


def resumable(name: str = "bob", history: Sequence[Frame] = ()) -> ClientModel:
    """Logged in to a server that names its history h1 and gave the token r1."""
    model = ClientModel(name, *ADDRESS, ref_prefix="t")
    assert connected(model) == [Send(protocol.login(name, rooms=[]))], (
        "the first login resumes nothing"
    )
    welcome = protocol.welcome(name, ["alice", name], list(history), resume="r1", history_id="h1")
    receive(model, welcome)
    return model


def shown(model: ClientModel) -> List[str]:
    return [e.text for e in model.entries if e.kind in ("message", "action")]


def test_a_reconnect_resumes_with_the_token_the_last_id_and_the_history() -> None:
    model = resumable(history=[protocol.message(3, NOW, "alice", "old")])
    receive(model, protocol.message(9, NOW, "alice", "psst", to="bob"))
    receive(model, protocol.message(7, NOW, "alice", "late echo"))  # ids only ever go up
    assert frames(reconnected(model)) == [
        protocol.login("bob", rooms=[], last_id=9, history_id="h1", resume="r1")
    ]


def test_a_reconnect_to_an_empty_history_asks_for_everything_after_0() -> None:
    model = resumable()
    assert frames(reconnected(model)) == [
        protocol.login("bob", rooms=[], last_id=0, history_id="h1", resume="r1")
    ]


def test_the_newest_resume_token_is_the_one_presented() -> None:
    model = resumable()
    reconnected(model)
    receive(model, protocol.welcome("bob", ["bob"], [], resume="r2", history_id="h1"))
    assert frames(reconnected(model))[0]["resume"] == "r2"


def test_a_new_name_after_a_reconnect_still_asks_for_the_missed_messages() -> None:
    model = resumable(history=[protocol.message(4, NOW, "alice", "old")])
    reconnected(model)
    receive(model, protocol.error("name_taken"))
    assert frames(type_keys(model, "\x15", *"bobby", "\n")) == [
        protocol.login("bobby", rooms=[], last_id=4, history_id="h1", resume="r1")
    ]


def test_messages_missed_are_shown_and_those_seen_are_not_shown_again() -> None:
    seen = protocol.message(1, NOW, "alice", "once")
    model = resumable(history=[seen])
    receive(model, protocol.message(2, NOW, "alice", "twice?"))
    reconnected(model)
    again = protocol.message(2, NOW + 5, "alice", "twice?")  # same id: the same message
    missed = protocol.message(5, NOW, "alice", "missed")
    receive(model, protocol.welcome("bob", ["bob"], [again, missed], history_id="h1"))
    assert shown(model) == ["once", "twice?", "missed"]
    assert model.entries[-1].text == "back online as bob"


def test_a_reset_history_is_said_and_its_ids_are_not_matched_with_the_old_ones() -> None:
    model = resumable(history=[protocol.message(5, NOW, "alice", "before the reset")])
    reconnected(model)
    fresh = protocol.message(5, NOW + 60, "carol", "a new id 5")
    receive(model, protocol.welcome("bob", ["bob"], [fresh], resume="r2", history_id="h2"))
    texts = [e.text for e in model.entries]
    assert "the server's history was reset" in texts
    assert shown(model) == ["before the reset", "a new id 5"]
    assert texts.index("the server's history was reset") < texts.index("a new id 5")
    assert frames(reconnected(model)) == [
        protocol.login("bob", rooms=[], last_id=5, history_id="h2", resume="r2")
    ]


def test_the_first_welcome_is_not_a_reset() -> None:
    model = resumable()
    assert not any("reset" in e.text for e in model.entries)


def test_a_truncated_welcome_says_some_messages_were_skipped() -> None:
    model = resumable()
    reconnected(model)
    history = [protocol.message(2000, NOW, "alice", "newest")]
    receive(model, protocol.welcome("bob", ["bob"], history, history_id="h1", truncated=True))
    texts = [e.text for e in model.entries]
    skipped = [t for t in texts if "skipped" in t]
    assert len(skipped) == 1
    assert texts.index(skipped[0]) < texts.index("newest"), "said before what follows the gap"


def test_an_unacked_message_is_resent_with_its_ref_and_shown_once() -> None:
    model = resumable()
    type_line(model, "did it arrive?")
    actions = reconnected(model)
    assert frames(actions)[0]["last_id"] == 0
    # The server stored it before the link died: history brings it, without a ref ...
    stored = protocol.message(8, NOW, "bob", "did it arrive?")
    actions = receive(model, protocol.welcome("bob", ["bob"], [stored], history_id="h1"))
    assert frames(actions) == [protocol.say("did it arrive?", ref="t-1")], "the same ref"
    # ... and answers the resend with the original, same id, with our ref.
    receive(model, protocol.message(8, NOW, "bob", "did it arrive?", ref="t-1"))
    assert model.outbox == []
    assert shown(model) == ["did it arrive?"]


def test_an_echo_that_comes_twice_is_shown_once() -> None:
    model = resumable()
    type_line(model, "hello")
    echo = protocol.message(3, NOW, "bob", "hello", ref="t-1")
    receive(model, echo)
    receive(model, echo)
    assert shown(model) == ["hello"]


def test_refs_are_random_per_client() -> None:
    one, two = ClientModel("bob"), ClientModel("bob")
    for model in (one, two):
        connected(model)
        receive(model, protocol.welcome("bob", ["bob"], []))
    ref_one = frames(type_line(one, "x"))[0]["ref"]
    ref_two = frames(type_line(two, "x"))[0]["ref"]
    assert ref_one != ref_two
    assert len(ref_one) >= 16


def test_the_ids_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_model, "MAX_SEEN", 3)
    model = resumable()
    for number in range(1, 6):
        receive(model, protocol.message(number, NOW, "alice", f"m{number}"))
    assert len(model._seen) == 3
    receive(model, protocol.message(5, NOW, "alice", "m5"))
    assert shown(model).count("m5") == 1


def test_history_after_a_reconnect_does_not_repeat_what_was_seen() -> None:
    model = logged_in()
    seen = protocol.message(1, NOW, "alice", "once")
    receive(model, seen)
    model.handle_event(Disconnected("connection lost", 0.5), NOW)
    connected(model)
    newer = protocol.message(2, NOW + 1, "alice", "missed")
    receive(model, protocol.welcome("bob", ["alice", "bob"], [seen, newer]))
    texts = [e.text for e in model.entries if e.kind == "message"]
    assert texts == ["once", "missed"]


def test_msg_sends_a_private_message() -> None:
    model = logged_in()
    assert frames(type_line(model, "/msg alice psst")) == [
        protocol.say("psst", to="alice", ref="t-1")
    ]
    receive(model, protocol.message(3, NOW, "bob", "psst", to="alice", ref="t-1"))
    entry = model.entries[-1]
    assert (entry.to, entry.own) == ("alice", True)


def test_msg_without_text_is_a_local_hint() -> None:
    model = logged_in()
    assert frames(type_line(model, "/msg alice")) == []
    assert model.entries[-1].text == "usage: /msg NAME text"


def test_a_private_message_to_us_is_highlighted_and_rings() -> None:
    model = logged_in()
    actions = receive(model, protocol.message(3, NOW, "alice", "psst", to="bob"))
    assert actions == [Bell()]
    assert model.entries[-1].mention and model.entries[-1].to == "bob"


def test_our_name_mentioned_is_highlighted_and_rings() -> None:
    model = logged_in()
    assert receive(model, protocol.message(3, NOW, "alice", "hey BOB, look")) == [Bell()]
    assert model.entries[-1].mention
    assert receive(model, protocol.message(4, NOW, "alice", "a bobcat")) == []
    assert not model.entries[-1].mention


def test_a_mention_inside_cjk_text_counts() -> None:
    model = logged_in("李雷", ("李雷", "alice"))
    assert receive(model, protocol.message(3, NOW, "alice", "你好李雷")) == [Bell()]


def test_me_is_sent_as_text_and_shown_as_an_action() -> None:
    model = logged_in()
    assert frames(type_line(model, "/me waves")) == [protocol.say("/me waves", ref="t-1")]
    receive(model, protocol.message(3, NOW, "alice", "/me waves back"))
    entry = model.entries[-1]
    assert (entry.kind, entry.sender, entry.text) == ("action", "alice", "waves back")


def test_double_slash_sends_a_literal_slash() -> None:
    model = logged_in()
    assert frames(type_line(model, "//etc is a folder")) == [
        protocol.say("/etc is a folder", ref="t-1")
    ]


def test_an_unknown_command_gets_a_local_hint() -> None:
    model = logged_in()
    assert frames(type_line(model, "/dance now")) == []
    assert "unknown command /dance" in model.entries[-1].text
    assert "//" in model.entries[-1].text


def test_who_asks_the_server_and_lists_the_answer() -> None:
    model = logged_in()
    assert frames(type_line(model, "/who")) == [protocol.who()]
    receive(model, protocol.online(["bob", "alice", "carol"]))
    assert model.online == ["alice", "bob", "carol"]
    assert model.entries[-1].text == "online (3): alice, bob, carol"


def test_help_and_clear_are_local() -> None:
    model = logged_in()
    assert frames(type_line(model, "/help")) == []
    assert any("/msg NAME text" in e.text for e in model.entries)
    assert frames(type_line(model, "/clear")) == []
    assert model.entries == []


def test_join_and_leave_change_the_online_list_quietly() -> None:
    model = logged_in()
    assert receive(model, protocol.join("carol", NOW)) == []
    assert model.online == ["alice", "bob", "carol"]
    assert model.entries[-1].text == "carol joined"
    receive(model, protocol.leave("alice", NOW, "timeout"))
    assert model.online == ["bob", "carol"]
    assert model.entries[-1].text == "alice left (timed out)"
    assert model.entries[-1].kind == "system"


def test_nothing_received_keeps_a_control_character() -> None:
    model = logged_in()
    receive(model, protocol.message(3, NOW, "eve\x1b[2J", "red\x1b[31m\x07 \u202eevil\r\nx"))
    receive(model, protocol.join("mal\x9bory", NOW))
    for entry in model.entries:
        for text in (entry.text, entry.sender):
            assert all(c.isprintable() or c == " " for c in text), repr(text)


# --------------------------------------------------------------------------- errors


def test_no_such_user_takes_the_message_out_of_the_outbox() -> None:
    model = logged_in()
    type_line(model, "/msg zed hello")
    receive(model, protocol.error("no_such_user", "Nobody of that name is online.", ref="t-1"))
    assert model.outbox == []
    assert model.entries[-1].kind == "error"
    assert "not sent to zed" in model.entries[-1].text


def test_rate_limited_message_is_sent_again_later() -> None:
    model = logged_in()
    type_line(model, "spam")
    receive(model, protocol.error("rate_limited", ref="t-1", retry_after=2.0))
    assert len(model.outbox) == 1
    assert frames(model.tick(NOW + 1)) == []
    assert frames(model.tick(NOW + 2.5)) == [protocol.say("spam", ref="t-1")]


def test_an_incompatible_server_stops_the_reconnecting() -> None:
    model = ClientModel("bob", *ADDRESS)
    model.handle_event(Stopped("the server at x speaks lanchat 5.0.0; this client is 4.0.0"), NOW)
    assert model.link == STOPPED
    assert "5.0.0" in model.link_note


def test_auth_failed_gives_up() -> None:
    model = ClientModel("bob", *ADDRESS)
    connected(model)
    actions = receive(model, protocol.error("auth_failed"))
    assert any(isinstance(a, GiveUp) for a in actions)


def test_a_shutdown_is_a_system_line() -> None:
    model = logged_in()
    receive(model, protocol.shutdown("lab is shutting down."))
    assert "shutting down" in model.entries[-1].text


# --------------------------------------------------------------------------- keepalive


def test_ping_is_answered_with_its_token() -> None:
    model = logged_in()
    assert receive(model, protocol.ping("abc")) == [Send(protocol.pong("abc"))]


def test_a_quiet_server_is_pinged_and_dropped_if_it_does_not_answer() -> None:
    model = logged_in()
    assert model.tick(NOW + 1) == []
    actions = model.tick(NOW + PING_AFTER + 1)
    assert [f["type"] for f in frames(actions)] == ["ping"]
    assert model.tick(NOW + PING_AFTER + 2) == []
    assert model.tick(NOW + PING_AFTER + PING_TIMEOUT + 2) == [Drop()]


def test_any_frame_counts_as_an_answer_to_a_ping() -> None:
    model = logged_in()
    model.tick(NOW + PING_AFTER + 1)
    receive(model, protocol.pong("k1"), now=NOW + PING_AFTER + 2)
    assert model.tick(NOW + PING_AFTER + PING_TIMEOUT + 2) == []


# --------------------------------------------------------------------------- keys


def test_leaving_keys() -> None:
    quit_actions = [Send(protocol.quit()), Exit(0)]
    assert type_line(logged_in(), "/quit") == quit_actions
    assert type_keys(logged_in(), "\x04") == quit_actions, "Ctrl-D on an empty line"
    assert type_keys(logged_in(), "\x03") == quit_actions, "Ctrl-C"
    model = logged_in()
    assert type_keys(model, "a", "b", "KEY_HOME", "\x04") == [], "Ctrl-D deletes on a line"
    assert model.input == "b"


def test_editing_keys_change_the_input_line() -> None:
    model = logged_in()
    type_keys(model, *"hello world", "KEY_LEFT", "KEY_LEFT", "KEY_BACKSPACE", "KEY_DC")
    assert (model.input, model.cursor) == ("hello wod", 8)
    type_keys(model, "KEY_HOME", "X", "KEY_END", "!")
    assert model.input == "Xhello wod!"
    type_keys(model, "\x17")
    assert model.input == "Xhello "
    type_keys(model, "\x15")
    assert (model.input, model.cursor) == ("", 0)


def test_unicode_of_any_script_is_typed_as_is() -> None:
    model = logged_in()
    text = "你好 😀 Ελλάδα हिन्दी"
    assert frames(type_line(model, text)) == [protocol.say(text, ref="t-1")]


def test_joiners_of_emoji_and_scripts_can_be_typed_but_not_bidi_overrides() -> None:
    model = logged_in()
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    type_keys(model, *family, "\u202e", *"क्\u200dष")
    assert model.input == family + "क्\u200dष"


def test_up_and_down_recall_sent_lines_and_keep_the_draft() -> None:
    model = logged_in()
    type_line(model, "first")
    type_line(model, "second")
    type_keys(model, *"draft")
    type_keys(model, "KEY_UP")
    assert model.input == "second"
    type_keys(model, "KEY_UP", "KEY_UP")
    assert model.input == "first"
    type_keys(model, "KEY_DOWN", "KEY_DOWN")
    assert model.input == "draft"


def test_page_keys_scroll_within_the_viewport() -> None:
    model = logged_in()
    model.set_viewport(page=10, max_scroll=25)
    type_keys(model, "KEY_PPAGE")
    assert model.scroll == 9
    type_keys(model, "KEY_PPAGE", "KEY_PPAGE", "KEY_PPAGE")
    assert model.scroll == 25
    type_keys(model, "KEY_NPAGE")
    assert model.scroll == 16
    type_keys(model, "\x1b")
    assert model.scroll == 0


def test_sending_scrolls_back_to_the_newest_line() -> None:
    model = logged_in()
    model.set_viewport(page=10, max_scroll=25)
    type_keys(model, "KEY_PPAGE")
    type_line(model, "hi")
    assert model.scroll == 0


def test_tab_completes_an_online_name() -> None:
    model = logged_in(online=("alice", "albert", "bob"))
    type_keys(model, *"ali", "\t")
    assert model.input == "alice: "
    type_keys(model, *"ask al", "\t")
    assert model.input == "alice: ask albert ", "two names start with al: the first of them"
    type_keys(model, "\t")
    assert model.input == "alice: ask alice ", "Tab again: the next"


def test_a_line_can_never_grow_past_the_text_limit() -> None:
    model = logged_in()
    model.handle_key("x" * (protocol.MAX_TEXT + 50), NOW)
    assert len(model.input) == protocol.MAX_TEXT + 1
    assert frames(type_keys(model, "\n")) == []
    assert "too long" in model.entries[-1].text
    assert len(model.input) == protocol.MAX_TEXT + 1, "the text is given back to shorten"


def test_control_keys_are_not_typed() -> None:
    model = logged_in()
    type_keys(model, "\x00", "\x1f", "KEY_F(1)", "\x1b", "a")
    assert model.input == "a"


# --------------------------------------------------------------------------- picker


def test_picker_moves_over_incompatible_servers_only() -> None:
    picker = ServerPicker([("old", False), ("a", True), ("x", False), ("b", True)])
    assert picker.selected == 1
    picker.handle_key("KEY_DOWN")
    assert picker.selected == 3
    picker.handle_key("KEY_DOWN")
    assert picker.selected == 3
    picker.handle_key("KEY_UP")
    assert picker.selected == 1
    picker.handle_key("\n")
    assert picker.done is True


def test_picker_can_be_left() -> None:
    picker = ServerPicker([("a", True)])
    picker.handle_key("q")
    assert picker.done is False
