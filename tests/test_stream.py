"""The stream, end to end: real gunicorn servers with gevent workers, raw sockets.

Every test runs on SQLite and on PostgreSQL. Servers beat their heart every
0.2 s so the tests can see heartbeats and dead clients quickly. Every read
has a deadline, so a broken stream fails a test instead of hanging it.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import IN_CI, PASSWORD
from tests.live import (
    REQUEST_TIMEOUT_SECS,
    SHUTDOWN_TIMEOUT_SECS,
    EventStream,
    Server,
    SseEvent,
    call,
    start_server,
)

HEARTBEAT_SECS = 0.2

# How long a test waits for something that takes milliseconds when it works.
DELIVERY_TIMEOUT_SECS = 15

STREAM_ENV = {"MESSENGER_SSE_HEARTBEAT": str(HEARTBEAT_SECS)}


@dataclass
class User:
    """Someone signed up on a live server."""

    id: str
    username: str
    token: str


@dataclass
class Chat:
    """A live server and helpers to act on it."""

    server: Server
    users: dict[str, User] = field(default_factory=dict)

    def sign_up(self, username: str) -> User:
        """Create an account."""
        answer = call(
            self.server,
            "POST",
            "/api/users",
            {"username": username, "password": PASSWORD},
        )
        assert answer.status == 201, answer.body
        user = User(answer.body["authUser"]["id"], username, answer.body["token"])
        self.users[username] = user
        return user

    def start(self, starter: User, other: User) -> str:
        """Start (or open) the conversation of two people; return its id."""
        answer = call(
            self.server,
            "POST",
            "/api/conversations",
            {"username": other.username},
            starter.token,
        )
        assert answer.status in (200, 201), answer.body
        conversation_id: str = answer.body["id"]
        return conversation_id

    def send(
        self, sender: User, conversation_id: str, content: str, server: Server | None
    ) -> dict[str, Any]:
        """Send a message, retrying with the same clientId while the server is away."""
        client_id = uuid.uuid4().hex
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECS
        while True:
            try:
                answer = call(
                    server or self.server,
                    "POST",
                    f"/api/conversations/{conversation_id}/messages",
                    {"content": content, "clientId": client_id},
                    sender.token,
                )
            except OSError:
                answer = None

            if answer is not None and answer.status in (200, 201):
                message: dict[str, Any] = answer.body
                return message

            if time.monotonic() > deadline:
                raise AssertionError(f"could not send: {answer}")

            time.sleep(0.1)

    def stream(self, user: User, **options: Any) -> EventStream:
        """Open a stream for a user and check it started."""
        opened = EventStream(self.server, user.token, **options)
        assert opened.status == 200, opened.body()
        return opened


@pytest.fixture
def chat(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Chat]:
    """A live server on the test database (tables emptied afterwards by ``app``)."""
    with start_server(database_url, tmp_path / "server", env=STREAM_ENV) as server:
        yield Chat(server)


def messages_of(events: list[SseEvent]) -> list[dict[str, Any]]:
    """The message payloads among events."""
    return [event.json() for event in events if event.event == "message"]


def test_first_bytes_headers_and_heartbeats(chat):
    alice = chat.sign_up("alice")
    with chat.stream(alice) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in stream.headers

        # The retry line, the position and a comment arrive before any event.
        stream.wait_for_comments(1, timeout=REQUEST_TIMEOUT_SECS)
        assert stream.retry == 3000
        assert stream.last_event_id == "0"
        assert stream.comments[0] == "connected"

        stream.wait_for_comments(4, timeout=DELIVERY_TIMEOUT_SECS)
        assert stream.comments[1:4] == ["keep-alive"] * 3


def test_every_tab_of_both_people_gets_every_event(chat):
    alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
    tabs = {
        "alice": [chat.stream(alice), chat.stream(alice)],
        "bob": [chat.stream(bob), chat.stream(bob)],
    }
    conversation_id = chat.start(alice, bob)
    sent = chat.send(alice, conversation_id, "hello <b>bob</b>", None)
    answer = call(
        chat.server,
        "POST",
        f"/api/conversations/{conversation_id}/read_messages",
        token=bob.token,
    )
    assert answer.status == 204

    for name, streams in tabs.items():
        for stream in streams:
            got = stream.events(3, timeout=DELIVERY_TIMEOUT_SECS)
            assert [event.event for event in got] == ["conversation", "message", "read"]
            assert [event.id for event in got] == ["1", "2", "3"]

            conversation = got[0].json()
            other = "bob" if name == "alice" else "alice"
            assert conversation["otherParticipant"]["username"] == other

            message = got[1].json()
            assert message["id"] == sent["id"]
            assert message["content"] == "hello <b>bob</b>"
            assert message["conversationId"] == conversation_id
            assert message["mine"] is (name == "alice")

            read = got[2].json()
            assert read["conversationId"] == conversation_id
            assert read["userId"] == bob.id
            stream.close()


def test_resume_with_header_or_query_replays_the_gap(chat):
    alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
    with chat.stream(bob) as first:
        conversation_id = chat.start(alice, bob)
        assert first.events(1)[0].event == "conversation"
        last_seen = first.last_event_id

    expected = [f"while away {number}" for number in range(5)]
    for text in expected:
        chat.send(alice, conversation_id, text, None)

    for options in (
        {"last_event_id": last_seen},
        {"query_last_event_id": last_seen},
    ):
        with chat.stream(bob, **options) as resumed:
            got = resumed.events(len(expected))
            assert [message["content"] for message in messages_of(got)] == expected
            assert [int(event.id) for event in got] == list(range(2, 2 + len(expected)))

            # Then it goes on live, with nothing repeated.
            chat.send(alice, conversation_id, "live", None)
            live = resumed.events(1)[0]
            assert live.json()["content"] == "live"
            assert int(live.id) == int(got[-1].id) + 1

        expected.append("live")

    # The header, which EventSource sends on its own, wins over the query.
    with chat.stream(bob, last_event_id="6", query_last_event_id=last_seen) as both:
        assert [event.id for event in both.events(2)] == ["7", "8"]


@pytest.mark.parametrize("given", ["999", "abc", "-1", "1.5", "12345678901234567890"])
def test_an_id_that_cannot_be_resumed_gets_a_reset(chat, given):
    alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
    conversation_id = chat.start(alice, bob)
    with chat.stream(bob, last_event_id=given) as stream:
        reset = stream.events(1)[0]
        assert reset.event == "reset"
        assert reset.json() == {}
        assert reset.id == "1"

        chat.send(alice, conversation_id, "after the reset", None)
        assert stream.events(1)[0].json()["content"] == "after the reset"


def test_concurrent_senders_while_the_reader_is_cut_again_and_again(chat):
    reader = chat.sign_up("reader")
    senders = [chat.sign_up(f"sender{number}") for number in range(3)]
    conversations = {sender.username: chat.start(sender, reader) for sender in senders}
    per_sender = 25
    failures: list[BaseException] = []

    def send_all(sender: User) -> None:
        try:
            for number in range(per_sender):
                chat.send(
                    sender,
                    conversations[sender.username],
                    f"{sender.username} {number}",
                    None,
                )
        except (AssertionError, OSError) as error:  # reported by the main thread
            failures.append(error)

    threads = [
        threading.Thread(target=send_all, args=(s,), daemon=True) for s in senders
    ]
    for thread in threads:
        thread.start()

    expected = len(senders) * per_sender + len(senders)  # messages + conversations
    received: list[SseEvent] = []
    last_id: str | None = None
    rng = random.Random(7)
    cuts = 0
    deadline = time.monotonic() + 60
    while len(received) < expected and time.monotonic() < deadline:
        stream = (
            chat.stream(reader, last_event_id=last_id)
            if last_id
            else chat.stream(reader, query_last_event_id="0")
        )
        with stream:
            for _ in range(rng.randint(1, 8)):
                if len(received) == expected:
                    break

                try:
                    event = stream.next_event(timeout=DELIVERY_TIMEOUT_SECS)
                except TimeoutError:
                    break

                assert event is not None
                received.append(event)
                last_id = event.id

        cuts += 1

    for thread in threads:
        thread.join(DELIVERY_TIMEOUT_SECS)

    assert not failures, failures
    assert cuts > 5
    assert [int(event.id or 0) for event in received] == list(range(1, expected + 1))
    assert not [event for event in received if event.event == "reset"]
    for sender in senders:
        contents = [
            message["content"]
            for message in messages_of(received)
            if message["conversationId"] == conversations[sender.username]
        ]
        assert contents == [
            f"{sender.username} {number}" for number in range(per_sender)
        ]


def test_a_reader_that_never_reads_is_dropped_without_delaying_others(
    app, database_url, tmp_path
):
    env = {**STREAM_ENV, "MESSENGER_SSE_BUFFER": "8"}
    with start_server(database_url, tmp_path / "server", workers=1, env=env) as server:
        chat = Chat(server)
        alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
        stuck = chat.stream(bob, receive_buffer_bytes=4096)
        reader = chat.stream(alice)
        conversation_id = chat.start(alice, bob)
        assert reader.events(1)[0].event == "conversation"

        # Enough text to fill both sockets' buffers and then Bob's queue.
        filler = "x" * 470
        count = 500
        received: list[SseEvent] = []
        reading = threading.Thread(
            target=lambda: received.extend(
                reader.events(count, timeout=DELIVERY_TIMEOUT_SECS * 4)
            ),
            daemon=True,
        )
        reading.start()
        for number in range(count):
            chat.send(alice, conversation_id, f"{number} {filler}", None)

        reading.join(DELIVERY_TIMEOUT_SECS * 4)
        got = messages_of(received)
        assert [int(m["content"].split()[0]) for m in got] == list(range(count))

        # The stuck stream was closed by the server, well before its end.
        assert stuck.ended(timeout=DELIVERY_TIMEOUT_SECS)
        assert "fell 8 events behind; closing it" in server.log()
        assert "too slow" in server.log()
        reader.close()


def test_a_killed_worker_loses_nothing(chat):
    alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
    stream = chat.stream(bob)
    conversation_id = chat.start(alice, bob)
    assert stream.events(1)[0].event == "conversation"

    # The log line of the stream names the pid of the worker serving it.
    victim = _worker_of_newest_stream(chat.server)
    sending = _send_in_background(chat, alice, conversation_id, 30)
    time.sleep(0.3)
    subprocess.run(["kill", "-KILL", str(victim)], check=True)

    received: list[SseEvent] = []
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECS * 2
    while len(received) < 30 and time.monotonic() < deadline:
        try:
            event = stream.next_event(timeout=DELIVERY_TIMEOUT_SECS)
        except (TimeoutError, ConnectionError):
            event = None

        if event is not None:
            received.append(event)
            continue

        stream.close()
        stream = _reconnect(chat, bob, stream.last_event_id)

    sending.join(DELIVERY_TIMEOUT_SECS)
    stream.close()
    contents = [message["content"] for message in messages_of(received)]
    assert contents == [f"message {number}" for number in range(30)]
    assert [event.id for event in received] == [str(n) for n in range(2, 32)]


def _worker_of_newest_stream(server: Server) -> int:
    for line in reversed(server.log().splitlines()):
        if "messenger.stream: stream" in line and "opened" in line:
            return int(line.split()[2])

    raise AssertionError("no stream in the log")


def _send_in_background(
    chat: Chat, sender: User, conversation_id: str, count: int
) -> threading.Thread:
    def send_all() -> None:
        for number in range(count):
            chat.send(sender, conversation_id, f"message {number}", None)
            time.sleep(0.02)

    thread = threading.Thread(target=send_all, daemon=True)
    thread.start()
    return thread


def _reconnect(chat: Chat, user: User, last_event_id: str | None) -> EventStream:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECS
    while True:
        try:
            return chat.stream(user, last_event_id=last_event_id)
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise

            time.sleep(0.1)


def test_sigterm_ends_streams_at_once_and_the_server_exits(chat):
    alice = chat.sign_up("alice")
    streams = [chat.stream(alice) for _ in range(3)]
    for stream in streams:
        stream.wait_for_comments(1, timeout=REQUEST_TIMEOUT_SECS)

    chat.server.process.send_signal(signal.SIGTERM)
    for stream in streams:
        assert stream.ended(timeout=SHUTDOWN_TIMEOUT_SECS)

    assert chat.server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECS) == 0
    log = chat.server.log()
    closed = [
        int(line.split("closed ")[1].split()[0])
        for line in log.splitlines()
        if "worker stopping: closed" in line
    ]
    assert sum(closed) == len(streams)
    assert "Worker graceful timeout" not in log


def test_two_servers_on_one_database_deliver_to_each_other(app, database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one host; the PostgreSQL run covers two")

    with (
        start_server(database_url, tmp_path / "one", env=STREAM_ENV) as one,
        start_server(database_url, tmp_path / "two", env=STREAM_ENV) as two,
    ):
        chat = Chat(one)
        alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
        conversation_id = chat.start(alice, bob)
        on_one = chat.stream(bob)
        on_two = EventStream(two, alice.token)
        assert on_two.status == 200

        chat.send(alice, conversation_id, "from two", two)
        chat.send(bob, conversation_id, "from one", one)
        for stream in (on_one, on_two):
            got = messages_of(stream.events(2, timeout=DELIVERY_TIMEOUT_SECS))
            assert [message["content"] for message in got] == ["from two", "from one"]
            stream.close()


def test_a_postgresql_restart_loses_nothing(chat, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL has a server to restart")

    restart = _restart_command()
    alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
    stream = chat.stream(bob)
    conversation_id = chat.start(alice, bob)
    assert stream.events(1)[0].event == "conversation"
    chat.send(alice, conversation_id, "before", None)

    subprocess.run(restart, check=True, capture_output=True, timeout=60)
    # Sent as soon as the database answers again, maybe before the feed
    # listens again: the feed's catch-up must find these.
    for number in range(5):
        chat.send(alice, conversation_id, f"after {number}", None)

    # The stream held no database connection, so it is still open.
    got = messages_of(stream.events(6, timeout=DELIVERY_TIMEOUT_SECS * 2))
    assert [message["content"] for message in got] == ["before"] + [
        f"after {number}" for number in range(5)
    ]
    assert "feed lost its connection" in chat.server.log()
    stream.close()


def _restart_command() -> list[str]:
    clusters = Path("/etc/postgresql")
    if not clusters.is_dir() or not shutil.which("pg_ctlcluster"):
        if IN_CI:
            pytest.fail("pg_ctlcluster is needed to restart PostgreSQL under CI=true")

        pytest.skip("no local PostgreSQL cluster to restart")

    version = sorted(path.name for path in clusters.iterdir())[0]
    return [
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        version,
        "main",
        "restart",
        "-m",
        "fast",
    ]


def test_sqlite_with_two_workers_still_delivers_to_every_stream(
    app, database_url, tmp_path
):
    if database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL fans out by NOTIFY; this covers SQLite's polling")

    with start_server(
        database_url, tmp_path / "server", workers=2, env=STREAM_ENV
    ) as server:
        chat = Chat(server)
        alice, bob = chat.sign_up("alice"), chat.sign_up("bob")
        streams = [chat.stream(bob) for _ in range(6)]
        conversation_id = chat.start(alice, bob)
        chat.send(alice, conversation_id, "to every worker", None)
        for stream in streams:
            got = stream.events(2, timeout=DELIVERY_TIMEOUT_SECS)
            assert [event.event for event in got] == ["conversation", "message"]
            stream.close()

        opened_by = {
            line.split()[2]
            for line in server.log().splitlines()
            if "messenger.stream: stream" in line and "opened" in line
        }
        assert len(server.worker_pids()) == 2
        assert opened_by <= {str(pid) for pid in server.worker_pids()}
