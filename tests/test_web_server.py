"""The web port: HTTP for the page's files and lanchat over an RFC 6455 WebSocket at /ws.

Real sockets to in-process servers (and the built pyz for the command line), spoken to
by `wsclient`, a raw HTTP and WebSocket client written without lanchat's code.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, List, Tuple

import pytest
import wsclient
from conftest import ROOT, MakeServer, discover_on_loopback, free_port, pyz_command
from wire import RawClient, login
from wsclient import BINARY, CLOSE, PING, PONG, TEXT, WebSocketClient, frame_bytes, get

from lanchat import lan, server

STATIC = ROOT / "lanchat" / "web" / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    wsclient.close_all()


@pytest.fixture
def web(make_server: MakeServer) -> Iterator[SimpleNamespace]:
    """A server; `.web` is its web address, `.chat` its lanchat address."""
    started = make_server()
    assert started.web_address is not None
    yield SimpleNamespace(server=started, web=started.web_address, chat=started.address)


def assert_secure_headers(response: wsclient.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- HTTP --------------------------------------------------------------------------------


def test_get_of_the_root_is_index_html_with_the_security_headers(web) -> None:
    index = (STATIC / "index.html").read_bytes()
    for path in ("/", "/index.html", "/?reload=1"):
        response = get(web.web, path)
        assert response.status == 200
        assert response.body == index
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["content-length"] == str(len(index))
        assert response.headers["connection"] == "close"
        assert_secure_headers(response)


def test_every_file_of_the_static_folder_is_served_with_its_type(web) -> None:
    types = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}
    for path in STATIC.iterdir():
        response = get(web.web, "/" + path.name)
        assert response.status == 200, path.name
        assert response.body == path.read_bytes()
        if path.suffix in types:
            assert response.headers["content-type"].startswith(types[path.suffix])


def test_head_has_the_headers_and_no_body(web) -> None:
    response = get(web.web, "/", method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert response.headers["content-length"] == str(len((STATIC / "index.html").read_bytes()))
    assert_secure_headers(response)


@pytest.mark.parametrize(
    "path", ["/nothing.html", "/../server.py", "/static/index.html", "/%2e%2e/server.py", "/ws/"]
)
def test_an_unknown_path_is_404(web, path: str) -> None:
    response = get(web.web, path)
    assert response.status == 404
    assert_secure_headers(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "TRACE"])
def test_methods_other_than_get_and_head_are_405(web, method: str) -> None:
    response = get(web.web, "/", method=method)
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert_secure_headers(response)


def test_a_request_head_over_8_kib_is_431_without_waiting_for_its_end(web) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 9000  # no end yet
    response, _ = wsclient.http_request(web.web, request)
    assert response.status == 431
    assert_secure_headers(response)
    # Just under the limit is fine.
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: "
    fits = head + b"a" * (8192 - len(head) - 4) + b"\r\n\r\n"
    assert len(fits) == 8192
    assert wsclient.http_request(web.web, fits)[0].status == 200


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /\r\n\r\n", b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", b"\xff\xfe / HTTP/1.1\r\n\r\n"],
)
def test_a_malformed_request_is_400(web, request_bytes: bytes) -> None:
    assert wsclient.http_request(web.web, request_bytes)[0].status == 400


def test_a_request_not_sent_within_the_login_timeout_gets_408(make_server: MakeServer) -> None:
    started = make_server(login_timeout=0.5)
    sock = socket.create_connection(started.web_address, 5)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more
        began = time.monotonic()
        data = wsclient._read_until_closed(sock, 5)
        assert time.monotonic() - began < 4
        assert wsclient.Response(data).status == 408
    finally:
        sock.close()
    wait_for(lambda: started.connections == 0)


def test_a_file_fetch_never_becomes_a_session(web) -> None:
    for _ in range(3):
        assert get(web.web, "/").status == 200
    wait_for(lambda: web.server.connections == 0)
    assert web.server.users == 0


# -- the WebSocket handshake ----------------------------------------------------------------


def test_the_handshake_answers_101_and_the_hello_comes_first(web) -> None:
    client = WebSocketClient(web.web)
    assert client.status == 101
    assert "Upgrade: websocket" in client.response_head
    assert f"Content-Security-Policy: {CSP}" in client.response_head
    assert client.recv()["type"] == "hello"


def test_the_accept_key_is_the_one_of_rfc_6455s_example(web) -> None:
    """RFC 6455 section 1.3: this key is accepted with exactly this value."""
    request = wsclient.handshake_request(web.web, "dGhlIHNhbXBsZSBub25jZQ==")
    sock = socket.create_connection(web.web, 5)
    try:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
    finally:
        sock.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


def test_a_cross_origin_websocket_is_refused_with_403(web) -> None:
    for origin in ("http://evil.example", f"http://{web.web[0]}:{web.web[1] + 1}", "null"):
        client = WebSocketClient(web.web, Origin=origin)
        assert client.status == 403, origin
        assert "X-Content-Type-Options: nosniff" in client.response_head
    # Without an Origin (not a browser) it is let in.
    assert WebSocketClient(web.web, Origin="").status == 101


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Sec_WebSocket_Version": "8"}, 426),
        ({"Upgrade": ""}, 426),
        ({"Connection": "keep-alive"}, 426),
        ({"Sec_WebSocket_Key": "short"}, 400),
    ],
)
def test_a_bad_handshake_is_refused(web, headers, status: int) -> None:
    assert WebSocketClient(web.web, **headers).status == status


# -- chatting ---------------------------------------------------------------------------


def tcp_login(address: Tuple[str, int], name: str) -> RawClient:
    """A 4.3 TCP client that speaks rooms."""
    client = RawClient(address)
    client.expect("hello")
    client.send({"type": "login", "name": name, "version": "4.3.0", "rooms": []})
    client.expect("welcome", name=name)
    return client


def next_of(client: RawClient, kind: str, **fields: object) -> dict:
    """A TCP client's next frame of this type with these fields (others are skipped)."""
    while True:
        frame = client.recv_until(kind)[-1]
        if all(frame.get(name) == value for name, value in fields.items()):
            return frame


