"""The general procedure on the case page: 立案 and its 90 days, the party, the service of the
notice and its 送达回证 (service receipt) as HTML and PDF. The rules and deadlines are
``cases.procedure``'s; this module reads them, fills the forms and renders."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cases.party import PARTY_KINDS
from cases.payments import instalments, owed_fen, yuan_text
from cases.plans import PLAN_KINDS, approved_plan
from cases.procedure import ADOPTION, DOCUMENTS, SERVICE_METHODS, procedure_table
from cases.sealing import Sealer
from events.water import FINE_RANGE as WATER_FINE_RANGE
from sinks.accounts import Session
from sinks.lifecycle import FINAL_STATES, NO_PENALTY_REASONS, STATES, TRANSFER_AGENCIES

from .notice import Page, _date, load_notice, render_pdf, view
from .pages import CASE_VIEWERS, Console, _env, render

PARTY_FIELDS = ("kind", "name", "id_number", "address", "phone", "e_service_consent")
SERVICE_FIELDS = ("method", "served_on", "published_on", "served_by", "recipient",
                  "tracking_no", "witnesses")  # fmt: skip

_env.globals.update(
    PARTY_KINDS=PARTY_KINDS,
    SERVICE_METHODS=SERVICE_METHODS,
    DOCUMENTS=DOCUMENTS,
    PLAN_KINDS=PLAN_KINDS,
    WATER_FINE_RANGE=WATER_FINE_RANGE,
    ADOPTION=ADOPTION,
)
# each coded action's reasons by name, for the case's history (撤销立案, 不予行政处罚, 移送 …)
_env.globals["REASON_NAMES"] = {
    t.action: t.reason_codes for t in procedure_table() if t.reason_codes
}


HEARING_FIELDS = ("held_on", "host", "minutes")
HEARING_NOTICE_FIELDS = ("held_on", "held_time", "place", "host")
# the 听证笔录, a statement received offline, a payment plan's instalments and grounds
LONG_FIELDS = frozenset({"minutes", "body", "instalments", "grounds", "opinion", "facts"})


def procedure_payload(action: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of a procedure action from the case page's form."""
    fields = {"serve_notice": SERVICE_FIELDS, "serve_decision": SERVICE_FIELDS,
              "serve_hearing_notice": SERVICE_FIELDS, "schedule_hearing": HEARING_NOTICE_FIELDS,
              "correct_party": PARTY_FIELDS, "hold_hearing": HEARING_FIELDS,
              "record_statement": ("body",), "reply_statement": ("statement_id", "adopted", "opinion"),
              "apply_payment_plan": ("kind", "instalments", "grounds"),
              "collective_discussion": ("participants", "minutes"),
              "amend_proposal": ("outcome", "fine_cny", "tier_name", "penalty_basis", "facts"),
              }.get(action, ())  # fmt: skip
    out = {k: str(form.get(k) or "").strip()[: 20_000 if k in LONG_FIELDS else 200]
           for k in fields}  # fmt: skip
    return {k: v for k, v in out.items() if v or k in ("kind", "name", "id_number", "address")}


async def case_procedure(c: Console, case_id: str) -> dict[str, Any]:
    """What the case page shows of the procedure: 立案 and the decision's last day (days left),
    the party, and the services recorded."""
    filed = await c.pool.fetchrow("SELECT * FROM case_files WHERE case_id = $1", case_id)
    party = await c.pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1", case_id)
    services = await c.pool.fetch(
        "SELECT * FROM service_records WHERE case_id = $1 ORDER BY service_id", case_id
    )
    decision = await c.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1", case_id)
    notice = await c.pool.fetchrow(
        "SELECT notice_no, served_on, statement_due, hearing_due, deadlines_provisional"
        " FROM violation_notices WHERE case_id = $1", case_id)  # fmt: skip
    paid = await c.pool.fetch(
        "SELECT p.* FROM payments p JOIN penalty_decisions d USING (decision_no)"
        " WHERE d.case_id = $1 ORDER BY paid_on, bank_ref", case_id)  # fmt: skip
    hearing = await c.pool.fetchrow("SELECT * FROM hearing_notices WHERE case_id = $1", case_id)
    today = c.now().astimezone(c.lifecycle.policy.tz).date()
    left = (filed["decision_due"] - today).days if filed else None
    owed, schedule, plan, late_fee = None, [], [], 0
    plans = await c.pool.fetch(
        "SELECT * FROM payment_plans WHERE case_id = $1 ORDER BY plan_id", case_id)  # fmt: skip
    if decision is not None and decision["fine_cny"]:
        plan = await approved_plan(c.pool, case_id)  # 延期/分期 (cases/plans.py)
        done = [(p["paid_on"], p["amount_fen"]) for p in paid]
        owed = owed_fen(decision["fine_cny"], decision["payment_due"], done, today, plan)
        schedule = instalments(plan or [(decision["payment_due"], decision["fine_cny"] * 100)],
                               done, today)  # fmt: skip
        late_fee = min(decision["fine_cny"] * 100, sum(i.fee_fen for i in schedule))
    return {"filed": filed, "party": party, "services": services, "days_left": left,
            "today": today, "decision": decision, "payments": paid, "owed_fen": owed,
            "late_fee_fen": late_fee, "replies": await statement_replies(c, case_id),
            "plans": plans, "schedule": schedule, "planned": bool(plan), "hearing": hearing,
            "deadlines": deadlines(filed, notice, decision, schedule if plan else (), hearing,
                                   c.lifecycle.policy.tz)}  # fmt: skip


