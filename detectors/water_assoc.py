"""Pass association: each checkpoint capture tied to the AIS track that crossed the checkpoint's
line near the capture time, several candidates resolved by an optimal assignment.

A candidate pair (capture, crossing) scores by time (1 at the same instant, falling linearly to
0 at the window's edge), by direction (the camera's up/down against the track's) and by name
(the hull name read against the registry's name for the track's MMSI). Captures compete for
crossings: the assignment maximises the total score over the whole group, never "first come".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

DIRECTION_MISMATCH = 0.25  # the camera's direction may be set wrong; a weak match stays possible
NAME_MATCH, NAME_UNKNOWN, NAME_MISMATCH = 1.0, 0.8, 0.6


def pair_score(dt_ms: int, window_ms: int, same_direction: bool, name_agrees: bool | None) -> float:
    """Score of one candidate pair; 0 means "not a candidate"."""
    if abs(dt_ms) > window_ms:
        return 0.0
    time = 1.0 - abs(dt_ms) / window_ms
    direction = 1.0 if same_direction else DIRECTION_MISMATCH
    name = NAME_UNKNOWN if name_agrees is None else NAME_MATCH if name_agrees else NAME_MISMATCH
    return time * direction * name


def score_matrix(
    capture_ms: np.ndarray, capture_up: np.ndarray, crossing_ms: np.ndarray,
    crossing_up: np.ndarray, name_agrees: np.ndarray, window_ms: int,
) -> np.ndarray:  # fmt: skip
    """Scores (captures × crossings) of :func:`pair_score`, all at once. ``name_agrees`` is
    int8: 1 agrees, 0 disagrees, −1 unknown."""
    dt = np.abs(capture_ms[:, None] - crossing_ms[None, :]).astype(np.float64)
    time = np.where(dt <= window_ms, 1.0 - dt / window_ms, 0.0)
    direction = np.where(capture_up[:, None] == crossing_up[None, :], 1.0, DIRECTION_MISMATCH)
    name = np.select(
        [name_agrees == 1, name_agrees == 0], [NAME_MATCH, NAME_MISMATCH], NAME_UNKNOWN
    )
    return time * direction * name


def assign(scores: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs of positive score, each row and column used at most once: as many
    pairs as any assignment can make, and among those the highest total score. The count comes
    first because a capture left without a track is evidence of a vessel running dark: it must
    be that no assignment could give it one, not that the matcher preferred another pairing.
    Hungarian method (Kuhn–Munkres with potentials), O(n³)."""
    # Rows and columns without any candidate take no part: the method runs on the rest (a
    # capture has a few candidate crossings among the window's many, O(n³) in what is left).
    rows = np.flatnonzero((scores > 0).any(axis=1))
    cols = np.flatnonzero((scores > 0).any(axis=0))
    n_rows, n_cols = len(rows), len(cols)
    if n_rows == 0 or n_cols == 0:
        return []
    sub = scores[np.ix_(rows, cols)]
    # A pair is worth more than every score together (each ≤ 1), plus its score; square it up,
    # a row may stay unassigned at no gain (a dummy column).
    size = n_rows + n_cols
    gain = np.zeros((size, size))
    candidate = sub > 0
    gain[:n_rows, :n_cols] = np.where(candidate, (min(n_rows, n_cols) + 1) + sub, 0.0)
    col_of_row = _hungarian(gain.max() - gain)
    return [(int(rows[r]), int(cols[c])) for r, c in enumerate(col_of_row[:n_rows])
            if c < n_cols and candidate[r, c]]  # fmt: skip


def _hungarian(cost: np.ndarray) -> list[int]:
    """For a square cost matrix, the column assigned to each row in a minimum-cost assignment."""
    n = cost.shape[0]
    inf = math.inf
    u, v = [0.0] * (n + 1), [0.0] * (n + 1)
    p, way = [0] * (n + 1), [0] * (n + 1)  # p[j]: row matched to column j (1-based, 0 = none)
    c = cost.tolist()
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = [inf] * (n + 1), [False] * (n + 1)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], inf, 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = c[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    col_of_row = [0] * n
    for j in range(1, n + 1):
        if p[j]:
            col_of_row[p[j] - 1] = j - 1
    return col_of_row


def best_brute_force(scores: Sequence[Sequence[float]]) -> tuple[int, float]:
    """Reference twin of :func:`assign` for small matrices: the best (pairs, total score) over
    every way of giving each row a distinct column or none."""
    n_rows = len(scores)
    n_cols = len(scores[0]) if n_rows else 0
    best = (0, 0.0)
    options = [*range(n_cols), *[None] * n_rows]
    for choice in itertools.permutations(options, n_rows):
        pairs = [scores[r][c] for r, c in enumerate(choice) if c is not None and scores[r][c] > 0]
        best = max(best, (len(pairs), sum(pairs)))
    return best
