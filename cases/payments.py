"""The decision's record, the payment (罚缴分离) and closing (issue #25, must-haves 7-9; review B10).

- ``decide`` writes the decision (number, fine, the payment code) into ``penalty_decisions``;
  ``decide_no_penalty`` writes a 不予行政处罚决定 the same way.
- ``serve_decision`` records the service of the 决定书; the 15 days to pay run from it
  (行政处罚法 Art. 67 (3): 当事人应当自收到行政处罚决定书之日起十五日内…缴纳罚款).
- The bank's file comes in through :func:`import_payments` (idempotent by the bank's reference;
  each row matched to its decision or reported).
- ``close`` refuses a decided case until what is owed is paid: the fine and, after the due day,
  加处罚款 of 3 % of the fine a day, never more than the fine (Art. 72 (1)).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from events import OffsiteError, Violation
from sinks.lifecycle import Step, TransitionRefused, document_number

from .art37 import Rejudge, compare, outcome_of
from .plans import approved_plan

PAYMENT_DAYS = 15  # Art. 67 (3)
# 行政诉讼法 Art. 46: 自知道或者应当知道作出行政行为之日起六个月内提出 (the longer remedy period)
LITIGATION_MONTHS = 6
LATE_FEE_PERCENT_A_DAY = 3  # Art. 72 (1): 每日按罚款数额的百分之三加处罚款


class PaymentFileError(OffsiteError):
    """A payment file that cannot be read at all (not one bad row: those are reported)."""


def late_fee_fen(fine_fen: int, due: dt.date | None, day: dt.date) -> int:
    """加处罚款 owed on ``day`` for a fine due on ``due`` (Art. 72 (1)): 3 % of the fine for each
    day after the due day, capped at the fine (加处罚款的数额不得超出罚款的数额). No due day (the
    decision not served yet): nothing is late."""
    if due is None or day <= due:
        return 0
    return min(fine_fen, fine_fen * LATE_FEE_PERCENT_A_DAY * (day - due).days // 100)


@dataclass(frozen=True)
class Payment:
    bank_ref: str
    decision_no: str
    amount_fen: int
    paid_on: dt.date


def _fen(text: str) -> int:
    amount = Decimal(text.strip())
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise InvalidOperation(text)
    return int(amount * 100)


def parse_payments(path: Path) -> tuple[list[Payment], list[str]]:
    """The rows of a bank's file (CSV with a header, or a JSON list), with fields bank_ref,
    decision_no, amount (yuan, two decimals at most), paid_on (YYYY-MM-DD). Returns the rows
    read and one line per row that is not (the row's number and why)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PaymentFileError(f"{path}: cannot read: {exc}") from None
    rows: list[Any]
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PaymentFileError(f"{path}: line {exc.lineno}: not JSON: {exc.msg}") from None
        if not isinstance(rows, list):
            raise PaymentFileError(f"{path}: a JSON list of payments expected")
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    good: list[Payment] = []
    bad: list[str] = []
    for n, row in enumerate(rows, start=1):
        try:
            good.append(payment_of(row))
        except ValueError as exc:
            bad.append(f"{path}: row {n}: {exc}")
    return good, bad


def payment_of(row: Any) -> Payment:
    """One payment as the bank reports it (a row of its file, or the body of its callback);
    ValueError says why it is not one."""
    if not isinstance(row, dict):
        raise ValueError("not an object")
    fields = {k: str(row.get(k) or "").strip() for k in
              ("bank_ref", "decision_no", "amount", "paid_on")}  # fmt: skip
    missing = [k for k, v in fields.items() if not v]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        amount = _fen(fields["amount"])
    except InvalidOperation:
        raise ValueError(f"amount {fields['amount']!r} is not a positive yuan amount") from None
    try:
        paid_on = dt.date.fromisoformat(fields["paid_on"])
    except ValueError:
        raise ValueError(f"paid_on {fields['paid_on']!r} is not YYYY-MM-DD") from None
    return Payment(fields["bank_ref"], fields["decision_no"], amount, paid_on)


@dataclass
class ImportReport:
    imported: int = 0
    already: int = 0  # the bank's reference was imported before: skipped
    unmatched: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.imported} payments imported, {self.already} already imported,"
                f" {len(self.unmatched)} not matched", *self.unmatched]  # fmt: skip


