"""What the regulations call for on simulated traffic, computed from the ground truth (the
simulator's own numbers) and the registry, independently of the pipeline's detectors and
rules: no code of ``detectors`` or ``rules`` is imported here. Each number below names its
source; a test that compares the pipeline with this oracle compares it with the law.

Sources:
- 2016 No. 62 (《超限运输车辆行驶公路管理规定》) Art. 3: the gross limits by configuration
  (DOMAIN.md table, ✓ in DOMAIN-REFERENCE.md); Art. 43 (2): 500 CNY per tonne over, at most
  30,000 CNY (DOMAIN.md worked examples).
- GB 1589-2016 axle and axle-group limits (DOMAIN-REFERENCE.md, ◐: as commonly tabulated).
- OIML R134-1:2006 Table 2 / JJG 907: a device of accuracy class N has an in-service maximum
  permissible error of ±N % of the vehicle mass (DOMAIN-REFERENCE.md, ✓); the national
  baseline deducts it, rounded up to the kilogram (configs/baselines/national.yaml,
  ``tolerance.method: device_mpe``), which is the reading favourable to the party.
- 行政处罚法 Art. 29 (one act, one fine; national.yaml ``same_trip_hours: 24``), Art. 36 (not
  penalised when not discovered within two years), Art. 41 (a device's record is evidence only
  from a site reviewed, announced, signed and in enforcement (启用), and a device certified on the day).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from itertools import pairwise
from typing import Any

from events import Registry

from .road import Pass, Truth

# 2016 No. 62 Art. 3 (4)–(8): when a record does not say the body (3–4 axles) or the drive axles
# (6+), the limit of each reading, the party's favourable (higher) one first
_READINGS = {3: (27_000, 25_000), 4: (36_000, 31_000), 6: (49_000, 46_000)}
SAME_TRIP = dt.timedelta(hours=24)  # configs/baselines/national.yaml same_trip_hours
LIMITATION_YEARS = 2  # 行政处罚法 Art. 36 para 1
HEAVY_KG = 12_000  # 重型货车, 12 t and more (GA 802 车辆类型): a missing plate is a lead
CAP_CNY = 30_000  # 2016 No. 62 Art. 43 (2)
# the simulator's flags that make a weighing not evidence (JJG 907 conditions of use: a vehicle
# that changes lane, accelerates, straddles, follows too close or leaves the scale)
UNUSABLE = {"lane_change", "acceleration", "straddle", "tailgating", "off_scale"}

# GB 1589-2016 (◐): single axle with single tyres, with dual tyres, a drive axle with dual tyres
STEER, SINGLE_DUAL, DRIVE_DUAL = 7_000, 10_000, 11_500


def _tandem(d: int) -> int:
    """GB 1589-2016 (◐): a tandem (并装双轴) by its spacing d, without air suspension."""
    return 11_500 if d < 1_000 else 16_000 if d < 1_300 else 18_000


def _tridem(d: int) -> int:
    """GB 1589-2016 (◐): a tridem (并装三轴) by its larger spacing d; above 1.4 m the table has
    no row, so the highest limit (the party's reading)."""
    return 21_000 if d <= 1_300 else 24_000


# The simulator's configurations (ingest/simulate.py CONFIGS), written out as the axles a
# vehicle of that kind has: (first axle, axle count, kind) per group, front to back. A 4-axle
# run under a semi-trailer has no row in GB 1589. The national baseline reads it as a tridem
# and a single axle (3 + 1); a 2 + 2 reading would give the party 36,000 kg instead of 34,000
# and clear some passes the pipeline sends to review (open: an officer decides them today).
_LAYOUT: dict[str, tuple[tuple[int, int, str], ...]] = {
    "truck_2": ((0, 1, "steer"), (1, 1, "drive")),
    "truck_3": ((0, 1, "steer"), (1, 2, "group")),
    "combination_3": ((0, 1, "steer"), (1, 1, "drive"), (2, 1, "trailer")),
    # 8×4: two steer axles 1.8–2.0 m apart, two single axles; only the first is taken as
    # single-tyred (DOMAIN.md, 2016 No. 62 Art. 3: tyres not reported are presumed dual except
    # on the steer axle — the reading that gives the party the higher limit)
    "truck_4": ((0, 1, "steer"), (1, 1, "trailer"), (2, 2, "group")),
    "combination_4": ((0, 1, "steer"), (1, 1, "drive"), (2, 2, "group")),
    "combination_5": ((0, 1, "steer"), (1, 2, "group"), (3, 2, "group")),
    "combination_6": ((0, 1, "steer"), (1, 2, "group"), (3, 3, "group")),
    "combination_6_single_drive": ((0, 1, "steer"), (1, 1, "drive"), (2, 4, "group")),
}
# Two vehicles on the sensors at once are not weighed one at a time (OIML R134-1 / JJG 907
# conditions of a valid weighing): the pipeline's ``min_gap_s`` (1 s) from the rear of the
# vehicle before, whose length the record gives (else the longest allowed, 18.1 m: GB 1589).
MIN_GAP_MS, MAX_LENGTH_MM = 1_000, 18_100


def _crowded(passes: list[Pass]) -> set[str]:
    """record_ids of passes less than MIN_GAP_MS behind the rear of the one before in the lane."""
    out: set[str] = set()
    lanes: dict[tuple[str, int], list[Pass]] = {}
    for p in passes:
        lanes.setdefault((p.wim.site_id, p.wim.lane), []).append(p)
    for row in lanes.values():
        row.sort(key=lambda p: (p.wim.ts, p.wim.record_id))
        for a, b in pairwise(row):
            length = a.wim.length_mm or MAX_LENGTH_MM
            rear_ms = round(length * 3.6 / a.wim.speed_kmh) if a.wim.speed_kmh > 0 else 10**9
            front_ms = round((b.wim.ts - a.wim.ts).total_seconds() * 1000)
            if front_ms - rear_ms < MIN_GAP_MS:
                out.add(b.wim.record_id)
    return out


def _limit(first: int, n: int, kind: str, spacings: list[int]) -> int:
    if kind == "steer":
        return STEER
    if kind == "drive":
        return DRIVE_DUAL
    if kind == "trailer" or n == 1:
        return SINGLE_DUAL
    gaps = spacings[first : first + n - 1]
    return _tandem(gaps[0]) if n == 2 else _tridem(max(gaps))


def _groups(code: str, spacings: list[int]) -> list[list[tuple[int, int, int]]]:
    """Each way to read the configuration's groups: [(first axle, count, limit)]."""
    splits: list[list[tuple[int, int, str]]] = [[]]
    for first, n, kind in _LAYOUT[code]:
        parts = [[(first, n, kind)]] if n <= 3 else [[(first, 3, kind), (first + 3, n - 3, kind)]]
        splits = [s + p for s in splits for p in parts]
    return [[(f, n, _limit(f, n, k, spacings)) for f, n, k in s] for s in splits]


def _margin(load: int, accuracy_class: float) -> int:
    """OIML R134 in-service MPE: accuracy class % of the load, rounded up to the kilogram."""
    return int(-(-Fraction(load) * Fraction(str(accuracy_class)) // 100))


def _axle_over(p: Pass) -> tuple[int, int, int] | None:
    """(load, limit, net excess) of the axle group furthest over once the device's margin is
    taken off every group, under the reading of the groups the party is best off with; None
    when no group is over."""
    w, t = p.wim, p.truth
    best: tuple[int, int, int] | None = None
    for groups in _groups(t.configuration, list(w.axle_spacings_mm)):
        worst = max(((load := sum(w.axle_weights_kg[f : f + n])) - _margin(load, t.accuracy_class)
                     - limit, load, limit) for f, n, limit in groups)  # fmt: skip
        if best is None or worst[0] < best[2]:
            best = (worst[1], worst[2], worst[0])
    return best if best is not None and best[2] > 0 else None


def _penalty(over: int) -> tuple[str, int | None]:
    """2016 No. 62 Art. 43 (2), national baseline: up to 1,000 kg over a warning, then 500 CNY
    per full tonne (partial tonne down), at most 30,000 CNY (DOMAIN.md worked examples)."""
    if over <= 0:
        return "none", None
    if over <= 1000:
        return "warning", None
    return "fine", min(CAP_CNY, 500 * (over // 1000))


def _admissible(registry: Registry, t: Truth, day: dt.date) -> bool:
    """行政处罚法 Art. 41 on the pass's local date, read straight from the registry's fields."""
    site = next((s for s in registry.sites if s.id == t.site_id), None)
    device = next((d for d in registry.devices if d.id == t.device_id), None)
    if site is None or device is None or device.certificate is None:
        return False
    # every step of Art. 41, and 启用 after the 公示 period: the device's own dates if it has them
    pub = device.publicity or site.publicity
    steps = (pub.legal_review_on, pub.technical_review_on, pub.notice_on, pub.signed_on,
             pub.enforced_from, device.reviewed_on)  # fmt: skip
    cert = device.certificate
    return all(s is not None and s <= day for s in steps) and (
        cert.valid_from <= day <= cert.valid_until
    )


def _barred(day: dt.date, decided: dt.date) -> bool:
    """Art. 36: decided more than two years after the pass (29 February: the 28th)."""
    try:
        end = day.replace(year=day.year + LIMITATION_YEARS)
    except ValueError:
        end = day.replace(year=day.year + LIMITATION_YEARS, day=28)
    return decided > end


def expected_cases(
    passes: list[Pass], registry: Registry, at: dt.datetime, verified: bool = True
) -> dict[str, dict[str, Any]]:
    """record_id → the case the regulation calls for (see :func:`expected`)."""
    return expected(passes, registry, at, verified)[0]


def expected(
    passes: list[Pass], registry: Registry, at: dt.datetime, verified: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """record_id → the case the regulation calls for, decided at ``at``: measured = the lower
    of the gross and the axle sum; over = measured − ⌈measured × class %⌉ − limit; > 0 is a
    case. A pass decided more than two years later: no_penalty (Art. 36). A record that is not
    evidence (Art. 41: site, device, certificate; a flagged weighing; a plate not read for
    sure): review. Otherwise 2016 No. 62 Art. 43 (2). A body or drive-axle count the record
    does not give: the party's higher limit decides (行政处罚法 Art. 40: only the excess over
    it is proven whatever the vehicle's body or drive axles). An axle group over its limit on a vehicle within its gross limit:
    review (national.yaml ``road.overload.axle``). A vehicle penalised again within 24 h of
    its trip's first penalty: the same trip, attached to that case, no case of its own
    (Art. 29): the second dict maps its record_id to the first one's. ``verified``: plates
    are read a second time from their images, which catches the cameras' confident
    misreads."""
    out: dict[str, dict[str, Any]] = {}
    attached: dict[str, str] = {}
    trips: dict[tuple[str | None, str | None], tuple[dt.datetime, str]] = {}
    tz = {s.id: dt.timezone(dt.timedelta(hours=s.timezone_offset_hours)) for s in registry.sites}
    crowded = _crowded(passes)
    for p in sorted(passes, key=lambda p: (p.wim.ts, p.truth.record_id)):
        t, w = p.truth, p.wim
        local = w.ts.astimezone(tz.get(t.site_id, dt.UTC))
        day = local.date()
        decided = at.astimezone(local.tzinfo).date()
        measured = min(w.gross_weight_kg, sum(w.axle_weights_kg))
        limit = t.limit_kg
        unknown = (w.axle_count in (3, 4) and w.vehicle_kind is None) or (
            w.axle_count >= 6 and w.drive_axles is None
        )
        if unknown:
            limit = _READINGS[min(w.axle_count, 6)][0]  # the party's reading (Art. 40)
        over = measured - _margin(measured, t.accuracy_class) - limit
        outcome, fine = _penalty(over)
        if outcome == "none":
            axle = _axle_over(p)
            if axle is None:
                continue
            _, limit, over = axle
            outcome, fine = "review", None  # the national baseline reviews axle overloads
        plate_ok = t.capture == "ok" or (t.capture == "confident_misread" and not verified)
        if _barred(day, decided):
            outcome, fine = "no_penalty", None
        elif (
            UNUSABLE.intersection(t.flags)
            or t.record_id in crowded
            or not plate_ok
            or not _admissible(registry, t, day)
        ):
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
