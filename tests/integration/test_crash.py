"""A pipeline process killed mid-batch (SIGKILL) and restarted loses no case and duplicates none,
and weighs every pass once (the statistics' vehicles weighed)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from offsite import services
from offsite.config import Settings, registry_of
from offsite.pipeline import prepare
from offsite.testing import settings_env
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sim.truth import expected_cases
from sinks import CaseStore
from tests.integration.test_pipeline import cases_of

ROOT = Path(__file__).resolve().parents[2]


async def _offsite(settings: Settings, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "offsite.cli", *args, env=settings_env(settings, BATCH_MAX="40"), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_killed_mid_batch_then_restarted_loses_and_duplicates_nothing(
    plain_settings: Settings,
) -> None:
    settings = plain_settings  # simulated without images: no second plate read
    ep = services.endpoints(settings)
    passes = make_traffic(settings, SimulationConfig(vehicles=1500, seed=3, images=False))
    expected = expected_cases(
        passes, registry_of(settings), settings.pipeline.clock()(), verified=False
    )
    await publish(settings, ep, traffic_messages(passes, settings.pipeline.topic_prefix))
    (await prepare(settings, ep)).pool.terminate()

    first = await _offsite(settings, "run")
    try:
        # kill as soon as cases are being written, well before the end (a generous cap only
        # for a process that never gets there)
        async with asyncio.timeout(600):
            while len(await cases_of(settings)) < 10:
                assert first.returncode is None, "the first run died on its own"
                await asyncio.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.communicate()
    written = len(await cases_of(settings))
    assert 0 < written < len(expected), "the kill must land mid-stream"

    second = await _offsite(settings, "run", "--until-idle")
    _, err = await second.communicate()
    assert second.returncode == 0, err.decode()

    cases = await cases_of(settings)
    ids = [c["record_id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate cases"
    assert set(ids) == set(expected)
    # every pass weighed once, what the killed run wrote included (migration 086)
    store = await CaseStore.connect(ep.database_url)
    try:
        weighed = await store.pool.fetch("SELECT record_id, overloaded FROM weighings")
    finally:
        await store.close()
    assert sorted(r["record_id"] for r in weighed) == sorted(p.wim.record_id for p in passes)
    assert {r["record_id"] for r in weighed if r["overloaded"]} >= {
        c["record_id"] for c in cases if c["overload_kg"] > 0 and c["violation_code"] ==
        "road.overload.gross"}  # fmt: skip
