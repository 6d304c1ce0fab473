from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.order import by_plate_time

small = st.integers(-5, 5)
huge = st.integers(-(2**40), 2**40)  # too wide to fold: the lexsort path


@given(st.lists(st.tuples(small | huge, small | huge), max_size=40))
def test_sorts_by_plate_then_time_then_index(rows: list[tuple[int, int]]) -> None:
    plate = np.array([p for p, _ in rows], np.int64)
    ts = np.array([t for _, t in rows], np.int64)
    expected = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], i))
    assert by_plate_time(plate, ts).tolist() == expected


def test_ties_keep_input_order() -> None:
    order = by_plate_time(np.array([7, 3, 7, 3, 7]), np.array([5, 5, 5, 5, 1]))
    assert order.tolist() == [1, 3, 4, 0, 2]
