"""Certificate fingerprints: computed as openssl prints them, and read back as typed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from lanchat import tls

DIGEST = "5e0a" * 16


def test_a_fingerprint_is_sha256_of_the_der_bytes_in_colon_pairs() -> None:
    """The form openssl and browsers print, after SHA256:."""
    printed = tls.fingerprint_of_der(b"certificate")
    assert printed.startswith("SHA256:") and len(printed) == 7 + 32 * 3 - 1
    assert printed[7:].replace(":", "") == hashlib.sha256(b"certificate").hexdigest().upper()


@pytest.mark.parametrize(
    "typed",
    [
        "SHA256:" + DIGEST,
        "sha256:" + DIGEST.upper(),
        "SHA256:" + ":".join(DIGEST[i : i + 2] for i in range(0, 64, 2)),
        "SHA256: " + " ".join(DIGEST[i : i + 4] for i in range(0, 64, 4)),
    ],
)
def test_a_typed_fingerprint_is_read_in_any_spelling(typed: str) -> None:
    """Case, colons and spaces do not matter."""
    canonical = "SHA256:" + ":".join(DIGEST.upper()[i : i + 2] for i in range(0, 64, 2))
    assert tls.parse_fingerprint(typed) == canonical


@pytest.mark.parametrize("typed", ["", "SHA256:", "MD5:" + DIGEST, "SHA256:" + DIGEST[:-1], DIGEST])
def test_what_is_no_fingerprint_is_none(typed: str) -> None:
    """Short, long, another hash or no prefix: not a fingerprint."""
    assert tls.parse_fingerprint(typed) is None


def test_the_fingerprint_of_a_pem_file_is_what_openssl_prints(tmp_path: Path) -> None:
    """Comparable with `openssl x509 -noout -fingerprint -sha256`."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=t"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    assert tls.fingerprint_of_pem_file(cert) == "SHA256:" + printed.split("=", 1)[1]
