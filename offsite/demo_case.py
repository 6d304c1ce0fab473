"""The demo's road case through the general procedure, as the console takes it: 立案 by an
officer, the notice issued and served, an offline statement, the 负责人's decision, its service,
the bank's payment file through `payments import`, and 结案. Every step is the console's own
call (``Lifecycle.apply`` with the same actions and payloads as the case page's forms); the
signed PDFs are written to a folder under var/.

The procedure's periods run in days, so the demo runs it on a clock of its own that it moves
forward, from the day after the pass (23 days ago) to the day after the statement period: every
step is dated in the past and no period is cut short.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cases.payments import import_payments, parse_payments
from console.notice import load_notice, notice_document, notice_pdf
from console.procedure import (
    closing_values,
    decision_values,
    document_pdf,
    receipt_values,
)
from evidence.custody import read_log
from sinks.accounts import HEAD, OFFICER
from sinks.lifecycle import Actor
from sinks.lifecycle import Request as Action

from .config import Settings

OFFICER_ACTOR = Actor("wang", frozenset({OFFICER}))  # the demo's accounts (offsite.demo)
HEAD_ACTOR = Actor("chen", frozenset({HEAD}))
# a fictional party when the owner source does not know the simulated plate (configs/owners.yaml)
DEMO_PARTY = {"kind": "organization", "name": "湖南示例物流有限公司",
              "id_number": "91430100MA4L00000F", "address": "湖南省长沙市示例区示例路1号"}  # fmt: skip


@dataclass
class MovingClock:
    """The demo's procedure clock: a time the demo moves forward, never the wall clock."""

    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now

    def to_day(self, day: dt.date, tz: dt.tzinfo) -> None:
        self.now = max(self.now, dt.datetime.combine(day, dt.time(10), tz))


async def walk_case(settings: Settings, case_id: str, passed: dt.datetime, out: Path,
                    officers: tuple[str, str] = ("wang", "li")) -> list[Path]:  # fmt: skip
    """Take ``case_id`` (a road case awaiting review) from 立案 to 结案, the notice naming
    ``officers`` (two accounts with a 执法证号, Art. 42); its documents' PDFs in ``out``, in the
    order they were made. The closed case is filed (电子案卷) as the console files it."""
    from .console import open_console

    # the walk's days start after the pass and after the evidence package's last custody entry
    # (made when the pipeline ran): a custody log's times never go back
    log = read_log(settings.evidence.dir / case_id)
    touched = max((dt.datetime.fromisoformat(e["ts"]) for e in log), default=passed)
    clock = MovingClock(max(passed + dt.timedelta(days=1), touched + dt.timedelta(minutes=1)))
    c, store = await open_console(settings, clock)
    tz = c.lifecycle.policy.tz
    out.mkdir(parents=True, exist_ok=True)

    def today() -> dt.date:
        return clock.now.astimezone(tz).date()

    async def act(action: str, actor: Actor, **kw: object) -> None:
        await c.lifecycle.apply(case_id, Action(action, actor, **kw))  # type: ignore[arg-type]

    def served(**kw: str) -> dict[str, str]:
        return {"method": "direct", "served_on": today().isoformat(), "served_by": "王警官、李警官",
                "recipient": "当事人的委托代理人", **kw}  # fmt: skip

    async def write(name: str, pdf: bytes) -> None:
        (out / name).write_bytes(pdf)
        written.append(out / name)
        await c.lifecycle.record(case_id, "exported", OFFICER_ACTOR.name, f"demo {name}")

    written: list[Path] = []
    try:
        await act("confirm", OFFICER_ACTOR)
        if not await c.pool.fetchval("SELECT 1 FROM case_parties WHERE case_id = $1", case_id):
            await act("correct_party", OFFICER_ACTOR, reason="车辆所有人信息来源未登记，按行驶证登记",
                      payload=DEMO_PARTY)  # fmt: skip
        await act("issue_notice", OFFICER_ACTOR,
                  payload={"document": await notice_document(c, case_id),
                           "officers": list(officers)})  # fmt: skip
        await act("serve_notice", OFFICER_ACTOR, payload=served())
        notice = await load_notice(c, case_id)
        assert notice is not None  # issued just now
        await write("1-violation-notice.pdf", await notice_pdf(c, notice))
        sid = await c.pool.fetchval(
            "SELECT max(service_id) FROM service_records WHERE case_id = $1", case_id)  # fmt: skip
        receipt = await receipt_values(c, case_id, sid)
        await write("2-notice-receipt.pdf", await document_pdf("receipt.html", c.sealer, **receipt or {}))  # fmt: skip
        clock.now += dt.timedelta(days=2)
        await act("record_statement", OFFICER_ACTOR,
                  payload={"body": "邮寄：车辆当日临时替班运输，请求从轻处理。"})  # fmt: skip
        # its 复核意见 (Art. 45): no decision before every statement has one
        sid = await c.pool.fetchval(
            "SELECT max(statement_id) FROM statements WHERE case_id = $1", case_id)  # fmt: skip
        await act("reply_statement", OFFICER_ACTOR, payload={
            "statement_id": str(sid), "adopted": "not_adopted",
            "opinion": "临时替班运输不影响超限运输的事实，已按裁量基准的最低档次拟处罚"})  # fmt: skip
        # the statement period over (its last day as the calendar computed it), the head decides
        due = await c.pool.fetchval(
            "SELECT statement_due FROM violation_notices WHERE case_id = $1", case_id)  # fmt: skip
        clock.to_day(due + dt.timedelta(days=1), tz)
        await act("decide", HEAD_ACTOR, reason="事实清楚，证据确凿，陈述理由不成立")
        await act("serve_decision", OFFICER_ACTOR, payload=served())
        values = await decision_values(c, case_id)
        assert values is not None  # decided just now
        await write("3-decision.pdf", await document_pdf("decision.html", c.sealer, **values))
        # the bank's file, through `offsite payments import` (the same parse and import)
        d = values["d"]
        bank = out / "bank-payments.csv"
        bank.write_text("bank_ref,decision_no,amount,paid_on\n"
                        f"DEMO-{case_id[:8]},{d['decision_no']},"
                        f"{d['fine'].replace(',', '')}.00,{today()}\n", encoding="utf-8")  # fmt: skip
        rows, bad = parse_payments(bank)
        report = await import_payments(c.pool, rows, bank.name, clock.now)
        if bad or report.unmatched:
            raise RuntimeError(f"the demo's bank file did not match: {bad or report.lines()}")
        await act("close", OFFICER_ACTOR)
        closing = await closing_values(c, case_id)
        await write("4-closing-report.pdf", await document_pdf("closing.html", c.sealer, **closing or {}))  # fmt: skip
        if c.on_closed is not None:  # the 电子案卷, as a close on the console makes it
            await c.on_closed(case_id)
    finally:
        await store.close()
    return written
