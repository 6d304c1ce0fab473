"""The rules stage: detections → violations, under the discretion baseline in force on the pass
date in each site's jurisdiction, with admissibility, permits, the vehicle's history, and one
fine per trip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, NamedTuple, Protocol

from events import (
    DETECTIONS,
    LEADS,
    VIOLATIONS,
    Detection,
    Lead,
    Registry,
    Violation,
    case_id,
    derive_id,
)
from events.clock import Clock
from events.stage import BaseStage, Incoming, Outgoing, StageResult, decode_batch
from events.water import (
    AGENCY,
    WATER_DETECTIONS,
    WATER_RULE,
    WATER_RULE_VERSION,
    WATER_VIOLATIONS,
    ControlSignal,
    WaterDetection,
    WaterRegistry,
    WaterViolation,
)

from .baseline import STATUTE_CAP_CNY, Baseline
from .engine import Decision, Facts, decide, review_without_baseline

# detector → the violation code a baseline decides it under
VIOLATION_CODES = {"overload.gross": "road.overload.gross", "overload.axle": "road.overload.axle"}
PENALTIES = ("fine", "warning")
# 2016 No. 62 Art. 46 (with 《公路安全保护条例》 Art. 66): more than 3 overload violations in a year
ART46_COUNT, ART46_DAYS = 3, 365
GROUP_KIND_ZH = {1: "单轴", 2: "并装双轴", 3: "并装三轴"}

Vehicle = tuple[str, str | None]  # normalised plate, plate colour
Versions = dict[str, list[tuple[Baseline, str]]]


class History(Protocol):
    async def prior_offences(
        self, passes: Sequence[tuple[str, str | None, dt.datetime]], lookback_days: int
    ) -> list[int]:
        """For each (plate, colour, ts): confirmed cases of that vehicle in [ts − lookback, ts)."""
        ...


class SignalLog(Protocol):
    async def signals_shown(
        self, asks: Sequence[tuple[str, str, dt.datetime]]
    ) -> list[Literal["go", "stop"] | None]:
        """For each (controlled section, direction "up"/"down", ts): the signal its control
        station showed then (its last change at or before ts), None when its log has none."""
        ...


class MemorySignals:
    """A control station's signal log in memory (tests, a replay of a log file)."""

    def __init__(self, log: Sequence[ControlSignal] = ()) -> None:
        self.log = sorted(log, key=lambda s: s.ts)

    async def signals_shown(
        self, asks: Sequence[tuple[str, str, dt.datetime]]
    ) -> list[Literal["go", "stop"] | None]:
        out: list[Literal["go", "stop"] | None] = []
        for section, direction, ts in asks:
            last = [s for s in self.log
                    if (s.section_id, s.direction) == (section, direction) and s.ts <= ts]  # fmt: skip
            out.append(last[-1].shown if last else None)
        return out


# Waterway findings the national texts give no penalty basis for on inland waters (events.water
# LEGAL_BASIS): leads for the maritime authority unless the registry's province names one
NO_INLAND_BASIS = frozenset({"water.ais_off", "water.identity"})


def maritime_lead(det: WaterDetection) -> Lead:
    """A waterway finding as a lead for the competent authority, with its evidence."""
    return Lead(
        lead_id=derive_id("lead", "maritime", det.detection_id), kind="maritime_referral",
        detector=det.detector, detector_version=det.detector_version, plate=None,
        site_id=det.site_id, ts=det.ts, score=det.confidence,
        reasons=[*det.reasons, det.legal_basis], sightings=[],
        agency=AGENCY[det.violation_code], evidence={"detection": det.model_dump(mode="json")},
    )  # fmt: skip


class NoHistory:
    """Every vehicle is seen for the first time (for offline evaluation and tests)."""

    async def prior_offences(
        self, passes: Sequence[tuple[str, str | None, dt.datetime]], lookback_days: int
    ) -> list[int]:
        return [0] * len(passes)


class TripPass(NamedTuple):
    """A pass that would be penalised, as the same-trip rule sees it. ``primary``: the case it
    is (itself) or attaches to; None until its rules worker has decided."""

    case_id: str
    plate: str
    plate_color: str | None
    ts: dt.datetime
    primary: str | None = None


