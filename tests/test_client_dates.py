"""Days: a separator where the day changes, and the date wherever a time alone would mislead.

Times are shown in the local time zone: the tests set TZ to a zone ten hours east of UTC
(a POSIX rule, so no zone database is needed), so a message from 20:00 UTC belongs to the
next local day. The pure view takes its "today" from the model's latest `now`; the pyz
tests pre-fill a real SQLite history with messages from earlier days.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, List, Sequence, Set, Tuple

import pytest
from conftest import free_port
from drivers import KEYS, PtyClient, client_env, clients  # noqa: F401  (fixture)
from wire import start_pyz_server

from lanchat import protocol
from lanchat.chat import view
from lanchat.chat.connection import Connected, Received
from lanchat.chat.model import ClientModel
from lanchat.chat.view import render
from lanchat.core.history import SqliteHistory

TZ = "LCL-10"  # UTC+10, no daylight saving
ZONE = timezone(timedelta(hours=10))
HOUR = 3600.0
# Tuesday 1 December 2026, 12:00 in that zone; two and three days before it.
TODAY = datetime(2026, 12, 1, 12, 0, tzinfo=ZONE).timestamp()
SATURDAY = datetime(2026, 11, 28, 6, 0, tzinfo=ZONE).timestamp()  # Friday 20:00 in UTC
SUNDAY = datetime(2026, 11, 29, 23, 30, tzinfo=ZONE).timestamp()


@pytest.fixture(autouse=True)
def local_zone() -> Iterator[None]:
    """The process's local time zone is TZ for the test, and restored after it."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = TZ
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def message(number: int, ts: float, text: str, sender: str = "alice") -> dict:
    return protocol.message(number, ts, sender, text)


def joined(history: List[dict], now: float = TODAY) -> ClientModel:
    """bob, logged in at `now` to a room whose welcome brings `history`."""
    model = ClientModel("bob", "127.0.0.1", 42069, ref_prefix="t")
    model.handle_event(Connected(protocol.hello("lab", []), ("127.0.0.1", 42069)), now)
    model.handle_event(Received(protocol.welcome("bob", ["alice", "bob"], history)), now)
    return model


def pane(model: ClientModel, rows: int = 24, cols: int = 56) -> List[str]:
    return [line.rstrip() for line in render(model, rows, cols).text()[1:-1]]


def test_a_separator_stands_where_the_day_changes_history_included() -> None:
    model = joined([message(1, SATURDAY, "weekend"), message(2, SUNDAY, "late")])
    lines = pane(model)
    assert lines[:6] == [
        "-- Saturday 28 November --",
        "06:00 alice: weekend",
        "-- Sunday 29 November --",
        "23:30 alice: late",
        "-- Tuesday 1 December --",
        "12:00 -- you are bob on lab; /help lists commands",
    ]


def test_nothing_marks_the_day_when_everything_is_from_today() -> None:
    model = joined([message(1, TODAY - HOUR, "this morning")])
    assert pane(model)[:2] == [
        "11:00 alice: this morning",
        "12:00 -- you are bob on lab; /help lists commands",
    ]


def test_the_first_line_of_the_pane_is_dated_once_today_is_over() -> None:
    model = joined([])
    model.tick(TODAY + 14 * HOUR)  # past midnight: the welcome line is from yesterday
    assert pane(model)[:2] == [
        "-- Tuesday 1 December --",
        "12:00 -- you are bob on lab; /help lists commands",
    ]


def test_the_year_shows_when_it_is_not_this_year() -> None:
    model = joined([message(1, TODAY - 400 * 24 * HOUR, "long ago")])
    assert pane(model)[0] == "-- Monday 27 October 2025 --"


def test_the_separator_uses_the_local_day_not_the_utc_day() -> None:
    assert datetime.fromtimestamp(SATURDAY, timezone.utc).day == 27
    assert view.day_line(SATURDAY, TODAY) == "-- Saturday 28 November --"


def test_scrolled_into_an_older_day_the_top_row_names_it() -> None:
    history = [message(n, SATURDAY + n * 60, f"sat {n:02}") for n in range(1, 41)]
    model = joined(history)
    screen = render(model, 12, 60)
    model.set_viewport(screen.page, screen.max_scroll, screen.scroll)
    assert screen.text()[1].startswith("-- Saturday 28 November --"), "the top of the pane"
    model.handle_key("KEY_PPAGE", TODAY)
    text = render(model, 12, 60).text()
    assert text[1].startswith("-- Saturday 28 November --")
    assert text[2].startswith("06:")


