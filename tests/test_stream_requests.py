"""The stream's answers to bad, hostile and excess requests, and event pruning.

These run in-process through Flask's test client on both databases; the
stream body is read frame by frame and closed, as a client leaving does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from messenger.data import utcnow
from messenger.feed import prune_events
from messenger.schema import events
from tests.conftest import assert_json_error, send

STREAM = "/api/messages"
ACCEPT = {"Accept": "text/event-stream"}


@contextmanager
def opened(client, person, **headers) -> Iterator[Iterator[bytes]]:
    """Open a stream and yield its frames; closing it frees the slot."""
    response = client.get(
        STREAM, headers={**ACCEPT, **person.headers, **headers}, buffered=False
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/event-stream"
    frames = iter(response.response)
    try:
        yield frames
    finally:
        response.close()


def test_without_a_token_or_with_a_bad_one_is_401(client, alice):
    assert_json_error(client.get(STREAM, headers=ACCEPT), 401)
    assert_json_error(client.get(f"{STREAM}?token=forged", headers=ACCEPT), 401)
    client.post("/api/logout", headers=alice.headers)
    assert_json_error(client.get(STREAM, headers={**ACCEPT, **alice.headers}), 401)


@pytest.mark.parametrize(
    "accept", [None, "application/json", "*/*", "text/*", "text/event-stream;q=0"]
)
def test_without_accepting_an_event_stream_is_406(client, alice, accept):
    headers = dict(alice.headers)
    if accept is not None:
        headers["Accept"] = accept

    assert_json_error(client.get(STREAM, headers=headers), 406)


def test_other_methods_are_405(client, alice):
    for method in ("post", "put", "delete"):
        response = getattr(client, method)(STREAM, headers=alice.headers)
        assert_json_error(response, 405)


def test_streams_beyond_the_limit_are_429_and_a_closed_one_frees_its_slot(
    make_app, alice
):
    client = make_app(max_streams_per_user=2).test_client()
    with opened(client, alice), opened(client, alice):
        refused = client.get(STREAM, headers={**ACCEPT, **alice.headers})
        body = assert_json_error(refused, 429)
        assert "2" in body["message"]
        assert refused.headers["Retry-After"] == "3"

    with opened(client, alice) as frames:
        assert next(frames).startswith(b"retry: 3000\nid: 0\n")


@pytest.mark.parametrize(
    "given",
    ["7", "-1", "abc", "1e3", "01", " ", "\uff11", "1" * 19, "1;DROP TABLE events"],
)
def test_hostile_or_unknown_ids_get_a_reset_and_store_nothing(
    client, alice, bob, conversation, given
):
    send(client, alice, conversation["id"], "kept")
    with opened(client, bob, **{"Last-Event-ID": given}) as frames:
        first = next(frames)
        if given.strip() == "":
            assert first.startswith(b"retry: 3000\nid: 2\n")  # as if none was sent
        else:
            assert next(frames) == b"id: 2\nevent: reset\ndata: {}\n\n"

    listed = client.get(
        f"/api/conversations/{conversation['id']}/messages", headers=bob.headers
    )
    assert [message["content"] for message in listed.get_json()] == ["kept"]


def test_resume_replays_in_order_then_the_query_parameter_too(
    client, alice, bob, conversation
):
    for text in ("one", "two"):
        send(client, alice, conversation["id"], text)

    with opened(client, bob, **{"Last-Event-ID": "1"}) as frames:
        assert next(frames).startswith(b"retry: 3000\nid: 1\n")
        replayed = next(frames).decode()

    assert replayed.count("id: ") == 2
    assert replayed.index('"content":"one"') < replayed.index('"content":"two"')

    response = client.get(
        f"{STREAM}?lastEventId=2", headers={**ACCEPT, **bob.headers}, buffered=False
    )
    frames = iter(response.response)
    assert next(frames).startswith(b"retry: 3000\nid: 2\n")
    assert '"content":"two"' in next(frames).decode()
    response.close()


def test_pruning_drops_old_events_only_and_resuming_past_them_resets(
    app, client, alice, bob, conversation
):
    send(client, alice, conversation["id"], "old")
    send(client, alice, conversation["id"], "new")
    db = app.extensions["messenger"].db
    with db.writing() as conn:
        conn.execute(
            sa.update(events)
            .where(events.c.id <= 2)
            .values(created_at=utcnow() - timedelta(days=8))
        )

    assert prune_events(db, timedelta(days=7)) == 4  # ids 1 and 2 of both
    with db.reading() as conn:
        left = conn.execute(sa.select(events.c.user_id, events.c.id)).all()

    assert sorted(left) == [(int(alice.id), 3), (int(bob.id), 3)]

    with opened(client, bob, **{"Last-Event-ID": "0"}) as frames:
        next(frames)
        assert next(frames) == b"id: 3\nevent: reset\ndata: {}\n\n"

    with opened(client, bob, **{"Last-Event-ID": "2"}) as frames:
        next(frames)
        assert '"content":"new"' in next(frames).decode()


def test_writes_wake_no_feed_until_a_stream_opens(
    app, client, alice, bob, conversation
):
    db = app.extensions["messenger"].db
    send(client, alice, conversation["id"], "nobody streams yet")
    assert db.on_events_committed is None

    with opened(client, bob):
        # SQLite wakes the feed from the writer; PostgreSQL uses NOTIFY.
        assert (db.on_events_committed is not None) is (not db.is_postgresql)
