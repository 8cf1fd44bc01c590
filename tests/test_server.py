"""The Procfile's web command serves the API under gunicorn with gevent workers.

The server runs as a real subprocess, started from the repository root the
way Heroku and ``make run`` start it, and is spoken to over HTTP only. Its log
is captured to a file and checked for what must and must not be in it.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from messenger.schema import messages
from tests.conftest import PASSWORD, PROJECT_DIR

# gunicorn loads the app and opens its workers within a second or two here.
STARTUP_TIMEOUT_SECS = 20

# gunicorn.conf.py gives workers 20 s to finish; the master then exits.
SHUTDOWN_TIMEOUT_SECS = 30

REQUEST_TIMEOUT_SECS = 10

CONCURRENT_SENDS = 6


@dataclass
class Server:
    """A running gunicorn and where its log goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    workers: int

    def log(self) -> str:
        """Everything the server has written so far."""
        return self.log_path.read_text(errors="replace")


@dataclass
class Answer:
    """An HTTP response: status, headers and the decoded JSON body (or None)."""

    status: int
    headers: dict[str, str]
    body: Any


def web_command() -> list[str]:
    """The command of the Procfile's ``web`` process, split into arguments."""
    for line in (PROJECT_DIR / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return shlex.split(line.removeprefix("web:"))

    raise AssertionError("the Procfile has no web process")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def heroku_style(database_url: str) -> str:
    """The test database URL as a platform would hand it over in DATABASE_URL."""
    return database_url.replace("postgresql+psycopg2://", "postgres://", 1)


def call(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
) -> Answer:
    """Make one HTTP request to the server and decode its JSON answer."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"

    if token is not None:
        headers["Authorization"] = f"Bearer {token}"

    # The URL is always http://127.0.0.1 (see the server fixture), never a file.
    url = server.base_url + path
    request = urllib.request.Request(url, data, headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=REQUEST_TIMEOUT_SECS
        ) as response:
            status, raw, answer_headers = response.status, response.read(), response
    except urllib.error.HTTPError as error:
        status, raw, answer_headers = error.code, error.read(), error

    return Answer(
        status,
        dict(answer_headers.headers.items()),
        json.loads(raw) if raw else None,
    )


def wait_until_healthy(server: Server) -> Answer:
    """Poll /healthz until it answers 200, failing if the server dies or is slow."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited early:\n{server.log()}")

        try:
            answer = call(server, "GET", "/healthz")
        except OSError:
            answer = None

        if answer is not None and answer.status == 200:
            return answer

        time.sleep(0.2)

    pytest.fail(f"gunicorn did not become healthy:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the server's process group if it still runs, and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT_SECS)


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """gunicorn running the Procfile's web command on the test database.

    Depends on ``app`` so the tables are emptied once the test is over.
    """
    workers = 2 if database_url.startswith("postgresql") else 1
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(port),
        "DATABASE_URL": heroku_style(database_url),
        "SECRET_KEY": "x",
        "WEB_CONCURRENCY": str(workers),
        "MESSENGER_INSTANCE_PATH": str(tmp_path / "instance"),
        "MESSENGER_ENV": "production",
        "MESSENGER_DEV_LOGIN": "0",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log_file:
        # A session of its own, so teardown can kill the workers with the master.
        process = subprocess.Popen(
            web_command(),
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    try:
        yield Server(process, f"http://127.0.0.1:{port}", log_path, workers)
    finally:
        stop(process)


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