class TripStore(Protocol):
    async def remember_trips(self, passes: Sequence[TripPass]) -> None:
        """Store passes (unresolved); a pass already stored is left as it is, unless its
        vehicle (plate, colour) changed — a corrected plate: then it is stored anew."""
        ...

    async def recall_trips(
        self, vehicles: Sequence[Vehicle], since: dt.datetime, until: dt.datetime
    ) -> Sequence[tuple[str, str, str | None, dt.datetime, str | None]]:
        """The stored passes of ``vehicles`` with since ≤ ts ≤ until, as TripPass fields."""
        ...

    async def resolve_trips(self, resolved: Sequence[tuple[str, str]]) -> None:
        """Record (case_id, primary case_id) for passes decided; a decided one stays."""
        ...


class MemoryTrips:
    """A trip store in this process's memory, for tests and offline runs."""

    def __init__(self) -> None:
        self.passes: dict[str, TripPass] = {}

    async def remember_trips(self, passes: Sequence[TripPass]) -> None:
        for p in passes:
            old = self.passes.get(p.case_id)
            if old is None or (old.plate, old.plate_color) != (p.plate, p.plate_color):
                self.passes[p.case_id] = p

    async def recall_trips(
        self, vehicles: Sequence[Vehicle], since: dt.datetime, until: dt.datetime
    ) -> list[TripPass]:
        wanted = set(vehicles)
        return [p for p in self.passes.values()
                if (p.plate, p.plate_color) in wanted and since <= p.ts <= until]  # fmt: skip

    async def resolve_trips(self, resolved: Sequence[tuple[str, str]]) -> None:
        for cid, primary in resolved:
            if self.passes[cid].primary is None:
                self.passes[cid] = self.passes[cid]._replace(primary=primary)


def facts_of(
    det: Detection,
    registry: Registry | None,
    prior: int = 0,
    decided_on: dt.date | None = None,
) -> Facts:
    """Facts of a detection: admissible only if the detector found it enforceable, and on the
    pass's local date the site had passed legal and technical review, was announced (公示) and
    signed (标识), and the device had been reviewed — 行政处罚法 Art. 41."""
    reasons = list(det.reasons)
    site = registry.site(det.site_id) if registry else None
    local = site.local(det.ts) if site else det.ts
    if registry is not None:
        device = registry.device(det.device_id)
        if site is None:
            reasons.append("site_not_in_registry")
        else:
            reasons += registry.not_admissible(site, det.device_id, local.date())
        if device is None or device.reviewed_on is None:
            reasons.append("device_not_reviewed")
        elif local.date() < device.reviewed_on:
            reasons.append(f"device_not_reviewed_on_pass_date: reviewed on {device.reviewed_on}")
    weighed = "车货总质量"
    if det.axle_group is not None:
        g = det.axle_group
        last = g["first_axle"] + g["kind"] - 1
        axles = f"第{g['first_axle']}轴" if g["kind"] == 1 else f"第{g['first_axle']}–{last}轴"
        weighed = f"{axles}（{GROUP_KIND_ZH.get(g['kind'], '轴组')}）荷载"
    return Facts(
        record_id=det.record_id,
        violation_code=VIOLATION_CODES[det.detector],
        measured_kg=det.measured_kg,
        device_tolerance_kg=det.tolerance_kg,
        limit_kg=det.limit_kg,
        hour=local.hour,
        admissible=det.enforceable and len(reasons) == len(det.reasons),
        reasons=tuple(reasons),
        prior_offences=prior,
        other_limit_kg=det.other_limit_kg,
        other_reading=det.other_reading,
        whole=det.whole,
        weighed=weighed,
        pass_date=local.date(),
        decided_on=decided_on,
    )


