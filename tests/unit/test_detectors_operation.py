"""Illegal passenger operation leads: hand-worked shuttles, and the per-plate twin property."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import operation
from detectors.operation import OperationRules

H = 3_600_000
DAY = 24 * H
RULES = OperationRules(min_trips=3, window_days=1, max_trip_hours=2)

Row = tuple[int, int, int, bool]  # plate, ts ms, hub, licensed


def leads(rows: list[Row], rules: OperationRules = RULES) -> list[tuple]:
    res = operation.detect(
        np.array([r[0] for r in rows], np.int64),
        np.array([r[1] for r in rows], np.int64),
        np.array([r[2] for r in rows], np.int64),
        np.array([r[3] for r in rows], bool),
        rules,
    )
    return [
        (int(res.plate[k]), int(res.trips[k]), float(res.score[k]), res.sightings_of(k).tolist())
        for k in range(len(res))
    ]


def shuttle(plate: int, start: int, n: int, licensed: bool = False, gap: int = H) -> list[Row]:
    """n + 1 hub sightings alternating between hubs 1 and 2, ``gap`` apart: n trips."""
    return [(plate, start + k * gap, 1 + k % 2, licensed) for k in range(n + 1)]


def test_three_trips_in_a_day_is_a_lead() -> None:
    assert leads(shuttle(7, 8 * H, 3)) == [(7, 3, 0.5, [0, 1, 2, 3])]


def test_two_trips_are_not() -> None:
    assert leads(shuttle(7, 8 * H, 2)) == []


def test_score_grows_with_trips_and_stops_at_one() -> None:
    assert leads(shuttle(7, 0, 4))[0][1:3] == (4, 4 / 6)
    assert leads(shuttle(7, 0, 6))[0][1:3] == (6, 1.0)
    assert leads(shuttle(7, 0, 9))[0][1:3] == (9, 1.0)


def test_licensed_vehicles_are_never_leads() -> None:
    assert leads(shuttle(7, 0, 5, licensed=True)) == []


def test_trip_length_boundary() -> None:
    assert leads(shuttle(7, 0, 3, gap=2 * H))[0][1] == 3  # exactly max_trip_hours: a trip
    assert leads(shuttle(7, 0, 3, gap=2 * H + 1)) == []


def test_dwell_at_one_hub_and_off_hub_sightings() -> None:
    rows = [
        (7, 0, 1, False),
        (7, 10, 1, False),  # dwell: 1 → 1 is not a trip, but the next one leaves from here
        (7, H, -1, False),  # on the road, not at a hub: ignored
        (7, 2 * H, 2, False),
        (7, 3 * H, 1, False),
        (7, 4 * H, 2, False),
    ]
    assert leads(rows) == [(7, 3, 0.5, [1, 3, 4, 5])]


def test_trips_spread_over_more_than_the_window_do_not_add_up() -> None:
    rows = shuttle(7, 0, 2) + [(7, DAY + 2 * H + k * H, 1 + (k + 1) % 2, False) for k in range(2)]
    # trips at 0 h and 1 h; 2 h → DAY + 2 h is too long for a trip; one more at DAY + 2 h
    assert leads(rows) == []
    assert leads(rows, OperationRules(min_trips=3, window_days=2, max_trip_hours=30))[0][1] == 4


def test_the_best_window_names_its_sightings() -> None:
    rows = shuttle(7, 0, 1) + shuttle(7, 3 * DAY, 3)  # one stray trip, then a day of shuttling
    assert leads(rows) == [(7, 3, 0.5, [2, 3, 4, 5])]


def test_plates_are_kept_apart_and_sorted() -> None:
    rows = shuttle(9, 0, 3) + shuttle(4, 0, 3)
    assert [lead[0] for lead in leads(rows)] == [4, 9]
    assert leads(rows)[0][3] == [4, 5, 6, 7]


def test_empty_batch_and_single_sighting() -> None:
    assert leads([]) == []
    assert leads([(1, 0, 1, False)]) == []


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        OperationRules(min_trips=0)


row = st.tuples(
    st.integers(0, 3),
    st.integers(0, 72).map(lambda h: h * H // 2),  # half-hour steps: ties and boundaries happen
    st.integers(-1, 3),
    st.booleans(),
)


@settings(max_examples=400)
@given(
    st.lists(row, max_size=40),
    st.integers(1, 4),
    st.integers(1, 2),
    st.integers(0, 3),
)
def test_vectorized_equals_reference(rows: list[Row], min_trips: int, days: int, hrs: int) -> None:
    rules = OperationRules(min_trips=min_trips, window_days=days, max_trip_hours=hrs)
    by_plate: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for i, (plate, ts, hub, licensed) in enumerate(rows):
        if not licensed:
            by_plate[plate].append((i, ts, hub))
    want = []
    for plate in sorted(by_plate):
        lead = operation.detect_one(by_plate[plate], rules)
        if lead is not None:
            want.append((plate, lead[0], lead[1], list(lead[2])))
    assert leads(rows, rules) == want
