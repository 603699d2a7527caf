"""Name passwords (protocol 4.4): how one is checked for length, kept and verified.

The server keeps only `pbkdf2_sha256$ITERATIONS$SALT$HASH` (salt and hash in hex), so a
copy of the history file gives nobody a password; the iterations are in the string, so a
later lanchat may raise them without breaking the hashes kept. Hashing is slow on purpose:
callers run it on a pool worker, never the I/O thread, and never under the chat's lock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Optional

from lanchat.protocol import ProtocolError, Token

MIN_LENGTH = 8  # characters, as the protocol says
MAX_LENGTH = 128
ITERATIONS = 200_000  # about 0.1 s of one core: slows guessing from a stolen file
SALT_BYTES = 16
SCHEME = "pbkdf2_sha256"


@dataclass(frozen=True)
class Verified:
    """A name password found right: the name, its owner's identity key, and the hash it
    was checked against (a later login of the same name may be taken without hashing
    again, while that very hash is still the one kept: a password changed or cleared
    meanwhile has another)."""

    name_key: str
    owner: str
    kept: str


def check_length(password: str, ref: Optional[Token] = None) -> None:
    """Raise invalid_password unless the password has 8 to 128 characters."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ProtocolError(
            "invalid_password",
            f"A name password has {MIN_LENGTH} to {MAX_LENGTH} characters.",
            ref,
        )


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    """The password as kept: a fresh salt, and its PBKDF2-SHA256 hash."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify(password: str, kept: str) -> bool:
    """Whether the password is the one `kept` was made from (False for a damaged entry)."""
    try:
        scheme, iterations, salt, expected = kept.split("$")
        rounds = int(iterations)
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return False
    if scheme != SCHEME or not 0 < rounds <= 10 * ITERATIONS:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt_bytes, rounds)
    return hmac.compare_digest(digest.hex(), expected)
