"""Concurrent writers: one conversation per pair, gap-free event ids, idempotent sends.

Each test starts its threads together on a barrier, every thread with its own
test client, and joins them under a deadline so a deadlock fails the test
instead of hanging it. Everything runs on both databases.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from messenger.data.events import list_events_after
from messenger.schema import conversations, messages
from tests.conftest import Person, send

# How long a thread may wait for the others at the start line.
BARRIER_TIMEOUT_SECS = 30

# How long all threads of one test may take; far above what they need.
JOIN_TIMEOUT_SECS = 120

# Larger than any test's event count, so one read returns everything new.
EVENT_PAGE = 10_000


def run_together(app: Flask, tasks: list[Callable[[FlaskClient], Any]]) -> list[Any]:
    """Run each task in its own thread with its own client, all starting at once.

    Returns the tasks' results in order; re-raises the first error a task hit.
    """
    barrier = threading.Barrier(len(tasks), timeout=BARRIER_TIMEOUT_SECS)
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException] = []

    def run(index: int, task: Callable[[FlaskClient], Any]) -> None:
        client = app.test_client()
        try:
            barrier.wait()
            results[index] = task(client)
        # Any error must reach the test's thread, which re-raises it below.
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
            barrier.abort()

    threads = [
        threading.Thread(target=run, args=(index, task), daemon=True)
        for index, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()

    deadline = time.monotonic() + JOIN_TIMEOUT_SECS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))

    assert not any(thread.is_alive() for thread in threads), "threads did not finish"
    if errors:
        raise errors[0]

    return results


def user_events(app: Flask, user_id: str) -> list[tuple[int, str, Any]]:
    """All stream events of a user as (id, kind, payload), in id order."""
    with app.extensions["messenger"].db.reading() as conn:
        rows = list_events_after(conn, int(user_id), 0, EVENT_PAGE)

    return [(row.id, row.kind, json.loads(row.payload)) for row in rows]


def count_rows(app: Flask, query: sa.Select[Any]) -> int:
    """The count a COUNT query returns on the app's database."""
    with app.extensions["messenger"].db.reading() as conn:
        return int(conn.execute(query).scalar_one())


