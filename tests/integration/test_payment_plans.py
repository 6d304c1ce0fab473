"""Issue #25 must-have 8: 延期 / 分期缴纳 (行政处罚法 Art. 66 (2)) over the real case store and
the console: the party applies on its page, only the head approves or refuses (with a reason,
in the case's history), an approved plan's days replace the 15th day on the case page and the
party page, payments imported are matched to its instalments, and the case closes only when
every instalment is paid. Fixed dates (the test's clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from cases.payments import Payment, add_months, import_payments
from console import Console
from console.notice import notice_document
from offsite.config import Settings
from sinks.accounts import Accounts
from sinks.lifecycle import RoleRefused, TransitionRefused

from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import CHEN, WANG, World, make_world
from .test_party import find
from .test_procedure import POLICY, local, ready_to_decide, serve


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings, POLICY)  # as test_procedure's: no hearing at 2,500
    yield w
    await w.store.close()


async def decided_and_served(w: World, console: Console) -> tuple[str, dt.date]:
    """The small case decided (2,500 yuan) and its decision served today: (number, due day)."""
    cid = w.cases["small"]
    await ready_to_decide(w, await notice_document(console, cid))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    row = await w.store.pool.fetchrow(
        "SELECT decision_no, payment_due FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
    return row["decision_no"], row["payment_due"]


async def test_the_party_applies_the_head_approves_and_the_plan_rules_payment(
    world: World,
) -> None:
    w, pool, cid = world, world.store.pool, world.cases["small"]
    console = app_of(w)
    number, due = await decided_and_served(w, console)
    first, second = due + dt.timedelta(days=30), due + dt.timedelta(days=60)
    lines = f"{first} 1000\n{second} 1500"
    code = await pool.fetchval("SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid)
    # the party applies on its page; an amount that does not add up is refused with the reason
    async with client_of(console) as client:
        await find(client, "湘A12345", code)
        page = await client.get("/party/case")
        assert 'id="payment-plan-form"' in page.text
        form = {"csrf": csrf_of(page), "kind": "instalments", "grounds": "经营困难，收入下降"}
        bad = await client.post(
            "/party/payment-plan", data={**form, "instalments": f"{first} 1000"}
        )
        assert bad.status_code == 409 and "2 至" in bad.text
        r = await client.post("/party/payment-plan", data={**form, "instalments": lines})
        assert r.status_code == 303
        page = await client.get("/party/case")
        assert "待负责人审批" in page.text and 'id="payment-plan-form"' not in page.text
    # only the head decides it, with a reason: the officer cannot; a refusal reopens it
    with pytest.raises(RoleRefused):
        await w.act("small", "approve_payment_plan", WANG, reason="同意")
    await w.act("small", "refuse_payment_plan", CHEN, reason="未提供经济困难的证明材料")
    # an officer records the party's written application with its proof, received by post
    await w.act("small", "apply_payment_plan", WANG, payload={
        "kind": "instalments", "instalments": lines, "grounds": "附低保证明"})  # fmt: skip
    with pytest.raises(TransitionRefused, match="已有待审批的申请"):
        await w.act("small", "apply_payment_plan", WANG, payload={
            "kind": "defer", "instalments": f"{second} 2500", "grounds": "同上"})  # fmt: skip
    await w.act("small", "approve_payment_plan", CHEN, reason="经济困难属实，准予分两期缴纳")
    history = await pool.fetch(
        "SELECT action, actor, reason FROM case_transitions WHERE case_id = $1"
        " AND action LIKE '%payment_plan' ORDER BY transition_id", cid)  # fmt: skip
    assert [(h["action"], h["actor"]) for h in history] == [
        ("apply_payment_plan", "party"), ("refuse_payment_plan", "chen"),
        ("apply_payment_plan", "wang"), ("approve_payment_plan", "chen")]  # fmt: skip
    # past the 15th day the plan is not late; the first instalment is paid on its day
    w.clock.now = dt.datetime.combine(first, dt.time(10), POLICY.tz)
    paid = Payment("P-1", number, 1_000_00, first)
    assert (await import_payments(pool, [paid], "bank.csv", w.clock.now)).imported == 1
    with pytest.raises(TransitionRefused, match=r"尚欠 1500\.00 元"):
        await w.act("small", "close", WANG)  # the second instalment is not paid
    # the second is 3 days late: 1,500 × 3 % × 3 = 135 yuan (Art. 72 (1))
    late = second + dt.timedelta(days=3)
    w.clock.now = dt.datetime.combine(late, dt.time(10), POLICY.tz)
    await Accounts(pool).create("chen", ["head"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "chen")
        page = await client.get(f"/cases/{cid}")
        assert 'id="payment-schedule"' in page.text and "已批准（chen" in page.text
        assert f"<time>{second}</time> 缴纳罚款第2期 1500.00 元" in page.text
        assert "尚欠 1635.00 元（含加处罚款 135.00 元）" in page.text
        assert "缴纳罚款（决定书送达之日起十五日）" not in page.text
        assert "缴款期限按经批准的缴纳计划" in page.text
    async with client_of(console) as client:  # the party sees the plan and what is due
        await find(client, "湘A12345", code)
        page = await client.get("/party/case")
        assert "按经批准的缴纳计划" in page.text and 'id="payment-schedule"' in page.text
        assert "1635.00 元（含加处罚款 135.00 元）" in page.text
    rest = Payment("P-2", number, 1_635_00, late)
    assert (await import_payments(pool, [rest], "bank.csv", w.clock.now)).imported == 1
    assert await w.act("small", "close", WANG) == ["closed"]


async def test_no_court_enforcement_while_a_deferral_is_not_yet_due(world: World) -> None:
    # 行政强制法 Art. 53 after the 6 months to sue (行政诉讼法 Art. 46): not while the payment
    # the head approved for later is not due yet; once it is missed, the court may be asked
    w = world
    await decided_and_served(w, app_of(w))
    served_on = local(w)
    deferred = add_months(served_on, 8)
    await w.act("small", "apply_payment_plan", WANG, payload={
        "kind": "defer", "instalments": f"{deferred} 2500", "grounds": "住院治疗"})  # fmt: skip
    await w.act("small", "approve_payment_plan", CHEN, reason="属实")
    w.clock.now = dt.datetime.combine(add_months(served_on, 7), dt.time(10), POLICY.tz)
    with pytest.raises(TransitionRefused, match="缴纳计划尚无逾期未缴"):
        await w.act("small", "apply_enforcement", CHEN, reason="逾期未缴")
    w.clock.now = dt.datetime.combine(deferred + dt.timedelta(days=1), dt.time(10), POLICY.tz)
    assert await w.act("small", "apply_enforcement", CHEN, reason="逾期未缴") == ["decided"]
