"""The browser the web client's tests drive: Debian's chromium through Playwright.

One browser per test module (`browser` fixture), a fresh context and page per test
(`new_page`). Where `/usr/bin/chromium` or Playwright is missing the tests skip, except
when `LANCHAT_REQUIRE_BROWSER=1` (CI sets it): then they fail, so CI never skips them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parent.parent / "lanchat" / "web" / "static"
WAIT_MS = 15_000  # the longest any one expected state of a page may take
PHONE = {"width": 360, "height": 640}
DESKTOP = {"width": 1100, "height": 700}


def _unavailable(why: str) -> None:
    if os.environ.get("LANCHAT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LANCHAT_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium for the whole module (root needs --no-sandbox)."""
    yield from launch_chromium()


def launch_chromium(*args: str) -> Iterator[Any]:
    """Headless chromium with these extra command-line arguments, until the generator ends."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (requirements-dev.txt)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", *args], timeout=WAIT_MS * 2
        )
        try:
            yield chromium
        finally:
            chromium.close()


NewPage = Callable[..., Any]


@pytest.fixture
def new_page(browser: Any) -> Iterator[NewPage]:
    """Pages in contexts of their own (own storage, as separate browsers), closed after.

    Each page records its console errors and uncaught exceptions in `page.problems`."""
    contexts: List[Any] = []

    def make(
        viewport: Any = None, color_scheme: str = "light", ignore_https_errors: bool = False
    ) -> Any:
        context = browser.new_context(
            viewport=viewport or DESKTOP,
            color_scheme=color_scheme,
            ignore_https_errors=ignore_https_errors,
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda error: page.problems.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda message: message.type == "error" and page.problems.append(message.text),
        )
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def load_scripts(page: Any, *names: str) -> None:
    """Loads the page's own script files into a blank page (for their pure functions)."""
    page.goto("about:blank")
    for name in names:
        page.add_script_tag(content=(STATIC / name).read_text(encoding="utf-8"))
