"""Axle-group overload: hand-worked cases under the ◐ GB 1589 defaults, and the twin property."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import axles
from detectors.axles import MAX_AXLES, SINGLE, TANDEM, TRIDEM, AxleLimits
from events import Registry
from events.stage import Incoming


@dataclass
class Vehicle:
    weights: list[int]
    spacings: list[int]
    dual: list[bool] = field(default_factory=list)  # empty: the Art. 3 presumption
    drive: list[bool] = field(default_factory=list)  # empty: no drive axle
    air: bool = False

    def __post_init__(self) -> None:
        n = len(self.weights)
        self.dual = self.dual or [k > 0 for k in range(n)]
        self.drive = self.drive or [False] * n


def columns(vehicles: list[Vehicle], pad_bool: bool = False) -> axles.AxleColumns:
    n = len(vehicles)
    w = np.full((n, MAX_AXLES), -1, np.int64)
    sp = np.full((n, MAX_AXLES), -1, np.int64)
    dual = np.full((n, MAX_AXLES), pad_bool)
    drive = np.full((n, MAX_AXLES), pad_bool)
    for v, veh in enumerate(vehicles):
        c = len(veh.weights)
        w[v, :c] = veh.weights
        sp[v, : len(veh.spacings)] = veh.spacings
        dual[v, :c] = veh.dual
        drive[v, :c] = veh.drive
    return axles.AxleColumns(
        axle_count=np.array([len(v.weights) for v in vehicles], np.int64),
        weight_kg=w,
        spacing_mm=sp,
        dual=dual,
        drive=drive,
        air_suspension=np.array([v.air for v in vehicles], bool),
    )


def groups_of(res: axles.AxleGroups, v: int) -> list[axles.Group]:
    return [
        (
            int(res.start[v, g]),
            int(res.kind[v, g]),
            int(res.spacing_mm[v, g]),
            int(res.limit_kg[v, g]),
            int(res.load_kg[v, g]),
            int(res.over_kg[v, g]),
        )
        for g in range(int(res.n_groups[v]))
    ]


def one(veh: Vehicle, limits: AxleLimits | None = None) -> tuple[list[axles.Group], int]:
    """Run the vectorized detector on one vehicle; check the twin agrees on the way."""
    res = axles.detect(columns([veh]), limits)
    twin = axles.detect_one(veh.weights, veh.spacings, veh.dual, veh.drive, veh.air, limits)
    assert (bool(res.judged[0]), groups_of(res, 0), int(res.worst[0])) == twin
    return groups_of(res, 0), int(res.worst[0])


STEER = 7_000


def two_axle(steer: int, drive: int) -> Vehicle:
    return Vehicle([steer, drive], [4_000], [False, True], [False, True])


def test_two_axle_truck_at_the_limits_is_not_over() -> None:
    groups, worst = one(two_axle(7_000, 11_500))
    assert groups == [(0, SINGLE, -1, 7_000, 7_000, 0), (1, SINGLE, -1, 11_500, 11_500, 0)]
    assert worst == 0


def test_one_kg_over_names_the_axle() -> None:
    res = axles.detect(columns([two_axle(7_001, 11_500), two_axle(7_000, 11_501)]))
    assert res.overloaded.tolist() == [True, True]
    assert res.worst_start.tolist() == [0, 1]
    assert res.worst_kind.tolist() == [SINGLE, SINGLE]
    assert res.worst_limit_kg.tolist() == [7_000, 11_500]
    assert res.worst_load_kg.tolist() == [7_001, 11_501]
    assert res.worst_over_kg.tolist() == [1, 1]


def test_single_axle_limits_by_tyres_and_drive() -> None:
    # steer, then a non-drive dual axle and a single-tyred drive axle, all far apart
    veh = Vehicle(
        [7_000, 10_001, 7_001], [3_000, 3_000], [False, True, False], [False, False, True]
    )
    groups, worst = one(veh)
    assert [g[3] for g in groups] == [7_000, 10_000, 7_000]
    assert worst == 1  # 1 over at 10,000 and at 7,000: the first one is named


@pytest.mark.parametrize(
    ("d", "limit"),
    [(999, 11_500), (1_000, 16_000), (1_299, 16_000), (1_300, 18_000), (1_799, 18_000)],
)
def test_tandem_limit_by_spacing(d: int, limit: int) -> None:
    veh = Vehicle([STEER, limit // 2, limit - limit // 2], [3_500, d])
    groups, _ = one(veh)
    assert groups[1] == (1, TANDEM, d, limit, limit, 0)
    veh.weights[2] += 1
    groups, worst = one(veh)
    assert (groups[1][5], worst) == (1, 1)


def test_tandem_at_1800_mm_splits_unless_the_threshold_is_raised() -> None:
    veh = Vehicle([STEER, 9_500, 9_500], [3_500, 1_800])
    groups, _ = one(veh)
    assert [(g[1], g[3]) for g in groups] == [(SINGLE, 7_000), (SINGLE, 10_000), (SINGLE, 10_000)]
    groups, worst = one(veh, AxleLimits(group_spacing_mm=2_500))
    assert groups[1] == (1, TANDEM, 1_800, 18_000, 19_000, 1_000)  # the ≥ 1.8 m row
    assert worst == 1


def test_drive_tandem_on_air_suspension() -> None:
    drive = [False, True, True]
    veh = Vehicle([STEER, 9_500, 9_500], [3_500, 1_350], drive=drive, air=True)
    assert one(veh)[0][1][3] == 19_000
    veh.air = False
    assert one(veh)[0][1][3] == 18_000
    veh = Vehicle([STEER, 5_000, 5_000], [3_500, 1_100], drive=drive, air=True)
    assert one(veh)[0][1][3] == 16_000  # the allowance is only in the 1.3–1.8 m band


def test_single_tyres_in_a_group_lower_its_limit() -> None:
    # a trailer tandem at 1,350 mm: one non-drive axle with single tyres → 15,000; two → 12,000
    one_single = Vehicle(
        [STEER, 8_000, 7_500, 7_500], [3_500, 5_000, 1_350], dual=[False, True, True, False]
    )
    assert one(one_single)[0][2][3] == 15_000
    both = Vehicle(
        [STEER, 8_000, 6_000, 6_000], [3_500, 5_000, 1_350], dual=[False, True, False, False]
    )
    assert one(both)[0][2][3] == 12_000
    # a drive axle's own tyres do not lower a group (Art. 3: "except the drive axle")
    drive = Vehicle(
        [STEER, 9_000, 9_000], [3_500, 1_350], dual=[False, False, True], drive=[False, True, True]
    )
    assert one(drive)[0][1][3] == 18_000


@pytest.mark.parametrize(
    ("gaps", "d", "limit"),
    [
        ((1_300, 1_300), 1_300, 21_000),
        ((1_310, 1_300), 1_310, 24_000),
        ((1_300, 1_400), 1_400, 24_000),
        ((1_401, 1_300), 1_401, 24_000),  # untabulated above 1.4 m: the highest tridem limit
    ],
)
def test_tridem_limit_by_spacing(gaps: tuple[int, int], d: int, limit: int) -> None:
    w = [limit // 3, limit // 3, limit - 2 * (limit // 3)]
    veh = Vehicle(
        [STEER, 9_000, 9_000, *w],
        [3_500, 1_350, 7_000, *gaps],
        drive=[False, True, True, False, False, False],
    )
    groups, _ = one(veh)
    assert groups[2] == (3, TRIDEM, d, limit, limit, 0)
    veh.weights[4] += 1
    res = axles.detect(columns([veh]))
    assert (int(res.worst_start[0]), int(res.worst_kind[0]), int(res.worst_over_kg[0])) == (
        3,
        TRIDEM,
        1,
    )


def test_six_axle_combination() -> None:
    veh = Vehicle(
        [7_000, 9_000, 9_000, 8_000, 8_000, 8_000],
        [3_200, 1_350, 7_000, 1_310, 1_310],
        drive=[False, True, True, False, False, False],
    )
    groups, _ = one(veh)
    assert [(g[0], g[1], g[3]) for g in groups] == [
        (0, SINGLE, 7_000),
        (1, TANDEM, 18_000),
        (3, TRIDEM, 24_000),
    ]
    assert sum(g[4] for g in groups) == 49_000


def test_a_run_of_four_is_a_tridem_and_a_single() -> None:
    groups, _ = one(Vehicle([STEER, 7_000, 7_000, 7_000, 7_000], [3_500, 1_310, 1_310, 1_310]))
    assert [(g[0], g[1]) for g in groups] == [(0, SINGLE), (1, TRIDEM), (4, SINGLE)]


@pytest.mark.parametrize(
    "veh",
    [
        Vehicle([7_000, -1], [4_000]),  # a weight not measured
        Vehicle([7_000, 9_000], [-1]),  # a spacing not measured
        Vehicle([], []),
    ],
)
def test_unmeasured_vehicles_are_not_judged(veh: Vehicle) -> None:
    res = axles.detect(columns([veh]))
    assert not res.judged[0] and not res.overloaded[0]
    assert (int(res.n_groups[0]), int(res.worst[0]), int(res.worst_start[0])) == (0, -1, -1)
    assert axles.detect_one(veh.weights, veh.spacings, veh.dual, veh.drive) == (False, [], -1)


def test_presumed_dual() -> None:
    assert axles.presumed_dual(np.array([3]))[0, :4].tolist() == [False, True, True, False]


def test_empty_batch() -> None:
    res = axles.detect(columns([]))
    assert res.start.shape == (0, 0) and len(res.worst) == 0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        AxleLimits(tandem_kg=(1, 2))


spacing = st.one_of(
    st.sampled_from([-1, 999, 1_000, 1_299, 1_300, 1_301, 1_400, 1_401, 1_799, 1_800, 2_499]),
    st.integers(0, 6_000),
)


@st.composite
def vehicle(draw: st.DrawFn) -> Vehicle:
    n = draw(st.integers(0, MAX_AXLES))
    weights = draw(st.lists(st.one_of(st.integers(0, 14_000), st.just(-1)), min_size=n, max_size=n))
    gaps = draw(st.lists(spacing, min_size=max(n - 1, 0), max_size=max(n - 1, 0)))
    flags = st.lists(st.booleans(), min_size=n, max_size=n)
    return Vehicle(weights, gaps, draw(flags), draw(flags), draw(st.booleans()))


@settings(max_examples=300)
@given(
    st.lists(vehicle(), max_size=30),
    st.sampled_from([1_000, 1_800, 2_500]),
    st.booleans(),
)
def test_vectorized_equals_reference(vehicles: list[Vehicle], threshold: int, pad: bool) -> None:
    limits = AxleLimits(group_spacing_mm=threshold)
    res = axles.detect(columns(vehicles, pad_bool=pad), limits)
    for v, veh in enumerate(vehicles):
        judged, groups, worst = axles.detect_one(
            veh.weights, veh.spacings, veh.dual, veh.drive, veh.air, limits
        )
        assert (bool(res.judged[v]), groups_of(res, v), int(res.worst[v])) == (
            judged,
            groups,
            worst,
        )
        named = groups[worst] if groups else (-1, 0, -1, 0, 0, 0)
        assert (
            int(res.worst_start[v]),
            int(res.worst_kind[v]),
            int(res.worst_limit_kg[v]),
            int(res.worst_load_kg[v]),
            int(res.worst_over_kg[v]),
            bool(res.overloaded[v]),
        ) == (named[0], named[1], named[3], named[4], named[5], named[5] > 0)


@settings(max_examples=50)
@given(st.lists(vehicle(), min_size=1, max_size=40), st.integers(1, 7))
def test_blocks_give_the_whole_batch_result(vehicles: list[Vehicle], block: int) -> None:
    """The walk goes a block of vehicles at a time; the block size changes nothing."""
    whole = axles.detect(columns(vehicles))
    saved = axles.BLOCK
    try:
        axles.BLOCK = block
        blocked = axles.detect(columns(vehicles))
    finally:
        axles.BLOCK = saved
    for f in fields(axles.AxleGroups):
        assert np.array_equal(getattr(blocked, f.name), getattr(whole, f.name)), f.name


def test_a_record_without_spacings_has_no_axle_groups_judged() -> None:
    # a station format without spacings (ingest.formats) gives an empty list: "not measured",
    # padded as -1, so the vehicle's axle groups are not judged (its gross still is)
    import datetime as dt

    from detectors.match import Match
    from detectors.stage import _axle_columns
    from events import WimRecord

    rec = WimRecord(record_id="r", site_id="S", device_id="W", lane=1,
                    ts=dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC), speed_kmh=60.0, axle_count=3,
                    axle_weights_kg=[7000, 12000, 12000], gross_weight_kg=31000)  # fmt: skip
    cols = _axle_columns([Match(rec, ("road.wim", 0, 0), None, 1.0)])
    assert cols.spacing_mm[0].tolist() == [-1] * len(cols.spacing_mm[0])
    assert not axles.detect(cols).judged[0]


@st.composite
def wim_records(draw: st.DrawFn) -> object:
    import datetime as dt

    from events import WimRecord

    n = draw(st.integers(2, MAX_AXLES + 3))  # past the padding too: kept out of the columns
    weights = draw(st.lists(st.integers(0, 20_000), min_size=n, max_size=n))
    spaced = draw(st.booleans())
    spacings = draw(st.lists(st.integers(1, 9_000), min_size=n - 1, max_size=n - 1))
    return WimRecord(record_id="r", site_id="S", device_id="W", lane=1,
                     ts=dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC), speed_kmh=60.0, axle_count=n,
                     axle_weights_kg=weights, axle_spacings_mm=spacings if spaced else [],
                     gross_weight_kg=max(1, sum(weights)),
                     drive_axles=draw(st.sampled_from([None, 1, 2])))  # fmt: skip


@settings(max_examples=60)
@given(st.lists(wim_records(), max_size=12))
def test_the_columnar_axle_columns_equal_the_per_vehicle_twin(records: list) -> None:
    from detectors.match import Match
    from detectors.stage import _axle_columns, _axle_columns_one

    matches = [Match(r, ("road.wim", 0, i), None, 1.0) for i, r in enumerate(records)]
    fast, twin = _axle_columns(matches), _axle_columns_one(matches)
    for f in fields(axles.AxleColumns):
        assert np.array_equal(getattr(fast, f.name), getattr(twin, f.name)), f.name


async def test_the_stage_says_the_same_with_the_per_vehicle_axle_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # simulated traffic through the whole stage: every message it sends, fast path and twin
    from pathlib import Path

    from detectors import stage
    from offsite.config import load_registry
    from sim import SimulationConfig, simulate

    registry = load_registry(Path(__file__).resolve().parents[2] / "configs" / "sites.yaml")
    passes = simulate(registry, SimulationConfig(vehicles=400, seed=3, images=False))
    msgs = [Incoming("road.wim", 0, i, None, p.wim.to_json()) for i, p in enumerate(passes)]
    msgs += [Incoming("road.anpr", 0, i, None, p.capture.to_json())
             for i, p in enumerate(passes) if p.capture is not None]  # fmt: skip

    fast = await stage_sends(registry, msgs)
    monkeypatch.setattr(stage, "_axle_columns", stage._axle_columns_one)
    assert await stage_sends(registry, msgs) == fast
    assert any(b'"detector":"overload.axle"' in v for _, _, v in fast)  # groups were judged


async def stage_sends(
    registry: Registry, msgs: list[Incoming]
) -> list[tuple[str, bytes | None, bytes]]:
    """Every message a new detection stage sends for ``msgs``, read in two batches, then idle."""
    from detectors import DetectionStage

    s = DetectionStage(registry)
    results = [await s.process(msgs[:500]), await s.process(msgs[500:]), await s.idle()]
    return [(o.topic, o.key, o.value) for r in results for o in r.out + r.dead]
