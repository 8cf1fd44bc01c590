"""Screenshots of every page, desktop and phone, for the README.

Starts the Procfile's web command on a fresh SQLite file, fills it with a few
people and messages, and saves one PNG per page and screen size. Run it with
``make screenshots`` (which writes ``docs/screenshots/``); a test runs it into
a temporary folder so it keeps working.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.conftest import DESKTOP, PHONE, STEP_TIMEOUT_MS, launch_chromium
from tests.browser.people import api_send, api_sign_up, api_start, log_in
from tests.conftest import PROJECT_DIR, migrate
from tests.live import Server, start_server

OUTPUT_DIR = PROJECT_DIR / "docs" / "screenshots"

SCREENS = {"desktop": DESKTOP, "phone": PHONE}

CONVERSATION = [
    ("bob", "Are we still on for Saturday?"),
    ("alice", "Yes! The trail starts at 9.\nBring water, it gets hot."),
    ("bob", "Perfect. Should I bring the map too?"),
    ("alice", "Please do, mine got soaked last time."),
    ("bob", "<b>Ha</b> — markup shows as text, by the way."),
]


def fill(server: Server) -> str:
    """Sign people up and give Alice a few conversations; return Bob's."""
    tokens = {
        name: api_sign_up(server, name)["token"]
        for name in ("alice", "bob", "carol", "dave", "erin")
    }
    api_start(server, tokens["dave"], "alice")
    erin = api_start(server, tokens["erin"], "alice")
    api_send(server, tokens["alice"], erin, "Thanks for the recipe!")
    carol = api_start(server, tokens["carol"], "alice")
    api_send(server, tokens["carol"], carol, "Did you see the match last night?")
    api_send(server, tokens["carol"], carol, "What a finish")

    bob = api_start(server, tokens["bob"], "alice")
    for name, text in CONVERSATION:
        api_send(server, tokens[name], bob, text)

    return bob


def shoot(page: Page, path: Path) -> None:
    """Save what the page shows, without the text cursor or a hover."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.screenshot(path=path, animations="disabled", caret="hide")


def take_screenshots(browser: Browser, directory: Path, output: Path) -> list[Path]:
    """Start a server under ``directory`` and write the PNGs into ``output``."""
    database = f"sqlite:///{directory / 'screenshots.sqlite3'}"
    migrate(database)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    with start_server(database, directory / "server") as server:
        bob = fill(server)
        pages = {}
        for screen, viewport in SCREENS.items():
            context = browser.new_context(
                base_url=server.base_url,
                viewport=viewport,  # type: ignore[arg-type]
                locale="en-US",
                timezone_id="UTC",
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = pages[screen] = context.new_page()
            page.goto("/")
            expect(page.get_by_role("button", name="Log in")).to_be_visible()
            written.append(output / f"access-{screen}.png")
            shoot(page, written[-1])

            log_in(page, "alice")
            names = page.locator("#conversation-list .conversation-name")
            expect(names).to_have_count(4)
            written.append(output / f"home-{screen}.png")
            shoot(page, written[-1])

        # Opening a conversation reads it, so every home page goes first.
        for screen, page in pages.items():
            page.goto(f"/conversations/{bob}")
            texts = page.locator("#message-list .message-text")
            expect(texts).to_have_count(len(CONVERSATION))
            written.append(output / f"conversation-{screen}.png")
            shoot(page, written[-1])
            page.context.close()

    return written


def main() -> None:
    """Write the screenshots into docs/screenshots/ (or the folder given)."""
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT_DIR
    with tempfile.TemporaryDirectory() as directory, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for path in take_screenshots(browser, Path(directory), output):
                print(path)  # noqa: T201
        finally:
            browser.close()


if __name__ == "__main__":
    main()
