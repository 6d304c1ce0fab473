"""One simulation through 1, 2 and 3 `offsite run` workers (subprocesses, the real broker and
PostgreSQL) gives the same cases, decisions, fines, leads and evidence packages."""

from __future__ import annotations

from offsite import faults
from offsite.config import Settings


async def test_one_two_or_three_workers_make_the_same_cases_leads_and_decisions(
    service_settings: Settings,
) -> None:
    plan = await faults.plan_of(service_settings, vehicles=500, seed=5)
    got = {}
    for n in (1, 2, 3):
        row = await faults.run_once(service_settings, plan, faults.workers(n))
        assert not row.died, row.died
        assert row.result is not None
        got[n] = row.result
    one = got[1]
    assert len(one.cases) == plan.expected_cases > 0
    assert {kind.split()[0] for kind in one.leads.values()} >= {"cloned_plate", "plate_missing"}
    assert one.differences(got[2]) == {}
    assert one.differences(got[3]) == {}