async def statement_replies(c: Console, case_id: str) -> dict[int, tuple[str, dt.datetime]]:
    """The agency's 复核意见 on each of the case's statements: {statement_id: (采纳 or 不予采纳
    and the reasons, when)} (cases.procedure.reply_statement)."""
    rows = await c.pool.fetch(
        "SELECT statement_id, review_adopted, review_opinion, reviewed_at FROM statements"
        " WHERE case_id = $1 AND reviewed_at IS NOT NULL", case_id)  # fmt: skip
    return {r["statement_id"]: (reply_text(r), r["reviewed_at"]) for r in rows}


def reply_text(row: Mapping[str, Any]) -> str:
    """A statement's 复核意见 as the officer and the party read it: 采纳 / 不予采纳, the reasons."""
    key = "adopted" if row["review_adopted"] else "not_adopted"
    return f"{ADOPTION[key]}。{row['review_opinion']}"


def deadlines(
    filed: Any,
    notice: Any,
    decision: Any,
    plan: Any = (),
    hearing: Any = None,
    tz: dt.tzinfo = dt.UTC,
) -> list[tuple[str, dt.date, bool]]:
    """The procedure's deadlines as the case page's timeline shows them, in order: (what, last
    day, provisional). Every one is the day ``cases.calendar.deadline`` computed and stored."""
    out: list[tuple[str, dt.date, bool]] = []
    if filed is not None:
        out.append(("作出处罚决定（立案之日起九十日）", filed["decision_due"],
                    filed["decision_due_provisional"]))  # fmt: skip
    if notice is not None and notice["statement_due"] is not None:
        p = notice["deadlines_provisional"]
        out.append(("陈述、申辩（违法行为通知书送达之日起）", notice["statement_due"], p))
        if notice["hearing_due"] is not None:
            out.append(("申请听证（送达之日起五个工作日）", notice["hearing_due"], p))
    if hearing is not None:  # the day the 听证通知书 names
        served = "已送达" if hearing["served_on"] else "尚未送达"
        out.append((f"举行听证（听证通知书{hearing['notice_no']}，{served}）",
                    hearing["held_at"].astimezone(tz).date(), False))  # fmt: skip
    if plan:  # an approved 延期/分期 plan's days replace the 15th day
        out.extend((f"缴纳罚款第{n}期 {i.amount_fen / 100:.2f} 元（经批准的缴纳计划）", i.due, False)
                   for n, i in enumerate(plan, start=1) if i.due)  # fmt: skip
    elif decision is not None and decision["payment_due"] is not None:
        out.append(("缴纳罚款（决定书送达之日起十五日）", decision["payment_due"], False))
    return sorted(out, key=lambda d: d[1])


def receipt_view(service: Mapping[str, Any], party: Mapping[str, Any] | None,
                 agency: str) -> dict[str, Any]:  # fmt: skip
    """The 送达回证's fields (交通运输行政执法文书式样: 送达回证)."""
    detail = service["detail"]
    detail = json.loads(detail) if isinstance(detail, str) else dict(detail)
    day: dt.date = service["served_on"]
    notes = []
    if detail.get("tracking_no"):
        notes.append(f"邮件号码：{detail['tracking_no']}（送达日期为回执签收日期）")
    if detail.get("witnesses"):
        notes.append(f"见证人/记录：{detail['witnesses']}")
    if detail.get("consent"):
        notes.append(f"电子送达确认书：{detail['consent']}")
    if detail.get("published_on"):
        notes.append(f"公告发布日期：{detail['published_on']}，自发出公告之日起经过三十日视为送达")
    return {
        "agency": agency, "document": DOCUMENTS.get(service["document"], service["document"]),
        "document_no": service["document_no"], "party": party["name"] if party else "",
        "address": party["address"] if party else "",
        "method": SERVICE_METHODS[service["method"]], "recipient": service["recipient"],
        "served_on": f"{day.year}年{day.month}月{day.day}日", "served_by": service["served_by"],
        "notes": notes, "case_id": service["case_id"],
    }  # fmt: skip