def test_paging_through_an_older_day_skips_no_line() -> None:
    history = [message(n, SATURDAY + n * 60, f"sat {n:02}") for n in range(1, 61)]
    model = joined(history)
    every = {f"sat {n:02}" for n in range(1, 61)}
    for key in ("KEY_PPAGE", "KEY_NPAGE"):
        seen: Set[str] = set()
        for _ in range(12):
            screen = render(model, 10, 56)
            model.set_viewport(screen.page, screen.max_scroll, screen.scroll)
            seen.update(line.split(": ")[1].rstrip() for line in screen.text() if "sat " in line)
            model.handle_key(key, TODAY)
        assert seen == every, key


# --------------------------------------------------------------------------- pyz


def _prefilled_server(
    pyz: Path, tmp_path: Path, messages: Sequence[Tuple[float, str]] = ()
) -> Tuple[subprocess.Popen[str], Tuple[str, int]]:
    """The pyz server on a real SQLite history that already holds these messages (by
    default one from three days ago at 06:00 in the test zone, one from two days ago)."""
    now = time.time()
    if not messages:
        messages = [
            (_local_morning(now, 3), "from three days ago"),
            (now - 2 * 86400, "two days ago"),
        ]
    path = tmp_path / "history.sqlite3"
    history = SqliteHistory(path)
    try:
        for ts, text in messages:
            frame = protocol.message(history.next_id(), ts, "alice", text, room="#general")
            history.add(frame, "alice", None)
    finally:
        history.close()
    return start_pyz_server(
        str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()), "--no-discovery",
        "--log-level", "warning", "--name", "testlab", "--history-db", str(path),
    )  # fmt: skip


def _local_morning(now: float, days_before: int) -> float:
    """06:00 in the test zone, `days_before` days before `now`'s day: 20:00 UTC the day before."""
    day = datetime.fromtimestamp(now, ZONE) - timedelta(days=days_before)
    return day.replace(hour=6, minute=0, second=0, microsecond=0).timestamp()


def _separator(ts: float) -> str:
    day = datetime.fromtimestamp(ts, ZONE)
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    months = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")  # fmt: skip
    year = "" if day.year == datetime.fromtimestamp(time.time(), ZONE).year else f" {day.year}"
    return f"-- {weekdays[day.weekday()]} {day.day} {months[day.month - 1]}{year} --"


@pytest.mark.pyz
def test_the_window_dates_the_history_of_other_days(
    pyz: Path,
    tmp_path: Path,
    clients: Callable[..., PtyClient],  # noqa: F811
) -> None:
    proc, address = _prefilled_server(pyz, tmp_path)
    try:
        now = time.time()
        client = clients(address, "reader", rows=14, cols=56, env=client_env(TZ=TZ))
        lines = [line.rstrip() for line in client.wait_for("you are reader")]
        first = lines.index(_separator(_local_morning(now, 3)))
        assert lines[first + 1].startswith("06:00 alice: from three days ago")
        assert lines[first + 2] == _separator(now - 2 * 86400)
        assert "alice: two days ago" in lines[first + 3]
        assert lines[first + 4] == _separator(now)
        assert "-- you are reader on testlab" in lines[first + 5]
    finally:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.pyz
def test_the_window_names_the_day_of_its_top_row_when_that_day_is_out_of_sight(
    pyz: Path,
    tmp_path: Path,
    clients: Callable[..., PtyClient],  # noqa: F811
) -> None:
    morning = _local_morning(time.time(), 3)
    messages = [(morning + n * 60, f"old {n:02}") for n in range(1, 31)]
    proc, address = _prefilled_server(pyz, tmp_path, messages)
    try:
        client = clients(address, "reader", rows=12, cols=56, env=client_env(TZ=TZ))
        lines = client.wait_for("you are reader")
        assert lines[1].rstrip() == _separator(morning), "not a bare time from that day"
        assert lines[2].startswith("06:2") and "alice: old" in lines[2]
        client.type(KEYS["ppage"])
        lines = client.wait_for("more below")
        assert lines[1].rstrip() == _separator(morning)
        assert "alice: old" in lines[2]
    finally:
        proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.pyz
def test_plain_mode_prints_a_separator_line_where_the_day_changes(
    pyz: Path, tmp_path: Path
) -> None:
    proc, (host, port) = _prefilled_server(pyz, tmp_path)
    try:
        now = time.time()
        argv = [sys.executable, str(pyz), "client", "--plain", "--name", "bot",
                "--host", host, "--port", str(port)]  # fmt: skip
        env = {**os.environ, "TZ": TZ}
        done = subprocess.run(argv, input=b"", capture_output=True, env=env, timeout=30)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.decode("utf-8").splitlines()
        assert lines[:5] == [
            _separator(_local_morning(now, 3)),
            "06:00 #general alice: from three days ago",
            _separator(now - 2 * 86400),
            time.strftime("%H:%M", time.localtime(now - 2 * 86400))
            + " #general alice: two days ago",
            _separator(now),
        ]
        assert lines[5].endswith("-- you are bot on testlab; /help lists commands")
    finally:
        proc.kill()
        proc.communicate(timeout=10)
