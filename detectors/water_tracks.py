"""Vectorized waterway detectors over AIS columns, each with a per-record reference twin.

Position reports are columns sorted by (MMSI, time); "consecutive" means the next report of the
same MMSI. Times are integer milliseconds, positions metres in a local plane (water_geo). Every
comparison that decides a finding is strict where the doubt belongs to the party: a vessel
exactly at the limit is not flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .water_geo import KNOT_MPS

VERSION = "1.0.0"


@dataclass(frozen=True)
class Tracks:
    """Position reports, one row each, sorted by (mmsi, t_ms)."""

    mmsi: np.ndarray  # int64
    t_ms: np.ndarray  # int64
    x: np.ndarray  # float64, metres east
    y: np.ndarray  # float64, metres north
    sog_kn: np.ndarray  # float64, NaN when not available
    chainage: np.ndarray  # float64, metres along the fairway
    off: np.ndarray  # float64, metres off the fairway centreline

    def __len__(self) -> int:
        return len(self.mmsi)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices (i, j = i + 1) of consecutive reports of the same MMSI."""
        i = np.flatnonzero(self.mmsi[1:] == self.mmsi[:-1])
        return i, i + 1


def sort_order(mmsi: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Stable order by (mmsi, time): ties keep their input order."""
    return np.lexsort((np.arange(len(mmsi)), t_ms, mmsi))


# --- line crossings (checkpoints, controlled-section entries) --------------------------------


@dataclass(frozen=True)
class Crossings:
    i: np.ndarray  # report before the crossing
    j: np.ndarray  # report after it
    t_ms: np.ndarray  # interpolated crossing time
    up: np.ndarray  # bool: moving upstream (chainage growing)


def crossings(
    tr: Tracks, line: tuple[tuple[float, float], tuple[float, float]], max_dt_ms: int
) -> Crossings:
    """Where consecutive reports at most ``max_dt_ms`` apart lie on a segment that crosses
    ``line``. The segment's start counts, its end does not, so a report exactly on the line is
    one crossing, not two."""
    i, j = tr.pairs()
    keep = (tr.t_ms[j] - tr.t_ms[i]) <= max_dt_ms
    i, j = i[keep], j[keep]
    (ax, ay), (bx, by) = line
    px, py = tr.x[i], tr.y[i]
    rx, ry = tr.x[j] - px, tr.y[j] - py
    sx, sy = bx - ax, by - ay
    denom = rx * sy - ry * sx
    qx, qy = ax - px, ay - py
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (qx * sy - qy * sx) / denom  # along the track segment
        u = (qx * ry - qy * rx) / denom  # along the line
    hit = (denom != 0) & (s >= 0) & (s < 1) & (u >= 0) & (u <= 1)
    i, j, s = i[hit], j[hit], s[hit]
    t = tr.t_ms[i] + np.round(s * (tr.t_ms[j] - tr.t_ms[i])).astype(np.int64)
    return Crossings(i, j, t, tr.chainage[j] > tr.chainage[i])


def crossing_one(
    p: tuple[float, float], q: tuple[float, float], tp: int, tq: int,
    line: tuple[tuple[float, float], tuple[float, float]],
) -> int | None:  # fmt: skip
    """Reference twin: the crossing time of segment p→q with ``line``, or None."""
    (ax, ay), (bx, by) = line
    rx, ry, sx, sy = q[0] - p[0], q[1] - p[1], bx - ax, by - ay
    denom = rx * sy - ry * sx
    if denom == 0:
        return None
    s = ((ax - p[0]) * sy - (ay - p[1]) * sx) / denom
    u = ((ax - p[0]) * ry - (ay - p[1]) * rx) / denom
    if not (0 <= s < 1 and 0 <= u <= 1):
        return None
    return tp + round(s * (tq - tp))


def position_at(tr: Tracks, i: int, j: int, t_ms: int) -> tuple[float, float]:
    """The position between reports i and j at ``t_ms``, by linear interpolation."""
    span = tr.t_ms[j] - tr.t_ms[i]
    f = 0.0 if span == 0 else (t_ms - tr.t_ms[i]) / span
    return float(tr.x[i] + f * (tr.x[j] - tr.x[i])), float(tr.y[i] + f * (tr.y[j] - tr.y[i]))


# --- one MMSI at two places at once -------------------------------------------------------------


@dataclass(frozen=True)
class Jumps:
    i: np.ndarray
    j: np.ndarray
    distance_m: np.ndarray
    speed_kn: np.ndarray  # inf when the two reports have the same time


def jumps(tr: Tracks, max_speed_kn: float, min_distance_m: float, band_m: float) -> Jumps:
    """Consecutive reports of one MMSI further apart than ``min_distance_m`` and than a vessel
    at ``max_speed_kn`` could go in the time between them. The distance is the straight line,
    or the way along the fairway when both points are within ``band_m`` of it (a river bends:
    along the channel is the least a vessel must sail)."""
    i, j = tr.pairs()
    straight = np.hypot(tr.x[j] - tr.x[i], tr.y[j] - tr.y[i])
    along = np.abs(tr.chainage[j] - tr.chainage[i])
    on_channel = (tr.off[i] <= band_m) & (tr.off[j] <= band_m)
    dist = np.where(on_channel, np.maximum(straight, along), straight)
    dt_ms = tr.t_ms[j] - tr.t_ms[i]
    limit = max_speed_kn * KNOT_MPS  # m/s
    flag = (dist > min_distance_m) & (dist * 1000.0 > limit * dt_ms)
    with np.errstate(divide="ignore"):
        speed = np.where(dt_ms > 0, dist * 1000.0 / np.maximum(dt_ms, 1) / KNOT_MPS, np.inf)
    return Jumps(i[flag], j[flag], dist[flag], speed[flag])


def jump_one(
    p: tuple[float, float, float, float], q: tuple[float, float, float, float], dt_ms: int,
    max_speed_kn: float, min_distance_m: float, band_m: float,
) -> bool:  # fmt: skip
    """Reference twin: p and q are (x, y, chainage, off)."""
    dist = math.hypot(q[0] - p[0], q[1] - p[1])
    if p[3] <= band_m and q[3] <= band_m:
        dist = max(dist, abs(q[2] - p[2]))
    return dist > min_distance_m and dist * 1000.0 > max_speed_kn * KNOT_MPS * dt_ms


# --- AIS gaps inside a monitored section ------------------------------------------------------


def gaps(tr: Tracks, inside: np.ndarray, max_gap_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive reports of one MMSI, both inside the section, more than ``max_gap_ms``
    apart: the vessel was in the section and silent."""
    i, j = tr.pairs()
    flag = inside[i] & inside[j] & ((tr.t_ms[j] - tr.t_ms[i]) > max_gap_ms)
    return i[flag], j[flag]


def gap_one(inside_i: bool, inside_j: bool, t_i: int, t_j: int, max_gap_ms: int) -> bool:
    return inside_i and inside_j and t_j - t_i > max_gap_ms


# --- loitering (night dredging) -----------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    start: np.ndarray  # first report of the run
    reached: np.ndarray  # first report at which the run had lasted min_dwell_ms
    end: np.ndarray  # last report of the run


def loiter_runs(tr: Tracks, ok: np.ndarray, min_dwell_ms: int, max_step_ms: int) -> Runs:
    """Runs of consecutive reports of one MMSI that all satisfy ``ok`` (in the zone, at night,
    slow, no permit), with no step longer than ``max_step_ms``, lasting more than
    ``min_dwell_ms`` from the run's first report."""
    n = len(tr)
    if n == 0:
        e = np.zeros(0, np.int64)
        return Runs(e, e, e)
    ok = np.asarray(ok, bool)
    link = np.zeros(n, bool)  # row k continues the run of row k - 1
    link[1:] = (
        (tr.mmsi[1:] == tr.mmsi[:-1])
        & ok[1:]
        & ok[:-1]
        & ((tr.t_ms[1:] - tr.t_ms[:-1]) <= max_step_ms)
    )
    start_flag = ok & ~link
    run_id = np.cumsum(start_flag) - 1
    starts = np.flatnonzero(start_flag)
    rows = np.flatnonzero(ok)
    rid = run_id[rows]
    elapsed = tr.t_ms[rows] - tr.t_ms[starts[rid]]
    long_enough = elapsed > min_dwell_ms
    if not long_enough.any():
        e = np.zeros(0, np.int64)
        return Runs(e, e, e)
    # the first qualifying row of each run, and the run's last row
    qual_rows, qual_rid = rows[long_enough], rid[long_enough]
    first = np.unique(qual_rid, return_index=True)[1]
    ends = np.append(starts[1:], n)  # exclusive bound of each run's rows
    last = np.array([rows[(rows >= starts[r]) & (rows < ends[r])].max() for r in qual_rid[first]])
    return Runs(starts[qual_rid[first]], qual_rows[first], last.astype(np.int64))


def loiter_runs_one(
    mmsi: Sequence[int], t_ms: Sequence[int], ok: Sequence[bool], min_dwell_ms: int,
    max_step_ms: int,
) -> list[tuple[int, int, int]]:  # fmt: skip
    """Reference twin: (start, reached, end) of each qualifying run, walking row by row."""
    out, start, reached = [], None, None
    for k in range(len(mmsi)):
        continues = (
            start is not None and ok[k] and mmsi[k] == mmsi[k - 1]
            and t_ms[k] - t_ms[k - 1] <= max_step_ms
        )  # fmt: skip
        if not continues:
            if start is not None and reached is not None:
                out.append((start, reached, k - 1))
            start, reached = (k, None) if ok[k] else (None, None)
        if start is not None and reached is None and t_ms[k] - t_ms[start] > min_dwell_ms:
            reached = k
    if start is not None and reached is not None:
        out.append((start, reached, len(mmsi) - 1))
    return out


# --- static data: changes, several MMSIs for one identity, over-draught -------------------------


def differs(
    name_a: np.ndarray, name_b: np.ndarray, length_a: np.ndarray, length_b: np.ndarray,
    tolerance_m: float,
) -> np.ndarray:  # fmt: skip
    """Row by row: the names differ (ids ≥ 0; −1 = no name, never a difference) or the lengths
    differ by more than ``tolerance_m`` (NaN = no length, never a difference)."""
    renamed = (name_a >= 0) & (name_b >= 0) & (name_a != name_b)
    with np.errstate(invalid="ignore"):
        resized = np.abs(length_b - length_a) > tolerance_m
    return np.asarray(renamed | resized, bool)


def differs_one(
    name_a: int, name_b: int, length_a: float, length_b: float, tolerance_m: float
) -> bool:
    """Reference twin of :func:`differs`."""
    renamed = name_a >= 0 and name_b >= 0 and name_a != name_b
    known = not (math.isnan(length_a) or math.isnan(length_b))
    return renamed or (known and abs(length_b - length_a) > tolerance_m)


def static_changes(
    mmsi: np.ndarray, name_id: np.ndarray, length_m: np.ndarray, tolerance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive static reports of one MMSI (rows sorted by mmsi, time) whose name or
    length differs (:func:`differs`)."""
    i = np.flatnonzero(mmsi[1:] == mmsi[:-1])
    j = i + 1
    flag = differs(name_id[i], name_id[j], length_m[i], length_m[j], tolerance_m)
    return i[flag], j[flag]


def shared_identities(key: np.ndarray, mmsi: np.ndarray) -> np.ndarray:
    """Rows (in input order, which is time order) where an identity key (ENI or name id ≥ 0)
    is first broadcast by an MMSI other than the first one that broadcast it."""
    rows = np.flatnonzero(key >= 0)
    if len(rows) == 0:
        return rows
    k, m = key[rows], mmsi[rows]
    order = np.lexsort((rows, m, k))
    k, m, r = k[order], m[order], rows[order]
    first_of_pair = np.ones(len(k), bool)
    first_of_pair[1:] = (k[1:] != k[:-1]) | (m[1:] != m[:-1])
    k, m, r = k[first_of_pair], m[first_of_pair], r[first_of_pair]  # first row of each (key, mmsi)
    by_key_time = np.lexsort((r, k))
    k, r = k[by_key_time], r[by_key_time]
    later = np.ones(len(k), bool)
    later[0] = False
    later[1:] = k[1:] == k[:-1]  # not the first MMSI seen with this key
    return np.sort(r[later])


def shared_identities_one(key: Sequence[int], mmsi: Sequence[int]) -> list[int]:
    """Reference twin of :func:`shared_identities`."""
    seen: dict[int, list[int]] = {}
    out = []
    for row, (k, m) in enumerate(zip(key, mmsi, strict=True)):
        if k < 0:
            continue
        owners = seen.setdefault(k, [])
        if m not in owners:
            if owners:
                out.append(row)
            owners.append(m)
    return out


def over_draught(
    draught_m: np.ndarray, half_step_m: np.ndarray, load_line_m: np.ndarray
) -> np.ndarray:
    """Draught deeper than the load line by more than half the report's resolution (a type 5
    draught of 3.3 m may be 3.25 m). Unknown draught (NaN, or 0 sent as "not available") and
    unknown load line (NaN) never flag. The excess is compared in tenths of a millimetre, so
    that 2.85 − 0.05 against 2.80 is no excess (in binary floating point it is 4e-16)."""
    d = np.asarray(draught_m, np.float64)
    with np.errstate(invalid="ignore"):
        return (d > 0) & (np.round((d - half_step_m - load_line_m) * 1e4) > 0)


def over_draught_one(
    draught_m: float | None, half_step_m: float, load_line_m: float | None
) -> bool:
    if draught_m is None or load_line_m is None or math.isnan(draught_m) or math.isnan(load_line_m):
        return False
    return draught_m > 0 and round((draught_m - half_step_m - load_line_m) * 1e4) > 0


# --- receiver health ----------------------------------------------------------------------------


class ReceiverHealth:
    """A receiver is degraded at time t when it gave fewer than ``fraction`` of its expected
    reports in the ``window_ms`` centred on t. Counted from the reports themselves; outside the
    span of all reports there is no evidence of coverage, and that counts as degraded."""

    def __init__(
        self, t_ms: np.ndarray, receiver: np.ndarray, expected_per_min: Sequence[float],
        window_ms: int = 300_000, fraction: float = 0.3,
    ) -> None:  # fmt: skip
        self.window_ms, self.fraction = window_ms, fraction
        self.expected = np.asarray(expected_per_min, np.float64)
        t = np.asarray(t_ms, np.int64)
        r = np.asarray(receiver, np.int64)
        self.t_lo = int(t.min()) if len(t) else 0
        self.t_hi = int(t.max()) if len(t) else -1
        self.times = [np.sort(t[r == k]) for k in range(len(self.expected))]

    def count(self, k: int, t_ms: np.ndarray) -> np.ndarray:
        times, half = self.times[k], self.window_ms // 2
        t = np.asarray(t_ms, np.int64)
        return np.searchsorted(times, t + half, "right") - np.searchsorted(times, t - half, "left")

    def degraded(self, k: int, t_ms: np.ndarray) -> np.ndarray:
        t = np.asarray(t_ms, np.int64)
        need = self.fraction * self.expected[k] * self.window_ms / 60_000
        covered = (t - self.window_ms // 2 >= self.t_lo) & (t + self.window_ms // 2 <= self.t_hi)
        return ~covered | (self.count(k, t) < need)

    def degraded_during(self, k: int, t0_ms: int, t1_ms: int, step_ms: int = 60_000) -> bool:
        """Whether it was degraded at any minute of [t0, t1] (and at both ends)."""
        probe = np.append(np.arange(t0_ms, t1_ms, step_ms, dtype=np.int64), t1_ms)
        return bool(self.degraded(k, probe).any())


def degraded_one(
    times: Sequence[int], t_lo: int, t_hi: int, t_ms: int, expected_per_min: float,
    window_ms: int, fraction: float,
) -> bool:  # fmt: skip
    """Reference twin of :meth:`ReceiverHealth.degraded`: count by walking every report."""
    half = window_ms // 2
    if t_ms - half < t_lo or t_ms + half > t_hi:
        return True
    n = sum(1 for x in times if t_ms - half <= x <= t_ms + half)
    return n < fraction * expected_per_min * window_ms / 60_000
