"""The curses front end: the short loop that reads keys, runs the model and draws the view.

The only module that imports curses. `check_terminal()` says whether curses can drive this
terminal at all; `Terminal` is a context manager that sets the terminal up and restores
it on every way out (return, exception, Ctrl-C, SIGTERM, SIGHUP); inside it, `pick`
shows the server picker and `chat` runs the chat until the user leaves.

Only the main thread touches curses. The connection's reader thread posts events to a
queue and writes a byte to a wake-up pipe; the loop waits on stdin and that pipe with a
selector, so a message is drawn as soon as it arrives and an idle client sleeps.
"""

from __future__ import annotations

import curses
import locale
import logging
import os
import queue
import selectors
import signal
import sys
import time
from types import FrameType, TracebackType
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, Union

from lanchat import protocol
from lanchat.chat.actions import Action, Bell, Drop, Exit, GiveUp, Send
from lanchat.chat.colours import NAME_COLOURS
from lanchat.chat.connection import Connection, Event, Link, VerifyLink
from lanchat.chat.model import ClientModel
from lanchat.chat.picker import ServerPicker
from lanchat.chat.termtext import text_width
from lanchat.chat.trustprompt import TrustPrompt
from lanchat.chat.view import Screen, render, render_picker, render_trust_prompt

log = logging.getLogger(__name__)

TICK = 1.0  # longest wait between model ticks (keepalive); paced sends may want them sooner
ESC = "\x1b"
CTRL_L = "\x0c"


Question = Union[ServerPicker, TrustPrompt]  # a screen answered with keys before the chat


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived: leave cleanly, with exit code 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def check_terminal() -> Optional[str]:
    """None when curses can drive this terminal, else the reason, for a person."""
    term = os.environ.get("TERM", "")
    if not term or term == "dumb":
        return "this terminal cannot show the chat window (TERM is not set)"
    try:
        curses.setupterm(term, sys.stdout.fileno())
    except (curses.error, OSError, ValueError):
        return f"the terminal type TERM={term!r} is unknown here"
    return None


ALT_ARROWS = {"KEY_LEFT": "kLFT3", "KEY_RIGHT": "kRIT3"}  # Esc and an arrow: Alt and it


def join_alt_keys(keys: List[str]) -> List[str]:
    """Esc and the character that came with it become one key, Alt and that character
    ("\x1bb" for Alt-B): a terminal sends Alt-B as Esc and b at once. Esc and Left or
    Right, as some terminals send Alt-Left and Alt-Right, become the key names xterm's
    own sequences get ("kLFT3", "kRIT3"). An Esc alone stays."""
    out: List[str] = []
    for key in keys:
        if out and out[-1] == ESC and len(key) == 1 and key.isprintable():
            out[-1] += key
        elif out and out[-1] == ESC and key in ALT_ARROWS:
            out[-1] = ALT_ARROWS[key]
        else:
            out.append(key)
    return out


def _set_locale() -> None:
    """Use the user's locale, so curses draws and reads UTF-8; survive a broken one."""
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        for fallback in ("C.UTF-8", "C.utf8", "en_US.UTF-8"):
            try:
                locale.setlocale(locale.LC_ALL, fallback)
                return
            except locale.Error:
                continue


