"""Credit records (issue #26 must-have 6): the 严重失信 list of 超限 transport and 信用修复.

Sources (checked with ``search``, the paperwork review §2.1-2.3):

- 《超限运输车辆行驶公路管理规定》(交通运输部令2016年第62号) Art. 46: "对1年内违法超限运输超过3次的
  货运车辆和驾驶人，以及违法超限运输的货运车辆超过本单位货运车辆总数10%的道路运输企业" the 道路运输
  管理机构 acts (jianbiaoku.com/webarbs/book/97314/4862496.shtml).
- 交通运输部办公厅《关于界定严重违法失信超限超载运输行为和相关责任主体有关事项的通知》(2017),
  listing situations (1)-(3): a 货运车辆 or its 驾驶人 "1年内违法超限运输超过3次"; a 道路运输企业
  "1年内违法超限运输的货运车辆超过本单位货运车辆总数10%，被道路运输管理机构责令停业整顿的"
  (creding.com/info/item/314755, ecv360.com 2017-02-16). The draft list is 公示 for 10 working
  days, objections go to the deciding body as a 申诉; the list is public for 2 years
  (石台县交通运输局 2024: "公示期结束后，信息正式发布，为期2年",
  ahshitai.gov.cn/OpennessContent/show/1624524.html).
- 信用修复: repair after the penalty is performed (履行完毕) and a 信用承诺书 is signed; 苏州's
  "承诺即修复" practice repairs on the commitment (credit.suzhou.gov.cn/news/show/381455.html);
  the province's setting chooses it, otherwise an officer checks and decides.

Counting: a decided case (a penalty decision made: ``penalty_decisions.kind = 'penalty'``; a
confirmation without a decision, a 不予处罚 decision, a withdrawn case, a revoked decision do not
count) counts on
the days from its decision to the same day a year later (民法典 Art. 200-201: the period runs
from the next day and ends on the corresponding day, or the month's last day when there is
none) — 366 days when a 29 February falls inside, else 365.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import asyncpg

from events.errors import DatabaseError, OffsiteError

from .calendar import WorkCalendar, deadline, year_later

OVER = 3  # Art. 46 / 2017 notice (1), (2): "超过3次" — the 4th decided violation in a year
FLEET_SHARE = 0.10  # Art. 46 / 2017 notice (3): "超过本单位货运车辆总数10%"
# the 2017 notice (3) lists such an operator only if it "被道路运输管理机构责令停业整顿", a fact
# offsite does not hold: a person confirms it (decide_held), it is never assumed
SUSPENSION = "列入须该企业已被道路运输管理机构责令停业整顿，待核实"
OBJECTION_DAYS = 10  # the draft's 公示 and objection period, in working days (2017 notice)
LIST_YEARS = 2  # the list is public for 2 years (石台县 2024, the 2017 notice's practice)

Kind = Literal["vehicle", "driver", "operator"]
KIND_ZH: dict[str, str] = {"vehicle": "货运车辆", "driver": "驾驶人", "operator": "道路运输企业"}
STATUS_ZH = {
    "held": "待人工审核", "draft": "拟列入（公示中）", "objected": "异议待处理",
    "dropped": "异议成立，不予列入", "listed": "已列入", "removed": "期满移出",
    "repaired": "已信用修复",
}  # fmt: skip
ACTIVE = ("held", "draft", "objected", "listed")
ACTION_ZH = {
    "held": "转人工审核", "draft": "生成拟列入告知书", "objected": "登记异议",
    "objection_upheld": "异议成立，不予列入", "objection_rejected": "异议不成立，列入名单",
    "dropped": "不予列入", "listed": "公示期满，列入名单", "removed": "公布期满，移出名单",
    "repair_applied": "申请信用修复", "repaired": "信用修复", "repair_refused": "不予信用修复",
}  # fmt: skip
ACTOR_ZH = {"sweep": "系统（定时办理）"}


class CreditError(OffsiteError):
    """A step of the credit workflow refused (the message is Chinese, for the officer)."""


@dataclass(frozen=True)
class Decided:
    """One decided case as credit counts it: its local decision day and who it names.
    ``vehicle``: plate and colour; ``driver``: the driver's ID number when the case knows it;
    ``operator``: the 统一社会信用代码 of the organisation that owns the vehicle."""

    case_id: str
    decided_on: dt.date
    vehicle: str | None
    driver: str | None = None
    operator: str | None = None
    name: str | None = None  # the party's name, for the documents


def counts(decision_day: dt.date, as_of: dt.date) -> bool:
    """Whether a decision made on ``decision_day`` counts in the year as of ``as_of``."""
    return decision_day <= as_of <= year_later(decision_day)


def in_year(rows: Iterable[Decided], as_of: dt.date) -> dict[tuple[str, str], list[Decided]]:
    """Each subject's decided cases counting as of ``as_of``, oldest first: keys are
    ``("vehicle", plate/colour)``, ``("driver", id)`` and ``("operator", credit code)``."""
    out: dict[tuple[str, str], list[Decided]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r.decided_on, r.case_id)):
        if not counts(r.decided_on, as_of):
            continue
        for kind, key in (("vehicle", r.vehicle), ("driver", r.driver), ("operator", r.operator)):
            if key:
                out[(kind, key)].append(r)
    return dict(out)


@dataclass(frozen=True)
class Finding:
    """A subject over the line as of a day: a draft, or (``held``) a reason it needs a person."""

    kind: Kind
    subject: str
    cases: tuple[Decided, ...]
    reason: str
    held: str | None = None
    name: str | None = field(default=None, compare=False)

    @property
    def entry_id(self) -> str:
        """Deterministic: the subject and the decision that put it over the line."""
        key = f"{self.kind}|{self.subject}|{self.cases[-1].case_id}"
        return "CR-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def findings(rows: Iterable[Decided], as_of: dt.date, fleets: Mapping[str, int]) -> list[Finding]:
    """Who is over the line as of ``as_of``: a vehicle or driver with more than 3 decided cases
    in the year; an operator whose vehicles with a decided case are more than 10 % of its fleet
    (``fleets``: credit code → 货运车辆总数; unknown → held for a person, never drafted)."""
    out = []
    for (kind, key), cases in sorted(in_year(rows, as_of).items()):
        name = cases[-1].name
        if kind in ("vehicle", "driver"):
            if len(cases) > OVER:
                out.append(Finding(cast(Kind, kind), key, tuple(cases), name=name, reason=(
                    f"{KIND_ZH[kind]}1年内违法超限运输{len(cases)}次，超过3次"
                    "（《超限运输车辆行驶公路管理规定》第四十六条）")))  # fmt: skip
            continue
        vehicles = {c.vehicle for c in cases if c.vehicle}
        fleet = fleets.get(key)
        if fleet is None or fleet < len(vehicles):
            why = "车辆总数不明" if fleet is None else f"登记车辆总数{fleet}少于违法车辆数"
            out.append(Finding("operator", key, tuple(cases), name=name, held=why, reason=(
                f"道路运输企业1年内违法超限运输车辆{len(vehicles)}辆，{why}，无法计算比例")))  # fmt: skip
        elif len(vehicles) > FLEET_SHARE * fleet:  # listed only once 停业整顿 was ordered: a person
            out.append(Finding("operator", key, tuple(cases), name=name, held=SUSPENSION, reason=(
                f"道路运输企业1年内违法超限运输车辆{len(vehicles)}辆，超过本单位货运车辆总数"
                f"{fleet}辆的10%；{SUSPENSION}（2017年通知第三项）")))  # fmt: skip
    return out


def objection_due(calendar: WorkCalendar, drafted_on: dt.date) -> dt.date:
    """The last day to object: 10 working days after the draft (the 2017 notice's 公示)."""
    return deadline(calendar, drafted_on, OBJECTION_DAYS, working=True).due


def listed_until(listed_on: dt.date) -> dt.date:
    """The last day on the public list: 2 years on (removed the day after)."""
    return year_later(listed_on, LIST_YEARS)


# -- documents: data the console renders (title, paragraphs) ------------------------------------


def _doc(title: str, *paras: str, agency: str = "") -> dict[str, Any]:
    """A document as data; ``agency``: the issuing agency (its seal on the PDF), none on the
    party's own 承诺书."""
    return {"title": title, "paragraphs": list(paras), "agency": agency}


def draft_notice(f: Finding, agency: str, drafted_on: dt.date, due: dt.date) -> dict[str, Any]:
    cases = "、".join(f"{c.case_id}（{c.decided_on.isoformat()}决定）" for c in f.cases)
    return _doc(
        "严重违法失信超限超载运输当事人拟列入告知书",
        f"{f.name or f.subject}（{KIND_ZH[f.kind]}：{f.subject}）：",
        f"经查，{f.reason}。所依据的行政处罚案件：{cases}。",
        f"依据交通运输部办公厅《关于界定严重违法失信超限超载运输行为和相关责任主体有关事项的通知》，"
        f"本机关拟将你（单位）列入严重违法失信超限超载运输当事人名单，自{drafted_on.isoformat()}起"
        f"公示十个工作日。",
        f"如有异议，请于{due.isoformat()}前向本机关提出申诉并提交相关材料；逾期未提出或者异议不成立的，"
        f"将正式列入名单，公布期为两年。",
        f"{agency}　{drafted_on.isoformat()}",
        agency=agency,
    )


def objection_decision(
    subject: str, upheld: bool, reason: str, agency: str, on: dt.date
) -> dict[str, Any]:
    result = "异议成立，不予列入严重违法失信超限超载运输当事人名单" if upheld else (
        "异议不成立，列入严重违法失信超限超载运输当事人名单")  # fmt: skip
    return _doc("异议处理决定书", f"{subject}：", f"经复核，{reason}。", f"本机关决定：{result}。",
                f"{agency}　{on.isoformat()}", agency=agency)  # fmt: skip


def commitment(name: str, subject: str, text: str, on: dt.date) -> dict[str, Any]:
    return _doc(
        "信用修复承诺书",
        f"本人（单位）{name}（{subject}）已履行行政处罚决定，现申请信用修复，并郑重承诺：",
        text
        or "严格遵守公路超限运输管理规定，今后不再发生违法超限运输行为；所提交材料真实有效，"
        "如有不实或再次违法，愿承担相应法律责任。",
        f"承诺人：{name}　{on.isoformat()}",
    )


def repair_decision(
    subject: str, approved: bool, basis: str, agency: str, on: dt.date
) -> dict[str, Any]:
    result = "准予信用修复，自本决定之日起停止公示" if approved else "不予信用修复"
    return _doc("信用修复决定书", f"{subject}：", f"{basis}。", f"本机关决定：{result}。",
                f"{agency}　{on.isoformat()}", agency=agency)  # fmt: skip


# -- the store ----------------------------------------------------------------------------------

DECIDED_SQL = (
    "SELECT d.case_id, d.decided_at, c.plate, c.plate_color, p.kind AS party_kind,"
    " p.name AS party_name, p.id_number FROM penalty_decisions d JOIN cases c USING (case_id)"
    " LEFT JOIN case_parties p USING (case_id)"
    " WHERE d.kind = 'penalty' AND c.status NOT IN ('withdrawn', 'not_punished', 'rejected', 'revoked')"
)


def decided_rows(rows: Iterable[Mapping[str, Any]], tz: dt.tzinfo) -> list[Decided]:
    """The case store's decided cases as :class:`Decided` (the driver: not in the case store
    yet, so drivers are never counted from it)."""
    out = []
    for r in rows:
        vehicle = f"{r['plate']}/{r['plate_color'] or ''}" if r["plate"] else None
        org = r["party_kind"] == "organization"
        out.append(Decided(
            r["case_id"], r["decided_at"].astimezone(tz).date(), vehicle,
            operator=r["id_number"] if org else None, name=r["party_name"]))  # fmt: skip
    return out


async def _audit(
    conn: Any, entry_id: str, at: dt.datetime, by: str, action: str, detail: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO credit_events (entry_id, at, by_user, action, detail)"
        " VALUES ($1, $2, $3, $4, $5)", entry_id, at, by, action, json.dumps(detail, ensure_ascii=False))  # fmt: skip


@dataclass
class Swept:
    drafted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Credit:
    """The credit workflow over the case store. ``clock``: now (tz-aware); the day of a step is
    its local day in ``tz``."""

    def __init__(
        self, pool: Any, calendar: WorkCalendar, tz: dt.tzinfo, agency: str,
        fleets: Mapping[str, int], repair_on_commitment: bool, clock: Any,
    ) -> None:  # fmt: skip
        self.pool, self.calendar, self.tz, self.agency = pool, calendar, tz, agency
        self.fleets, self.repair_on_commitment, self.clock = fleets, repair_on_commitment, clock

    def _now(self) -> tuple[dt.datetime, dt.date]:
        now: dt.datetime = self.clock()
        return now, now.astimezone(self.tz).date()

    async def sweep(self, as_of: dt.date) -> Swept | None:
        """Drafts, listings and removals due as of ``as_of``, once across every process (a
        PostgreSQL advisory lock): while another sweep runs, None and nothing is done."""
        now, _ = self._now()
        done = Swept()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtext('offsite_credit_sweep'))"
                ):
                    return None
                rows = decided_rows(await conn.fetch(DECIDED_SQL), self.tz)
                rows = [r for r in rows if r.decided_on <= as_of]
                active = {(r["kind"], r["subject"]) for r in await conn.fetch(
                    "SELECT kind, subject FROM credit_entries WHERE status = ANY($1)",
                    list(ACTIVE))}  # fmt: skip
                for f in findings(rows, as_of, self.fleets):
                    if (f.kind, f.subject) in active:
                        continue
                    due = objection_due(self.calendar, as_of)
                    status = "held" if f.held else "draft"
                    doc = {} if f.held else draft_notice(f, self.agency, as_of, due)
                    made = await conn.fetchval(
                        "INSERT INTO credit_entries (entry_id, kind, subject, name, status, reason,"
                        " cases, drafted_on, objection_due, document)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                        " ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id",
                        f.entry_id, f.kind, f.subject, f.name, status, f.reason,
                        json.dumps([{"case_id": c.case_id, "decided_on": c.decided_on.isoformat(),
                                     "vehicle": c.vehicle} for c in f.cases]),
                        as_of, due, json.dumps(doc, ensure_ascii=False))  # fmt: skip
                    if made:
                        (done.held if f.held else done.drafted).append(made)
                        await _audit(conn, made, now, "sweep", status, {"reason": f.reason})
                for r in await conn.fetch(
                    "UPDATE credit_entries SET status = 'listed', listed_on = objection_due + 1"
                    " WHERE status = 'draft' AND objection_due < $1 RETURNING entry_id",
                    as_of,
                ):
                    done.listed.append(r["entry_id"])
                    await _audit(conn, r["entry_id"], now, "sweep", "listed", {})
                for r in await conn.fetch(
                    "SELECT entry_id, listed_on FROM credit_entries WHERE status = 'listed'"
                ):
                    if as_of > listed_until(r["listed_on"]):
                        await conn.execute(
                            "UPDATE credit_entries SET status = 'removed', removed_on = $2"
                            " WHERE entry_id = $1", r["entry_id"], as_of)  # fmt: skip
                        done.removed.append(r["entry_id"])
                        await _audit(conn, r["entry_id"], now, "sweep", "removed", {})
                return done
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"the credit sweep failed: {exc}") from exc

    async def entries(self, statuses: Iterable[str] = STATUS_ZH) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM credit_entries WHERE status = ANY($1) ORDER BY drafted_on, entry_id",
            list(statuses))  # fmt: skip
        return [dict(r) for r in rows]

    async def entry(self, entry_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow("SELECT * FROM credit_entries WHERE entry_id = $1", entry_id)
        return None if row is None else dict(row)

    async def _entry(self, conn: Any, entry_id: str, *states: str) -> Any:
        row = await conn.fetchrow(
            "SELECT * FROM credit_entries WHERE entry_id = $1 FOR UPDATE", entry_id
        )
        if row is None:
            raise CreditError(f"没有信用记录 {entry_id}")
        if row["status"] not in states:
            raise CreditError(f"该记录当前为“{STATUS_ZH[row['status']]}”，不能办理此项")
        return row

    async def object(self, entry_id: str, by: str, text: str) -> None:
        """The party's objection (申诉), recorded within the objection period."""
        if not text.strip():
            raise CreditError("请填写异议内容")
        now, today = self._now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._entry(conn, entry_id, "draft")
            if today > row["objection_due"]:
                raise CreditError(f"异议期已于{row['objection_due'].isoformat()}届满")
            await conn.execute(
                "UPDATE credit_entries SET status = 'objected', objection = $2 WHERE entry_id = $1",
                entry_id, json.dumps({"text": text, "on": today.isoformat(), "by": by},
                                     ensure_ascii=False))  # fmt: skip
            await _audit(conn, entry_id, now, by, "objected", {"text": text})

    async def decide_objection(self, entry_id: str, by: str, upheld: bool, reason: str) -> None:
        """Upheld: the draft is dropped; rejected: the entry is listed from today."""
        if not reason.strip():
            raise CreditError("请填写复核理由")
        now, today = self._now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._entry(conn, entry_id, "objected")
            doc = objection_decision(
                row["name"] or row["subject"], upheld, reason, self.agency, today
            )
            await conn.execute(
                "UPDATE credit_entries SET status = $2, listed_on = $3, objection_document = $4"
                " WHERE entry_id = $1", entry_id, "dropped" if upheld else "listed",
                None if upheld else today, json.dumps(doc, ensure_ascii=False))  # fmt: skip
            await _audit(conn, entry_id, now, by, "objection_upheld" if upheld else
                         "objection_rejected", {"reason": reason})  # fmt: skip

    async def decide_held(
        self, entry_id: str, by: str, fleet: int | None, reason: str, suspended: bool = False
    ) -> None:
        """A held operator: a person enters the fleet size and whether the operator was ordered
        to 停业整顿 (2017 notice (3)): a draft when both hold (over 10 %), else dropped."""
        now, today = self._now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._entry(conn, entry_id, "held")
            cases = json.loads(row["cases"]) if isinstance(row["cases"], str) else row["cases"]
            vehicles = {c.get("vehicle") for c in cases}
            over = suspended and (
                fleet is not None and fleet >= len(vehicles) and len(vehicles) > FLEET_SHARE * fleet
            )
            if not over:
                await conn.execute(
                    "UPDATE credit_entries SET status = 'dropped' WHERE entry_id = $1", entry_id
                )
                await _audit(conn, entry_id, now, by, "dropped",
                             {"fleet": fleet, "suspended": suspended, "reason": reason})  # fmt: skip
                return
            reason_zh = (f"道路运输企业1年内违法超限运输车辆{len(vehicles)}辆，超过本单位货运车辆总数"
                         f"{fleet}辆的10%，并被责令停业整顿（《超限运输车辆行驶公路管理规定》"
                         "第四十六条；2017年通知第三项）")  # fmt: skip
            due = objection_due(self.calendar, today)
            f = Finding("operator", row["subject"], tuple(
                Decided(c["case_id"], dt.date.fromisoformat(c["decided_on"]), c.get("vehicle"))
                for c in cases), reason_zh, name=row["name"])  # fmt: skip
            await conn.execute(
                "UPDATE credit_entries SET status = 'draft', reason = $2, drafted_on = $3,"
                " objection_due = $4, document = $5 WHERE entry_id = $1", entry_id, reason_zh,
                today, due, json.dumps(draft_notice(f, self.agency, today, due), ensure_ascii=False))  # fmt: skip
            await _audit(conn, entry_id, now, by, "draft",
                         {"fleet": fleet, "suspended": suspended, "reason": reason})  # fmt: skip

    async def unpaid(self, conn: Any, entry_id: str) -> list[str]:
        """The counted cases whose fine is not paid in full."""
        rows = await conn.fetch(
            "SELECT d.case_id FROM credit_entries e,"
            " jsonb_array_elements(e.cases) AS x JOIN penalty_decisions d"
            " ON d.case_id = x->>'case_id' WHERE e.entry_id = $1 AND coalesce(d.fine_cny, 0) * 100"
            " > coalesce((SELECT sum(amount_fen) FROM payments p"
            " WHERE p.decision_no = d.decision_no), 0) ORDER BY d.case_id", entry_id)  # fmt: skip
        return [r["case_id"] for r in rows]

    async def apply_repair(self, entry_id: str, by: str, text: str = "") -> str:
        """信用修复 on the party's signed commitment, once every counted fine is paid: repaired
        at once where the province allows 承诺即修复, else waiting for an officer. Returns the
        application's status ('repaired' or 'applied')."""
        now, today = self._now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._entry(conn, entry_id, "listed")
            if await conn.fetchval(
                "SELECT 1 FROM credit_repairs WHERE entry_id = $1 AND status = 'applied'", entry_id
            ):
                raise CreditError("已有待审核的信用修复申请")
            if unpaid := await self.unpaid(conn, entry_id):
                raise CreditError(
                    f"行政处罚决定尚未履行完毕（未缴清罚款：{'、'.join(unpaid)}），不能申请信用修复"
                )
            promise = commitment(row["name"] or row["subject"], row["subject"], text, today)
            status = "repaired" if self.repair_on_commitment else "applied"
            decision = repair_decision(
                row["name"] or row["subject"], True, "当事人已履行行政处罚决定并作出信用承诺，"
                "依本省“承诺即修复”规定", self.agency, today) if status == "repaired" else None  # fmt: skip
            await conn.execute(
                "INSERT INTO credit_repairs (entry_id, applied_on, applied_by, commitment, status,"
                " decided_on, decided_by, decision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                entry_id, today, by, json.dumps(promise, ensure_ascii=False), status,
                today if decision else None, "承诺即修复" if decision else None,
                json.dumps(decision, ensure_ascii=False) if decision else None)  # fmt: skip
            await _audit(conn, entry_id, now, by, "repair_applied", {"status": status})
            if decision:
                await conn.execute(
                    "UPDATE credit_entries SET status = 'repaired' WHERE entry_id = $1", entry_id
                )
                await _audit(conn, entry_id, now, by, "repaired", {"basis": "承诺即修复"})
            return status

    async def decide_repair(self, entry_id: str, by: str, approved: bool, reason: str) -> None:
        """The officer's decision on a repair application (not 承诺即修复)."""
        if not reason.strip():
            raise CreditError("请填写审核意见")
        now, today = self._now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._entry(conn, entry_id, "listed")
            repair_id = await conn.fetchval(
                "SELECT repair_id FROM credit_repairs WHERE entry_id = $1 AND status = 'applied'"
                " FOR UPDATE", entry_id)  # fmt: skip
            if repair_id is None:
                raise CreditError("没有待审核的信用修复申请")
            if approved and (unpaid := await self.unpaid(conn, entry_id)):
                raise CreditError(f"行政处罚决定尚未履行完毕（未缴清罚款：{'、'.join(unpaid)}）")
            doc = repair_decision(
                row["name"] or row["subject"], approved, reason, self.agency, today
            )
            await conn.execute(
                "UPDATE credit_repairs SET status = $2, decided_on = $3, decided_by = $4,"
                " decision = $5 WHERE repair_id = $1", repair_id,
                "approved" if approved else "refused", today, by,
                json.dumps(doc, ensure_ascii=False))  # fmt: skip
            if approved:
                await conn.execute(
                    "UPDATE credit_entries SET status = 'repaired' WHERE entry_id = $1", entry_id
                )
            await _audit(conn, entry_id, now, by, "repaired" if approved else "repair_refused",
                         {"reason": reason})  # fmt: skip

    async def repairs(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM credit_repairs ORDER BY repair_id")
        return [dict(r) for r in rows]

    async def events(self, entry_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM credit_events WHERE entry_id = $1 ORDER BY event_id", entry_id
        )
        return [dict(r) for r in rows]
