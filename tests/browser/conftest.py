"""Browser tests: Debian's Chromium, driven by Playwright, against real servers.

One headless Chromium serves the whole session; each person in a test gets a
browser context of their own (their own storage, as two browsers would have).
Every server is the Procfile's web command on the test database, and every
wait is bounded.

Without /usr/bin/chromium or the playwright package these tests are skipped
with the reason, except under CI=true, where that is a failure. Without
playwright the test modules (which import it) are not even collected; the
one test of test_availability.py then shows why.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from flask import Flask

from tests.conftest import IN_CI
from tests.live import Server, start_server

try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        Page,
        Playwright,
        expect,
        sync_playwright,
    )
    from playwright.sync_api import Error as PlaywrightError

    PLAYWRIGHT_MISSING = False
except ImportError:  # only where the dev requirements are not installed
    PLAYWRIGHT_MISSING = True
    collect_ignore_glob = ["test_[!a]*.py"]

CHROMIUM = Path("/usr/bin/chromium")

# Without the networking flags Chromium keeps calling Google's services,
# which this machine cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

LAUNCH_TIMEOUT_MS = 30_000

# What any one step may wait: a page load, an element, a live update.
STEP_TIMEOUT_MS = 10_000

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# A short reconnect delay, so a page catches up in a fraction of a second.
SERVER_ENV = {"MESSENGER_SSE_RETRY_MS": "300"}

# A 4xx the page expects (a wrong password, say) still logs this line.
EXPECTED_CONSOLE = "Failed to load resource"


def launch_chromium(playwright: Playwright) -> Browser:
    """Start Debian's Chromium headless, with the flags this machine needs."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        timeout=LAUNCH_TIMEOUT_MS,
    )


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"browser tests need {reason} under CI=true", pytrace=False)

    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    if PLAYWRIGHT_MISSING:
        _unavailable("the playwright package (make .venv/.installed-dev)")

    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        _unavailable(f"{CHROMIUM} (apt-get install chromium)")

    expect.set_options(timeout=STEP_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def web_server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """The Procfile's web command on the test database, with short stream timers.

    Depends on ``app`` so the tables are emptied once the test is over.
    """
    with start_server(database_url, tmp_path / "server", env=SERVER_ENV) as server:
        yield server


@dataclass
class Browsing:
    """The contexts a test opened, and what went wrong in their pages."""

    browser: Browser
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self, base_url: str, viewport: dict[str, int] | None = None) -> Page:
        """A page in a fresh context: a person with a browser of their own."""
        context = self.browser.new_context(
            base_url=base_url,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(STEP_TIMEOUT_MS)
        context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"page: {error}"))
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error" and EXPECTED_CONSOLE not in message.text:
            self.errors.append(f"console: {message.text}")

    def close(self) -> None:
        """Close every context, ignoring ones the browser already lost."""
        for context in self.contexts:
            with contextlib.suppress(PlaywrightError):
                context.close()


@pytest.fixture
def browsing(browser: Browser) -> Iterator[Browsing]:
    """Open pages as different people; their scripts must raise no error."""
    session = Browsing(browser)
    try:
        yield session
    finally:
        session.close()

    assert session.errors == []


@pytest.fixture
def open_page(browsing: Browsing, web_server: Server) -> Callable[..., Page]:
    """A new person's page on the test server: ``open_page(viewport=PHONE)``."""

    def open_page(viewport: dict[str, int] | None = None) -> Page:
        return browsing.page(web_server.base_url, viewport)

    return open_page