def _colour_attrs() -> Dict[str, int]:
    """Style name -> curses attribute: colours when the terminal has them and NO_COLOR
    is unset, else bold, dim, underline and reverse only."""
    bold, dim, rev, under = curses.A_BOLD, curses.A_DIM, curses.A_REVERSE, curses.A_UNDERLINE
    attrs = {
        "status": rev,
        "time": dim,
        "own": bold,
        "sys": dim,
        "err": bold,
        "info": dim,
        "pm": under,
        "mention": rev | bold,
        "pending": dim,
        "more": rev,
        "sep": dim,
        "sidehead": bold,
        "sideme": bold | under,
        "prompt": bold,
        "sel": rev,
        "dim": dim,
        "roomnow": rev | bold,  # the room shown, in the room bar
        "roomnew": bold,  # a room with unread messages
        "roommention": rev | bold,  # a room where somebody said our name
    }
    for index in range(NAME_COLOURS):
        attrs[f"name{index}"] = bold
    if os.environ.get("NO_COLOR") or not curses.has_colors():
        return attrs
    try:
        curses.start_color()
        try:
            curses.use_default_colors()
            background = -1
        except curses.error:
            background = curses.COLOR_BLACK
        pairs = [
            ("status", curses.COLOR_WHITE, curses.COLOR_BLUE, 0),
            ("err", curses.COLOR_RED, background, bold),
            ("pm", curses.COLOR_MAGENTA, background, 0),
            ("mention", curses.COLOR_BLACK, curses.COLOR_YELLOW, 0),
            ("sys", curses.COLOR_CYAN, background, dim),
            ("more", curses.COLOR_BLACK, curses.COLOR_CYAN, 0),
            ("roommention", curses.COLOR_BLACK, curses.COLOR_YELLOW, bold),
        ]
        names = [
            curses.COLOR_GREEN,
            curses.COLOR_YELLOW,
            curses.COLOR_BLUE,
            curses.COLOR_MAGENTA,
            curses.COLOR_CYAN,
            curses.COLOR_RED,
        ]
        pairs += [(f"name{i}", c, background, bold) for i, c in enumerate(names)]
        for number, (style, fg, bg, extra) in enumerate(pairs, start=1):
            if number >= curses.COLOR_PAIRS:
                break
            curses.init_pair(number, fg, bg)
            attrs[style] = curses.color_pair(number) | extra
    except curses.error as exc:  # a terminal that claims colours it cannot set
        log.info("colours unavailable: %s", exc)
    return attrs


