"""Issue #25 over the real case store: 立案 and its 90 days, the party from the owner source and
its audited correction, and the service of the notice, from which every deadline runs (review
B2, B3; must-haves 1–4)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from cases import WorkCalendar, deadline
from cases.casefile import MANIFEST, verify_casefile
from cases.chaogao import chaogao_id
from cases.payments import Payment, add_months, import_payments, parse_payments
from cases.procedure import procedure_lifecycle
from cases.sealing import load_certificate, verify_pdf
from console.casefile import export_casefile
from console.notice import load_notice, notice_document, notice_html, render_pdf
from evidence import Signer
from evidence.custody import read_log
from offsite.cli import main
from offsite.config import Settings
from offsite.console import document_sealer, rejudger
from offsite.demo_case import walk_case
from sinks.accounts import LEGAL_REVIEWER, Accounts
from sinks.lifecycle import Actor, Policy, Request, TransitionRefused, document_number

from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import AGENCY, CHEN, OWNERS, PARTY_ACTOR, WANG, ZHAO, World, make_world
from .test_notice import pdf_text
from .test_party import find

CAL = WorkCalendar()
POLICY = Policy(hearing_fine_cny_at_least=10_000)
DISCUSSED = {"participants": "陈局长、刘副局长、周副局长", "minutes": "一致同意按裁量基准处罚。"}
DOC = {"small": {"plate": "湘A12345", "fine_cny": 2_500},
       "major": {"plate": "湘C34567", "fine_cny": 24_500}}  # fmt: skip


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings, POLICY)
    yield w
    await w.store.close()


def local(w: World) -> dt.date:
    return w.clock.now.astimezone(POLICY.tz).date()


def next_friday(w: World) -> dt.datetime:
    """10:00 local on the first Friday after the clock (the clock only moves forward)."""
    day = local(w) + dt.timedelta(days=1)
    while day.weekday() != 4:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10), POLICY.tz)


async def ready_to_decide(w: World, document: dict[str, object] | None = None) -> None:
    """The small case confirmed, notified, served, and its statement period over."""
    await w.act("small", "confirm", WANG)
    await w.act("small", "issue_notice", WANG, payload={"document": document or DOC["small"]})
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    due = await w.store.pool.fetchval(
        "SELECT statement_due FROM violation_notices WHERE case_id = $1", w.cases["small"]
    )
    w.clock.now = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(9), POLICY.tz)


async def hearing_notice_served(w: World, served_on: dt.date) -> dt.date:
    """The party of the major case (its notice served on ``served_on``) asks for a hearing; its
    听证通知书 (14:30, 孙主持, 长沙市示例路1号听证室) is made and served that day. The hearing's day."""
    await w.act("major", "request_hearing", PARTY_ACTOR)
    held_on = deadline(CAL, served_on, 7).due + dt.timedelta(days=3)
    await w.act("major", "schedule_hearing", WANG, payload={
        "held_on": held_on.isoformat(), "held_time": "14:30", "host": "孙主持",
        "place": "长沙市示例路1号听证室"})  # fmt: skip
    await w.act("major", "serve_hearing_notice", WANG, payload=serve(served_on))
    return held_on


def serve(day: dt.date, **kw: str) -> dict[str, str]:
    return {"method": "direct", "served_on": day.isoformat(), "served_by": "王警官、李警官",
            "recipient": "当事人本人", **kw}  # fmt: skip


async def test_confirming_opens_the_case_with_its_90_days_and_its_party(world: World) -> None:
    w = world
    assert await w.act("small", "confirm", WANG) == ["confirmed"]
    filed = await w.store.pool.fetchrow("SELECT * FROM case_files WHERE case_id = $1",
                                        w.cases["small"])  # fmt: skip
    # Art. 60: 立案之日起九十日内; the last day moved off a rest day
    assert filed["decision_due"] == deadline(CAL, local(w), 90).due
    assert filed["decision_due"] >= local(w) + dt.timedelta(days=90)
    party = await w.store.pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1",
                                        w.cases["small"])  # fmt: skip
    assert (party["kind"], party["name"], party["id_number"], party["source"]) == (
        "organization",
        "湖南示例物流有限公司",
        "91430100MA4L00000F",
        "车辆所有人登记",
    )


async def test_no_notice_without_a_party_and_a_correction_is_audited(world: World) -> None:
    w = world
    # 湘B23456's owner is known; take the owner away to stand for a vehicle the source lacks
    await w.act("other", "confirm", WANG)
    cid = w.cases["other"]
    await w.store.pool.execute("DELETE FROM case_parties WHERE case_id = $1", cid)
    doc = {"plate": "湘B23456", "fine_cny": await w.store.pool.fetchval(
        "SELECT fine_cny FROM cases WHERE case_id = $1", cid)}  # fmt: skip
    with pytest.raises(TransitionRefused, match="当事人"):
        await w.act("other", "issue_notice", WANG, payload={"document": doc})
    bad = {"kind": "citizen", "name": "赵示例", "id_number": "430602198503150021",
           "address": "湖南省岳阳市示例区示例巷3号"}  # fmt: skip
    with pytest.raises(TransitionRefused, match="校验位"):
        await w.act("other", "correct_party", WANG, reason="车主为个人", payload=bad)
    with pytest.raises(TransitionRefused, match="理由"):
        await w.act("other", "correct_party", WANG, payload=bad)
    good = {**bad, "id_number": "43060219850315002X"}
    assert await w.act("other", "correct_party", WANG, reason="车主为个人",
                       payload=good) == ["confirmed"]  # fmt: skip
    row = await w.store.pool.fetchrow("SELECT * FROM party_corrections WHERE case_id = $1", cid)
    assert row["old_party"] is None and json.loads(row["new_party"])["name"] == "赵示例"
    assert row["reason"] == "车主为个人" and row["actor"] == "wang"
    assert json.loads(read_log(w.package("other"))[-1]["detail"])["new"]["name"] == "赵示例"
    assert await w.act("other", "issue_notice", WANG, payload={"document": doc}) == [
        "notice_issued"
    ]
    notice = await w.store.pool.fetchval(
        "SELECT document FROM violation_notices WHERE case_id = $1", cid
    )
    assert json.loads(notice)["party"]["name"] == "赵示例"
    # the notice names the party now: a correction needs a new notice
    with pytest.raises(TransitionRefused):
        await w.act("other", "correct_party", WANG, reason="再次更正", payload=good)


