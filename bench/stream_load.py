"""Load a live server's stream: N open streams, M senders, delivery measured.

Signs up ``--receivers`` users and ``--senders`` senders, starts a
conversation between every sender and every receiver, then opens
``--streams`` event streams spread evenly over the receivers (as tabs). The
senders each send ``--messages`` messages, round-robin over the receivers,
at ``--rate`` messages per second each. Every stream records what it gets.

Reports, for the N streams and M senders: delivery latency p50 and p99
(from just before the send request to the event arriving at each stream),
deliveries lost and duplicated, and the server's memory per open stream
(the resident memory of gunicorn's workers before and after the streams
opened; give ``--server-pid`` the master's pid, on this machine).

    python bench/stream_load.py --base-url http://127.0.0.1:8000 \\
        --streams 1000 --senders 4 --server-pid "$(cat /tmp/messenger.pid)"

Start the server with ``gunicorn --config gunicorn.conf.py --pid
/tmp/messenger.pid wsgi:app`` and room for the streams:
MESSENGER_WORKER_CONNECTIONS above the streams per worker, and
MESSENGER_MAX_STREAMS_PER_USER at least streams / receivers. Only loopback or
your own test hosts are targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from api_load import PASSWORD, Client

# Opening thousands of streams at once would look like a reconnect storm;
# this many connect at a time.
CONNECT_BATCH = 100


def sign_up(base_url: str, name: str) -> tuple[str, str]:
    """Create an account; return its token and username."""
    status, body = Client(base_url).call(
        "POST", "/api/users", {"username": name, "password": PASSWORD}
    )
    if status != 201:
        raise SystemExit(f"sign-up failed: {status} {body}")

    return body["token"], name


def rss_kib(master_pid: int) -> int:
    """Resident memory of the master's children (the workers), in KiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines()
            )
        except (OSError, ValueError):
            continue

        if fields.get("PPid", "").strip() == str(master_pid):
            total += int(fields.get("VmRSS", "0 kB").split()[0])

    return total


class Stream:
    """One open stream and what it received."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.latencies: list[float] = []
        self.ids: Counter[str] = Counter()
        self.ready = asyncio.Event()


async def read_stream(base_url: str, token: str, stream: Stream) -> None:
    """Open a stream and record every message event until cancelled."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        (
            f"GET /api/messages?token={token} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            raise SystemExit(f"stream {stream.index} refused: {status!r}")

        while await reader.readline() not in (b"\r\n", b""):
            pass  # response headers

        stream.ready.set()
        while True:
            line = await reader.readline()
            if not line:
                return

            # Chunk-size lines and SSE fields both arrive here; only data
            # lines with message JSON matter.
            if not line.startswith(b"data: {"):
                continue

            received_at = time.time()
            message = json.loads(line[6:])
            if "content" not in message or message["mine"]:
                continue

            sent_at = float(message["content"].split()[1])
            stream.latencies.append(received_at - sent_at)
            stream.ids[message["id"]] += 1
    finally:
        writer.close()


def send_all(
    base_url: str,
    token: str,
    conversations: list[tuple[str, int]],
    count: int,
    rate: float,
    sent: list[tuple[int, str]],
) -> None:
    """Send ``count`` messages round-robin over conversations at ``rate`` a second."""
    client = Client(base_url, token)
    interval = 1 / rate if rate > 0 else 0
    start = time.monotonic()
    for number in range(count):
        conversation_id, receiver = conversations[number % len(conversations)]
        status, body = client.call(
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            {
                "content": f"bench {time.time():.6f} {number}",
                "clientId": uuid.uuid4().hex,
            },
        )
        if status == 201:
            sent.append((receiver, body["id"]))

        pause = start + (number + 1) * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)


