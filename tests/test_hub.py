"""The hub on its own: limits, fan-out, slow streams and shutdown."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from messenger.hub import CATCH_UP, CLOSE, Event, Hub, TooManyStreamsError


def event(user_id: int, event_id: int) -> Event:
    """An event with a recognisable frame."""
    return Event(user_id, event_id, f"id: {event_id}\n\n".encode())


def drain(subscription) -> list[Any]:
    """Everything waiting in a subscription's queue."""
    items: list[Any] = []
    while True:
        try:
            items.append(subscription.queue.get_nowait())
        except queue.Empty:
            return items


def test_events_reach_every_stream_of_their_user_only():
    hub = Hub(max_streams_per_user=4, buffer_events=8)
    tabs = [hub.subscribe(1), hub.subscribe(1)]
    other = hub.subscribe(2)
    hub.publish([event(1, 1), event(1, 2), event(2, 1)])

    for tab in tabs:
        assert [item.id for item in drain(tab)] == [1, 2]

    assert [item.id for item in drain(other)] == [1]
    assert hub.heads() == {1: 2, 2: 1}


def test_a_full_stream_is_aborted_and_the_others_get_everything():
    hub = Hub(max_streams_per_user=4, buffer_events=3)
    slow, fast = hub.subscribe(1), hub.subscribe(1)
    for number in range(1, 4):
        hub.publish([event(1, number)])
        assert len(drain(fast)) == 1

    hub.publish([event(1, 4)])
    assert slow.stop_reason == "too slow"
    assert fast.stop_reason is None
    assert [item.id for item in drain(fast)] == [4]


def test_the_limit_is_per_user_and_a_closed_stream_frees_its_slot():
    hub = Hub(max_streams_per_user=2, buffer_events=8)
    first, _second = hub.subscribe(1), hub.subscribe(1)
    with pytest.raises(TooManyStreamsError) as refused:
        hub.subscribe(1, retry_after_secs=3)

    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "3"}
    hub.subscribe(2)
    hub.unsubscribe(first)
    hub.subscribe(1)
    assert hub.stream_count() == 3


def test_the_last_stream_of_a_user_takes_the_user_along():
    hub = Hub(max_streams_per_user=2, buffer_events=8)
    only = hub.subscribe(1)
    hub.note_head(1, 5)
    assert hub.heads() == {1: 5}
    hub.unsubscribe(only)
    hub.unsubscribe(only)
    assert hub.heads() == {}
    assert not hub.has_streams(1)


def test_signals_and_shutdown_reach_every_stream():
    hub = Hub(max_streams_per_user=2, buffer_events=1)
    waiting, full = hub.subscribe(1), hub.subscribe(2)
    hub.publish([event(2, 1)])
    hub.signal([1], CATCH_UP)
    assert drain(waiting) == [CATCH_UP]

    assert hub.close_all() == 2
    assert drain(waiting) == [CLOSE]
    assert waiting.stop_reason == full.stop_reason == "shutting down"

    late = hub.subscribe(3)
    assert late.stop_reason == "shutting down"
    assert drain(late) == [CLOSE]
