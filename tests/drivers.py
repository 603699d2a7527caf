"""The drivers tests share: the built pyz's clients in a pseudo-terminal or on pipes, its
server as a fixture, a proxy that fails like a network, and polling with a deadline.

Each runs real processes of `dist/lanchat.pyz` on 127.0.0.1; every wait has a timeout.
"""

from __future__ import annotations

import curses
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import ptyprocess
import pyte
import pytest
from conftest import free_port
from wire import start_pyz_server

TERM = "xterm-256color"
WAIT = 15.0  # seconds any one expected screen or line may take
LONG_WAIT = 30.0  # the longest any one condition of a crash or outage may take
Address = Tuple[str, int]
# `HH:MM name: text`, the plain-mode format of a room message (chat.plain.format_entry);
# `HH:MM #room name: text` from a server with rooms (4.2)
MESSAGE_LINE = re.compile(r"^\d\d:\d\d (?:#\S+ )?(\S+): (.*)$")


# --------------------------------------------------------------------------- waiting


def wait_until(condition: Callable[[], bool], what: str, timeout: float = LONG_WAIT) -> None:
    """Poll until the condition holds; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# --------------------------------------------------------------------------- the curses client


def _terminfo_keys() -> Dict[str, bytes]:
    """The bytes the terminal sends for each key, from terminfo (keypad mode on)."""
    with open(os.devnull, "w") as devnull:
        curses.setupterm(TERM, devnull.fileno())
    names = {
        "up": "kcuu1",
        "down": "kcud1",
        "left": "kcub1",
        "right": "kcuf1",
        "home": "khome",
        "end": "kend",
        "ppage": "kpp",
        "npage": "knp",
        "delete": "kdch1",
        "backspace": "kbs",
        "ctrl_left": "kLFT5",
    }
    keys = {}
    for key, capability in names.items():
        sequence = curses.tigetstr(capability)
        assert sequence, f"terminfo {TERM} has no {capability}"
        keys[key] = sequence
    return keys


KEYS = _terminfo_keys()
ENTER = b"\r"
CTRL_C, CTRL_D, CTRL_U = b"\x03", b"\x04", b"\x15"


def client_env(**extra: str) -> Dict[str, str]:
    """The environment of a client in a UTF-8 xterm, with no NO_COLOR unless asked."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "LC_ALL", "COLUMNS", "LINES")
    }
    env.update(TERM=TERM, LANG="C.UTF-8")
    env.update(extra)
    return env


class PtyClient:
    """One `lanchat.pyz client` in a pseudo-terminal, its screen kept by pyte."""

    def __init__(
        self,
        argv: List[str],
        rows: int = 24,
        cols: int = 80,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self.output = bytearray()
        self.proc = ptyprocess.PtyProcess.spawn(
            argv, dimensions=(rows, cols), env=env or client_env()
        )
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.proc.read(65536)
            except EOFError:
                return
            with self._lock:
                self.output += data
                self._stream.feed(data)

    def lines(self) -> List[str]:
        """The screen, one string per row."""
        with self._lock:
            return list(self.screen.display)

    def text(self) -> str:
        """The screen as one string, rows joined by newlines."""
        return "\n".join(self.lines())

    def wait_for(
        self, expected: Union[str, Callable[[List[str]], bool]], timeout: float = WAIT
    ) -> List[str]:
        """Poll the screen until the text shows (or the test holds); fail with the screen."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if (expected in "\n".join(lines)) if isinstance(expected, str) else expected(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"screen never showed {expected!r}; it shows:\n" + "\n".join(lines)
                )
            time.sleep(0.02)

    def type(self, data: Union[str, bytes]) -> None:
        """Send what a person types (str as UTF-8)."""
        self.proc.write(data.encode("utf-8") if isinstance(data, str) else data)

    def line(self, text: str) -> None:
        """Type a line and Enter."""
        self.type(text)
        self.type(ENTER)

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal, as a window manager does (the child gets SIGWINCH)."""
        with self._lock:
            self.screen.resize(rows, cols)
        self.proc.setwinsize(rows, cols)

    def wait_exit(self, timeout: float = WAIT) -> int:
        """The exit code (128 + n for signal n); fail if it does not end in time."""
        deadline = time.monotonic() + timeout
        while self.proc.isalive():
            if time.monotonic() > deadline:
                raise AssertionError("the client did not exit:\n" + self.text())
            time.sleep(0.02)
        self._reader.join(5)
        if self.proc.signalstatus is not None:
            return 128 + int(self.proc.signalstatus)
        return int(self.proc.exitstatus or 0)

    def terminal_restored(self) -> bool:
        """True if the tty is back in cooked mode with echo and curses left its screen."""
        lflag = termios.tcgetattr(self.proc.fd)[3]
        rmcup = curses.tigetstr("rmcup") or b""
        with self._lock:
            left_screen = rmcup in self.output
        return bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO) and left_screen

    def close(self) -> None:
        """Kill the client if it still runs."""
        if self.proc.isalive():
            self.proc.terminate(force=True)
        self._reader.join(5)
        self.proc.close(force=True)