def violation_of(
    det: Detection,
    d: Decision,
    *,
    notices: Sequence[str] = (),
    decided_at: dt.datetime | None = None,
) -> Violation:
    b = d.baseline
    return Violation(
        violation_id=derive_id("vio", det.detection_id, b["id"], b["version"], b["content_hash"]),
        detection_id=det.detection_id, record_id=det.record_id, site_id=det.site_id, ts=det.ts,
        plate=det.plate, plate_color=det.plate_color,
        violation_code=VIOLATION_CODES[det.detector],
        outcome=d.outcome,  # type: ignore[arg-type]
        fine_cny=d.fine_cny, measured_kg=d.measured_kg, tolerance_kg=d.tolerance_kg,
        limit_kg=d.limit_kg, overload_kg=d.overload_kg, tier=d.tier or "none",
        tier_name=d.tier_name or "", legal_basis=d.legal_basis, penalty_basis=d.penalty_basis,
        rounding=d.rounding, reasons=d.reasons, rule=b["id"], rule_version=str(b["version"]),
        baseline_hash=b["content_hash"], quantities=d.quantities, reasoning=d.reasoning,
        legal_review=d.legal_review, detection=det, notices=list(notices), decided_at=decided_at,
    )  # fmt: skip


def water_violation_of(
    det: WaterDetection,
    waterways: WaterRegistry | None,
    *,
    decided_at: dt.datetime | None = None,
    signal: Literal["go", "stop"] | None = None,
) -> WaterViolation:
    """The decision on a waterway detection: always ``review`` with its legal basis and the
    competent authority, never a fine — the waterway fines are not verified against the
    official texts (◐, DOMAIN.md). Art. 41 of 行政处罚法 is checked as far as the registry
    can: a finding before its checkpoint's or receivers' start of enforcement (启用, after
    the 公示) is noted, so the officer sees it. 冲关 rests on ``signal``, what the control station showed (its log): without it the
    officer must obtain the log (a timetable is not the signal shown)."""
    reasons = list(det.reasons)
    basis = (waterways.penalty_bases.get(det.violation_code) if waterways else None) or (
        det.legal_basis)  # fmt: skip
    if det.violation_code == "water.signal":
        reasons.append("控制站信号记录: 驶入时信号显示禁止通行" if signal == "stop" else
                       "无控制站信号记录: 不能认定违反信号驶入, 须调取控制站信号记录核实")  # fmt: skip
    if waterways is not None:
        reasons += waterways.not_enforced_on(det.site_id, det.ts.astimezone(waterways.tz).date())
    vessel = det.vessel_name or det.ais_name or det.hull_name or (
        f"MMSI {det.mmsi}" if det.mmsi is not None else "未识别船舶")  # fmt: skip
    agency = AGENCY[det.violation_code]
    reasoning = (
        f"{vessel}: {'; '.join(reasons)}。依据: {basis}。主管机关: {agency}。"
        "罚款数额未经官方文本核对, 本系统不拟定处罚, 交执法人员审核事实后依法处理。"
    )
    return WaterViolation(
        violation_id=derive_id("vio", det.detection_id, WATER_RULE, WATER_RULE_VERSION),
        detection_id=det.detection_id, record_id=det.capture_id or det.detection_id,
        site_id=det.site_id, ts=det.ts, violation_code=det.violation_code,
        legal_basis=basis, reasons=reasons, quantities=dict(det.quantities),
        reasoning=reasoning, detection=det, decided_at=decided_at, agency=agency,
    )  # fmt: skip


def pass_case_id(v: Violation) -> str:
    return case_id(v.site_id, v.detection.device_id, v.record_id, v.violation_code)


