"""抄告 (issue #26 must-have 5): what a closed penalty case tells the vehicle's home region.

《超限运输车辆行驶公路管理规定》(交通运输部令2016年第62号) Art. 44: "公路管理机构在违法超限运输案件处理
完毕后7个工作日内，应当将与案件相关的下列信息通过车辆超限管理信息系统抄告车籍所在地道路运输管理机构：
（一）车辆的号牌号码、车型、车辆所属企业、道路运输证号信息；（二）驾驶人的姓名、驾驶人从业资格证编号、
驾驶人所属企业信息；（三）货运源头单位、货物装载单信息；（四）行政处罚决定书信息；（五）与案件相关的其他
资料信息。" Art. 45: a vehicle that does not conform to GB 1589 or does not match its 行驶证 is
recorded and reported periodically (定期抄告) to the home region's 公安机关交通管理部门. (Text:
jianbiaoku.com/webarbs/book/97314/4862496.shtml, paperwork review §2.1.)

The home region is read off the plate: its first character is the province (GB/T 2260 code),
its second the issuing office (发牌机关代号). A plate that names no mainland region (unread, a
province character missing, 粤Z cross-border, 使/领/港/澳 plates) is never guessed: the record is
held for an officer with the reason. What a non-site case does not know (the driver, the load's
source) is stated as 未知, never left out. Records are sent through ``sinks.outbound`` and each
attempt is logged; a failed one is tried again after a back-off (1 minute doubling to 6 hours).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from events.ids import derive_id
from events.registry import PLATE_COLOR_ZH
from sinks.outbound import Item, Outbound, OutboundError

from .calendar import WorkCalendar, deadline
from .party import PARTY_KINDS
from .vehicles import vehicle_type

SEND_WITHIN = 7  # working days after the case is closed (Art. 44; 7 counts working days)
UNKNOWN = "未知"
BASIS = "《超限运输车辆行驶公路管理规定》（交通运输部令2016年第62号）第四十四条"
POLICE_BASIS = "《超限运输车辆行驶公路管理规定》（交通运输部令2016年第62号）第四十五条"
FIRST_RETRY_S, MAX_RETRY_S = 60, 6 * 3600

# plate character → (GB/T 2260 province code, name)
PROVINCES: dict[str, tuple[str, str]] = {
    "京": ("11", "北京市"), "津": ("12", "天津市"), "冀": ("13", "河北省"), "晋": ("14", "山西省"),
    "蒙": ("15", "内蒙古自治区"), "辽": ("21", "辽宁省"), "吉": ("22", "吉林省"),
    "黑": ("23", "黑龙江省"), "沪": ("31", "上海市"), "苏": ("32", "江苏省"), "浙": ("33", "浙江省"),
    "皖": ("34", "安徽省"), "闽": ("35", "福建省"), "赣": ("36", "江西省"), "鲁": ("37", "山东省"),
    "豫": ("41", "河南省"), "鄂": ("42", "湖北省"), "湘": ("43", "湖南省"), "粤": ("44", "广东省"),
    "桂": ("45", "广西壮族自治区"), "琼": ("46", "海南省"), "渝": ("50", "重庆市"),
    "川": ("51", "四川省"), "贵": ("52", "贵州省"), "云": ("53", "云南省"), "藏": ("54", "西藏自治区"),
    "陕": ("61", "陕西省"), "甘": ("62", "甘肃省"), "青": ("63", "青海省"),
    "宁": ("64", "宁夏回族自治区"), "新": ("65", "新疆维吾尔自治区"),
}  # fmt: skip
_OFFICE = re.compile(r"^[A-Z]$")
NONCONFORMING_KINDS = {"gb1589": "不符合GB 1589外廓尺寸、轴荷及质量限值",
                       "registration": "与行驶证记载的登记内容不符"}  # fmt: skip


@dataclass(frozen=True)
class Region:
    """The vehicle's home region as its plate names it."""

    prefix: str  # 湘A
    province_code: str  # 43
    province: str  # 湖南省

    @property
    def agency(self) -> str:
        return f"{self.province}{self.prefix}号牌车籍地道路运输管理机构"