async def test_deadlines_run_from_the_day_of_service_in_working_days(world: World) -> None:
    # review B3: issued on day 0, received on day 3 → the periods run from day 3, never from
    # the click; review B2: 5 days to ask for a hearing are working days (Art. 85)
    w = world
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG, payload={"document": DOC["major"]})
    row = await w.store.pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1",
                                      w.cases["major"])  # fmt: skip
    assert row["statement_due"] is None and row["hearing_due"] is None  # nothing runs yet
    with pytest.raises(TransitionRefused, match="尚未送达"):
        await w.act("major", "decide", CHEN, reason="事实清楚")
    w.clock.now = next_friday(w)  # received on a Friday, three or more days after the notice
    friday = local(w)
    assert await w.act("major", "serve_notice", WANG, payload=serve(friday)) == ["notice_issued"]
    row = await w.store.pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1",
                                      w.cases["major"])  # fmt: skip
    assert row["served_on"] == friday
    assert row["hearing_due"] == deadline(CAL, friday, 5).due
    # five working days from a Friday end a week later at the earliest (the code before: Wed)
    assert row["hearing_due"] >= friday + dt.timedelta(days=7)
    assert row["statement_due"] == deadline(CAL, friday, 15).due
    service = await w.store.pool.fetchrow("SELECT * FROM service_records WHERE case_id = $1",
                                          w.cases["major"])  # fmt: skip
    assert (
        service["document"],
        service["method"],
        service["served_on"],
        service["served_by"],
        service["recorded_by"],
    ) == ("notice", "direct", friday, "王警官、李警官", "wang")
    # served once; a decision waits until both periods have run out
    with pytest.raises(TransitionRefused, match="已于"):
        await w.act("major", "serve_notice", WANG, payload=serve(friday))
    w.clock.now = dt.datetime.combine(row["hearing_due"], dt.time(17), POLICY.tz)
    with pytest.raises(TransitionRefused, match="期限"):
        await w.act("major", "decide", CHEN, reason="事实清楚")
    w.clock.now = dt.datetime.combine(row["statement_due"] + dt.timedelta(days=1), dt.time(9),
                                      POLICY.tz)  # fmt: skip
    # a major case: the 负责人 decide collectively (Art. 57 (2); review B6)
    with pytest.raises(TransitionRefused, match="集体讨论"):
        await w.act("major", "decide", CHEN, reason="事实清楚")
    with pytest.raises(TransitionRefused, match="三名"):
        await w.act("major", "collective_discussion", CHEN, reason="集体讨论",
                    payload={**DISCUSSED, "participants": "陈局长、刘副局长"})  # fmt: skip
    await w.act("major", "collective_discussion", CHEN, reason="集体讨论", payload=DISCUSSED)
    row = await w.store.pool.fetchrow("SELECT * FROM case_discussions WHERE case_id = $1",
                                      w.cases["major"])  # fmt: skip
    assert row["participants"] == ["陈局长", "刘副局长", "周副局长"]
    assert await w.act("major", "decide", CHEN, reason="事实清楚") == ["decided"]


async def test_electronic_service_needs_the_partys_consent(world: World) -> None:
    w = world
    await w.act("small", "confirm", WANG)
    await w.act("small", "issue_notice", WANG, payload={"document": DOC["small"]})
    today = local(w)
    with pytest.raises(TransitionRefused, match="电子送达确认书"):
        await w.act("small", "serve_notice", WANG, payload=serve(today, method="electronic"))
    with pytest.raises(TransitionRefused, match="送达日期"):
        await w.act("small", "serve_notice", WANG,
                    payload=serve(today + dt.timedelta(days=1)))  # fmt: skip
    assert await w.act("small", "serve_notice", WANG,
                       payload=serve(today, method="post", tracking_no="1190000000000")) == [
        "notice_issued"]  # fmt: skip


async def test_the_officer_serves_the_notice_in_the_console_and_prints_the_receipt(
    world: World,
) -> None:
    # must-haves 1-3 in the console: 立案, the party and the 90 days on the case page; the
    # service recorded from the form; the 送达回证 as a PDF that names the party, the date and
    # the method (read back)
    w = world
    accounts = Accounts(w.store.pool)
    await accounts.create("wang", ["officer"], PASSWORD, display_name="王警官")
    console = app_of(w)
    cid = w.cases["small"]
    async with client_of(console) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        await client.post(f"/cases/{cid}/act", data={"action": "confirm", "csrf": csrf_of(page)})
        page = await client.get(f"/cases/{cid}")
        filed = await w.store.pool.fetchrow("SELECT * FROM case_files WHERE case_id = $1", cid)
        assert 'id="decision-due"' in page.text and str(filed["decision_due"]) in page.text
        assert "湖南示例物流有限公司（法人或其他组织）" in page.text
        await client.post(f"/cases/{cid}/act", data={"action": "issue_notice",
                                                     "officers": "team.liu,team.ma",
                                                     "csrf": csrf_of(page)})  # fmt: skip
        page = await client.get(f"/cases/{cid}")
        assert "尚未送达" in page.text and 'id="act-serve_notice"' in page.text
        today = local(w)
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "serve_notice", "method": "post", "served_on": today.isoformat(),
            "served_by": "王警官、李警官", "recipient": "张某（代收）", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "邮件号码" in r.text  # refused, with the reason
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "serve_notice", "method": "post", "served_on": today.isoformat(),
            "served_by": "王警官、李警官", "recipient": "张某（代收）",
            "tracking_no": "1190000000000", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        page = await client.get(f"/cases/{cid}")
        due = deadline(CAL, today, 15).due
        assert f"陈述申辩期限 {due}" in page.text and 'id="services"' in page.text
        sid = await w.store.pool.fetchval(
            "SELECT service_id FROM service_records WHERE case_id = $1", cid
        )
        r = await client.get(f"/cases/{cid}/service/{sid}/receipt.pdf")
        assert r.status_code == 200 and r.content.startswith(b"%PDF-")
        text = pdf_text(r.content)
        assert "送达回证" in text and "湖南示例物流有限公司" in text and "邮寄送达" in text
        assert f"{today.year}年{today.month}月{today.day}日" in text and "1190000000000" in text
        assert (await client.get(f"/cases/{cid}/service/999/receipt.pdf")).status_code == 404
    assert [e["detail"] for e in read_log(w.package("small"))][-1] == f"service receipt {sid}"