async def run(args: argparse.Namespace) -> None:
    """Set up users, open streams, send, and report."""
    run_id = secrets.token_hex(3)
    receivers = [
        sign_up(args.base_url, f"bench-{run_id}-r{index}")
        for index in range(args.receivers)
    ]
    senders = [
        sign_up(args.base_url, f"bench-{run_id}-s{index}")
        for index in range(args.senders)
    ]
    conversations: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for token, _ in senders:
        client = Client(args.base_url, token)
        for receiver, (_, username) in enumerate(receivers):
            _, body = client.call("POST", "/api/conversations", {"username": username})
            conversations[token].append((body["id"], receiver))

    memory_before = rss_kib(args.server_pid) if args.server_pid else 0
    streams = [Stream(index) for index in range(args.streams)]
    owner = {stream.index: stream.index % args.receivers for stream in streams}
    tasks = []
    for start in range(0, len(streams), CONNECT_BATCH):
        batch = streams[start : start + CONNECT_BATCH]
        for stream in batch:
            token = receivers[owner[stream.index]][0]
            tasks.append(asyncio.create_task(read_stream(args.base_url, token, stream)))

        await asyncio.wait_for(
            asyncio.gather(*(stream.ready.wait() for stream in batch)), 60
        )

    await asyncio.sleep(2)  # let the workers settle after the connects
    memory_after = rss_kib(args.server_pid) if args.server_pid else 0

    sent: list[tuple[int, str]] = []
    threads = [
        threading.Thread(
            target=send_all,
            args=(
                args.base_url,
                token,
                conversations[token],
                args.messages,
                args.rate,
                sent,
            ),
            daemon=True,
        )
        for token, _ in senders
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()

    while any(thread.is_alive() for thread in threads):
        await asyncio.sleep(0.1)

    sending_secs = time.monotonic() - began
    streams_of: dict[int, list[Stream]] = defaultdict(list)
    for stream in streams:
        streams_of[owner[stream.index]].append(stream)

    expected = {
        (stream.index, message_id)
        for receiver, message_id in sent
        for stream in streams_of[receiver]
    }
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        delivered = sum(len(stream.ids) for stream in streams)
        if delivered >= len(expected):
            break

        await asyncio.sleep(0.1)

    for task in tasks:
        task.cancel()

    await asyncio.gather(*tasks, return_exceptions=True)
    received = {(stream.index, mid) for stream in streams for mid in stream.ids}
    duplicated = sum(
        count - 1 for stream in streams for count in stream.ids.values() if count > 1
    )
    latencies = sorted(ms for stream in streams for ms in stream.latencies)
    report(
        args,
        sent=len(sent),
        sending_secs=sending_secs,
        expected=len(expected),
        lost=len(expected - received),
        duplicated=duplicated,
        latencies=latencies,
        memory=(memory_before, memory_after),
    )


def report(
    args: argparse.Namespace,
    *,
    sent: int,
    sending_secs: float,
    expected: int,
    lost: int,
    duplicated: int,
    latencies: list[float],
    memory: tuple[int, int],
) -> None:
    """Print the figures of a run."""
    print(f"streams {args.streams} over {args.receivers} users, senders {args.senders}")
    print(
        f"messages sent   {sent} in {sending_secs:.1f} s ({sent / sending_secs:.0f}/s)"
    )
    print(f"deliveries      {expected} expected, {len(latencies)} received")
    print(f"lost            {lost}")
    print(f"duplicated      {duplicated}")
    if len(latencies) >= 2:
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"latency         p50 {cuts[49] * 1000:.1f} ms,"
            f" p99 {cuts[98] * 1000:.1f} ms,"
            f" max {latencies[-1] * 1000:.1f} ms"
        )

    before, after = memory
    if after:
        per_stream = (after - before) / args.streams
        print(
            f"server memory   {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB"
            f" with the streams: {per_stream:.1f} KiB per stream"
        )


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--messages", type=int, default=200, help="per sender")
    parser.add_argument("--rate", type=float, default=20, help="per sender, per second")
    parser.add_argument("--drain", type=float, default=30, help="seconds to wait")
    parser.add_argument("--server-pid", type=int, default=0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
