"""Two people chat live in two browsers: the core of the web app.

Alice and Bob each have a browser context of their own. They sign up, Alice
starts the conversation, and every message, count and "Seen" must reach the
other's open page through the stream, without a reload.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.people import (
    conversation_entry,
    log_in,
    messages,
    send,
    sign_up,
    start_conversation,
)

# The home list's page size, and a list that needs a second page.
LIST_PAGE = 25
LONG_LIST = 30

# If any of this ran as HTML, the page would set window.pwned or grow a <b>.
MARKUP = (
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    "<b>bold</b> & done"
)


def test_two_people_exchange_messages_live(open_page):
    alice, bob = open_page(), open_page()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    expect(bob.locator("#conversations-empty")).to_be_visible()

    # Suggestions come as Alice types; Enter opens the conversation.
    alice.get_by_label("Start conversation with").fill("bo")
    expect(alice.locator("#start-suggestions button")).to_have_text(["bob"])
    start_conversation(alice, "bob")

    # The new conversation appears on Bob's open home page.
    entry = conversation_entry(bob, "alice")
    expect(entry).to_contain_text("No messages yet")

    send(alice, "Hello Bob")
    expect(messages(alice)).to_have_count(1)
    expect(messages(alice).first).to_have_attribute("data-id", re.compile(r"\d+"))
    expect(messages(alice).first).to_have_class(re.compile("message-mine"))

    # Bob's list moves the entry, shows the text and counts it unread.
    expect(entry.locator(".conversation-preview")).to_have_text("Hello Bob")
    expect(entry.locator(".unread-count")).to_contain_text("1")
    expect(entry.locator("time")).to_have_attribute("title", re.compile(r"\d{4}"))

    entry.get_by_role("link").click()
    expect(bob.locator("#conversation-title")).to_have_text("alice")
    expect(bob.locator(".message-text")).to_have_text(["Hello Bob"])

    # Bob's page marks the conversation read; Alice sees it.
    seen = alice.locator(".message-seen")
    expect(seen).to_have_text("Seen")

    # Bob's reply reaches Alice's open page, and shows as text.
    send(bob, MARKUP)
    expect(messages(alice)).to_have_count(2)
    reply = messages(alice).nth(1).locator(".message-text")
    expect(reply).to_have_text(MARKUP)
    assert alice.evaluate("window.pwned") is None
    assert bob.evaluate("window.pwned") is None
    assert alice.locator("#message-list b, #message-list img").count() == 0

    # "Seen" follows Alice's newest message, once Bob has read that one.
    alice_field = alice.get_by_label("Message", exact=True)
    alice_field.fill("line one")
    alice_field.press("Shift+Enter")
    alice_field.press_sequentially("line two")
    alice_field.press("Enter")
    expect(messages(bob)).to_have_count(3)
    newest = messages(bob).nth(2).locator(".message-text")
    expect(newest).to_have_text("line one\nline two")
    expect(messages(alice).nth(2).locator(".message-seen")).to_have_text("Seen")
    expect(alice.locator(".message-seen")).to_have_count(1)

    # Each message once on both pages: the stream's echo made no duplicate.
    for page in (alice, bob):
        ids = page.locator("#message-list > li").evaluate_all(
            "items => items.map(item => item.dataset.id)"
        )
        assert len(ids) == 3
        assert len(set(ids)) == 3

    # Back home, Alice sees her own last message prefixed.
    alice.get_by_role("link", name="Back to conversations").click()
    alice_entry = conversation_entry(alice, "bob")
    expect(alice_entry.locator(".conversation-preview")).to_have_text(
        "You: line one line two"
    )
    expect(alice_entry.locator(".unread-count")).to_have_count(0)


def test_home_list_and_tab_title_follow_the_stream(open_page):
    alice, bob, carol = open_page(), open_page(), open_page()
    for page, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        sign_up(page, name)

    start_conversation(bob, "alice")
    start_conversation(carol, "alice")
    names = alice.locator("#conversation-list .conversation-name")
    expect(names).to_have_text(["carol", "bob"])

    # Alice's tab is hidden: the title counts what arrives.
    alice.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", {value: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    send(bob, "first from bob")
    expect(names).to_have_text(["bob", "carol"])
    expect(alice).to_have_title("(1) Messenger")

    send(carol, "first from carol")
    send(bob, "second from bob")
    expect(names).to_have_text(["bob", "carol"])
    expect(alice).to_have_title("(3) Messenger")
    bob_entry = conversation_entry(alice, "bob")
    expect(bob_entry.locator(".unread-count")).to_contain_text("2")
    expect(bob_entry.locator(".conversation-preview")).to_have_text("second from bob")


def test_log_out_returns_to_the_access_page(open_page):
    page = open_page()
    sign_up(page, "alice")

    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0
    page.reload()
    expect(page.get_by_role("button", name="Sign up")).to_be_visible()
    expect(page.locator("#home-page")).to_be_hidden()


def test_a_long_list_loads_more_as_you_scroll(open_page, web_server, sign_up, client):
    # Set up through the test app: the same database, with a cheap password hash.
    sign_up("alice")
    friends = [sign_up(f"friend{number:02d}") for number in range(LONG_LIST)]
    conversation_ids = []
    for friend in friends:
        started = client.post(
            "/api/conversations", json={"username": "alice"}, headers=friend.headers
        )
        assert started.status_code == 201
        conversation_ids.append(started.get_json()["id"])

    page = open_page()
    log_in(page, "alice")
    names = page.locator("#conversation-list .conversation-name")
    expect(names).to_have_count(LIST_PAGE)

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    newest_first = [friend.username for friend in reversed(friends)]
    expect(names).to_have_text(newest_first)

    # The oldest entry, loaded last, moves to the top when a message comes.
    sent = client.post(
        f"/api/conversations/{conversation_ids[0]}/messages",
        json={"content": "from the bottom"},
        headers=friends[0].headers,
    )
    assert sent.status_code == 201
    expect(names).to_have_text([newest_first[-1], *newest_first[:-1]])
