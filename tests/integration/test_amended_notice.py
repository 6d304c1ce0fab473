"""Review 2026-12-07 A3, A5, B11 over the real case store and console: an officer amends the
proposal after the notice was served and a new notice is served, whose own periods run from its
service (the first notice stays in the file); a new decision of the rules after the notice is
reopened into that path; a waterway case gets its fine proposed by the officer and goes through
notice, service, decision, payment and closing like a road case."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cases.casefile import MANIFEST
from cases.payments import Payment, import_payments
from console import Console
from console.casefile import export_casefile
from console.notice import notice_document
from events.water import WaterViolation
from evidence import Signer
from evidence.water_bag import build_water_package
from offsite.config import Settings
from rules.stage import water_violation_of
from sinks import BlobStore, case_id
from sinks.accounts import Accounts
from sinks.lifecycle import Actor, Request, TransitionRefused
from tests.unit.test_water_detect import CP2, DET, NOON, REG, B, background, capture, sail, when_at
from tests.unit.test_water_evidence import with_images

from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import AGENCY, CHEN, PARTY_ACTOR, TEAM, WANG, ZHAO, World, make_world
from .test_notice import pdf_text
from .test_party import find
from .test_procedure import DISCUSSED, DOC, POLICY, hearing_notice_served, local, serve

OFFICERS = ",".join(sorted(TEAM))


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    # an agency that fines over-draught on inland waters (the 海事 powers given to it)
    w = await make_world(plain_settings, dataclasses.replace(
        POLICY, water_fine_codes=frozenset({"water.overdraught"})))  # fmt: skip
    accounts = Accounts(w.store.pool)
    await accounts.create("wang", ["officer"], PASSWORD)
    await accounts.create("chen", ["head"], PASSWORD)
    yield w
    await w.store.close()


async def post(client: httpx.AsyncClient, cid: str, **form: str) -> int:
    page = await client.get(f"/cases/{cid}")
    r = await client.post(f"/cases/{cid}/act", data={**form, "csrf": csrf_of(page)})
    return r.status_code


async def after(w: World, cid: str) -> None:
    """The clock moves to the day after the notice in force's last period."""
    row = await w.store.pool.fetchrow(
        "SELECT statement_due, hearing_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    last = max(d for d in (row["statement_due"], row["hearing_due"]) if d is not None)
    w.clock.now = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(9), POLICY.tz)


async def test_a3_an_amended_proposal_is_notified_again_and_decided_on_the_new_notice(
    world: World, tmp_path: Path
) -> None:
    w, cid = world, world.cases["small"]  # fine 2,500 under the baseline
    await w.act("small", "confirm", WANG)
    await w.act(
        "small", "issue_notice", WANG, payload={"document": await notice_document(app_of(w), cid)}
    )
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    first = await w.store.pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1", cid)
    await w.act("small", "submit_statement", PARTY_ACTOR,
                payload={"body": "车辆当日装载的是可分载物，附过磅单，超限数额应为一千二百千克。"})  # fmt: skip
    w.clock.now += dt.timedelta(days=2)
    sid = await w.store.pool.fetchval("SELECT statement_id FROM statements WHERE case_id = $1", cid)
    await w.act("small", "reply_statement", WANG, payload={  # the 复核意见 (review B7)
        "statement_id": str(sid), "adopted": "adopted", "opinion": "过磅单与称重记录相符，申辩成立"})  # fmt: skip
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert 'value="amend_proposal"' in page.text and 'name="tier_name"' in page.text
        assert await post(client, cid, action="amend_proposal", reason="当事人的申辩成立",
                          outcome="fine", fine_cny="1500", tier_name="超限1000千克以上",
                          facts="过磅单证明超限1200千克") == 303  # fmt: skip
        assert await w.status("small") == "amended"
        # no decision on the amended proposal before it is notified (Art. 44, 45)
        with pytest.raises(TransitionRefused, match="不能执行"):
            await w.act("small", "decide", CHEN, reason="事实清楚")
        assert await post(client, cid, action="issue_notice", officers=OFFICERS) == 303
        notice = (await client.get(f"/cases/{cid}/notice")).text
    rows = await w.store.pool.fetch(
        "SELECT seq, notice_no, superseded_at IS NOT NULL AS old, document->>'fine_cny' AS fine"
        " FROM notices WHERE case_id = $1 ORDER BY seq", cid)  # fmt: skip
    # the first notice stays in the file, superseded; the new one is the case's notice
    assert [(r["seq"], r["old"], r["fine"]) for r in rows] == [
        (1, True, "2500"),
        (2, False, "1500"),
    ]
    assert rows[0]["notice_no"] == first["notice_no"] != rows[1]["notice_no"]
    assert (
        f"变更本机关 {first['notice_no']} 违法行为通知书" in notice
        and "1500元（壹仟伍佰元整）" in notice
    )
    assert "过磅单证明超限1200千克" in notice
    # its periods run from its own service, not from the first one's
    with pytest.raises(TransitionRefused, match="尚未送达"):
        await w.act("small", "decide", CHEN, reason="事实清楚")
    w.clock.now = dt.datetime.combine(first["statement_due"] + dt.timedelta(days=1),
                                      dt.time(9), POLICY.tz)  # fmt: skip
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    second = await w.store.pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1", cid)
    assert second["served_on"] == local(w) and second["statement_due"] > first["statement_due"]
    with pytest.raises(TransitionRefused, match="期限"):
        await w.act("small", "decide", CHEN, reason="事实清楚")
    await after(w, cid)
    await w.act("small", "decide", CHEN, reason="采纳当事人申辩")
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1 AND fine_cny = 1500", cid
    )
    assert number is not None
    # closed, its 电子案卷 holds both notices and both 送达回证, in order
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    await import_payments(w.store.pool, [Payment("B-1", number, 1_500_00, local(w))], "f",
                          w.clock.now)  # fmt: skip
    await w.act("small", "close", WANG)
    folder = await export_casefile(app_of(w), cid, tmp_path, Signer.load(w.settings.evidence.key))
    manifest = json.loads((folder / MANIFEST).read_bytes())
    pdfs = {d["kind"]: pdf_text((folder / d["path"]).read_bytes())
            for d in manifest["documents"] if d["kind"] in ("notice", "notice_receipt")}  # fmt: skip
    for kind in ("notice", "notice_receipt"):
        text = pdfs[kind].replace(" ", "").replace("\n", "")
        assert 0 <= text.index(first["notice_no"]) < text.index(second["notice_no"]), kind


