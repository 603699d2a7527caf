"""The web client over https: the built pyz with `--tls` serves the page and its WebSocket
over TLS, and chromium, with the self-signed certificate accepted explicitly, chats there
with a raw lanchat client over TLS.

The page is opened under a LAN name (`lanchat.test`, mapped to 127.0.0.1 inside chromium
only): `http://127.0.0.1` and `http://localhost` are secure contexts by themselves, so
only a name that is not loopback shows what https changes. Over https the page is a
secure context and offers desktop notifications; the same page over plain http, from the
same name, is not and does not. Without the certificate accepted the browser refuses the
page (the warning docs/security.md explains); a certificate from an organisation's CA,
given as docs/security.md says (the chain file), verifies from the root alone.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from browser import NewPage, launch_chromium, new_page  # noqa: F401
from conftest import free_port
from test_irc_gateway import heard
from test_web_browser_e2e import log_in, no_problems, say, wait_texts
from wire import RawClient, start_pyz_server
from wsclient import handshake_request

LAN_HOST = "lanchat.test"  # a name, not loopback: reaches 127.0.0.1 inside chromium only
Server = Tuple[str, int, int]  # lanchat host, lanchat port, web port


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium that resolves LAN_HOST to 127.0.0.1 (and nothing else differently)."""
    yield from launch_chromium(f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1")


@pytest.fixture
def web_server(pyz: Path) -> Iterator[Callable[..., Server]]:
    """Starts pyz servers with a web port (extra options given); all killed at the end."""
    started: List[subprocess.Popen] = []  # type: ignore[type-arg]

    def start(*extra: str) -> Server:
        web_port = free_port()
        proc, (host, port) = start_pyz_server(
            str(pyz), "--bind", "127.0.0.1", "--port", str(free_port()),
            "--web-port", str(web_port), "--no-discovery", "--no-history",
            "--log-level", "warning", "--name", "testlab", *extra,
        )  # fmt: skip
        started.append(proc)
        return host, port, web_port

    yield start
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)