async def test_the_queue_reminds_of_the_90_days(world: World) -> None:
    # must-have 2: a case whose 90 days after 立案 run short is marked in the officer's queue
    w = world
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    await w.act("small", "confirm", WANG)
    due = await w.store.pool.fetchval(
        "SELECT decision_due FROM case_files WHERE case_id = $1", w.cases["small"]
    )
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        queue = await client.get("/cases", params={"status": "confirmed"})
        assert "办案期限剩" not in queue.text  # 90 days ahead: no reminder yet
        w.clock.now = dt.datetime.combine(due - dt.timedelta(days=10), dt.time(9), POLICY.tz)
        await log_in(client, "wang")  # the session ended with the days gone by
        queue = await client.get("/cases", params={"status": "confirmed"})
        assert "办案期限剩 10 日" in queue.text
        w.clock.now = dt.datetime.combine(due + dt.timedelta(days=2), dt.time(9), POLICY.tz)
        await log_in(client, "wang")
        queue = await client.get("/cases", params={"status": "confirmed"})
        assert "办案超期 2 日" in queue.text
        page = await client.get(f"/cases/{w.cases['small']}")
        assert "已超期 2 日" in page.text


async def test_a_hearing_is_asked_for_held_and_the_head_decides_on_its_record(
    world: World,
) -> None:
    # review B1, B5, B6 over the store: the party asks within 5 working days of service; the
    # 听证通知书 reaches them 7 working days ahead; the host did not investigate; a major case is
    # reviewed again after the hearing; the 负责人, not the officer, decides
    w = world
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG, payload={"document": DOC["major"]})
    today = local(w)
    await w.act("major", "serve_notice", WANG, payload=serve(today))
    assert await w.act("major", "request_hearing", PARTY_ACTOR) == ["hearing_requested"]
    with pytest.raises(TransitionRefused):
        await w.act("major", "decide", CHEN, reason="事实清楚")
    hearing = {"held_on": today.isoformat(), "host": "sun",
               "minutes": "当事人对轴数无异议，请求从轻处罚。"}  # fmt: skip
    with pytest.raises(TransitionRefused, match="听证通知书尚未送达"):  # no 听证通知书, no hearing
        await w.act("major", "hold_hearing", WANG, reason="听证结束", payload=hearing)
    # the 听证通知书 (must-have 6; Art. 64 (2), 85): the hearing at least 7 working days after
    # its service, so a day only 7 working days after today is refused
    seventh = deadline(CAL, today, 7).due
    plan = {"held_on": seventh.isoformat(), "held_time": "09:30", "host": "sun",
            "place": "湖南省交通运输综合行政执法局听证室（长沙市示例路1号）"}  # fmt: skip
    with pytest.raises(TransitionRefused, match="七个工作日"):
        await w.act("major", "schedule_hearing", WANG, payload=plan)
    held_on = seventh + dt.timedelta(days=1)
    with pytest.raises(TransitionRefused, match="调查人员"):
        await w.act("major", "schedule_hearing", WANG,
                    payload={**plan, "held_on": held_on.isoformat(), "host": "wang"})  # fmt: skip
    plan["held_on"] = held_on.isoformat()
    assert await w.act("major", "schedule_hearing", WANG, payload=plan) == ["hearing_requested"]
    # served the day before the hearing: too late for that day, refused with the reason
    w.clock.now = dt.datetime.combine(held_on - dt.timedelta(days=1), dt.time(9), POLICY.tz)
    with pytest.raises(TransitionRefused, match="七个工作日前送达"):
        await w.act("major", "serve_hearing_notice", WANG,
                    payload=serve(held_on - dt.timedelta(days=1)))  # fmt: skip
    assert await w.act("major", "serve_hearing_notice", WANG, payload=serve(today)) == [
        "hearing_requested"]  # fmt: skip
    served = await w.store.pool.fetchrow(
        "SELECT * FROM service_records WHERE case_id = $1 AND document = 'hearing_notice'",
        w.cases["major"])  # fmt: skip
    assert served["served_on"] == today and served["document_no"].startswith("超限听〔")
    w.clock.now = dt.datetime.combine(held_on, dt.time(15), POLICY.tz)
    hearing["held_on"] = held_on.isoformat()
    with pytest.raises(TransitionRefused, match="调查人员"):
        await w.act("major", "hold_hearing", WANG, reason="听证结束",
                    payload={**hearing, "host": "wang"})  # fmt: skip
    assert await w.act("major", "hold_hearing", WANG, reason="听证结束", payload=hearing) == [
        "heard"
    ]
    row = await w.store.pool.fetchrow("SELECT * FROM hearings WHERE case_id = $1",
                                      w.cases["major"])  # fmt: skip
    assert (row["held_on"], row["host"], row["minutes"]) == (held_on, "sun", hearing["minutes"])
    statement_due = await w.store.pool.fetchval(
        "SELECT statement_due FROM violation_notices WHERE case_id = $1", w.cases["major"]
    )
    w.clock.now = dt.datetime.combine(max(statement_due, held_on) + dt.timedelta(days=1),
                                      dt.time(9), POLICY.tz)  # fmt: skip
    with pytest.raises(TransitionRefused, match="第五十八条"):  # major: reviewed again first
        await w.act("major", "decide", CHEN, reason="依听证笔录")
    await w.act("major", "review_after_hearing", ZHAO, reason="事实清楚，证据确凿，程序合法")
    await w.act("major", "collective_discussion", CHEN, reason="集体讨论", payload=DISCUSSED)
    assert await w.act("major", "decide", CHEN, reason="依听证笔录") == ["decided"]


