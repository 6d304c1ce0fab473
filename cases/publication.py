"""双公示 of penalty decisions (issue #26 must-have 4, in part): each decision as a row of the
national credit-publication format for 行政处罚 (the 29 columns of the paperwork review §1.2,
from several public implementations of the 信用中国 export), with the day it must be online by
(7 working days from the decision: 国办发〔2018〕118号 and the 双公示 rule, paperwork review
§1.2) and the day its publication ends (公示截止期: the decision day + 1 year, as in the Hunan
治超 双公示 sample). Fines are in 万元. Personal data: a natural person's ID number is masked,
only its region (first 6) and last 4 characters shown, and a natural person's name is shown
as the surname only (张**). Sources: 《行政处罚结果信息网上公开暂行办法》 Art. 7 (as quoted at
crsrw.com/falvyuanzhu/38283.html): 自然人的家庭住址、通讯方式、身份证号码、银行账号 are hidden (the
29 columns carry no address, telephone or account); the review marks the name's masking [L]:
the stricter reading is taken, an agency that publishes full names changes :func:`mask_name`.

Withdrawal: a published decision that is revoked (撤销行政处罚决定, ``sinks.lifecycle``) is
withdrawn within 3 working days with its reason made public (行政处罚法 Art. 48: 公开的行政处罚
决定被依法变更、撤销、确认违法或者确认无效的，行政机关应当在三日内撤回行政处罚决定信息并公开说明
理由; Art. 85: 三日 are working days; paperwork review §1.2). The export of a day leaves a
revoked decision out and lists the day's withdrawals; ``decision_publications`` records what
was published and withdrawn when, for the public page and the deadline tracker."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Mapping
from typing import Any

from sinks.lifecycle import REVOKE_REASONS

from .calendar import WorkCalendar, deadline, year_later

COLUMNS = (
    "行政相对人名称", "行政相对人类别", "统一社会信用代码", "工商注册号", "组织机构代码", "税务登记号",
    "事业单位证书号", "社会组织登记证号", "法定代表人", "法定代表人身份证号/证件类型", "证件类型",
    "证件号码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容",
    "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）", "暂扣或吊销证照名称及编号",
    "处罚决定日期", "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码",
    "数据来源单位", "数据来源单位统一社会信用代码", "备注",
)  # fmt: skip
PUBLISH_WITHIN = 7  # working days from the decision (cases.calendar counts 7 as working days)
WITHDRAW_WITHIN = 3  # working days from the revocation (Art. 48, 85)
WITHDRAWAL_COLUMNS = (
    "行政处罚决定书文号",
    "行政相对人名称",
    "处罚决定日期",
    "撤销日期",
    "撤回说明",
)
# (start, days) → the last day: cases.calendar.deadline on the agency's working-day calendar
Due = Callable[[dt.date, int], dt.date]


def working_days(calendar: WorkCalendar) -> Due:
    return lambda start, days: deadline(calendar, start, days).due


def mask_id(number: str) -> str:
    """A natural person's ID number as published: region and last four, the rest hidden."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_name(name: str) -> str:
    """A natural person's name as published: the surname, the rest hidden (张**)."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def decision_row(
    decision: Mapping[str, Any],
    party: Mapping[str, Any] | None,
    case: Mapping[str, Any],
    *,
    agency: str,
    violation: str,
    place: str,
    passed_on: dt.date,
    decided_on: dt.date,
) -> dict[str, str]:
    """The 29 columns of one penalty decision. ``violation``: the violation's name (违法行为
    类型); ``place``: where the pass was recorded, as the notice names it; ``passed_on``: the
    pass's local day."""
    org = bool(party and party["kind"] == "organization")
    number = str(party["id_number"]) if party else ""
    fine = decision["fine_cny"] or 0
    row = dict.fromkeys(COLUMNS, "")
    row.update({
        "行政相对人名称": (str(party["name"]) if org else mask_name(str(party["name"])))
                          if party else "",
        "行政相对人类别": "法人及非法人组织" if org else "自然人",
        "统一社会信用代码": number if org else "",
        "证件类型": "" if org else "身份证",
        "证件号码": "" if org else mask_id(number),
        "行政处罚决定书文号": str(decision["decision_no"]),
        "违法行为类型": violation,
        "违法事实": f"号牌号码为{case['plate'] or '（未识别）'}的车辆于{passed_on.isoformat()}经"
                    f"{place}检测，{violation}，超过限定标准{case['overload_kg']}千克",
        "处罚依据": str(case["penalty_basis"]),
        "处罚类别": "罚款" if fine else "警告",
        "处罚内容": f"罚款{fine}元" if fine else "警告",
        "罚款金额（万元）": f"{fine / 10_000:.4f}" if fine else "0",
        "处罚决定日期": decided_on.isoformat(),
        "公示截止期": year_later(decided_on).isoformat(),
        "处罚机关": agency, "数据来源单位": agency,
    })  # fmt: skip
    return row


