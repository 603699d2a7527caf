"""Throwaway TLS certificates for tests, made by the openssl binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Tuple

import pytest

from lanchat import tls

Certificate = Tuple[Path, Path, str]  # cert, key, fingerprint


def make_certificate(folder: Path, label: str) -> Certificate:
    """A self-signed P-256 certificate and key made by openssl, and its fingerprint."""
    cert, key = folder / f"{label}-cert.pem", folder / f"{label}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={label}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key, tls.fingerprint_of_pem_file(cert)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Certificate, Certificate]:
    """Two different certificates, A and B (the test is skipped without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl binary")
    folder = tmp_path_factory.mktemp("tls-client")
    return make_certificate(folder, "a"), make_certificate(folder, "b")
