"""The general procedure (一般程序) on top of the lifecycle's table: 立案 and its 90 days, the
party, and the service (送达) of documents, as transitions and effects the lifecycle runs.

``sinks.lifecycle`` owns the machine and the states; this module extends its table (the way
its docstring provides: ``Lifecycle(transitions=…, effects=…)``) with what needs the working-day
calendar and the vehicle-owner source:

- ``confirm`` opens the case (立案): the day, the decision's last day (Art. 60: 90 days), and
  the party from the owner source.
- ``correct_party`` (an officer, with a reason) before the notice is issued.
- ``issue_notice`` refuses a case without a party, and writes the party into the notice.
- ``serve_notice`` records the service of the notice (method, day, who, recipient) and sets its
  deadlines from the day of service (Art. 85 through :func:`cases.calendar.deadline`); a case is
  never decided without it (``sinks.lifecycle.party_heard``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import asyncpg
from pydantic import ValidationError

from events import OffsiteError
from sinks.accounts import HEAD, OFFICER, PARTY
from sinks.lifecycle import (
    EFFECTS,
    TRANSITIONS,
    Context,
    CustodyLog,
    Effect,
    Lifecycle,
    Policy,
    Step,
    Transition,
    TransitionRefused,
    issue_notice,
)

from .art37 import Rejudge
from .hearing import HEARING_NOTICE, schedule_hearing, too_soon
from .party import OwnerSource, Party
from .payments import PAYMENT_DAYS, Decisions
from .plans import apply_plan, decide_plan

DECISION_DAYS = 90  # 行政处罚法 Art. 60: 自行政处罚案件立案之日起九十日内作出行政处罚决定
# 民事诉讼法 (2021) Art. 95: 公告送达，自发出公告之日起，经过三十日，即视为送达
PUBLIC_NOTICE_DAYS = 30

SERVICE_METHODS: dict[str, str] = {
    "direct": "直接送达",
    "left": "留置送达",
    "post": "邮寄送达",
    "electronic": "电子送达",
    "public": "公告送达",
}
DOCUMENTS: dict[str, str] = {"notice": "违法行为通知书", "hearing_notice": "听证通知书",
                             "decision": "行政处罚决定书"}  # fmt: skip

_OFFICER = frozenset({OFFICER})


def has_statement(ctx: Context) -> str | None:
    """The party stated their case (online, or recorded by an officer)."""
    stated = any(p.action in ("submit_statement", "record_statement") for p in ctx.history)
    return None if stated else "本案没有当事人的陈述、申辩"


# the party can be corrected until the notice names it; after that only by a new notice
BEFORE_NOTICE = frozenset({"confirmed", "legal_review", "approved", "sent_back", "amended"})

PROCEDURE: tuple[Transition, ...] = (
    Transition("correct_party", "更正当事人信息", BEFORE_NOTICE, None, _OFFICER, "required",
               effect="correct_party"),
    Transition("serve_notice", "登记送达（违法行为通知书）",
               frozenset({"notice_issued", "statement_received"}), None, _OFFICER,
               "optional", effect="serve_notice"),
    # 复核 (行政处罚法 Art. 45): the agency's reply to one of the party's statements, which the
    # party reads on their page under it
    Transition("reply_statement", "复核意见（答复陈述申辩）",
               frozenset({"statement_received", "hearing_requested", "heard"}), None, _OFFICER,
               guards=(has_statement,), effect="reply_statement"),
    Transition("serve_decision", "登记送达（行政处罚决定书）", frozenset({"decided"}), None,
               _OFFICER, "optional", effect="serve_decision"),
    Transition("apply_enforcement", "申请人民法院强制执行", frozenset({"decided"}), None,
               frozenset({HEAD}), "required", effect="apply_enforcement"),
    # 延期 / 分期缴纳 (Art. 66 (2); cases/plans.py): the party applies, or an officer records
    # an application received offline; the head approves or refuses it with a reason
    Transition("apply_payment_plan", "申请延期或分期缴纳罚款", frozenset({"decided"}), None,
               frozenset({PARTY, OFFICER}), effect="apply_payment_plan"),
    Transition("approve_payment_plan", "批准延期或分期缴纳", frozenset({"decided"}), None,
               frozenset({HEAD}), "required", effect="decide_payment_plan"),
    Transition("refuse_payment_plan", "不予批准延期或分期缴纳", frozenset({"decided"}), None,
               frozenset({HEAD}), "required", effect="decide_payment_plan"),
)  # fmt: skip
# the lifecycle's transitions that write the decision or check it (cases/payments.py)
DECISION_EFFECTS = {"decide": "record_decision", "decide_no_penalty": "record_decision",
                    "close": "close_case"}  # fmt: skip


def _local_today(step: Step) -> dt.date:
    return step.now.astimezone(step.lifecycle.policy.tz).date()


async def party_of(conn: Any, case_id: str) -> Party | None:
    row = await conn.fetchrow(
        "SELECT kind, name, id_number, address, phone, e_service_consent FROM case_parties"
        " WHERE case_id = $1",
        case_id,
    )
    return Party.model_validate(dict(row)) if row is not None else None


async def _write_party(conn: Any, case_id: str, party: Party, source: str, actor: str,
                       now: dt.datetime) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO case_parties (case_id, kind, name, id_number, address, phone,"
        " e_service_consent, source, updated_by, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (case_id) DO UPDATE SET"
        " kind = EXCLUDED.kind, name = EXCLUDED.name, id_number = EXCLUDED.id_number,"
        " address = EXCLUDED.address, phone = EXCLUDED.phone,"
        " e_service_consent = EXCLUDED.e_service_consent, source = EXCLUDED.source,"
        " updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at",
        case_id, party.kind, party.name, party.id_number.upper(), party.address, party.phone,
        party.e_service_consent, source, actor, now,
    )  # fmt: skip


# the 复核意见's conclusion (Art. 45: 当事人提出的事实、理由或者证据成立的，行政机关应当采纳)
ADOPTION: dict[str, str] = {"adopted": "采纳", "not_adopted": "不予采纳"}


async def reply_statement(step: Step) -> dict[str, Any]:
    """payload: statement_id, adopted (``ADOPTION``), opinion: the 复核意见 on one of the case's
    statements (Art. 45: "对当事人提出的事实、理由和证据，应当进行复核"), kept on the statement
    (the last one counts) and in the transition's detail. A statement adopted calls for the
    head's next step (不予处罚, 撤销立案, a lighter decision); this records the review only."""
    cid, payload = step.case.case_id, step.request.payload
    opinion = str(payload.get("opinion") or "").strip()
    adopted = str(payload.get("adopted") or "")
    sid = str(payload.get("statement_id") or "")
    if not sid.isdigit() or not await step.conn.fetchval(
        "SELECT true FROM statements WHERE case_id = $1 AND statement_id = $2", cid, int(sid)
    ):
        raise TransitionRefused("请选择本案的一份陈述、申辩", cid)
    if adopted not in ADOPTION:
        raise TransitionRefused("请选择复核结论：采纳或不予采纳", cid)
    if not opinion:
        raise TransitionRefused("请填写复核意见（采纳或不予采纳的理由）", cid)
    await step.conn.execute(
        "UPDATE statements SET review_adopted = $3, review_opinion = $4, reviewed_by = $5,"
        " reviewed_at = $6 WHERE case_id = $1 AND statement_id = $2",
        cid, int(sid), adopted == "adopted", opinion, step.request.actor.name, step.now,
    )  # fmt: skip
    return {"statement_id": int(sid), "adopted": adopted, "opinion": opinion}