async def import_payments(
    pool: Any, payments: Sequence[Payment], source: str, now: dt.datetime
) -> ImportReport:
    """Each payment matched to its decision by number, stored once (by the bank's reference)."""
    report = ImportReport()
    async with pool.acquire() as conn, conn.transaction():
        known = {r["decision_no"] for r in await conn.fetch(
            "SELECT decision_no FROM penalty_decisions WHERE decision_no = ANY($1)",
            sorted({p.decision_no for p in payments}))}  # fmt: skip
        for p in payments:
            if p.decision_no not in known:  # kept for an officer to see (/payments)
                reason = f"{p.bank_ref}: no decision {p.decision_no}"
                report.unmatched.append(reason)
                await conn.execute(
                    "INSERT INTO unmatched_payments (bank_ref, decision_no, amount_fen, paid_on,"
                    " source, reason, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT (bank_ref) DO NOTHING",
                    p.bank_ref, p.decision_no, p.amount_fen, p.paid_on, source, reason, now,
                )  # fmt: skip
                continue
            done = await conn.fetchval(
                "INSERT INTO payments (bank_ref, decision_no, amount_fen, paid_on, source,"
                " imported_at) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (bank_ref) DO NOTHING RETURNING bank_ref",
                p.bank_ref, p.decision_no, p.amount_fen, p.paid_on, source, now,
            )  # fmt: skip
            if done is None:
                report.already += 1
            else:
                report.imported += 1
                await conn.execute("DELETE FROM unmatched_payments WHERE bank_ref = $1", p.bank_ref)
    return report


# (due day, amount in fen): what falls due when. The decision's one due day (15 days from
# service) for the whole fine, or the instalments of an approved 延期/分期 plan (Art. 66).
Schedule = Sequence[tuple[dt.date | None, int]]


@dataclass(frozen=True)
class Instalment:
    due: dt.date | None
    amount_fen: int
    settled_on: dt.date | None  # the day the payments, in order, covered it
    fee_fen: int  # 加处罚款 on it so far


def instalments(schedule: Schedule, paid: Iterable[tuple[dt.date, int]],
                day: dt.date) -> list[Instalment]:  # fmt: skip
    """Each amount due with the day the payments covered it (payments go to the earliest due
    amount first) and its 加处罚款 to that day, or to ``day`` while it is not covered: 3 % a
    day of the amount from its own due day (Art. 72 (1), with the plan's days in place of the
    15th day: Art. 66 (2)).

    Neither Art. 66 nor Art. 72 says on what an instalment's fee is counted; the overdue
    instalment's amount is taken (not the whole fine), the reading more favourable to the
    party, and the fee in all stays capped at the fine (:func:`owed_fen`)."""
    payments = sorted(paid)
    out, needed = [], 0
    for due, amount in schedule:
        needed += amount
        total, settled = 0, None
        for on, fen in payments:
            total += fen
            if total >= needed:
                settled = on
                break
        end = min(settled, day) if settled else day
        out.append(Instalment(due, amount, settled, late_fee_fen(amount, due, end)))
    return out


def owed_fen(fine_cny: int, due: dt.date | None, paid: Iterable[tuple[dt.date, int]],
             day: dt.date | None = None, plan: Schedule = ()) -> int:  # fmt: skip
    """What is still owed on ``day`` after the payments (day, fen): the fine and its 加处罚款,
    never more than the fine in all (Art. 72 (1)). ``plan``: an approved plan's instalments
    in place of the one due day. No day: the last payment's (nothing paid: the fine)."""
    days = sorted(paid)
    fine = fine_cny * 100
    end = day or (days[-1][0] if days else None)
    if end is None:
        return fine
    parts = instalments(list(plan) or [(due, fine)], days, end)
    fee = min(fine, sum(i.fee_fen for i in parts))
    return max(0, fine + fee - sum(a for _, a in days))


