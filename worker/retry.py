"""Retry a start-up step until it is done or the worker is asked to stop, warning at most every 30 s.

The worker waits out what it cannot work without (the schema registry's ids for its outputs, the
broker's answer to `init_transactions`) alive and unready, rather than exiting into a crash loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from worker.logs import LogLimiter

log = structlog.get_logger(__name__)
WARN_INTERVAL_S = 30.0


def until_done(attempt: Callable[[], str | None], stop: threading.Event, pause_s: float,
               on_waiting: Callable[[], None], event: str) -> None:
    """Call `attempt` until it returns None (done) or `stop` is set, `pause_s` apart. Each failure, the
    reason `attempt` returns, is heard by `on_waiting` (metrics, liveness) and logged as `event`."""
    limiter, started = LogLimiter(WARN_INTERVAL_S), time.monotonic()
    while (reason := attempt()) is not None:
        on_waiting()
        if (held_back := limiter.allow(event)) is not None:
            log.warning(event, reason=reason, waited_s=round(time.monotonic() - started, 1), held_back=held_back)
        if stop.wait(pause_s):
            return
