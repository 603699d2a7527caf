"""Hostile and careless clients against the built pyz server (hardening issue, items 3, 5, 6
and 13): log injection, `retry_after` of 0, flooders, and what the operator's log says."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from conftest import free_port, pyz_command
from wire import RawClient, login, start_pyz_server

from lanchat import protocol
from lanchat.core.ratelimit import FLOOD_BURST, TokenBucket
from lanchat.core.safelog import SafeFormatter

Address = Tuple[str, int]
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S")
FORGED = "2026-12-01 00:00:00,000 INFO login root"


class PyzServer:
    """A `lanchat.pyz server` subprocess that logs to a file (the fixture kills it).

    Tests read the log once the lines they wait for are in it, rather than after a
    SIGTERM: an idle server sometimes misses a SIGTERM (see the report of this change).
    """

    def __init__(
        self, pyz: Path, log_file: Path, *args: str, env: Optional[Dict[str, str]] = None
    ) -> None:
        if "--discovery" in args:  # on this test's own base port only
            args = tuple(arg for arg in args if arg != "--discovery")
        else:
            args = ("--no-discovery", *args)
        self.log_file = log_file
        self.proc, self.address = start_pyz_server(
            str(pyz),
            *("--bind", "127.0.0.1", "--port", str(free_port()), "--no-history"),
            *("--log-file", str(log_file), *args),
            env=env,
        )

    def log_with(self, *patterns: str, timeout: float = 10.0) -> str:
        """The whole log, once a line matches each regex; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_file.read_bytes().decode("utf-8") if self.log_file.exists() else ""
            missing = [p for p in patterns if not re.search(p, text, re.MULTILINE)]
            if not missing:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"not logged within {timeout} s: {missing}\n{text}")
            time.sleep(0.05)


@pytest.fixture
def start(pyz: Path, tmp_path: Path) -> Iterator[Callable[..., PyzServer]]:
    """Start pyz servers with extra options; kill them after the test."""
    servers: List[PyzServer] = []

    def run(*args: str, env: Optional[Dict[str, str]] = None) -> PyzServer:
        log_file = tmp_path / f"server-{len(servers)}.log"
        servers.append(PyzServer(pyz, log_file, *args, env=env))
        return servers[-1]

    yield run
    for server in servers:
        server.proc.kill()
        server.proc.communicate(timeout=10)


def says(count: int, text: str = "spam") -> bytes:
    """`count` say frames with refs 0, 1, ..., as one block of bytes."""
    return b"".join(
        json.dumps({"type": "say", "text": text, "ref": n}).encode() + b"\n" for n in range(count)
    )


def _login_frame(name: str, version: str = "4.0.0", **extra: Any) -> Dict[str, Any]:
    return {"type": "login", "name": name, "version": version, **extra}


# ---------------------------------------------------------------------------
# Item 3: client text in the log is escaped, whatever the level or option


@pytest.mark.pyz
def test_client_text_cannot_forge_a_log_line_or_reach_the_terminal(
    start: Callable[..., PyzServer],
) -> None:
    server = start("--log-level", "debug", "--log-messages")
    version = f"9.0\r\n{FORGED}\x1b[2J\x07"
    forger = RawClient(server.address)
    forger.expect("hello")
    forger.send(_login_frame("mallory", version))
    forger.expect_error("incompatible_version")
    client = RawClient(server.address)
    client.expect("hello")
    client.send(_login_frame("\x1b]0;pwned\x07bob\x9b\u202e\r\n" + FORGED))
    client.expect_error("invalid_name")
    client.send(_login_frame("alice"))
    client.expect("welcome")
    client.send({"type": "say", "text": "hi\u2028" + FORGED})
    client.expect("message")
    client.send({"type": "quit"})
    client.expect_closed()
    forger_port = forger.sock.getsockname()[1]
    text = server.log_with(
        rf"disconnect 127\.0\.0\.1:{forger_port} before login", r"leave alice .*\(quit\)$"
    )
    for raw in "\r\x1b\x07\x9b\u202e\u2028":
        assert raw not in text, f"{raw!r} reached the log"
    lines = text.splitlines()
    assert all(RECORD.match(line) for line in lines), text
    assert not any(line.startswith(FORGED) for line in lines), text
    assert "version '9.0\\r\\n" + FORGED + "\\x1b[2J\\x07'" in text
    assert "'\\x1b]0;pwned\\x07bob\\x9b\\u202e\\r\\n" + FORGED + "'" in text
    assert "hi\\u2028" + FORGED in text


