"""双公示 over the real case store: the day's penalty decisions in the 29 columns, with the last
day to publish each (7 working days); a natural person's name and ID number masked in the
export and on the public page; a revoked decision withdrawn from both (行政处罚法 Art. 48), and
the legal department's deadline tracker."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from cases import WorkCalendar, deadline
from cases.publication import COLUMNS, decisions_of_day, export_day
from console.notice import notice_document
from offsite.cli import _publish_decisions
from sinks.accounts import Accounts

from .test_console import PASSWORD, app_of, client_of, log_in
from .test_lifecycle import CHEN, WANG, World
from .test_procedure import POLICY, local, ready_to_decide, serve
from .test_procedure import world as world  # the fixture

# a natural person (the checksum of 43010219900101123 is 8)
CITIZEN = {"kind": "citizen", "name": "张三丰", "id_number": "430102199001011238",
           "address": "湖南省长沙市示例路2号", "phone": "13800000000"}  # fmt: skip


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


async def test_a_revoked_decision_is_withdrawn_from_the_export_and_the_public_page(
    world: World,
) -> None:
    w = world
    console, cid = app_of(w), w.cases["small"]
    await w.act("small", "confirm", WANG)
    await w.act("small", "correct_party", WANG, reason="车辆已转让，当事人为驾驶人本人",
                payload=CITIZEN)  # fmt: skip
    await w.act("small", "issue_notice", WANG,
                payload={"document": await notice_document(console, cid)})  # fmt: skip
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    due = await w.store.pool.fetchval(
        "SELECT statement_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    w.clock.now = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(9), POLICY.tz)
    await w.act("small", "decide", CHEN, reason="事实清楚")
    decided, number = local(w), await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
    await Accounts(w.store.pool).create("zhao", ["legal_reviewer"], PASSWORD)

    async def public_page() -> str:
        async with client_of(console) as client:  # no log-in
            r = await client.get(f"/public/decisions?from={decided}&to={decided}")
            assert r.status_code == 200
            return r.text

    async def tracker_row() -> str:
        async with client_of(console) as client:
            await log_in(client, "zhao")
            page = (await client.get("/legal/publicity")).text
            start = page.index(f'data-case="{cid}"')
            return page[page.rindex("<tr", 0, start) : page.index("</tr>", start)]

    # not exported yet: not on the page, the tracker counts down; past the 7th working day,
    # overdue and highlighted
    assert number not in await public_page()
    assert 'class="ok"' in await tracker_row()
    publish_by = deadline(WorkCalendar(), decided, 7).due
    w.clock.now = dt.datetime.combine(publish_by + dt.timedelta(days=1), dt.time(9), POLICY.tz)
    assert 'class="overdue"' in await tracker_row()
    # the export (late, on the clock's day): the person masked in it and on the page
    exported = await export_day(w.store.pool, decided, local(w), POLICY.tz, WorkCalendar())
    (row,) = [f["row"] for f in exported["decisions"]]
    assert (row["行政相对人名称"], row["证件号码"]) == ("张**", "430102********1238")
    text = json.dumps(exported, ensure_ascii=False)
    assert "张三丰" not in text and "19900101" not in text
    page = await public_page()
    assert number in page and "张**" in page and "430102********1238" in page
    assert "张三丰" not in page and "19900101" not in page and "13800000000" not in page
    assert f"<td>{local(w)}</td>" in await tracker_row()  # published, a day late
    # the 负责人 revokes it (复议): the next export withdraws it with the reason, the day's
    # export no longer holds it, the page drops it at once and says why
    assert await w.act("small", "revoke_decision", CHEN, reason_code="reconsideration",
                       reason="复议机关决定撤销") == ["revoked"]  # fmt: skip
    revoked = local(w)
    page = await public_page()
    assert f'<tr data-no="{number}"><td>张**' not in page
    assert await decisions_of_day(w.store.pool, decided, POLICY.tz, WorkCalendar()) == []
    row_text = await tracker_row()
    assert str(deadline(WorkCalendar(), revoked, 3).due) in row_text and "未撤回" in row_text
    exported = await export_day(w.store.pool, revoked, revoked, POLICY.tz, WorkCalendar())
    assert exported["decisions"] == []
    (withdrawn,) = exported["withdrawals"]
    assert withdrawn["行政处罚决定书文号"] == number and withdrawn["行政相对人名称"] == "张**"
    assert (
        "行政复议决定撤销" in withdrawn["撤回说明"] and "复议机关决定撤销" in withdrawn["撤回说明"]
    )
    page = await public_page()
    assert "撤回说明" in page and number in page and "行政复议决定撤销" in page
    assert f"<td>{revoked}</td>" in (await tracker_row()).split("未撤回")[0]
    assert "未撤回" not in await tracker_row()


async def test_publish_decisions_writes_the_day_s_files(world: World, tmp_path: Path) -> None:
    """`offsite publish decisions --day D` (and the demo) over the world's database: the
    CSV of the 29 columns, the withdrawals' CSV (its header only) and the JSON of both."""
    w = world
    await ready_to_decide(w, await notice_document(app_of(w), w.cases["small"]))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    day = local(w)
    assert await _publish_decisions(w.settings, day, tmp_path) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / f"decisions-{day}.csv").read_text())))
    assert [r["处罚决定日期"] for r in rows] == [str(day)] and tuple(rows[0]) == COLUMNS
    assert (tmp_path / f"withdrawals-{day}.csv").read_text().startswith("行政处罚决定书文号,")
    found = json.loads((tmp_path / f"decisions-{day}.json").read_text())
    assert found["day"] == str(day) and found["decisions"][0]["case_id"] == w.cases["small"]
    assert await w.store.pool.fetchval("SELECT count(*) FROM decision_publications") == 1
