"""What the regulations call for on simulated traffic, computed from the ground truth (the
simulator's own numbers), independently of the pipeline's detectors and rules — except axle
groups, which are judged with the axle detector's per-vehicle reference twin (itself checked
against hand-worked GB 1589 examples)."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import Any

from detectors import axles
from detectors.stage import HEAVY_KG
from events import UNENFORCEABLE_FLAGS

from .road import Pass, Truth

# 2016 No. 62 Art. 3 (4)–(8): when a record does not say the body (3–4 axles) or the drive axles
# (6+), the limit of each reading, the party's favourable one first
_READINGS = {3: (27_000, 25_000), 4: (36_000, 31_000), 6: (49_000, 46_000)}
SAME_TRIP = dt.timedelta(hours=24)  # configs/baselines/national.yaml same_trip_hours


def _margin(load: int, accuracy_class: float) -> int:
    return int(-(-Fraction(load) * Fraction(str(accuracy_class)) // 100))


def _axle_over(p: Pass) -> tuple[int, int, int] | None:
    """(load, limit, net excess) of the axle group furthest over once the device's margin is
    taken off every group, when that excess is > 0."""
    w = p.wim
    n = w.axle_count
    drive = [1 <= k <= (w.drive_axles or 1) for k in range(n)]
    judged, groups, _ = axles.detect_one(w.axle_weights_kg, w.axle_spacings_mm,
                                         [k > 0 for k in range(n)], drive)  # fmt: skip
    net = [(load - _margin(load, p.truth.accuracy_class) - limit, load, limit)
           for _, _, _, limit, load, _ in groups]  # fmt: skip
    if not judged or not net or max(net)[0] <= 0:
        return None
    over, load, limit = max(net)
    return load, limit, over


def _penalty(over: int) -> tuple[str, int | None]:
    """2016 No. 62 Art. 43 (2), national baseline: partial tonne down, at most 30,000 CNY."""
    if over <= 0:
        return "none", None
    if over <= 1000:
        return "warning", None
    return "fine", min(30_000, 500 * (over // 1000))


def expected_cases(passes: list[Pass], verified: bool = True) -> dict[str, dict[str, Any]]:
    """record_id → the case the regulation calls for (see :func:`expected`)."""
    return expected(passes, verified)[0]


def expected(
    passes: list[Pass], verified: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """record_id → the case the regulation calls for: measured = the lower of the gross and
    the axle sum; over = measured − ⌈measured × class %⌉ − limit; > 0 is a case; 2016 No. 62
    Art. 43 (2) for clean passes with a readable plate (partial tonne down, cap 30,000), review
    otherwise. A body or drive-axle count the record does not give: the party's higher limit,
    review when the other limit would decide otherwise. A vehicle penalised again within 24 h
    of its trip's first penalty: the same trip, attached to that case, no case of its own
    (Art. 29): the second dict maps its record_id to the first one's. ``verified``: plates are read a second time from their images, which catches the cameras'
    confident misreads."""
    out: dict[str, dict[str, Any]] = {}
    attached: dict[str, str] = {}
    trips: dict[tuple[str | None, str | None], tuple[dt.datetime, str]] = {}
    for p in sorted(passes, key=lambda p: (p.wim.ts, p.truth.record_id)):
        t, w = p.truth, p.wim
        measured = min(w.gross_weight_kg, sum(w.axle_weights_kg))
        limit, other = t.limit_kg, None
        unknown = (w.axle_count in (3, 4) and w.vehicle_kind is None) or (
            w.axle_count >= 6 and w.drive_axles is None
        )
        if unknown:
            limit, other = _READINGS[min(w.axle_count, 6)]
        over = measured - _margin(measured, t.accuracy_class) - limit
        if over <= 0:
            axle = _axle_over(p)
            if axle is not None:  # the national baseline sends axle overloads to review
                _, limit, net = axle
                out[t.record_id] = {"plate": t.read_plate, "outcome": "review", "fine_cny": None,
                                    "overload_kg": net, "limit_kg": limit}  # fmt: skip
                continue
        outcome, fine = _penalty(over)
        if other is not None and _penalty(over + limit - other) != (outcome, fine):
            outcome, fine = "review", None
        if outcome == "none":
            continue
        plate_ok = t.capture == "ok" or (t.capture == "confident_misread" and not verified)
        if UNENFORCEABLE_FLAGS.intersection(t.flags) or not plate_ok:
            outcome, fine = "review", None
        if outcome in ("fine", "warning"):
            vehicle = (t.read_plate, p.capture.plate_color if p.capture else None)
            start = trips.get(vehicle)
            if start is not None and w.ts - start[0] <= SAME_TRIP:
                attached[t.record_id] = start[1]
                continue
            trips[vehicle] = (w.ts, t.record_id)
        out[t.record_id] = {
            "plate": t.read_plate,
            "outcome": outcome,
            "fine_cny": fine,
            "overload_kg": over,
            "limit_kg": limit,
        }
    return out, attached


def expected_missing_plates(truth: list[Truth]) -> set[str]:
    """record_ids of heavy vehicles whose plate no camera read: leads for the police."""
    return {
        t.record_id
        for t in truth
        if t.measured_kg >= HEAVY_KG and t.capture in ("missed", "unreadable")
    }
