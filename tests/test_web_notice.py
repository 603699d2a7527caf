"""The web page shows a notice (protocol 4.4) as `-ci- text`, apart from what people say,
also after a reload (the page rebuilds its log from its storage). Headless chromium on the
built pyz server's web port; the notice is sent by `wire.RawClient`."""

from __future__ import annotations

from typing import Any, List

from browser import NewPage, browser, new_page  # noqa: F401
from test_web_browser_e2e import no_problems, open_chat, wait_texts, web_servers  # noqa: F401
from wire import login

from lanchat import protocol


def shown(page: Any) -> List[str]:
    """The message lines of the log, as the reader sees them (without the time)."""
    return list(
        page.eval_on_selector_all(
            "#log .msg",
            "els => els.map(e => e.textContent.slice(e.querySelector('time').textContent.length))",
        )
    )


def test_the_page_shows_a_notice_with_dashes(
    web_servers: Any,  # noqa: F811
    new_page: NewPage,  # noqa: F811
) -> None:
    server = web_servers()
    page = open_chat(new_page, server.url, "bob")
    bot, _ = login(server.address, "ci")
    bot.send({**protocol.say("build 812 passed"), "notice": True})
    bot.send(protocol.say("an ordinary word"))
    wait_texts(page, "build 812 passed", "an ordinary word")
    assert shown(page) == ["-ci- build 812 passed", "ci: an ordinary word"]
    assert page.locator("#log .msg.notice").count() == 1
    page.reload()
    wait_texts(page, "build 812 passed", "an ordinary word")
    assert shown(page) == ["-ci- build 812 passed", "ci: an ordinary word"]
    no_problems(page)
