"""Files and finding: password files, private history files, history per host, and telling
a lanchat server from something else on a port.

Most tests run the built pyz as a user would; the rules behind them are also tested
in-process, case by case.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from conftest import free_port, pyz_command
from wire import RawClient, login, login_frame, proof, start_pyz_server

from lanchat import protocol
from lanchat.chat import app, finder
from lanchat.chat.finder import ServerInfo
from lanchat.core.history import (
    SqliteHistory,
    _make_private,
    adopt_legacy_file,
    default_path,
    host_key,
)
from lanchat.password import PasswordFileError, read_password

Address = Tuple[str, int]
RUN_TIMEOUT = 30.0  # a command that should stop at once; a server that starts runs into it


def run_pyz(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run the pyz to its end; a server that starts instead fails the test by its timeout."""
    return subprocess.run(
        pyz_command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
    )


@contextlib.contextmanager
def pyz_server(
    pyz: Path,
    *args: str,
    bind: str = "127.0.0.1",
    env: Optional[Dict[str, str]] = None,
    prefix: Sequence[str] = (),
) -> Iterator[Address]:
    """A `lanchat.pyz server` (on a free port unless told) while the block runs; its address."""
    if "--port" not in args:
        args += ("--port", str(free_port()))
    proc, address = start_pyz_server(
        str(pyz), "--bind", bind, *args, env=env or without_password_env(), prefix=prefix
    )
    try:
        yield address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def without_password_env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LANCHAT_PASSWORD"}


