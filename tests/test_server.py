"""The Procfile's web command serves the API under gunicorn with gevent workers.

The server runs as a real subprocess, started from the repository root the
way Heroku and ``make run`` start it, and is spoken to over HTTP only. Its log
is captured to a file and checked for what must and must not be in it.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from messenger.schema import messages
from tests.conftest import PASSWORD
from tests.live import (
    REQUEST_TIMEOUT_SECS,
    SHUTDOWN_TIMEOUT_SECS,
    Answer,
    Server,
    call,
    start_server,
    wait_until_healthy,
)

CONCURRENT_SENDS = 6


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """gunicorn running the Procfile's web command on the test database.

    Depends on ``app`` so the tables are emptied once the test is over.
    """
    with start_server(database_url, tmp_path, wait=False) as running:
        yield running


def test_procfile_web_command_serves_the_api(server, app):
    health = wait_until_healthy(server)
    assert health.body == {"status": "ok"}
    assert health.headers["Server"].startswith("gunicorn")

    people = {}
    for name in ("alice", "bob"):
        answer = call(
            server, "POST", "/api/users", {"username": name, "password": PASSWORD}
        )
        assert answer.status == 201, answer.body
        people[name] = answer.body

    alice, bob = people["alice"]["token"], people["bob"]["token"]
    answer = call(server, "POST", "/api/conversations", {"username": "bob"}, alice)
    assert answer.status == 201, answer.body
    conversation_id = answer.body["id"]
    path = f"/api/conversations/{conversation_id}/messages"

    secret = f"private words {secrets.token_hex(8)}"
    texts = [f"{secret} {number}" for number in range(CONCURRENT_SENDS)]
    answers: list[Answer | None] = [None] * len(texts)
    barrier = threading.Barrier(len(texts), timeout=REQUEST_TIMEOUT_SECS)

    def send(index: int) -> None:
        token = alice if index % 2 == 0 else bob
        barrier.wait()
        answers[index] = call(server, "POST", path, {"content": texts[index]}, token)

    threads = [
        threading.Thread(target=send, args=(index,), daemon=True)
        for index in range(len(texts))
    ]
    for thread in threads:
        thread.start()

    for thread in threads:
        thread.join(REQUEST_TIMEOUT_SECS * 2)

    assert not any(thread.is_alive() for thread in threads)
    assert [answer.status if answer else None for answer in answers] == [201] * len(
        texts
    )

    listed = call(server, "GET", path, token=bob)
    assert listed.status == 200
    assert sorted(message["content"] for message in listed.body) == sorted(texts)
    ids = [int(message["id"]) for message in listed.body]
    assert ids == sorted(ids, reverse=True)
    assert [message["mine"] for message in listed.body].count(True) == len(texts) // 2

    with app.extensions["messenger"].db.reading() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(messages))
        assert stored.scalar_one() == len(texts)

    # The token also travels in the query string, which the access log redacts.
    answer = call(server, "GET", f"/api/auth_user?token={alice}")
    assert answer.status == 200
    assert answer.body["username"] == "alice"

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECS) == 0

    log = server.log()
    assert "Using worker: gevent" in log
    assert log.count("Booting worker with pid") == server.workers
    assert "/api/auth_user?token=[redacted]" in log
    assert "Shutting down: Master" in log
    for token in (alice, bob):
        assert token not in log

    assert secret not in log
    assert "Traceback" not in log
