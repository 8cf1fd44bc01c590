"""Server-Sent Events framing: the bytes a stream writes.

Payloads are JSON written with ASCII escapes, so they never hold a line
break and always fit on one ``data:`` line.
"""

from __future__ import annotations

from messenger.data import events

# A comment line: ignored by EventSource, but it keeps proxies from timing out
# an idle connection and shows whether the client is still there.
HEARTBEAT = b": keep-alive\n\n"

RESET_KIND = "reset"


def preamble(retry_ms: int, position: int) -> bytes:
    """The first bytes of a stream: the retry delay, its position, a comment.

    The ``id:`` line with no data sets the client's last event id without
    firing an event, so a reconnect resumes from here even if no event came.
    """
    return f"retry: {retry_ms}\nid: {position}\n: connected\n\n".encode()


def event_frame(event_id: int, kind: str, payload: str) -> bytes:
    """One event. Messages have no ``event:`` field, so ``onmessage`` gets them."""
    if kind == events.MESSAGE:
        return f"id: {event_id}\ndata: {payload}\n\n".encode()

    return f"id: {event_id}\nevent: {kind}\ndata: {payload}\n\n".encode()


def reset_frame(position: int) -> bytes:
    """Tell the client its id cannot be resumed from: reload state, go on from here."""
    return event_frame(position, RESET_KIND, "{}")
