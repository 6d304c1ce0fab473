"""Axle and axle-group overload over a padded batch of vehicles, and its per-vehicle twin.

Every limit here is ◐ in DOMAIN-REFERENCE.md: commonly tabulated from GB 1589-2016 (Table 3),
not checked against the official text. They are only the defaults of :class:`AxleLimits`, for a
baseline to override; a decision that rests on them goes to review until a province confirms.

Grouping. Consecutive axles closer than ``AxleLimits.group_spacing_mm`` (default 1,800 mm) form
a group: two make a tandem (并装双轴), three a tridem (并装三轴). A longer run is cut into tridems
from the front (3 + 1, 3 + 2, 3 + 3 …): the table knows no larger group. The tandem table has a
row for d ≥ 1.8 m, which the default threshold never reaches: GB 1589 gives that row to trailers
only (仅挂车), while twin-steer trucks (8×4) carry their two steer axles 1.8–2.0 m apart and are
tabulated as two single axles. Raising the threshold globally would fold those into a tandem, so
the default stays at 1,800 mm and the row is kept for a baseline that raises it.

Spacing d of a group: the gap of a tandem; the larger of the two gaps of a tridem (in doubt, the
reading that gives the higher limit). A tridem with d > 1.4 m is not tabulated: it takes the
highest tridem limit, for the same reason.

Tyres. The flags are what the caller knows or presumes. DOMAIN.md (2016 No. 62 Art. 3): except
the drive axle, axles in tandems and tridems and trailer axles are taken as dual-tyred; the steer
axle has single tyres. :func:`presumed_dual` fills that convention. A non-drive axle in a group
with single tyres each side lowers the group's limit by 3,000 kg (wide-base tyres excepted: pass
them as dual). A single axle with single tyres has 7,000 kg whether it drives or not.

No measurement tolerance is deducted here: the axle-load error of a WIM device is not its
vehicle-mass error, and the rules layer applies whichever margin the baseline names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from events import MAX_AXLES

DETECTOR = "overload.axle"
VERSION = "1.1.0"  # 1.1: the margin is applied to every group before the worst is chosen
SINGLE, TANDEM, TRIDEM = 1, 2, 3  # a group's kind is its number of axles


@dataclass(frozen=True)
class AxleLimits:
    """Axle-load limits in kg (GB 1589-2016, all ◐) and the grouping threshold in mm."""

    single_tyres_kg: int = 7_000  # single axle, single tyres each side (a steer axle)
    dual_tyres_kg: int = 10_000  # single axle, dual tyres each side
    drive_dual_tyres_kg: int = 11_500  # single drive axle, dual tyres each side
    # Tandem bands by d, closed on the left: d < 1000, 1000 ≤ d < 1300, 1300 ≤ d < 1800, d ≥ 1800.
    tandem_bounds_mm: tuple[int, ...] = (1_000, 1_300, 1_800)
    tandem_kg: tuple[int, ...] = (11_500, 16_000, 18_000, 18_000)
    # Same bands, for a tandem whose drive axles have dual tyres, on air suspension.
    tandem_drive_air_kg: tuple[int, ...] = (11_500, 16_000, 19_000, 18_000)
    # Tridem bands by d, closed on the right: d ≤ 1300, 1300 < d ≤ 1400, d > 1400 (untabulated).
    tridem_bounds_mm: tuple[int, ...] = (1_300, 1_400)
    tridem_kg: tuple[int, ...] = (21_000, 24_000, 24_000)
    single_tyre_in_group_kg: int = 3_000  # off the group limit, per non-drive single-tyred axle
    group_spacing_mm: int = 1_800  # axles closer than this belong to one group

    def __post_init__(self) -> None:
        if len(self.tandem_kg) != len(self.tandem_bounds_mm) + 1:
            raise ValueError("tandem_kg needs one limit more than tandem_bounds_mm")
        if len(self.tandem_drive_air_kg) != len(self.tandem_kg):
            raise ValueError("tandem_drive_air_kg needs as many limits as tandem_kg")
        if len(self.tridem_kg) != len(self.tridem_bounds_mm) + 1:
            raise ValueError("tridem_kg needs one limit more than tridem_bounds_mm")
        for bounds in (self.tandem_bounds_mm, self.tridem_bounds_mm):
            if list(bounds) != sorted(bounds):
                raise ValueError("band bounds must ascend")


@dataclass(frozen=True)
class AxleColumns:
    """One row per vehicle; per-axle arrays are padded to ``MAX_AXLES`` columns.

    ``weight_kg[v, k]`` is axle k's load; ``spacing_mm[v, k]`` the distance from axle k to axle
    k + 1. Padding is -1 (bool arrays: anything, it is ignored). A real axle with weight < 0 or a
    real gap with spacing < 0 means "not measured": the vehicle is not judged.
    """

    axle_count: np.ndarray  # int64 (n,)
    weight_kg: np.ndarray  # int64 (n, MAX_AXLES)
    spacing_mm: np.ndarray  # int64 (n, MAX_AXLES); column MAX_AXLES - 1 is always padding
    dual: np.ndarray  # bool (n, MAX_AXLES): dual tyres each side
    drive: np.ndarray  # bool (n, MAX_AXLES): a drive axle
    air_suspension: np.ndarray | None = field(default=None)  # bool (n,); None: none known

    def __len__(self) -> int:
        return len(self.axle_count)


@dataclass(frozen=True)
class AxleGroups:
    """Per vehicle: its groups in axle order (padded) and the worst of them.

    The group arrays have as many columns as the batch's longest vehicle has axles (no vehicle
    has more groups). Group padding: start -1, kind 0, spacing -1, limit/load/over 0.
    ``spacing_mm`` is the d the limit was read at (-1 for a single axle). The worst group is the
    one furthest over (or, when none is over, nearest its limit), the first on ties; -1 with no
    groups (or not judged).
    """

    judged: np.ndarray  # bool (n,)
    n_groups: np.ndarray  # int64 (n,)
    start: np.ndarray  # int64 (n, longest): index of the group's first axle
    kind: np.ndarray
    spacing_mm: np.ndarray
    limit_kg: np.ndarray
    load_kg: np.ndarray
    over_kg: np.ndarray  # load - limit; negative is the margin left
    worst: np.ndarray  # int64 (n,): index into the group arrays
    worst_start: np.ndarray  # the worst group's first axle, -1 with none
    worst_kind: np.ndarray
    worst_limit_kg: np.ndarray
    worst_load_kg: np.ndarray
    worst_over_kg: np.ndarray
    overloaded: np.ndarray  # bool (n,): judged and worst_over_kg > 0


def presumed_dual(axle_count: np.ndarray) -> np.ndarray:
    """The Art. 3 convention as a ``dual`` array: axle 0 (steer) single, every other axle dual.

    A drive axle is not presumed by the law; it is presumed dual here because heavy drive axles
    are, and it is the reading that gives the party the higher limit. Override what is known.
    """
    k = np.arange(MAX_AXLES)
    return (k >= 1) & (k < np.asarray(axle_count)[:, None])


BLOCK = 8_192  # vehicles walked together: their state stays in the CPU cache


def detect(cols: AxleColumns, limits: AxleLimits | None = None) -> AxleGroups:
    """Walks the axle columns front to back, a block of vehicles at once: axle k joins the open
    group when it is linked to axle k - 1 and the group has fewer than three axles, else it opens
    a new one; a group is judged when its last axle is reached."""
    lim = limits or AxleLimits()
    n = len(cols)
    # group g of vehicle v at [g, v], transposed on return; no vehicle has more groups than axles
    K = int(np.clip(cols.axle_count, 0, MAX_AXLES).max(initial=0))
    fill = np.array([-1, 0, -1, 0, 0, 0])  # padding of start, kind, spacing, limit, load, over
    table = np.empty((6, K, n), np.int64)
    table[:] = fill[:, None, None]
    judged = np.zeros(n, bool)
    n_groups = np.zeros(n, np.int64)
    worst = np.full(n, -1, np.int64)
    air = cols.air_suspension
    for s in range(0, n, BLOCK):
        part = slice(s, s + BLOCK)
        block = AxleColumns(
            np.asarray(cols.axle_count)[part],
            np.asarray(cols.weight_kg)[part],
            np.asarray(cols.spacing_mm)[part],
            np.asarray(cols.dual)[part],
            np.asarray(cols.drive)[part],
            None if air is None else np.asarray(air)[part],
        )
        judged[part], n_groups[part], worst[part] = _walk(block, lim, table[:, :, part])
    start, kind, spacing, limit, load, over = table
    picked = np.repeat(fill[:, None], n, 1)
    has = np.flatnonzero(worst >= 0)
    picked[:, has] = table[:, worst[has], has]
    return AxleGroups(
        judged=judged,
        n_groups=n_groups,
        start=start.T,
        kind=kind.T,
        spacing_mm=spacing.T,
        limit_kg=limit.T,
        load_kg=load.T,
        over_kg=over.T,
        worst=worst,
        worst_start=picked[0],
        worst_kind=picked[1],
        worst_limit_kg=picked[3],
        worst_load_kg=picked[4],
        worst_over_kg=picked[5],
        overloaded=picked[5] > 0,
    )


def _walk(
    cols: AxleColumns, lim: AxleLimits, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block: writes each group's start, kind, d, limit, load and over into ``out`` at
    [:, g, v]; returns (judged, n_groups, worst)."""
    n, K = len(cols), MAX_AXLES
    count = np.asarray(cols.axle_count, np.int64)
    width = int(np.clip(count, 0, K).max(initial=0))  # the columns any vehicle uses
    # Axle-major: one axle position of the block is one contiguous row.
    w = np.asarray(cols.weight_kg, np.int64).reshape(n, K)[:, :width].T.copy()
    sp = np.asarray(cols.spacing_mm, np.int64).reshape(n, K)[:, :width].T.copy()
    dual = np.asarray(cols.dual, bool).reshape(n, K)[:, :width].T
    drive = np.asarray(cols.drive, bool).reshape(n, K)[:, :width].T
    k = np.arange(width)[:, None]
    judged = (
        (count >= 1)
        & (count <= K)
        & ~((k < count) & (w < 0)).any(0)
        & ~((k < count - 1) & (sp < 0)).any(0)
    )
    count = np.where(judged, count, 0)
    air = np.zeros(n, bool) if cols.air_suspension is None else np.asarray(cols.air_suspension)
    linked = (k < count - 1) & (sp < lim.group_spacing_mm)  # axle k + 1 is grouped with k
    # What each axle adds to its group's tallies: SIZE, LOAD, drive axles, drive axles on single
    # tyres, non-drive axles on single tyres. One array, so that a step is two operations.
    add = np.stack([np.ones_like(w), w, drive, drive & ~dual, ~drive & ~dual], axis=1)
    # a single axle's limit, if this axle is one
    single = np.where(
        ~dual, lim.single_tyres_kg, np.where(drive, lim.drive_dual_tyres_kg, lim.dual_tyres_kg)
    )
    tandem_bounds, tridem_bounds = np.array(lim.tandem_bounds_mm), np.array(lim.tridem_bounds_mm)
    tandem_kg, tandem_air_kg = np.array(lim.tandem_kg), np.array(lim.tandem_drive_air_kg)
    tridem_kg = np.array(lim.tridem_kg)
    n_groups = np.zeros(n, np.int64)
    worst = np.full(n, -1, np.int64)  # the group furthest over; the first on ties
    worst_over = np.full(n, np.iinfo(np.int64).min, np.int64)

    # the open group of each vehicle
    tally = np.zeros((5, n), np.int64)
    g_start = np.zeros(n, np.int64)
    g_d = np.full(n, -1, np.int64)
    g_single = np.zeros(n, np.int64)  # the limit if it stays a single axle
    for a in range(width):
        here = a < count
        opens = here & ~((tally[0] < 3) & linked[a - 1]) if a > 0 else here
        tally = tally * ~opens + add[a]
        g_start = np.where(opens, a, g_start)
        g_d = np.where(opens, -1, np.maximum(g_d, sp[a - 1])) if a > 0 else np.full(n, -1)
        g_single = np.where(opens, single[a], g_single)

        v = np.flatnonzero(here & ~((tally[0] < 3) & linked[a]))  # the groups that end here
        size, g_load, drives, drives_single, reduced = tally[:, v]
        d = g_d[v]
        band2 = np.searchsorted(tandem_bounds, d, side="right")
        air_ok = air[v] & (drives > 0) & (drives_single == 0)
        tandem = np.where(air_ok, tandem_air_kg[band2], tandem_kg[band2])
        tridem = tridem_kg[np.searchsorted(tridem_bounds, d, side="left")]
        g = n_groups[v]
        g_limit = np.where(
            size == SINGLE,
            g_single[v],
            np.where(size == TANDEM, tandem, tridem) - lim.single_tyre_in_group_kg * reduced,
        )
        g_over = g_load - g_limit
        out[:, g, v] = (g_start[v], size, d, g_limit, g_load, g_over)
        better = g_over > worst_over[v]
        worst[v[better]], worst_over[v[better]] = g[better], g_over[better]
        n_groups[v] += 1
    return judged, n_groups, worst


