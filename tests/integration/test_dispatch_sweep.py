"""Issue #30 must-have 4 without an open page: the console's background job (console.dispatch
sweeping) runs the rules' dispatch and the escalation of overdue tasks on its own, on the
injected clock; two consoles sweeping at once make each task and each escalation once (real
case store)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json

from console.dispatch import sweeping
from sinks.dispatch import Dispatch

from .test_dispatch import SQUADS, Desk


async def overdue(desk: Desk) -> str:
    """A task for lead 2 due in 2 hours, and the clock 2 h 1 min on."""
    w = desk.world
    task_id = await Dispatch(w.store.pool, SQUADS, w.clock).create("lead", "lead-0002", None,
                                                                    "zhou", hours=2)  # fmt: skip
    w.clock.now += dt.timedelta(hours=2, minutes=1)
    return task_id


async def test_one_sweep_escalates_and_dispatches_and_a_concurrent_one_changes_nothing(
    desk: Desk,
) -> None:
    w, pool = desk.world, desk.world.store.pool
    task_id = await overdue(desk)
    # two consoles' sweeps at the same moment (no page open): one round between them
    rounds = await asyncio.gather(*(Dispatch(pool, SQUADS, w.clock).sweep() for _ in range(2)))
    made = [t for r in rounds if r for t in r[0]]
    escalated = [t for r in rounds if r for t in r[1]]
    auto = await pool.fetch("SELECT task_id, squad_id FROM tasks WHERE created_by = 'auto'")
    # lead 3 (restricted hours, automatic in configs/squads.yaml, at G312-K1035-E) once
    assert [tuple(r) for r in auto] == [(made[0], "ZD-NORTH")] and len(made) == 1
    assert escalated == [task_id]
    assert await pool.fetchval("SELECT escalated_at FROM tasks WHERE task_id = $1", task_id) == (
        w.clock.now
    )
    before = [dict(r) for r in await pool.fetch("SELECT * FROM tasks ORDER BY task_id")]
    assert await Dispatch(pool, SQUADS, w.clock).sweep() == ([], [])
    assert [dict(r) for r in await pool.fetch("SELECT * FROM tasks ORDER BY task_id")] == before


async def test_the_console_sweeps_on_its_own_with_no_page_open(desk: Desk) -> None:
    w, pool = desk.world, desk.world.store.pool
    task_id = await overdue(desk)
    seen: list[dict[str, object]] = []
    both = asyncio.Event()

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        seen.append(json.loads(payload))
        if any(n["escalated"] for n in seen) and any(n["task_id"] != task_id for n in seen):
            both.set()

    async with pool.acquire() as conn:
        await conn.add_listener("offsite_tasks", heard)
        try:
            # the console as `offsite console` serves it: its job starts with the app
            async with sweeping(dataclasses.replace(desk.console, sweep_s=3600)):
                await asyncio.wait_for(both.wait(), timeout=60)
        finally:
            await conn.remove_listener("offsite_tasks", heard)
    assert await pool.fetchval("SELECT escalated_at FROM tasks WHERE task_id = $1", task_id) == (
        w.clock.now
    )
    assert (
        await pool.fetchval(
            "SELECT squad_id FROM tasks WHERE source_id = 'lead-0003' AND created_by = 'auto'"
        )
        == "ZD-NORTH"
    )