def test_a_web_client_and_a_tcp_client_chat_both_ways(web) -> None:
    browser = WebSocketClient(web.web)
    welcome = browser.login("webby")
    assert welcome["rooms"] == ["#general"]
    terminal = tcp_login(web.chat, "termy")
    browser.expect("join", name="termy")
    terminal.send({"type": "say", "text": "hello from the terminal"})
    said = browser.expect("message", text="hello from the terminal")
    assert said["from"] == "termy" and said["room"] == "#general"
    browser.send_text({"type": "say", "text": "hello from the browser", "ref": "r1"})
    assert browser.expect("message", text="hello from the browser")["ref"] == "r1"
    assert next_of(terminal, "message", text="hello from the browser")["from"] == "webby"
    # Private messages and a room.
    browser.send_text({"type": "say", "text": "psst", "to": "termy"})
    assert next_of(terminal, "message", text="psst")["to"] == "termy"
    terminal.send({"type": "join", "room": "#web"})
    next_of(terminal, "joined", room="#web")
    browser.send_text({"type": "join", "room": "#web"})
    assert browser.expect("joined", room="#web")["members"] == ["termy", "webby"]
    terminal.send({"type": "say", "text": "in the room", "room": "#web"})
    assert browser.expect("message", text="in the room")["room"] == "#web"
    browser.send_text({"type": "who"})
    assert sorted(browser.expect("online")["names"]) == ["termy", "webby"]
    # A 4.0 TCP client sees the web client too.
    old, _ = login(web.chat, "oldie")
    browser.send_text({"type": "say", "text": "to everybody"})
    assert next_of(old, "message", text="to everybody")["from"] == "webby"


