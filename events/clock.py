"""The clock a decision reads: a dependency, so that tests and replays fix it and nothing
breaks when the calendar moves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    """Now, in UTC: the clock of a live deployment."""
    return dt.datetime.now(dt.UTC)


def fixed_clock(at: dt.datetime) -> Clock:
    """Always ``at`` (timezone-aware): a test's or a replay's decision time."""
    if at.tzinfo is None:
        raise ValueError(f"a clock needs a time zone: {at.isoformat()}")
    return lambda: at