async def test_a_withdrawn_case_is_no_prior_offence_and_an_offline_statement_is_kept(
    world: World,
) -> None:
    # review A4: confirmed by mistake, withdrawn by the 负责人, no longer counted in the vehicle's
    # history; review B7: a statement that came by post is recorded by an officer
    w = world
    v = w.violations["small"]
    later = [(v.plate, v.plate_color, v.detection.ts + dt.timedelta(days=1))]
    await w.act("small", "confirm", WANG)
    assert await w.store.prior_offences(later, 365) == [1]
    assert await w.act("small", "withdraw", CHEN, reason_code="plate_misread") == ["withdrawn"]
    assert await w.store.prior_offences(later, 365) == [0]
    await w.act("other", "confirm", WANG)
    other_doc = {"plate": "湘B23456", "fine_cny": await w.store.pool.fetchval(
        "SELECT fine_cny FROM cases WHERE case_id = $1", w.cases["other"])}  # fmt: skip
    await w.act("other", "issue_notice", WANG, payload={"document": other_doc})
    await w.act("other", "serve_notice", WANG, payload=serve(local(w)))
    assert await w.act("other", "record_statement", WANG,
                       payload={"body": "邮寄：当日持有超限运输许可（附许可证复印件）"}) == [
        "statement_received"]  # fmt: skip
    row = await w.store.pool.fetchrow("SELECT * FROM statements WHERE case_id = $1",
                                      w.cases["other"])  # fmt: skip
    assert (row["channel"], row["recorded_by"]) == ("offline", "wang")
    # Art. 45: the statement is reviewed before any decision, a 不予行政处罚 too (it was not)
    with pytest.raises(TransitionRefused, match="未作复核意见"):
        await w.act("other", "decide_no_penalty", CHEN, reason_code="art57_3")
    await w.act("other", "reply_statement", WANG, payload={
        "statement_id": str(row["statement_id"]), "adopted": "adopted",
        "opinion": "所附超限运输许可在有效期内，陈述成立"})  # fmt: skip
    # the defence holds: 不予行政处罚 (Art. 57 (3)), no prior offence either
    assert await w.act("other", "decide_no_penalty", CHEN, reason_code="art57_3") == [
        "not_punished"
    ]