def publish_by(calendar: WorkCalendar, decided_on: dt.date) -> dt.date:
    """The last day the decision may go online: 7 working days from the decision."""
    return deadline(calendar, decided_on, PUBLISH_WITHIN).due


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def decisions_of_day(
    pool: Any, day: dt.date, tz: dt.tzinfo, calendar: WorkCalendar
) -> list[dict[str, Any]]:
    """The penalty decisions made on local ``day``: each its case id, the last day to publish
    it and its 29 columns (``row``), in decision order."""
    rows = await pool.fetch(
        "SELECT d.*, c.plate, c.overload_kg, c.penalty_basis, c.ts, n.document AS notice,"
        " p.kind AS party_kind, p.name AS party_name, p.id_number AS party_id"
        " FROM penalty_decisions d JOIN cases c USING (case_id)"
        " LEFT JOIN violation_notices n USING (case_id) LEFT JOIN case_parties p USING (case_id)"
        " WHERE d.kind = 'penalty' AND c.status <> 'revoked'"  # a revoked one is not published
        " ORDER BY d.decided_at, d.decision_no")  # fmt: skip
    out = []
    for r in rows:
        decided = r["decided_at"].astimezone(tz).date()
        if decided != day:
            continue
        notice = r["notice"]
        doc = (json.loads(notice) if isinstance(notice, str) else dict(notice)) if notice else {}
        party = {"kind": r["party_kind"], "name": r["party_name"], "id_number": r["party_id"]}
        row = decision_row(
            r, party if r["party_name"] else None, r, agency=str(doc.get("agency") or ""),
            violation=str(doc.get("violation_name") or ""),
            place=str(doc.get("site_name") or ""),
            passed_on=r["ts"].astimezone(tz).date(), decided_on=decided)  # fmt: skip
        out.append({"case_id": r["case_id"], "publish_by": publish_by(calendar, decided).isoformat(),
                    "row": row})  # fmt: skip
    return out


def _reason(code: str | None, text: str | None) -> str:
    """The withdrawal's public explanation (Art. 48: 公开说明理由)."""
    named = REVOKE_REASONS.get(code or "", "")
    return "行政处罚决定已被撤销：" + "；".join(x for x in (named, text or "") if x)


async def revocations(pool: Any, tz: dt.tzinfo, due: Due) -> list[dict[str, Any]]:
    """Every revoked penalty decision: its case, number, the party as published, the day it was
    decided and revoked, the last day to withdraw it, the explanation, and whether and when it
    had been published and withdrawn."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (t.case_id) t.case_id, t.at, t.reason_code, t.reason,"
        " d.decision_no, d.decided_at, p.kind AS party_kind, p.name AS party_name,"
        " x.published_on, x.withdrawn_on FROM case_transitions t"
        " JOIN penalty_decisions d USING (case_id) JOIN cases c USING (case_id)"
        " LEFT JOIN case_parties p USING (case_id)"
        " LEFT JOIN decision_publications x USING (case_id)"
        " WHERE t.action = 'revoke_decision' AND d.kind = 'penalty' AND c.status = 'revoked'"
        " ORDER BY t.case_id, t.transition_id DESC")  # fmt: skip
    out = []
    for r in sorted(rows, key=lambda r: (r["at"], r["case_id"])):
        revoked = r["at"].astimezone(tz).date()
        name = str(r["party_name"] or "")
        out.append({
            "case_id": r["case_id"], "decision_no": r["decision_no"],
            "party": name if r["party_kind"] == "organization" else mask_name(name),
            "decided_on": r["decided_at"].astimezone(tz).date(), "revoked_on": revoked,
            "withdraw_by": due(revoked, WITHDRAW_WITHIN), "reason": _reason(r["reason_code"],
                                                                             r["reason"]),
            "published_on": r["published_on"], "withdrawn_on": r["withdrawn_on"],
        })  # fmt: skip
    return out


def withdrawal_row(w: Mapping[str, Any]) -> dict[str, str]:
    return dict(zip(WITHDRAWAL_COLUMNS, (w["decision_no"], w["party"], str(w["decided_on"]),
                                         str(w["revoked_on"]), w["reason"]), strict=True))  # fmt: skip


async def record_export(
    pool: Any, found: list[dict[str, Any]], withdrawn: list[dict[str, Any]], today: dt.date
) -> None:
    """The export written ``today``: its decisions are published (the first day counts), its
    withdrawals withdrawn."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO decision_publications (case_id, decision_no, decided_on, row,"
            " published_on) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO NOTHING",
            [(f["case_id"], f["row"]["行政处罚决定书文号"],
              dt.date.fromisoformat(f["row"]["处罚决定日期"]),
              json.dumps(f["row"], ensure_ascii=False), today) for f in found])  # fmt: skip
        await conn.executemany(
            "UPDATE decision_publications SET withdrawn_on = $2, withdrawal = $3"
            " WHERE case_id = $1 AND withdrawn_on IS NULL",
            [(w["case_id"], today, w["reason"]) for w in withdrawn])  # fmt: skip


