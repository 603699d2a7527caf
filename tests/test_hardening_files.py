"""Files and finding: password files, private history files, history per host, and telling
a lanchat server from something else on a port.

Most tests run the built pyz as a user would; the rules behind them are also tested
in-process, case by case.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import free_port, pyz_command
from test_durability import login_frame, proof
from wire import RawClient, start_pyz_server

from lanchat.password import PasswordFileError, read_password

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
    proc, address = start_pyz_server(
        str(pyz), *COMMANDS["server"][1:], "--port", str(free_port()),
        "--password-file", str(secret), env=without_password_env(),
    )  # fmt: skip
    try:
        client = RawClient(address)
        hello = client.expect("hello", auth="password")
        client.send(login_frame("bob", auth=proof("sesame", hello["nonce"], "bob")))
        client.expect("welcome")
    finally:
        proc.kill()
        proc.communicate(timeout=10)


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