class Terminal:
    """The terminal in curses mode for the life of a `with` block, restored on any exit."""

    def __init__(self) -> None:
        self.screen: Any = None
        self._attrs: Dict[str, int] = {}
        self._old_handlers: Dict[int, Any] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._resized = False

    # -------------------------------------------------------------- set up / restore

    def __enter__(self) -> Terminal:
        # Handlers first: a SIGTERM during initscr must still end in a restored terminal,
        # and ncurses' own SIGTERM handler would exit without running our `finally`.
        # Ctrl-C must leave even when we were started with SIGINT ignored (as a shell
        # starts background jobs), so the handler is ours, not the inherited one.
        self._install(signal.SIGINT, signal.default_int_handler)
        self._install(signal.SIGTERM, self._on_terminate)
        if hasattr(signal, "SIGHUP"):
            self._install(signal.SIGHUP, self._on_terminate)
        if hasattr(signal, "SIGWINCH"):
            self._install(signal.SIGWINCH, self._on_resize)
        try:
            os.environ.setdefault("ESCDELAY", "25")  # Esc alone, not 1 s of waiting
            _set_locale()
            self.screen = curses.initscr()
            curses.noecho()
            curses.cbreak()
            self.screen.keypad(True)
            self._attrs = _colour_attrs()
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
        if self.screen is not None:
            try:
                self.screen.keypad(False)
                curses.nocbreak()
                curses.echo()
            except curses.error:
                pass
            try:
                curses.endwin()
            except curses.error:
                pass
            self.screen = None
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def _on_terminate(self, signum: int, frame: Optional[FrameType]) -> None:
        raise Terminated(signum)

    def _on_resize(self, signum: int, frame: Optional[FrameType]) -> None:
        self._resized = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def post(self, event: Event) -> None:
        """Queue a connection event and wake the loop; safe from any thread."""
        self._events.put(event)
        self._wake()

    # -------------------------------------------------------------- input and drawing

    def _wait(self, selector: selectors.BaseSelector, timeout: float) -> bool:
        """Sleep until a key, an event or the timeout; True if stdin has input."""
        keys = False
        for key, _ in selector.select(timeout):
            if key.data == "keys":
                keys = True
            else:
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except OSError:
                    pass
        return keys

    def _keys(self) -> List[str]:
        """Every key waiting, as characters or curses key names ("KEY_LEFT"); Alt and a
        character as one key (see `join_alt_keys`). Ctrl-L repaints the whole terminal."""
        out: List[str] = []
        self.screen.nodelay(True)
        while True:
            try:
                key = self.screen.get_wch()
            except curses.error:  # nothing more waiting
                break
            if isinstance(key, int):
                if key == curses.KEY_RESIZE:
                    self._resized = True
                    continue
                name = curses.keyname(key).decode("ascii", "replace")
                out.append(name)
            elif key == CTRL_L:  # something else wrote on the terminal: draw it all anew
                self.screen.clearok(True)
            else:
                out.append(key)
        return join_alt_keys(out)

    def _follow_resize(self) -> None:
        if not self._resized:
            return
        self._resized = False
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
            curses.resizeterm(size.lines, size.columns)
        except (OSError, curses.error, ValueError) as exc:
            log.info("resize failed: %s", exc)
        self.screen.clear()  # redraw everything: the terminal may have reflowed

    def _selector(self) -> selectors.BaseSelector:
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "keys")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        return selector

    def draw(self, screen: Screen) -> None:
        """Put a rendered screen on the terminal."""
        self.screen.erase()
        for y, row in enumerate(screen.rows):
            x = 0
            for text, style in row:
                if text:
                    try:
                        self.screen.addstr(y, x, text, self._attrs.get(style, 0))
                    except curses.error:  # the bottom-right cell: drawn, but reported
                        pass
                    x += text_width(text)
        try:
            if screen.cursor is None:
                curses.curs_set(0)
            else:
                curses.curs_set(1)
                self.screen.move(*screen.cursor)
        except curses.error:
            pass
        self.screen.noutrefresh()
        curses.doupdate()

    def size(self) -> Tuple[int, int]:
        """(rows, cols) of the terminal."""
        rows, cols = self.screen.getmaxyx()
        return int(rows), int(cols)

    # -------------------------------------------------------------- screens

    def pick(self, picker: ServerPicker) -> bool:
        """Show the server picker until the user picks (True) or leaves (False)."""
        return self._ask(picker, lambda rows, cols: render_picker(picker, rows, cols))

    def ask_trust(self, prompt: TrustPrompt) -> bool:
        """Show a new server's certificate until the user trusts it (True) or not."""
        return self._ask(prompt, lambda rows, cols: render_trust_prompt(prompt, rows, cols))

    def _ask(self, question: Question, draw: Callable[[int, int], Screen]) -> bool:
        """Draw a question's screen and feed it keys until it is answered."""
        selector = self._selector()
        try:
            while question.done is None:
                self._follow_resize()
                self.draw(draw(*self.size()))
                try:
                    if self._wait(selector, TICK):
                        for key in self._keys():
                            question.handle_key(key)
                except KeyboardInterrupt:
                    question.handle_key("\x03")
            return bool(question.done)
        finally:
            selector.close()

    def chat(
        self,
        model: ClientModel,
        host: str,
        port: int,
        link: Optional[Link],
        verify: Optional[VerifyLink] = None,
    ) -> int:
        """Run the chat until the user leaves; return the exit code. Each reconnect's
        link must pass `verify` (the trusted certificate)."""
        connection = Connection(host, port, self.post, verify=verify)
        selector = self._selector()
        connection.start(link)
        try:
            return self._chat_loop(model, connection, selector)
        except KeyboardInterrupt:  # a second Ctrl-C while leaving: leave all the same
            connection.send(protocol.quit())
            return 1 if model.outbox else 0
        except Terminated as exc:
            log.info("leaving on signal %d", exc.signum)
            connection.send(protocol.quit())
            return 128 + exc.signum
        finally:
            selector.close()
            connection.close()

    def _chat_loop(
        self, model: ClientModel, connection: Connection, selector: selectors.BaseSelector
    ) -> int:
        while True:
            actions: List[Action] = []
            try:
                self._follow_resize()
                screen = render(model, *self.size())
                model.set_viewport(screen.page, screen.max_scroll, screen.scroll)
                self.draw(screen)
                has_keys = self._wait(selector, model.seconds_to_wait(time.time(), TICK))
                now = time.time()
                while True:
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        break
                    actions += model.handle_event(event, now)
                if has_keys:
                    for key in self._keys():
                        actions += model.handle_key(key, now)
                actions += model.tick(now)
                code = self._perform(actions, connection)
            except KeyboardInterrupt:  # Ctrl-C: the same as /quit (twice: leave at once)
                code = self._perform(model.handle_key("\x03", time.time()), connection)
            if code is not None:
                return code

    def _perform(self, actions: List[Action], connection: Connection) -> Optional[int]:
        for action in actions:
            if isinstance(action, Send):
                connection.send(action.frame)
            elif isinstance(action, Bell):
                try:
                    curses.beep()
                except curses.error:
                    pass
            elif isinstance(action, Drop):
                connection.drop()
            elif isinstance(action, GiveUp):
                connection.close()
            elif isinstance(action, Exit):
                return action.code
        return None
