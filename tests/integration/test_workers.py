"""One simulation (road and waterway traffic) through 1, 2 and 3 `offsite run` workers
(subprocesses, the real broker and PostgreSQL) gives the same cases, decisions, fines, leads and
evidence packages."""

from __future__ import annotations

from offsite import faults
from offsite.config import Settings


async def test_one_two_or_three_workers_make_the_same_cases_leads_and_decisions(
    service_settings: Settings,
) -> None:
    # (the waterway stage keeps its last AIS window uncommitted: the run is seen to end by the
    # read-to-the-end mark it commits, kafka.settled_to; without it this never ended)
    plan = await faults.plan_of(service_settings, vehicles=500, seed=5, vessels=4)
    got = {}
    for n in (1, 2, 3):
        row = await faults.run_once(service_settings, plan, faults.workers(n))
        assert not row.died, row.died
        assert row.result is not None
        got[n] = row.result
    one = got[1]
    codes = [code for _, code, _, _ in one.cases.values()]
    assert sum(not c.startswith("water.") for c in codes) == plan.expected_cases > 0  # road
    assert any(c.startswith("water.") for c in codes)
    assert {kind.split()[0] for kind in one.leads.values()} >= {"cloned_plate", "plate_missing"}
    assert one.differences(got[2]) == {}
    assert one.differences(got[3]) == {}