def home_region(plate: str | None) -> Region | str:
    """The plate's home region, or why it has none an officer could rely on (a Chinese reason)."""
    if not plate:
        return "号牌未识别，无法确定车籍所在地"
    plate = plate.strip().upper()
    if plate[-1] in "使领港澳" or plate[0] == "使":
        return f"号牌 {plate} 为使领馆或港澳车辆号牌，车籍不在内地，需人工确定抄告对象"
    found = PROVINCES.get(plate[0])
    if found is None:
        return f"号牌 {plate} 的首字「{plate[0]}」不是省级行政区简称，无法确定车籍所在地"
    if len(plate) < 2 or not _OFFICE.match(plate[1]):
        return f"号牌 {plate} 的第二位不是发牌机关代号，无法确定车籍所在地"
    if plate[:2] == "粤Z":
        return f"号牌 {plate} 为粤Z港澳入出境车辆号牌，车籍不在内地，需人工确定抄告对象"
    return Region(plate[:2], *found)


def chaogao_id(case_id: str) -> str:
    """The record's id, from the case alone: a second make of the same case is the same record."""
    return derive_id("cg", case_id)


def send_by(calendar: WorkCalendar, closed_on: dt.date) -> dt.date:
    """The last day the record may be sent: 7 working days after the closing (Art. 44)."""
    return deadline(calendar, closed_on, SEND_WITHIN).due


