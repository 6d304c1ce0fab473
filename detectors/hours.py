"""Restricted hours: coaches in the 02:00–05:00 ban, dangerous goods outside permitted hours.

Both are leads for the transport agency, not fines: a coach may be exempt (a rest stop, a
provincial rule) and dangerous-goods hours are set locally (DOMAIN.md). Times are local minutes of
the day, 0–1439; :func:`minute_of_day` derives them from epoch ms. A window (start, end) is
half-open, start ≤ m < end, and wraps midnight when start > end: (1320, 360) is 22:00–06:00.
A minute outside 0–1439 (use -1 for "unknown") is never flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DETECTOR = "hours.restricted"
VERSION = "1.0.0"

# vehicle classes
OTHER, COACH, DANGEROUS_GOODS = 0, 1, 2  # coach: long-distance passenger coach (长途客车)
# reasons
NONE, COACH_NIGHT, DANGEROUS_GOODS_HOURS = 0, 1, 2

MINUTES_PER_DAY = 1_440
CHINA_UTC_OFFSET_MIN = 480  # UTC+8 all year, no daylight saving

Window = tuple[int, int]


@dataclass(frozen=True)
class HoursRules:
    """Coach ban window (default 02:00–05:00, 凌晨2时至5时) and dangerous-goods permitted windows.

    No dangerous-goods windows means no restriction (the locality sets none), not a total ban.
    """

    coach_banned: Window = (120, 300)
    dangerous_goods_permitted: Sequence[Window] = ()

    def __post_init__(self) -> None:
        # Lists from a baseline file become tuples, so the rules stay hashable and frozen.
        windows = tuple((int(s), int(e)) for s, e in self.dangerous_goods_permitted)
        object.__setattr__(self, "dangerous_goods_permitted", windows)
        for start, end in (self.coach_banned, *windows):
            if not (0 <= start < MINUTES_PER_DAY and 0 <= end <= MINUTES_PER_DAY and start != end):
                raise ValueError(f"bad window ({start}, {end}): minutes 0–1440, start != end")


@dataclass(frozen=True)
class HoursColumns:
    restricted: np.ndarray  # bool
    reason: np.ndarray  # int64: NONE, COACH_NIGHT or DANGEROUS_GOODS_HOURS


def minute_of_day(ts_ms: np.ndarray, utc_offset_min: int = CHINA_UTC_OFFSET_MIN) -> np.ndarray:
    return (np.asarray(ts_ms, np.int64) // 60_000 + utc_offset_min) % MINUTES_PER_DAY


def _inside(minute: np.ndarray, window: Window) -> np.ndarray:
    start, end = window
    if start < end:
        return (minute >= start) & (minute < end)
    return (minute >= start) | (minute < end)


def detect(minute: np.ndarray, vehicle_class: np.ndarray, rules: HoursRules) -> HoursColumns:
    m = np.asarray(minute, np.int64)
    cls = np.asarray(vehicle_class, np.int64)
    known = (m >= 0) & (m < MINUTES_PER_DAY)
    coach = known & (cls == COACH) & _inside(m, rules.coach_banned)
    dangerous = np.zeros(len(m), bool)
    if rules.dangerous_goods_permitted:
        permitted = np.zeros(len(m), bool)
        for window in rules.dangerous_goods_permitted:
            permitted |= _inside(m, window)
        dangerous = known & (cls == DANGEROUS_GOODS) & ~permitted
    reason = np.where(coach, COACH_NIGHT, np.where(dangerous, DANGEROUS_GOODS_HOURS, NONE))
    return HoursColumns(restricted=coach | dangerous, reason=reason.astype(np.int64))


def detect_one(minute: int, vehicle_class: int, rules: HoursRules) -> int:
    """Reference twin of :func:`detect` for one sighting: its reason (NONE when allowed)."""

    def inside(window: Window) -> bool:
        start, end = window
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end

    if not 0 <= minute < MINUTES_PER_DAY:
        return NONE
    if vehicle_class == COACH and inside(rules.coach_banned):
        return COACH_NIGHT
    permitted = rules.dangerous_goods_permitted
    if vehicle_class == DANGEROUS_GOODS and permitted and not any(inside(w) for w in permitted):
        return DANGEROUS_GOODS_HOURS
    return NONE
