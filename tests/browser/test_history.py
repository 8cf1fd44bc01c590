"""History: a long conversation opens at its newest message and scrolls back.

Older pages load as the reader nears the top, until the first message, each
message once and in order, and a failed send is retried without a duplicate.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import Request, Route, expect

from tests.browser.people import api_send, api_sign_up, api_start, log_in, send
from tests.live import call

HISTORY_MESSAGES = 65

# Each scroll to the top loads one page; a few more than the pages needed.
MAX_SCROLLS = 10
SCROLL_WAIT_MS = 2000


def test_history_scrolls_back_to_the_first_message(open_page, web_server):
    alice = api_sign_up(web_server, "alice")
    bob = api_sign_up(web_server, "bob")
    conversation_id = api_start(web_server, alice["token"], "bob")
    texts = [f"message {number:02d}" for number in range(1, HISTORY_MESSAGES + 1)]
    for index, text in enumerate(texts):
        sender = alice if index % 2 == 0 else bob
        api_send(web_server, sender["token"], conversation_id, text)

    page = open_page()
    log_in(page, "bob", f"/conversations/{conversation_id}")

    # The page opens at the newest message, with only the newest page loaded.
    shown = page.locator("#message-list .message-text")
    expect(shown.last).to_have_text(texts[-1])
    expect(shown.last).to_be_in_viewport()
    assert shown.count() < HISTORY_MESSAGES

    start = page.get_by_text("This is the start of your conversation.")
    scroller = page.locator("#message-scroller")
    for _ in range(MAX_SCROLLS):
        scroller.evaluate("box => box.scrollTo(0, 0)")
        try:
            expect(start).to_be_visible(timeout=SCROLL_WAIT_MS)
            break
        except AssertionError:
            continue

    expect(start).to_be_visible()
    expect(shown).to_have_text(texts)
    ids = page.locator("#message-list > li").evaluate_all(
        "items => items.map(item => item.dataset.id)"
    )
    assert len(set(ids)) == HISTORY_MESSAGES
    assert ids == sorted(ids, key=int)

    # Own messages look different from the other person's.
    mine = page.locator("#message-list > li.message-mine .message-text")
    expect(mine).to_have_text(texts[1::2])
    # Hovering a time shows the full date.
    time = page.locator("#message-list time").first
    expect(time).to_have_attribute("title", re.compile(r"\b20\d\d\b.*\d:\d\d"))


def test_a_failed_send_is_retried_once(open_page, web_server):
    alice = api_sign_up(web_server, "alice")
    api_sign_up(web_server, "bob")
    conversation_id = api_start(web_server, alice["token"], "bob")
    page = open_page()
    log_in(page, "alice", f"/conversations/{conversation_id}")
    expect(page.locator("#conversation-title")).to_have_text("bob")

    sent: list[dict[str, str]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/messages"):
            sent.append(json.loads(request.post_data or "{}"))

    page.on("request", record)

    # The first answer is lost on its way back, after the server stored it.
    def lose_the_answer(route: Route) -> None:
        route.fetch()
        route.abort()

    messages_url = f"**/api/conversations/{conversation_id}/messages"
    page.route(messages_url, lose_the_answer, times=1)
    send(page, "sent twice, stored once")

    retry = page.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    expect(page.locator(".message-failed")).to_contain_text("Not sent.")
    retry.click()

    shown = page.locator("#message-list > li")
    expect(shown).to_have_count(1)
    expect(shown.first).to_have_attribute("data-id", re.compile(r"\d+"))
    assert len(sent) == 2
    assert sent[0] == sent[1]

    stored = call(
        web_server,
        "GET",
        f"/api/conversations/{conversation_id}/messages",
        token=alice["token"],
    )
    assert [message["content"] for message in stored.body] == [
        "sent twice, stored once"
    ]