async def test_a3_the_party_is_heard_again_on_the_amended_notice(world: World) -> None:
    # the new notice gives the right to a hearing again (Art. 63, 64); before migration 054 the
    # second 听证通知书 was refused ("听证通知书已于 … 送达") and the case stuck in hearing_requested
    w, cid = world, world.cases["major"]  # fine 24,500, marked for legal review
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG, payload={"document": DOC["major"]})
    await w.act("major", "serve_notice", WANG, payload=serve(local(w)))
    held_on = await hearing_notice_served(w, local(w))
    w.clock.now = dt.datetime.combine(held_on, dt.time(15), POLICY.tz)
    minutes = {
        "held_on": held_on.isoformat(),
        "host": "孙主持",
        "minutes": "当事人提交了分载证明。",
    }
    await w.act("major", "hold_hearing", WANG, reason="听证结束", payload=minutes)
    # amended on the hearing's record; a major case is reviewed again before its new notice
    assert await w.act("major", "amend_proposal", WANG, reason="听证查明超限数额较小", payload={
        "outcome": "fine", "fine_cny": "12000", "tier_name": "超限10000千克以上",
        "facts": "听证笔录：分载证明"}) == ["amended", "legal_review"]  # fmt: skip
    await w.act("major", "approve", ZHAO, reason="事实清楚")
    await w.act("major", "issue_notice", WANG, payload={"document": {**DOC["major"],
                                                                    "fine_cny": 12_000}})  # fmt: skip
    await w.act("major", "serve_notice", WANG, payload=serve(local(w)))
    held_again = await hearing_notice_served(w, local(w))
    rows = await w.store.pool.fetch(
        "SELECT notice_no, superseded_at IS NOT NULL AS old FROM all_hearing_notices"
        " WHERE case_id = $1 ORDER BY hearing_notice_id", cid)  # fmt: skip
    assert [r["old"] for r in rows] == [True, False] and rows[0]["notice_no"] != rows[1][
        "notice_no"
    ]
    w.clock.now = dt.datetime.combine(held_again, dt.time(15), POLICY.tz)
    again = {**minutes, "held_on": held_again.isoformat(), "minutes": "当事人无新的意见。"}
    await w.act("major", "hold_hearing", WANG, reason="听证结束", payload=again)
    assert await w.store.pool.fetchval(
        "SELECT count(*) FROM all_hearings WHERE case_id = $1", cid) == 2  # fmt: skip
    await after(w, cid)
    await w.act("major", "review_after_hearing", ZHAO, reason="事实清楚，程序合法")
    await w.act("major", "collective_discussion", CHEN, reason="集体讨论", payload=DISCUSSED)
    assert await w.act("major", "decide", CHEN, reason="依听证笔录") == ["decided"]
    assert await w.store.pool.fetchval(
        "SELECT fine_cny FROM penalty_decisions WHERE case_id = $1", cid) == 12_000  # fmt: skip


async def test_a5_a_new_decision_after_the_notice_is_reopened_on_the_case_page(
    world: World,
) -> None:
    w, cid = world, world.cases["small"]
    await w.act("small", "confirm", WANG)
    await w.act("small", "issue_notice", WANG, payload={"document": {"plate": "湘A12345",
                                                                    "fine_cny": 2_500}})  # fmt: skip
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    # the rules decided the pass again (sinks.casestore marks a confirmed case this way)
    await w.store.pool.execute(
        "UPDATE cases SET review_reason = $2 WHERE case_id = $1", cid,
        "decided again after an officer confirmed it: national v2 proposes fine 2000 CNY")  # fmt: skip
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert 'value="reopen"' in page.text  # before: not offered after the notice
        assert await post(client, cid, action="reopen", reason="规则重新计算为2000元") == 303
        assert await w.status("small") == "amended"
        assert await post(client, cid, action="amend_proposal", reason="按新的计算结果",
                          outcome="fine", fine_cny="2000", tier_name="超限1000千克以上",
                          facts="规则引擎重新计算") == 303  # fmt: skip
        assert await post(client, cid, action="issue_notice", officers=OFFICERS) == 303
    assert await w.status("small") == "notice_issued"
    assert await w.store.pool.fetchval(
        "SELECT count(*) FROM notices WHERE case_id = $1", cid) == 2  # fmt: skip


