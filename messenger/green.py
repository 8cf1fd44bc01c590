"""Cooperation with gevent, when gunicorn's gevent worker has patched the process.

The app never patches anything itself. Under gevent it adapts: psycopg2 gets
a wait callback, and CPU-heavy calls that release the GIL (password hashing)
run on gevent's thread pool so the event loop keeps serving other requests.
Without gevent (tests, scripts) everything runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")


def gevent_active() -> bool:
    """Tell whether gevent has monkey-patched this process."""
    try:
        from gevent import monkey
    except ImportError:
        return False

    return bool(monkey.is_module_patched("socket"))


def make_psycopg2_cooperative() -> bool:
    """Let psycopg2 yield to other greenlets while it waits on the network.

    psycopg2 is a C extension that monkey-patching cannot reach, so without a
    wait callback one slow query would stall every request of the worker.
    Returns whether the callback was installed.
    """
    if not gevent_active():
        return False

    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    return True


def run_off_loop(func: Callable[..., Result], *args: object) -> Result:
    """Run ``func(*args)`` on a real thread under gevent, inline otherwise.

    Only worth it for work that releases the GIL, as hashlib's scrypt and
    pbkdf2 do: a 100 ms hash then no longer freezes the worker's streams.
    """
    if not gevent_active():
        return func(*args)

    from gevent import get_hub

    result: Result = get_hub().threadpool.apply(func, args)
    return result
