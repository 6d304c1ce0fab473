"""Applying a discretion baseline to the facts of one pass: admissibility, history, tier,
penalty, and the decision's trace (which baseline, which tier, why, with what rounding)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from .baseline import Baseline, Outcome, Quantity, Range, Tier

ROUNDING_ZH = {"down": "不计", "up": "按1个单位计", "proportional": "按比例计"}


@dataclass(frozen=True)
class Facts:
    """What a decision is made from, as measured and as found in the registry and history."""

    record_id: str
    violation_code: str
    measured_kg: int
    device_tolerance_kg: int  # the device's in-service MPE, used when the baseline says so
    limit_kg: int
    hour: int  # local hour of the pass, 0–23
    admissible: bool
    reasons: tuple[str, ...] = ()
    prior_offences: int = 0
    # the limit under the other reading of a fact that was not reported (e.g. the body of a
    # 4-axle vehicle); ``limit_kg`` is the reading favourable to the party, which decides
    other_limit_kg: int | None = None
    other_reading: str | None = None
    whole: bool = True  # False: the device did not weigh the vehicle whole → review
    weighed: str = "车货总质量"  # what measured_kg is the mass of, as the notice names it
    pass_date: dt.date | None = None  # the site's local date of the pass
    decided_on: dt.date | None = None  # the day of the decision (Art. 36's two years)


# 行政处罚法 Art. 36: a violation not discovered within two years is not punished.
LIMITATION_YEARS = 2


@dataclass(frozen=True)
class Decision:
    record_id: str
    violation_code: str | None
    outcome: str  # none | no_penalty | warning | fine | review
    fine_cny: int | None
    measured_kg: int
    tolerance_kg: int
    limit_kg: int
    overload_kg: int
    tier: str | None
    tier_name: str | None
    legal_basis: str
    penalty_basis: str
    rounding: str | None
    reasons: list[str]
    quantities: dict[str, int]
    reasoning: str  # 说理, for the notice
    legal_review: bool
    baseline: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def tolerance_kg(b: Baseline, facts: Facts) -> int:
    if b.tolerance.method == "device_mpe":
        return facts.device_tolerance_kg
    if b.tolerance.method == "percent":
        assert b.tolerance.percent is not None
        return math.ceil(Fraction(facts.measured_kg) * Fraction(str(b.tolerance.percent)) / 100)
    return 0


def fine_of(outcome: Outcome, overload_kg: int) -> int | None:
    """The fine of an outcome for an overload; None for no penalty and warnings."""
    if outcome.kind == "fixed":
        return outcome.amount_cny
    if outcome.kind == "range":
        return outcome.default_cny
    if outcome.kind != "per_unit":
        return None
    assert outcome.unit_kg and outcome.amount_cny is not None
    units = Fraction(overload_kg, outcome.unit_kg)
    if outcome.rounding == "down":
        fine = math.floor(units) * outcome.amount_cny
    elif outcome.rounding == "up":
        fine = math.ceil(units) * outcome.amount_cny
    else:  # proportional, to the whole yuan in the party's favour
        fine = math.floor(units * outcome.amount_cny)
    return min(fine, outcome.cap_cny) if outcome.cap_cny is not None else fine


def _matches(when: dict[Quantity, Range], q: dict[str, int]) -> bool:
    return all(name in q and r.contains(q[name]) for name, r in when.items())


def decide(b: Baseline, content_hash: str, facts: Facts) -> Decision:
    """The decision on ``facts`` under ``b``. Where a fact only the limit rests on was not
    reported, the reading most favourable to the party decides (see the rule below); a doubt
    about who or what the vehicle is stays a matter for review (``facts.admissible``)."""
    d = _decide(b, content_hash, facts)
    if facts.other_limit_kg is None or d.outcome in ("none", "review"):
        return d
    # Rule (2016 No. 62 Art. 3 (4)–(8); 行政处罚法 Art. 40): the configuration rows of Art. 3
    # give a 3- or 4-axle vehicle's limit by its body (rigid or combination) and a 6-axle
    # combination's by its drive axles (49,000 kg; 46,000 kg with a single drive axle). When
    # the record does not say which row applies, the vehicle is known, only its limit is in
    # doubt. Art. 40: "违法事实不清、证据不足的，不得给予行政处罚" — the excess that is proven
    # under every reading is the excess over the higher limit, so the higher limit (the
    # party's favourable reading, ``facts.limit_kg``) decides, without review: e.g. 55,300 kg,
    # 6 axles, drive axles unknown, class 2 → 55,300 − 1,106 − 49,000 = 5,194 kg → 2,500 CNY.
    return replace(
        d,
        reasons=[*d.reasons, f"{facts.other_reading} ({facts.other_limit_kg:,} kg) not "
                 "established: the reading favourable to the party decides (Art. 40)"],
        reasoning=d.reasoning + f"因车辆结构未报告（或为{facts.other_reading}，限定标准"
        f"{facts.other_limit_kg}千克），依据《中华人民共和国行政处罚法》第四十条，按对当事人"
        f"最有利的限定标准{facts.limit_kg}千克认定。",
    )  # fmt: skip


def _decide(b: Baseline, content_hash: str, facts: Facts) -> Decision:
    rule = b.violations.get(facts.violation_code)
    if rule is None:  # the jurisdiction has no rule for it: an officer looks, nothing is proposed
        facts = replace(facts, admissible=False, reasons=(
            *facts.reasons, f"baseline {b.id} has no rule for {facts.violation_code}"))  # fmt: skip
    tol = tolerance_kg(b, facts)
    over = facts.measured_kg - tol - facts.limit_kg
    q = {
        "overload_kg": over,
        "overload_pct": math.floor(Fraction(100 * over, facts.limit_kg)) if over > 0 else 0,
        "prior_offences": facts.prior_offences,
        "hour": facts.hour,
    }
    base: dict[str, Any] = dict(
        record_id=facts.record_id, measured_kg=facts.measured_kg, tolerance_kg=tol,
        limit_kg=facts.limit_kg, overload_kg=over, quantities=q,
        legal_basis="；".join(c.text() for c in rule.legal_basis) if rule else "",
        penalty_basis="；".join(c.text() for c in rule.penalty_basis) if rule else "",
        baseline={"id": b.id, "version": b.version, "content_hash": content_hash,
                  "jurisdiction": b.jurisdiction, "status": b.status,
                  "document": f"{b.authority}《{b.document}》({b.document_number})"},
    )  # fmt: skip
    measured = _measured_zh(facts, tol, over)
    if not facts.whole:
        return Decision(
            violation_code=facts.violation_code, outcome="review", fine_cny=None, tier="review",
            tier_name="转人工审核", rounding=None,
            reasons=[*facts.reasons, "not weighed whole: routed to review, no penalty proposed"],
            reasoning=measured + "因设备未能完整称重，该测量结果不作为处罚依据，转人工审核。",
            legal_review=False, **base,
        )  # fmt: skip
    if over <= 0:
        return Decision(violation_code=None, outcome="none", fine_cny=None, tier=None,
                        tier_name=None, rounding=None, reasons=list(facts.reasons),
                        reasoning=measured + "未超过限定标准。", legal_review=False, **base)  # fmt: skip
    if _time_barred(facts):
        return Decision(
            violation_code=facts.violation_code, outcome="no_penalty", fine_cny=None,
            tier="time_barred", tier_name="超过二年未被发现", rounding=None,
            reasons=[*facts.reasons, f"time-barred: the pass on {facts.pass_date} is more than "
                     f"{LIMITATION_YEARS} years before the decision on {facts.decided_on} "
                     "(行政处罚法 Art. 36)"],
            reasoning=measured + "该违法行为在二年内未被发现，依据《中华人民共和国行政处罚法》"
            "第三十六条第一款，不再给予行政处罚。", legal_review=False, **base,
        )  # fmt: skip
    if not facts.admissible:
        why = "、".join(facts.reasons) or "测量不可采信"
        return Decision(
            violation_code=facts.violation_code, outcome="review", fine_cny=None, tier="review",
            tier_name="转人工审核", rounding=None,
            reasons=[*facts.reasons, "not admissible: routed to review, no penalty proposed"],
            reasoning=measured + f"因{why}，该测量结果暂不作为处罚依据，转人工审核。",
            legal_review=False, **base,
        )  # fmt: skip
    assert rule is not None  # admissible facts always have a rule (see above)
    first = rule.first_offence
    if first is not None and facts.prior_offences == 0 and _matches(first.when, q):
        tier = Tier(
            id="first_offence", name="首次违法且情节轻微", when=first.when, outcome=first.outcome
        )
        basis = f"；{first.basis.text()}"
    else:
        tier = _tier(rule.tiers, q)
        basis = ""
    fine = fine_of(tier.outcome, over)
    outcome = {"no_penalty": "no_penalty", "warning": "warning", "review": "review"}.get(
        tier.outcome.kind, "fine"
    )
    return Decision(
        violation_code=facts.violation_code, outcome=outcome, fine_cny=fine, tier=tier.id,
        tier_name=tier.name, rounding=tier.outcome.rounding, reasons=list(facts.reasons),
        reasoning=measured + _penalty_zh(b, rule.name, base, tier, fine, basis),
        legal_review=fine is not None and fine >= b.legal_review.fine_cny_at_least, **base,
    )  # fmt: skip


def _tier(tiers: list[Tier], q: dict[str, int]) -> Tier:
    """The most specific tier that applies (``rules.baseline.problems`` makes sure one does)."""
    for t in sorted(tiers, key=lambda t: -len(t.when)):
        if _matches(t.when, q):
            return t
    raise ValueError(f"no tier applies to {q}: the baseline was not checked")


def _time_barred(facts: Facts) -> bool:
    if facts.pass_date is None or facts.decided_on is None:
        return False
    day = facts.pass_date
    try:
        limit = day.replace(year=day.year + LIMITATION_YEARS)
    except ValueError:  # 29 February
        limit = day.replace(year=day.year + LIMITATION_YEARS, day=28)
    return facts.decided_on > limit


def review_without_baseline(facts: Facts, why: str) -> Decision:
    """A review decision when no baseline may decide (none in force on the pass date)."""
    return Decision(
        record_id=facts.record_id, violation_code=facts.violation_code, outcome="review",
        fine_cny=None, measured_kg=facts.measured_kg, tolerance_kg=facts.device_tolerance_kg,
        limit_kg=facts.limit_kg,
        overload_kg=facts.measured_kg - facts.device_tolerance_kg - facts.limit_kg,
        tier="review", tier_name="转人工审核", legal_basis="", penalty_basis="", rounding=None,
        reasons=[*facts.reasons, why, "not admissible: routed to review, no penalty proposed"],
        quantities={}, reasoning=f"{why}，转人工审核。", legal_review=False,
        baseline={"id": "none", "version": 0, "content_hash": "", "jurisdiction": "",
                  "status": "", "document": ""},
    )  # fmt: skip


def _measured_zh(facts: Facts, tol: int, over: int) -> str:
    return (
        f"经检测，该车{facts.weighed}{facts.measured_kg}千克，扣除计量允差{tol}千克后为"
        f"{facts.measured_kg - tol}千克，限定标准{facts.limit_kg}千克，"
        + (f"超限{over}千克。" if over > 0 else "")
    )


def _penalty_zh(
    b: Baseline, name: str, base: dict[str, Any], tier: Tier, fine: int | None, basis: str
) -> str:
    o = tier.outcome
    if o.kind == "review":
        what = "本基准不直接给出处罚，转人工审核"
    elif o.kind == "no_penalty":
        what = "不予处罚"
    elif o.kind == "warning":
        what = "予以警告"
    elif o.kind == "per_unit":
        what = (f"罚款{fine}元（每超{o.unit_kg}千克罚款{o.amount_cny}元，不足{o.unit_kg}千克的部分"
                f"{ROUNDING_ZH[o.rounding or 'down']}" + (f"，最高{o.cap_cny}元" if o.cap_cny else "")
                + "）")  # fmt: skip
    else:
        what = f"罚款{fine}元"
    return (
        f"依据{base['legal_basis']}，构成{name}；依据{base['penalty_basis']}{basis}及"
        f"{base['baseline']['document']}“{tier.name}”档，{what}。"
    )
