"""The password of a protected server, as the server and the client read it: one rule.

It comes from the file named on the command line (`--password-file`): its first line,
without the line ending (and without a UTF-8 byte-order mark, which some editors write).
Without a file it comes from LANCHAT_PASSWORD; an empty variable counts as unset.

A file that cannot be read, is not UTF-8, or whose first line is empty is refused with
`PasswordFileError`: an empty password would silently open a server to everyone.
"""

from __future__ import annotations

import os
from typing import Optional

ENVIRONMENT = "LANCHAT_PASSWORD"


class PasswordFileError(Exception):
    """The password file cannot be used; the message is one line that names the file."""


def read_password(path: Optional[str]) -> Optional[str]:
    """The password from `path`'s first line, else from LANCHAT_PASSWORD; None if neither.

    Raises PasswordFileError when `path` is given but holds no usable password.
    """
    if path is None:
        return os.environ.get(ENVIRONMENT) or None
    try:
        with open(path, encoding="utf-8-sig") as file:
            password = file.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise PasswordFileError(f"the password file {path} is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PasswordFileError(f"cannot read the password file {path}: {reason}") from None
    if not password:
        raise PasswordFileError(
            f"the password file {path} is empty (its first line is the password)"
        )
    return password