def test_a_bad_message_is_an_error_frame_not_a_close(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    browser.send_frame(TEXT, b"not json")
    assert browser.expect("error")["code"] == "bad_frame"
    browser.send_text({"type": "say", "text": "still here"})
    browser.expect("message", text="still here")


def test_a_quit_closes_the_websocket_with_1000(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    other = tcp_login(web.chat, "termy")
    browser.send_text({"type": "quit"})
    assert browser.expect_close()[0] == 1000
    browser.expect_eof()
    assert next_of(other, "leave", name="webby")["reason"] == "quit"
    wait_for(lambda: web.server.connections == 1)


# -- framing ------------------------------------------------------------------------------


def test_fragmented_text_with_a_ping_in_between(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    text = "caf\u00e9 \u2603 fragments"
    data = json.dumps({"type": "say", "text": text}, ensure_ascii=False).encode()
    cut = data.index("\u00e9".encode()) + 1  # inside a two-byte character
    browser.sock.sendall(
        frame_bytes(TEXT, data[:cut], final=False)
        + frame_bytes(PING, b"between")
        + frame_bytes(0x0, data[cut : cut + 5], final=False)
        + frame_bytes(0x0, data[cut + 5 :])
    )
    pongs, texts = [], []
    while not (pongs and texts):
        final, opcode, payload = browser.recv_frame()
        assert final
        if opcode == PONG:
            pongs.append(payload)
        elif json.loads(payload)["type"] == "message":
            texts.append(json.loads(payload)["text"])
    assert (pongs, texts) == ([b"between"], [text])


def test_ping_is_answered_with_a_pong_of_the_same_payload(web) -> None:
    browser = WebSocketClient(web.web)
    browser.recv()  # hello
    for payload in (b"", b"x", bytes(range(125))):
        browser.send_frame(PING, payload)
        assert browser.recv_frame() == (True, PONG, payload)


def test_a_close_is_answered_with_a_close_then_the_end(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    other = tcp_login(web.chat, "termy")
    browser.send_frame(CLOSE, struct.pack("!H", 1001) + b"going")
    assert browser.expect_close() == (1001, "")
    browser.expect_eof()
    assert next_of(other, "leave", name="webby")["reason"] == "quit"
    wait_for(lambda: web.server.connections == 1)


def expect_closed_with(client: WebSocketClient, code: int) -> None:
    assert client.expect_close()[0] == code
    client.expect_eof()


def test_an_unmasked_frame_closes_with_1002(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    browser.send_frame(TEXT, b'{"type":"who"}', mask=False)
    expect_closed_with(browser, 1002)


@pytest.mark.parametrize(
    "raw",
    [
        frame_bytes(0x0, b"x"),  # a continuation of nothing
        frame_bytes(TEXT, b"{", final=False) + frame_bytes(TEXT, b"}"),  # a new message
        frame_bytes(PING, b"x", final=False),  # a fragmented control frame
        frame_bytes(PING, b"x" * 126),  # a long one
        frame_bytes(0x3, b"x"),  # a reserved opcode
        bytes([0xC1]) + frame_bytes(TEXT, b"x")[1:],  # RSV1 without an extension
        frame_bytes(CLOSE, b"\x03"),  # half a close code
        frame_bytes(CLOSE, struct.pack("!H", 1005)),  # a code that may not be sent
    ],
)
def test_protocol_errors_close_with_1002(web, raw: bytes) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    browser.sock.sendall(raw)
    expect_closed_with(browser, 1002)


def test_a_message_over_65536_bytes_closes_with_1009_from_its_header(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    # Only the header: the server must not wait for (or buffer) the payload to refuse it.
    browser.sock.sendall(frame_bytes(TEXT, b"", size=65537)[:-4] + os.urandom(4))
    expect_closed_with(browser, 1009)
    # Exactly the limit is fine; over it across fragments is not.
    browser = WebSocketClient(web.web)
    browser.login("webbo")
    say = json.dumps({"type": "say", "text": "x"}).encode()
    browser.send_frame(TEXT, say + b" " * (65536 - len(say)))
    browser.expect("message", text="x")
    browser.send_frame(TEXT, b" " * 40000, final=False)
    browser.send_frame(0x0, b" " * 30000)
    expect_closed_with(browser, 1009)


def test_a_binary_message_closes_with_1003(web) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    browser.send_frame(BINARY, b'{"type":"who"}')
    expect_closed_with(browser, 1003)


@pytest.mark.parametrize(
    "frames",
    [
        [(TEXT, b'{"type":"say","text":"\xff"}', True)],
        [(TEXT, b"\xe2\x98", False), (0, b"(", True)],
    ],
)
def test_invalid_utf8_closes_with_1007(web, frames) -> None:
    browser = WebSocketClient(web.web)
    browser.login("webby")
    for opcode, payload, final in frames:
        browser.send_frame(opcode, payload, final=final)
    expect_closed_with(browser, 1007)


# -- limits shared with the chat port ----------------------------------------------------


def assert_refused(address: Tuple[str, int], times: int = 1) -> None:
    """GETs over the limits get 503 with the reason, every time (the request they sent at
    once must not turn the refusal's close into a reset that loses the response)."""
    for _ in range(times):
        response = get(address, "/")
        assert response.status == 503
        assert b"connections" in response.body or b"full" in response.body
        assert_secure_headers(response)


def test_the_per_address_share_counts_both_ports(make_server: MakeServer) -> None:
    started = make_server(max_per_address=2)
    _, _ = login(started.address, "termy")
    browser = WebSocketClient(started.web_address)
    browser.login("webby")
    assert_refused(started.web_address, times=30)
    third = RawClient(started.address)
    next_of(third, "hello")
    assert next_of(third, "error")["code"] == "too_many_connections"
    browser.send_text({"type": "quit"})
    browser.expect_close()
    wait_for(lambda: started.connections == 1)
    assert get(started.web_address, "/").status == 200


def test_max_clients_counts_both_ports(make_server: MakeServer) -> None:
    started = make_server(max_clients=1)
    WebSocketClient(started.web_address).login("webby")
    third = RawClient(started.address)
    next_of(third, "hello")
    assert next_of(third, "error")["code"] == "server_full"
    assert_refused(started.web_address)


def test_shutdown_tells_web_clients_and_closes_with_1001(make_server: MakeServer) -> None:
    started = make_server()
    browser = WebSocketClient(started.web_address)
    browser.login("webby")
    started.shutdown("bye now")
    assert browser.expect("shutdown")["message"] == "bye now"
    assert browser.expect_close()[0] == 1001


# -- the command line, on the built pyz ------------------------------------------------


def start_pyz(*args: str) -> Tuple[subprocess.Popen, List[str]]:
    """`lanchat.pyz server ARGS` with no history; its start-up lines: up to the first web
    URL, or up to the listening line and half a second more without output."""
    proc = subprocess.Popen(
        pyz_command("server", "--no-history", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        started = b"listening on" in out
        ready, _, _ = select.select([proc.stdout], [], [], 0.5 if started else 20)
        chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
        out += chunk
        lines = out.decode().splitlines()
        if b"web client:" in out or (started and not chunk):
            return proc, lines
        if not chunk:
            break
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.communicate(timeout=5)}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    proc.communicate(timeout=10)


@pytest.fixture
def pyz_servers(pyz: Path) -> Iterator[List[subprocess.Popen]]:
    running: List[subprocess.Popen] = []
    yield running
    for proc in running:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def free_port_pair(offset: int = 100) -> int:
    """A port p where p and p + offset are free right now."""
    for _ in range(50):
        port = free_port()
        if port + offset > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports")


def test_pyz_serves_the_web_client_on_the_port_plus_100_and_prints_its_url(pyz_servers):
    port = free_port_pair()
    proc, lines = start_pyz("--bind", "127.0.0.1", "--port", str(port), "--no-discovery")
    pyz_servers.append(proc)
    assert lines[-1] == f"web client: http://127.0.0.1:{port + 100}/"
    assert get(("127.0.0.1", port + 100), "/").status == 200
    browser = WebSocketClient(("127.0.0.1", port + 100))
    browser.login("webby")
    terminal = tcp_login(("127.0.0.1", port), "termy")
    browser.send_text({"type": "say", "text": "from the pyz's web port"})
    next_of(terminal, "message", text="from the pyz's web port")
    stop(proc)


def test_pyz_web_port_and_no_web(pyz_servers) -> None:
    port, web_port = free_port(), free_port()
    proc, lines = start_pyz(
        "--bind", "127.0.0.1", "--port", str(port), "--web-port", str(web_port), "--no-discovery"
    )
    pyz_servers.append(proc)
    assert lines[-1] == f"web client: http://127.0.0.1:{web_port}/"
    assert get(("127.0.0.1", web_port), "/").status == 200
    stop(proc)
    port = free_port_pair()
    proc, lines = start_pyz(
        "--bind", "127.0.0.1", "--port", str(port), "--no-web", "--no-discovery"
    )
    pyz_servers.append(proc)
    assert not any("web client" in line for line in lines), lines
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port + 100), 5).close()
    stop(proc)


def test_pyz_web_port_falls_back_when_taken(pyz_servers) -> None:
    port = free_port_pair()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 100))
        taken.listen()
        proc, lines = start_pyz("--bind", "127.0.0.1", "--port", str(port), "--no-discovery")
        pyz_servers.append(proc)
        web_port = int(lines[-1].rsplit(":", 1)[1].rstrip("/"))
        assert port + 100 < web_port <= port + 130
        assert get(("127.0.0.1", web_port), "/").status == 200
    stop(proc)


def test_pyz_help_has_the_web_options_and_a_bad_web_port_is_a_usage_error(pyz) -> None:
    shown = subprocess.run(pyz_command("server", "--help"), capture_output=True, timeout=30)
    assert b"--web-port BASE" in shown.stdout and b"--no-web" in shown.stdout
    for bad in ("http", "0", "70000"):
        result = subprocess.run(
            pyz_command("server", "--web-port", bad), capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()[-1:]) == 1
        assert "--web-port" in result.stderr


def test_pyz_discover_shows_the_web_url(pyz_servers) -> None:
    port = free_port_pair()
    proc, lines = start_pyz("--bind", "127.0.0.1", "--port", str(port))
    pyz_servers.append(proc)
    url = f"http://127.0.0.1:{port + 100}/"
    assert lines[-1] == f"web client: {url}"
    found = discover_on_loopback(port, "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["web"] == url
    listed = discover_on_loopback(port)
    assert listed.stdout.split()[-1] == url
    stop(proc)


def test_the_urls_are_one_per_lan_address_or_the_bound_one(monkeypatch) -> None:
    monkeypatch.setattr(lan, "addresses", lambda: ["10.0.0.5", "192.168.1.9"])
    anywhere = SimpleNamespace(web_address=("0.0.0.0", 42169), fingerprint=None)
    assert server.web_urls(anywhere) == ["http://10.0.0.5:42169/", "http://192.168.1.9:42169/"]
    bound = SimpleNamespace(web_address=("10.0.0.5", 42170), fingerprint=None)
    assert server.web_urls(bound) == ["http://10.0.0.5:42170/"]
    assert server.web_urls(SimpleNamespace(web_address=("::1", 8000), fingerprint=None)) == [
        "http://[::1]:8000/"
    ]
    assert server.web_urls(SimpleNamespace(web_address=None, fingerprint=None)) == []


def test_lan_addresses_leave_out_loopback_and_fall_back_to_it(monkeypatch) -> None:
    def interface(name: str, address: str, loopback: bool) -> object:
        network = ipaddress.IPv4Interface(f"{address}/8").network
        return lan._Interface(name, address, network, None, loopback)

    found = [interface("lo", "127.0.0.1", True), interface("eth0", "10.0.0.5", False)]
    monkeypatch.setattr(lan, "_interfaces", lambda: found)
    assert lan.addresses() == ["10.0.0.5"]
    monkeypatch.setattr(lan, "_interfaces", lambda: found[:1])
    assert lan.addresses() == ["127.0.0.1"]


def test_the_pyz_is_rebuilt_when_a_static_file_or_the_folder_changes() -> None:
    """make's database: the zipapp depends on every file of the static folder, and on the
    folder itself (a file added or removed)."""
    database = subprocess.run(
        ["make", "-pn", "pyz"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout
    rule = next(line for line in database.splitlines() if line.startswith("dist/lanchat.pyz:"))
    prerequisites = set(rule.split(":", 1)[1].split())
    static = {f"lanchat/web/static/{path.name}" for path in STATIC.iterdir()}
    assert static | {"lanchat/web/static"} <= prerequisites


def hold_web_ports() -> Tuple[int, List[socket.socket]]:
    """A free lanchat port p, and listening sockets on all of p+100 to p+130."""
    for _ in range(20):
        port, held = free_port_pair(), []
        try:
            for web_port in range(port + 100, port + 131):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", web_port))
                sock.listen()
            return port, held
        except OSError:  # one is in use: try elsewhere
            for sock in held:
                sock.close()
    raise AssertionError("no free run of 31 ports")


def test_pyz_every_web_port_taken_stops_the_server_with_one_line(pyz) -> None:
    port, held = hold_web_ports()
    try:
        command = ["server", "--no-history", "--bind", "127.0.0.1", "--port", str(port)]
        result = subprocess.run(
            pyz_command(*command, "--no-discovery"), capture_output=True, text=True, timeout=30
        )
    finally:
        for sock in held:
            sock.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"lanchat: cannot listen on 127.0.0.1: every port from {port + 100} to {port + 130} "
        "is taken"
    ]
