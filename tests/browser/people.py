"""What a person does in the web app, as steps tests share.

Each step acts through the page the way a person would (labels and buttons,
not element ids), then waits, bounded, for the page to show the result.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.live import Server, call


def sign_up(page: Page, username: str) -> None:
    """Open the app logged out, sign up, and wait for the home page."""
    page.goto("/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#home-username")).to_have_text(username)


def log_in(page: Page, username: str, path: str = "/") -> None:
    """Open a page logged out and log in there."""
    page.goto(path)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def start_conversation(page: Page, username: str) -> str:
    """From the home page, open the conversation with someone; return its id."""
    field = page.get_by_label("Start conversation with")
    field.fill(username)
    field.press("Enter")
    page.wait_for_url("**/conversations/*")
    expect(page.locator("#conversation-title")).to_have_text(username)
    return page.url.rsplit("/", 1)[1]


def send(page: Page, text: str) -> None:
    """Type a message and press Enter."""
    field = page.get_by_label("Message", exact=True)
    field.fill(text)
    field.press("Enter")


def messages(page: Page) -> Any:
    """The locator of every message shown, pending ones included."""
    return page.locator("#message-list > li")


def conversation_entry(page: Page, username: str) -> Any:
    """The home list's entry for the conversation with someone."""
    return page.locator("#conversation-list > li").filter(
        has=page.locator(".conversation-name", has_text=username)
    )


def api_sign_up(server: Server, username: str) -> dict[str, Any]:
    """Sign someone up over the API; return the login payload."""
    answer = call(
        server, "POST", "/api/users", {"username": username, "password": PASSWORD}
    )
    assert answer.status == 201, answer.body
    body: dict[str, Any] = answer.body
    return body


def api_start(server: Server, token: str, username: str) -> str:
    """Start a conversation over the API; return its id."""
    answer = call(server, "POST", "/api/conversations", {"username": username}, token)
    assert answer.status in (200, 201), answer.body
    conversation_id: str = answer.body["id"]
    return conversation_id


def api_send(server: Server, token: str, conversation_id: str, text: str) -> Any:
    """Send a message over the API; return it as stored."""
    path = f"/api/conversations/{conversation_id}/messages"
    answer = call(server, "POST", path, {"content": text}, token)
    assert answer.status == 201, answer.body
    return answer.body
