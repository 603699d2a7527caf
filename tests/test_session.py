"""The session without sockets: every phase, error and timer, fed frames and clock ticks."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple

import pytest

from lanchat import protocol
from lanchat.core import events
from lanchat.core.chat import Chat
from lanchat.core.history import MemoryHistory
from lanchat.core.ratelimit import FLOOD_BURST
from lanchat.core.rooms import Member
from lanchat.core.session import AUTH_FAILURE_DELAY, Effects, Session, SessionConfig
from lanchat.protocol import ProtocolError

T0 = 1000.0  # the monotonic clock of the tests
CONFIG = SessionConfig(server_name="test", rate=5.0, burst=30, login_timeout=30, idle_timeout=120)


class Hub:
    """A room whose deliveries are kept per member, decoded back into frames."""

    def __init__(self) -> None:
        self.sent: List[Tuple[str, dict]] = []
        self.chat = Chat(self._deliver, MemoryHistory(), clock=lambda: 1764000000.0)

    def _deliver(self, items: Iterable[Tuple[Member, bytes]]) -> None:
        for member, data in items:
            self.sent.append((member.name, protocol.decode_line(data.rstrip(b"\n"))))

    def to(self, name: str) -> List[dict]:
        return [frame for who, frame in self.sent if who == name]

    def session(self, config: SessionConfig = CONFIG, now: float = T0) -> Session:
        return Session(config, self.chat, Member(""), "127.0.0.1:5", now)


def login_frame(name: str, **fields: Any) -> dict:
    return {"type": "login", "name": name, "version": protocol.VERSION, **fields}


def logged_in(hub: Hub, name: str, now: float = T0) -> Session:
    session = hub.session(now=now)
    effects = session.receive(login_frame(name), now)
    assert effects == Effects() and session.logged_in
    return session


def errors(effects: Effects) -> List[Optional[str]]:
    return [e.code for e in effects.send if isinstance(e, events.Error)]


def test_start_greets_with_the_online_names_and_the_rate_limit() -> None:
    hub = Hub()
    logged_in(hub, "alice")
    session = hub.session()
    (hello,) = session.start().send
    assert hello == events.Hello("test", ("alice",), None, 5.0, 30, 20, session.challenge)


def test_a_password_server_greets_with_a_nonce_and_nobody_online() -> None:
    hub = Hub()
    logged_in(hub, "alice")
    session = hub.session(SessionConfig(server_name="test", password="pw"))
    (hello,) = session.start().send
    assert isinstance(hello, events.Hello) and hello.online == () and hello.nonce


def test_a_login_welcomes_and_the_others_see_a_join() -> None:
    hub = Hub()
    logged_in(hub, "alice")
    logged_in(hub, "bob")
    assert hub.to("bob")[0]["type"] == "welcome"
    assert [f["type"] for f in hub.to("alice")] == ["welcome", "join"]


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"type": "say", "text": "hi"}, "not_logged_in"),
        ({"type": "who"}, "not_logged_in"),
        ({"type": "dance"}, "unknown_type"),
    ],
)
def test_before_login_only_login_ping_and_quit_are_heard(frame: dict, code: str) -> None:
    session = Hub().session()
    effects = session.receive(frame, T0)
    assert errors(effects) == [code] and effects.close is None


def test_ping_and_quit_work_before_login() -> None:
    session = Hub().session()
    assert session.receive({"type": "ping", "token": 7}, T0).send == [events.Pong(7)]
    assert session.receive({"type": "quit"}, T0).close == "quit"


def test_a_bad_frame_before_login_closes_and_after_it_stays() -> None:
    hub = Hub()
    before = hub.session().receive({"type": "login", "name": 5, "version": "4.0.0"}, T0)
    assert errors(before) == ["bad_frame"] and before.close == "error"
    after = logged_in(hub, "alice").receive({"type": "say", "text": 5}, T0)
    assert errors(after) == ["bad_frame"] and after.close is None


def test_a_second_login_is_a_bad_frame_that_keeps_the_connection() -> None:
    session = logged_in(Hub(), "alice")
    effects = session.receive(login_frame("alice"), T0)
    assert errors(effects) == ["bad_frame"] and effects.close is None


def test_an_incompatible_version_closes_with_the_servers_version() -> None:
    effects = Hub().session().receive(login_frame("bob", version="3.0.0"), T0)
    (error,) = effects.send
    assert isinstance(error, events.Error) and error.code == "incompatible_version"
    assert error.fields == {"server_version": protocol.VERSION} and effects.close == "error"


def test_an_invalid_or_taken_name_may_be_followed_by_another_login() -> None:
    hub = Hub()
    logged_in(hub, "alice")
    session = hub.session()
    assert errors(session.receive(login_frame("no spaces"), T0)) == ["invalid_name"]
    assert errors(session.receive(login_frame("ALICE"), T0)) == ["name_taken"]
    assert session.receive(login_frame("bob"), T0) == Effects() and session.logged_in


def test_a_wrong_password_is_answered_after_a_delay_and_closes() -> None:
    config = SessionConfig(server_name="test", password="secret")
    session = Hub().session(config)
    assert session.receive(login_frame("bob", auth="0" * 64), T0) == Effects()
    assert session.deadline == T0 + AUTH_FAILURE_DELAY
    assert session.receive({"type": "ping"}, T0 + 0.5) == Effects(), "nothing more is heard"
    assert session.tick(T0 + 0.5) == Effects()
    effects = session.tick(T0 + AUTH_FAILURE_DELAY)
    assert errors(effects) == ["auth_failed"] and effects.close == "error"


def test_the_right_password_proof_logs_in() -> None:
    config = SessionConfig(server_name="test", password="secret")
    session = Hub().session(config)
    assert session.nonce is not None
    proof = protocol.password_proof("secret", session.nonce, "bob")
    assert session.receive(login_frame("bob", auth=proof), T0) == Effects()
    assert session.logged_in


def test_no_login_within_the_login_timeout_closes() -> None:
    session = Hub().session()
    assert session.deadline == T0 + 30
    assert session.tick(T0 + 29.9) == Effects()
    effects = session.tick(T0 + 30)
    assert errors(effects) == ["timeout"] and effects.close == "timeout"


def test_a_quiet_client_is_pinged_at_half_the_idle_timeout_then_closed() -> None:
    session = logged_in(Hub(), "alice")
    assert session.deadline == T0 + 60
    (ping,) = session.tick(T0 + 60).send
    assert isinstance(ping, events.Ping)
    assert session.deadline == T0 + 120
    effects = session.tick(T0 + 120)
    assert errors(effects) == ["timeout"] and effects.close == "timeout"


def test_anything_heard_resets_the_idle_timer() -> None:
    session = logged_in(Hub(), "alice")
    session.tick(T0 + 60)  # pinged
    session.receive({"type": "pong"}, T0 + 70)
    assert session.deadline == T0 + 70 + 60
    assert session.tick(T0 + 120) == Effects()


def test_past_the_burst_frames_are_rate_limited_with_a_positive_retry_after() -> None:
    session = logged_in(Hub(), "alice")
    for _ in range(30):
        assert session.receive({"type": "who"}, T0).send[0] == events.Online(("alice",))
    effects = session.receive({"type": "who", "ref": 1}, T0)
    (error,) = effects.send
    assert isinstance(error, events.Error) and error.code == "rate_limited"
    assert error.fields["retry_after"] > 0 and effects.close is None
    later = T0 + error.fields["retry_after"]
    assert session.receive({"type": "who"}, later).send[0] == events.Online(("alice",))


def test_a_client_that_keeps_sending_past_rate_limited_is_cut_off_as_flooding() -> None:
    session = logged_in(Hub(), "alice")
    codes = [errors(session.receive({"type": "who"}, T0)) for _ in range(30 + FLOOD_BURST + 1)]
    assert codes[30] == ["rate_limited"] and codes[-2] == ["rate_limited"]
    assert codes[-1] == ["flooding"]


def test_a_paste_of_twenty_lines_after_login_passes() -> None:
    session = logged_in(Hub(), "alice")
    for n in range(20):
        assert session.receive({"type": "say", "text": f"line {n}"}, T0) == Effects()


def test_decoder_errors_too_long_closes_and_a_bad_line_stays_once_logged_in() -> None:
    session = logged_in(Hub(), "alice")
    bad = session.bad_input(ProtocolError("bad_frame", "not JSON"), T0)
    assert errors(bad) == ["bad_frame"] and bad.close is None
    long = session.bad_input(ProtocolError("too_long", "too long"), T0)
    assert errors(long) == ["too_long"] and long.close == "error"


def test_a_failing_handler_ends_in_server_error_and_a_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = Hub()
    session = logged_in(hub, "alice")

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(hub.chat, "say", broken)
    effects = session.receive({"type": "say", "text": "hi"}, T0)
    assert errors(effects) == ["server_error"] and effects.close == "error"


def test_a_login_with_the_resume_token_replaces_the_old_session() -> None:
    hub = Hub()
    old = logged_in(hub, "alice")
    new = hub.session()
    effects = new.receive(login_frame("alice", resume=old.member.resume_token), T0)
    assert effects.replaced == [old.member]


def test_end_leaves_the_room_and_tells_the_others_once() -> None:
    hub = Hub()
    alice = logged_in(hub, "alice")
    logged_in(hub, "bob")
    alice.end("quit")
    alice.end("quit")
    leaves = [f for f in hub.to("bob") if f["type"] == "leave"]
    assert [(f["name"], f["reason"]) for f in leaves] == [("alice", "quit")]
    assert hub.chat.names == ["bob"]


def test_end_without_announce_tells_nobody() -> None:
    hub = Hub()
    alice = logged_in(hub, "alice")
    logged_in(hub, "bob")
    alice.end("disconnect", announce=False)
    assert [f["type"] for f in hub.to("bob")] == ["welcome"]


def test_a_batch_presence_login_gets_joins_in_presence_frames() -> None:
    hub = Hub()
    watcher = hub.session()
    watcher.receive(login_frame("watcher", presence="batch"), T0)
    logged_in(hub, "alice")
    (presence,) = [f for f in hub.to("watcher") if f["type"] == "presence"]
    assert presence["changes"] == [{"type": "join", "name": "alice", "ts": 1764000000.0}]
