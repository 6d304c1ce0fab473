"""延期 / 分期缴纳罚款 (issue #25 must-have 8): 行政处罚法 Art. 66 (2): 当事人确有经济困难，需要
延期或者分期缴纳罚款的，经当事人申请和行政机关批准，可以暂缓或者分期缴纳.

The party applies (its page) or an officer records an application received offline; the 负责人
approves or refuses it with a reason. An approved plan's due days replace the decision's one
(15 days from service): the late fee (Art. 72 (1)) runs from each missed instalment
(:func:`cases.payments.instalments`), and the case closes only when every one is paid.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from sinks.lifecycle import Step, TransitionRefused

PLAN_KINDS = {"defer": "延期缴纳", "instalments": "分期缴纳"}
MAX_INSTALMENTS = 36


def parse_instalments(text: str) -> list[tuple[dt.date, int]] | str:
    """Lines of ``YYYY-MM-DD amount`` (yuan) as the forms take them, or why not (Chinese)."""
    out = []
    for n, line in enumerate((x for x in text.splitlines() if x.strip()), start=1):
        parts = line.replace("，", " ").replace(",", " ").split()
        if len(parts) != 2:
            return f"第{n}行应为“日期 金额”，如 2027-03-01 500"
        try:
            day = dt.date.fromisoformat(parts[0])
            amount = Decimal(parts[1])
            if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                raise InvalidOperation
        except (ValueError, InvalidOperation):
            return f"第{n}行的日期或金额有误：{line.strip()}"
        out.append((day, int(amount * 100)))
    return out


def plan_problem(kind: str, parts: list[tuple[dt.date, int]], fine_fen: int,
                 today: dt.date) -> str | None:  # fmt: skip
    """Why an application cannot be taken as it is, or None."""
    if kind not in PLAN_KINDS:
        return "请选择延期缴纳或分期缴纳"
    if not parts:
        return "请填写缴纳日期和金额"
    if kind == "defer" and len(parts) != 1:
        return "延期缴纳只有一个缴纳日期（全部罚款）"
    if kind == "instalments" and not 2 <= len(parts) <= MAX_INSTALMENTS:
        return f"分期缴纳应分为 2 至 {MAX_INSTALMENTS} 期"
    days = [d for d, _ in parts]
    if days != sorted(set(days)):
        return "各期缴纳日期应逐期推后"
    if days[0] <= today:
        return "缴纳日期应在今日之后"
    if sum(a for _, a in parts) != fine_fen:
        return f"各期金额合计应等于罚款 {fine_fen / 100:.2f} 元"
    return None


async def approved_plan(conn: Any, case_id: str) -> list[tuple[dt.date | None, int]]:
    """The approved plan's instalments (due day, fen), or [] (the decision's own due day)."""
    raw = await conn.fetchval(
        "SELECT instalments FROM payment_plans WHERE case_id = $1 AND status = 'approved'",
        case_id,
    )
    return [(dt.date.fromisoformat(i["due"]), i["amount_fen"]) for i in json.loads(raw or "[]")]


async def apply_plan(step: Step) -> dict[str, Any]:
    """payload: kind (defer | instalments), instalments (lines of "YYYY-MM-DD amount"),
    grounds (the 经济困难). The decided fine must still be owed in full."""
    cid, pay = step.case.case_id, step.request.payload
    d = await step.conn.fetchrow(
        "SELECT decision_no, fine_cny, enforcement_applied_on FROM penalty_decisions"
        " WHERE case_id = $1", cid)  # fmt: skip
    if d is None or not d["fine_cny"]:
        raise TransitionRefused("本案没有罚款决定，无须申请延期或分期缴纳", cid)
    if d["enforcement_applied_on"] is not None:
        raise TransitionRefused("已申请人民法院强制执行", cid)
    grounds = str(pay.get("grounds") or "").strip()
    if not grounds:
        raise TransitionRefused("请写明确有经济困难的情况（行政处罚法第六十六条）", cid)
    parts = parse_instalments(str(pay.get("instalments") or ""))
    if isinstance(parts, str):
        raise TransitionRefused(parts, cid)
    kind = str(pay.get("kind") or "")
    today = step.now.astimezone(step.lifecycle.policy.tz).date()
    if (problem := plan_problem(kind, parts, d["fine_cny"] * 100, today)) is not None:
        raise TransitionRefused(problem, cid)
    open_ = await step.conn.fetchval(
        "SELECT status FROM payment_plans WHERE case_id = $1 AND status <> 'refused'", cid)  # fmt: skip
    if open_ is not None:
        raise TransitionRefused("已有" + ("待审批的申请" if open_ == "applied" else "批准的缴纳计划"),
                                cid)  # fmt: skip
    rows = [{"due": day.isoformat(), "amount_fen": fen} for day, fen in parts]
    await step.conn.execute(
        "INSERT INTO payment_plans (case_id, kind, instalments, grounds, applied_by, applied_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        cid, kind, json.dumps(rows), grounds[:4000], step.request.actor.name, step.now,
    )  # fmt: skip
    return {"kind": kind, "instalments": rows}


async def decide_plan(step: Step) -> dict[str, Any]:
    """The head approves (``approve_payment_plan``) or refuses the open application; the
    reason is the transition's."""
    cid = step.case.case_id
    status = "approved" if step.request.action == "approve_payment_plan" else "refused"
    plan = await step.conn.fetchrow(
        "UPDATE payment_plans SET status = $2, decided_by = $3, decided_at = $4,"
        " decision_reason = $5 WHERE case_id = $1 AND status = 'applied'"
        " RETURNING plan_id, kind, instalments",
        cid, status, step.request.actor.name, step.now, step.request.reason or "",
    )  # fmt: skip
    if plan is None:
        raise TransitionRefused("没有待审批的延期或分期缴纳申请", cid)
    return {"plan_id": plan["plan_id"], "status": status, "kind": plan["kind"],
            "instalments": json.loads(plan["instalments"])}  # fmt: skip
