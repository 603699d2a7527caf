"""The lanchat 4.0.0, 4.1.0 and 4.2.0 clients themselves, built from this repository's
history, against today's server: they keep working. The 4.0 and 4.1 clients see the
default room only; the 4.2 client speaks rooms but not 4.3 (no nick, notice ...).

Each is built from its commit with `git archive` and the venv's shiv, the way `make pyz`
builds; a clone without that history (a shallow one) skips these tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from conftest import ROOT
from test_rooms import rooms_login
from wire import PyzServer
from wire43 import welcome_43

# The last commit of each release.
RELEASES = {"4.0.0": "467b087", "4.1.0": "297df8c", "4.2.0": "d85cac2"}


@pytest.fixture(scope="session", params=sorted(RELEASES))
def old_pyz(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client of an older release, as a zipapp."""
    version, commit = request.param, RELEASES[request.param]
    if shutil.which("git") is None or shutil.which("tar") is None:
        pytest.skip("git and tar are needed to build an older release")
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        timeout=30,
    )
    if known.returncode != 0:
        pytest.skip(f"commit {commit} ({version}) is not in this clone's history")
    stage = tmp_path_factory.mktemp(f"lanchat-{version}")
    site = stage / "site-packages"
    site.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "lanchat"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    subprocess.run(["tar", "-x", "-C", str(site)], input=archive.stdout, check=True, timeout=60)
    built = stage / "lanchat.pyz"
    shiv = Path(sys.executable).with_name("shiv")
    entry = ("-e", "lanchat.__main__:main", "-p", "/usr/bin/env python3")
    subprocess.run(
        [str(shiv), "--site-packages", str(site), "--reproducible", *entry, "-o", str(built)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    said = subprocess.run(
        [sys.executable, str(built), "--version"], capture_output=True, text=True, timeout=60
    )
    assert said.stdout == f"lanchat {version}\n", said.stderr
    return built


def start_client(old_pyz: Path, address: Tuple[str, int], name: str) -> subprocess.Popen[str]:
    """The old client in plain mode, logged in as `name` once its stdin is fed."""
    where = ("--host", "127.0.0.1", "--port", str(address[1]))
    return subprocess.Popen(
        [sys.executable, str(old_pyz), "client", "--plain", "--name", name, *where],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def server(pyz: Path) -> Iterator[PyzServer]:
    running = PyzServer(str(pyz), "--no-history")
    try:
        yield running
    finally:
        running.kill()


def test_an_old_client_chats_in_the_default_room_only(old_pyz: Path, server: PyzServer) -> None:
    address = server.start()
    ann = rooms_login(address, "ann", ["#general", "#dev"])
    old = start_client(old_pyz, address, "olga")
    try:
        ann.expect("join", name="olga", room="#general", timeout=30)
        for room, text in (("#dev", "only for dev"), ("#general", "hello olga")):
            ann.send({"type": "say", "room": room, "text": text})
            ann.expect("message", text=text, room=room)
        ann.send({"type": "part", "room": "#general"})
        ann.expect("parted")
        ann.send({"type": "join", "room": "#general"})
        ann.expect("joined", room="#general")
        assert old.stdin is not None
        old.stdin.write("hi from an old client\n")
        old.stdin.flush()
        ann.expect("message", text="hi from an old client", room="#general", timeout=30)
        out, err = old.communicate(input="", timeout=30)
    finally:
        if old.poll() is None:
            old.kill()
            old.communicate(timeout=10)
    assert old.returncode == 0, err
    lines = out.splitlines()
    assert any(line.endswith("ann: hello olga") for line in lines), out
    assert not any("only for dev" in line for line in lines), "#dev never reaches it"
    # a part: a plain leave for 4.0 and 4.1, a leave of #general for 4.2
    assert any(re.search(r"ann left( #general)?$", line) for line in lines), out
    assert any(line.endswith("olga: hi from an old client") for line in lines), out


def test_an_old_client_sees_a_rename_as_a_leave_and_a_join(
    old_pyz: Path, server: PyzServer
) -> None:
    address = server.start()
    ann, _ = welcome_43(address, "ann", rooms=[])
    old = start_client(old_pyz, address, "olga")
    try:
        ann.expect("join", name="olga", room="#general", timeout=30)
        ann.send({"type": "nick", "name": "anna", "ref": "n"})
        ann.expect("nick", old="ann", new="anna", ref="n")
        ann.send({"type": "say", "room": "#general", "text": "same person"})
        ann.expect("message", text="same person")
        # olga's own line comes back to her after ann's (the server keeps each client's
        # order), and at the end of its input the client leaves once its line is echoed
        assert old.stdin is not None
        old.stdin.write("seen\n")
        old.stdin.flush()
        ann.expect("message", text="seen", timeout=30)
        out, err = old.communicate(input="", timeout=30)
    finally:
        if old.poll() is None:
            old.kill()
            old.communicate(timeout=10)
    assert old.returncode == 0, err
    lines = out.splitlines()
    left = next(i for i, line in enumerate(lines) if re.search(r"ann left$", line))
    joined = next(i for i, line in enumerate(lines) if re.search(r"anna joined$", line))
    said = next(i for i, line in enumerate(lines) if line.endswith("anna: same person"))
    assert left < joined < said, out
