"""Cloned plates (套牌): one plate seen at two sites faster than the road between them allows.

A pair of sightings (i, j) of the same plate at different sites, i before j, is implausible when

    (ts_j − ts_i) × max_speed < distance[site_i, site_j] × 3,600,000     (ms, km, km/h)

that is, when the time between them is strictly shorter than the fastest drive. At exactly the
fastest drive the pair stands: in doubt, for the party. An unknown distance (NaN) never flags.
``distance[a, b]`` is the road distance from a to b; it need not be symmetric (one-way roads).
Same-site pairs never flag, whatever the matrix holds on its diagonal.

Why comparing each sighting with the previous one of its plate is enough. Sort a plate's
sightings by time: s_1, …, s_k. If every consecutive pair is plausible, d(s_m, s_m+1) ≤ v·Δt_m;
summing from a to b and using the triangle inequality, d(s_a, s_b) ≤ Σ d(s_m, s_m+1) ≤
v·(t_b − t_a), so every pair is plausible. Hence, for distances that obey the triangle inequality,
a plate has an implausible pair if and only if it has an implausible consecutive pair: the
consecutive scan finds every cloned plate in O(n log n), and each pair it returns is, alone, a
self-contained proof for the officer (two photos, one distance, one time). It returns fewer
pairs than an all-pairs scan, never other plates. An unknown (NaN) distance breaks the chain:
A, X, B with d(A, X) and d(X, B) unknown hides an impossible A → B. Road distance matrices from a
routing engine are complete and metric, so this only costs recall where the matrix has holes.
"""

from __future__ import annotations

import numpy as np

from .order import by_plate_time

DETECTOR = "plate.clone"
VERSION = "1.0.0"

MS_PER_HOUR = 3_600_000


def detect(
    plate: np.ndarray,
    site: np.ndarray,
    ts_ms: np.ndarray,
    distance_km: np.ndarray,
    max_speed_kmh: float,
) -> np.ndarray:
    """Implausible consecutive pairs as an int64 array (k, 2) of input indices, i before j in time
    (ties in time: by index), rows sorted by (i, j)."""
    plate, site, ts = (np.asarray(a, np.int64) for a in (plate, site, ts_ms))
    order = by_plate_time(plate, ts)
    same = (plate[order][1:] == plate[order][:-1]) & (site[order][1:] != site[order][:-1])
    i, j = order[:-1][same], order[1:][same]
    dist = np.asarray(distance_km, np.float64)[site[i], site[j]]
    flag = (ts[j] - ts[i]) * float(max_speed_kmh) < dist * MS_PER_HOUR  # NaN compares False
    pairs = np.stack([i[flag], j[flag]], axis=1).reshape(-1, 2)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def detect_every(
    plate: np.ndarray,
    site: np.ndarray,
    ts_ms: np.ndarray,
    distance_km: np.ndarray,
    max_speed_kmh: float,
) -> np.ndarray:
    """Every implausible pair, as :func:`detect` returns them (twin: :func:`detect_all_pairs`).

    The lead stage reports these rather than the consecutive ones: which pairs are consecutive
    depends on which sightings had arrived when a batch was judged (another partition's, a late
    site's), so the consecutive scan over what is known so far gives another set of leads for
    another reading order; every implausible pair is a fact of the sightings alone. A plate's
    sightings within the longest drive are few, so the pairs are found by comparing each
    sighting with the 1st, 2nd, … next of its plate in time."""
    plate, site, ts = (np.asarray(a, np.int64) for a in (plate, site, ts_ms))
    order = by_plate_time(plate, ts)
    dist_km = np.asarray(distance_km, np.float64)
    found = []
    for k in range(1, len(order)):
        i, j = order[:-k], order[k:]
        same = plate[i] == plate[j]
        if not same.any():
            break  # no plate has more than k sightings
        i, j = i[same], j[same]
        other = site[i] != site[j]
        i, j = i[other], j[other]
        flag = (ts[j] - ts[i]) * float(max_speed_kmh) < dist_km[site[i], site[j]] * MS_PER_HOUR
        found.append(np.stack([i[flag], j[flag]], axis=1))
    pairs = np.concatenate(found).reshape(-1, 2) if found else np.zeros((0, 2), np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def implausible(
    ts_i: int, site_i: int, ts_j: int, site_j: int, distance_km: np.ndarray, max_speed_kmh: float
) -> bool:
    """Reference twin for one pair, i not after j: could one vehicle have made both sightings?"""
    if site_i == site_j:
        return False
    dist = float(distance_km[site_i, site_j])
    if dist != dist:  # NaN: unknown road, no judgement
        return False
    return (ts_j - ts_i) * float(max_speed_kmh) < dist * MS_PER_HOUR


def detect_all_pairs(
    plate: list[int],
    site: list[int],
    ts_ms: list[int],
    distance_km: np.ndarray,
    max_speed_kmh: float,
) -> list[tuple[int, int]]:
    """Every implausible pair, by brute force over all pairs: the twin :func:`detect` is checked
    against (same plates flagged; its pairs a subset of these)."""
    pairs = []
    n = len(plate)
    for a in range(n):
        for b in range(n):
            if a == b or plate[a] != plate[b]:
                continue
            if (ts_ms[a], a) < (ts_ms[b], b) and implausible(
                ts_ms[a], site[a], ts_ms[b], site[b], distance_km, max_speed_kmh
            ):
                pairs.append((a, b))
    return sorted(pairs)
