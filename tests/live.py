"""Real servers for tests: the Procfile's web command under gunicorn, over HTTP.

A server runs as a subprocess in a session of its own, started from the
repository root the way Heroku and ``make run`` start it. Its log goes to a
file that tests read to check what must and must not be in it.
"""

from __future__ import annotations

import contextlib
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


@dataclass
class SseEvent:
    """One dispatched server-sent event."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        """The data field decoded as JSON."""
        return json.loads(self.data)


class EventStream:
    """A client of GET /api/messages over its own socket, read under deadlines.

    It parses the stream as EventSource does, and also records comments and
    the ``retry`` value, which EventSource hides.
    """

    def __init__(
        self,
        server: Server,
        token: str,
        *,
        last_event_id: str | None = None,
        query_last_event_id: str | None = None,
        receive_buffer_bytes: int | None = None,
    ) -> None:
        self.comments: list[str] = []
        self.retry: int | None = None
        self.last_event_id: str | None = None
        self._lines: list[str] = []
        self._ready: list[str] = []
        self._pending = b""
        self.held: list[SseEvent] = []
        self._type = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._sock = socket.socket()
        if receive_buffer_bytes is not None:
            self._sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes
            )

        self._sock.settimeout(REQUEST_TIMEOUT_SECS)
        self._sock.connect(("127.0.0.1", server.port))
        query = f"token={token}"
        if query_last_event_id is not None:
            query += f"&lastEventId={query_last_event_id}"

        head = [
            f"GET /api/messages?{query} HTTP/1.1",
            f"Host: 127.0.0.1:{server.port}",
            "Accept: text/event-stream",
        ]
        if last_event_id is not None:
            head.append(f"Last-Event-ID: {last_event_id}")

        self._sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.status, self.headers = self._read_head()
        self._chunked = self.headers.get("transfer-encoding") == "chunked"

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._pending:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("closed before the response head")

            self._pending += data

        head, self._pending = self._pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

        return int(lines[0].split()[1]), headers

    def body(self, timeout: float = REQUEST_TIMEOUT_SECS) -> bytes:
        """The rest of a non-stream (error) response."""
        length = int(self.headers.get("content-length", "0"))
        self._sock.settimeout(timeout)
        while len(self._pending) < length:
            data = self._sock.recv(65536)
            if not data:
                break

            self._pending += data

        return self._pending[:length]

    def _fill(self, deadline: float) -> bool:
        """Read more body text into complete lines; False once the stream ended."""
        if self._split_lines():
            return True

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no more stream data before the deadline")

        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            raise TimeoutError("no more stream data before the deadline") from None
        except ConnectionResetError:
            data = b""

        if not data:
            return False

        self._pending += data
        self._split_lines()
        return True

    def _split_lines(self) -> bool:
        """Turn received body bytes into complete lines; tell whether any came."""
        text = self._take_body()
        if not text:
            return False

        *complete, rest = ("".join(self._lines) + text).split("\n")
        self._lines = [rest]
        self._ready.extend(complete)
        return bool(complete)

    def _take_body(self) -> str:
        if not self._chunked:
            text, self._pending = self._pending, b""
            return text.decode()

        out = b""
        while True:
            size_line, found, rest = self._pending.partition(b"\r\n")
            if not found:
                break

            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                break

            out += rest[:size]
            self._pending = rest[size + 2 :]
            if size == 0:
                break

        return out.decode()

    def next_event(self, timeout: float = REQUEST_TIMEOUT_SECS) -> SseEvent | None:
        """The next dispatched event, or None when the server ended the stream."""
        if self.held:
            return self.held.pop(0)

        deadline = time.monotonic() + timeout
        while True:
            while not self._ready:
                if not self._fill(deadline):
                    return None

            event = self._process(self._ready.pop(0).removesuffix("\r"))
            if event is not None:
                return event

    def _process(self, line: str) -> SseEvent | None:
        """Take one line as EventSource does; return an event when one completes."""
        if line == "":
            if self._id is not None:
                self.last_event_id = self._id

            event = None
            if self._data:
                data = "\n".join(self._data)
                event = SseEvent(self._id, self._type or "message", data)

            self._type, self._data, self._id = "", [], None
            return event

        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None

        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)

        return None

    def events(
        self, count: int, timeout: float = REQUEST_TIMEOUT_SECS
    ) -> list[SseEvent]:
        """Exactly ``count`` events, failing if the stream ends or stalls first."""
        deadline = time.monotonic() + timeout
        got: list[SseEvent] = []
        while len(got) < count:
            event = self.next_event(max(0.001, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(f"stream ended after {len(got)} of {count} events")

            got.append(event)

        return got

    def wait_for_comments(self, count: int, timeout: float) -> None:
        """Read until ``count`` comments have arrived; events are held for later."""
        deadline = time.monotonic() + timeout
        while len(self.comments) < count:
            if not self._ready and not self._fill(deadline):
                raise AssertionError("stream ended while waiting for comments")

            while self._ready:
                event = self._process(self._ready.pop(0).removesuffix("\r"))
                if event is not None:
                    self.held.append(event)

    def ended(self, timeout: float) -> bool:
        """Read and drop data until the server closes; False if it does not in time."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False

        return True

    def close(self) -> None:
        """Drop the connection without a goodbye, as a closed tab does."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

        self._sock.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
