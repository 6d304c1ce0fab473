"""A run ends when the work is done, whatever the machine's speed: a stage slower than any pause
is waited for, an empty input ends at once, and a stage that never finishes is named."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from events import UnfinishedError
from events.stage import Incoming, Stage, StageResult
from offsite import services
from offsite.config import Settings, registry_of
from offsite.pipeline import build_stages, prepare, run, run_stages
from offsite.testing import settings_env
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sim.truth import expected_cases
from tests.integration.test_pipeline import cases_of

ROOT = Path(__file__).resolve().parents[2]
# longer than the pause after which the old runner took a stage for finished (2.5–3 s)
SLOW_S = 4.0


class Slowed:
    """A stage that takes ``SLOW_S`` to load and as long again over its first batch."""

    def __init__(self, inner: Stage) -> None:
        self.inner, self.name, self.inputs = inner, inner.name, inner.inputs
        self.first = True

    async def start(self) -> None:
        await asyncio.sleep(SLOW_S)
        await self.inner.start()

    async def process(self, batch: list[Incoming]) -> StageResult:
        if self.first:
            self.first = False
            await asyncio.sleep(SLOW_S)
        return await self.inner.process(batch)

    async def idle(self) -> StageResult:
        return await self.inner.idle()

    def held(self) -> dict[tuple[str, int], int]:
        return self.inner.held()

    async def acknowledged(self, result: StageResult) -> None:
        await self.inner.acknowledged(result)

    async def close(self) -> None:
        await self.inner.close()


class Stuck(Slowed):
    """A stage whose first batch never ends."""

    async def process(self, batch: list[Incoming]) -> StageResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _traffic(settings: Settings, vehicles: int) -> dict[str, dict]:
    passes = make_traffic(settings, SimulationConfig(vehicles=vehicles, seed=5, images=False))
    ep = services.endpoints(settings)
    await publish(settings, ep, traffic_messages(passes, settings.pipeline.topic_prefix))
    return expected_cases(
        passes, registry_of(settings), settings.pipeline.clock()(), verified=False
    )


async def test_a_stage_slower_than_any_pause_is_waited_for(plain_settings: Settings) -> None:
    settings = plain_settings
    expected = await _traffic(settings, 80)
    assert expected
    ep = services.endpoints(settings)
    store = await prepare(settings, ep)
    try:
        detect, rules, cases = build_stages(settings, store, ("detect", "rules", "cases"))
        report = await run_stages(settings, ep, [Slowed(detect), rules, cases], until_done=True)
    finally:
        await store.close()
    assert report.done
    assert report.stages["detect"].loaded_s is not None
    assert report.stages["detect"].loaded_s >= SLOW_S
    assert {c["record_id"] for c in await cases_of(settings)} == set(expected)


async def test_empty_topics_end_the_run_at_once(plain_settings: Settings) -> None:
    ep = services.endpoints(plain_settings)
    report = await run(plain_settings, ep, until_done=True)
    assert report.done and report.nothing_to_do and report.stages == {}
    # and from the command line, saying so
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "offsite.cli", "run", "--until-idle",
        env=settings_env(plain_settings), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("nothing to process")


async def test_everything_consumed_then_a_new_run_has_nothing_to_do(
    plain_settings: Settings,
) -> None:
    settings = plain_settings
    expected = await _traffic(settings, 30)
    ep = services.endpoints(settings)
    first = await run(settings, ep, ("detect", "rules", "cases"), until_done=True)
    assert first.done and not first.nothing_to_do
    assert first.stages["detect"].messages > 0
    assert {c["record_id"] for c in await cases_of(settings)} == set(expected)
    again = await run(settings, ep, ("detect", "rules", "cases"), until_done=True)
    assert again.nothing_to_do


async def test_a_stage_that_never_finishes_is_named_with_its_lag(plain_settings: Settings) -> None:
    pipeline = plain_settings.pipeline.model_copy(update={"drain_timeout_s": 2.0})
    settings = plain_settings.model_copy(update={"pipeline": pipeline})
    await _traffic(settings, 20)
    ep = services.endpoints(settings)
    store = await prepare(settings, ep)
    try:
        detect, rules = build_stages(settings, store, ("detect", "rules"))
        with pytest.raises(UnfinishedError) as caught:
            await run_stages(settings, ep, [Stuck(detect), rules], until_done=True)
    finally:
        await store.close()
    err = caught.value
    assert "detect: " in str(err) and err.states["detect"]
    # it never committed a thing: its whole input is left, on the raw topics
    left = err.lags["detect"]
    assert {t for t, _ in left} <= set(detect.inputs)
    assert sum(left.values()) > 0
