"""A real irssi (in tmux) logs in to the built pyz's IRC gateway by SASL PLAIN under an
operator's registered name, with the name password its owner set from a lanchat client,
and acts as an operator (skipped where irssi or tmux is not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_irc_pyz import servers, start_irc_server, tmux  # noqa: F401 (fixture)
from wire import RawClient
from wire43 import next_of, register, welcome_43

SECRET = "correct horse battery"

IRSSI_CONFIG = """
servers = (
  { address = "127.0.0.1"; chatnet = "lanchat"; port = "{port}"; use_tls = "no";
    autoconnect = "yes"; }
);
chatnets = {
  lanchat = { type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "alice";
              sasl_password = "{secret}"; nick = "alice"; };
};
settings = { core = { nick = "alice"; real_name = "Alice"; user_name = "alice"; }; };
"""


def wait_screen(session: str, text: str) -> None:
    """Wait until the tmux pane shows the text (20 s at the most)."""
    deadline = time.monotonic() + 20
    while text not in tmux("capture-pane", "-p", "-t", session):
        assert time.monotonic() < deadline, f"{text!r} not on screen"
        time.sleep(0.1)


@pytest.mark.skipif(not (shutil.which("irssi") and shutil.which("tmux")), reason="no irssi/tmux")
def test_irssi_logs_in_by_sasl_as_an_operator_and_bans(
    pyz: Path,
    servers,  # noqa: F811
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    port, irc_port = start_irc_server(servers, "--operator", "alice")
    address = ("127.0.0.1", port)
    owner, _ = welcome_43(address, "alice")
    register(owner, "alice")
    owner.send({"type": "name_password", "password": SECRET, "ref": "p"})
    owner.expect("name_password", ref="p")
    owner.send({"type": "quit"})
    owner.expect_closed()
    lena = RawClient(address)
    lena.expect("hello")
    lena.send({"type": "login", "name": "lena", "version": "4.3.0", "rooms": ["#general"]})
    lena.expect("welcome")
    home = tmp_path / "irssi"
    home.mkdir()
    config = IRSSI_CONFIG.replace("{port}", str(irc_port)).replace("{secret}", SECRET)
    (home / "config").write_text(config)
    session = f"irc-sasl-{os.getpid()}-{irc_port}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", f"irssi --home={home}")
    try:
        next_of(
            lena, "join", name="alice", room="#general"
        )  # irssi is in, under the registered name
        lena.send({"type": "whois", "name": "alice", "ref": "w"})
        whois = next_of(lena, "whois", ref="w")
        assert whois["registered"] is True and whois["operator"] is True
        tmux("send-keys", "-t", session, "/window goto #general", "Enter")
        tmux("send-keys", "-t", session, "/names", "Enter")
        wait_screen(session, "@alice")
        tmux("send-keys", "-t", session, "/ban lena", "Enter")
        closing = lena.expect_closed()
        assert closing[0]["code"] == "banned" and closing[0]["by"] == "alice"
        wait_screen(session, "+b lena!*@*")  # irssi's /ban of a nick it knows no host of
        tmux("send-keys", "-t", session, "/quit", "Enter")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, timeout=10)
        lena.close()