async def test_the_head_logs_in_and_decides_on_the_case_page(world: World) -> None:
    # review B6 in the console: the 负责人 (head) has an account, a queue and the decision's
    # button; the officer who ran the case is not offered it
    w = world
    accounts = Accounts(w.store.pool)
    await accounts.create("wang", ["officer"], PASSWORD)
    await accounts.create("chen", ["head"], PASSWORD)
    await ready_to_decide(w)
    cid = w.cases["small"]
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert 'value="decide"' not in page.text
        await client.post("/logout", data={"csrf": csrf_of(page)})
        landed = await log_in(client, "chen")
        assert landed.headers["location"] == "/cases"
        page = await client.get(f"/cases/{cid}")
        assert page.status_code == 200 and 'value="decide"' in page.text
        r = await client.post(f"/cases/{cid}/act", data={"action": "decide", "reason": "事实清楚",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        await client.post("/logout", data={"csrf": csrf_of(page)})
        # the officer serves the decision from its form; the page shows what is owed
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert 'id="act-serve_decision"' in page.text and "尚未送达，缴款期限未起算" in page.text
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "serve_decision", "method": "direct", "served_on": local(w).isoformat(),
            "served_by": "王警官、李警官", "recipient": "张某", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        page = await client.get(f"/cases/{cid}")
        assert "尚欠 2500.00 元" in page.text and "缴款期限" in page.text
        # must-have 10: the timeline of deadlines, in order, each the day the calendar computed
        pay_due = deadline(CAL, local(w), 15).due
        due = await w.store.pool.fetchval(
            "SELECT statement_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
        timeline = page.text.split('id="deadlines"')[1].split("</ol>")[0]
        assert [timeline.index(f"<time>{d}</time>") for d in (due, pay_due)] == sorted(
            timeline.index(f"<time>{d}</time>") for d in (due, pay_due)
        )
        assert "缴纳罚款（决定书送达之日起十五日）" in timeline and "陈述、申辩" in timeline
        number = await w.store.pool.fetchval(
            "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
        await import_payments(w.store.pool, [Payment("B-7", number, 2_500_00, local(w))], "f",
                              w.clock.now)  # fmt: skip
        page = await client.get(f"/cases/{cid}")
        assert "已缴清" in page.text
        assert (await client.get(f"/cases/{cid}/closing-report")).status_code == 404  # not yet
        await client.post(f"/cases/{cid}/act", data={"action": "close", "csrf": csrf_of(page)})
        # must-have 9: the 结案报告, as HTML and PDF, with the result, execution and the steps
        r = await client.get(f"/cases/{cid}/closing-report.pdf")
        assert r.status_code == 200 and r.content.startswith(b"%PDF-")
        text = pdf_text(r.content).replace(" ", "").replace("\n", "")
        for part in ("结案报告", "湖南示例物流有限公司", number, "已缴清（实缴2500.00元）",
                     "作出处罚决定", "登记送达（行政处罚决定书）", "结案"):  # fmt: skip
            assert part in text, part
    assert await w.status("small") == "closed"


async def test_the_decision_is_served_paid_late_with_its_fee_imported_once_and_closed(
    world: World, tmp_path: Path
) -> None:
    # review B10 / must-have 8: the decision has a number; the 15 days to pay run from its
    # service; a late payment owes 3 % a day (Art. 72); the bank's file is imported once
    w = world
    await ready_to_decide(w)
    await w.act("small", "decide", CHEN, reason="事实清楚")
    d = await w.store.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1",
                                    w.cases["small"])  # fmt: skip
    assert d["fine_cny"] == 2_500 and d["decision_no"].startswith("超限罚〔")
    assert d["payment_due"] is None  # not served: nothing runs
    served_on = local(w)
    await w.act("small", "serve_decision", WANG, payload=serve(served_on))
    pay_due = await w.store.pool.fetchval(
        "SELECT payment_due FROM penalty_decisions WHERE case_id = $1", w.cases["small"]
    )
    assert pay_due == deadline(CAL, served_on, 15).due  # Art. 67 (3): 15 days from service
    late = pay_due + dt.timedelta(days=2)
    bank = tmp_path / "bank.csv"
    bank.write_text("bank_ref,decision_no,amount,paid_on\n"
                    f"B-1,{d['decision_no']},2500.00,{late}\n"
                    f"B-2,超限罚〔2000〕999999号,10.00,{late}\n", encoding="utf-8")  # fmt: skip
    rows, bad = parse_payments(bank)
    assert bad == []
    first = await import_payments(w.store.pool, rows, bank.name, w.clock.now)
    assert (first.imported, first.already, len(first.unmatched)) == (1, 0, 1)
    again = await import_payments(w.store.pool, rows, bank.name, w.clock.now)
    assert (again.imported, again.already) == (0, 1)  # idempotent
    w.clock.now = dt.datetime.combine(late, dt.time(12), POLICY.tz)
    with pytest.raises(TransitionRefused, match=r"尚欠 150\.00 元"):  # 2 days × 3 % × 2,500
        await w.act("small", "close", WANG)
    fee = Payment("B-3", d["decision_no"], 150_00, late)
    assert (await import_payments(w.store.pool, [fee], "bank2.csv", w.clock.now)).imported == 1
    assert await w.act("small", "close", WANG) == ["closed"]


async def test_a_lighter_baseline_in_force_at_decision_applies(
    world: World, tmp_path: Path
) -> None:
    # review A6: the rules run again at decision time; of the baseline of the pass date (500
    # yuan a tonne) and the one in force on the decision day (300 yuan a tonne, a version made
    # up for the test) the lighter applies, and the decision says why (Art. 37)
    w = world
    await ready_to_decide(w)
    day = local(w)
    text = Path("configs/baselines/national.yaml").read_text(encoding="utf-8")
    v1, v2 = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    v1.write_text(text.replace("effective_from: 2016-09-21\n", "effective_from: 2016-09-21\n"
                               f"effective_until: {day - dt.timedelta(days=1)}\n"),
                  encoding="utf-8")  # fmt: skip
    v2.write_text(text.replace("version: 1\n", "version: 2\n")
                  .replace("effective_from: 2016-09-21", f"effective_from: {day}")
                  .replace("amount_cny: 500, rounding: down", "amount_cny: 300, rounding: down"),
                  encoding="utf-8")  # fmt: skip
    settings = w.settings.model_copy(update={"baselines": {"national": [v1, v2]}})
    w.lifecycle = procedure_lifecycle(w.store.pool, w.lifecycle.custody, w.lifecycle.policy,
                                      OWNERS, "", rejudger(settings, w.store), clock=w.clock)  # fmt: skip
    assert await w.act("small", "decide", CHEN, reason="事实清楚") == ["decided"]
    d = await w.store.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1",
                                    w.cases["small"])  # fmt: skip
    assert d["fine_cny"] == 1_500  # 5 tonnes over × 300, not the notified 2,500
    trace = json.loads(d["document"])["art37"]
    assert "v1: fine 2500" in trace and "v2: fine 1500" in trace and "较轻" in trace


async def test_the_decision_renders_to_pdf_with_what_art_59_requires(world: World) -> None:
    # review B10 / must-have 7: the 行政处罚决定书 names the party, the facts, the basis, the
    # fine, the payment deadline from its service, the remedies (行政复议法 (2023) Art. 20: 60
    # days; 行政诉讼法 Art. 46: 6 months), the agency and the date; read back from the PDF
    w = world
    accounts = Accounts(w.store.pool)
    await accounts.create("wang", ["officer"], PASSWORD)
    cid = w.cases["small"]
    console = app_of(w)
    await ready_to_decide(w, await notice_document(console, cid))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    pay_due = deadline(CAL, local(w), 15).due
    async with client_of(console) as client:
        await log_in(client, "wang")
        r = await client.get(f"/cases/{cid}/decision.pdf")
        assert r.status_code == 200 and r.content.startswith(b"%PDF-")
        text = pdf_text(r.content).replace(" ", "").replace("\n", "")
    today = local(w)
    for part in ("行政处罚决定书", "湖南示例物流有限公司", "91430100MA4L00000F", "湘A12345",
                 "超限运输车辆行驶公路管理规定", "罚款人民币2500元（贰仟伍佰元整）", "六十日内", "六个月内",
                 f"{pay_due.year}年{pay_due.month}月{pay_due.day}日",
                 f"{today.year}年{today.month}月{today.day}日", "百分之三",
                 # Art. 42: both officers and their 执法证号 (the world's team)
                 "刘警官（执法证号43010000001）、马警官（执法证号43010000002）"):  # fmt: skip
        assert part in text, part
    assert [e["detail"] for e in read_log(w.package("small"))][-1].startswith("decision ")


async def test_an_unpaid_decision_goes_to_the_court_after_the_remedy_periods(world: World) -> None:
    # must-have 9: not paid → 申请人民法院强制执行 (行政强制法 Art. 53) once the 6 months to sue
    # (行政诉讼法 Art. 46) from the decision's service are over; then the case may be closed
    w = world
    await ready_to_decide(w)
    await w.act("small", "decide", CHEN, reason="事实清楚")
    served_on = local(w)
    await w.act("small", "serve_decision", WANG, payload=serve(served_on))
    last = add_months(served_on, 6)
    w.clock.now = dt.datetime.combine(last, dt.time(9), POLICY.tz)
    with pytest.raises(TransitionRefused, match="届满后方可申请"):
        await w.act("small", "apply_enforcement", CHEN, reason="逾期未缴纳")
    with pytest.raises(TransitionRefused, match="尚欠"):
        await w.act("small", "close", WANG)
    w.clock.now += dt.timedelta(days=1)
    await w.act("small", "apply_enforcement", CHEN, reason="逾期未缴纳")
    assert await w.act("small", "close", WANG) == ["closed"]


async def test_the_party_page_asks_for_a_hearing_and_shows_the_decision(world: World) -> None:
    # must-have 10 / review B1: the party asks for the hearing on their page within its period;
    # once decided, the page shows the decision, the payment deadline and what is owed
    w = world
    console = app_of(w)
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG,
                payload={"document": await notice_document(console, w.cases["major"])})  # fmt: skip
    await w.act("major", "serve_notice", WANG, payload=serve(local(w)))
    await ready_to_decide(w, await notice_document(console, w.cases["small"]))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    codes = {r["case_id"]: r["lookup_code"] for r in await w.store.pool.fetch(
        "SELECT case_id, lookup_code FROM violation_notices")}  # fmt: skip
    # the day after the major case's hearing period (5 working days from its service: across
    # the Spring Festival of 2027 it can end after the small case's statement period)
    hearing_due = await w.store.pool.fetchval(
        "SELECT hearing_due FROM violation_notices WHERE case_id = $1", w.cases["major"])  # fmt: skip
    w.clock.now = max(w.clock.now, dt.datetime.combine(hearing_due + dt.timedelta(days=1),
                                                       dt.time(9), POLICY.tz))  # fmt: skip
    async with client_of(console) as client:
        await find(client, "湘C34567", codes[w.cases["major"]])
        page = await client.get("/party/case")
        assert 'id="hearing-form"' not in page.text  # the period is over: the clock moved on
    # the major case's hearing period as if its notice had been served days ago: it ends today
    await w.store.pool.execute(
        "UPDATE violation_notices SET hearing_due = $2 WHERE case_id = $1", w.cases["major"],
        local(w))  # fmt: skip
    async with client_of(console) as client:
        await find(client, "湘C34567", codes[w.cases["major"]])
        page = await client.get("/party/case")
        assert 'id="hearing-form"' in page.text
        r = await client.post("/party/hearing", data={"csrf": csrf_of(page)})
        assert r.status_code == 303
    assert await w.status("major") == "hearing_requested"
    async with client_of(console) as client:
        await find(client, "湘A12345", codes[w.cases["small"]])
        page = await client.get("/party/case")
        assert 'id="party-decision"' in page.text and "2500 元" in page.text
        # not late: the amount is the fine alone, with no word of a late fee
        assert 'id="party-owed">2500.00 元</td>' in page.text and "含加处罚款" not in page.text
        assert "六十日内申请行政复议" in page.text


async def test_a_case_transferred_to_the_maritime_agency_says_so_in_its_history(
    world: World,
) -> None:
    # review B11: 移送 to the competent agency, not only the police; the case page names it
    w = world
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    await w.act("small", "confirm", WANG)
    assert await w.act("small", "transfer_agency", CHEN, reason_code="maritime") == ["transferred"]
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{w.cases['small']}")
        assert "海事管理机构" in page.text.split('id="transitions"')[-1]


def red_fill(pdf: bytes) -> bool:
    """Whether a page, or a drawing it places (an SVG, a group with opacity), paints in the
    seal's red (#d0021b as PDF colour components)."""

    def streams(resources: Any) -> list[bytes]:
        found = []
        for x in (resources or {}).get("/XObject", {}).values():
            x = x.get_object()
            found += [x.get_data(), *streams(x.get("/Resources"))]
        return found

    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return any(b"0.815686 0.007843 0.105882 rg" in data for page in pages
               for data in [page.get_contents().get_data(), *streams(page.get("/Resources"))])  # type: ignore[union-attr]  # fmt: skip


async def test_the_sealed_decision_pdf_verifies_and_a_changed_byte_fails(
    world: World, tmp_path: Path
) -> None:
    # must-have 7: the decision (and the notice) carry the agency's visible seal and a PDF
    # signature a reader can check offline (pyHanko); the first start made the key and the
    # self-signed certificate naming the agency; one changed byte and it no longer verifies
    w = world
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    cid = w.cases["small"]
    # its own key and certificate: the session's scratch folder is shared with other tests
    evidence = w.settings.evidence.model_copy(update={
        "agency": AGENCY, "document_key": tmp_path / "documents.pem",
        "document_cert": tmp_path / "documents.crt"})  # fmt: skip
    sealer = document_sealer(w.settings.model_copy(update={"evidence": evidence}), w.clock)
    console = dataclasses.replace(app_of(w), sealer=sealer)
    await ready_to_decide(w, await notice_document(console, cid))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    async with client_of(console) as client:
        await log_in(client, "wang")
        decision = (await client.get(f"/cases/{cid}/decision.pdf")).content
        notice = (await client.get(f"/cases/{cid}/notice.pdf")).content
    cert = evidence.document_cert
    for pdf in (decision, notice):  # pyHanko's checks run their own event loop: in a thread
        found = await asyncio.to_thread(verify_pdf, pdf, load_certificate(cert))
        assert found.ok and found.signer == AGENCY, found.problems
        assert red_fill(pdf)  # the seal is drawn on the page
    assert "行政处罚决定书" in pdf_text(decision)
    at = decision.index(b"endstream") - 40  # a byte inside the page content, not the signature
    changed = decision[:at] + bytes([decision[at] ^ 0x01]) + decision[at + 1 :]
    assert not (await asyncio.to_thread(verify_pdf, changed, load_certificate(cert))).ok
    (tmp_path / "d.pdf").write_bytes(decision)
    (tmp_path / "x.pdf").write_bytes(changed)
    for name, code in (("d.pdf", 0), ("x.pdf", 1)):  # the CLI verb, offline
        argv = ["documents", "verify", str(tmp_path / name), "--cert", str(cert)]
        assert await asyncio.to_thread(main, argv) == code


async def test_the_no_penalty_decision_renders_to_pdf_with_its_reason_and_basis(
    world: World,
) -> None:
    # must-have 7 / Art. 57 (1) (3): the 不予行政处罚决定书 names the party, the plate, the
    # reason and its article, the remedies and the date, and no fine; read back from the PDF
    w = world
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    cid = w.cases["small"]
    console = app_of(w)
    await ready_to_decide(w, await notice_document(console, cid))
    await w.act("small", "decide_no_penalty", CHEN, reason_code="art57_3")
    async with client_of(console) as client:
        await log_in(client, "wang")
        r = await client.get(f"/cases/{cid}/decision.pdf")
        closing = await client.get(f"/cases/{cid}/closing-report")
    # the 结案报告 says what ended the case (it said 已缴清（实缴 0.00 元）)
    assert closing.status_code == 200 and "不予行政处罚，无执行事项" in closing.text
    assert "已缴清" not in closing.text and "实缴" not in closing.text
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    text = pdf_text(r.content)
    today = local(w)
    for part in ("不予行政处罚决定书", "湖南示例物流有限公司", "91430100MA4L00000F", "湘A12345",
                 "违法事实不能成立", "第五十七条第一款第（三）项", "六十日内", "六个月内",
                 f"{today.year}年{today.month}月{today.day}日"):  # fmt: skip
        assert part in text, part
    assert "罚款人民币" not in text and "缴款" not in text


async def test_the_demo_takes_a_road_case_to_its_closed_file(world: World, tmp_path: Path) -> None:
    # must-have 12: the demo's walk (offsite.demo_case) serves the notice, records a statement,
    # has the head decide, serves the decision, imports the bank's file and closes, through the
    # console's own calls; its four PDFs are signed and read back
    w = world
    cid = w.cases["small"]
    passed = await w.store.pool.fetchval("SELECT ts FROM cases WHERE case_id = $1", cid)
    written = await walk_case(w.settings, cid, passed, tmp_path / "docs", ("team.liu", "team.ma"))
    assert await w.status("small") == "closed"
    assert [p.name for p in written] == ["1-violation-notice.pdf", "2-notice-receipt.pdf",
                                         "3-decision.pdf", "4-closing-report.pdf"]  # fmt: skip
    cert = load_certificate(w.settings.evidence.document_cert)
    for path in written:
        assert (await asyncio.to_thread(verify_pdf, path.read_bytes(), cert)).ok, path
    steps = [r["action"] for r in await w.store.pool.fetch(
        "SELECT action FROM case_transitions WHERE case_id = $1 ORDER BY transition_id", cid)]  # fmt: skip
    assert steps == ["confirm", "issue_notice", "serve_notice", "record_statement",
                     "reply_statement", "decide", "serve_decision", "close"]  # fmt: skip
    report = pdf_text(written[3].read_bytes())
    assert (
        "结案报告" in report
        and "湖南示例物流有限公司" in report
        and "已缴清（实缴2500.00元）" in report
    )
    decision = pdf_text(written[2].read_bytes())
    assert (
        "罚款人民币2500元（贰仟伍佰元整）" in decision
        and "当事人在法定期限内提出了陈述、申辩" in decision
    )
    # closed, it is filed as a close on the console files it (电子案卷, issue #26)
    (filed,) = [p for p in (w.settings.var_dir / "casefiles").glob(f"*-{cid}") if p.is_dir()]
    assert verify_casefile(filed) == []  # its evidence package's custody log in time order too
    # and its 抄告 to the home region is in the exchange folder (the demo's transport)
    sent = json.loads((w.settings.var_dir / "outbox" / "chaogao" / f"{chaogao_id(cid)}.json")
                      .read_bytes())  # fmt: skip
    assert sent["case_id"] == cid and sent["recipient"]["region"] == "湘A"


async def test_the_hearing_notice_is_a_pdf_with_the_party_the_time_and_the_place_on_the_timeline(
    world: World,
) -> None:
    # must-have 6: the 听证通知书 as a PDF read back (party, date, place, host, the rights), its
    # 送达回证, and the hearing on the case's timeline
    w = world
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD, display_name="王警官")
    cid = w.cases["major"]
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG, payload={"document": DOC["major"]})
    today = local(w)
    await w.act("major", "serve_notice", WANG, payload=serve(today))
    held_on = await hearing_notice_served(w, today)
    with pytest.raises(TransitionRefused, match="没有当事人的陈述"):  # no statement to reply to
        await w.act("major", "reply_statement", WANG,
                    payload={"statement_id": "1", "opinion": "不予采纳"})  # fmt: skip
    console = app_of(w)
    async with client_of(console) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert 'id="hearing-notice-pdf"' in page.text
        timeline = page.text[page.text.index('id="deadlines"') :]
        assert f"<time>{held_on}</time> 举行听证" in timeline
        r = await client.get(f"/cases/{cid}/hearing-notice.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        text = pdf_text(r.content)
        assert "听证通知书" in text and "李示例：" in text  # the party of 湘C34567
        assert f"{held_on.year}年{held_on.month}月{held_on.day}日14时30分" in text
        assert "长沙市示例路1号听证室" in text and "孙主持" in text
        assert "委托一至二人代理" in text and "申请回避" in text and "请携带" in text
        assert "刘警官（执法证号43010000001）、马警官（执法证号43010000002）" in text  # Art. 42
        sid = await w.store.pool.fetchval(
            "SELECT service_id FROM service_records WHERE case_id = $1"
            " AND document = 'hearing_notice'", cid)  # fmt: skip
        receipt = pdf_text((await client.get(f"/cases/{cid}/service/{sid}/receipt.pdf")).content)
        assert "听证通知书超限听〔" in receipt and "李示例" in receipt


async def test_a_notice_names_two_officers_with_their_badge_numbers(world: World) -> None:
    # must-have 7 (行政处罚法 Art. 42: 执法人员不得少于两人, and they show their 执法证件): no
    # notice with fewer than two distinct officers, or one without a 执法证号; the admin page
    # edits the number; the notice prints both names and numbers
    w = world
    accounts = Accounts(w.store.pool)
    await accounts.create("wu", ["officer"], PASSWORD, display_name="吴警官")
    await accounts.create("root", ["admin"], PASSWORD)
    cid, console = w.cases["small"], app_of(w)
    await w.act("small", "confirm", WANG)
    doc = await notice_document(console, cid)
    for officers, why in ((["team.liu"], "不得少于两人"), (["team.liu", "team.liu"], "不得少于两人"),
                          ("team.liu，nobody", "没有这名执法人员"),
                          (["team.liu", "wu"], "吴警官未登记执法证号")):  # fmt: skip
        with pytest.raises(TransitionRefused, match=why):
            await w.act("small", "issue_notice", WANG,
                        payload={"document": doc, "officers": officers})  # fmt: skip
    assert await w.status("small") == "confirmed"
    async with client_of(console) as client:
        await log_in(client, "root")
        page = await client.get("/admin")
        assert 'name="badge_no"' in page.text
        r = await client.post("/admin/badge", data={"username": "wu", "badge_no": "43019999",
                                                    "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
    assert await w.act("small", "issue_notice", WANG, payload={
        "document": doc, "officers": "wu,team.liu"}) == ["notice_issued"]  # fmt: skip
    notice = await load_notice(console, cid)
    assert notice is not None
    text = pdf_text(await asyncio.to_thread(
        render_pdf, notice_html(console, notice, "http://x/party", [], pdf=True)))  # fmt: skip
    assert "刘警官（执法证号43010000001）、吴警官（执法证号43019999）" in text


async def test_b4_a_citizen_is_told_of_the_hearing_at_an_amount_a_company_is_not(
    plain_settings: Settings,
) -> None:
    # review B4 (legal-2026-12-07): 行政处罚法 Art. 63 (1) leaves 较大数额罚款 to the province,
    # and the provinces set it per kind of party (the review's Hunan amounts, ◐: 公民 1,000,
    # 法人或其他组织 20,000; the shipped defaults). Before, one number (10,000) for everyone: a
    # private owner fined less than 10,000 was not told of 听证.
    w = await make_world(plain_settings, Policy(hearing_fine_cny_at_least=1_000,
                                                hearing_fine_cny_at_least_organization=20_000))  # fmt: skip
    try:
        console = app_of(w)
        # 湘A12345: 湖南示例物流有限公司; 湘B23456: 赵示例, a private owner (configs/owners.yaml)
        for name, owner in (("small", "organization"), ("other", "citizen")):
            cid = w.cases[name]
            assert await w.act(name, "confirm", WANG) == ["confirmed"]  # neither is major
            doc = await notice_document(console, cid)
            assert 1_000 <= doc["fine_cny"] < 10_000
            await w.act(name, "issue_notice", WANG, payload={"document": doc})
            await w.act(name, "serve_notice", WANG, payload=serve(local(w)))
            row = await w.store.pool.fetchrow(
                "SELECT document, hearing_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
            told = owner == "citizen"
            issued = json.loads(row["document"])  # the party from 立案, not from the request
            assert issued["party"]["kind"] == owner
            assert (issued["hearing_days"] is not None) == told
            assert row["hearing_due"] == (deadline(CAL, local(w), 5).due if told else None)
            notice = await load_notice(console, cid)
            assert notice is not None
            assert (
                'id="hearing"' in notice_html(console, notice, "http://x/party", [], pdf=False)
            ) == told
    finally:
        await w.store.close()


async def test_b5_legal_review_needs_a_qualified_reviewer_and_its_opinion_is_filed(
    world: World, tmp_path: Path
) -> None:
    # review B5: 法制审核 before the notice took an optional opinion from any legal reviewer.
    # 行政处罚法 Art. 58 para 2: 初次从事行政处罚决定法制审核的人员，应当通过国家统一法律职业资格考试
    # 取得法律职业资格; the opinion is the 法制审核意见 of the file's 副卷
    w = world
    accounts = Accounts(w.store.pool)
    await accounts.create("qian", ["legal_reviewer"], PASSWORD, display_name="钱法制")
    qian = Actor("qian", frozenset({LEGAL_REVIEWER}))
    opinion = "事实清楚，证据确凿，适用《公路安全保护条例》第六十四条正确，程序合法，裁量适当"
    await w.act("major", "confirm", WANG)
    with pytest.raises(TransitionRefused, match="法律职业资格"):
        await w.lifecycle.apply(w.cases["major"], Request("approve", qian, reason=opinion))
    async with client_of(app_of(w)) as client:  # the admin records the certificate
        await accounts.create("root", ["admin"], PASSWORD)
        await log_in(client, "root")
        page = await client.get("/admin")
        assert 'name="legal_cert_no"' in page.text
        r = await client.post("/admin/badge", data={"username": "qian", "csrf": csrf_of(page),
                                                    "legal_cert_no": "A2019 4301"})  # fmt: skip
        assert r.status_code == 400 and "法律职业资格证书编号" in r.text  # no spaces
        r = await client.post("/admin/badge", data={"username": "qian", "csrf": csrf_of(page),
                                                    "legal_cert_no": "A20194301000777"})  # fmt: skip
        assert r.status_code == 303
    with pytest.raises(TransitionRefused, match="须填写理由"):  # no written opinion
        await w.lifecycle.apply(w.cases["major"], Request("approve", qian))
    done = await w.lifecycle.apply(w.cases["major"], Request("approve", qian, reason=opinion))
    assert done[-1].to_status == "approved"
    assert done[-1].detail["legal_cert_no"] == "A20194301000777"
    # the opinion and the reviewer's qualification in the 副卷's 法制审核意见
    await w.act("major", "withdraw", CHEN, reason_code="other", reason="当事人持有效许可")
    folder = await export_casefile(app_of(w), w.cases["major"], tmp_path,
                                   Signer.load(w.settings.evidence.key))  # fmt: skip
    manifest = json.loads((folder / MANIFEST).read_bytes())
    (doc,) = [d for d in manifest["documents"] if d["kind"] == "legal_review"]
    assert doc["path"].startswith("副卷")
    text = pdf_text((folder / doc["path"]).read_bytes()).replace("\n", "")
    assert opinion[:20] in text and "A20194301000777" in text and "qian" in text


async def test_decision_numbers_carry_the_agency_s_code_and_start_at_1_each_year(
    plain_settings: Settings,
) -> None:
    # as the notice's (review D.11): 湘交执超罚〔2027〕1号, the agency's code for its decisions,
    # the year, a number from 1; before, notice_prefix + 罚 and one sequence for ever (000001)
    policy = dataclasses.replace(POLICY, notice_prefix="湘交执超通", decision_prefix="湘交执超罚")
    w = await make_world(plain_settings, policy)
    try:
        await ready_to_decide(w)
        await w.act("small", "decide", CHEN, reason="事实清楚")
        year = w.clock.now.astimezone(POLICY.tz).year
        number = await w.store.pool.fetchval(
            "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", w.cases["small"])  # fmt: skip
        assert number == f"湘交执超罚〔{year}〕1号"
        # the next decision of the year is 2; the year after starts at 1 again
        async with w.store.pool.acquire() as conn:
            assert await document_number(conn, "decision", "湘交执超罚", year) == (
                f"湘交执超罚〔{year}〕2号")  # fmt: skip
            assert await document_number(conn, "decision", "湘交执超罚", year + 1) == (
                f"湘交执超罚〔{year + 1}〕1号")  # fmt: skip
    finally:
        await w.store.close()
