"""The hub: every open stream of this worker process, keyed by user.

Each stream has its own bounded ``queue.Queue``. The feed (one background
thread per process) publishes events into the queues of their user's
streams; each stream's generator takes them out and writes them to its
client. Publishing never blocks: a stream whose queue is full is closed, and
its client resumes from its last id on reconnect, which repairs the gap.

Under gunicorn's gevent worker the queues and the lock are gevent's
cooperative versions, so one worker serves thousands of idle streams.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import select
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from messenger.errors import ApiError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One stored stream event, with its SSE frame already encoded."""

    user_id: int
    id: int
    frame: bytes


class Signal:
    """A marker put in a stream's queue to tell it something other than an event."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


# The stream may have missed events: read from the database after its last id.
CATCH_UP = Signal("catch up")

# The process is stopping: end the stream so its client reconnects elsewhere.
CLOSE = Signal("close")

Item = Event | Signal

_stream_ids = itertools.count(1)


class TooManyStreamsError(ApiError):
    """The user already has the most open streams one process allows."""

    def __init__(self, limit: int, retry_after_secs: int) -> None:
        super().__init__(
            429,
            f"Too many open streams (at most {limit})",
            headers={"Retry-After": str(retry_after_secs)},
        )


class Subscription:
    """One open stream: its user, its bounded queue, and why it must stop."""

    def __init__(
        self, user_id: int, buffer_events: int, sock: socket.socket | None
    ) -> None:
        self.id = next(_stream_ids)
        self.user_id = user_id
        self.queue: queue.Queue[Item] = queue.Queue(buffer_events)
        self.stop_reason: str | None = None
        self._socket = sock

    def offer(self, item: Item) -> bool:
        """Queue an item without waiting; False when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            return False

        return True

    def client_gone(self) -> bool:
        """Tell whether the client has closed its end, without reading its data.

        A write to a closed connection often still succeeds once, so checking
        before a heartbeat frees the slot one heartbeat sooner.
        """
        if self._socket is None:
            return False

        # gevent's recv waits for data even when asked not to, so readability
        # is checked first; a readable socket with nothing to peek is closed.
        try:
            readable, _, _ = select.select([self._socket], [], [], 0)
            if not readable:
                return False

            return self._socket.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def abort(self, reason: str) -> None:
        """Make the stream stop, even while its writer is blocked on the socket.

        A writer blocked sending to a client that does not read would only
        notice a flag when the send completes; shutting the socket down makes
        the send fail at once, so the stream ends and frees its slot.
        """
        self.stop_reason = self.stop_reason or reason
        self.offer(CLOSE)
        if self._socket is not None:
            # An OSError means the client has closed it already.
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)


class Hub:
    """Thread-safe registry of the open streams of this process, by user."""

    def __init__(self, *, max_streams_per_user: int, buffer_events: int) -> None:
        self.max_streams_per_user = max_streams_per_user
        self.buffer_events = buffer_events
        self._lock = threading.Lock()
        self._streams: dict[int, set[Subscription]] = {}
        # The newest event id known to be in each user's queues, so the feed
        # can tell which users fell behind the database.
        self._heads: dict[int, int] = {}
        self._closed = False

    def subscribe(
        self,
        user_id: int,
        *,
        retry_after_secs: int = 1,
        sock: socket.socket | None = None,
    ) -> Subscription:
        """Register a new stream for a user, or raise TooManyStreamsError."""
        subscription = Subscription(user_id, self.buffer_events, sock)
        with self._lock:
            streams = self._streams.setdefault(user_id, set())
            if len(streams) >= self.max_streams_per_user:
                if not streams:
                    del self._streams[user_id]

                raise TooManyStreamsError(self.max_streams_per_user, retry_after_secs)

            streams.add(subscription)
            if self._closed:
                subscription.stop_reason = "shutting down"
                subscription.offer(CLOSE)

        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream; the last one of a user takes the user's entry along."""
        with self._lock:
            streams = self._streams.get(subscription.user_id)
            if streams is None:
                return

            streams.discard(subscription)
            if not streams:
                del self._streams[subscription.user_id]
                self._heads.pop(subscription.user_id, None)

    def note_head(self, user_id: int, event_id: int) -> None:
        """Record that a user's streams have everything up to ``event_id``."""
        with self._lock:
            if user_id in self._streams and event_id > self._heads.get(user_id, -1):
                self._heads[user_id] = event_id

    def heads(self) -> dict[int, int]:
        """Each user with open streams, and the newest event id known to them."""
        with self._lock:
            return {user_id: self._heads.get(user_id, -1) for user_id in self._streams}

    def has_streams(self, user_id: int) -> bool:
        """Tell whether a user has an open stream in this process."""
        return user_id in self._streams

    def stream_count(self) -> int:
        """How many streams are open in this process."""
        with self._lock:
            return sum(len(streams) for streams in self._streams.values())

    def publish(self, events: Iterable[Event]) -> None:
        """Queue events for every stream of their users, never waiting.

        Events must come in id order per user. A stream whose queue is full
        is aborted; the others are not delayed.
        """
        overflowing: list[Subscription] = []
        with self._lock:
            for event in events:
                streams = self._streams.get(event.user_id)
                if not streams:
                    continue

                if event.id > self._heads.get(event.user_id, -1):
                    self._heads[event.user_id] = event.id

                for subscription in streams:
                    if not subscription.offer(event):
                        overflowing.append(subscription)

        for subscription in overflowing:
            if subscription.stop_reason is None:
                log.warning(
                    "stream %d of user %d fell %d events behind; closing it",
                    subscription.id,
                    subscription.user_id,
                    self.buffer_events,
                )

            subscription.abort("too slow")

    def signal(self, user_ids: Iterable[int], item: Signal) -> None:
        """Put a signal in every stream of these users (aborting full ones)."""
        with self._lock:
            targets = [
                subscription
                for user_id in user_ids
                for subscription in self._streams.get(user_id, ())
            ]

        for subscription in targets:
            if not subscription.offer(item):
                subscription.abort("too slow")

    def close_all(self) -> int:
        """End every stream and refuse new ones; return how many were open."""
        with self._lock:
            self._closed = True
            targets = [s for streams in self._streams.values() for s in streams]

        for subscription in targets:
            subscription.stop_reason = subscription.stop_reason or "shutting down"
            if not subscription.offer(CLOSE):
                subscription.abort("shutting down")

        return len(targets)