def deep_vessel(blobs: BlobStore) -> WaterViolation:
    """A vessel photographed at CP2 lying deeper than its load line: water.overdraught."""
    t0 = NOON + dt.timedelta(minutes=10)
    track = sail(B, t0, CP2 - 2000, 8.0, 30, rx="RX-XJ-02")
    deep = with_images(capture(1, when_at(CP2, CP2 - 2000, 8.0, t0), "湘岳阳货2002",
                               draught=3.0), blobs)  # fmt: skip
    (d,) = DET.detect([*background(NOON), *track], [deep]).detections
    return water_violation_of(d, REG)


async def test_b11_a_waterway_case_is_fined_through_the_procedure_on_the_console(
    world: World,
) -> None:
    w = world
    v = deep_vessel(BlobStore(w.settings.var_dir / "blobs"))
    assert (v.violation_code, v.outcome, v.fine_cny) == ("water.overdraught", "review", None)
    await (await w.store.begin_batch([v])).commit()
    build_water_package(v, REG, BlobStore(w.settings.var_dir / "blobs"), w.settings.evidence.dir,
                        Signer.load(w.settings.evidence.key), AGENCY,
                        created_at=w.clock.now - dt.timedelta(seconds=1))  # fmt: skip
    cid = case_id(v)
    console = Console(w.store.pool, w.lifecycle, w.settings.evidence.dir, waterways=REG)
    async with client_of(console) as client:
        await log_in(client, "wang")
        assert await post(client, cid, action="confirm", reason="吃水超过载重线") == 303
        assert await post(client, cid, action="correct_party", reason="船舶登记所有人",
                          kind="organization", name="湖南示例物流有限公司",
                          id_number="91430100MA4L00000F",
                          address="湖南省长沙市示例区示例路1号") == 303  # fmt: skip
        page = await client.get(f"/cases/{cid}")
        assert "第八十二条：20000–100000 元" in page.text  # the article's range on the form
        # a fine outside 《内河交通安全管理条例》 Art. 82's range is refused
        assert await post(client, cid, action="amend_proposal", reason="超载", outcome="fine",
                          fine_cny="10000", tier_name="超载", facts="吃水3.0米") == 409  # fmt: skip
        assert await post(client, cid, action="amend_proposal", reason="超载，未造成后果",
                          outcome="fine", fine_cny="30000", tier_name="超载10%以内",
                          facts="检查点测得吃水3.0米，核定载重线2.8米") == 303  # fmt: skip
        assert await post(client, cid, action="issue_notice", officers=OFFICERS) == 303
        notice = (await client.get(f"/cases/{cid}/notice")).text
    assert await status(w, cid) == "notice_issued"
    assert "湘岳阳货2002" in notice and "30000元（叁万元整）" in notice and "第八十二条" in notice
    assert "超限运输" not in notice  # a vessel's notice, not a truck's
    await w.lifecycle.apply(cid, _req("serve_notice", WANG, serve(local(w))))
    # the party finds its case with the vessel's name and the notice's code (a vessel has no
    # plate: before, no waterway party could open its page)
    code = await w.store.pool.fetchval(
        "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    async with client_of(console) as party:
        await find(party, "湘岳阳货2002", code)
        page = (await party.get("/party/case")).text
    assert '船名 <span class="vessel">湘岳阳货2002</span>' in page and "30,000" in page
    await after(w, cid)
    await w.lifecycle.apply(cid, _req("decide", CHEN, reason="事实清楚，证据确凿"))
    await w.lifecycle.apply(cid, _req("serve_decision", WANG, serve(local(w))))
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1 AND fine_cny = 30000", cid
    )
    assert number is not None
    async with client_of(console) as client:
        await log_in(client, "wang")
        decision = (await client.get(f"/cases/{cid}/decision")).text
    assert "当事人的船舶 湘岳阳货2002" in decision and "第八十二条" in decision
    assert "公路超限检测设备" not in decision
    await import_payments(w.store.pool, [Payment("W-1", number, 30_000_00, local(w))], "bank",
                          w.clock.now)  # fmt: skip
    await w.lifecycle.apply(cid, _req("close", WANG))
    assert await status(w, cid) == "closed"


async def status(w: World, cid: str) -> str:
    return str(await w.store.pool.fetchval("SELECT status FROM cases WHERE case_id = $1", cid))


def _req(action: str, actor: Actor, payload: dict[str, str] | None = None,
         reason: str | None = None) -> Request:  # fmt: skip
    return Request(action, actor, reason=reason, payload=payload or {})
