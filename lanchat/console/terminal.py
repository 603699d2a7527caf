"""The console's loop: the server serves in its own thread, the console shows it.

The main thread only reads snapshots (the log buffer, `people()`, the room list) a few
times a second, draws them (`lanchat.console.tty`, which never holds up the server's
threads, however slow the terminal) and calls the operator API for a command. Ctrl-C,
`/shutdown`, SIGTERM and SIGHUP stop the server cleanly; the terminal is restored on
every way out.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional, Protocol

from lanchat.console.commands import Shutdown
from lanchat.console.logbuffer import LogBuffer
from lanchat.console.model import ConsoleModel
from lanchat.console.operator import OperatorAPI, carry_out, snapshot
from lanchat.console.tty import Stopped, Tty
from lanchat.console.view import render

log = logging.getLogger(__name__)

REFRESH = 0.25  # seconds between two looks at the server
STOP_TIMEOUT = 15.0  # how long the server may take to stop
FAILURE_LINES = 20  # log lines printed after the terminal is restored, if the server failed


class ConsoleServer(OperatorAPI, Protocol):
    """The server as the console runs it: the operator API, and its life."""

    def serve_forever(self) -> None:
        """Serve until `shutdown`."""

    def shutdown(self, message: Optional[str] = None) -> bool:
        """Stop serving, clients told `message`; wait until it has stopped."""


def watch(
    tty: Tty, model: ConsoleModel, server: ConsoleServer, serving: threading.Thread
) -> Optional[str]:
    """Show the server and run commands until `/shutdown` (its message is returned, ""
    for none) or the server's thread ends (None)."""
    while serving.is_alive():
        model.refresh(*snapshot(server))
        screen = render(model, *tty.size())
        model.set_viewport(screen.page, screen.top)
        tty.draw(screen)
        for key in tty.wait(REFRESH):
            for action in model.handle_key(key):
                if isinstance(action, Shutdown):
                    return action.message or ""
                carry_out(action, server, model)
    return None


def run(server: ConsoleServer, buffer: LogBuffer, title: str) -> int:
    """Serve, with the console on the terminal, until it asks to stop; then stop the
    server cleanly and return the exit code: 0, or 1 if the server failed."""
    failed = threading.Event()
    serving = threading.Thread(target=_serve, args=(server, failed), name="lanchat-server")
    model = ConsoleModel(buffer, title)
    message: Optional[str] = None
    how = "a failure of the server"
    serving.start()
    try:
        with Tty() as tty:
            said = watch(tty, model, server, serving)
        if said is not None:
            message, how = said or None, "/shutdown"
    except KeyboardInterrupt:
        how = "Ctrl-C"
    except Stopped as exc:
        how = signal.Signals(exc.signum).name
    finally:
        _ignore_stop_signals()  # stopping already: a second Ctrl-C must not cut it short
        if not server.shutdown(message):
            log.error("the server did not stop in time")
        serving.join(STOP_TIMEOUT)
    log.info("stopped by %s", how)
    if failed.is_set():
        for line in buffer.snapshot()[-FAILURE_LINES:]:
            print(line.text, file=sys.stderr)
        return 1
    return 0


def _serve(server: ConsoleServer, failed: threading.Event) -> None:
    """The server's thread: serve, and log a failure (the screen has no stderr)."""
    try:
        server.serve_forever()
    except Exception:  # reported (the screen has no stderr), then the console stops
        log.exception("the server failed")
        failed.set()


def _ignore_stop_signals() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
