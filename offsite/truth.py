"""What the regulations call for on simulated traffic, computed from the ground truth (the
simulator's own numbers), independently of the pipeline's detectors and rules — except axle
groups, which are judged with the axle detector's per-vehicle reference twin (itself checked
against hand-worked GB 1589 examples)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from detectors import axles
from detectors.stage import HEAVY_KG
from events import UNENFORCEABLE_FLAGS
from ingest import Pass
from ingest.simulate import Truth


def _axle_over(p: Pass) -> tuple[int, int] | None:
    """(load, limit) of the vehicle's worst axle group when it is over after the margin."""
    w = p.wim
    n = w.axle_count
    drive = [1 <= k <= (w.drive_axles or 1) for k in range(n)]
    judged, groups, worst = axles.detect_one(w.axle_weights_kg, w.axle_spacings_mm,
                                             [k > 0 for k in range(n)], drive)  # fmt: skip
    if not judged or worst < 0:
        return None
    _, _, _, limit, load, _ = groups[worst]
    margin = -(-Fraction(load) * Fraction(str(p.truth.accuracy_class)) // 100)
    return (load, limit) if load - int(margin) - limit > 0 else None


def expected_cases(passes: list[Pass], verified: bool = True) -> dict[str, dict[str, Any]]:
    """record_id → the case the regulation calls for: over = measured − ⌈measured × class %⌉ −
    limit; > 0 is a case; 2016 No. 62 Art. 43 (2) for clean passes with a readable plate
    (partial tonne down, cap 30,000), review otherwise. ``verified``: plates are read a second
    time from their images, which catches the cameras' confident misreads."""
    out = {}
    for p in passes:
        t = p.truth
        tolerance = -(-Fraction(t.measured_kg) * Fraction(str(t.accuracy_class)) // 100)
        over = t.measured_kg - int(tolerance) - t.limit_kg
        if over <= 0:
            axle = _axle_over(p)
            if axle is not None:  # the national baseline sends axle overloads to review
                load, limit = axle
                margin = int(-(-Fraction(load) * Fraction(str(t.accuracy_class)) // 100))
                out[t.record_id] = {"plate": t.read_plate, "outcome": "review", "fine_cny": None,
                                    "overload_kg": load - margin - limit, "limit_kg": limit}  # fmt: skip
            continue
        plate_ok = t.capture == "ok" or (t.capture == "confident_misread" and not verified)
        if UNENFORCEABLE_FLAGS.intersection(t.flags) or not plate_ok:
            outcome, fine = "review", None
        elif over <= 1000:
            outcome, fine = "warning", None
        else:
            outcome, fine = "fine", min(30_000, 500 * (over // 1000))
        out[t.record_id] = {
            "plate": t.read_plate,
            "outcome": outcome,
            "fine_cny": fine,
            "overload_kg": over,
            "limit_kg": t.limit_kg,
        }
    return out


def expected_missing_plates(truth: list[Truth]) -> set[str]:
    """record_ids of heavy vehicles whose plate no camera read: leads for the police."""
    return {
        t.record_id
        for t in truth
        if t.measured_kg >= HEAVY_KG and t.capture in ("missed", "unreadable")
    }
