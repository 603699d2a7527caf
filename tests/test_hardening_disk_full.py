"""A full history disk: the sender gets not_stored, nobody is dropped, ids never repeat.

The disk is a real one: an 8 MiB tmpfs (root only; the tests skip where it cannot be
mounted), filled with a file and freed again.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from wire import PyzServer, RawClient, login

from lanchat import protocol
from lanchat.core.history import SqliteHistory, StorageError

FAILED = "cannot write the history file"
RECOVERED = "takes writes again"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of its own, unmounted after the test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no block left; return it (delete it to free)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (b"\0" * 65536, b"\0" * 512):
            try:
                while True:
                    os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def pyz_server(pyz: Path, small_disk: Path, tmp_path: Path) -> Iterator[PyzServer]:
    """A pyz server whose history is on the small disk (and whose log is not)."""
    server = PyzServer(
        str(pyz), "--history-db", str(small_disk / "history.sqlite3"),
        "--log-file", str(tmp_path / "server.log"), "--rate", "1000", "--burst", "1000",
    )  # fmt: skip
    try:
        yield server
    finally:
        server.kill()  # before the disk is unmounted


def say(client: RawClient, text: str, **extra: Any) -> None:
    client.send({"type": "say", "text": text, **extra})


def test_a_full_disk_refuses_messages_with_not_stored_and_ids_never_repeat(
    pyz_server: PyzServer, small_disk: Path, tmp_path: Path
) -> None:
    address = pyz_server.start()
    alice, _ = login(address, "alice")
    bob, _ = login(address, "bob")
    alice.expect("join", name="bob")
    filler = fill(small_disk)

    say(alice, "lost 1", ref=1)  # a fresh history: the first id needs a block reserved
    alice.expect("error", code="not_stored", ref=1)
    say(alice, "psst", to="bob", ref=2)  # no id can be handed out without that block
    alice.expect("error", code="not_stored", ref=2)
    say(alice, "lost 2", ref=3)
    alice.expect("error", code="not_stored", ref=3)
    login(address, "carol")  # logging in still works: its token stays in memory
    for other in (alice, bob):
        other.expect("join", name="carol")
    alice.send({"type": "who"})
    assert alice.expect("online")["names"] == ["alice", "bob", "carol"]
    log = tmp_path / "server.log"
    assert log.read_text().count(FAILED) == 1, "logged once per episode, not per message"

    filler.unlink()
    seen: List[int] = []
    say(alice, "kept 1", ref=4)
    seen.append(alice.expect("message", ref=4)["id"])
    bob.expect("message", text="kept 1")  # and nothing (no leave, no lost message) before it
    say(alice, "psst again", to="bob", ref=5)
    seen.append(alice.expect("message", ref=5)["id"])
    bob.expect("message", text="psst again")
    assert log.read_text().count(RECOVERED) == 1

    pyz_server.stop()
    address = pyz_server.start()
    alice, welcome = login(address, "alice")
    assert [m["text"] for m in welcome["history"]] == ["kept 1"]
    say(alice, "after the restart", ref=6)
    assert alice.expect("message", ref=6)["id"] > max(seen)
    assert log.read_text().count(FAILED) == 1


def test_a_failed_reservation_hands_out_no_id(small_disk: Path) -> None:
    db = small_disk / "ids.sqlite3"
    history = SqliteHistory(db)
    try:
        filler = fill(small_disk)
        for _ in range(3):
            with pytest.raises(StorageError):
                history.next_id()
        filler.unlink()
        handed_out = [history.next_id() for _ in range(5)]  # as for private messages
        frame = protocol.message(history.next_id(), 1764000000.0, "bob", "stored", room="#general")
        history.add(frame, "bob", None)
        handed_out.append(frame["id"])
    finally:
        history.close()
    assert handed_out == sorted(set(handed_out))
    reopened = SqliteHistory(db)
    try:
        assert reopened.next_id() > max(handed_out)
    finally:
        reopened.close()
