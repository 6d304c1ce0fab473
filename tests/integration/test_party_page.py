"""Issue #25 must-have 10 over the real case store and console: the party's page shows the
notice and its service, each statement with the agency's 复核意见 under it, the 听证通知书 (its
number, time, place, host, service and PDF), the decision, and what to pay; "含加处罚款" only
when a late fee is part of the amount."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from console.notice import notice_document
from sinks.accounts import Accounts
from sinks.lifecycle import TransitionRefused

from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import CHEN, PARTY_ACTOR, WANG, ZHAO, World
from .test_notice import pdf_text
from .test_party import find
from .test_procedure import DISCUSSED, POLICY, hearing_notice_served, local, serve, world

__all__ = ["world"]  # the fixture, with the hearing threshold of test_procedure

OPINION = "经复核，称重设备检定合格，当事人所称“地磅不准”的理由不成立，不予采纳。"


async def test_the_party_page_shows_service_replies_the_hearing_notice_and_what_is_owed(
    world: World,
) -> None:
    w = world
    cid = w.cases["major"]
    console = app_of(w)
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD, display_name="王警官")
    await w.act("major", "confirm", WANG)
    await w.act("major", "approve", ZHAO)
    await w.act("major", "issue_notice", WANG,
                payload={"document": await notice_document(console, cid)})  # fmt: skip
    code = await w.store.pool.fetchval(
        "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    async with client_of(console) as party:
        await find(party, "湘C34567", code)
        page = await party.get("/party/case")
        assert "通知书送达：尚未送达" in page.text  # not served yet, and it says so
    served_on = local(w)
    await w.act("major", "serve_notice", WANG,
                payload=serve(served_on, method="post", tracking_no="1234567890123"))  # fmt: skip
    await w.act("major", "submit_statement", PARTY_ACTOR, payload={"body": "地磅不准，请求复核。"})
    with pytest.raises(TransitionRefused, match="本案的一份"):  # not one of this case's statements
        await w.act("major", "reply_statement", WANG,
                    payload={"statement_id": "999999", "opinion": OPINION})  # fmt: skip
    # the officer writes the 复核意见 from the case page's form
    async with client_of(console) as officer:
        await log_in(officer, "wang")
        page = await officer.get(f"/cases/{cid}")
        assert 'id="act-reply_statement"' in page.text
        sid = await w.store.pool.fetchval("SELECT statement_id FROM statements WHERE case_id = $1",
                                          cid)  # fmt: skip
        r = await officer.post(f"/cases/{cid}/act", data={
            "csrf": csrf_of(page), "action": "reply_statement", "statement_id": str(sid),
            "opinion": OPINION})  # fmt: skip
        assert r.status_code == 409 and "采纳或不予采纳" in r.text  # B7: the conclusion too
        r = await officer.post(f"/cases/{cid}/act", data={
            "csrf": csrf_of(page), "action": "reply_statement", "statement_id": str(sid),
            "adopted": "not_adopted", "opinion": OPINION})  # fmt: skip
        assert r.status_code == 303
        assert f"不予采纳。{OPINION}" in (await officer.get(f"/cases/{cid}")).text
    held_on = await hearing_notice_served(w, served_on)
    hearing_no = await w.store.pool.fetchval(
        "SELECT notice_no FROM hearing_notices WHERE case_id = $1", cid)  # fmt: skip
    w.clock.now = dt.datetime.combine(held_on, dt.time(15), POLICY.tz)
    await w.act("major", "hold_hearing", WANG, reason="听证结束", payload={
        "held_on": held_on.isoformat(), "host": "孙主持", "minutes": "当事人坚持地磅不准。"})  # fmt: skip
    statement_due = await w.store.pool.fetchval(
        "SELECT statement_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    w.clock.now = dt.datetime.combine(max(statement_due, held_on) + dt.timedelta(days=1),
                                      dt.time(9), POLICY.tz)  # fmt: skip
    await w.act("major", "review_after_hearing", ZHAO, reason="事实清楚，证据确凿，程序合法")
    await w.act("major", "collective_discussion", CHEN, reason="集体讨论", payload=DISCUSSED)
    await w.act("major", "decide", CHEN, reason="依听证笔录")
    decision_served = local(w)
    await w.act("major", "serve_decision", WANG, payload=serve(decision_served))
    d = await w.store.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1", cid)
    async with client_of(console) as party:
        await find(party, "湘C34567", code)
        page = (await party.get("/party/case")).text
        # (a) the notice's service: method and day
        assert f"通知书送达：邮寄送达，{served_on}" in page
        # (c) the statement, and the agency's reply under it
        assert page.index("地磅不准，请求复核。") < page.index(f"不予采纳。{OPINION}")
        assert "执法机关复核意见" in page
        # (b) the 听证通知书: number, time, place, host, served, and the party's own PDF
        section = page[page.index('id="party-hearing-notice"') :]
        assert hearing_no in section and "长沙市示例路1号听证室" in section and "孙主持" in section
        assert f"{held_on.year}年{held_on.month}月{held_on.day}日 14时30分" in section
        assert f"直接送达，{served_on}" in section
        assert "长沙市示例路1号听证室" in (await party.get("/party/hearing-notice")).text
        r = await party.get("/party/hearing-notice.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        text = pdf_text(r.content)
        assert hearing_no in text and "长沙市示例路1号听证室" in text
        # the decision, its service, and what is owed: unpaid, not late, no late fee in it
        decision = page[page.index('id="party-decision"') :]
        assert d["decision_no"] in decision and f"直接送达，{decision_served}" in decision
        owed = re.search(r'id="party-owed">([^<]*)<', decision)
        assert owed is not None and owed.group(1) == f"{d['fine_cny']:.2f} 元"
    async with client_of(console) as officer:  # the case page says the same
        await log_in(officer, "wang")
        page = (await officer.get(f"/cases/{cid}")).text
        assert f'id="owed">尚欠 {d["fine_cny"]:.2f} 元</span>' in page
    # (d) two days after the last day to pay, 3 % a day of the fine is part of the amount
    w.clock.now = dt.datetime.combine(d["payment_due"] + dt.timedelta(days=2), dt.time(9),
                                      POLICY.tz)  # fmt: skip
    async with client_of(console) as party:
        await find(party, "湘C34567", code)
        page = (await party.get("/party/case")).text
        fee = d["fine_cny"] * 3 * 2 / 100  # 行政处罚法 Art. 72 (1): 3 % a day
        owed = re.search(r'id="party-owed">([^<]*)<', page)
        assert owed is not None
        assert owed.group(1) == f"{d['fine_cny'] + fee:.2f} 元（含加处罚款 {fee:.2f} 元）"
