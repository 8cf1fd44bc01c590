"""Real servers for tests: the Procfile's web command under gunicorn, over HTTP.

A server runs as a subprocess in a session of its own, started from the
repository root the way Heroku and ``make run`` start it. Its log goes to a
file that tests read to check what must and must not be in it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_DIR

# gunicorn loads the app and opens its workers within a second or two here.
STARTUP_TIMEOUT_SECS = 20

# gunicorn.conf.py gives workers 20 s to finish; the master then exits.
SHUTDOWN_TIMEOUT_SECS = 30

REQUEST_TIMEOUT_SECS = 10


@dataclass
class Server:
    """A running gunicorn and where its log goes."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log_path: Path
    workers: int

    def log(self) -> str:
        """Everything the server has written so far."""
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The pids of the workers gunicorn has booted, oldest first."""
        pids = []
        for line in self.log().splitlines():
            if "Booting worker with pid" in line:
                pids.append(int(line.rsplit(":", 1)[1].strip()))

        return pids


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

    # The URL is always http://127.0.0.1 (see start_server), never a file.
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


@contextmanager
def start_server(
    database_url: str,
    directory: Path,
    *,
    workers: int | None = None,
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    port: int | None = None,
) -> Iterator[Server]:
    """Run the Procfile's web command on a database; kill it when the block ends.

    ``directory`` holds the log and the instance folder; ``env`` adds or
    overrides environment variables. With ``wait`` the block starts once
    /healthz answers. ``port`` lets a restarted server keep its address.
    """
    if workers is None:
        workers = 2 if database_url.startswith("postgresql") else 1

    port = port or free_port()
    bin_dir = Path(sys.executable).parent
    directory.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PORT": str(port),
        "DATABASE_URL": heroku_style(database_url),
        "SECRET_KEY": "x",
        "WEB_CONCURRENCY": str(workers),
        "MESSENGER_INSTANCE_PATH": str(directory / "instance"),
        "MESSENGER_ENV": "production",
        "MESSENGER_DEV_LOGIN": "0",
        **(env or {}),
    }
    log_path = directory / "gunicorn.log"
    with log_path.open("ab") as log_file:
        # A session of its own, so teardown can kill the workers with the master.
        process = subprocess.Popen(
            web_command(),
            cwd=PROJECT_DIR,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    server = Server(process, f"http://127.0.0.1:{port}", port, log_path, workers)
    try:
        if wait:
            wait_until_healthy(server)

        yield server
    finally:
        stop(process)
