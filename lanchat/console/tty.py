"""The operator's terminal, driven by hand: keys in, rows out, never holding up the server.

Python's curses holds the interpreter lock while it writes the screen: a terminal that
takes nothing (frozen with Ctrl-S, a stalled ssh link) would then stop every thread of
the server with it. So the console uses curses only to read the terminal's capabilities
(terminfo), and writes its rows with `os.write`, which lets the other threads run while it
waits. Only the rows that changed since the last frame are written.

`Tty` is a context manager: it puts the terminal in cbreak mode without echo, on the
alternate screen, with the keypad's keys sent as terminfo says, and restores all of it on
every way out. Keys come out as the model takes them: characters, or curses key names
such as "KEY_PPAGE". SIGTERM and SIGHUP raise `Stopped`; SIGINT raises KeyboardInterrupt.
"""

from __future__ import annotations

import codecs
import curses
import os
import select
import signal
import termios
from types import FrameType, TracebackType
from typing import Any, Dict, List, Optional, Tuple, Type

from lanchat.chat.view import Screen

# terminfo capability -> the key name curses would report
KEY_CAPABILITIES = {
    "kcuu1": "KEY_UP",
    "kcud1": "KEY_DOWN",
    "kcub1": "KEY_LEFT",
    "kcuf1": "KEY_RIGHT",
    "khome": "KEY_HOME",
    "kend": "KEY_END",
    "kpp": "KEY_PPAGE",
    "knp": "KEY_NPAGE",
    "kdch1": "KEY_DC",
    "kLFT5": "kLFT5",  # Ctrl-Left
    "kRIT5": "kRIT5",  # Ctrl-Right
}
# What terminals send whatever terminfo says: cursor keys in both modes, Home, End.
COMMON_KEYS = {
    **{f"\x1b{mode}{final}": name for mode in "[O" for final, name in
       (("A", "KEY_UP"), ("B", "KEY_DOWN"), ("C", "KEY_RIGHT"), ("D", "KEY_LEFT"),
        ("H", "KEY_HOME"), ("F", "KEY_END"))},
    "\x1b[1~": "KEY_HOME",
    "\x1b[4~": "KEY_END",
    "\x1b[3~": "KEY_DC",
    "\x1b[5~": "KEY_PPAGE",
    "\x1b[6~": "KEY_NPAGE",
}  # fmt: skip
STYLES = {"status": ("rev",), "err": ("bold",), "sep": ("dim",), "sidehead": ("bold",),
          "prompt": ("bold",), "info": ("dim",)}  # fmt: skip
CTRL_L = "\x0c"


