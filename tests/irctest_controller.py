"""irctest's controller for lanchat: how irctest (a public IRC server test suite, 0.1.2
from PyPI) starts the built `lanchat.pyz` with its IRC gateway and makes accounts on it.

irctest asks a controller to `run` a server on a port it picked, to `kill` it after each
test, and to `registerUser` (an account for SASL). Here a server is `lanchat.pyz server
--irc-port PORT` on 127.0.0.1 with no history, web or discovery; an account is a lanchat
registered name with a name password (protocol 4.4), set by a lanchat client that proves
its identity key. `tests/irctest_run.py` runs the suite with it (`make irctest`); it also
works with irctest's own command line (`python -m irctest irctest_controller`, with
irctest, its dependencies, `tests/` and the repository on PYTHONPATH, and LANCHAT_PYZ).
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Tuple

from irctest.basecontrollers import (  # type: ignore[import-not-found]
    BaseServerController,
    DirectoryBasedController,
    NotImplementedByController,
)
from irctest.runner import ImplementationChoice  # type: ignore[import-not-found]
from wire import RawClient

from lanchat import identity, protocol

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0  # seconds for the server to say where it listens
CLIENT_TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LanchatController(BaseServerController, DirectoryBasedController):  # type: ignore[misc]
    """Runs `lanchat.pyz server` with IRC on the port irctest picked."""

    software_name = "lanchat"
    supported_sasl_mechanisms = frozenset({"PLAIN"})
    pyz = os.environ.get("LANCHAT_PYZ", str(ROOT / "dist" / "lanchat.pyz"))

    def run(  # type: ignore[no-untyped-def]
        self,
        hostname: str,
        port: int,
        password: Optional[str] = None,
        ssl: bool = False,
        restricted_metadata_keys=None,
        valid_metadata_keys=None,
        invalid_metadata_keys=None,
    ) -> None:
        """Start the server; return once its start-up output names the IRC port."""
        if valid_metadata_keys or invalid_metadata_keys or restricted_metadata_keys:
            raise NotImplementedByController("METADATA")
        if ssl:
            raise NotImplementedByController("STARTTLS")
        self.create_config()
        self.port = port
        self.lanchat_port = _free_port()
        options = ["--no-history", "--no-web", "--no-discovery", "--bind", "127.0.0.1"]
        options += ["--port", str(self.lanchat_port), "--irc-port", str(port)]
        if password is not None:
            with self.open_file("password", "w") as file:
                file.write(password + "\n")
            options += ["--password-file", os.path.join(self.directory, "password")]
        self.log = self.open_file("server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, self.pyz, "server", *options],
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        try:
            self._wait_for_irc_line(port)
        except AssertionError:
            self.kill()  # irctest runs no tearDown after a failed setUp
            raise
        self.port_open = True

    def _wait_for_irc_line(self, port: int) -> None:
        """Read the start-up output up to `IRC: 127.0.0.1:PORT` (another port: the one
        irctest picked was taken meanwhile, and irctest would talk to something else)."""
        out = b""
        deadline = time.monotonic() + START_TIMEOUT
        while b"IRC: " not in out or not out.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"lanchat did not start in time: {out!r}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
            if ready and not chunk:
                raise AssertionError(f"lanchat ended at start: {out!r}")
            out += chunk
        said = next(x for x in out.decode().splitlines() if x.startswith("IRC: "))
        if said != f"IRC: 127.0.0.1:{port}":
            raise AssertionError(f"lanchat listens elsewhere than asked: {said}")

    def wait_for_port(self) -> None:
        """The port is open once `run` returned (it waited for the start-up line)."""

    def kill_proc(self) -> None:
        """Stop the server as an operator does (SIGTERM), killing it if it hangs."""
        super().kill_proc()
        self.log.close()

    def kill(self) -> None:
        """Stop the server and close its output."""
        proc = self.proc
        super().kill()
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    def registerUser(self, case: Any, username: str, password: Optional[str] = None) -> None:
        """An account is a registered lanchat name with a name password: a lanchat client
        logs in under `username` with its identity key, registers the name and sets the
        password. lanchat takes name passwords of 8 to 128 characters: for another length
        the account cannot be made, and the test cannot be run as written."""
        if password is not None and not 8 <= len(password) <= 128:
            raise ImplementationChoice(
                f"name passwords are 8 to 128 characters; irctest's is {len(password)}"
            )
        client, challenge = self._connect()
        try:
            secret = hashlib.sha256(b"irctest " + username.encode()).digest()
            proof = identity.prove(secret, challenge, username)
            client.send(protocol.login(username, rooms=[], identity=proof))
            client.expect("welcome", name=username)
            client.send(protocol.register(ref="register"))
            _expect_answer(client, "registered", "register")
            client.send(protocol.name_password(password, ref="password"))
            _expect_answer(client, "name_password", "password")
        finally:
            client.close()

    def _connect(self) -> Tuple[RawClient, str]:
        client = RawClient(("127.0.0.1", self.lanchat_port), CLIENT_TIMEOUT)
        return client, str(client.expect("hello")["challenge"])


def _expect_answer(client: RawClient, kind: str, ref: str) -> None:
    """Read past other frames (joins, presence) to the answer of `ref`, which must be
    of this type."""
    while True:
        frame = client.recv()
        if frame.get("ref") == ref:
            assert frame["type"] == kind, frame
            return


def get_irctest_controller_class() -> type:
    """What irctest's command line asks the controller module for."""
    return LanchatController
