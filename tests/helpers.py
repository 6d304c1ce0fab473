"""Expectations computed from the simulator's ground truth, independently of the pipeline code."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

UNFIT = {"lane_change", "acceleration", "straddle", "tailgating", "off_scale"}


def expected_cases(truth: list[Any], verified: bool = True) -> dict[str, dict[str, Any]]:
    """record_id → the case the regulation calls for: over = measured − ⌈measured × class %⌉ −
    limit; > 0 is a case; Art. 43 (2) for clean passes with a readable plate, review otherwise.
    ``verified``: plates are read a second time from their images, which catches the cameras'
    confident misreads (without images there is nothing to verify, so everything is review)."""
    out = {}
    for t in truth:
        tolerance = -(-Fraction(t.measured_kg) * Fraction(str(t.accuracy_class)) // 100)
        over = t.measured_kg - int(tolerance) - t.limit_kg
        if over <= 0:
            continue
        plate_ok = t.capture == "ok" or (t.capture == "confident_misread" and not verified)
        clean = not UNFIT.intersection(t.flags) and plate_ok
        if not clean:
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
