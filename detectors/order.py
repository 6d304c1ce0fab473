"""Sorting sightings by (plate, time, input index) — the order the plate detectors scan in."""

from __future__ import annotations

import numpy as np


def by_plate_time(plate: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The permutation that sorts by plate, then time, then input index (int64 arrays).

    The three keys are folded into one int64 when they fit, and that one is sorted (a single
    argsort is several times faster than a three-key lexsort); otherwise the lexsort."""
    n = len(plate)
    if n == 0:
        return np.zeros(0, np.int64)
    p, t = plate - plate.min(), ts - ts.min()
    span = int(t.max()) + 1
    if (int(p.max()) + 1) * span * n < 2**62:
        return np.argsort((p * span + t) * n + np.arange(n))  # keys are unique: any sort will do
    return np.lexsort((np.arange(n), ts, plate))