@pytest.mark.pyz
def test_a_discovery_probe_cannot_forge_a_log_line_either(
    start: Callable[..., PyzServer],
) -> None:
    """Code this change did not touch (the responder's debug line) is escaped too."""
    server = start("--discovery", "--log-level", "debug")
    probe = {"type": "discover", "app": "lanchat", "version": f"4.0.0\r\n{FORGED}\x1b[2J"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(json.dumps(probe).encode(), server.address)
        assert json.loads(udp.recv(65536))["type"] == "server"
    log = server.log_with("discovery: answered")
    assert "\r" not in log and "\x1b" not in log
    assert "(version 4.0.0\\r\\n" + FORGED + "\\x1b[2J)" in log
    assert not any(line.startswith(FORGED) for line in log.splitlines())


def _format(record: logging.LogRecord) -> str:
    return SafeFormatter("%(levelname)s %(message)s").format(record)


def test_safe_formatter_escapes_arguments_and_f_strings_alike() -> None:
    name = "bob\r\nINFO login root\x1b[31m\u202e"
    for record in (
        logging.makeLogRecord({"msg": "login %s", "args": (name,), "levelname": "INFO"}),
        logging.makeLogRecord({"msg": f"login {name}", "levelname": "INFO"}),
    ):
        assert _format(record) == "INFO login bob\\r\\nINFO login root\\x1b[31m\\u202e"


def test_safe_formatter_keeps_printable_text_of_any_script() -> None:
    record = logging.makeLogRecord({"msg": "login %s", "args": ("李雷 Žofie \\n",)})
    assert _format(record).endswith("login 李雷 Žofie \\n")


def test_a_traceback_is_escaped_and_indented_so_no_line_passes_for_a_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("test_hardening_abuse.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad name\n{FORGED}\x1b[2J")
        except ValueError:
            logger.exception("connection %s failed", "127.0.0.1:5")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert RECORD.match(lines[0]) and lines[0].endswith("connection 127.0.0.1:5 failed")
    assert all(line.startswith("    ") for line in lines[1:]), lines
    assert "    Traceback (most recent call last):" in lines
    assert "    ValueError: bad name" in lines
    assert "    " + FORGED + "\\x1b[2J" in lines


# ---------------------------------------------------------------------------
# Item 5: retry_after is > 0 and enough


def test_retry_after_is_rounded_up_to_a_whole_millisecond_never_to_zero() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=5, burst=1, clock=lambda: now[0])
    assert bucket.take() == 0
    now[0] = 0.19999  # 0.99995 of a token: 10 µs to go
    assert bucket.take() == 0.001
    now[0] = 0.2  # the millisecond has not passed yet, but the token is whole now
    assert bucket.take() == 0


@pytest.mark.parametrize("rate", [0.3, 5, 7, 1000, 2500])
def test_waiting_retry_after_is_always_enough(rate: float) -> None:
    """At any moment of a refill, a client that waits exactly `retry_after` gets in."""
    now = [0.0]
    for step in range(1, 2000):
        now[0] = 1e6  # a monotonic clock far from 0, as on a machine up for days
        bucket = TokenBucket(rate=rate, burst=1, clock=lambda: now[0])
        assert bucket.take() == 0
        now[0] += step / 1000 / rate  # somewhere in the next two refills
        wait = bucket.take()
        if wait == 0:
            continue
        assert wait > 0 and abs(wait * 1000 - round(wait * 1000)) < 1e-6, wait
        assert wait <= 1 / rate + 0.001
        now[0] += wait
        assert bucket.take() == 0, (rate, step, wait)


@pytest.mark.pyz
def test_the_pyz_server_never_says_retry_after_0(start: Callable[..., PyzServer]) -> None:
    """At 1000 frames/s every wait is under a millisecond: rounding once made them 0.0."""
    server = start("--rate", "1000", "--burst", "20")
    client, _ = login(server.address, "eager")
    client.send_raw(says(400))
    answers = [client.recv() for _ in range(400)]
    limited = [f for f in answers if f["type"] == "error"]
    assert limited, "nothing was refused: the server read more slowly than 1000 frames/s"
    assert {f["code"] for f in limited} == {"rate_limited"}
    assert all(0 < f["retry_after"] <= 0.002 for f in limited), limited


# ---------------------------------------------------------------------------
# Item 6: flooders are cut off; a person pasting is not


def _flood(server: PyzServer, data: bytes) -> Tuple[List[Dict[str, Any]], RawClient]:
    """alice watches while `flooder` sends `data`; return what the flooder got until closed."""
    alice, _ = login(server.address, "alice")
    flooder, _ = login(server.address, "flooder")
    alice.expect("join", name="flooder")
    flooder.send_raw(data)
    frames = flooder.expect_closed(timeout=20)
    leave = alice.recv_until("leave")[-1]  # after the flooder's messages that got through
    assert (leave["name"], leave["reason"]) == ("flooder", "error")
    return frames, alice


@pytest.mark.pyz
def test_a_flooder_gets_flooding_and_is_closed_and_others_see_error(
    start: Callable[..., PyzServer],
) -> None:
    server = start()
    frames, alice = _flood(server, says(5 * FLOOD_BURST))
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "flooding", frames[-1]
    codes = [f.get("code") for f in frames[:-1] if f["type"] == "error"]
    assert set(codes) == {"rate_limited"}
    # the allowance, plus what refilled at 200/s while the server got through the flood
    assert FLOOD_BURST <= len(codes) < 2 * FLOOD_BURST
    relayed = [f for f in frames if f["type"] == "message"]
    assert 30 <= len(relayed) < 60  # the burst, plus 5/s
    say = {"type": "say", "text": "still here"}
    alice.send(say)
    assert alice.recv_until("message")[-1]["text"] == "still here"
    server.log_with(r"closing 127\.0\.0\.1:\d+ after flooding$")