class Stopped(Exception):
    """SIGTERM or SIGHUP arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _capability(name: str) -> bytes:
    return curses.tigetstr(name) or b""


class Tty:
    """The terminal on stdin and stdout, set up for the console in a `with` block."""

    def __init__(self, fd_in: int = 0, fd_out: int = 1) -> None:
        self.fd_in, self.fd_out = fd_in, fd_out
        curses.setupterm(None, fd_out)
        self._keys = {**COMMON_KEYS, **self._terminfo_keys()}
        self._styles = {
            style: b"".join(_capability(cap) for cap in caps) for style, caps in STYLES.items()
        }
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""  # input read but not yet made into keys
        self._saved_mode: Optional[List[Any]] = None
        self._old_handlers: Dict[int, Any] = {}
        self._shown: Optional[Screen] = None  # what the terminal shows; None: unknown
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @staticmethod
    def _terminfo_keys() -> Dict[str, str]:
        keys = {}
        for capability, name in KEY_CAPABILITIES.items():
            sequence = _capability(capability)
            if sequence:
                keys[sequence.decode("latin-1")] = name
        return keys

    # -- set up and restore -----------------------------------------------------------

    def __enter__(self) -> Tty:
        # Handlers first: a signal while setting up must still restore the terminal.
        self._install(signal.SIGINT, signal.default_int_handler)
        self._install(signal.SIGTERM, self._on_stop)
        if hasattr(signal, "SIGHUP"):
            self._install(signal.SIGHUP, self._on_stop)
        if hasattr(signal, "SIGWINCH"):
            self._install(signal.SIGWINCH, self._on_resize)
        try:
            self._saved_mode = termios.tcgetattr(self.fd_in)
            mode = termios.tcgetattr(self.fd_in)
            mode[3] &= ~(termios.ICANON | termios.ECHO)  # keys at once, unechoed; ISIG stays
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(self.fd_in, termios.TCSANOW, mode)
            self._write(b"".join(_capability(c) for c in ("smcup", "smkx", "rmam", "clear")))
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self._restore()

    def _install(self, signum: int, handler: Any) -> None:
        self._old_handlers[signum] = signal.signal(signum, handler)

    def _restore(self) -> None:
        """Put the terminal back; never wait for a terminal that takes nothing."""
        restore = b"".join(_capability(c) for c in ("sgr0", "cnorm", "smam", "rmkx", "rmcup"))
        blocking = os.get_blocking(self.fd_out)
        try:
            os.set_blocking(self.fd_out, False)
            os.write(self.fd_out, restore)
        except OSError:
            pass
        finally:
            os.set_blocking(self.fd_out, blocking)
        if self._saved_mode is not None:
            termios.tcsetattr(self.fd_in, termios.TCSANOW, self._saved_mode)
            self._saved_mode = None
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1

    def _on_stop(self, signum: int, frame: Optional[FrameType]) -> None:
        raise Stopped(signum)

    def _on_resize(self, signum: int, frame: Optional[FrameType]) -> None:
        self._shown = None  # draw it all again, at the new size
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # a wake-up is pending already
            pass

    # -- keys -------------------------------------------------------------------------------

    def wait(self, timeout: float) -> List[str]:
        """The keys typed within `timeout` seconds (none: the time passed, or a resize)."""
        ready, _, _ = select.select([self.fd_in, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            os.read(self._wake_r, 512)
        if self.fd_in not in ready:
            return []
        data = os.read(self.fd_in, 4096)
        self._pending += self._decoder.decode(data)
        return self._split_keys()

    def _split_keys(self) -> List[str]:
        """The keys in the input read so far; a sequence cut short waits for its rest."""
        keys = []
        text = self._pending
        while text:
            if text[0] != "\x1b":
                key, text = text[0], text[1:]
            elif text == "\x1b":
                key, text = "\x1b", ""  # Esc alone: a sequence comes whole, in one read
            else:
                found = [seq for seq in self._keys if text.startswith(seq)]
                if found:
                    sequence = max(found, key=len)
                    key, text = self._keys[sequence], text[len(sequence) :]
                elif any(seq.startswith(text) for seq in self._keys):
                    break  # the rest of a known sequence is still on its way
                elif text[1] in "[O":  # a sequence we do not know: skip it whole
                    end = next((i for i in range(2, len(text)) if "@" <= text[i] <= "~"), None)
                    if end is None:
                        break
                    text = text[end + 1 :]
                    continue
                else:  # Alt and a character
                    key, text = text[:2], text[2:]
            if key == CTRL_L:
                self._shown = None
            else:
                keys.append(key)
        self._pending = text
        return keys

    # -- drawing ---------------------------------------------------------------------------

    def size(self) -> Tuple[int, int]:
        """(rows, cols) of the terminal."""
        size = os.get_terminal_size(self.fd_out)
        return size.lines, size.columns

    def draw(self, screen: Screen) -> None:
        """Show a rendered screen: write the rows that changed, then place the cursor. This
        waits while the terminal takes nothing, but lets the server's threads run."""
        shown = self._shown
        if screen == shown:
            return
        out = [] if shown is not None else [_capability("clear")]
        cup = _capability("cup")
        for y, row in enumerate(screen.rows):
            if shown is not None and y < len(shown.rows) and shown.rows[y] == row:
                continue
            out.append(curses.tparm(cup, y, 0))
            for text, style in row:
                out.append(self._styles.get(style, b"") + text.encode("utf-8"))
                out.append(_capability("sgr0"))
        if screen.cursor is None:
            out.append(_capability("civis"))
        else:
            out.append(curses.tparm(cup, *screen.cursor) + _capability("cnorm"))
        self._write(b"".join(out))
        self._shown = screen

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view) :]