def page_served(url: str) -> bool:
    """Whether the page at this https URL answers 200 (any certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=5, context=context) as answer:
        return bool(answer.status == 200)


class TlsRawClient(RawClient):
    """A raw lanchat client over TLS that trusts exactly one certificate."""

    def __init__(self, address: Tuple[str, int], cafile: Path) -> None:
        super().__init__(address)
        context = ssl.create_default_context(cafile=str(cafile))
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")


def upgrade_over_tls(address: Tuple[str, int], cert: Path, origin: str) -> int:
    """The status of the answer to a WebSocket upgrade at /ws over TLS from this origin."""
    context = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(address, timeout=5) as plain:
        with context.wrap_socket(plain, server_hostname="localhost") as sock:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                handshake_request(address, key, Host=f"localhost:{address[1]}", Origin=origin)
            )
            head = b""
            while b"\r\n" not in head:
                data = sock.recv(4096)
                assert data, f"closed before a status line: {head!r}"
                head += data
    return int(head.split(b" ")[1])


def test_the_https_page_may_open_its_websocket_and_other_sites_may_not(
    web_server: Callable[..., Server], certificate: Tuple[Path, Path]
) -> None:
    cert, key = certificate
    _, _, web_port = web_server("--tls", "--tls-cert", str(cert), "--tls-key", str(key))
    address = ("127.0.0.1", web_port)
    assert upgrade_over_tls(address, cert, f"https://localhost:{web_port}") == 101
    assert upgrade_over_tls(address, cert, "https://elsewhere.example") == 403
    assert upgrade_over_tls(address, cert, f"https://localhost:{web_port + 1}") == 403


def secure_context(page: Any) -> bool:
    return bool(page.evaluate("window.isSecureContext"))


def test_the_page_over_https_is_a_secure_context_and_chats(
    web_server: Callable[..., Server],
    new_page: NewPage,  # noqa: F811
    certificate: Tuple[Path, Path],
) -> None:
    cert, key = certificate
    host, port, web_port = web_server("--tls", "--tls-cert", str(cert), "--tls-key", str(key))
    url = f"https://{LAN_HOST}:{web_port}/"
    assert page_served(f"https://127.0.0.1:{web_port}/")

    page = new_page(ignore_https_errors=True)
    page.goto(url)
    assert page.evaluate("location.protocol") == "https:"
    assert secure_context(page)
    assert page.locator("#notify").is_visible(), "notifications are offered in a secure context"
    log_in(page, "alice")

    bob = TlsRawClient((host, port), cert)
    assert bob.expect("hello")["server"] == "testlab"
    bob.send({"type": "login", "name": "bob", "version": "4.0.0"})
    bob.expect("welcome")
    bob.send({"type": "say", "text": "hello over tls"})
    wait_texts(page, "hello over tls")
    say(page, "hello back from https")
    assert heard(bob, "message", text="hello back from https")["from"] == "alice"
    no_problems(page)


def test_the_browser_refuses_the_self_signed_certificate_unless_told(
    web_server: Callable[..., Server],
    new_page: NewPage,  # noqa: F811
    certificate: Tuple[Path, Path],
) -> None:
    from playwright.sync_api import Error as PlaywrightError

    cert, key = certificate
    _, _, web_port = web_server("--tls", "--tls-cert", str(cert), "--tls-key", str(key))
    page = new_page()
    with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
        page.goto(f"https://{LAN_HOST}:{web_port}/")


def test_the_same_page_over_plain_http_is_no_secure_context(
    web_server: Callable[..., Server],
    new_page: NewPage,  # noqa: F811
) -> None:
    _, _, web_port = web_server()
    page = new_page()
    page.goto(f"http://{LAN_HOST}:{web_port}/")
    log_in(page, "carol")  # the page works, over ws://
    assert not secure_context(page)
    assert page.locator("#notify").is_hidden()


# What a strict verifier (Python 3.13's default context) wants of a certificate a CA signed.
KEY_IDS = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def organisation_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root CA, an intermediate CA it signed, and a server certificate for localhost the
    intermediate signed (`chat.pem`, its key `chat-key.pem`, `chat-chain.pem` = server
    then intermediate), as an organisation's own CA hands them out; the folder."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    folder = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    (folder / "ca.ext").write_text(
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n" + KEY_IDS
    )
    (folder / "chat.ext").write_text(
        "subjectAltName=DNS:localhost,DNS:chat.example.lan\nextendedKeyUsage=serverAuth\n" + KEY_IDS
    )
    openssl(folder, "req", "-x509", *ec, "-keyout", "root-key.pem", "-out", "root.pem", "-days",
            "2", "-subj", "/CN=Test Root CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, issuer, subject, ext in (
        ("mid", "root", "/CN=Test Intermediate CA", "ca.ext"),
        ("chat", "mid", "/CN=chat.example.lan", "chat.ext"),
    ):
        openssl(folder, "req", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subject)  # fmt: skip
        openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem",
                "-CAkey", f"{issuer}-key.pem", "-CAcreateserial", "-out", f"{name}.pem",
                "-days", "2", "-extfile", ext)  # fmt: skip
    chain = (folder / "chat.pem").read_text() + (folder / "mid.pem").read_text()
    (folder / "chat-chain.pem").write_text(chain)
    return folder


def test_a_certificate_from_an_organisations_ca_is_served_with_its_chain(
    web_server: Callable[..., Server], organisation_ca: Path
) -> None:
    """What docs/security.md tells an operator to give: the chain file and the key. A
    client that trusts only the root (as the organisation's machines do) verifies both
    the page and the lanchat port, host name included: only if the server sends the
    intermediate certificate along."""
    chain, key = organisation_ca / "chat-chain.pem", organisation_ca / "chat-key.pem"
    host, port, web_port = web_server("--tls-cert", str(chain), "--tls-key", str(key))
    root = ssl.create_default_context(cafile=str(organisation_ca / "root.pem"))
    with urllib.request.urlopen(f"https://localhost:{web_port}/", timeout=5, context=root) as page:
        assert page.status == 200
    lanchat = TlsRawClient((host, port), organisation_ca / "root.pem")
    assert lanchat.expect("hello")["server"] == "testlab"