# (first axle, kind, spacing d or -1, limit, load, over)
Group = tuple[int, int, int, int, int, int]


def worst_after_margin(
    groups: AxleGroups, class_permille: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per vehicle: the group furthest over its limit once the device's margin (class ‰ of the
    group's load, rounded up) is taken off every group, and that net excess; (-1, min) for a
    vehicle not judged or without groups. The group furthest over before the margin need not be
    the one over after it: a light group over by a little can stand where a heavy one falls."""
    permille = np.asarray(class_permille, np.int64)[:, None]
    net = groups.over_kg - (groups.load_kg * permille + 999) // 1000
    real = (groups.kind > 0) & groups.judged[:, None]
    low = np.iinfo(np.int64).min
    net = np.where(real, net, low)
    worst = np.argmax(net, axis=1) if net.shape[1] else np.zeros(len(net), np.int64)
    best = net[np.arange(len(net)), worst] if net.shape[1] else np.full(len(net), low)
    return np.where(best > low, worst, -1), best


def worst_after_margin_one(groups: list[Group], class_permille: int) -> tuple[int, int]:
    """Reference twin of :func:`worst_after_margin` for one vehicle's groups."""
    worst, best = -1, None
    for g, (_, _, _, limit, load, _) in enumerate(groups):
        net = load - -(-load * class_permille // 1000) - limit
        if best is None or net > best:
            worst, best = g, net
    return worst, best if best is not None else int(np.iinfo(np.int64).min)


def detect_one(
    weights: list[int],
    spacings: list[int],
    dual: list[bool],
    drive: list[bool],
    air_suspension: bool = False,
    limits: AxleLimits | None = None,
) -> tuple[bool, list[Group], int]:
    """Reference twin of :func:`detect` for one vehicle, unpadded, written for obviousness.

    ``spacings[k]`` is the gap from axle k to k + 1. Returns (judged, groups, worst index).
    """
    lim = limits or AxleLimits()
    count = len(weights)
    if not 1 <= count <= MAX_AXLES or min(weights) < 0 or any(s < 0 for s in spacings):
        return False, [], -1

    groups: list[Group] = []
    a = 0
    while a < count:
        size = 1
        while size < 3 and a + size < count and spacings[a + size - 1] < lim.group_spacing_mm:
            size += 1
        axles = range(a, a + size)
        load = sum(weights[j] for j in axles)
        if size == SINGLE:
            d = -1
            if not dual[a]:
                limit = lim.single_tyres_kg
            elif drive[a]:
                limit = lim.drive_dual_tyres_kg
            else:
                limit = lim.dual_tyres_kg
        else:
            if size == TANDEM:
                d = spacings[a]
                band = sum(1 for b in lim.tandem_bounds_mm if d >= b)
                drives = [j for j in axles if drive[j]]
                if air_suspension and drives and all(dual[j] for j in drives):
                    limit = lim.tandem_drive_air_kg[band]
                else:
                    limit = lim.tandem_kg[band]
            else:
                d = max(spacings[a], spacings[a + 1])
                band = sum(1 for b in lim.tridem_bounds_mm if d > b)
                limit = lim.tridem_kg[band]
            single_tyred = sum(1 for j in axles if not dual[j] and not drive[j])
            limit -= lim.single_tyre_in_group_kg * single_tyred
        groups.append((a, size, d, limit, load, load - limit))
        a += size

    worst = 0
    for g, group in enumerate(groups):
        if group[5] > groups[worst][5]:
            worst = g
    return True, groups, worst
