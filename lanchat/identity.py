"""Identity keys on the wire (protocol 4.3): a login's proof, its check, and fingerprints.

A client proves it holds an Ed25519 key by signing `protocol.identity_proof_message` (the
server's fresh challenge and the name it logs in with); the server checks the proof and
from then on knows the member by its public key. People are shown a key as its
fingerprint. Shared by the server and the client.
"""

from __future__ import annotations

import hashlib
import string
from typing import Optional

from lanchat import ed25519, protocol
from lanchat.protocol import Frame

KEY_HEX = 2 * ed25519.PUBLIC_SIZE
PROOF_HEX = 2 * ed25519.SIGNATURE_SIZE
CHALLENGE_HEX = 32


def fingerprint(public_key_hex: str) -> str:
    """How people see a key: the first 16 hex digits of the SHA-256 of the public key, in
    groups of four ("3f9a 0c12 77be 41d0")."""
    digits = hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]
    return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def prove(secret: bytes, challenge: str, name: str) -> Frame:
    """A login's `identity` field: the public key of `secret` and its signature of the
    challenge and the name."""
    message = protocol.identity_proof_message(challenge, name)
    return {
        "key": ed25519.public_key(secret).hex(),
        "proof": ed25519.sign(secret, message).hex(),
    }


def check(identity_field: object, challenge: str, name: str) -> Optional[str]:
    """The public key (lower-case hex) a login's `identity` field proves for this challenge
    and name; None for a wrong proof or a malformed field (it never raises)."""
    if not isinstance(identity_field, dict):
        return None
    key = identity_field.get("key")
    proof = identity_field.get("proof")
    if not (_is_hex(key, KEY_HEX) and _is_hex(proof, PROOF_HEX)):
        return None
    if not _is_hex(challenge, CHALLENGE_HEX) or not isinstance(name, str):
        return None
    try:
        message = protocol.identity_proof_message(challenge, name)
    except UnicodeEncodeError:  # a name with a lone surrogate: nothing could sign it
        return None
    assert isinstance(key, str) and isinstance(proof, str)
    if not ed25519.verify(bytes.fromhex(key), message, bytes.fromhex(proof)):
        return None
    return key.lower()


def _is_hex(value: object, length: int) -> bool:
    return (
        isinstance(value, str)
        and len(value) == length
        and all(c in string.hexdigits for c in value)
    )
