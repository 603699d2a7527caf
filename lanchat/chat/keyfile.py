"""The client's identity key (protocol 4.3): an Ed25519 secret kept in a file of its own.

The key is the user's identity on every server: a name registered with it is theirs
(docs/protocol.md, "Identity, presence and order"). It is made on the first run, in
`$XDG_CONFIG_HOME/lanchat/identity.key` (by default `~/.config/lanchat/`), in a folder
only its owner may enter (0700) and a file only its owner may read (0600); a file others
could read is tightened. One that cannot be read or does not hold a key is an error,
never silently replaced: a new key would be somebody else. `--identity FILE` names
another file.

The file holds one line: the secret, 64 hex digits (lines starting with `#` are comments).
"""

from __future__ import annotations

import os
import re
import stat
from typing import Optional

KEY_FILE = "identity.key"
SECRET_BYTES = 32
_HEADER = (
    "# lanchat identity key: who you are on every lanchat server. Keep it secret and\n"
    "# back it up; a lost key cannot be recovered, and a name registered with it is lost.\n"
)


class KeyFileError(Exception):
    """The identity key cannot be used; the message is the one line the user reads."""


def config_dir() -> str:
    """The client's config folder: `$XDG_CONFIG_HOME/lanchat`, else `~/.config/lanchat`."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "lanchat")


def default_path() -> str:
    """Where the identity key is kept unless `--identity` says otherwise."""
    return os.path.join(config_dir(), KEY_FILE)


def make_private_dir(path: str) -> None:
    """Make the folder (and its parents) if missing; a folder we make is its owner's only."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # the umask may have widened it


def load_or_create(path: Optional[str] = None) -> bytes:
    """The 32-byte secret of the key file at `path` (default: `default_path()`), made
    on the first run; KeyFileError when it cannot be read, tightened or made."""
    path = path or default_path()
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KeyFileError(f"cannot read the identity key {path}: {exc.strerror}") from None
    try:
        return _create(path)
    except FileExistsError:  # another client made it just now: use theirs
        return _load(path)
    except OSError as exc:
        raise KeyFileError(f"cannot make the identity key {path}: {exc.strerror}") from None


def _load(path: str) -> bytes:
    with open(path, encoding="ascii", errors="replace") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):  # others could read it: not any more
            os.fchmod(file.fileno(), 0o600)
        text = file.read(4096)
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) != 1 or not re.fullmatch(r"[0-9a-fA-F]{64}", keys[0]):
        raise KeyFileError(
            f"the identity key {path} is damaged (it should hold 64 hex digits); "
            "restore it from a backup, or move it away to make a new identity"
        )
    return bytes.fromhex(keys[0])


def _create(path: str) -> bytes:
    make_private_dir(os.path.dirname(os.path.abspath(path)))
    secret = os.urandom(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(_HEADER + secret.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())
    return secret