_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def _section(n: int) -> str:
    """0 < n < 10,000 in capitals; a zero between digits is one 零, none at the end."""
    out, zero = "", False
    for unit, place in (("仟", 1000), ("佰", 100), ("拾", 10), ("", 1)):
        d = n // place % 10
        if d == 0:
            zero = zero or bool(out)
        else:
            out += ("零" if zero else "") + _DIGITS[d] + unit
            zero = False
    return out


def amount_in_capitals(fen: int) -> str:
    """An amount in 中文大写 as a payment document writes it, after 中国人民银行《支付结算办法》
    附件一《正确填写票据和结算凭证的基本规定》: 元 then 整 when there are no 角 and 分; a zero between
    digits, or several, is one 零; 壹拾 in full. 2500 元 → 贰仟伍佰元整."""
    if fen < 0:
        raise ValueError(f"no amount in capitals for {fen} fen")
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    sections = []
    while yuan:
        yuan, part = divmod(yuan, 10_000)
        sections.append(part)
    out, gap = "", False
    for i in reversed(range(len(sections))):
        part = sections[i]
        if part == 0:
            gap = gap or bool(out)
            continue
        out += ("零" if out and (gap or part < 1000) else "") + _section(part) + ("", "万", "亿")[i]
        gap = False
    if jiao == 0 and cents == 0:
        return (out or "零") + "元整"
    if out:  # 元位是0 or 角位是0: one 零 after 元 (the rule's examples)
        out += "元" + ("零" if jiao == 0 or fen // 100 % 10 == 0 else "")
    if jiao:
        out += _DIGITS[jiao] + "角"
    return out + (_DIGITS[cents] + "分" if cents else "")


def yuan_text(yuan: int) -> str:
    """A fine as the notice and the decision state it: 2500元（贰仟伍佰元整） (review D.10)."""
    return f"{yuan}元（{amount_in_capitals(yuan * 100)}）"


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later (the month's last day when it has no such day)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


class Decisions:
    """The effects of the decision, the service of its 决定书 and closing."""

    def __init__(self, payment_code: str = "", rejudge: Rejudge | None = None) -> None:
        self.payment_code, self.rejudge = payment_code, rejudge

    async def _art37(self, step: Step) -> tuple[int | None, str | None]:
        """The fine under Art. 37 (从旧兼从轻) and the comparison for the trace; refuses a
        decision at the old fine when the rules in force today are lighter without a fine."""
        fine = step.case.fine_cny
        if self.rejudge is None or not step.row.get("violation"):
            return fine, None
        try:
            old = Violation.model_validate_json(step.row["violation"])
        except ValidationError:  # a waterway case: no baseline decides it
            return fine, None
        day = step.now.astimezone(step.lifecycle.policy.tz).date()
        new = await self.rejudge(old, day)
        # the proposal as the notice in force told it (an amended one: review A3)
        told = replace(outcome_of(old), outcome=step.case.outcome, fine_cny=fine)
        c = compare(told, outcome_of(new) if new else None, day)
        if c.applies == "old":
            return fine, c.trace
        if c.applies == "new" and new is not None and new.outcome == "fine":
            return new.fine_cny, c.trace
        raise TransitionRefused(f"{c.trace}：不能按原处罚作出决定，请重新审核或作出不予行政处罚决定",
                                step.case.case_id)  # fmt: skip

    async def record(self, step: Step) -> dict[str, Any]:
        cid, p = step.case.case_id, step.lifecycle.policy
        penalty = step.request.action == "decide"
        year = step.now.astimezone(p.tz).year
        # numbered like the notice: the agency's code, the year, from 1 each year (review D.11)
        prefix = p.decision_prefix or f"{p.notice_prefix}罚"
        number = await document_number(step.conn, "decision", prefix, year)
        fine, trace = await self._art37(step) if penalty else (None, None)
        doc = {"decision_no": number, "kind": "penalty" if penalty else "no_penalty",
               "fine_cny": fine, "payment_ref": self.payment_code or None, "art37": trace,
               "reason_code": step.request.reason_code, "reason": step.request.reason,
               # the decision says the party's statements were heard and reviewed (Art. 45)
               "statement": bool(await step.conn.fetchval(
                   "SELECT count(*) FROM statements WHERE case_id = $1", cid))}  # fmt: skip
        await step.conn.execute(
            "INSERT INTO penalty_decisions (case_id, decision_no, kind, fine_cny, payment_ref,"
            " decided_at, decided_by, document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            cid, number, doc["kind"], fine, doc["payment_ref"], step.now,
            step.request.actor.name, json.dumps(doc, ensure_ascii=False),
        )  # fmt: skip
        return {"decision_no": number, "fine_cny": fine, "art37": trace}

    async def _owed(self, step: Step) -> tuple[Any, list[tuple[dt.date, int]], int]:
        cid = step.case.case_id
        d = await step.conn.fetchrow(
            "SELECT decision_no, fine_cny, payment_due, served_on, enforcement_applied_on"
            " FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
        if d is None:
            raise TransitionRefused("本案没有行政处罚决定书", cid)
        paid = [(r["paid_on"], r["amount_fen"]) for r in await step.conn.fetch(
            "SELECT paid_on, amount_fen FROM payments WHERE decision_no = $1",
            d["decision_no"])]  # fmt: skip
        if not d["fine_cny"]:
            return d, paid, 0
        plan = await approved_plan(step.conn, cid)  # 延期/分期 (Art. 66 (2)): every instalment
        return d, paid, owed_fen(d["fine_cny"], d["payment_due"], paid, plan=plan)

    async def apply_enforcement(self, step: Step) -> dict[str, Any]:
        """申请人民法院强制执行 (行政强制法 Art. 53): the decision served, the fine not paid, and
        the remedy periods over (6 months from service: 行政诉讼法 Art. 46)."""
        cid = step.case.case_id
        d, paid, owed = await self._owed(step)
        today = step.now.astimezone(step.lifecycle.policy.tz).date()
        if d["served_on"] is None:
            raise TransitionRefused("行政处罚决定书尚未送达", cid)
        if not owed:
            raise TransitionRefused("罚款已缴清，无须申请强制执行", cid)
        plan = await approved_plan(step.conn, cid)
        if plan and not any(i.settled_on is None and i.due and i.due < today
                            for i in instalments(plan, paid, today)):  # fmt: skip
            raise TransitionRefused("经批准的缴纳计划尚无逾期未缴的一期，不能申请强制执行", cid)
        end = add_months(d["served_on"], LITIGATION_MONTHS)
        if today <= end:
            raise TransitionRefused(f"申请行政复议、提起行政诉讼的期限至 {end} 届满，届满后方可申请"
                                    "人民法院强制执行", cid)  # fmt: skip
        await step.conn.execute(
            "UPDATE penalty_decisions SET enforcement_applied_on = $2 WHERE case_id = $1",
            cid, today)  # fmt: skip
        return {"decision_no": d["decision_no"], "owed_fen": owed}

    async def close(self, step: Step) -> dict[str, Any]:
        """结案 of a decided case only when what is owed is paid, or the court was asked to
        enforce it (B10; must-have 9)."""
        cid = step.case.case_id
        d, paid, owed = await self._owed(step)
        if not d["fine_cny"]:
            return {"decision_no": d["decision_no"]}
        if owed and d["enforcement_applied_on"] is not None:
            return {"decision_no": d["decision_no"], "owed_fen": owed,
                    "enforcement_applied_on": d["enforcement_applied_on"].isoformat()}  # fmt: skip
        if owed:
            raise TransitionRefused(
                f"罚款（含加处罚款）尚欠 {owed / 100:.2f} 元，未缴清不能结案", cid)  # fmt: skip
        return {"decision_no": d["decision_no"], "paid_fen": sum(a for _, a in paid)}
