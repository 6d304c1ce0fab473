"""2016 No. 62 Art. 3 + Art. 43 (2): DOMAIN.md's worked examples, expected values written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import overload
from detectors.limits import configuration
from rules import penalty

# (configuration, measured kg, limit, over, outcome, fine) — DOMAIN.md "Worked examples",
# no tolerance deducted, partial tonnes counted down.
WORKED = [
    ("truck_2", 18_000, 18_000, 0, "none", None),
    ("truck_2", 19_000, 18_000, 1_000, "warning", None),
    ("truck_2", 19_001, 18_000, 1_001, "fine", 500),
    ("combination_6", 55_300, 49_000, 6_300, "fine", 3_000),
    ("combination_6_single_drive", 55_300, 46_000, 9_300, "fine", 4_500),
    ("combination_5", 120_000, 43_000, 77_000, "fine", 30_000),
]


@pytest.mark.parametrize(("config", "measured", "limit", "over", "outcome", "fine"), WORKED)
def test_domain_worked_examples(
    config: str, measured: int, limit: int, over: int, outcome: str, fine: int | None
) -> None:
    cols = overload.WimColumns(
        gross_kg=np.array([measured]),
        config=np.array([overload.CONFIG_INDEX[config]]),
        class_permille=np.array([0]),
        steady=np.array([True]),
        certified=np.array([True]),
        plate_ok=np.array([True]),
    )
    res = overload.detect(cols)
    assert int(res.limit_kg[0]) == limit
    assert int(res.overload_kg[0]) == over
    p = penalty(int(res.overload_kg[0]))
    assert (p.outcome, p.fine_cny) == (outcome, fine)


@pytest.mark.parametrize(
    ("over", "fine", "tier"),
    [
        (1, None, "art43-2-warning"),
        (2_400, 1_000, "art43-2-per-tonne"),  # partial tonne counted down: 2 × 500
        (2_999, 1_000, "art43-2-per-tonne"),
        (3_000, 1_500, "art43-2-per-tonne"),
        (59_999, 29_500, "art43-2-per-tonne"),
        (60_000, 30_000, "art43-2-cap"),  # 60 × 500 reaches the cap exactly
        (61_000, 30_000, "art43-2-cap"),
    ],
)
def test_tiers_rounding_and_cap(over: int, fine: int | None, tier: str) -> None:
    p = penalty(over)
    assert (p.fine_cny, p.tier) == (fine, tier)


@pytest.mark.parametrize(
    ("axles", "combination", "drive", "limit"),
    [
        (2, False, None, 18_000),
        (3, False, None, 25_000),
        (3, True, None, 27_000),
        (4, False, None, 31_000),
        (4, True, None, 36_000),
        (5, True, None, 43_000),
        (6, True, 2, 49_000),
        (6, True, 1, 46_000),
        (6, True, None, 49_000),  # drive axles unknown: the higher limit, in the party's favour
        (12, True, 1, 46_000),
    ],
)
def test_art3_limits(axles: int, combination: bool, drive: int | None, limit: int) -> None:
    from detectors.limits import CONFIGURATIONS

    assert CONFIGURATIONS[configuration(axles, combination, drive)][0] == limit


@pytest.mark.parametrize(
    ("measured", "class_", "tolerance", "over", "fine"),
    [
        # class 5 in service: ±5 %; 55,300 × 5 % = 2,765 → 52,535 − 49,000 = 3,535 → 3 × 500
        (55_300, 5, 2_765, 3_535, 1_500),
        # class 2: 20,041 × 2 % = 400.82 → 401 kg (rounded up, for the party)
        (20_041, 2, 401, 1_640, 500),
        # class 10 on a 2-axle truck: 20,000 × 10 % = 2,000 → 18,000: exactly at the limit
        (20_000, 10, 2_000, 0, None),
    ],
)
def test_device_tolerance_is_deducted(
    measured: int, class_: int, tolerance: int, over: int, fine: int | None
) -> None:
    config = "combination_6" if measured > 50_000 else "truck_2"
    limit, tol, ov, _, _ = overload.detect_one(measured, config, class_ * 10, True, True, True)
    assert (tol, ov) == (tolerance, measured - tolerance - limit)
    assert ov == over
    assert penalty(ov).fine_cny == fine
