"""Riding out a broker or database that is away for a while (a restart, a failover, a group
coordinator not ready yet on a fresh Kafka): the work is started again after a back-off, as a
restarted process would, and the process never exits for it. Any other error is a bug and ends
the process.

While it waits, the process says so: a log line per attempt, ``offsite_retries_total`` and
``offsite_waiting`` in its metrics, and the reason in the body of ``/readyz``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from sinks import database_away
from sinks.metrics import RETRIES, stages_ready, waiting

from .kafka import broker_away

log = logging.getLogger("offsite.retry")
T = TypeVar("T")


def transient(exc: BaseException) -> str | None:
    """``"broker"`` or ``"database"`` when ``exc`` says that one is away for now (worth waiting
    for), else None: a bug. Every broker error counts as away; a database error only when it is
    about the connection or the server's state (the adapters say which)."""
    if broker_away(exc):
        return "broker"
    return "database" if database_away(exc) else None


async def ride_out(
    attempt: Callable[[asyncio.Event], Awaitable[T]],
    stop: asyncio.Event,
    stopped: T,
    *,
    first_s: float = 0.5,
    max_s: float = 30.0,
) -> T:
    """``attempt(attempt_stop)`` until it returns; when it fails because the broker or the
    database is away, again after a back-off (``first_s`` doubling to ``max_s``, ±20 %; from
    ``first_s`` again after an attempt that lasted longer than ``max_s``). ``stopped`` is what is
    returned when ``stop`` is set while waiting. Other errors are raised."""
    delay = first_s
    while True:
        this_stop = asyncio.Event()
        relay = asyncio.create_task(_relay(stop, this_stop))
        began = time.monotonic()
        try:
            result = await attempt(this_stop)
        except Exception as exc:
            cause = transient(exc)
            if cause is None:
                raise
            if stop.is_set():  # told to stop while the broker or database was away
                waiting(None)
                return stopped
            failure: Exception = exc
        else:
            waiting(None)
            return result
        finally:
            relay.cancel()
        if time.monotonic() - began > max_s:
            delay = first_s
        pause = delay * random.uniform(0.8, 1.2)
        RETRIES.labels(cause).inc()
        waiting(f"waiting for the {cause}, next attempt in {pause:.1f} s: {failure}", cause)
        log.warning(
            "the %s is away; starting again in %.1f s", cause, pause,
            extra={"cause": cause, "error": str(failure)[:300], "retry_in_s": round(pause, 1)},
        )  # fmt: skip
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            waiting(None)
            return stopped
        delay = min(delay * 2, max_s)


async def _relay(stop: asyncio.Event, this_stop: asyncio.Event) -> None:
    """Pass ``stop`` on to one attempt; once every stage of the attempt has joined its group,
    the wait is over (readiness no longer names it)."""
    cleared = False
    while not stop.is_set():
        if not cleared and stages_ready():
            waiting(None)
            cleared = True
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    this_stop.set()
