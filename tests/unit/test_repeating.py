"""The console's background jobs (`console.pages.repeating`) go on after a failed round."""

import asyncio
import logging

import pytest

from console.pages import repeating
from events.errors import OffsiteError


@pytest.mark.parametrize("error", [OffsiteError("the database is away"), KeyError("a bug")])
async def test_a_job_goes_on_after_a_round_that_raised(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    rounds, third = [], asyncio.Event()

    async def work() -> str | None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise error
        if len(rounds) == 3:
            third.set()
        return None

    with caplog.at_level(logging.WARNING):
        async with repeating("a test job", 0.001, work):
            await asyncio.wait_for(third.wait(), 60)  # the rounds after the failed one ran
    assert len(rounds) >= 3
    assert any("a test job failed" in r.getMessage() for r in caplog.records)
