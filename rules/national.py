"""The national penalty for gross-weight overload: 2016 No. 62 Art. 43 para. 1 item (2).

车货总质量超过本规定第三条第一款第四项至第八项规定的限定标准，但未超过1000千克的，予以警告；
超过1000千克的，每超1000千克罚款500元，最高不得超过30000元。
The article does not say how a partial tonne counts; this rule counts it down (round down), the
reading most favourable to the party, and every decision says so. Provincial discretion
baselines (自由裁量权基准) will replace this rule per site jurisdiction.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import Detection, Violation, derive_id

RULE = "national.2016-62.art43"
RULE_VERSION = "1.0.0"
VIOLATION_CODE = "road.overload.gross"
LEGAL_BASIS = "《超限运输车辆行驶公路管理规定》(交通运输部令2016年第62号)第三条第一款"
PENALTY_BASIS = "《超限运输车辆行驶公路管理规定》(交通运输部令2016年第62号)第四十三条第一款第(二)项"
WARNING_MAX_KG = 1_000
FINE_PER_TONNE_CNY = 500
FINE_CAP_CNY = 30_000
ROUNDING = "partial_tonne_down"


@dataclass(frozen=True)
class Penalty:
    outcome: str  # none | warning | fine
    fine_cny: int | None
    tier: str


def penalty(overload_kg: int) -> Penalty:
    """Art. 43 (2) for an overload in kg (already net of any tolerance)."""
    if overload_kg <= 0:
        return Penalty("none", None, "not_over")
    if overload_kg <= WARNING_MAX_KG:
        return Penalty("warning", None, "art43-2-warning")
    fine = (overload_kg // 1_000) * FINE_PER_TONNE_CNY
    if fine >= FINE_CAP_CNY:
        return Penalty("fine", FINE_CAP_CNY, "art43-2-cap")
    return Penalty("fine", fine, "art43-2-per-tonne")


def decide(det: Detection) -> Violation:
    """The decision on one overload detection. A detection that is not enforceable is routed to
    review with its reasons and never fined."""
    reasons = list(det.reasons)
    if det.enforceable:
        p = penalty(det.overload_kg)
        outcome, fine, tier = p.outcome, p.fine_cny, p.tier
    else:
        outcome, fine, tier = "review", None, "review"
        reasons.append("not_enforceable: routed to officer review, no penalty proposed")
    return Violation(
        violation_id=derive_id("vio", det.detection_id, RULE, RULE_VERSION),
        detection_id=det.detection_id,
        record_id=det.record_id,
        site_id=det.site_id,
        ts=det.ts,
        plate=det.plate,
        plate_color=det.plate_color,
        violation_code=VIOLATION_CODE,
        outcome=outcome,  # type: ignore[arg-type]
        fine_cny=fine,
        measured_kg=det.measured_kg,
        tolerance_kg=det.tolerance_kg,
        limit_kg=det.limit_kg,
        overload_kg=det.overload_kg,
        tier=tier,
        legal_basis=LEGAL_BASIS,
        penalty_basis=PENALTY_BASIS,
        rounding=ROUNDING,
        reasons=reasons,
        rule=RULE,
        rule_version=RULE_VERSION,
        detection=det,
    )