# 不予行政处罚's reasons as the decision cites them (sinks.lifecycle.NO_PENALTY_REASONS)
NO_PENALTY_ARTICLES = {"art57_2": "第五十七条第一款第（二）项", "art57_3": "第五十七条第一款第（三）项",
                       "art33": "第三十三条第一款"}  # fmt: skip


def decision_view(decision: Mapping[str, Any], party: Mapping[str, Any] | None,
                  tz: dt.tzinfo) -> dict[str, Any]:  # fmt: skip
    """The 行政处罚决定书's (or 不予行政处罚决定书's) own fields, Art. 59: the party, the penalty
    and its basis, how and by when to pay, the remedies, the date (the facts are the notice's)."""
    doc = decision["document"]
    doc = json.loads(doc) if isinstance(doc, str) else dict(doc)
    penalty = decision["kind"] == "penalty"
    org = bool(party and party["kind"] == "organization")
    code = str(doc.get("reason_code") or "")
    return {
        "title": "行政处罚决定书" if penalty else "不予行政处罚决定书", "penalty": penalty,
        "decision_no": decision["decision_no"],
        "party": {"name": party["name"] if party else "", "kind": PARTY_KINDS.get(
            party["kind"], "") if party else "", "id_number": party["id_number"] if party else "",
            "address": party["address"] if party else "",
            "id_label": "统一社会信用代码" if org else "身份证号码"},
        "fine": f"{decision['fine_cny']:,}" if decision["fine_cny"] else "",
        "fine_text": yuan_text(decision["fine_cny"]) if decision["fine_cny"] else "",  # D.10
        "payment_ref": decision["payment_ref"] or "",
        "payment_due": _date(decision["payment_due"]) if decision["payment_due"] else "",
        "art37": doc.get("art37") or "", "statement": doc.get("statement", False),
        "reason": NO_PENALTY_REASONS.get(code, "").split("（")[0],
        "article": NO_PENALTY_ARTICLES.get(code, ""),
        "decided_on": _date(decision["decided_at"].astimezone(tz).date()),
    }  # fmt: skip


