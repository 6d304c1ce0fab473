"""`offsite rules check` and `offsite rules evaluate`: baselines offline, no broker."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from detectors import DetectionStage
from detectors.limits import CONFIGURATIONS, readings
from detectors.match import Match
from events import DETECTIONS, AnprCapture, Detection, Registry, WimRecord
from events.clock import Clock, wall_clock
from events.stage import Incoming, validation_reason
from rules import Baseline, Facts, RulesStage, decide, facts_of
from rules.baseline import Outcome, Quantity, Range

from .config import load_baseline


def check(path: Path, out: TextIO = sys.stdout) -> None:
    """Validate a baseline (raises ConfigError) and print its table."""
    b, digest = load_baseline(path)
    label = "法律文件" if b.status == "law" else "示例，非法律文件 (EXAMPLE, NOT LAW)"
    print(f"{b.id} v{b.version} — {b.jurisdiction} — {label}", file=out)
    print(f"  {b.authority}《{b.document}》{b.document_number}, effective {b.effective_from}"
          + (f" to {b.effective_until}" if b.effective_until else ""), file=out)  # fmt: skip
    print(f"  sha256 {digest}", file=out)
    margin = {"device_mpe": "the device's in-service MPE", "none": "none",
              "percent": f"{b.tolerance.percent} % of the measured mass"}[b.tolerance.method]  # fmt: skip
    print(f"  measurement margin: {margin}; history look-back {b.lookback_days} days;"
          f" legal review from {b.legal_review.fine_cny_at_least:,} CNY", file=out)  # fmt: skip
    for code, rule in b.violations.items():
        print(f"\n  {code}: {rule.name}", file=out)
        for c in rule.legal_basis:
            print(f"    违法依据 {c.text()}", file=out)
        for c in rule.penalty_basis:
            print(f"    处罚依据 {c.text()}", file=out)
        if rule.first_offence:
            fo = rule.first_offence
            print(
                f"    first offence, {_when(fo.when)}: {fo.outcome.kind} ({fo.basis.text()})",
                file=out,
            )
        for t in rule.tiers:
            print(f"    {t.id:18} {_when(t.when):50} {_outcome(t.outcome)}   {t.name}", file=out)


def _outcome(o: Outcome) -> str:
    if o.kind == "fixed":
        return f"{o.amount_cny} CNY"
    if o.kind == "per_unit":
        cap = f", cap {o.cap_cny} CNY" if o.cap_cny is not None else ""
        return f"{o.amount_cny} CNY per {o.unit_kg} kg, partial unit {o.rounding}{cap}"
    if o.kind == "range":
        return f"{o.min_cny}–{o.max_cny} CNY, default {o.default_cny}"
    return o.kind.replace("_", " ")


def _when(when: dict[Quantity, Range]) -> str:
    return ", ".join(f"{k} {r.text()}" for k, r in when.items())


def facts_as_measured(record: WimRecord) -> Facts:
    """Facts of a raw WIM record taken as admissible and final (--as-measured): no registry,
    no margin. The limit takes the reading most favourable to the party, and the other reading
    is kept, as in the pipeline."""
    config, other = readings(record.axle_count, record.vehicle_kind, record.drive_axles)
    return Facts(record_id=record.record_id, violation_code="road.overload.gross",
                 measured_kg=min(record.gross_weight_kg, sum(record.axle_weights_kg)),
                 device_tolerance_kg=0, limit_kg=CONFIGURATIONS[config][0], hour=record.ts.hour,
                 admissible=True, other_limit_kg=CONFIGURATIONS[other][0] if other else None,
                 other_reading=CONFIGURATIONS[other][1] if other else None)  # fmt: skip


def captured(record: WimRecord, registry: Registry) -> Match:
    """A record whose ``plate`` (with ``plate_color`` and ``vehicle_type`` when given) stands for
    a confident camera capture at the same instant, as the detection stage would match it."""
    extra = record.model_extra or {}
    site = registry.site(record.site_id)
    camera = next((d for d in site.devices if (x := registry.device(d)) and x.type == "anpr"),
                  "integrated") if site else "integrated"  # fmt: skip
    capture = None
    if record.plate is not None:
        capture = AnprCapture(
            capture_id=f"{record.record_id}-plate", site_id=record.site_id, camera_id=camera,
            lane=record.lane, ts=record.ts, plate=record.plate,
            plate_color=extra.get("plate_color"), confidence=1.0,
            vehicle_type=extra.get("vehicle_type"),
        )  # fmt: skip
    return Match(record, ("road.wim", 0, 0), capture, 1.0 if capture else 0.0)


async def _decide_wim(
    record: WimRecord, stage: DetectionStage, rules: RulesStage, registry: Registry
) -> list[dict[str, Any]]:
    """The pipeline's own decision on one record: the detection stage's assessment (flags,
    speed, certificate, plate checks, limits), then the rules stage's (admissibility, permits,
    the baseline in force on the pass date)."""
    problem = stage.check_registry(record.site_id, record.device_id, "wim", record.lane)
    if problem is not None:
        raise ValueError(f"{record.record_id}: {problem}")
    outs = [o for o in await stage.assess([captured(record, registry)])
            if o.topic == stage.out_topic]  # fmt: skip
    if not outs:  # within the limit under every reading
        config, _ = readings(record.axle_count, record.vehicle_kind, record.drive_axles)
        return [{"record_id": record.record_id, "violation_code": None, "outcome": "none",
                 "fine_cny": None, "measured_kg": min(record.gross_weight_kg,
                 sum(record.axle_weights_kg)), "limit_kg": CONFIGURATIONS[config][0],
                 "overload_kg": None, "tier": None, "legal_basis": "", "reasons": []}]  # fmt: skip
    res = await rules.process(
        [Incoming(DETECTIONS, 0, i, None, o.value) for i, o in enumerate(outs)]
    )
    return [json.loads(o.value) for o in res.out]


def evaluate(
    baseline: Baseline, digest: str, lines: Iterable[str], registry: Registry | None,
    out: TextIO = sys.stdout, clock: Clock = wall_clock,
) -> int:  # fmt: skip
    """One decision per input line (a road.wim record or a detection), decided at ``clock()``;
    returns the bad lines."""
    return asyncio.run(_evaluate(baseline, digest, lines, registry, out, clock))


async def _evaluate(
    baseline: Baseline, digest: str, lines: Iterable[str], registry: Registry | None,
    out: TextIO, clock: Clock,
) -> int:  # fmt: skip
    if registry is None:  # --as-measured: the values are final, no margin
        baseline = baseline.model_copy(update={"tolerance": baseline.tolerance.model_copy(
            update={"method": "none", "percent": None})})  # fmt: skip
    else:
        stage = DetectionStage(registry)
        versions = {s.jurisdiction: [(baseline, digest)] for s in registry.sites}
        rules = RulesStage(versions, registry, clock=clock)
    bad = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and "detection_id" in obj:
                det = Detection.model_validate(obj)
                if registry is None:
                    decisions = [decide(baseline, digest, facts_of(det, None)).as_json()]
                else:
                    res = await rules.process([Incoming(DETECTIONS, 0, 0, None, det.to_json())])
                    decisions = [json.loads(o.value) for o in res.out]
            else:
                record = WimRecord.model_validate_json(line)
                if registry is None:
                    decisions = [decide(baseline, digest, facts_as_measured(record)).as_json()]
                else:
                    decisions = await _decide_wim(record, stage, rules, registry)
            for d in decisions:
                d.pop("detection", None)  # the input, echoed: not part of a decision line
                print(json.dumps(d, ensure_ascii=False), file=out)
        except json.JSONDecodeError as exc:
            bad += 1
            print(f"offsite: line {n}: invalid JSON: {exc}", file=sys.stderr)
        except ValidationError as exc:
            bad += 1
            print(f"offsite: line {n}: {validation_reason(exc)}", file=sys.stderr)
        except ValueError as exc:
            bad += 1
            print(f"offsite: line {n}: {exc}", file=sys.stderr)
    return bad