@pytest.fixture
def server(pyz: Path) -> Iterator[Tuple[subprocess.Popen[str], Address]]:
    """The pyz server on a free port of 127.0.0.1."""
    proc, address = start_server(pyz, free_port())
    try:
        yield proc, address
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def start_server(pyz: Path, port: int) -> Tuple[subprocess.Popen[str], Address]:
    return start_pyz_server(
        str(pyz),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-discovery",
        "--log-level",
        "warning",
        "--name",
        "testlab",
    )


@pytest.fixture
def clients(pyz: Path) -> Iterator[Callable[..., PtyClient]]:
    """Start PtyClients; every one is killed at the end of the test."""
    started: List[PtyClient] = []

    def start(address: Address, name: str, *extra: str, **kwargs: object) -> PtyClient:
        host, port = address
        argv = [sys.executable, str(pyz), "client", "--name", name, "--host", host]
        argv += ["--port", str(port), *extra]
        client = PtyClient(argv, **kwargs)  # type: ignore[arg-type]
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


def status(lines: List[str]) -> str:
    return lines[0]


# --------------------------------------------------------------------------- plain clients


class PlainClient:
    """`lanchat.pyz client --plain` with stdin and stdout on pipes, read by a thread."""

    def __init__(
        self,
        pyz: Path,
        address: Address,
        name: str,
        *extra: str,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.name = name
        host, port = address
        argv = [sys.executable, str(pyz), "client", "--plain", "--host", host,
                "--port", str(port), "--name", name, *extra]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._lock = threading.Lock()
        self._lines: List[str] = []
        self._stderr = bytearray()
        self.typed: List[str] = []
        self.type_error: Optional[BaseException] = None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: object, is_stdout: bool) -> None:
        fd = pipe.fileno()  # type: ignore[attr-defined]
        pending = b""
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            if not is_stdout:
                with self._lock:
                    self._stderr += data
                continue
            pending += data
            *complete, pending = pending.split(b"\n")
            with self._lock:
                self._lines += [line.decode("utf-8", "replace") for line in complete]

    @property
    def lines(self) -> List[str]:
        """Every complete line printed so far."""
        with self._lock:
            return list(self._lines)

    @property
    def stderr(self) -> str:
        with self._lock:
            return self._stderr.decode("utf-8", "replace")

    def has_line(self, predicate: Callable[[str], bool], after: int = 0) -> bool:
        return any(predicate(line) for line in self.lines[after:])

    def messages(self, lines: Optional[List[str]] = None) -> List[Tuple[str, str]]:
        """(sender, text) of every room message printed, in order, repeats included."""
        found = []
        for line in self.lines if lines is None else lines:
            match = MESSAGE_LINE.match(line)
            if match:
                found.append((match.group(1), match.group(2)))
        return found

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def typist(self, stop: threading.Event, interval: float) -> threading.Thread:
        """A thread that types numbered lines every `interval` seconds until `stop`."""

        def run() -> None:
            next_at = time.monotonic()
            try:
                while not stop.is_set():
                    text = f"{self.name} says {len(self.typed) + 1}"
                    self.type(text)
                    with self._lock:
                        self.typed.append(text)
                    next_at += interval
                    stop.wait(max(0.0, next_at - time.monotonic()))
            except OSError as exc:  # the client died: the test reports it
                self.type_error = exc

        thread = threading.Thread(target=run, name=f"typist-{self.name}", daemon=True)
        thread.start()
        return thread

    def typed_count(self) -> int:
        with self._lock:
            return len(self.typed)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout: float = LONG_WAIT) -> int:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


