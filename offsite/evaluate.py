"""`offsite rules check` and `offsite rules evaluate`: baselines offline, no broker."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from detectors.limits import CONFIGURATIONS, configuration, infer_kind
from detectors.overload import detect_one
from events import UNENFORCEABLE_FLAGS, Detection, Registry, WimRecord
from events.stage import validation_reason
from rules import Baseline, Facts, decide, facts_of
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


def facts_of_wim(record: WimRecord, registry: Registry | None) -> Facts:
    """Facts of a raw WIM record. Without a registry (--as-measured) the record is taken as
    admissible and its gross as final; with one, the device's class, certificate and the
    record's flags and integrated plate decide admissibility, as in the pipeline."""
    kind = record.vehicle_kind or infer_kind(record.axle_count, record.axle_spacings_mm)
    config = configuration(record.axle_count, kind == "combination", record.drive_axles)
    reasons: list[str] = []
    permille, certified = 0, True
    if registry is not None:
        device = registry.device(record.device_id)
        site = registry.site(record.site_id)
        if device is None or device.accuracy_class is None or site is None:
            raise ValueError(f"{record.record_id}: site or device not in the registry")
        permille = round(device.accuracy_class * 10)
        certified = device.certificate is not None and device.certificate.valid_on(record.ts.date())
        reasons += [] if certified else ["certificate_invalid_on_pass_date"]
        reasons += [f"flag:{f}" for f in sorted(UNENFORCEABLE_FLAGS.intersection(record.flags))]
        reasons += [] if record.plate else ["plate:no_capture"]
        reasons += [] if site.announced else ["site_not_announced"]
        reasons += [] if site.signed else ["site_not_signed"]
    limit, tolerance, *_ = detect_one(
        record.gross_weight_kg, config, permille, True, certified, True
    )
    assert limit == CONFIGURATIONS[config][0]
    return Facts(record_id=record.record_id, violation_code="road.overload.gross",
                 measured_kg=record.gross_weight_kg, device_tolerance_kg=tolerance,
                 limit_kg=limit, hour=record.ts.hour, admissible=not reasons,
                 reasons=tuple(reasons))  # fmt: skip


def evaluate(
    baseline: Baseline, digest: str, lines: Iterable[str], registry: Registry | None,
    out: TextIO = sys.stdout,
) -> int:  # fmt: skip
    """One decision per input line (a road.wim record or a detection); returns the bad lines."""
    if registry is None:  # --as-measured: the values are final, no margin
        baseline = baseline.model_copy(update={"tolerance": baseline.tolerance.model_copy(
            update={"method": "none", "percent": None})})  # fmt: skip
    bad = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and "detection_id" in obj:
                f = facts_of(Detection.model_validate(obj), registry)
            else:
                f = facts_of_wim(WimRecord.model_validate_json(line), registry)
            print(json.dumps(decide(baseline, digest, f).as_json(), ensure_ascii=False), file=out)
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