class RulesStage(BaseStage):
    name = "rules"
    isolable = True  # ids derive from the detection; the trip store keeps what it has

    def __init__(
        self,
        baselines: Versions,
        registry: Registry,
        history: History | None = None,
        *,
        trips: TripStore | None = None,
        clock: Clock,
        topic_prefix: str = "",
        waterways: WaterRegistry | None = None,
        signals: SignalLog | None = None,
    ) -> None:
        """``baselines``: each jurisdiction's versions (every site's jurisdiction must have
        one: ``offsite.config.check_jurisdictions``). ``trips``: where the same-trip rule keeps
        the passes it has seen (PostgreSQL in the pipeline). ``clock``: the decision time
        (``events.clock``; Art. 36's two years run to it).
        ``waterways``: the waterway registry; with it, waterway detections are decided too
        (always for review: :func:`water_violation_of`), and ``signals`` is the control
        stations' signal log 冲关 is judged against (None: no log, every 冲关 for review)."""
        self.baselines, self.registry = baselines, registry
        self.history = history or NoHistory()
        self.trips = trips or MemoryTrips()
        self.clock = clock
        self.waterways, self.signals = waterways, signals
        self.lead_topic = topic_prefix + LEADS
        self.in_topic = topic_prefix + DETECTIONS
        self.water_topic = topic_prefix + WATER_DETECTIONS
        self.inputs: tuple[str, ...] = (self.in_topic,)
        if waterways is not None:
            self.inputs += (self.water_topic,)
        self.out_topic = topic_prefix + VIOLATIONS
        self.water_out_topic = topic_prefix + WATER_VIOLATIONS

    def baseline_for(self, site_id: str, day: dt.date) -> tuple[Baseline, str] | None:
        """The version of the site's jurisdiction's baseline in force on ``day``."""
        site = self.registry.site(site_id)
        versions = self.baselines.get(site.jurisdiction if site else "national", [])
        return next(((b, h) for b, h in versions if b.in_force_on(day)), None)

    def _day(self, det: Detection) -> dt.date:
        site = self.registry.site(det.site_id)
        return (site.local(det.ts) if site else det.ts).date()

    async def process(self, batch: list[Incoming]) -> StageResult:
        water = [m for m in batch if m.topic == self.water_topic]
        if water:
            road = await self._road([m for m in batch if m.topic != self.water_topic])
            mine = await self._water(water)
            return StageResult(out=road.out + mine.out, dead=road.dead + mine.dead)
        return await self._road(batch)

    async def _water(self, batch: list[Incoming]) -> StageResult:
        good, dead = decode_batch(WaterDetection, batch, self.name)
        now = self.clock()
        entries = [d for d, _ in good if d.violation_code == "water.signal"]
        asks = [(d.site_id, str(d.evidence.get("kind", "")).rsplit("_", 1)[-1], d.ts)
                for d in entries]  # fmt: skip
        shown = await self.signals.signals_shown(asks) if self.signals and asks else []
        signal = dict(zip([d.detection_id for d in entries], shown, strict=False))
        bases = self.waterways.penalty_bases if self.waterways else {}
        out = []
        for det, _ in good:
            if signal.get(det.detection_id) == "go":
                continue  # the station let it in: not 冲关, whatever the timetable says
            if det.violation_code in NO_INLAND_BASIS and det.violation_code not in bases:
                lead = maritime_lead(det)
                out.append(Outgoing(self.lead_topic, lead.site_id.encode(), lead.to_json()))
                continue
            v = water_violation_of(det, self.waterways, decided_at=now,
                                   signal=signal.get(det.detection_id))  # fmt: skip
            out.append(Outgoing(self.water_out_topic, v.site_id.encode(), v.to_json()))
        return StageResult(out=out, dead=dead)

    async def _road(self, batch: list[Incoming]) -> StageResult:
        if not batch:
            return StageResult()
        good, dead = decode_batch(Detection, batch, self.name)
        dets = [det for det, _ in good if det.overloaded or not det.whole]
        now = self.clock()
        found = [self.baseline_for(det.site_id, self._day(det)) for det in dets]
        priors = await self._priors(dets, found)
        recent = await self._recent(dets)
        violations = []
        for det, baseline, prior, seen in zip(dets, found, priors, recent, strict=True):
            site = self.registry.site(det.site_id)
            facts = facts_of(det, self.registry, prior, (site.local(now) if site else now).date())
            facts, covered = self._permits(det, facts)
            if baseline is None:
                d = review_without_baseline(facts, f"no baseline of the site's jurisdiction is in "
                                                   f"force on the pass date {facts.pass_date}")  # fmt: skip
            else:
                d = decide(baseline[0], baseline[1], facts)
            if covered is not None and d.outcome != "none":
                d = replace(d, violation_code=None, outcome="none", fine_cny=None, tier=None,
                            tier_name=None, legal_review=False, reasons=[*d.reasons, covered],
                            reasoning=d.reasoning + f"该车持有有效超限运输许可（{covered}），"
                            "不构成违法超限运输。")  # fmt: skip
            notices = []
            if seen >= ART46_COUNT and d.outcome in PENALTIES:
                notices.append(f"art46: {seen} confirmed overload cases of this vehicle in the "
                               f"{ART46_DAYS} days before this pass; confirmed, this one makes "
                               "more than 3 (2016 No. 62 Art. 46, 《公路安全保护条例》 Art. 66): "
                               "for the road transport agency, never a fine by itself")  # fmt: skip
            violations.append(violation_of(det, d, notices=notices, decided_at=now))
        violations = _cap_per_pass(violations)
        violations = await self._same_trip(violations, found)
        out = [Outgoing(self.out_topic, v.site_id.encode(), v.to_json()) for v in violations]
        return StageResult(out=out, dead=dead)

    def _permits(self, det: Detection, facts: Facts) -> tuple[Facts, str | None]:
        """(facts with what the vehicle's permits say, the permit that covers the pass)."""
        if det.plate_status != "read":
            return facts, None
        notes = []
        for permit in self.registry.permits_of(det.plate, det.plate_color):
            gaps = permit.does_not_cover(det.site_id, facts.pass_date or det.ts.date(),
                                         _net_gross(det))  # fmt: skip
            if not gaps:
                return facts, f"permit {permit.number} ({permit.issuer}) covers this pass"
            notes.append(f"permit {permit.number} ({permit.issuer}) does not cover this pass: "
                         + "; ".join(gaps))  # fmt: skip
        return replace(facts, reasons=(*facts.reasons, *notes)), None

    async def _priors(
        self, dets: list[Detection], found: list[tuple[Baseline, str] | None]
    ) -> list[int]:
        """Prior confirmed offences, asked once per batch and look-back for the passes that
        have a plate and fall under a baseline whose outcome can depend on them."""
        out = [0] * len(dets)
        by_days: dict[int, list[int]] = {}
        for i, (det, b) in enumerate(zip(dets, found, strict=True)):
            if det.plate is not None and b is not None and uses_history(b[0]):
                by_days.setdefault(b[0].lookback_days, []).append(i)
        for days, idx in by_days.items():
            counts = await self.history.prior_offences(
                [(dets[i].plate or "", dets[i].plate_color, dets[i].ts) for i in idx], days
            )
            for i, n in zip(idx, counts, strict=True):
                out[i] = n
        return out

    async def _recent(self, dets: list[Detection]) -> list[int]:
        """Confirmed overload cases of each vehicle with a trusted plate in the last year."""
        idx = [i for i, d in enumerate(dets) if d.plate_status == "read" and d.plate]
        counts = await self.history.prior_offences(
            [(dets[i].plate or "", dets[i].plate_color, dets[i].ts) for i in idx], ART46_DAYS
        )
        out = [0] * len(dets)
        for i, n in zip(idx, counts, strict=True):
            out[i] = n
        return out

    async def _same_trip(
        self, violations: list[Violation], found: list[tuple[Baseline, str] | None]
    ) -> list[Violation]:
        """One act, one fine (行政处罚法 Art. 29): a penalty of a vehicle seen again within the
        baseline's same-trip window attaches to that trip's case. Passes are remembered before
        they are recalled, so of two workers deciding one vehicle at once the later sees both;
        a pass with a decided primary in its window joins it, else the earliest undecided pass
        of the window is the primary — the same answer in whichever worker decides."""
        hours = {v.violation_id: b[0].same_trip_hours for v, b in zip(violations, found,
                 strict=True) if b is not None}  # fmt: skip
        mine = [v for v in violations if v.outcome in PENALTIES and v.plate
                and v.detection.plate_status == "read" and hours.get(v.violation_id)]  # fmt: skip
        if not mine:
            return violations
        passes = {pass_case_id(v): TripPass(pass_case_id(v), v.plate or "", v.plate_color, v.ts)
                  for v in mine}  # fmt: skip
        await self.trips.remember_trips(list(passes.values()))
        longest = dt.timedelta(hours=max(hours[v.violation_id] for v in mine))
        seen = {p[0]: TripPass(*p) for p in await self.trips.recall_trips(
            sorted({(p.plate, p.plate_color) for p in passes.values()}, key=str),
            min(p.ts for p in passes.values()) - longest,
            max(p.ts for p in passes.values()) + longest)}  # fmt: skip
        joins: dict[str, str] = {}
        for v in sorted(mine, key=lambda v: (v.ts, pass_case_id(v))):
            me = seen[pass_case_id(v)]
            if me.primary is not None:  # decided before (a replay): the same answer again
                primary = me.primary
            else:
                window = dt.timedelta(hours=hours[v.violation_id])
                near = [p for p in seen.values() if (p.plate, p.plate_color) == (me.plate,
                        me.plate_color) and abs(p.ts - me.ts) <= window]  # fmt: skip
                decided = sorted((p.ts, p.primary) for p in near if p.primary is not None
                                 and p.primary == p.case_id)  # fmt: skip
                # a pass attached to another trip does not open this one
                free = [p for p in near if p.primary in (None, p.case_id)]
                earliest = min(free, key=lambda p: (p.ts, p.case_id))
                primary = decided[0][1] if decided else earliest.case_id
                assert primary is not None
                seen[me.case_id] = me._replace(primary=primary)
            if primary != me.case_id:
                joins[me.case_id] = primary
        await self.trips.resolve_trips([(cid, seen[cid].primary or cid) for cid in passes])
        return [attach(v, joins[pass_case_id(v)]) if pass_case_id(v) in joins else v
                for v in violations]  # fmt: skip


