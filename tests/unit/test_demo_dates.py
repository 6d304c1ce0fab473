"""The demo's traffic on any day of any year: every record it posts to the gateway is dated
before the gateway's clock, so none is refused as "ahead of the clock" (issue #28's window)."""

from __future__ import annotations

import datetime as dt

import pytest

from events.clock import fixed_clock
from offsite.demo import demo_days
from sim import SimulationConfig
from sim.leads import LeadConfig, simulate_leads

from .test_leads import REGISTRY


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2026, 12, 7, 13, 47, tzinfo=dt.UTC),  # the afternoon the demo first failed
        dt.datetime(
            2027, 1, 1, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))
        ),  # just after midnight
        dt.datetime(2029, 2, 28, 23, 59, tzinfo=dt.UTC),
    ],
)
def test_the_demo_posts_nothing_dated_after_the_gateway_s_clock(now: dt.datetime) -> None:
    start, day = demo_days(fixed_clock(now))
    captures, _ = simulate_leads(REGISTRY, LeadConfig(day=day))
    # the staged leads are the latest records; the truck traffic is one day before them
    latest = max(c.ts for c in captures)
    assert start < day <= min(c.ts for c in captures)
    assert latest < now, latest
    assert now - start < dt.timedelta(days=30)  # recent traffic: fined, not time-barred (Art. 36)
    assert start.timetz() == SimulationConfig.start.timetz()
