"""Issue #25 acceptance, in Debian's Chromium: a major case from confirmation to 结案 with a
hearing, as the officer, the legal reviewer and the 负责人 (head) each use the console, and the
party on its page. The procedure's days pass on the world's clock (moved by the test, as the
lifecycle reads it); the test waits on page conditions, never on time."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, expect

from cases import WorkCalendar, deadline
from cases.payments import Payment, import_payments
from offsite.config import Settings
from sinks.accounts import Accounts
from sinks.lifecycle import Policy
from tests.integration.test_console import PASSWORD, USERS
from tests.integration.test_lifecycle import World, make_world, qualify

from .conftest import Live

CAL = WorkCalendar()
HEARING_REQUESTED = "当事人已申请听证"  # the status while the hearing is prepared


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    """The cases, with a province's 较大数额罚款 (公民 1,000 yuan): the party may ask for a
    hearing; the accounts of tests/conftest.py and a 负责人 (liu)."""
    w = await make_world(plain_settings, Policy(hearing_fine_cny_at_least=1_000))
    accounts = Accounts(w.store.pool)
    for name, roles in {**USERS, "liu": ["head"]}.items():
        await accounts.create(name, roles, PASSWORD, display_name=f"{name}警官")
    await qualify(w.store.pool, "zhao")  # 法律职业资格 (Art. 58)
    yield w
    await w.store.close()


async def act(page: Page, action: str, status: str, **fields: str) -> None:
    """Fill the case page's form of ``action``, submit it, and wait for the case's new status."""
    form = page.locator(f"#act-{action}")
    await expect(form).to_be_visible()
    for name, value in fields.items():
        field = form.locator(f"[name={name}]")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    url = page.url
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    if page.url != url and not await page.locator("#error").count():
        await page.goto(url)  # confirm moves on to the next case of the queue: back to this one
    error = page.locator("#error")
    await expect(page.locator(f"h1 .status:text-is('{status}')").or_(error).first).to_be_visible()
    assert await error.count() == 0, await error.inner_text()


async def party_log_in(live: Live, plate: str, code: str) -> Page:
    """The party at a fresh browser, logged in to its case with the notice's lookup code."""
    party = await live.page()
    await party.goto("/party")
    await party.fill("#lookup input[name=plate]", plate)
    await party.fill("#lookup input[name=code]", code)
    await party.click("#lookup button[type=submit]")
    await expect(party.locator(".meta .plate")).to_have_text(plate)
    return party


async def test_a_major_case_goes_from_confirmation_to_closing_with_a_hearing(live: Live) -> None:
    w = live.world
    cid = w.cases["major"]  # 湘C34567: 李示例 (公民), 24,500 yuan: major, and a hearing right
    tz = w.lifecycle.policy.tz

    def today() -> dt.date:
        return w.clock.now.astimezone(tz).date()

    def move_to(day: dt.date) -> None:
        w.clock.now = max(w.clock.now, dt.datetime.combine(day, dt.time(10), tz))

    officer = await live.log_in("wang")
    await officer.goto(f"/cases/{cid}")
    await act(officer, "confirm", "法制审核中")
    legal = await live.log_in("zhao")
    await legal.goto(f"/cases/{cid}")
    await act(legal, "approve", "法制审核通过", reason="事实清楚，证据确凿，程序合法")
    await officer.goto(f"/cases/{cid}")
    # two officers with their 执法证号 (Art. 42): the world's team (tests/integration)
    await act(officer, "issue_notice", "已告知（违法行为通知书）", officers="team.liu,team.ma")
    served_on = today()
    await act(officer, "serve_notice", "已告知（违法行为通知书）", method="direct",
              served_on=served_on.isoformat(), served_by="王警官、李警官", recipient="李示例")  # fmt: skip
    # the party asks for a hearing on its page, within its 5 working days
    code = await w.store.pool.fetchval(
        "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    party = await party_log_in(live, "湘C34567", code)
    await party.click("#hearing-form button[type=submit]")
    await expect(party.locator("#hearing-form")).to_have_count(0)
    assert await w.status("major") == "hearing_requested"
    # the 听证通知书, served today: the hearing more than 7 working days later (Art. 64 (2))
    await officer.goto(f"/cases/{cid}")
    held_on = deadline(CAL, today(), 7).due + dt.timedelta(days=1)
    await act(officer, "schedule_hearing", HEARING_REQUESTED, held_on=held_on.isoformat(),
              held_time="09:30", place="长沙市示例路1号听证室", host="孙主持人")  # fmt: skip
    await act(officer, "serve_hearing_notice", HEARING_REQUESTED, method="direct",
              served_on=today().isoformat(), served_by="王警官、李警官", recipient="李示例")  # fmt: skip
    # the hearing is held on its day, the record attached
    move_to(held_on)  # sessions end with the days passed: each logs in again
    officer, legal = await live.log_in("wang"), await live.log_in("zhao")
    await officer.goto(f"/cases/{cid}")
    await act(officer, "hold_hearing", "听证已举行", held_on=held_on.isoformat(), host="孙主持人",
              reason="听证结束", minutes="当事人对轴数无异议，请求从轻处罚。")  # fmt: skip
    await legal.goto(f"/cases/{cid}")
    await act(legal, "review_after_hearing", "听证已举行", reason="事实清楚，证据确凿，程序合法")
    # the statement period over, the head discusses (a major case) and decides
    due = await w.store.pool.fetchval(
        "SELECT statement_due FROM violation_notices WHERE case_id = $1", cid)  # fmt: skip
    move_to(due + dt.timedelta(days=1))
    head, officer = await live.log_in("liu"), await live.log_in("wang")
    await head.goto(f"/cases/{cid}")
    await act(head, "collective_discussion", "听证已举行", participants="刘局长、陈副局长、周副局长",
              minutes="依听证笔录，一致同意按裁量基准处罚。", reason="集体讨论")  # fmt: skip
    await act(head, "decide", "已作出处罚决定", reason="依听证笔录，事实清楚")
    await officer.goto(f"/cases/{cid}")
    await act(officer, "serve_decision", "已作出处罚决定", method="direct",
              served_on=today().isoformat(), served_by="王警官、李警官", recipient="李示例")  # fmt: skip
    await expect(officer.locator("#deadlines")).to_contain_text("缴纳罚款")
    await live.shot(officer, "timeline")
    # the party's page: the notice's service, the hearing, the decision and what to pay
    party = await party_log_in(live, "湘C34567", code)
    await expect(party.locator("#party-decision")).to_contain_text("24500.00")
    await live.shot(party, "party-page")
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
    await import_payments(w.store.pool, [Payment("B-1", number, 24_500_00, today())], "bank.csv",
                          w.clock.now)  # fmt: skip
    await officer.goto(f"/cases/{cid}")
    await act(officer, "close", "已结案")
    await live.shot(officer, "closed")
    await officer.goto(f"/cases/{cid}/closing-report")
    await expect(officer.locator("#closing-timeline")).to_contain_text("作出处罚决定liu")
    await expect(officer.locator("body")).to_contain_text("已缴清（实缴 24500.00 元）")
    steps = [t[0] for t in await w.transitions("major")]
    assert steps == ["confirm", "submit_legal_review", "approve", "issue_notice", "serve_notice", "request_hearing",
                     "schedule_hearing", "serve_hearing_notice", "hold_hearing", "review_after_hearing", "collective_discussion", "decide",
                     "serve_decision", "close"]  # fmt: skip
    assert {t[0]: t[3] for t in await w.transitions("major")}["decide"] == "liu"
