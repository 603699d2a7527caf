"""The lanchat client shows a notice (protocol 4.4) apart from what people say, as IRC
clients do: `-bob- text`, in the curses window (a real pty, read with pyte) and in plain
mode (pipes), for a room's notice, a private one, and one replayed from the history.
The built pyz client and server; the notices are sent by `wire.RawClient`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import drivers
import pytest
from drivers import PipedClient, PtyClient, client_argv
from wire import RawClient, login

from lanchat import protocol

pytestmark = pytest.mark.pyz

# The shared fixtures, made this module's own.
server = drivers.server
clients = drivers.clients


def notice(sender: RawClient, text: str, **fields: str) -> None:
    """`sender` says `text` as a notice, and sees it relayed."""
    sender.send({**protocol.say(text, **fields), "notice": True, "ref": text})
    sender.expect("message", ref=text)


def test_the_window_shows_notices_with_dashes(
    server: tuple, clients: Callable[..., PtyClient]
) -> None:
    _, address = server
    bot, _ = login(address, "ci")
    notice(bot, "build 811 passed")
    bob = clients(address, "bob")
    bob.wait_for("-ci- build 811 passed")  # from the history
    bot.expect("join", name="bob")
    notice(bot, "build 812 passed")
    bob.wait_for("-ci- build 812 passed")
    notice(bot, "your build broke", to="bob")
    bob.wait_for("[private] -ci- your build broke")
    bot.send(protocol.say("an ordinary word"))
    bob.wait_for("ci: an ordinary word")


def test_plain_mode_prints_notices_with_dashes(pyz: Path, server: tuple) -> None:
    _, address = server
    bot, _ = login(address, "ci")
    notice(bot, "build 811 passed")
    bob = PipedClient(client_argv(pyz, address, "bob"))
    try:
        line = bob.wait_line("-ci- build 811 passed")
        assert line.endswith(" #general -ci- build 811 passed")
        bot.expect("join", name="bob")
        notice(bot, "build 812 passed")
        assert bob.wait_line("-ci- build 812 passed").endswith(" #general -ci- build 812 passed")
        notice(bot, "your build broke", to="bob")
        assert bob.wait_line("your build broke").endswith(" -ci -> bob (private)- your build broke")
        bob.close_stdin()
        code, _, err = bob.finish()
        assert code == 0, err
    finally:
        bob.kill()
