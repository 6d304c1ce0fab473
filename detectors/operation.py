"""Illegal passenger operation leads (非法营运线索): unlicensed vehicles shuttling between hubs.

Never a fine: a sensor sees neither passengers nor fares, so a lead goes to officers for an
on-site check (DOMAIN.md). Only sightings of vehicles not in the operating-licence registry at a
transport hub (hub ≥ 0; -1 = not at a hub) are looked at.

A trip is two consecutive such sightings of one plate (in time; ties by input index) at different
hubs, at most ``max_trip_hours`` apart. Two sightings at the same hub are a dwell, not a trip. A
plate's trip count is the largest number of trips whose departures fall in one window
[t, t + window_days), t the departure of one of its trips (the earliest such window on ties). It
is a lead when that count reaches ``min_trips``; the lead's sightings are both ends of the trips
in that window.

Score = min(1, trips / (2 × min_trips)): 0.5 at the threshold, 1 from twice the threshold on —
simple, monotonic in trips, comparable across baselines with different thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .order import by_plate_time

DETECTOR = "operation.passenger_lead"
VERSION = "1.0.0"

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class OperationRules:
    """Example defaults, not law: a baseline sets them."""

    min_trips: int = 4
    window_days: int = 7
    max_trip_hours: int = 6

    def __post_init__(self) -> None:
        if self.min_trips < 1 or self.window_days < 1 or self.max_trip_hours < 0:
            raise ValueError("min_trips and window_days must be ≥ 1, max_trip_hours ≥ 0")


@dataclass(frozen=True)
class OperationLeads:
    """One row per lead, by ascending plate code; sightings in CSR form, ascending per lead."""

    plate: np.ndarray  # int64
    trips: np.ndarray  # int64
    score: np.ndarray  # float64 in [0, 1]
    offsets: np.ndarray  # int64, len(plate) + 1
    sightings: np.ndarray  # int64 indices into the input

    def __len__(self) -> int:
        return len(self.plate)

    def sightings_of(self, lead: int) -> np.ndarray:
        return self.sightings[self.offsets[lead] : self.offsets[lead + 1]]


def score(trips: int | np.ndarray, min_trips: int) -> np.ndarray:
    return np.minimum(1.0, np.asarray(trips, np.float64) / (2 * min_trips))


def detect(
    plate: np.ndarray,
    ts_ms: np.ndarray,
    hub: np.ndarray,
    licensed: np.ndarray,
    rules: OperationRules,
) -> OperationLeads:
    plate, ts, hub = (np.asarray(a, np.int64) for a in (plate, ts_ms, hub))
    look = np.flatnonzero(~np.asarray(licensed, bool) & (hub >= 0))
    order = look[by_plate_time(plate[look], ts[look])]  # look ascends: ties keep input order
    p, t, h = plate[order], ts[order], hub[order]
    is_trip = (
        (p[1:] == p[:-1])
        & (h[1:] != h[:-1])
        & (t[1:] - t[:-1] <= rules.max_trip_hours * MS_PER_HOUR)
    )
    dep, arr = order[:-1][is_trip], order[1:][is_trip]
    tp, td = p[:-1][is_trip], t[:-1][is_trip]  # sorted by (plate, departure)

    if len(tp) == 0:
        nothing = np.zeros(0, np.int64)
        return OperationLeads(nothing, nothing, np.zeros(0), np.zeros(1, np.int64), nothing)

    # Trips in the window opened by each trip: a binary search on (plate, departure). The pair
    # is folded into one int64 key; departures are shifted to start at 0 so it cannot overflow.
    window = rules.window_days * MS_PER_DAY
    n_trips = len(tp)
    new_plate = np.ones(n_trips, bool)
    new_plate[1:] = tp[1:] != tp[:-1]
    rank = np.cumsum(new_plate) - 1
    span = int(td.max() - td.min()) + window + 1
    if (int(rank[-1]) + 2) * span > 2**62:
        raise ValueError("time span too long for one batch")
    key = rank * span + (td - td.min())
    end = np.searchsorted(key, key + window, side="left")
    count = end - np.arange(n_trips)

    # The best window per plate: its largest count, the first trip that opens it.
    firsts = np.flatnonzero(new_plate)
    best = np.maximum.reduceat(count, firsts)
    opener = np.where(count == best[rank], np.arange(n_trips), n_trips)
    anchor = np.minimum.reduceat(opener, firsts)
    lead = best >= rules.min_trips
    anchor, stop = anchor[lead], end[anchor[lead]]

    # Mark the trips inside each lead's window, then gather their sightings per lead.
    mark = np.zeros(n_trips + 1, np.int64)
    np.add.at(mark, anchor, 1)
    np.add.at(mark, stop, -1)
    inside = np.cumsum(mark[:-1]) > 0
    lead_id = np.cumsum(lead)[rank] - 1
    owners = np.concatenate([lead_id[inside], lead_id[inside]])
    members = np.concatenate([dep[inside], arr[inside]])
    n = len(plate)
    flat = np.unique(owners * n + members)  # sorted by lead, then by sighting
    offsets = np.searchsorted(flat // n, np.arange(int(lead.sum()) + 1), side="left")
    trips = best[lead].astype(np.int64)
    return OperationLeads(
        plate=tp[firsts][lead],
        trips=trips,
        score=score(trips, rules.min_trips),
        offsets=offsets.astype(np.int64),
        sightings=(flat % n).astype(np.int64),
    )


def detect_one(
    sightings: list[tuple[int, int, int]], rules: OperationRules
) -> tuple[int, float, tuple[int, ...]] | None:
    """Reference twin of :func:`detect` for one plate's unlicensed sightings, written for
    obviousness: (input index, ts ms, hub) each → (trips, score, sighting indices) or None."""
    at_hubs = sorted((ts, i, hub) for i, ts, hub in sightings if hub >= 0)
    trips = []  # (departure ts, departure index, arrival index)
    for (t0, i0, h0), (t1, i1, h1) in pairwise(at_hubs):
        if h0 != h1 and t1 - t0 <= rules.max_trip_hours * MS_PER_HOUR:
            trips.append((t0, i0, i1))

    best: list[tuple[int, int, int]] = []
    window = rules.window_days * MS_PER_DAY
    for opener in trips:
        in_window = [trip for trip in trips if opener[0] <= trip[0] < opener[0] + window]
        if len(in_window) > len(best):
            best = in_window
    if len(best) < rules.min_trips:
        return None
    members = sorted({i for _, dep, arr in best for i in (dep, arr)})
    return len(best), min(1.0, len(best) / (2 * rules.min_trips)), tuple(members)