class PipedClient:
    """`lanchat.pyz client` with stdin and stdout as pipes (so: plain mode by itself)."""

    def __init__(self, argv: List[str], env: Optional[dict] = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._lines: List[str] = []
        self._buffer = b""

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode("utf-8"))
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait_line(self, needle: str, timeout: float = WAIT) -> str:
        """Read stdout until a line holds the needle; fail with what came."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            for line in self._lines:
                if needle in line:
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {needle!r}; got {self._lines}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    raise AssertionError(f"stdout closed; got {self._lines}")
                self._buffer += data
                *complete, self._buffer = self._buffer.split(b"\n")
                self._lines += [line.decode("utf-8") for line in complete]

    @property
    def lines(self) -> List[str]:
        """The stdout lines read so far (every one up to the last `wait_line` found)."""
        return list(self._lines)

    def finish(self, timeout: float = WAIT) -> Tuple[int, str, str]:
        """Wait for the exit; return (code, all stdout, stderr)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        code = self.proc.wait(timeout)
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        text = "\n".join(self._lines) + "\n" + (self._buffer + out).decode("utf-8")
        return code, text, err.decode("utf-8")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def client_argv(pyz: Path, address: Address, name: str, *extra: str) -> List[str]:
    host, port = address
    return [sys.executable, str(pyz), "client", "--name", name, "--host", host,
            "--port", str(port), *extra]  # fmt: skip


# --------------------------------------------------------------------------- servers and links


def stop_server(proc: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    """Signal a server process and wait for it (SIGKILL if it takes too long)."""
    if proc.poll() is None:
        proc.send_signal(signum)
        if signum == signal.SIGTERM:
            proc.send_signal(signal.SIGCONT)  # in case it was frozen
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)


@dataclass
class ProxiedLink:
    """One client connection through the proxy and its upstream to the server."""

    client: socket.socket
    server: socket.socket
    muted: bool = False  # what the server sends is lost
    cut: bool = False  # the client side was closed; the server side was left open
    server_closed: bool = False  # the server ended its side


class Proxy:
    """A TCP relay on 127.0.0.1 in front of the server, to fake a network that fails.

    `mute()` drops what the server sends on the links open now (the echoes get lost);
    `cut()` closes their client side only, so the client sees its link die while the
    server, whose side stays open, notices nothing: a Wi-Fi drop, as the server sees it.
    """

    def __init__(self, upstream: Address) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: Address = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._links: List[ProxiedLink] = []
        self._closed = threading.Event()
        self.from_clients = bytearray()  # every byte a client sent through the proxy
        self._threads = [threading.Thread(target=self._accept, name="proxy", daemon=True)]
        self._threads[0].start()

    @property
    def links(self) -> int:
        """How many client connections were relayed so far."""
        with self._lock:
            return len(self._links)

    def server_closed(self, index: int) -> bool:
        """True once the server ended its side of the index-th link."""
        with self._lock:
            return self._links[index].server_closed

    def _accept(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.05)
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:  # the server is down: so is the link
                client.close()
                continue
            link = ProxiedLink(client, server)
            with self._lock:
                self._links.append(link)
            for downstream in (False, True):
                thread = threading.Thread(target=self._pump, args=(link, downstream), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, link: ProxiedLink, down: bool) -> None:
        """Copy one direction of a link until its source ends."""
        source, target = (link.server, link.client) if down else (link.client, link.server)
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready:
                    continue
                data = source.recv(65536)
            except (OSError, ValueError):  # reset, or closed under us
                data = b""
            if not data:
                if down:
                    link.server_closed = True
                if not link.cut:
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return
            if not down:
                with self._lock:
                    self.from_clients += data
            if (down and link.muted) or link.cut:
                continue  # lost on the way
            try:
                target.sendall(data)
            except OSError:
                pass  # the other pump sees the end too

    def mute(self) -> None:
        """From now on, what the server sends on the open links is lost."""
        with self._lock:
            for link in self._links:
                link.muted = True

    def cut(self) -> None:
        """Close the client side of every open link; the server side stays open."""
        with self._lock:
            links = [link for link in self._links if not link.cut]
        for link in links:
            link.cut = True
            try:
                link.client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()
        with self._lock:
            for link in self._links:
                link.client.close()
                link.server.close()