def attach(v: Violation, primary: str) -> Violation:
    """``v`` as further evidence of the case ``primary`` of the same trip: no penalty."""
    return v.model_copy(update={
        "outcome": "no_penalty", "fine_cny": None, "tier": "same_trip", "legal_review": False,
        "tier_name": "同一运输行程，并入已立案件", "attached_to": primary,
        "reasons": [*v.reasons, f"same trip as case {primary}: attached to it as further "
                    "evidence, never a second fine (行政处罚法 Art. 29)"],
        "reasoning": v.reasoning + f"该车本次通行与案件{primary}属同一运输行程，依据《中华人民共和国"
        "行政处罚法》第二十九条，对同一个违法行为不得给予两次以上罚款，本记录作为该案证据。",
    })  # fmt: skip


def _net_gross(det: Detection) -> int:
    """The vehicle's gross as the party may be held to it: the lower of the reported gross and
    the axle sum, less the device's margin."""
    gross = min(int(det.wim["gross_weight_kg"]), sum(det.wim["axle_weights_kg"]))
    return gross - -(-gross * round(det.accuracy_class * 10) // 1000)


def _cap_per_pass(violations: list[Violation]) -> list[Violation]:
    """Several violations of one pass add up to at most 30,000 CNY (2016 No. 62 Art. 43): the
    later codes give way."""
    spent: dict[tuple[str, str, str], int] = {}
    out = []
    for v in violations:
        key = (v.site_id, v.detection.device_id, v.record_id)
        left = STATUTE_CAP_CNY - spent.get(key, 0)
        if v.fine_cny is not None and v.fine_cny > left:
            why = f"fines of this pass add up to at most {STATUTE_CAP_CNY:,} CNY: {left:,} left"
            update: dict[str, object] = {"fine_cny": left, "reasons": [*v.reasons, why]}
            if left <= 0:
                update.update(outcome="no_penalty", fine_cny=None, legal_review=False)
            v = v.model_copy(update=update)
        spent[key] = spent.get(key, 0) + (v.fine_cny or 0)
        out.append(v)
    return out


def uses_history(b: Baseline) -> bool:
    """Whether any decision of ``b`` can depend on the vehicle's prior offences."""
    return any(
        rule.first_offence is not None or any("prior_offences" in t.when for t in rule.tiers)
        for rule in b.violations.values()
    )
