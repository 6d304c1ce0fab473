"""双公示 over the real case store: the day's penalty decisions in the 29 columns, with the last
day to publish each (7 working days)."""

from __future__ import annotations

import datetime as dt

from cases import WorkCalendar, deadline
from cases.publication import COLUMNS, decisions_of_day
from console.notice import notice_document

from .test_console import app_of
from .test_lifecycle import CHEN, World
from .test_procedure import POLICY, local, ready_to_decide
from .test_procedure import world as world  # the fixture


async def test_a_day_s_decisions_in_the_national_format(world: World) -> None:
    w = world
    await ready_to_decide(w, await notice_document(app_of(w), w.cases["small"]))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    today = local(w)
    (found,) = await decisions_of_day(w.store.pool, today, POLICY.tz, WorkCalendar())
    d = await w.store.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1",
                                    w.cases["small"])  # fmt: skip
    row = found["row"]
    assert tuple(row) == COLUMNS and found["case_id"] == w.cases["small"]
    assert row["行政处罚决定书文号"] == d["decision_no"] and row["处罚决定日期"] == str(today)
    assert row["罚款金额（万元）"] == f"{d['fine_cny'] / 10_000:.4f}" and row["处罚机关"]
    assert row["行政相对人名称"] and row["违法行为类型"] and row["处罚依据"]
    assert found["publish_by"] == deadline(WorkCalendar(), today, 7).due.isoformat()
    other = today + dt.timedelta(days=1)
    assert await decisions_of_day(w.store.pool, other, POLICY.tz, WorkCalendar()) == []
