"""Log lines that no client can forge, and that never carry raw control characters.

Clients choose names, versions and texts that end up in the server's log. A `\\r\\n` in one
would start a line that looks like the server's own, and ESC, BEL, C1 controls or a bidi
override would act on the terminal of the operator reading the log. `SafeFormatter`
escapes every unprintable character of every record, whoever built the message and however
(`%s` or `%r` arguments, f-strings): the escaping is not left to each call.
"""

from __future__ import annotations

import logging

# Traceback lines are indented, so that only the first line of a record starts at the
# left margin: even a line break inside an exception's message cannot pass for a record.
CONTINUATION_INDENT = "    "


def escape(text: str) -> str:
    """The text with each unprintable character (controls, line breaks, format characters,
    spaces other than ' ') replaced by its `repr` escape, such as `\\r`, `\\x1b`, `\\u202e`."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _escape_lines(text: str) -> str:
    """A multi-line text (a traceback) with each line escaped and indented."""
    return "\n".join(CONTINUATION_INDENT + escape(line) for line in text.split("\n"))


class SafeFormatter(logging.Formatter):
    """A Formatter whose output is one escaped line per record, plus indented tracebacks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _escape_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _escape_lines(super().formatStack(stack_info))