def stderr_lines(result: subprocess.CompletedProcess) -> List[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --------------------------------------------------------------------------- 9. passwords

COMMANDS = {
    "server": ["server", "--bind", "127.0.0.1", "--no-discovery", "--no-history"],
    "client": ["client", "--plain", "--host", "127.0.0.1", "--name", "bob"],
}

EMPTY = "is empty (its first line is the password)"
BAD_FILES = [
    pytest.param(b"", EMPTY, id="empty"),
    pytest.param(b"\n", EMPTY, id="newline"),
    pytest.param(b"\r\n", EMPTY, id="crlf"),
    pytest.param(b"\nsecret on the second line\n", EMPTY, id="first-line-empty"),
    pytest.param(b"\xff\xfesecret\n", "is not UTF-8 text", id="latin-1"),
]


@pytest.mark.pyz
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("content", "problem"), BAD_FILES)
def test_a_password_file_without_a_password_is_one_line_and_exit_2(
    pyz: Path, tmp_path: Path, command: str, content: bytes, problem: str
) -> None:
    """Never an open server (or a client that cannot log in) from a file with no password."""
    secret = tmp_path / "password"
    secret.write_bytes(content)
    result = run_pyz(
        *COMMANDS[command], "--port", str(free_port()), "--password-file", str(secret),
        env=without_password_env(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result) == [f"lanchat: the password file {secret} {problem}"]
    assert result.stdout == ""


@pytest.mark.pyz
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_password_file_is_one_line_and_exit_2(
    pyz: Path, tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "nowhere"
    result = run_pyz(
        *COMMANDS[command], "--port", str(free_port()), "--password-file", str(missing)
    )
    assert result.returncode == 2, result.stderr
    assert stderr_lines(result) == [
        f"lanchat: cannot read the password file {missing}: No such file or directory"
    ]


@pytest.mark.pyz
def test_the_server_takes_the_password_after_a_byte_order_mark(pyz: Path, tmp_path: Path) -> None:
    """A file an editor saved with a BOM means the password a person types, BOM left out."""
    secret = tmp_path / "password"
    secret.write_bytes("\ufeffsesame\r\n".encode())
    with pyz_server(
        pyz, "--no-discovery", "--no-history", "--password-file", str(secret)
    ) as address:
        client = RawClient(address)
        hello = client.expect("hello", auth="password")
        client.send(login_frame("bob", auth=proof("sesame", hello["nonce"], "bob")))
        client.expect("welcome")


@pytest.mark.parametrize(
    ("content", "password"),
    [
        (b"secret", "secret"),
        (b"secret\n", "secret"),
        (b"secret\r\nsecond line\n", "secret"),
        ("\ufeffsecret\n".encode(), "secret"),
        ("  spaced ✓  \n".encode(), "  spaced ✓  "),  # spaces are part of a password
    ],
)
def test_read_password_takes_the_first_line(tmp_path: Path, content: bytes, password: str) -> None:
    path = tmp_path / "password"
    path.write_bytes(content)
    assert read_password(str(path)) == password


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n", b"\nsecret\n", b"\xc3\x28\n"])
def test_read_password_refuses_a_file_without_one(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "password"
    path.write_bytes(content)
    with pytest.raises(PasswordFileError, match=f"password file {path} "):
        read_password(str(path))


def test_read_password_refuses_what_is_no_file(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing", Path("")):
        with pytest.raises(PasswordFileError, match="cannot read the password file"):
            read_password(str(path))


def test_read_password_without_a_file_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANCHAT_PASSWORD", "from env")
    assert read_password(None) == "from env"
    monkeypatch.setenv("LANCHAT_PASSWORD", "")  # an empty variable is as good as unset
    assert read_password(None) is None
    monkeypatch.delenv("LANCHAT_PASSWORD")
    assert read_password(None) is None


# --------------------------------------------------------------------- 10. private history

UMASK_022 = ["sh", "-c", 'umask 022 && exec "$@"', "sh"]  # the usual umask, whatever ours is


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leave_wal_and_shm(db: Path) -> None:
    """Write to `db` as a plain SQLite program that crashes: its -wal and -shm stay behind."""
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode = WAL')\n"
        "db.execute(\"INSERT OR REPLACE INTO meta (key, value) VALUES ('note', 'x')\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True, timeout=RUN_TIMEOUT)


def store(db: Path, *texts: str) -> None:
    """Keep these room messages in the history file `db`, as a server would."""
    history = SqliteHistory(db)
    try:
        for text in texts:
            history.add(
                protocol.message(history.next_id(), 1.0, "carol", text, room="#general"),
                "carol",
                None,
            )
    finally:
        history.close()


@pytest.mark.pyz
def test_the_history_folder_and_files_are_for_their_owner_only(pyz: Path, tmp_path: Path) -> None:
    data_home = tmp_path / "data"
    env = dict(without_password_env(), XDG_DATA_HOME=str(data_home))
    with pyz_server(pyz, "--no-discovery", env=env, prefix=UMASK_022) as address:
        alice, _ = login(address, "alice")
        alice.send({"type": "say", "text": "for our eyes only"})
        alice.expect("message", text="for our eyes only")
        folder = data_home / "lanchat"
        files = {path.name: mode(path) for path in folder.iterdir()}
    (db,) = [name for name in files if name.endswith(".sqlite3")]
    assert {db, db + "-wal"} <= set(files)
    assert mode(folder) == 0o700
    assert files == dict.fromkeys(files, 0o600)


@pytest.mark.pyz
def test_looser_history_files_are_tightened_and_a_chosen_folder_is_left_alone(
    pyz: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "chosen"
    folder.mkdir()
    folder.chmod(0o755)  # the user's own folder: how open it is, is their business
    db = folder / "chat.sqlite3"
    store(db, "said before")
    leave_wal_and_shm(db)
    companions = [db, folder / "chat.sqlite3-wal", folder / "chat.sqlite3-shm"]
    for path in companions:
        path.chmod(0o644)
    with pyz_server(pyz, "--no-discovery", "--history-db", str(db), prefix=UMASK_022) as address:
        _, welcome = login(address, "alice")
        modes = {path.name: mode(path) for path in companions if path.exists()}
    assert [message["text"] for message in welcome["history"]] == ["said before"]
    assert modes == {db.name: 0o600, db.name + "-wal": 0o600, db.name + "-shm": 0o600}
    assert mode(folder) == 0o755


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_only_regular_files_are_tightened(tmp_path: Path) -> None:
    """--history-db /dev/null must never chmod the system's /dev/null (here: a pipe)."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    pipe.chmod(0o644)
    _make_private(pipe)
    assert mode(pipe) == 0o644


# ----------------------------------------------------------------- 12. one file per host


def as_host(name: str) -> List[str]:
    """A command prefix that runs the rest on a "machine" of this host name (root only)."""
    return ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh"]


def can_rename_hosts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*as_host("probe"), "true"], capture_output=True, timeout=RUN_TIMEOUT)
    return probe.returncode == 0


@pytest.mark.pyz
def test_two_machines_that_share_a_home_each_run_a_default_server(
    pyz: Path, tmp_path: Path
) -> None:
    """Two hosts, one home directory, the same port on each, no options: both start."""
    if not can_rename_hosts():
        pytest.skip("needs 'unshare --uts' (root) to give a process another host name")
    shared = tmp_path / "shared-data"
    env = dict(without_password_env(), XDG_DATA_HOME=str(shared))
    port = free_port()
    options = ["--port", str(port), "--no-discovery"]
    with contextlib.ExitStack() as running:
        for host, bind in (("hosta", "127.0.0.1"), ("hostb", "127.0.0.2")):
            server = pyz_server(pyz, *options, bind=bind, env=env, prefix=as_host(host))
            address = running.enter_context(server)
            assert address[1] == port
            login(address, "alice")
    assert sorted(path.name for path in (shared / "lanchat").glob("*.sqlite3")) == [
        f"history-hosta-{port}.sqlite3",
        f"history-hostb-{port}.sqlite3",
    ]


@pytest.mark.pyz
def test_the_history_of_the_file_keyed_by_port_only_moves_to_this_hosts_file(
    pyz: Path, tmp_path: Path
) -> None:
    data_home = tmp_path / "data"
    port = free_port()
    store(data_home / "lanchat" / f"history-{port}.sqlite3", "said under lanchat 4.0")
    env = dict(without_password_env(), XDG_DATA_HOME=str(data_home))
    with pyz_server(pyz, "--port", str(port), "--no-discovery", env=env) as address:
        _, welcome = login(address, "alice")
    assert [message["text"] for message in welcome["history"]] == ["said under lanchat 4.0"]
    assert [path.name for path in (data_home / "lanchat").glob("*.sqlite3")] == [
        f"history-{host_key()}-{port}.sqlite3"
    ]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("vm", "vm"),
        ("Lab-PC-07.cs.example.org", "lab-pc-07"),
        ("we/ird name", "we_ird_name"),
        ("", "localhost"),
    ],
)
def test_host_key_is_the_short_host_name_safe_in_a_file_name(host: str, key: str) -> None:
    assert host_key(host) == key


def test_the_default_path_differs_by_host_in_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    paths = {default_path(host) for host in ("hosta", "hostb")}
    assert paths == {
        str(tmp_path / "lanchat" / "history-hosta-{port}.sqlite3"),
        str(tmp_path / "lanchat" / "history-hostb-{port}.sqlite3"),
    }


def test_a_port_only_file_in_use_elsewhere_stays_where_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 4.0 server of another machine (shared home) still holds it: it is not taken away."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    legacy = tmp_path / "lanchat" / "history-5000.sqlite3"
    store(legacy, "hello")
    other_server = SqliteHistory(legacy)
    try:
        assert adopt_legacy_file(5000) is None
    finally:
        other_server.close()
    assert legacy.is_file()
    moved = adopt_legacy_file(5000)
    assert moved == Path(default_path().replace("{port}", "5000"))
    assert not legacy.exists()
    store(legacy, "written by a 4.0 server after the move")
    assert adopt_legacy_file(5000) is None  # this host's own file is never replaced
    history = SqliteHistory(moved)
    try:
        assert [message["text"] for message in history.recent("#general", 10)] == ["hello"]
    finally:
        history.close()


# ------------------------------------------------------------- 14. finding the server

CLIENT = ["client", "--plain", "--host", "127.0.0.1", "--name", "bob"]


class SilentHandler(http.server.BaseHTTPRequestHandler):
    """An HTTP server's handler: it speaks only after a request, and logs nothing."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    """A port of 127.0.0.1 where Python's http.server answers."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="http-server")
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.mark.pyz
def test_a_client_at_a_silent_server_says_it_is_not_lanchat(pyz: Path, http_port: int) -> None:
    result = run_pyz(*CLIENT, "--port", str(http_port))
    assert result.returncode == 1
    assert stderr_lines(result) == [
        f"lanchat: 127.0.0.1:{http_port} sent no hello within 1 s: "
        "it is not a lanchat server, or a stuck one"
    ]


@pytest.mark.pyz
@pytest.mark.parametrize(
    "banner",
    [
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="ssh"),
        pytest.param(b"220 mail.example.org ESMTP", id="line-not-ended-yet"),
        pytest.param(b"\x00\x00\x00\x0a\x03binary", id="binary"),
    ],
)
def test_a_client_at_a_server_with_a_banner_says_it_is_not_lanchat(
    pyz: Path, banner: bytes
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(RUN_TIMEOUT)
        port = listener.getsockname()[1]
        client = subprocess.Popen(
            pyz_command(*CLIENT, "--port", str(port)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            peer, _ = listener.accept()
            with peer:  # open until the client has judged the banner
                peer.sendall(banner)
                _, err = client.communicate(timeout=RUN_TIMEOUT)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate(timeout=10)
    assert client.returncode == 1
    assert err.splitlines() == [f"lanchat: 127.0.0.1:{port} is not a lanchat server"]


@pytest.mark.pyz
@pytest.mark.parametrize("discovery", [True, False], ids=["udp-probe", "tcp-scan"])
def test_discover_with_port_finds_a_server_outside_the_default_range(
    pyz: Path, discovery: bool
) -> None:
    port = free_port()  # an ephemeral port, far from 42069-42099
    options = ["--port", str(port), "--no-history", "--name", "far"]
    with pyz_server(pyz, *options, *([] if discovery else ["--no-discovery"])) as address:
        result = run_pyz(
            "discover", "--host", "127.0.0.1", "--port", str(port), "--json", "--timeout", "0.5"
        )
    assert result.returncode == 0, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(server["name"], server["port"]) for server in found] == [("far", address[1])]


def test_a_client_with_port_but_no_host_looks_for_servers_of_that_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--port alone is the servers' base port for LAN discovery (no probe leaves the test)."""
    asked: List[int] = []

    def find_servers(port: int = protocol.DEFAULT_PORT) -> List[ServerInfo]:
        asked.append(port)
        return [ServerInfo("far", "127.0.0.1", port, protocol.VERSION)]

    monkeypatch.setattr(finder, "find_servers", find_servers)
    for given, base in ((5000, 5000), (None, protocol.DEFAULT_PORT)):
        args = argparse.Namespace(host=None, port=given, server=None)
        assert [server.port for server in app.find_candidates(args)] == [base]
    assert asked == [5000, protocol.DEFAULT_PORT]


@pytest.mark.parametrize(
    ("start", "may_be_a_frame"),
    [
        (b"", True),
        (b"  \r\n", True),  # blank lines come before frames
        (b"{", True),
        (b' \n{"type":', True),
        (b"SSH-2.0", False),
        (b"HTTP/1.0 400", False),
        (b"\x00\x01", False),
        (b"[1]", False),
    ],
)
def test_may_start_a_frame_judges_a_line_by_its_first_bytes(
    start: bytes, may_be_a_frame: bool
) -> None:
    assert protocol.may_start_a_frame(start) is may_be_a_frame
    assert protocol.may_start_a_frame(bytearray(start)) is may_be_a_frame