def hearing_notice_view(h: Mapping[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    """The 听证通知书's fields as made (its document), the time in local time."""
    doc = h["document"]
    doc = json.loads(doc) if isinstance(doc, str) else dict(doc)
    at = h["held_at"].astimezone(tz)
    party = doc.get("party") or {}
    return {**doc, "party": party.get("name") or "", "case_id": h["case_id"],
            "time": f"{at.year}年{at.month}月{at.day}日 {at:%H时%M分}",
            "issued_on": _date(doc.get("issued_on"))}  # fmt: skip


async def document_pdf(template: str, sealer: Sealer | None, **values: Any) -> bytes:
    """A document of the case as its PDF, signed by ``sealer`` when given."""
    html = _env.get_template(template).render(pdf=True, **values)
    return await asyncio.to_thread(render_pdf, html, sealer)


async def decision_values(c: Console, cid: str) -> dict[str, Any] | None:
    """What the decision's template shows (``d``, ``n``), or None before the decision."""
    tz = c.lifecycle.policy.tz
    d = await c.pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1", cid)
    notice = await load_notice(c, cid)
    if d is None or notice is None:
        return None
    party = await c.pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1", cid)
    return {"d": decision_view(d, party, tz), "n": view(notice, tz)}


def transferred_to(ending: Mapping[str, Any]) -> str:
    """The body a transferred case went to, from its last transition: the officer's 移送公安机关,
    or the 负责人's coded 移送 (an "other" body is named in its reason)."""
    code = ending.get("reason_code")
    if code == "other":
        return f"其他有管辖权的机关（{ending.get('reason') or ''}）"
    return TRANSFER_AGENCIES.get(str(code), TRANSFER_AGENCIES["police"])


def execution_text(status: str, decision: Mapping[str, Any] | None, paid_fen: int,
                   owed: int | None, ending: Mapping[str, Any]) -> str:  # fmt: skip
    """The 结案报告's 执行情况: what really ended the case. 已缴清 only for a fine paid in full;
    an ending without a fine says so (不予处罚, 撤销立案, 移送, a warning); a revoked decision
    says what had been paid before it."""
    paid = f"{paid_fen / 100:.2f} 元"
    if status == "not_punished":
        return "不予行政处罚，无执行事项"
    if status == "withdrawn":
        return "撤销立案，无执行事项"
    if status == "transferred":
        return f"已移送{transferred_to(ending)}，本机关无执行事项"
    if status == "revoked":
        before = f"撤销前已缴纳罚款 {paid}" if paid_fen else "撤销前未缴纳罚款"
        return (
            f"处罚决定已撤销（{before}）" if decision and decision["fine_cny"] else "处罚决定已撤销"
        )
    if decision is None:
        return "无执行事项"
    if not decision["fine_cny"]:  # a warning: executed by its service
        served = decision["served_on"]
        return f"警告，决定书已于 {served} 送达" if served else "警告，决定书尚未送达"
    if owed:
        left = f"未缴清（已缴 {paid}，尚欠 {owed / 100:.2f} 元）"
        applied = decision["enforcement_applied_on"]
        return f"{left}，已于 {applied} 申请人民法院强制执行" if applied else left
    return f"已缴清（实缴 {paid}）"


async def closing_values(c: Console, cid: str) -> dict[str, Any] | None:
    """What the 结案报告 shows (``r``: the result, how it was executed, the steps), or None
    while the case is open."""
    tz = c.lifecycle.policy.tz
    case = await c.pool.fetchrow("SELECT status FROM cases WHERE case_id = $1", cid)
    if case is None or case["status"] not in FINAL_STATES - {"rejected"}:
        return None
    proc = await case_procedure(c, cid)
    notice = await load_notice(c, cid)
    steps = await c.pool.fetch(
        "SELECT action, actor, at, reason, reason_code, to_status FROM case_transitions"
        " WHERE case_id = $1 ORDER BY transition_id", cid)  # fmt: skip
    labels = c.lifecycle.labels()
    d, paid = proc["decision"], sum(p["amount_fen"] for p in proc["payments"])
    status = case["status"]
    ending: Mapping[str, Any] = next((s for s in reversed(steps) if s["to_status"] == status), {})
    execution = execution_text(status, d, paid, proc["owed_fen"], ending)
    result = f"已移送{transferred_to(ending)}" if status == "transferred" else STATES[status]
    return {"r": {
        "case_id": cid, "agency": str(notice.document.get("agency") or "") if notice else "",
        "party": proc["party"]["name"] if proc["party"] else "",
        "filed_on": proc["filed"]["filed_at"].astimezone(tz).date() if proc["filed"] else "",
        "result": result, "decision_no": d["decision_no"] if d else "",
        "fine": d["fine_cny"] if d else None, "execution": execution,
        "closed_on": steps[-1]["at"].astimezone(tz).date() if steps else "",
        "timeline": [{"at": s["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                      "label": labels.get(s["action"], s["action"]), "actor": s["actor"],
                      "reason": s["reason"] or ""} for s in steps]}}  # fmt: skip


async def receipt_values(c: Console, cid: str, sid: int) -> dict[str, Any] | None:
    """What the 送达回证 of service ``sid`` shows (``r``), or None: no such service."""
    service = await c.pool.fetchrow(
        "SELECT * FROM service_records WHERE case_id = $1 AND service_id = $2", cid, sid
    )
    if service is None:
        return None
    party = await c.pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1", cid)
    notice = await c.pool.fetchval("SELECT document FROM violation_notices WHERE case_id = $1", cid)
    agency = str(json.loads(notice).get("agency") or "") if notice else ""
    return {"r": receipt_view(service, party, agency)}


async def document_response(template: str, name: str, pdf: bool, sealer: Sealer | None,
                            **values: Any) -> Response:  # fmt: skip
    """A document of the case as HTML, or as a PDF to download (``name``.pdf), signed by
    ``sealer`` when given."""
    if not pdf:
        html = _env.get_template(template).render(pdf=pdf, **values)
        return Response(html, media_type="text/html; charset=utf-8")
    body = await document_pdf(template, sealer, **values)
    return Response(body, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="{name}.pdf"'})  # fmt: skip


def procedure_routes(c: Console, page: Page) -> list[Route]:
    """``/cases/{id}/service/{sid}/receipt`` (.pdf): the 送达回证 of a recorded service;
    ``/cases/{id}/decision`` (.pdf): the 行政处罚决定书 or 不予行政处罚决定书."""

    async def decision(request: Request, session: Session, pdf: bool) -> Response:
        cid = request.path_params["case_id"]
        values = await decision_values(c, cid)
        if values is None:
            return render("error.html", 404, session=session, title="没有决定书",
                          message="本案尚未作出决定。")  # fmt: skip
        await c.lifecycle.record(cid, "exported" if pdf else "viewed", session.actor,
                                 f"decision {values['d']['decision_no']}")  # fmt: skip
        return await document_response("decision.html", f"decision-{cid}", pdf, c.sealer, **values)

    async def hearing_notice(request: Request, session: Session, pdf: bool) -> Response:
        cid = request.path_params["case_id"]
        h = await c.pool.fetchrow("SELECT * FROM hearing_notices WHERE case_id = $1", cid)
        if h is None:
            return render("error.html", 404, session=session, title="没有听证通知书",
                          message="本案尚未制作听证通知书。")  # fmt: skip
        await c.lifecycle.record(cid, "exported" if pdf else "viewed", session.actor,
                                 f"hearing notice {h['notice_no']}")  # fmt: skip
        return await document_response("hearing_notice.html", f"hearing-notice-{cid}", pdf,
                                       c.sealer, h=hearing_notice_view(h, c.lifecycle.policy.tz))  # fmt: skip

    async def hearing_html(request: Request, session: Session) -> Response:
        return await hearing_notice(request, session, pdf=False)

    async def hearing_pdf(request: Request, session: Session) -> Response:
        return await hearing_notice(request, session, pdf=True)

    async def closing(request: Request, session: Session, pdf: bool) -> Response:
        """The 结案报告 of a closed case: the result, how it was executed, the steps."""
        cid = request.path_params["case_id"]
        values = await closing_values(c, cid)
        if values is None:
            return render("error.html", 404, session=session, title="没有结案报告",
                          message="本案尚未结案。")  # fmt: skip
        await c.lifecycle.record(cid, "exported" if pdf else "viewed", session.actor,
                                 "closing report")  # fmt: skip
        return await document_response("closing.html", f"closing-{cid}", pdf, c.sealer, **values)

    async def closing_html(request: Request, session: Session) -> Response:
        return await closing(request, session, pdf=False)

    async def closing_pdf(request: Request, session: Session) -> Response:
        return await closing(request, session, pdf=True)

    async def decision_html(request: Request, session: Session) -> Response:
        return await decision(request, session, pdf=False)

    async def decision_pdf(request: Request, session: Session) -> Response:
        return await decision(request, session, pdf=True)

    async def show(request: Request, session: Session, pdf: bool) -> Response:
        cid = request.path_params["case_id"]
        try:
            sid = int(request.path_params["service_id"])
        except ValueError:
            sid = -1
        values = await receipt_values(c, cid, sid)
        if values is None:
            return render("error.html", 404, session=session, title="没有这条送达记录",
                          message="本案没有这条送达记录。")  # fmt: skip
        await c.lifecycle.record(cid, "exported" if pdf else "viewed", session.actor,
                                 f"service receipt {sid}")  # fmt: skip
        return await document_response("receipt.html", f"receipt-{cid}-{sid}", pdf, c.sealer,
                                       **values)  # fmt: skip

    async def html(request: Request, session: Session) -> Response:
        return await show(request, session, pdf=False)

    async def pdf(request: Request, session: Session) -> Response:
        return await show(request, session, pdf=True)

    return [Route("/cases/{case_id}/hearing-notice", page(CASE_VIEWERS, hearing_html)),
            Route("/cases/{case_id}/hearing-notice.pdf", page(CASE_VIEWERS, hearing_pdf)),
            Route("/cases/{case_id}/closing-report", page(CASE_VIEWERS, closing_html)),
            Route("/cases/{case_id}/closing-report.pdf", page(CASE_VIEWERS, closing_pdf)),
            Route("/cases/{case_id}/decision", page(CASE_VIEWERS, decision_html)),
            Route("/cases/{case_id}/decision.pdf", page(CASE_VIEWERS, decision_pdf)),
            Route("/cases/{case_id}/service/{service_id}/receipt", page(CASE_VIEWERS, html)),
            Route("/cases/{case_id}/service/{service_id}/receipt.pdf", page(CASE_VIEWERS, pdf))]  # fmt: skip