@pytest.mark.pyz
def test_a_flood_of_bad_lines_is_cut_off_too(start: Callable[..., PyzServer]) -> None:
    server = start()
    frames, _ = _flood(server, b"x\n" * (5 * FLOOD_BURST))
    codes = [f["code"] for f in frames]
    assert codes[-1] == "flooding"
    assert 30 <= codes.count("bad_frame") < 60
    assert codes.count("rate_limited") >= FLOOD_BURST


@pytest.mark.pyz
def test_twenty_lines_pasted_right_after_joining_are_never_refused(
    start: Callable[..., PyzServer],
) -> None:
    server = start()
    client, _ = login(server.address, "paster")
    client.send_raw(says(20, "a pasted line"))
    answers = [client.recv() for _ in range(20)]
    assert [f["type"] for f in answers] == ["message"] * 20
    assert [f["ref"] for f in answers] == list(range(20))


# ---------------------------------------------------------------------------
# Item 13: the operator's log


@pytest.mark.pyz
def test_refusals_are_logged_summarised_per_connection(start: Callable[..., PyzServer]) -> None:
    server = start("--rate", "1", "--burst", "20")
    client, _ = login(server.address, "bob")
    client.send_raw(says(150))
    answers = [client.recv() for _ in range(150)]
    refused = sum(1 for f in answers if f["type"] == "error")
    assert refused >= 100
    client.send({"type": "quit"})
    wait = client.expect_error("rate_limited")["retry_after"]  # the bucket is still empty
    time.sleep(wait)  # as told: then the quit gets through
    client.send({"type": "quit"})
    client.expect_closed()
    refused += 1
    log = server.log_with(r"leave bob .*\(quit\)$")
    lines = [line for line in log.splitlines() if "rate limited bob" in line]
    counts = [int(re.findall(r": (\d+) frames? refused$", line)[0]) for line in lines]
    assert counts == [1, refused - 1], lines  # at once, then the rest when bob left


@pytest.mark.pyz
def test_name_refusals_say_the_name_and_why(start: Callable[..., PyzServer]) -> None:
    server = start()
    login(server.address, "Bob")
    client = RawClient(server.address)
    client.expect("hello")
    for name, code in (("bob", "name_taken"), ("b o b", "invalid_name")):
        client.send(_login_frame(name))
        client.expect_error(code)
    # the answer names the one who is online (issue 11), not the spelling asked for
    server.log_with(
        r"refused name 'bob' from 127\.0\.0\.1:\d+: name_taken 'Bob' is online",
        r"refused name 'b o b' from 127\.0\.0\.1:\d+: invalid_name A name may hold letters",
    )


@pytest.mark.pyz
def test_a_failed_password_says_the_name_tried_and_the_start_says_a_password_is_needed(
    start: Callable[..., PyzServer],
) -> None:
    server = start(env={**os.environ, "LANCHAT_PASSWORD": "s3cret"})
    client = RawClient(server.address)
    client.expect("hello")
    client.send(_login_frame("mallory", auth="0" * 64))
    client.expect_error("auth_failed")
    log = server.log_with(
        r"auth failed from 127\.0\.0\.1:\d+ for name 'mallory'$",
        r"\(password required\) listening on 127\.0\.0\.1:\d+$",
    )
    assert "s3cret" not in log


@pytest.mark.pyz
def test_the_start_says_when_no_password_is_needed(start: Callable[..., PyzServer]) -> None:
    start().log_with(r"\(no password\) listening on 127\.0\.0\.1:\d+$")


@pytest.mark.pyz
def test_log_messages_logs_room_messages_but_never_private_ones(
    start: Callable[..., PyzServer],
) -> None:
    server = start("--log-messages")
    alice, _ = login(server.address, "alice")
    bob, _ = login(server.address, "bob")
    alice.expect("join")
    alice.send({"type": "say", "text": "hello room"})
    bob.expect("message", text="hello room")
    alice.send({"type": "say", "text": "a secret for bob", "to": "bob"})
    bob.expect("message", text="a secret for bob")
    alice.send({"type": "quit"})  # so that everything of alice's is logged
    log = server.log_with(r"message \d+ from alice.*: hello room", r"leave alice .*\(quit\)$")
    assert "a secret for bob" not in log


def test_flooding_is_a_closing_error_code() -> None:
    assert protocol.closes_connection("flooding")
    assert protocol.error_from(protocol.ProtocolError("rate_limited", retry_after=0.2)) == {
        "type": "error",
        "code": "rate_limited",
        "message": protocol.ERROR_CODES["rate_limited"][0],
        "retry_after": 0.2,
    }


@pytest.mark.pyz
def test_server_help_tells_the_flood_threshold_and_the_log_options(pyz: Path) -> None:
    done = subprocess.run(
        pyz_command("server", "--help"), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    help_text = " ".join(done.stdout.split())
    assert f"more than {FLOOD_BURST} frames refused at once" in help_text
    assert "closed as flooding" in help_text
    assert "private messages are never logged" in help_text
