"""Load a live server's REST API and report throughput and latency.

Signs up fresh users in pairs, starts one conversation per pair, then runs
``--concurrency`` client threads for ``--seconds``: each sends messages into
its conversation and, every fifth request, lists its conversations. Prints
requests per second and p50/p99 latency per kind of request.

    python bench/api_load.py --base-url http://127.0.0.1:8000 --seconds 20

Only loopback or your own test hosts are targets; the run stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import statistics
import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

PASSWORD = "benchmark password"


class Client:
    """One keep-alive HTTP connection speaking JSON."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        parts = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one request and return its status and decoded JSON body."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"

        data = None if body is None else json.dumps(body)
        self._conn.request(method, path, body=data, headers=headers)
        response = self._conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def set_up_pairs(base_url: str, pairs: int) -> list[tuple[str, str]]:
    """Sign up two users per pair and start their conversation.

    Returns (token, conversation id) for the first user of each pair.
    """
    run = secrets.token_hex(3)
    client = Client(base_url)
    result = []
    for index in range(pairs):
        tokens = []
        for side in ("a", "b"):
            name = f"bench{run}{side}{index}"
            status, body = client.call(
                "POST", "/api/users", {"username": name, "password": PASSWORD}
            )
            if status != 201:
                raise SystemExit(f"sign-up failed: {status} {body}")

            tokens.append(body["token"])

        client.token = tokens[0]
        status, body = client.call(
            "POST", "/api/conversations", {"username": f"bench{run}b{index}"}
        )
        if status != 201:
            raise SystemExit(f"conversation failed: {status} {body}")

        result.append((tokens[0], body["id"]))
        client.token = None

    return result


def run_load(
    base_url: str, pairs: list[tuple[str, str]], seconds: float
) -> tuple[dict[str, list[float]], int]:
    """Drive one thread per pair until the deadline; return latencies and errors."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(token: str, conversation_id: str) -> None:
        nonlocal errors
        client = Client(base_url, token)
        local: dict[str, list[float]] = defaultdict(list)
        local_errors = 0
        count = 0
        while time.monotonic() < deadline:
            count += 1
            if count % 5 == 0:
                kind, method, path, body = "list", "GET", "/api/conversations", None
            else:
                kind, method = "send", "POST"
                path = f"/api/conversations/{conversation_id}/messages"
                body = {"content": f"message {count}"}

            started = time.perf_counter()
            status, _ = client.call(method, path, body)
            local[kind].append(time.perf_counter() - started)
            if status >= 400:
                local_errors += 1

        with lock:
            for kind, values in local.items():
                latencies[kind].extend(values)

            errors += local_errors

    threads = [
        threading.Thread(target=worker, args=pair, daemon=True) for pair in pairs
    ]
    for thread in threads:
        thread.start()

    for thread in threads:
        thread.join(seconds + 60)

    return latencies, errors


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted values fall."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    """Parse arguments, run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    pairs = set_up_pairs(args.base_url, args.concurrency)
    latencies, errors = run_load(args.base_url, pairs, args.seconds)

    total = sum(len(values) for values in latencies.values())
    print(f"{args.concurrency} clients, {args.seconds:.0f} s, {errors} errors")
    print(f"all requests: {total / args.seconds:.0f} req/s")
    for kind, values in sorted(latencies.items()):
        print(
            f"{kind:>5}: {len(values) / args.seconds:7.0f} req/s"
            f"  p50 {statistics.median(values) * 1000:6.1f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