def retry_after(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failure: 1 minute doubling, at most 6 hours."""
    return dt.timedelta(seconds=min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S))


def record_of(
    facts: Mapping[str, Any], region: Region | None, *, closed_on: dt.date, due: dt.date
) -> dict[str, Any]:
    """The Art. 44 fields of one closed case, from ``facts`` (:func:`case_facts`'s row)."""
    v = (
        json.loads(facts["violation"])
        if isinstance(facts["violation"], str)
        else facts["violation"]
    )
    det = v.get("detection") or {}
    party_kind = facts["party_kind"]
    company = facts["party_name"] if party_kind == "organization" else None
    fine = facts["fine_cny"]
    return {
        "id": chaogao_id(facts["case_id"]), "case_id": facts["case_id"], "basis": BASIS,
        "sender": facts["agency"] or UNKNOWN,
        "recipient": {"region": region.prefix, "province_code": region.province_code,
                      "province": region.province, "agency": region.agency} if region else None,
        "vehicle": {  # (一)
            "plate": facts["plate"] or UNKNOWN,
            "plate_color": PLATE_COLOR_ZH.get(facts["plate_color"] or "", UNKNOWN),
            "vehicle_type": vehicle_type(det.get("configuration")) or UNKNOWN,
            "axles": det.get("axle_count") or UNKNOWN,
            "owner": facts["party_name"] or UNKNOWN,
            "owner_kind": PARTY_KINDS.get(party_kind or "", UNKNOWN),
            "company": company or (UNKNOWN if party_kind is None else "无（车辆所有人为公民）"),
            "road_transport_certificate": facts.get("licence_no") or UNKNOWN,
        },
        # (二) a non-site case records the vehicle, not who drove it
        "driver": {"name": UNKNOWN, "qualification_no": UNKNOWN, "company": UNKNOWN},
        # (三) nor where it was loaded
        "load": {"source_unit": UNKNOWN, "loading_place": UNKNOWN, "waybill": UNKNOWN},
        "decision": {  # (四)
            "number": facts["decision_no"], "date": facts["decided_on"].isoformat(),
            "kind": "罚款" if fine else "警告", "amount_cny": fine or 0,
            "basis": facts["penalty_basis"], "legal_basis": facts["legal_basis"],
        },
        "other": {  # (五)
            "site": facts["site_name"] or facts["site_id"], "passed_at": facts["passed_at"],
            "measured_kg": facts["measured_kg"], "limit_kg": facts["limit_kg"],
            "overload_kg": facts["overload_kg"],
        },
        "closed_on": closed_on.isoformat(), "due": due.isoformat(),
    }  # fmt: skip


FACTS = (
    "SELECT c.case_id, c.plate, c.plate_color, c.violation, c.site_id, c.ts, c.measured_kg,"
    " c.limit_kg, c.overload_kg, c.penalty_basis, c.legal_basis, d.decision_no, d.decided_at,"
    " d.fine_cny, p.kind AS party_kind, p.name AS party_name,"
    " n.document->>'agency' AS agency, n.document->>'site_name' AS site_name,"
    " (SELECT max(t.at) FROM case_transitions t WHERE t.case_id = c.case_id"
    "  AND t.to_status = 'closed') AS closed_at"
    " FROM cases c JOIN penalty_decisions d USING (case_id)"
    " LEFT JOIN case_parties p USING (case_id) LEFT JOIN violation_notices n USING (case_id)"
    " WHERE c.status = 'closed' AND d.kind = 'penalty'"
)


async def case_facts(pool: Any, case_id: str, tz: dt.tzinfo) -> dict[str, Any] | None:
    """What the record of ``case_id`` is made of; None unless it is closed with a penalty."""
    row = await pool.fetchrow(FACTS + " AND c.case_id = $1", case_id)
    if row is None or row["closed_at"] is None:
        return None
    facts = dict(row)
    facts["decided_on"] = row["decided_at"].astimezone(tz).date()
    facts["closed_on"] = row["closed_at"].astimezone(tz).date()
    facts["passed_at"] = row["ts"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return facts


async def unrecorded(pool: Any) -> list[str]:
    """Closed penalty cases without a 抄告 record (a failed hook, a case closed elsewhere)."""
    rows = await pool.fetch(FACTS + " AND NOT EXISTS (SELECT 1 FROM chaogao g"
                            " WHERE g.case_id = c.case_id) ORDER BY c.case_id")  # fmt: skip
    return [r["case_id"] for r in rows]


Render = Callable[[dict[str, Any]], Awaitable[bytes]]


async def make_record(
    pool: Any,
    case_id: str,
    *,
    tz: dt.tzinfo,
    due_of: Callable[[dt.date], dt.date],
    now: dt.datetime,
    render: Render,
    licences: Mapping[str, str] | None = None,
) -> str | None:
    """The record of a closed penalty case, made once (its id is the case's); its id, or None
    when the case is not closed with a penalty. ``due_of``: the closing day → the last day to
    send (:func:`send_by` on the agency's calendar); ``render``: the record's PDF (the 抄告函);
    ``licences``: plate → 道路运输证号, where the agency knows it."""
    facts = await case_facts(pool, case_id, tz)
    if facts is None:
        return None
    cid = chaogao_id(case_id)
    if await pool.fetchval("SELECT 1 FROM chaogao WHERE chaogao_id = $1", cid):
        return cid
    facts["licence_no"] = (licences or {}).get(facts["plate"] or "")
    found = home_region(facts["plate"])
    region = found if isinstance(found, Region) else None
    closed_on = facts["closed_on"]
    due = due_of(closed_on)
    record = record_of(facts, region, closed_on=closed_on, due=due)
    pdf = await render(record)
    await pool.execute(
        "INSERT INTO chaogao (chaogao_id, case_id, region, recipient, status, held_reason,"
        " record, pdf, closed_on, due, created_at, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"
        " ON CONFLICT (chaogao_id) DO NOTHING",
        cid, case_id, region.prefix if region else None, region.agency if region else None,
        "pending" if region else "held", None if region else found,
        json.dumps(record, ensure_ascii=False), pdf, closed_on, due, now)  # fmt: skip
    return cid


@dataclass(frozen=True)
class Attempt:
    chaogao_id: str
    ok: bool
    detail: str


async def send_due(
    pool: Any, outbound: Outbound, now: dt.datetime, only: str | None = None
) -> list[Attempt]:
    """One attempt for every pending record whose next attempt is due (or just ``only``), each
    logged in ``chaogao_attempts``; a failure schedules the next attempt (:func:`retry_after`).
    One round at a time over the database (an advisory lock): while another process sends,
    nothing is done here and the list is empty."""
    async with pool.acquire() as lock, lock.transaction():
        if not await lock.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('offsite_chaogao'))"):
            return []
        rows = await pool.fetch(
            "SELECT chaogao_id, record, pdf, attempts FROM chaogao WHERE status = 'pending'"
            " AND next_attempt_at <= $1 AND ($2::text IS NULL OR chaogao_id = $2)"
            " ORDER BY due, chaogao_id", now, only)  # fmt: skip
        return [await _attempt(pool, outbound, r, now) for r in rows]


async def _attempt(pool: Any, outbound: Outbound, r: Any, now: dt.datetime) -> Attempt:
    record = json.loads(r["record"]) if isinstance(r["record"], str) else dict(r["record"])
    try:
        detail = await outbound.send(Item("chaogao", r["chaogao_id"], record, bytes(r["pdf"])))
        ok = True
    except OutboundError as exc:
        detail, ok = str(exc), False
    attempts = r["attempts"] + 1
    async with pool.acquire() as con, con.transaction():
        await con.execute(
            "INSERT INTO chaogao_attempts (chaogao_id, at, transport, ok, detail)"
            " VALUES ($1, $2, $3, $4, $5)", r["chaogao_id"], now, outbound.name, ok, detail)  # fmt: skip
        await con.execute(
            "UPDATE chaogao SET attempts = $2, status = $3, sent_at = $4, last_error = $5,"
            " next_attempt_at = $6 WHERE chaogao_id = $1",
            r["chaogao_id"], attempts, "sent" if ok else "pending", now if ok else None,
            None if ok else detail, None if ok else now + retry_after(attempts))  # fmt: skip
    return Attempt(r["chaogao_id"], ok, detail)


async def retry_now(pool: Any, outbound: Outbound, chaogao_id: str, now: dt.datetime) -> Attempt:
    """An officer's "retry now": the pending record is attempted at once, whatever its back-off.
    Raises LookupError when there is no such pending record (held, sent, or unknown)."""
    done = await pool.execute(
        "UPDATE chaogao SET next_attempt_at = $2 WHERE chaogao_id = $1 AND status = 'pending'",
        chaogao_id, now)  # fmt: skip
    if done != "UPDATE 1":
        raise LookupError(chaogao_id)
    done = await send_due(pool, outbound, now, only=chaogao_id)
    return done[0] if done else Attempt(chaogao_id, False, "另一进程正在发送，稍后刷新查看结果")


async def release(pool: Any, chaogao_id: str, prefix: str, actor: str, render: Render) -> Region:
    """An officer names the home region of a held record (e.g. from the 行驶证): it becomes
    pending, addressed to that region, its 抄告函 made again. ValueError when ``prefix`` names
    no mainland region; LookupError when no such record is held."""
    region = home_region(prefix.strip().upper() + "00000")
    if not isinstance(region, Region):
        raise ValueError(f"「{prefix}」不是内地号牌的车籍地前缀（如 湘A）")
    row = await pool.fetchrow("SELECT record FROM chaogao WHERE chaogao_id = $1"
                              " AND status = 'held'", chaogao_id)  # fmt: skip
    if row is None:
        raise LookupError(chaogao_id)
    record = json.loads(row["record"]) if isinstance(row["record"], str) else dict(row["record"])
    record["recipient"] = {"region": region.prefix, "province_code": region.province_code,
                           "province": region.province, "agency": region.agency,
                           "named_by": actor}  # fmt: skip
    pdf = await render(record)
    await pool.execute(
        "UPDATE chaogao SET status = 'pending', region = $2, recipient = $3, record = $4,"
        " pdf = $5 WHERE chaogao_id = $1 AND status = 'held'", chaogao_id, region.prefix,
        region.agency, json.dumps(record, ensure_ascii=False), pdf)  # fmt: skip
    return region


async def records(pool: Any) -> list[dict[str, Any]]:
    """Every record, the unsent first by deadline, each with its last attempt."""
    rows = await pool.fetch(
        "SELECT g.chaogao_id, g.case_id, g.region, g.recipient, g.status, g.held_reason,"
        " g.closed_on, g.due, g.attempts, g.next_attempt_at, g.last_error, g.sent_at,"
        " g.record->'vehicle'->>'plate' AS plate, g.record->'decision'->>'number' AS decision_no"
        " FROM chaogao g ORDER BY g.status = 'sent', g.due, g.chaogao_id")  # fmt: skip
    return [dict(r) for r in rows]


async def flag_nonconforming(
    pool: Any, case_id: str, kind: str, reason: str, actor: str, now: dt.datetime
) -> None:
    """Art. 45: record that the vehicle of ``case_id`` does not conform (``kind``: gb1589 or
    registration); a second flag of the case replaces the first."""
    if kind not in NONCONFORMING_KINDS:
        raise ValueError(f"不符合情形须为：{'、'.join(NONCONFORMING_KINDS.values())}")
    if not reason.strip():
        raise ValueError("须写明不符合的具体情形")
    if not await pool.fetchval("SELECT 1 FROM cases WHERE case_id = $1", case_id):
        raise LookupError(case_id)
    await pool.execute(
        "INSERT INTO chaogao_nonconforming (case_id, kind, reason, flagged_by, flagged_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO UPDATE SET kind = $2,"
        " reason = $3, flagged_by = $4, flagged_at = $5", case_id, kind, reason.strip(), actor, now)  # fmt: skip


BODIES = {"rigid": "单体货车", "combination": "汽车列车"}


async def registration_mismatches(pool: Any, bodies: Mapping[str, str]) -> list[dict[str, str]]:
    """Art. 45 candidates the data shows: cases whose weighing device read another body
    (单体货车 / 汽车列车) than the agency's record of the vehicle (``bodies``: plate → rigid or
    combination). A device can misread: each is for an officer to confirm
    (:func:`flag_nonconforming`), never reported unconfirmed. Flagged cases are left out."""
    if not bodies:
        return []
    rows = await pool.fetch(
        "SELECT case_id, plate, violation->'detection'->'wim'->>'vehicle_kind' AS measured"
        " FROM cases c WHERE plate = ANY($1::text[]) AND NOT EXISTS"
        " (SELECT 1 FROM chaogao_nonconforming f WHERE f.case_id = c.case_id)"
        " ORDER BY ts, case_id", list(bodies))  # fmt: skip
    return [{"case_id": r["case_id"], "plate": r["plate"],
             "reason": f"称重设备判别为{BODIES[r['measured']]}，登记为{BODIES[bodies[r['plate']]]}"}
            for r in rows if r["measured"] in BODIES and r["measured"] != bodies[r["plate"]]]  # fmt: skip


POLICE_COLUMNS = ("号牌号码", "号牌颜色", "车籍地", "车型", "轴数", "车辆所有人", "发现时间", "发现地点",
                  "不符合情形", "具体情况", "案件编号", "记录人")  # fmt: skip


async def police_report(
    pool: Any, first: dt.date, last: dt.date, tz: dt.tzinfo
) -> list[dict[str, str]]:
    """Art. 45's list for a period: the non-conforming vehicles recorded from ``first`` to
    ``last`` (local days, both included), by the pass's time, one row of POLICE_COLUMNS each."""
    start = dt.datetime.combine(first, dt.time(), tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
    rows = await pool.fetch(
        "SELECT f.*, c.plate, c.plate_color, c.violation, c.site_id, c.ts, p.name AS owner,"
        " n.document->>'site_name' AS site_name FROM chaogao_nonconforming f"
        " JOIN cases c USING (case_id) LEFT JOIN case_parties p USING (case_id)"
        " LEFT JOIN violation_notices n USING (case_id)"
        " WHERE f.flagged_at >= $1 AND f.flagged_at < $2 ORDER BY c.ts, f.case_id", start, end)  # fmt: skip
    out = []
    for r in rows:
        det = json.loads(r["violation"]).get("detection") or {}
        region = home_region(r["plate"])
        out.append(dict(zip(POLICE_COLUMNS, (
            r["plate"] or UNKNOWN, PLATE_COLOR_ZH.get(r["plate_color"] or "", UNKNOWN),
            f"{region.province}（{region.prefix}）" if isinstance(region, Region) else UNKNOWN,
            vehicle_type(det.get("configuration")) or UNKNOWN, str(det.get("axle_count") or UNKNOWN),
            r["owner"] or UNKNOWN, r["ts"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            r["site_name"] or r["site_id"], NONCONFORMING_KINDS[r["kind"]], r["reason"],
            r["case_id"], r["flagged_by"]), strict=True)))  # fmt: skip
    return out
