"""Recovering the stream: after a server restart, and after a reset.

The page shows "Reconnecting…" while the server is away, and once it is back
shows what was sent meanwhile and after, in the same document: no reload.
When the stream cannot resume from the tab's last id, the page reloads its
state over the API and goes on live.
"""

from __future__ import annotations

import signal

from playwright.sync_api import expect

from tests.browser.conftest import SERVER_ENV
from tests.browser.people import api_send, api_sign_up, api_start, log_in, sign_up
from tests.live import SHUTDOWN_TIMEOUT_SECS, free_port, start_server


def test_the_page_catches_up_after_a_restart(app, database_url, tmp_path, browsing):
    port = free_port()
    first = start_server(database_url, tmp_path / "first", env=SERVER_ENV, port=port)
    with first as server:
        alice = api_sign_up(server, "alice")
        bob = api_sign_up(server, "bob")
        conversation_id = api_start(server, alice["token"], "bob")
        page = browsing.page(server.base_url)
        log_in(page, "alice", f"/conversations/{conversation_id}")
        shown = page.locator("#message-list .message-text")
        api_send(server, bob["token"], conversation_id, "before the restart")
        expect(shown).to_have_text(["before the restart"])
        page.evaluate("window.sameDocument = true")

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECS) == 0

    status = page.get_by_role("status").filter(has_text="Reconnecting…")
    expect(status).to_be_visible()

    second = start_server(database_url, tmp_path / "second", env=SERVER_ENV, port=port)
    with second as server:
        api_send(server, bob["token"], conversation_id, "while it reconnects")
        expect(status).to_be_hidden()
        api_send(server, bob["token"], conversation_id, "after the restart")
        expect(shown).to_have_text(
            ["before the restart", "while it reconnects", "after the restart"]
        )
        assert page.evaluate("window.sameDocument") is True


def test_a_reset_reloads_the_page_state(open_page, web_server):
    page = open_page()
    sign_up(page, "alice")
    bob = api_sign_up(web_server, "bob")
    api_start(web_server, bob["token"], "alice")
    names = page.locator("#conversation-list .conversation-name")
    expect(names).to_have_text(["bob"])

    # An id this tab cannot have seen: the stream answers with a reset.
    page.evaluate("sessionStorage.setItem(LAST_EVENT_KEY, '999999')")
    page.reload()
    expect(names).to_have_text(["bob"])
    expect(page.locator("#connection-status")).to_be_hidden()
    page.wait_for_function("sessionStorage.getItem(LAST_EVENT_KEY) !== '999999'")

    # And the page lives on from where the reset put it.
    carol = api_sign_up(web_server, "carol")
    api_start(web_server, carol["token"], "alice")
    expect(names).to_have_text(["carol", "bob"])
