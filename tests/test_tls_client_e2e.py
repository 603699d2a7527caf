"""Trust on first use end to end: the built pyz client against the built pyz server run
with `--tls --tls-cert --tls-key` (throwaway certificates made by openssl), each client
with a config folder of its own (its known_servers). Plain mode and scripts accept a new
server saying so on stderr and exit 1 on a refused certificate; the window asks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import pytest
import tlscerts
from conftest import free_port, pyz_command
from drivers import (
    WAIT,
    PlainClient,
    Proxy,
    PtyClient,
    client_argv,
    client_env,
    stop_server,
    wait_until,
)
from tlscerts import Certificate
from wire import start_pyz_server

pytestmark = pytest.mark.pyz

Address = Tuple[str, int]


certificates = tlscerts.certificates  # the shared fixture, made this module's own


class Servers:
    """pyz servers: `start(name, certificate)` over TLS, `start(name)` plain, on a free
    port; `restart` one on its port (with its history) and maybe another certificate."""

    def __init__(self, pyz: Path) -> None:
        self.pyz = pyz
        self.running: Dict[Address, subprocess.Popen[str]] = {}

    def start(self, name: str, certificate: Optional[Certificate] = None, port: int = 0) -> Address:
        options = ["--bind", "127.0.0.1", "--port", str(port or free_port()), "--no-discovery",
                   "--no-web", "--name", name, "--log-level", "warning"]  # fmt: skip
        if certificate is not None:
            options += [
                "--tls",
                "--tls-cert",
                str(certificate[0]),
                "--tls-key",
                str(certificate[1]),
            ]
        proc, address = start_pyz_server(str(self.pyz), *options)
        self.running[address] = proc
        return address

    def restart(self, address: Address, name: str, certificate: Certificate) -> None:
        stop_server(self.running.pop(address))
        assert self.start(name, certificate, port=address[1]) == address

    def stop_all(self) -> None:
        for proc in self.running.values():
            stop_server(proc)


@pytest.fixture
def servers(pyz: Path) -> Iterator[Servers]:
    started = Servers(pyz)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    """A client environment with its own config folder (identity, known_servers)."""
    return dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))


def known_path(env: Dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"], "lanchat", "known_servers")


def remember(env: Dict[str, str], name: str, fingerprint: str) -> None:
    """Write a line of known_servers as an earlier run would have."""
    known_path(env).parent.mkdir(parents=True, exist_ok=True)
    with known_path(env).open("a", encoding="utf-8") as file:
        file.write(f"{name} {fingerprint} 2026-12-01T10:00:00Z 10.0.0.5:42070\n")


def trusted(env: Dict[str, str], name: str) -> Optional[str]:
    """The fingerprint known_servers holds for this server name, if any."""
    if not known_path(env).exists():
        return None
    for line in known_path(env).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == name:
            return parts[1]
    return None


def say(
    pyz: Path, address: Address, env: Dict[str, str], text: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """A plain-mode client that says one line and leaves."""
    return subprocess.run(
        client_argv(pyz, address, "bob", "--plain", *extra),
        input=text + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT * 2,
    )


def test_chat_over_tls_with_the_first_use_accepted_and_said_on_stderr(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, _ = certificates
    address = servers.start("den", a)
    alice_env = dict(env, XDG_CONFIG_HOME=env["XDG_CONFIG_HOME"] + "-alice")
    alice = PlainClient(pyz, address, "alice", env=alice_env)
    proxy = Proxy(address)  # bob's bytes, as someone on the network reads them
    try:
        wait_until(lambda: alice.has_line(lambda line: "you are alice on den" in line), "alice")
        bob = say(pyz, proxy.address, env, "secret plans over tls")
        assert bob.returncode == 0, bob.stderr
        assert "bob: secret plans over tls" in bob.stdout
        wait_until(lambda: ("bob", "secret plans over tls") in alice.messages(), "the message")
        assert b"secret plans" not in proxy.from_clients, "it crossed the network encrypted"
        assert bob.stderr.count("\n") == 1, bob.stderr
        assert f"server 'den' at 127.0.0.1:{proxy.address[1]}: first connection" in bob.stderr
        assert a[2] in bob.stderr and "now trusted" in bob.stderr
        assert "first connection" in alice.stderr
        assert trusted(env, "den") == a[2]
    finally:
        alice.kill()
        proxy.close()


def test_a_changed_certificate_is_refused_loudly_and_plain_mode_exits_1(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, b = certificates
    first = servers.start("den", a)
    assert say(pyz, first, env, "hello").returncode == 0
    impostor = servers.start("den", b)
    refused = say(pyz, impostor, env, "do not send this")
    assert refused.returncode == 1
    assert "you are bob" not in refused.stdout and "do not send this" not in refused.stdout
    assert refused.stderr.startswith(
        "lanchat: WARNING: the TLS certificate of server 'den' has changed!"
    )
    assert f"trusted: {a[2]} (first seen " in refused.stderr
    assert f"at 127.0.0.1:{first[1]})" in refused.stderr
    assert f"now:     {b[2]} (at 127.0.0.1:{impostor[1]})" in refused.stderr
    assert "lanchat client --forget-server den" in refused.stderr
    assert f"lanchat client --tls-fingerprint {b[2]}" in refused.stderr
    assert trusted(env, "den") == a[2]


def test_a_pinned_fingerprint_is_accepted_and_another_refused(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, b = certificates
    remember(env, "den", a[2])
    address = servers.start("den", b)
    pinned = say(pyz, address, env, "pinned hello", "--tls-fingerprint", b[2].lower())
    assert pinned.returncode == 0, pinned.stderr
    assert "bob: pinned hello" in pinned.stdout
    assert f"the pinned certificate {b[2]} is now trusted" in pinned.stderr
    assert trusted(env, "den") == b[2]
    wrong = say(pyz, address, env, "wrong pin", "--tls-fingerprint", a[2])
    assert wrong.returncode == 1
    assert "is not the pinned one" in wrong.stderr and a[2] in wrong.stderr
    assert "wrong pin" not in wrong.stdout


def test_a_fingerprint_that_is_not_one_is_a_bad_argument(pyz: Path, env: Dict[str, str]) -> None:
    bad = say(pyz, ("127.0.0.1", free_port()), env, "x", "--tls-fingerprint", "SHA256:12:34")
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1].startswith(
        "lanchat client: error: argument --tls-fingerprint"
    )


def test_forget_server_then_the_new_certificate_is_accepted_anew(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, b = certificates
    remember(env, "den", a[2])
    address = servers.start("den", b)
    again = say(pyz, address, env, "after forgetting", "--forget-server", "den")
    assert again.returncode == 0, again.stderr
    assert "bob: after forgetting" in again.stdout
    lines = again.stderr.splitlines()
    assert lines[0] == f"lanchat: forgot server 'den' and its certificate {a[2]}"
    assert "first connection" in lines[1] and b[2] in lines[1]
    assert trusted(env, "den") == b[2]


def test_a_plain_server_is_joined_over_plain_tcp(
    pyz: Path, servers: Servers, env: Dict[str, str]
) -> None:
    address = servers.start("plainden")
    joined = say(pyz, address, env, "no tls here")
    assert joined.returncode == 0, joined.stderr
    assert "bob: no tls here" in joined.stdout
    assert joined.stderr == ""
    assert trusted(env, "plainden") is None


def test_a_server_known_with_tls_that_answers_in_plain_text_is_refused(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, _ = certificates
    remember(env, "den", a[2])
    address = servers.start("den")  # plain TCP, under the known name
    downgraded = say(pyz, address, env, "in the clear")
    assert downgraded.returncode == 1
    assert downgraded.stderr.startswith(
        f"lanchat: WARNING: server 'den' at 127.0.0.1:{address[1]} answered without TLS"
    )
    assert a[2] in downgraded.stderr and "--forget-server den" in downgraded.stderr
    assert "in the clear" not in downgraded.stdout


def test_the_window_asks_on_first_use_and_remembers_a_yes(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, _ = certificates
    address = servers.start("den", a)
    pairs = a[2].split(":", 1)[1].split(":")
    terminal_env = client_env(XDG_CONFIG_HOME=env["XDG_CONFIG_HOME"])
    argv = client_argv(pyz, address, "bob")
    asked = PtyClient(argv, env=terminal_env)
    try:
        asked.wait_for(f"Server 'den' at 127.0.0.1:{address[1]} is new to this client.")
        asked.wait_for(":".join(pairs[:16]) + ":")
        asked.wait_for(":".join(pairs[16:]))
        asked.type("\r")  # Enter alone does not trust
        asked.type("n")
        assert asked.wait_exit() == 1
        assert "was not trusted" in asked.output.decode("utf-8", "replace")
        assert trusted(env, "den") is None
    finally:
        asked.close()
    trusting = PtyClient(argv, env=terminal_env)
    try:
        trusting.wait_for("is new to this client")
        trusting.type("y")
        trusting.wait_for("you are bob on den")
        trusting.wait_for(lambda lines: lines[0].rstrip().endswith("| connected, TLS"))
        assert trusted(env, "den") == a[2]
        trusting.line("/quit")
        assert trusting.wait_exit() == 0
    finally:
        trusting.close()
    known = PtyClient(argv, env=terminal_env)
    try:
        known.wait_for("you are bob on den")
        assert b"is new to this client" not in known.output
    finally:
        known.close()


def test_a_restart_over_tls_resumes_and_a_new_certificate_on_reconnect_is_refused(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, b = certificates
    address = servers.start("den", a)
    roamer = PlainClient(pyz, address, "roamer", env=env)
    try:
        wait_until(lambda: roamer.has_line(lambda line: "you are roamer on den" in line), "login")
        roamer.type("before the restart")
        wait_until(lambda: ("roamer", "before the restart") in roamer.messages(), "the echo")
        servers.restart(address, "den", a)
        wait_until(
            lambda: roamer.has_line(lambda line: "back online as roamer" in line), "the resume"
        )
        roamer.type("after the restart")
        wait_until(lambda: ("roamer", "after the restart") in roamer.messages(), "the echo")
        servers.restart(address, "den", b)  # the same name and address, another certificate
        assert roamer.wait() == 1
        assert "has changed" in roamer.stderr and b[2] in roamer.stderr
        assert not roamer.has_line(lambda line: line.count("back online as roamer") > 1)
    finally:
        roamer.kill()


def test_discover_finds_a_tls_server_by_its_port_range_with_its_fingerprint(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate]
) -> None:
    """A server run with --no-discovery is found on its host's port range; a TLS one is
    silent there until the client's handshake, so it is asked through TLS."""
    a, _ = certificates
    address = servers.start("den", a)
    found = subprocess.run(
        pyz_command("discover", "--host", "127.0.0.1", "--port", str(address[1]), "--json"),
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
    )
    assert found.returncode == 0, found.stderr
    answers = [json.loads(line) for line in found.stdout.splitlines()]
    [den] = [answer for answer in answers if answer["port"] == address[1]]
    assert (den["name"], den["tls"], den["fingerprint"]) == ("den", True, a[2])
