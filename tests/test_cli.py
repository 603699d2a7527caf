"""The command line as a user meets it: `python -m lanchat` and the built pyz.

Each case runs both ways, in a subprocess, so exit codes and stdout/stderr are the
real ones. Nothing here starts a server: only --version, --help and bad arguments.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Sequence

import pytest
from conftest import ROOT, pyz_command

RunLanchat = Callable[..., "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


@pytest.fixture(params=["module", pytest.param("pyz", marks=pytest.mark.pyz)])
def lanchat(request: pytest.FixtureRequest, tmp_path: Path) -> RunLanchat:
    """Run lanchat with arguments, as `python -m lanchat` from the repo root or as the pyz."""
    if request.param == "module":
        return lambda *args: _run([sys.executable, "-m", "lanchat", *args], ROOT)
    request.getfixturevalue("pyz")  # fails clearly when the pyz was not built
    # Run from elsewhere, so the repo's own lanchat/ cannot be what answers.
    return lambda *args: _run(pyz_command(*args), tmp_path)


def test_version(lanchat: RunLanchat) -> None:
    """--version prints the application version on stdout and exits 0."""
    result = lanchat("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, "lanchat 4.4.0\n", "")


def test_help_lists_the_commands(lanchat: RunLanchat) -> None:
    """--help exits 0 and names every subcommand."""
    result = lanchat("--help")
    assert result.returncode == 0, result.stderr
    for word in ("usage: lanchat", "server", "client", "discover", "--version"):
        assert word in result.stdout
    assert result.stderr == ""


HELP_OPTIONS = {
    "server": [
        "--bind",
        "--port",
        "--name",
        "--max-clients",
        "--max-per-address",
        "--worker-idle-timeout",
        "--history",
        "--login-timeout",
        "--idle-timeout",
        "--rate",
        "--burst",
        "--max-backlog",
        "--no-discovery",
        "--log-level",
        "--log-file",
        "--log-messages",
        "--max-rest",
        "--history-db",
        "--no-history",
        "--password-file",
    ],
    "client": [
        "--name",
        "--host",
        "--port",
        "--server",
        "--plain",
        "--log-file",
        "--password-file",
    ],
    "discover": ["--json", "--host", "--port", "--timeout"],
}


@pytest.mark.parametrize("command", sorted(HELP_OPTIONS))
def test_command_help_mentions_its_options(lanchat: RunLanchat, command: str) -> None:
    """`lanchat COMMAND --help` exits 0 and documents each option of that command."""
    result = lanchat(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: lanchat {command}" in result.stdout
    for option in HELP_OPTIONS[command]:
        assert option in result.stdout, f"{command} --help does not mention {option}"


BAD_ARGUMENTS: List[Sequence[str]] = [
    (),  # no subcommand
    ("--bogus",),
    ("chat",),
    ("server", "--bogus"),
    ("server", "--port", "abc"),
    ("server", "--port", "0"),
    ("server", "--port", "-1"),
    ("server", "--port", "65506"),  # the 30 ports above it would not exist
    ("server", "--max-clients", "0"),
    ("server", "--max-clients", "many"),
    ("server", "--max-per-address", "0"),
    ("server", "--worker-idle-timeout", "0"),
    ("server", "--history", "49"),  # below the contract's 50
    ("server", "--burst", "19"),  # below the contract's 20
    ("server", "--login-timeout", "0"),
    ("server", "--idle-timeout", "nan"),
    ("server", "--rate", "inf"),
    ("server", "--log-level", "loud"),
    ("server", "--rooms", "general,a b"),  # 4.2: room names follow the name rules
    ("server", "--default-room", "#"),
    ("server", "--max-joined", "0"),
    ("server", "--max-rooms", "0"),
    ("server", "--max-room-members", "-1"),
    ("server", "--room-linger", "0"),
    ("server", "--port"),
    ("client", "--port", "abc"),
    ("client", "--port", "0"),
    ("client", "extra"),
    ("discover", "--timeout", "0"),
    ("discover", "--timeout", "-1"),
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=lambda args: " ".join(args) or "(none)")
def test_bad_argument_exits_2_with_one_error_line(lanchat: RunLanchat, args: Sequence[str]) -> None:
    """A bad argument: exit code 2, nothing on stdout, usage and one `error:` line on stderr."""
    result = lanchat(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0] == lines[-1], "the error is the last thing said"
    assert errors[0].startswith("lanchat")
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("usage: lanchat")


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("server", "--port", "abc"), ["--port", "abc"]),
        (("server", "--port", "0"), ["--port", "0"]),
        (("server", "--max-clients", "0"), ["--max-clients", "0"]),
        (("server", "--bogus"), ["--bogus"]),
        ((), ["COMMAND"]),
    ],
)
def test_error_line_names_the_culprit(
    lanchat: RunLanchat, args: Sequence[str], mentions: List[str]
) -> None:
    """The one error line says which argument was wrong."""
    error_line = lanchat(*args).stderr.splitlines()[-1]
    for word in mentions:
        assert word in error_line
