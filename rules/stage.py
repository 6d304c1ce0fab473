"""The rules stage: detections → violations, under the discretion baseline of each site's
jurisdiction, with admissibility and the vehicle's history."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from events import DETECTIONS, VIOLATIONS, Detection, Registry, Violation, derive_id
from events.stage import BaseStage, Incoming, Outgoing, StageResult, decode_batch

from .baseline import Baseline
from .engine import Decision, Facts, decide

# detector → the violation code a baseline decides it under
VIOLATION_CODES = {"overload.gross": "road.overload.gross", "overload.axle": "road.overload.axle"}


class History(Protocol):
    async def prior_offences(
        self, passes: list[tuple[str, dt.datetime]], lookback_days: int
    ) -> list[int]:
        """For each (plate, ts): confirmed cases of that plate in [ts − lookback, ts)."""
        ...


class NoHistory:
    """Every vehicle is seen for the first time (for offline evaluation and tests)."""

    async def prior_offences(
        self, passes: list[tuple[str, dt.datetime]], lookback_days: int
    ) -> list[int]:
        return [0] * len(passes)


def facts_of(det: Detection, registry: Registry | None, prior: int = 0) -> Facts:
    """Facts of an overload detection: admissible only if the detector found it enforceable and
    the site was publicly announced (公示) and signed (标识) — 行政处罚法 Art. 41."""
    reasons = list(det.reasons)
    site = registry.site(det.site_id) if registry else None
    if registry is not None and (site is None or not site.announced):
        reasons.append("site_not_announced")
    if registry is not None and (site is None or not site.signed):
        reasons.append("site_not_signed")
    return Facts(
        record_id=det.record_id,
        violation_code=VIOLATION_CODES[det.detector],
        measured_kg=det.measured_kg,
        device_tolerance_kg=det.tolerance_kg,
        limit_kg=det.limit_kg,
        hour=det.ts.hour,
        admissible=det.enforceable and len(reasons) == len(det.reasons),
        reasons=tuple(reasons),
        prior_offences=prior,
    )


def violation_of(det: Detection, d: Decision) -> Violation:
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
        legal_review=d.legal_review, detection=det,
    )  # fmt: skip


class RulesStage(BaseStage):
    name = "rules"

    def __init__(
        self,
        baselines: dict[str, tuple[Baseline, str]],
        registry: Registry,
        history: History | None = None,
        *,
        topic_prefix: str = "",
    ) -> None:
        self.baselines, self.registry = baselines, registry
        self.history = history or NoHistory()
        self.inputs: tuple[str, ...] = (topic_prefix + DETECTIONS,)
        self.out_topic = topic_prefix + VIOLATIONS

    def baseline_for(self, site_id: str) -> tuple[Baseline, str]:
        site = self.registry.site(site_id)
        return self.baselines[site.jurisdiction if site else "national"]

    async def process(self, batch: list[Incoming]) -> StageResult:
        good, dead = decode_batch(Detection, batch, self.name)
        result = StageResult(dead=dead)
        dets = [det for det, _ in good if det.overloaded]
        priors = await self._priors(dets)
        for det, prior in zip(dets, priors, strict=True):
            baseline, digest = self.baseline_for(det.site_id)
            decision = decide(baseline, digest, facts_of(det, self.registry, prior))
            v = violation_of(det, decision)
            result.out.append(Outgoing(self.out_topic, v.site_id.encode(), v.to_json()))
        return result

    async def _priors(self, dets: list[Detection]) -> list[int]:
        """Prior confirmed offences, asked once per batch for the passes that have a plate and
        fall under a baseline whose outcome can depend on them."""
        out = [0] * len(dets)
        by_days: dict[int, list[int]] = {}
        for i, det in enumerate(dets):
            baseline = self.baseline_for(det.site_id)[0]
            if det.plate is not None and uses_history(baseline):
                by_days.setdefault(baseline.lookback_days, []).append(i)
        for days, idx in by_days.items():
            counts = await self.history.prior_offences(
                [(dets[i].plate or "", dets[i].ts) for i in idx], days
            )
            for i, n in zip(idx, counts, strict=True):
                out[i] = n
        return out


def uses_history(b: Baseline) -> bool:
    """Whether any decision of ``b`` can depend on the vehicle's prior offences."""
    return any(
        rule.first_offence is not None or any("prior_offences" in t.when for t in rule.tiers)
        for rule in b.violations.values()
    )
