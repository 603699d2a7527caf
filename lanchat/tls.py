"""TLS certificates as lanchat shows them: the SHA-256 fingerprint of a certificate's DER
bytes, written as openssl and browsers print it, after "SHA256:". And the server's side:
the self-signed certificate it makes once with the openssl command, and its TLS context."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Tuple

PREFIX = "SHA256:"
_HEX = re.compile(r"[0-9A-Fa-f]{64}")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----")


def fingerprint_of_der(der: bytes) -> str:
    """`SHA256:5E:0A:...:C4` for a certificate in DER form."""
    return _canonical(hashlib.sha256(der).hexdigest())


def fingerprint_of_pem_file(path: Path) -> str:
    """The fingerprint of the first certificate in a PEM file (an operator's may be a
    chain, or have text before it); ValueError if it holds none."""
    block = _PEM_BLOCK.search(path.read_text(encoding="ascii", errors="replace"))
    if block is None:
        raise ValueError(f"{path} holds no PEM certificate")
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(block.group(0)))


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


# -- the server's side: its certificate and its TLS context ------------------------------


class CertificateError(Exception):
    """The server's certificate cannot be had or used; the message says what to do."""


def default_folder(data_dir: str, host: str) -> Path:
    """Where a server on `host` keeps the certificate it made itself: a folder of its own
    (mode 0700) in the data directory, holding `cert.pem` and `key.pem`."""
    return Path(data_dir, f"tls-{host}")


def self_signed(folder: Path, host: str) -> Tuple[Path, Path]:
    """The certificate and key in `folder`, made first (a self-signed ECDSA P-256
    certificate for `host`, by the openssl command) if the folder does not exist yet.

    They are made in a folder beside it and renamed into place, so two servers starting at
    once never see half of one or pair one's key with the other's certificate."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if folder.exists():
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError(
            "--tls needs the openssl command to make its certificate: install openssl, or "
            "give your own with --tls-cert CERT.pem --tls-key KEY.pem"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    making = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))  # mode 0700
    try:
        _openssl_req(openssl, making / "cert.pem", making / "key.pem", host)
        os.chmod(making / "key.pem", 0o600)
        try:
            os.rename(making, folder)
        except OSError:
            if not folder.exists():  # else another server made it first: use that one
                raise
    finally:
        shutil.rmtree(making, ignore_errors=True)
    return cert, key


def _openssl_req(openssl: str, cert: Path, key: Path, host: str) -> None:
    """Run openssl to make a self-signed P-256 certificate for `host`, valid ten years."""
    command = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-sha256", "-nodes", "-days", "3650", "-keyout", str(key), "-out", str(cert),
        "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host},DNS:localhost",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        said = getattr(exc, "stderr", b"") or b""
        detail = said.decode("utf-8", "replace").strip().splitlines()[-1:] or [str(exc)]
        raise CertificateError(
            f"openssl could not make a certificate ({detail[0]}): "
            "give your own with --tls-cert CERT.pem --tls-key KEY.pem"
        ) from None


def server_context(cert: Path, key: Path) -> Tuple[ssl.SSLContext, str]:
    """A server's TLS context (TLS 1.2 at least) with this certificate and key, and the
    certificate's fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
        return context, fingerprint_of_pem_file(cert)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise CertificateError(
            f"cannot use the certificate {cert} with the key {key}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None
