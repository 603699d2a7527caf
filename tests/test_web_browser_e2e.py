"""The web client end to end: the built pyz serves the page, chromium runs it.

Two browser pages (each in a context of its own, as two people's browsers) and the plain
terminal client chat together; a password; a taken name; the server killed and restarted
mid-conversation, and a reload, with nothing lost or doubled; a phone-sized viewport;
hostile texts shown inert; rooms. The screenshots of docs/web.md are written here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional

import pytest
from browser import PHONE, WAIT_MS, NewPage, browser, new_page  # noqa: F401
from conftest import free_port
from drivers import LONG_WAIT, PlainClient, stop_server, wait_until
from wire import start_pyz_server

DOCS = Path(__file__).resolve().parent.parent / "docs"
PASSWORD = "correct horse"


@dataclass
class WebServer:
    """A pyz server with its web client, and how to start it again on the same ports."""

    proc: subprocess.Popen  # type: ignore[type-arg]
    address: Any
    url: str
    argv: List[str]


def _serve(pyz: Path, argv: List[str], web_port: int) -> WebServer:
    proc, address = start_pyz_server(str(pyz), *argv)
    url = f"http://127.0.0.1:{web_port}/"

    def page_served() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    wait_until(page_served, f"the page at {url}")
    return WebServer(proc, address, url, argv)


@pytest.fixture
def web_servers(pyz: Path, tmp_path: Path) -> Iterator[Any]:
    """Starts pyz servers with a web port and a history file; all are killed at the end."""
    started: List[WebServer] = []

    def start(*extra: str) -> WebServer:
        web_port = free_port()
        argv = ["--bind", "127.0.0.1", "--port", str(free_port()), "--web-port", str(web_port),
                "--no-discovery", "--log-level", "warning", "--name", "testlab",
                "--history-db", str(tmp_path / f"history{len(started)}.db"), *extra]  # fmt: skip
        server = _serve(pyz, argv, web_port)
        started.append(server)
        return server

    def restart(server: WebServer) -> WebServer:
        web_port = int(server.argv[server.argv.index("--web-port") + 1])
        again = _serve(pyz, server.argv, web_port)
        started.append(again)
        return again

    start.restart = restart  # type: ignore[attr-defined]
    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.communicate(timeout=10)


@pytest.fixture
def plain_clients(pyz: Path) -> Iterator[Any]:
    started: List[PlainClient] = []

    def start(address: Any, name: str, *extra: str, env: Optional[dict] = None) -> PlainClient:
        client = PlainClient(pyz, address, name, *extra, env=env)
        started.append(client)
        return client

    yield start
    for client in started:
        client.kill()


# --------------------------------------------------------------------------- the page


def open_chat(new_page: NewPage, url: str, name: str, **page_options: Any) -> Any:  # noqa: F811
    """A page logged in as `name`, by keyboard alone (type the name, Enter)."""
    page = new_page(**page_options)
    page.goto(url)
    log_in(page, name)
    return page


def log_in(page: Any, name: str, password: Optional[str] = None) -> None:
    page.get_by_label("Name").fill(name)
    if password is not None:
        page.get_by_label("Password").fill(password)
    page.get_by_label("Password" if password is not None else "Name").press("Enter")
    wait_status(page, f"connected as {name}")


def wait_status(page: Any, text: str, timeout: float = WAIT_MS) -> None:
    page.wait_for_function(
        "(t) => document.getElementById('status').textContent.includes(t)",
        arg=text,
        timeout=timeout,
    )


def say(page: Any, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def texts(page: Any) -> List[str]:
    """The texts of the message lines shown, in order."""
    return list(page.eval_on_selector_all("#log .msg .text", "els => els.map(e => e.textContent)"))


def wait_texts(page: Any, *wanted: str, timeout: float = WAIT_MS) -> None:
    """Waits until every text in `wanted` is shown as a message line."""
    page.wait_for_function(
        "(wanted) => { const shown = [...document.querySelectorAll('#log .msg .text')]"
        ".map(e => e.textContent); return wanted.every(w => shown.includes(w)); }",
        arg=list(wanted),
        timeout=timeout,
    )


def plain_texts(client: PlainClient) -> List[str]:
    return [text for _, text in client.messages()]


def no_problems(page: Any) -> None:
    """No script error on the page; a failed WebSocket while the server was down is fine."""
    problems = [p for p in page.problems if "WebSocket" not in p and "ERR_CONNECTION" not in p]
    assert problems == []


def screenshot(page: Any, name: str) -> None:
    """Writes docs/NAME atomically (a temp file renamed), so two runs cannot tear it."""
    handle, temp = tempfile.mkstemp(dir=DOCS, prefix=f".{name}.", suffix=".png")
    os.close(handle)
    try:
        page.screenshot(path=temp)
        os.replace(temp, DOCS / name)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


# --------------------------------------------------------------------------- tests


def test_two_pages_and_a_plain_client_chat(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    server = web_servers()
    alice = open_chat(new_page, server.url, "alice")
    assert not alice.get_by_label("Sound").is_checked()  # the sound is off by default
    bob = open_chat(new_page, server.url, "bob")
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    bob.get_by_role("complementary", name="Online").get_by_role("button", name="carol").wait_for()

    say(alice, "hello from alice's browser")
    wait_texts(bob, "hello from alice's browser")
    wait_until(lambda: "hello from alice's browser" in plain_texts(carol), "carol sees alice")
    carol.type("hello from carol's terminal")
    wait_texts(alice, "hello from carol's terminal")
    wait_texts(bob, "hello from carol's terminal")
    say(bob, "/me waves at alice")
    mention = alice.locator("#log .msg.mention", has_text="waves at alice")
    mention.wait_for()
    assert mention.locator(".from").text_content() == "bob"

    # A private message by clicking a name: the input gets "/msg bob ".
    alice.get_by_role("complementary", name="Online").get_by_role("button", name="bob").click()
    assert alice.get_by_label("Message", exact=True).input_value() == "/msg bob "
    alice.get_by_label("Message", exact=True).press_sequentially("just for you")
    alice.get_by_label("Message", exact=True).press("Enter")
    private = bob.locator("#log .msg.private", has_text="just for you")
    private.wait_for()
    assert "mention" in (private.get_attribute("class") or "")
    wait_texts(alice, "just for you")
    say(bob, "back to all")
    wait_until(lambda: "back to all" in plain_texts(carol), "carol sees bob")
    assert "just for you" not in plain_texts(carol)

    # While the tab is hidden, the title counts what came and marks a mention.
    alice.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    say(bob, "alice, look")
    alice.wait_for_function("() => document.title.startsWith('(1!) ')")
    alice.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    alice.wait_for_function("() => !document.title.startsWith('(')")

    say(alice, "/who")
    alice.locator("#log .line.system", has_text="(3): ").wait_for()
    for page in (alice, bob):
        for text in ("hello from alice's browser", "hello from carol's terminal", "back to all"):
            assert texts(page).count(text) == 1
        no_problems(page)
    screenshot(alice, "web-desktop.png")


def test_password(web_servers: Any, new_page: NewPage, tmp_path: Path) -> None:  # noqa: F811
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    server = web_servers("--password-file", str(secret))
    page = new_page()
    page.goto(server.url)
    page.get_by_label("Password").wait_for()
    page.get_by_label("Name").fill("dora")
    page.get_by_label("Password").fill("wrong")
    page.get_by_label("Password").press("Enter")
    page.locator("#login-problem", has_text="Wrong password").wait_for()
    assert page.get_by_label("Password").input_value() == ""  # not kept in the page
    log_in(page, "dora", PASSWORD)
    say(page, "in with the password")
    wait_texts(page, "in with the password")
    stored = page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
    assert PASSWORD not in stored  # the password is never stored
    no_problems(page)


def test_name_taken(web_servers: Any, new_page: NewPage, plain_clients: Any) -> None:  # noqa: F811
    server = web_servers()
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    carol.type("said before anybody came")
    wait_until(lambda: "said before anybody came" in plain_texts(carol), "carol's echo")
    page = new_page()
    page.goto(server.url)
    page.get_by_label("Name").fill("Carol")
    page.get_by_label("Name").press("Enter")
    problem = page.locator("#login-problem")
    problem.filter(has_text="online already").wait_for()
    assert "Carol2" in (problem.text_content() or "")
    assert page.get_by_label("Name").input_value() == "Carol2"
    page.get_by_label("Name").press("Enter")
    wait_status(page, "connected as Carol2")
    # The history on joining, in the list screen readers follow.
    page.get_by_role("log").get_by_text("said before anybody came").wait_for()
    no_problems(page)


def test_server_restart_and_reload_lose_and_double_nothing(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    server = web_servers()
    alice = open_chat(new_page, server.url, "alice")
    bob = open_chat(new_page, server.url, "bob")
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    say(alice, "before the crash")
    wait_texts(bob, "before the crash")
    wait_until(lambda: "before the crash" in plain_texts(carol), "carol sees it")

    stop_server(server.proc, signal.SIGKILL)
    for page in (alice, bob):
        wait_status(page, "offline")
    down = ["alice typed this while down", "and this", "bob typed this while down"]
    say(alice, down[0])
    say(alice, down[1])
    say(bob, down[2])
    carol.type("carol typed this while down")
    down.append("carol typed this while down")
    alice.locator("#pending li", has_text=down[1]).wait_for()

    web_servers.restart(server)
    everything = ["before the crash", *down]
    for page in (alice, bob):
        wait_texts(page, *everything, timeout=LONG_WAIT * 1000)
    wait_until(lambda: all(t in plain_texts(carol) for t in everything), "carol sees all")
    say(bob, "after the restart")
    wait_texts(alice, "after the restart")
    alice.reload()
    wait_status(alice, "connected as alice")
    say(alice, "after the reload")
    wait_texts(bob, "after the reload")
    wait_until(lambda: "after the reload" in plain_texts(carol), "carol sees the last one")
    everything += ["after the restart", "after the reload"]
    wait_texts(alice, *everything)
    for page in (alice, bob):
        shown = texts(page)
        assert [t for t in everything if shown.count(t) != 1] == [], shown
        assert page.locator("#pending li").count() == 0
        no_problems(page)
    heard = plain_texts(carol)
    assert [t for t in everything if heard.count(t) != 1] == [], heard


def test_phone(web_servers: Any, new_page: NewPage) -> None:  # noqa: F811
    server = web_servers()
    bob = open_chat(new_page, server.url, "bob")
    phone = open_chat(new_page, server.url, "pia", viewport=PHONE, color_scheme="dark")
    online = phone.get_by_role("complementary", name="Online", exact=True)
    toggle = phone.get_by_role("button", name="Online (2)")
    assert online.is_hidden() and toggle.is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    say(phone, "typed on a phone")
    wait_texts(bob, "typed on a phone")
    say(bob, "pia: hello phone, https://example.org/x and more")
    wait_texts(phone, "pia: hello phone, https://example.org/x and more")
    box = phone.get_by_label("Message", exact=True).bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(phone, "web-phone.png")
    toggle.click()
    assert online.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    assert online.get_by_role("button", name="bob").is_visible()
    no_problems(phone)


HOSTILE = [
    "<img src=x onerror=\"window.__pwned='img'\">",
    "<script>window.__pwned='script'</script>",
    "javascript:window.__pwned='link' <a href=\"javascript:window.__pwned='a'\">x</a>",
    "bidi \u202eevil\u202c override",
]


def test_hostile_texts_are_inert(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    server = web_servers()
    page = open_chat(new_page, server.url, "alice")
    mallory = plain_clients(server.address, "mallory")
    wait_until(lambda: mallory.has_line(lambda line: "you are" in line), "mallory logged in")
    for text in HOSTILE:
        mallory.type(text)
    mallory.type("a link https://example.org/safe")
    shown = [text.replace("\u202e", "").replace("\u202c", "") for text in HOSTILE]
    wait_texts(page, *shown, "a link https://example.org/safe")
    say(page, HOSTILE[0])  # the page's own text, echoed, too
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('#log .msg.own .text')]"
        ".some(e => e.textContent === t)",
        arg=HOSTILE[0],
    )
    page.wait_for_timeout(300)  # an onerror handler of a broken image would have run by now
    assert page.evaluate("() => window.__pwned") is None
    log = page.locator("#log")
    assert log.locator("img, script, iframe, object, embed").count() == 0
    links = log.locator("a")
    assert links.count() == 1
    assert links.get_attribute("href") == "https://example.org/safe"
    assert links.get_attribute("rel") == "noopener noreferrer"
    assert "\u202e" not in "".join(texts(page))
    no_problems(page)


def test_rooms(web_servers: Any, new_page: NewPage, plain_clients: Any) -> None:  # noqa: F811
    server = web_servers("--rooms", "dev")
    alice = open_chat(new_page, server.url, "alice")
    bob = open_chat(new_page, server.url, "bob")
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    rooms = alice.get_by_role("navigation", name="Rooms")
    say(alice, "/join dev")
    rooms.get_by_role("button", name="#dev").wait_for()
    alice.locator("#log .line.system", has_text="you joined #dev").wait_for()
    say(alice, "/topic release on Friday")
    alice.locator("#topic", has_text="release on Friday").wait_for()
    say(alice, "only for dev")
    wait_texts(alice, "only for dev")
    say(bob, "/join #dev")
    wait_texts(bob, "only for dev")  # the room's history on joining
    bob.locator("#topic", has_text="release on Friday").wait_for()
    # Alt+1 shows the first room (keyboard); a message in #dev counts as unread there.
    bob.keyboard.press("Alt+1")
    bob.get_by_role("button", name="#general").and_(bob.locator("[aria-current=true]")).wait_for()
    say(alice, "more for dev")
    bob.get_by_role("button", name="#dev (1)").wait_for()
    say(bob, "in general")
    wait_until(lambda: "in general" in plain_texts(carol), "carol sees #general")
    say(alice, "/rooms")
    alice.locator("#log .line.system", has_text="#dev (2): release on Friday").wait_for()
    say(alice, "/part")
    alice.locator("#log .line.system", has_text="you left #dev").wait_for()
    assert rooms.get_by_role("button", name="#dev").count() == 0
    assert "only for dev" not in plain_texts(carol)
    for page in (alice, bob):
        no_problems(page)


def test_reload_sends_an_unanswered_message_once(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    """The echo of alice's message is lost on the way (the server relayed it); she reloads:
    the message stays in the outbox across the reload and goes again with its ref, and
    everybody, alice included, sees it once."""
    server = web_servers()
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    alice = new_page()
    lose_echoes = {"on": False}

    def relay(ws: Any) -> None:
        upstream = ws.connect_to_server()
        ws.on_message(upstream.send)

        def down(message: Any) -> None:
            if lose_echoes["on"] and '"from":"alice"' in str(message):
                return
            ws.send(message)

        upstream.on_message(down)

    alice.route_web_socket("**/ws", relay)
    alice.goto(server.url)
    log_in(alice, "alice")
    say(alice, "before")
    wait_texts(alice, "before")
    lose_echoes["on"] = True
    say(alice, "echo lost")
    wait_until(lambda: "echo lost" in plain_texts(carol), "carol sees it")
    alice.locator("#pending li", has_text="echo lost").wait_for()
    assert "echo lost" not in texts(alice)
    lose_echoes["on"] = False
    alice.reload()
    wait_texts(alice, "before", "echo lost")
    alice.wait_for_function("() => document.querySelectorAll('#pending li').length === 0")
    carol.type("after")
    wait_texts(alice, "after")
    assert [texts(alice).count(t) for t in ("before", "echo lost", "after")] == [1, 1, 1]
    assert plain_texts(carol).count("echo lost") == 1
    no_problems(alice)


def test_a_paste_goes_out_in_order_at_the_servers_pace(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    """More lines at once than the server's burst: paced by hello.limits (and
    rate_limited, if it comes), every line arrives once, in order, none refused."""
    server = web_servers("--burst", "20", "--rate", "10")
    carol = plain_clients(server.address, "carol")
    wait_until(lambda: carol.has_line(lambda line: "you are" in line), "carol logged in")
    page = new_page()
    refusals: List[str] = []

    def relay(ws: Any) -> None:
        upstream = ws.connect_to_server()
        ws.on_message(upstream.send)

        def down(message: Any) -> None:
            if '"rate_limited"' in str(message):
                refusals.append(str(message))
            ws.send(message)

        upstream.on_message(down)

    page.route_web_socket("**/ws", relay)
    page.goto(server.url)
    log_in(page, "paster")
    lines = [f"pasted line {n}" for n in range(45)]
    page.evaluate(
        "(lines) => { const box = document.getElementById('message');"
        " const form = document.getElementById('send-form');"
        " for (const line of lines) { box.value = line; form.requestSubmit(); } }",
        lines,
    )
    wait_texts(page, *lines, timeout=LONG_WAIT * 1000)
    assert texts(page) == lines
    wait_until(lambda: plain_texts(carol)[-1:] == lines[-1:], "carol sees the paste")
    assert [t for t in plain_texts(carol) if t.startswith("pasted")] == lines
    assert page.locator("#log .line.error").count() == 0
    assert refusals == []  # paced by hello.limits: the server never had to refuse
    no_problems(page)


# The events that make the page try at once: the network is back; the tab is seen again.
ONLINE = "() => window.dispatchEvent(new Event('online'))"
SEEN = (
    "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
    " document.dispatchEvent(new Event('visibilitychange')); }"
)


@pytest.mark.parametrize("event", [ONLINE, SEEN], ids=["online", "visible"])
def test_reconnects_at_once_when_the_network_is_back(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    event: str,
) -> None:
    """Offline for a while, the page waits longer between tries (backoff); the browser's
    `online` event, or the tab becoming visible, makes it try at once."""
    server = web_servers()
    page = open_chat(new_page, server.url, "nomad")
    stop_server(server.proc, signal.SIGKILL)
    # Wait for a long backoff: "reconnecting in N s" with N of 6 or more.
    page.wait_for_function(
        "() => /reconnecting in ([6-9]|1[0-9]) s/.test(document.getElementById('status')"
        ".textContent)",
        timeout=LONG_WAIT * 1000,
    )
    say(page, "typed without a network")
    web_servers.restart(server)
    page.evaluate(event)
    # Well within the 6 s the backoff still had to run: the event, not the timer.
    wait_status(page, "connected as nomad", timeout=4000)
    wait_texts(page, "typed without a network")
    assert page.get_by_role("log").get_by_text("back online as nomad").count() == 1
    no_problems(page)


def test_a_registered_name_is_refused_with_a_suggestion(
    web_servers: Any,
    new_page: NewPage,  # noqa: F811
    plain_clients: Any,
) -> None:
    """The page has no identity key: a name registered to a key (by the terminal client)
    is refused, with another one suggested."""
    server = web_servers()
    reggie = plain_clients(server.address, "reggie")
    wait_until(lambda: reggie.has_line(lambda line: "you are" in line), "reggie logged in")
    reggie.type("/register")
    wait_until(lambda: reggie.has_line(lambda line: "registered to your key" in line), "register")
    reggie.close_stdin()
    assert reggie.wait() == 0
    page = new_page()
    page.goto(server.url)
    page.get_by_label("Name").fill("reggie")
    page.get_by_label("Name").press("Enter")
    page.locator("#login-problem", has_text="Try reggie2?").wait_for()
    page.get_by_label("Name").press("Enter")
    wait_status(page, "connected as reggie2")
    no_problems(page)


def test_a_second_tab_is_a_session_of_its_own(web_servers: Any, new_page: NewPage) -> None:  # noqa: F811
    """Two tabs of one browser share localStorage, but not a session: the second asks
    for a name instead of pushing the first one out with its resume token; a reload
    of the first keeps its own."""
    server = web_servers()
    first = open_chat(new_page, server.url, "tabby")
    second = first.context.new_page()
    second.goto(server.url)
    second.get_by_label("Name").wait_for()
    assert second.get_by_label("Name").input_value() == ""
    log_in(second, "tabby2")
    first.reload()
    wait_status(first, "connected as tabby")
    assert "tabby2" not in (first.locator("#status").text_content() or "")
    say(first, "still the first tab")
    wait_texts(second, "still the first tab")
    assert second.locator("#status").text_content() == "connected as tabby2"
    no_problems(first)
