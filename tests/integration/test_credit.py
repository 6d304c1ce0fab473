"""Credit over the real case store (issue #26 must-have 6): the sweep drafts on the fourth
decided violation of a vehicle in a year (not on a confirmed, undecided case, nor on a 不予处罚
decision, nor on one decided a year and a day earlier), lists after the 10 working days (across
the 2026 National Day) and removes after 2 years; objections upheld and rejected; 信用修复 after
payment, by an officer's decision or on the commitment (承诺即修复). Every step is audited."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pypdf
import pytest

from cases.calendar import WorkCalendar
from cases.credit import Credit, CreditError
from console.credit import crediting
from offsite import services
from offsite.cli import _credit
from offsite.config import Settings
from offsite.pipeline import prepare
from sinks import CaseStore

from .test_console import app_of, client_of, csrf_of, log_in
from .test_lifecycle import World
from .test_plain_chinese import leaks

D = dt.date
TZ = dt.timezone(dt.timedelta(hours=8))
ORG = "91320100MA1XXXXX0X"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 9, 28, 9, 0, tzinfo=TZ)

    def __call__(self) -> dt.datetime:
        return self.now

    def day(self, d: D) -> None:
        self.now = dt.datetime(d.year, d.month, d.day, 9, 0, tzinfo=TZ)


@pytest.fixture
async def store(plain_settings: Settings) -> AsyncIterator[CaseStore]:
    s = await prepare(plain_settings, services.endpoints(plain_settings))
    yield s
    await s.close()


async def add_case(
    store: CaseStore, cid: str, plate: str, decided: D | None, kind: str = "penalty",
    status: str = "decided", fine: int = 2_000,
) -> None:  # fmt: skip
    at = dt.datetime(2025, 1, 1, 8, tzinfo=TZ) if decided is None else dt.datetime(
        decided.year, decided.month, decided.day, 10, tzinfo=TZ)  # fmt: skip
    await store.pool.execute(
        "INSERT INTO cases (case_id, violation_id, detection_id, violation_code, record_id,"
        " site_id, ts, plate, plate_color, outcome, fine_cny, measured_kg, tolerance_kg,"
        " limit_kg, overload_kg, tier, legal_basis, penalty_basis, status, violation, device_id)"
        " VALUES ($1, $1, $1, 'overload', $1, 'S1', $2, $3, '黄', 'fine', $4, 53000, 0, 49000,"
        " 4000, 't', '62号令第三条', '62号令第四十三条', $5, '{}', 'D1')",
        cid, at, plate, fine, status)  # fmt: skip
    await store.pool.execute(
        "INSERT INTO case_parties (case_id, kind, name, id_number, address, source, updated_by,"
        " updated_at) VALUES ($1, 'organization', '某运输有限公司', $2, '南京', 'test', 't', $3)",
        cid, ORG, at)  # fmt: skip
    if decided is not None:
        await store.pool.execute(
            "INSERT INTO penalty_decisions (case_id, decision_no, kind, fine_cny, decided_at,"
            " decided_by, document) VALUES ($1, $1, $2, $3, $4, 'chen', '{}')",
            cid, kind, fine if kind == "penalty" else None, at)  # fmt: skip


def credit(store: CaseStore, clock: Clock, repair_on_commitment: bool = False) -> Credit:
    # the operator's fleet is large: only the vehicle is over its line
    return Credit(store.pool, WorkCalendar(), TZ, "某市交通运输综合行政执法支队", {ORG: 1000},
                  repair_on_commitment, clock)  # fmt: skip


async def status(store: CaseStore, entry_id: str) -> str:
    return str(await store.pool.fetchval(
        "SELECT status FROM credit_entries WHERE entry_id = $1", entry_id))  # fmt: skip


async def test_the_fourth_decided_violation_drafts_lists_after_the_objection_period_and_is_removed(
    store: CaseStore,
) -> None:
    clock = Clock()
    c = credit(store, clock)
    plate = "苏A12345"
    await add_case(store, "K0", plate, D(2025, 9, 27))  # a year and a day before 2026-09-28
    for i, d in enumerate([D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1)], 1):
        await add_case(store, f"K{i}", plate, d)
    await add_case(store, "K-confirmed", plate, None, status="confirmed")  # no decision
    await add_case(store, "K-nopen", plate, D(2026, 8, 3), kind="no_penalty")
    # as of 2026-09-27 the first decision is a year old to the day: four, a draft
    swept = await c.sweep(D(2026, 9, 27))
    assert swept is not None and len(swept.drafted) == 1
    await store.pool.execute("DELETE FROM credit_events")
    await store.pool.execute("DELETE FROM credit_entries")
    # as of 2026-09-28 it does not count: three decided, no draft
    swept = await c.sweep(D(2026, 9, 28))
    assert swept is not None and swept.drafted == [] and await c.entries() == []

    await add_case(store, "K4", plate, D(2026, 9, 28))  # the fourth in the year
    swept = await c.sweep(D(2026, 9, 28))
    assert swept is not None and len(swept.drafted) == 1
    (entry,) = await c.entries()
    assert entry["kind"] == "vehicle" and entry["subject"] == f"{plate}/黄"
    assert [x["case_id"] for x in json.loads(entry["cases"])] == ["K1", "K2", "K3", "K4"]
    # 10 working days across 国庆 2026 (10-01..10-07 off, Saturday 10-10 worked)
    assert entry["objection_due"] == D(2026, 10, 16) and entry["status"] == "draft"
    doc = json.loads(entry["document"])
    assert doc["title"] == "严重违法失信超限超载运输当事人拟列入告知书"
    assert any("2026-10-16前" in p for p in doc["paragraphs"])
    again = await c.sweep(D(2026, 9, 29))  # the same draft is not made twice
    assert again is not None and again.drafted == []

    eid = entry["entry_id"]
    assert (await c.sweep(D(2026, 10, 16))).listed == []  # type: ignore[union-attr]
    assert (await c.sweep(D(2026, 10, 17))).listed == [eid]  # type: ignore[union-attr]
    listed = (await c.entries())[0]
    assert listed["listed_on"] == D(2026, 10, 17)
    assert (await c.sweep(D(2028, 10, 17))).removed == []  # type: ignore[union-attr]
    assert (await c.sweep(D(2028, 10, 18))).removed == [eid]  # type: ignore[union-attr]
    assert await status(store, eid) == "removed"
    assert [e["action"] for e in await c.events(eid)] == ["draft", "listed", "removed"]


async def test_objections_upheld_and_rejected(store: CaseStore) -> None:
    clock = Clock()
    c = credit(store, clock)
    for plate in ("苏A00001", "苏A00002"):
        for i, d in enumerate([D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1), D(2026, 9, 28)]):
            await add_case(store, f"{plate}-{i}", plate, d)
    await c.sweep(D(2026, 9, 28))
    upheld, rejected = (e["entry_id"] for e in await c.entries())
    clock.day(D(2026, 10, 9))
    await c.object(upheld, "party", "第三次处罚已被复议撤销")
    await c.object(rejected, "party", "车辆已转让")
    with pytest.raises(CreditError):
        await c.decide_objection(upheld, "chen", True, "")  # a reason is required
    await c.decide_objection(upheld, "chen", True, "经核实，复议决定已撤销其中一次处罚")
    await c.decide_objection(rejected, "chen", False, "转让发生在违法行为之后")
    assert await status(store, upheld) == "dropped"
    assert await status(store, rejected) == "listed"
    assert [e["action"] for e in await c.events(upheld)] == [
        "draft", "objected", "objection_upheld"]  # fmt: skip
    # the sweep does not draft the dropped subject again for the same decisions
    assert (await c.sweep(D(2026, 10, 20))).drafted == []  # type: ignore[union-attr]
    # an objection after the period is refused
    await add_case(store, "L1", "苏A00003", D(2026, 9, 1))
    for i, d in enumerate([D(2026, 9, 2), D(2026, 9, 3), D(2026, 9, 4)]):
        await add_case(store, f"L{i + 2}", "苏A00003", d)
    (late,) = (await c.sweep(D(2026, 9, 4))).drafted  # type: ignore[union-attr]
    clock.day(D(2026, 9, 19))  # due 2026-09-18
    with pytest.raises(CreditError, match="异议期已于2026-09-18届满"):
        await c.object(late, "party", "迟到的异议")


async def listed_entry(store: CaseStore, c: Credit, plate: str) -> str:
    for i, d in enumerate([D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1), D(2026, 9, 28)]):
        await add_case(store, f"{plate}-{i}", plate, d)
    (eid,) = (await c.sweep(D(2026, 9, 28))).drafted  # type: ignore[union-attr]
    await c.sweep(D(2026, 10, 17))
    assert await status(store, eid) == "listed"
    return eid


async def pay_all(store: CaseStore, plate: str) -> None:
    for i in range(4):
        await store.pool.execute(
            "INSERT INTO payments (bank_ref, decision_no, amount_fen, paid_on, source, imported_at)"
            " VALUES ($1, $2, 200000, '2026-10-20', 'test', now())", f"B-{plate}-{i}",
            f"{plate}-{i}")  # fmt: skip


async def test_repair_after_payment_by_the_officer(store: CaseStore) -> None:
    clock = Clock()
    c = credit(store, clock)
    eid = await listed_entry(store, c, "苏A00004")
    clock.day(D(2026, 10, 21))
    with pytest.raises(CreditError, match="尚未履行完毕"):
        await c.apply_repair(eid, "party")
    await pay_all(store, "苏A00004")
    assert await c.apply_repair(eid, "party") == "applied"
    assert await status(store, eid) == "listed"  # an officer checks and decides
    await c.decide_repair(eid, "chen", True, "罚款已缴清，整改材料齐全")
    assert await status(store, eid) == "repaired"
    (repair,) = await c.repairs()
    assert json.loads(repair["commitment"])["title"] == "信用修复承诺书"
    assert json.loads(repair["decision"])["title"] == "信用修复决定书"
    assert [e["action"] for e in await c.events(eid)][-2:] == ["repair_applied", "repaired"]


async def test_repair_on_the_commitment_where_the_province_allows_it(store: CaseStore) -> None:
    clock = Clock()
    c = credit(store, clock, repair_on_commitment=True)
    eid = await listed_entry(store, c, "苏A00005")
    await pay_all(store, "苏A00005")
    clock.day(D(2026, 10, 21))
    assert await c.apply_repair(eid, "party") == "repaired"
    assert await status(store, eid) == "repaired"
    # a removed or repaired entry is not swept again, nor drafted again for the same decisions
    assert (await c.sweep(D(2026, 10, 22))).drafted == []  # type: ignore[union-attr]


async def test_the_legal_department_s_page_records_an_objection_and_the_console_sweeps(
    world: World,
) -> None:
    w = world
    console = app_of(w)
    console.credit = Credit(w.store.pool, WorkCalendar(), TZ, "某市交通运输综合行政执法支队", {},
                            False, w.clock)  # fmt: skip
    for i, d in enumerate([D(2027, 1, 4), D(2027, 1, 5), D(2027, 1, 6), D(2027, 2, 1)]):
        await add_case(w.store, f"P{i}", "苏A00006", d)
    # the console's background job: its first round as of the clock's day (2027-02-01)
    async with crediting(dataclasses.replace(console, credit_sweep_s=3600)):
        await until(lambda: console.credit.entries(["draft"]), "the background sweep's draft")  # type: ignore[union-attr]
    drafts = await console.credit.entries(["draft"])
    assert [e["subject"] for e in drafts] == ["苏A00006/黄"]
    # the operator (fleet unknown: no fleets) is held for a person with the reason
    (held,) = await console.credit.entries(["held"])
    assert held["kind"] == "operator" and "车辆总数不明" in held["reason"]
    eid = drafts[0]["entry_id"]
    async with client_of(console) as client:  # the legal department's page only
        assert (await client.get("/legal/credit")).headers["location"].startswith("/login")
        await log_in(client, "wang")  # an officer
        assert (await client.get("/legal/credit")).status_code == 403
    async with client_of(console) as client:
        await log_in(client, "zhao")
        assert (await client.get("/legal/credit/CR-none")).status_code == 404
        page = await client.get("/legal/credit")
        assert page.status_code == 200 and eid in page.text and "车辆总数不明" in page.text
        entry = await client.get(f"/legal/credit/{eid}")
        assert "严重违法失信超限超载运输当事人拟列入告知书" in entry.text
        assert leaks(page.text) == [] and leaks(entry.text) == []  # no code, no Python value
        token = csrf_of(entry)
        done = await client.post(f"/legal/credit/{eid}/act", data={
            "csrf": token, "action": "object", "text": "其中一次系车辆被盗期间"})  # fmt: skip
        assert done.status_code == 303
        refused = await client.post(f"/legal/credit/{eid}/act", data={
            "csrf": token, "action": "decide_objection", "result": "no", "text": ""})  # fmt: skip
        assert refused.status_code == 400 and "请填写复核理由" in refused.text
        await client.post(f"/legal/credit/{eid}/act", data={
            "csrf": token, "action": "decide_objection", "result": "yes",
            "text": "经核实车辆被盗期间的处罚已撤销"})  # fmt: skip
        # the held operator: its fleet entered, 1 vehicle of 5 is over 10 %, and the person
        # confirms the 停业整顿 order the 2017 notice (3) needs: a draft
        await client.post(f"/legal/credit/{held['entry_id']}/act", data={
            "csrf": token, "action": "decide_held", "fleet": "5", "suspended": "yes",
            "text": "经核查企业登记及停业整顿决定"})  # fmt: skip
        entry = await client.get(f"/legal/credit/{eid}")
        pdf = await client.get(f"/legal/credit/{eid}/doc/1.pdf")
    assert "异议成立，不予列入" in entry.text and "异议处理决定书" in entry.text
    assert "系统（定时办理）" in entry.text and leaks(entry.text) == []
    assert "2027-02-01 09:01" in entry.text  # the steps' times are local (the clock's 09:01)
    assert pdf.headers["content-type"] == "application/pdf"
    pages = pypdf.PdfReader(io.BytesIO(pdf.content)).pages
    text = "".join(p.extract_text() for p in pages).replace(" ", "")  # the title is spaced out
    assert "异议处理决定书" in text and "经核实车辆被盗期间的处罚已撤销" in text
    assert await status(w.store, eid) == "dropped"
    assert await status(w.store, held["entry_id"]) == "draft"
    actions = [e["action"] for e in await console.credit.events(eid)]
    assert actions == ["draft", "objected", "objection_upheld"]
    assert [e["by_user"] for e in await console.credit.events(eid)][1:] == ["zhao", "zhao"]


async def until(check: Callable[[], Awaitable[object]], what: str, timeout: float = 60) -> None:
    """Wait for ``check`` to answer something true (polled), failing after ``timeout``."""
    end = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_offsite_credit_sweep_and_list(
    plain_settings: Settings, store: CaseStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, d in enumerate([D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1), D(2026, 9, 28)]):
        await add_case(store, f"Q{i}", "苏A00007", d)
    # another process sweeping (it holds the lock): nothing done, exit 3
    async with store.pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock(hashtext('offsite_credit_sweep'))")
        try:
            assert await _credit(plain_settings, "sweep", None, D(2026, 9, 28)) == 3
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('offsite_credit_sweep'))")
    assert await store.pool.fetchval("SELECT count(*) FROM credit_entries") == 0
    capsys.readouterr()
    assert await _credit(plain_settings, "sweep", None, D(2026, 9, 28)) == 0
    # the vehicle drafted; its company (no fleet in the owners file) held for a person
    assert "1 drafted, 1 held for review, 0 listed, 0 removed" in capsys.readouterr().out
    assert await _credit(plain_settings, "list", "draft", None) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "拟列入（公示中）" in line and "苏A00007/黄" in line and "异议截止2026-10-16" in line
