"""The stream: GET /api/messages, everything that happens to the caller, as SSE.

The view checks the request, registers the stream with the hub and finds
where it starts; the response body is a generator that runs for the life of
the connection. It first replays stored events after the client's last id,
then writes what the feed puts in its queue, with a heartbeat comment in
every silence. It holds a database connection only while reading a page of
stored events, never while it waits.

Each user's event ids count up without gaps, so the stream can tell when an
event in its queue is not the next one (the feed missed a notification, or
the stream is new) and reads what lies between from the database first.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import time
from collections.abc import Iterator

from flask import Blueprint, Response, request

from messenger import sse
from messenger.auth import current_user_id, login_required
from messenger.data import events
from messenger.db import Database
from messenger.errors import ApiError
from messenger.hub import CLOSE, Event, Hub, Subscription
from messenger.runtime import get_runtime

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__, url_prefix="/api")

# Stored events read per short transaction while replaying.
REPLAY_PAGE_EVENTS = 500

# Queued events written to the socket in one go when several are waiting.
WRITE_BATCH_EVENTS = 64

# The kernel's send buffer of a stream's socket. Left alone it grows to
# megabytes for a client that stops reading, hiding it from its queue; this
# bounds the memory an idle stream can pin and lets the queue notice first.
SEND_BUFFER_BYTES = 64 * 1024

_EVENT_ID = re.compile(r"0|[1-9][0-9]{0,17}")


@bp.get("/messages")
@login_required
def stream_events() -> Response:
    """Open the caller's event stream, resuming after their last event id."""
    if not _accepts_event_stream():
        raise ApiError(406, "This endpoint serves text/event-stream only")

    runtime = get_runtime()
    realtime = runtime.realtime
    user_id = current_user_id()
    resume_after, resumable = _requested_resume()

    realtime.feed.start()
    sock = request.environ.get("gunicorn.socket")
    subscription = realtime.hub.subscribe(
        user_id,
        retry_after_secs=max(1, runtime.settings.sse_retry_ms // 1000),
        sock=sock,
    )
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    try:
        with runtime.db.reading() as conn:
            head, kept = events.resume_position(conn, user_id, resume_after)
    except BaseException:
        realtime.hub.unsubscribe(subscription)
        raise

    reset = not (resumable and kept)
    cursor = head if reset or resume_after is None else resume_after
    realtime.hub.note_head(user_id, cursor)
    log.info(
        "stream %d opened for user %d at %d%s",
        subscription.id,
        user_id,
        cursor,
        " with a reset" if reset else "",
    )

    body = _stream_body(
        runtime.db,
        realtime.hub,
        subscription,
        cursor=cursor,
        reset=reset,
        replay=not reset and cursor < head,
        heartbeat_secs=runtime.settings.sse_heartbeat_secs,
        retry_ms=runtime.settings.sse_retry_ms,
    )
    response = Response(body, status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _accepts_event_stream() -> bool:
    return any(
        mimetype == "text/event-stream" and quality > 0
        for mimetype, quality in request.accept_mimetypes
    )


def _requested_resume() -> tuple[int | None, bool]:
    """The id to resume after, and False when the client sent one we cannot parse."""
    given = (request.headers.get("Last-Event-ID") or "").strip() or (
        request.args.get("lastEventId") or ""
    ).strip()
    if not given:
        return None, True

    if not _EVENT_ID.fullmatch(given):
        return None, False

    return int(given), True


def _stream_body(
    db: Database,
    hub: Hub,
    subscription: Subscription,
    *,
    cursor: int,
    reset: bool,
    replay: bool,
    heartbeat_secs: float,
    retry_ms: int,
) -> Iterator[bytes]:
    """Write the stream until the client leaves, falls behind or the process stops."""
    opened_at = time.monotonic()
    written = 0
    try:
        yield sse.preamble(retry_ms, cursor)
        if reset:
            yield sse.reset_frame(cursor)
            written += 1

        writes = _replay(db, subscription.user_id, cursor) if replay else iter(())
        while subscription.stop_reason is None:
            for chunk, last_id, count in writes:
                yield chunk
                cursor, written = last_id, written + count

            writes = _next_writes(db, subscription, cursor, heartbeat_secs)

    finally:
        hub.unsubscribe(subscription)
        log.info(
            "stream %d closed for user %d after %.1fs and %d events: %s",
            subscription.id,
            subscription.user_id,
            time.monotonic() - opened_at,
            written,
            subscription.stop_reason or "client went away",
        )


def _next_writes(
    db: Database, subscription: Subscription, cursor: int, heartbeat_secs: float
) -> Iterator[tuple[bytes, int, int]]:
    """What to write next: (bytes, the id they end at, how many events).

    Waits for the queue up to one heartbeat; silence gives a heartbeat.
    """
    try:
        first = subscription.queue.get(timeout=heartbeat_secs)
    except queue.Empty:
        if subscription.client_gone():
            subscription.stop_reason = "client went away"
        else:
            yield sse.HEARTBEAT, cursor, 0

        return

    items = [first]
    while len(items) < WRITE_BATCH_EVENTS and not subscription.queue.empty():
        items.append(subscription.queue.get_nowait())

    frames: list[bytes] = []
    for item in items:
        if item is CLOSE:
            subscription.stop_reason = subscription.stop_reason or "closed"
            break

        if not isinstance(item, Event) or item.id > cursor + 1:
            # A catch-up signal, or an event beyond the next id: what lies
            # between is read from the database, this item included.
            if frames:
                yield b"".join(frames), cursor, len(frames)
                frames = []

            yield from _replay(db, subscription.user_id, cursor)
            return

        if item.id <= cursor:
            continue  # already written, by the replay or an earlier queue entry

        frames.append(item.frame)
        cursor = item.id

    if frames:
        yield b"".join(frames), cursor, len(frames)


def _replay(
    db: Database, user_id: int, cursor: int
) -> Iterator[tuple[bytes, int, int]]:
    """Stored events after ``cursor``, a page per short transaction."""
    while True:
        with db.reading() as conn:
            rows = events.list_events_after(conn, user_id, cursor, REPLAY_PAGE_EVENTS)

        if not rows:
            return

        frames = [sse.event_frame(row.id, row.kind, row.payload) for row in rows]
        cursor = rows[-1].id
        yield b"".join(frames), cursor, len(frames)
        if len(rows) < REPLAY_PAGE_EVENTS:
            return
