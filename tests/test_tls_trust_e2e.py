"""Trust by address end to end: the built pyz client in plain mode against a pyz server
that comes back on the same port under another name. With another certificate it is
refused loudly (exit 1); with the same one it is a renamed server, accepted and said."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import pytest
import test_tls_client_e2e
import tlscerts
from test_tls_client_e2e import Servers, say, trusted
from tlscerts import Certificate

pytestmark = pytest.mark.pyz

certificates = tlscerts.certificates  # the shared fixtures, made this module's own
servers = test_tls_client_e2e.servers
env = test_tls_client_e2e.env


def test_a_new_name_with_another_certificate_at_a_known_address_exits_1_loudly(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, b = certificates
    address = servers.start("den", a)
    assert say(pyz, address, env, "hello den").returncode == 0
    servers.restart(address, "lab", b)  # somebody else answers there, under a new name
    refused = say(pyz, address, env, "do not send this")
    assert refused.returncode == 1
    assert "you are bob" not in refused.stdout and "do not send this" not in refused.stdout
    assert refused.stderr.startswith(
        f"lanchat: WARNING: the server at 127.0.0.1:{address[1]} has changed its name"
    )
    assert f"was: 'den' with {a[2]} (first seen " in refused.stderr
    assert f"now: 'lab' with {b[2]}" in refused.stderr
    assert "lanchat client --forget-server den" in refused.stderr
    assert f"lanchat client --tls-fingerprint {b[2]}" in refused.stderr
    assert (trusted(env, "den"), trusted(env, "lab")) == (a[2], None)


def test_a_renamed_server_with_the_same_certificate_is_joined_and_said(
    pyz: Path, servers: Servers, certificates: Tuple[Certificate, Certificate], env: Dict[str, str]
) -> None:
    a, _ = certificates
    address = servers.start("den", a)
    assert say(pyz, address, env, "hello den").returncode == 0
    servers.restart(address, "lab", a)  # its operator renamed it
    renamed = say(pyz, address, env, "hello lab")
    assert renamed.returncode == 0, renamed.stderr
    assert "bob: hello lab" in renamed.stdout
    assert renamed.stderr.count("\n") == 1, renamed.stderr
    assert f"server 'lab' at 127.0.0.1:{address[1]} was called 'den'" in renamed.stderr
    assert (trusted(env, "den"), trusted(env, "lab")) == (None, a[2])
