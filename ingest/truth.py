"""What the regulations call for on simulated traffic, computed from the ground truth alone
(the simulator's own numbers), independently of the detectors and rules under test."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .simulate import Truth

UNFIT = {"lane_change", "acceleration", "straddle", "tailgating", "off_scale"}
HEAVY_KG = 12_000  # GB 7258's heavy goods vehicle


def expected_cases(truth: list[Truth], verified: bool = True) -> dict[str, dict[str, Any]]:
    """record_id → the case the regulation calls for: over = measured − ⌈measured × class %⌉ −
    limit; > 0 is a case; 2016 No. 62 Art. 43 (2) for clean passes with a readable plate
    (partial tonne down, cap 30,000), review otherwise. ``verified``: plates are read a second
    time from their images, which catches the cameras' confident misreads."""
    out = {}
    for t in truth:
        tolerance = -(-Fraction(t.measured_kg) * Fraction(str(t.accuracy_class)) // 100)
        over = t.measured_kg - int(tolerance) - t.limit_kg
        if over <= 0:
            continue
        plate_ok = t.capture == "ok" or (t.capture == "confident_misread" and not verified)
        if UNFIT.intersection(t.flags) or not plate_ok:
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