async def export_day(
    pool: Any, day: dt.date, today: dt.date, tz: dt.tzinfo, calendar: WorkCalendar
) -> dict[str, Any]:
    """The export of local ``day``, written ``today``: the day's decisions not revoked (the 29
    columns), and the withdrawals: the revoked decisions published and not yet withdrawn, and
    those revoked on ``day``. Recorded in ``decision_publications``."""
    found = await decisions_of_day(pool, day, tz, calendar)
    withdrawn = [w for w in await revocations(pool, tz, working_days(calendar))
                 if (w["published_on"] and not w["withdrawn_on"]) or w["revoked_on"] == day]  # fmt: skip
    await record_export(pool, found, withdrawn, today)
    return {"day": day.isoformat(), "decisions": found,
            "withdrawals": [{**withdrawal_row(w), "case_id": w["case_id"],
                             "withdraw_by": w["withdraw_by"].isoformat()} for w in withdrawn]}  # fmt: skip


async def published(
    pool: Any, start: dt.date, end: dt.date, today: dt.date
) -> list[dict[str, str]]:
    """The public page: the rows published of decisions made from ``start`` to ``end``, not
    withdrawn, not revoked since, and still inside their 公示 period (公示截止期)."""
    rows = await pool.fetch(
        "SELECT x.row FROM decision_publications x JOIN cases c USING (case_id)"
        " WHERE x.withdrawn_on IS NULL AND c.status <> 'revoked'"
        " AND x.decided_on BETWEEN $1 AND $2 ORDER BY x.decided_on DESC, x.decision_no",
        start, end)  # fmt: skip
    out = [json.loads(r["row"]) if isinstance(r["row"], str) else dict(r["row"]) for r in rows]
    return [r for r in out if r["公示截止期"] >= today.isoformat()]


async def withdrawn_notes(pool: Any, start: dt.date, end: dt.date) -> list[dict[str, str]]:
    """The withdrawals of decisions made from ``start`` to ``end``, with their public reason."""
    rows = await pool.fetch(
        "SELECT decision_no, decided_on, withdrawn_on, withdrawal FROM decision_publications"
        " WHERE withdrawn_on IS NOT NULL AND decided_on BETWEEN $1 AND $2"
        " ORDER BY withdrawn_on DESC, decision_no", start, end)  # fmt: skip
    return [dict(r) for r in rows]


async def tracker(pool: Any, tz: dt.tzinfo, due: Due, today: dt.date) -> list[dict[str, Any]]:
    """Every penalty decision's 公示 deadline for the legal department, newest first: to
    publish (7 working days from the decision) and, once revoked, to withdraw (3 from the
    revocation); ``overdue`` when the day passed with nothing done, or it was done late."""
    rows = await pool.fetch(
        "SELECT d.case_id, d.decision_no, d.decided_at, c.status, x.published_on,"
        " x.withdrawn_on FROM penalty_decisions d JOIN cases c USING (case_id)"
        " LEFT JOIN decision_publications x USING (case_id) WHERE d.kind = 'penalty'"
        " ORDER BY d.decided_at DESC, d.decision_no")  # fmt: skip
    revoked = {r["case_id"]: r["revoked_on"] for r in await revocations(pool, tz, due)}
    return [
        {"case_id": r["case_id"], "decision_no": r["decision_no"],
         **deadline_item(r["decided_at"].astimezone(tz).date(), r["published_on"],
                         revoked.get(r["case_id"]), r["withdrawn_on"], today, due)}
        for r in rows
    ]  # fmt: skip


def deadline_item(
    decided_on: dt.date,
    published_on: dt.date | None,
    revoked_on: dt.date | None,
    withdrawn_on: dt.date | None,
    today: dt.date,
    due: Due,
) -> dict[str, Any]:
    """One decision's 公示 deadlines: publish by 7 working days from the decision (none once
    revoked before it went out), withdraw by 3 from the revocation of a published one;
    ``overdue``: a day passed with nothing done, or it was done late."""
    out: dict[str, Any] = {"decided_on": decided_on, "published_on": published_on,
                           "revoked_on": revoked_on, "withdrawn_on": withdrawn_on,
                           "publish_by": None, "withdraw_by": None}  # fmt: skip
    if revoked_on is None or published_on is not None:
        out["publish_by"] = due(decided_on, PUBLISH_WITHIN)
    if revoked_on is not None and published_on is not None:
        out["withdraw_by"] = due(revoked_on, WITHDRAW_WITHIN)
    out["overdue"] = _late(out["publish_by"], published_on, today) or _late(
        out["withdraw_by"], withdrawn_on, today
    )
    return out


def _late(by: dt.date | None, done: dt.date | None, today: dt.date) -> bool:
    return by is not None and (done or today) > by
