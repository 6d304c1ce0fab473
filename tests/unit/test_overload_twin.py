"""The vectorized overload detector equals its per-record reference twin on any batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import overload

row = st.tuples(
    st.integers(1, 200_000),
    st.sampled_from(list(overload.CONFIG_INDEX)),
    st.sampled_from([0, 5, 10, 20, 50, 70, 100, 150]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=300)
@given(st.lists(row, min_size=0, max_size=60))
def test_vectorized_equals_reference(rows: list[tuple]) -> None:
    cols = overload.WimColumns(
        gross_kg=np.array([r[0] for r in rows], np.int64),
        config=np.array([overload.CONFIG_INDEX[r[1]] for r in rows], np.int64),
        class_permille=np.array([r[2] for r in rows], np.int64),
        steady=np.array([r[3] for r in rows], bool),
        certified=np.array([r[4] for r in rows], bool),
        plate_ok=np.array([r[5] for r in rows], bool),
    )
    res = overload.detect(cols)
    assert len(res.limit_kg) == len(rows)
    for i, r in enumerate(rows):
        want = overload.detect_one(*r)
        got = (
            int(res.limit_kg[i]),
            int(res.tolerance_kg[i]),
            int(res.overload_kg[i]),
            bool(res.overloaded[i]),
            bool(res.enforceable[i]),
        )
        assert got == want
