"""双公示 of penalty decisions (issue #26 must-have 4, in part): each decision as a row of the
national credit-publication format for 行政处罚 (the 29 columns of the paperwork review §1.2,
from several public implementations of the 信用中国 export), with the day it must be online by
(7 working days from the decision: 国办发〔2018〕118号 and the 双公示 rule, paperwork review
§1.2) and the day its publication ends (公示截止期: the decision day + 1 year, as in the Hunan
治超 双公示 sample). Fines are in 万元. Personal data: a natural person's ID number is masked,
only its region (first 6) and last 4 characters shown — the review marks the masking rule [L]
(not found in a source): an agency sets its own. Withdrawal of a revoked decision (3 working
days) waits for the decision's revocation, which the lifecycle does not have yet."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any

from .calendar import WorkCalendar, deadline

COLUMNS = (
    "行政相对人名称", "行政相对人类别", "统一社会信用代码", "工商注册号", "组织机构代码", "税务登记号",
    "事业单位证书号", "社会组织登记证号", "法定代表人", "法定代表人身份证号/证件类型", "证件类型",
    "证件号码", "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容",
    "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）", "暂扣或吊销证照名称及编号",
    "处罚决定日期", "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码",
    "数据来源单位", "数据来源单位统一社会信用代码", "备注",
)  # fmt: skip
PUBLISH_WITHIN = 7  # working days from the decision (cases.calendar counts 7 as working days)


def mask_id(number: str) -> str:
    """A natural person's ID number as published: region and last four, the rest hidden."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def _year_later(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


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
        "行政相对人名称": str(party["name"]) if party else "",
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
        "公示截止期": _year_later(decided_on).isoformat(),
        "处罚机关": agency, "数据来源单位": agency,
    })  # fmt: skip
    return row


def publish_by(calendar: WorkCalendar, decided_on: dt.date) -> dt.date:
    """The last day the decision may go online: 7 working days from the decision."""
    return deadline(calendar, decided_on, PUBLISH_WITHIN).due


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
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
        " WHERE d.kind = 'penalty' ORDER BY d.decided_at, d.decision_no")  # fmt: skip
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
