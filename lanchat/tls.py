"""TLS certificates as lanchat shows them: the SHA-256 fingerprint of a certificate's DER
bytes, written as openssl and browsers print it, after "SHA256:"."""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path
from typing import Optional

PREFIX = "SHA256:"
_HEX = re.compile(r"[0-9A-Fa-f]{64}")


def fingerprint_of_der(der: bytes) -> str:
    """`SHA256:5E:0A:...:C4` for a certificate in DER form."""
    return _canonical(hashlib.sha256(der).hexdigest())


def fingerprint_of_pem_file(path: Path) -> str:
    """The fingerprint of the (first) certificate in a PEM file."""
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii")))


def parse_fingerprint(text: str) -> Optional[str]:
    """A fingerprint typed by a person (`SHA256:` then 64 hex digits, any case, with or
    without colons or spaces) in the canonical form; None if it is not one."""
    if not text.upper().startswith(PREFIX):
        return None
    digits = re.sub(r"[:\s]", "", text[len(PREFIX) :])
    if not _HEX.fullmatch(digits):
        return None
    return _canonical(digits)


def _canonical(hex_digits: str) -> str:
    """64 hex digits as upper-case pairs joined by colons, after the prefix."""
    upper = hex_digits.upper()
    return PREFIX + ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))