def start_conversation(client: FlaskClient, person: Person, username: str) -> Any:
    """Start (or find) a conversation and return its 200/201 body."""
    response = client.post(
        "/api/conversations", json={"username": username}, headers=person.headers
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def test_concurrent_starts_make_one_conversation(app, alice, bob):
    def start(person: Person, other: Person) -> Callable[[FlaskClient], Any]:
        def task(client: FlaskClient) -> tuple[int, Any]:
            response = client.post(
                "/api/conversations",
                json={"username": other.username},
                headers=person.headers,
            )
            return response.status_code, response.get_json()

        return task

    tasks = [start(alice, bob) for _ in range(6)] + [
        start(bob, alice) for _ in range(6)
    ]
    results = run_together(app, tasks)

    statuses = Counter(status for status, _body in results)
    assert set(statuses) <= {200, 201}, results
    assert statuses[201] == 1, results
    assert len({body["id"] for _status, body in results}) == 1

    assert count_rows(app, sa.select(sa.func.count()).select_from(conversations)) == 1

    for person, other in ((alice, bob), (bob, alice)):
        started = [
            payload
            for _id, kind, payload in user_events(app, person.id)
            if kind == "conversation"
        ]
        assert len(started) == 1
        assert started[0]["id"] == results[0][1]["id"]
        assert started[0]["otherParticipant"]["id"] == other.id


def test_event_ids_are_gap_free_in_commit_order(app, client, sign_up):
    hub = sign_up("hub")
    friends = [sign_up(name) for name in ("ann", "ben", "cat")]
    late = [sign_up(name) for name in ("dan", "eve")]
    rooms = [start_conversation(client, friend, "hub")["id"] for friend in friends]
    sends_per_thread = 12
    writers_done = threading.Event()
    seen: list[int] = []

    def friend_sends(friend: Person, room: str) -> Callable[[FlaskClient], int]:
        def task(client: FlaskClient) -> int:
            for number in range(sends_per_thread):
                response = send(client, friend, room, f"{friend.username} {number}")
                assert response.status_code == 201, response.get_json()

            return sends_per_thread

        return task

    def hub_sends_and_reads(client: FlaskClient) -> tuple[int, int]:
        sent = reads = 0
        for number in range(sends_per_thread):
            room = rooms[number % len(rooms)]
            response = send(client, hub, room, f"hub {number}")
            assert response.status_code == 201, response.get_json()
            sent += 1
            response = client.post(
                f"/api/conversations/{room}/read_messages", headers=hub.headers
            )
            assert response.status_code == 204
            reads += 1

        return sent, reads

    def hub_starts_more(client: FlaskClient) -> int:
        for person in late:
            assert start_conversation(client, hub, person.username)

        return len(late)

    def tail(_client: FlaskClient) -> None:
        # A stream tailing the table: each read continues after the highest
        # id seen so far, so an id that became visible late would be skipped.
        cursor = 0
        deadline = time.monotonic() + JOIN_TIMEOUT_SECS
        while time.monotonic() < deadline:
            finished = writers_done.is_set()
            with app.extensions["messenger"].db.reading() as conn:
                rows = list_events_after(conn, int(hub.id), cursor, EVENT_PAGE)

            seen.extend(row.id for row in rows)
            cursor = max([cursor, *(row.id for row in rows)])
            if finished:
                return

    def writers(client: FlaskClient) -> list[Any]:
        tasks: list[Callable[[FlaskClient], Any]] = [
            friend_sends(friend, room)
            for friend, room in zip(friends, rooms, strict=True)
        ]
        tasks += [hub_sends_and_reads, hub_starts_more]
        try:
            return run_together(app, tasks)
        finally:
            writers_done.set()

    _tail_result, results = run_together(app, [tail, writers])

    friend_messages = sum(results[: len(friends)])
    hub_messages, hub_reads = results[len(friends)]
    started_late = results[len(friends) + 1]
    events = user_events(app, hub.id)
    kinds = Counter(kind for _id, kind, _payload in events)
    assert kinds == {
        "conversation": len(rooms) + started_late,
        "message": friend_messages + hub_messages,
        "read": hub_reads,
    }

    assert [event_id for event_id, _kind, _payload in events] == list(
        range(1, len(events) + 1)
    )
    assert seen == list(range(1, len(events) + 1))

    message_ids = [payload["id"] for _id, kind, payload in events if kind == "message"]
    with app.extensions["messenger"].db.reading() as conn:
        stored = conn.execute(
            sa.select(messages.c.id).where(
                messages.c.conversation_id.in_([int(room) for room in rooms])
            )
        ).scalars()
        stored_ids = sorted(str(message_id) for message_id in stored)

    assert sorted(message_ids) == stored_ids
    assert len(set(message_ids)) == len(message_ids)

    for person in [*friends, *late]:
        ids = [event_id for event_id, _kind, _payload in user_events(app, person.id)]
        assert ids == list(range(1, len(ids) + 1))


def test_concurrent_retries_store_one_message(app, alice, bob, conversation):
    def retry(number: int) -> Callable[[FlaskClient], tuple[int, Any]]:
        def task(client: FlaskClient) -> tuple[int, Any]:
            response = send(
                client, alice, conversation["id"], f"try {number}", clientId="once"
            )
            return response.status_code, response.get_json()

        return task

    results = run_together(app, [retry(number) for number in range(10)])

    statuses = Counter(status for status, _body in results)
    assert statuses == {201: 1, 200: 9}, results
    first = next(body for status, body in results if status == 201)
    assert all(body == first for _status, body in results)

    stored = count_rows(
        app,
        sa.select(sa.func.count())
        .select_from(messages)
        .where(messages.c.conversation_id == int(conversation["id"])),
    )
    assert stored == 1

    for person in (alice, bob):
        kinds = Counter(kind for _id, kind, _payload in user_events(app, person.id))
        assert kinds["message"] == 1


def test_concurrent_sends_keep_id_and_time_order(app, client, alice, bob, conversation):
    per_thread = 8

    def sender(person: Person, thread: int) -> Callable[[FlaskClient], list[Any]]:
        def task(client: FlaskClient) -> list[Any]:
            bodies = []
            for number in range(per_thread):
                text = f"{person.username} {thread}.{number}"
                response = send(client, person, conversation["id"], text)
                assert response.status_code == 201, response.get_json()
                bodies.append(response.get_json())

            return bodies

        return task

    tasks = [sender(person, thread) for person in (alice, bob) for thread in range(3)]
    sent = [body for bodies in run_together(app, tasks) for body in bodies]

    response = client.get(
        f"/api/conversations/{conversation['id']}/messages?limit=100",
        headers=alice.headers,
    )
    assert response.status_code == 200
    listed = response.get_json()
    assert len(listed) == len(sent) == 6 * per_thread
    assert {message["id"] for message in listed} == {body["id"] for body in sent}

    by_id = sorted(listed, key=lambda message: int(message["id"]))
    times = [datetime.fromisoformat(message["createdAt"]) for message in by_id]
    assert times == sorted(times)
    assert listed == list(reversed(by_id))

    stream_order = [
        payload["id"]
        for _id, kind, payload in user_events(app, bob.id)
        if kind == "message"
    ]
    assert stream_order == [message["id"] for message in by_id]