class Procedure:
    """The effects of the procedure, bound to the vehicle-owner source."""

    def __init__(self, owners: OwnerSource | None, payment_code: str = "",
                 rejudge: Rejudge | None = None) -> None:  # fmt: skip
        self.owners = owners
        self.decisions = Decisions(payment_code, rejudge)

    def effects(self) -> dict[str, Effect]:
        return {"open_case": self.open_case, "correct_party": self.correct_party,
                "issue_notice_to_party": self.issue_notice, "serve_notice": self.serve_notice,
                "serve_decision": self.serve_decision, "record_decision": self.decisions.record,
                "close_case": self.decisions.close,
                "apply_enforcement": self.decisions.apply_enforcement,
                "reply_statement": reply_statement, "apply_payment_plan": apply_plan, "decide_payment_plan": decide_plan,
                "schedule_hearing": lambda step: schedule_hearing(step, _local_today(step)),
                "serve_hearing_notice": self.serve_hearing_notice}  # fmt: skip

    async def open_case(self, step: Step) -> dict[str, Any]:
        """立案: the day, the decision's last day, and the party from the owner source. A case
        confirmed again (after a re-decision sent it back) keeps its first 立案 day."""
        cid, today = step.case.case_id, _local_today(step)
        due = step.lifecycle.policy.due(today, DECISION_DAYS)
        filed = await step.conn.fetchval(
            "INSERT INTO case_files (case_id, filed_at, filed_by, decision_due,"
            " decision_due_provisional) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (case_id) DO NOTHING RETURNING decision_due",
            cid, step.now, step.request.actor.name, due.due, due.provisional,
        )  # fmt: skip
        detail: dict[str, Any] = {}
        if filed is not None:
            detail.update(filed_on=today.isoformat(), decision_due=due.due.isoformat())
        if await party_of(step.conn, cid) is None and step.case.plate and self.owners:
            color = await step.conn.fetchval(
                "SELECT plate_color FROM cases WHERE case_id = $1", cid
            )
            source = getattr(self.owners, "name", type(self.owners).__name__)
            try:
                party = await self.owners.owner(step.case.plate, color)
                unknown = None if party else f"{source}无此车辆（{step.case.plate}）的所有人"
            except OffsiteError as exc:  # the source failed: never a guessed party
                party, unknown = None, str(exc)
                detail["party_source_error"] = unknown
            await step.conn.execute(
                "UPDATE case_files SET party_unknown = $2 WHERE case_id = $1", cid, unknown
            )
            if party is not None:
                await _write_party(step.conn, cid, party, source, step.request.actor.name,
                                   step.now)  # fmt: skip
                detail["party"] = {"kind": party.kind, "name": party.name}
        return detail

    async def correct_party(self, step: Step) -> dict[str, Any]:
        """payload: the party's fields. The old and new party are kept in party_corrections."""
        cid = step.case.case_id
        try:
            new = Party.model_validate(dict(step.request.payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = str(first.get("ctx", {}).get("error") or first["msg"])
            raise TransitionRefused(f"当事人信息有误{f'（{where}）' if where else ''}：{msg}",
                                    cid) from exc  # fmt: skip
        old = await party_of(step.conn, cid)
        await _write_party(step.conn, cid, new, "officer", step.request.actor.name, step.now)
        await step.conn.execute(
            "INSERT INTO party_corrections (case_id, old_party, new_party, reason, actor, at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            cid, old.model_dump_json() if old else None, new.model_dump_json(),
            step.request.reason or "", step.request.actor.name, step.now,
        )  # fmt: skip
        return {"old": old.model_dump() if old else None, "new": new.model_dump()}

    async def issue_notice(self, step: Step) -> dict[str, Any]:
        """The notice names the party (Art. 44, 59 (1)) and two officers with their 执法证号
        (Art. 42; payload ``officers``: their user names): without them, no notice."""
        party = await party_of(step.conn, step.case.case_id)
        if party is None:
            raise TransitionRefused("尚未确定当事人：请先录入当事人信息", step.case.case_id)
        officers = await named_officers(step.conn, step.request.payload.get("officers"))
        if isinstance(officers, str):
            raise TransitionRefused(officers, step.case.case_id)
        doc = {**dict(step.request.payload.get("document") or {}), "officers": officers,
               "party": {**party.model_dump(), "kind_zh": party.kind_zh}}  # fmt: skip
        request = replace(step.request, payload={**step.request.payload, "document": doc})
        return await issue_notice(replace(step, request=request))

    async def serve_notice(self, step: Step) -> dict[str, Any]:
        """payload: method, served_on (the day the recipient got it; 公告: published_on),
        served_by, recipient, tracking_no (邮寄), witnesses (留置). The notice's deadlines run
        from the day of service (民法典 Art. 201: from the next day)."""
        cid, p = step.case.case_id, step.lifecycle.policy
        notice = await step.conn.fetchrow(
            "SELECT notice_no, issued_at, served_on, document FROM violation_notices"
            " WHERE case_id = $1",
            cid,
        )
        record = await _service(step, notice, "违法行为通知书", "issued_at")
        doc = json.loads(notice["document"])
        served_on = record["served_on"]
        statement = p.due(served_on, int(doc.get("statement_days") or p.statement_days))
        hearing = p.due(served_on, int(doc["hearing_days"])) if doc.get("hearing_days") else None
        provisional = statement.provisional or bool(hearing and hearing.provisional)
        await _insert_service(step, "notice", notice["notice_no"], record)
        await step.conn.execute(
            "UPDATE violation_notices SET served_on = $2, statement_due = $3, hearing_due = $4,"
            " deadlines_provisional = $5 WHERE case_id = $1",
            cid, served_on, statement.due, hearing.due if hearing else None, provisional,
        )  # fmt: skip
        return {"document": "notice", "document_no": notice["notice_no"],
                "method": record["method"], "served_on": served_on.isoformat(),
                "served_by": record["served_by"], "recipient": record["recipient"],
                "statement_due": statement.due.isoformat(),
                "hearing_due": hearing.due.isoformat() if hearing else None,
                "deadlines_provisional": provisional, **record["detail"]}  # fmt: skip

    async def serve_hearing_notice(self, step: Step) -> dict[str, Any]:
        """The 听证通知书's service (payload as for the notice): refused when the hearing it
        names is not at least 7 working days after the day of service (Art. 64 (2), 85)."""
        cid, p = step.case.case_id, step.lifecycle.policy
        h = await step.conn.fetchrow(
            "SELECT notice_no, held_at, issued_at, served_on FROM hearing_notices"
            " WHERE case_id = $1", cid)  # fmt: skip
        record = await _service(step, h, "听证通知书", "issued_at")
        why = too_soon(step, record["served_on"], h["held_at"].astimezone(p.tz).date())
        if why is not None:
            raise TransitionRefused(f"{why}；请重新制作听证通知书，改定听证日期", cid)
        await _insert_service(step, "hearing_notice", h["notice_no"], record)
        await step.conn.execute("UPDATE hearing_notices SET served_on = $2 WHERE case_id = $1",
                                cid, record["served_on"])  # fmt: skip
        return {"document": "hearing_notice", "document_no": h["notice_no"],
                "method": record["method"], "served_on": record["served_on"].isoformat(),
                **record["detail"]}  # fmt: skip

    async def serve_decision(self, step: Step) -> dict[str, Any]:
        """The 行政处罚决定书's service (payload as for the notice); the 15 days to pay run from
        it (Art. 67 (3)), moved off a rest day by the one calendar."""
        cid, p = step.case.case_id, step.lifecycle.policy
        d = await step.conn.fetchrow(
            "SELECT decision_no, decided_at, served_on, fine_cny FROM penalty_decisions"
            " WHERE case_id = $1", cid)  # fmt: skip
        record = await _service(step, d, "行政处罚决定书", "decided_at")
        served_on = record["served_on"]
        due = p.due(served_on, PAYMENT_DAYS) if d["fine_cny"] else None
        await _insert_service(step, "decision", d["decision_no"], record)
        await step.conn.execute(
            "UPDATE penalty_decisions SET served_on = $2, payment_due = $3 WHERE case_id = $1",
            cid, served_on, due.due if due else None,
        )  # fmt: skip
        return {"document": "decision", "document_no": d["decision_no"],
                "method": record["method"], "served_on": served_on.isoformat(),
                "payment_due": due.due.isoformat() if due else None, **record["detail"]}  # fmt: skip


async def named_officers(conn: Any, names: Any) -> list[dict[str, str]] | str:
    """The case's officers as the documents print them (name, 执法证号), or why they cannot be
    (Chinese). 行政处罚法 Art. 42: "执法人员不得少于两人，法律另有规定的除外"; Art. 55: they show their
    执法证件. ``names``: user names, as a list or one text separated by commas or spaces."""
    if isinstance(names, str):
        names = re.split(r"[,，、;；\s]+", names)
    wanted = sorted({str(n).strip() for n in names or () if str(n).strip()})
    rows = await conn.fetch(
        "SELECT username, display_name, badge_no FROM accounts WHERE username = ANY($1)"
        " AND active AND $2 = ANY(roles) ORDER BY username", wanted, OFFICER)  # fmt: skip
    found = {r["username"]: r for r in rows}
    if unknown := [n for n in wanted if n not in found]:
        return f"没有这名执法人员（或账户已停用）：{'、'.join(unknown)}"
    if len(found) < 2:
        return "执法人员不得少于两人（行政处罚法第四十二条）：请写明至少两名执法人员"
    if missing := [r["display_name"] for r in rows if not (r["badge_no"] or "").strip()]:
        return (f"执法人员{'、'.join(missing)}未登记执法证号，不能制作违法行为通知书"
                "（行政处罚法第四十二条）：请管理员在账户管理中填写")  # fmt: skip
    return [{"username": r["username"], "name": r["display_name"], "badge_no": r["badge_no"]}
            for r in rows]  # fmt: skip


async def _service(
    step: Step, row: Mapping[str, Any] | None, title: str, made: str
) -> dict[str, Any]:
    """The service of a document (``row``: its record, ``made``: the column of the moment it
    was made) as :func:`service_record` checks it, or refused: not made, served already, or
    the record is incomplete."""
    cid = step.case.case_id
    if row is None:
        raise TransitionRefused(f"尚未制作{title}", cid)
    if row["served_on"] is not None:
        raise TransitionRefused(f"{title}已于 {row['served_on']} 送达", cid)
    payload = {**step.request.payload, "reason": step.request.reason}
    record = service_record(payload, await party_of(step.conn, cid),
                            row[made].astimezone(step.lifecycle.policy.tz).date(),
                            _local_today(step))  # fmt: skip
    if isinstance(record, str):
        raise TransitionRefused(record, cid)
    return record


async def _insert_service(
    step: Step, document: str, number: str, record: Mapping[str, Any]
) -> None:
    await step.conn.execute(
        "INSERT INTO service_records (case_id, document, document_no, method, served_on,"
        " served_by, recipient, detail, recorded_by, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        step.case.case_id, document, number, record["method"], record["served_on"],
        record["served_by"], record["recipient"],
        json.dumps(record["detail"], ensure_ascii=False), step.request.actor.name, step.now,
    )  # fmt: skip


def _day(value: object) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None


def service_record(
    payload: Mapping[str, Any], party: Party | None, issued_on: dt.date, today: dt.date
) -> dict[str, Any] | str:
    """The service as recorded, or why it cannot be (Chinese, for the officer). The rules are
    民事诉讼法 (2021) Art. 87–95 as 行政处罚法 Art. 61 refers to them: 留置 with witnesses or a
    recording, 邮寄 on the day the receipt was signed (a tracking number), 电子 only with the
    party's signed consent on file (Art. 61 (2)), 公告 served 30 days after publication."""
    method = str(payload.get("method") or "")
    if method not in SERVICE_METHODS:
        return "请选择送达方式"
    served_by = str(payload.get("served_by") or "").strip()
    recipient = str(payload.get("recipient") or "").strip()
    if not served_by:
        return "请填写送达人"
    detail: dict[str, Any] = {}
    if method == "public":
        published = _day(payload.get("published_on"))
        if published is None or not issued_on <= published <= today:
            return "请填写公告发布日期（不早于通知书制作日，不晚于今日）"
        if not str(payload.get("reason") or "").strip():
            return "公告送达须说明受送达人下落不明或其他方式无法送达的情况"
        detail["published_on"] = published.isoformat()
        served_on = published + dt.timedelta(days=PUBLIC_NOTICE_DAYS)
        recipient = recipient or (party.name if party else "")
    else:
        day = _day(payload.get("served_on"))
        if day is None or not issued_on <= day <= today:
            return "请填写送达日期（不早于通知书制作日，不晚于今日）"
        served_on = day
        if not recipient:
            return "请填写受送达人（签收人）"
    if method == "post":
        tracking = str(payload.get("tracking_no") or "").strip()
        if not tracking:
            return "邮寄送达须填写邮件号码，送达日期为回执上的签收日期"
        detail["tracking_no"] = tracking
    if method == "left":
        witnesses = str(payload.get("witnesses") or "").strip()
        if not witnesses:
            return "留置送达须写明见证人或拍照、录像记录"
        detail["witnesses"] = witnesses
    if method == "electronic":
        if party is None or not party.e_service_consent:
            return "当事人未签署电子送达确认书，不能电子送达（行政处罚法第六十一条）"
        detail["consent"] = party.e_service_consent
    return {"method": method, "served_on": served_on, "served_by": served_by,
            "recipient": recipient, "detail": detail}  # fmt: skip


def procedure_table(
    base: Iterable[Transition] = TRANSITIONS,
) -> tuple[Transition, ...]:
    """The lifecycle's transitions with the procedure's: confirming opens the case (立案), the
    notice names the party, and the service and party records."""
    out = []
    for t in base:
        if t.action == "confirm":
            t = replace(t, effect="open_case")
        elif t.action == "issue_notice":
            t = replace(t, effect="issue_notice_to_party")
        elif t.action in DECISION_EFFECTS:
            t = replace(t, effect=DECISION_EFFECTS[t.action])
        out.append(t)
    return (*out, *PROCEDURE, *HEARING_NOTICE)


def procedure_lifecycle(
    pool: asyncpg.Pool,
    custody: CustodyLog,
    policy: Policy,
    owners: OwnerSource | None,
    payment_code: str = "",
    rejudge: Rejudge | None = None,
    **kw: Any,
) -> Lifecycle:
    """The lifecycle of the general procedure (what the console and every tool use);
    ``payment_code``: the agency's 非税收入 payment code printed on its decisions; ``rejudge``:
    the rules under the baseline of the decision day (Art. 37, cases/art37.py)."""
    effects = {**EFFECTS, **Procedure(owners, payment_code, rejudge).effects()}
    return Lifecycle(pool, custody, policy, transitions=procedure_table(), effects=effects, **kw)
