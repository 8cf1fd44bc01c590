"""Reach: errors beside their fields, a phone-sized screen, the keyboard alone."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, SERVER_ENV
from tests.browser.people import (
    api_sign_up,
    conversation_entry,
    messages,
    send,
    sign_up,
    start_conversation,
)
from tests.conftest import PASSWORD
from tests.live import start_server

# Enough presses of Tab to reach any control on a page from the top.
MAX_TABS = 12


def no_horizontal_scroll(page: Page) -> bool:
    """True when nothing on the page is wider than the screen."""
    width: bool = page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"
    )
    return width


def tab_to(page: Page, element_id: str) -> None:
    """Press Tab until the element with that id has the focus."""
    for _ in range(MAX_TABS):
        if page.evaluate("document.activeElement.id") == element_id:
            return

        page.keyboard.press("Tab")

    raise AssertionError(f"Tab never reached #{element_id}")


def test_access_errors_show_beside_their_field(open_page, web_server):
    api_sign_up(web_server, "alice")
    page = open_page()
    page.goto("/")
    username = page.get_by_label("Username", exact=True)
    password = page.get_by_label("Password", exact=True)
    username_error = page.locator("#access-username-error")
    password_error = page.locator("#access-password-error")

    page.get_by_role("button", name="Sign up").click()
    expect(username_error).to_have_text("Username required")
    expect(password_error).to_have_text("Password required")
    expect(username).to_have_attribute("aria-invalid", "true")

    # Typing clears the error of that field only.
    username.fill("alice")
    expect(username_error).to_have_text("")
    expect(password_error).to_have_text("Password required")

    password.fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(username_error).to_contain_text("taken")

    password.fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(password_error).to_have_text("Invalid username or password")
    expect(page.get_by_role("button", name="Log in")).to_be_enabled()

    # No development login unless the server allows it.
    expect(page.get_by_role("button", name="username only")).to_have_count(0)


def test_a_phone_screen_needs_no_sideways_scrolling(open_page, web_server):
    api_sign_up(web_server, "bob-with-a-rather-long-name-for-a-phone")
    page = open_page(viewport=PHONE)
    page.goto("/")
    expect(page.get_by_role("button", name="Sign up")).to_be_visible()
    assert no_horizontal_scroll(page)

    sign_up(page, "alice")
    start_conversation(page, "bob-with-a-rather-long-name-for-a-phone")
    send(page, "a" * 300)
    send(page, "short, with a link https://example.com/" + "path/" * 30)
    expect(messages(page)).to_have_count(2)
    expect(page.locator("[data-id]")).to_have_count(2)
    assert no_horizontal_scroll(page)
    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()

    page.get_by_role("link", name="Back to conversations").click()
    entry = conversation_entry(page, "bob-with-a-rather-long-name")
    expect(entry.locator(".conversation-preview")).to_contain_text("You: short")
    assert no_horizontal_scroll(page)
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()


def test_the_keyboard_alone_is_enough(open_page, web_server):
    api_sign_up(web_server, "bob")
    page = open_page()
    page.goto("/")

    # The username field has the focus as the page opens.
    expect(page.get_by_label("Username", exact=True)).to_be_focused()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#home-username")).to_have_text("alice")

    # A suggestion is reached with the arrow key and opened with Enter.
    tab_to(page, "start-username")
    page.keyboard.type("b")
    suggestion = page.get_by_role("button", name="bob", exact=True)
    expect(suggestion).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(suggestion).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#conversation-title")).to_have_text("bob")

    # The message field has the focus; near the limit a counter shows.
    field = page.get_by_label("Message", exact=True)
    expect(field).to_be_focused()
    page.keyboard.insert_text("x" * 470)
    expect(page.locator("#message-counter")).to_have_text("470 / 480")
    page.keyboard.insert_text("x" * 11)
    expect(page.locator("#message-counter")).to_contain_text("too long")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type("by keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("#message-list [data-id] .message-text")).to_have_text(
        ["by keyboard"]
    )

    # Back home without the mouse.
    page.keyboard.press("Shift+Tab")
    for _ in range(MAX_TABS):
        if page.evaluate("document.activeElement.classList.contains('back')"):
            break

        page.keyboard.press("Shift+Tab")

    page.keyboard.press("Enter")
    expect(conversation_entry(page, "bob")).to_contain_text("You: by keyboard")


def test_development_login_needs_the_username_only(
    app, database_url, tmp_path, browsing
):
    env = {**SERVER_ENV, "MESSENGER_DEV_LOGIN": "1"}
    with start_server(database_url, tmp_path, env=env) as server:
        api_sign_up(server, "alice")
        page = browsing.page(server.base_url)
        page.goto("/")
        page.get_by_label("Username", exact=True).fill("nobody")
        dev_login = page.get_by_role("button", name="username only")
        dev_login.click()
        expect(page.locator("#access-username-error")).to_have_text("User not found")

        page.get_by_label("Username", exact=True).fill("alice")
        dev_login.click()
        expect(page.locator("#home-username")).to_have_text("alice")
