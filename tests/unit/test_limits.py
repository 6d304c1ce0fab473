"""2016 No. 62 Art. 3 para. 1 items (4)–(8): the gross limit of each axle configuration."""

from __future__ import annotations

import pytest

from detectors.limits import CONFIGURATIONS, configuration, infer_kind


@pytest.mark.parametrize(
    ("axles", "combination", "drive", "limit"),
    [
        (2, False, None, 18_000),  # 二轴货车
        (3, False, None, 25_000),  # 三轴货车
        (3, True, None, 27_000),  # 三轴汽车列车
        (4, False, None, 31_000),  # 四轴货车
        (4, True, None, 36_000),  # 四轴汽车列车
        (5, True, None, 43_000),  # 五轴汽车列车
        (6, True, 2, 49_000),  # 六轴及以上汽车列车
        (6, True, 1, 46_000),  # … 驱动轴为单轴
        (6, True, None, 49_000),  # drive axles unknown: the higher limit, in the party's favour
        (12, True, 1, 46_000),
    ],
)
def test_art3_limits(axles: int, combination: bool, drive: int | None, limit: int) -> None:
    assert CONFIGURATIONS[configuration(axles, combination, drive)][0] == limit


@pytest.mark.parametrize(
    ("axles", "spacings", "kind"),
    [
        (3, [4_500, 1_350], "rigid"),  # 6×4 truck
        (3, [3_600, 7_200], "combination"),  # tractor + one-axle semi-trailer
        (4, [1_900, 4_600, 1_350], "rigid"),  # 8×4 truck
        (4, [3_600, 7_400, 1_310], "combination"),
        (5, [3_600, 1_350, 7_000, 1_310], "combination"),
    ],
)
def test_kind_inferred_from_a_coupling_gap(axles: int, spacings: list[int], kind: str) -> None:
    assert infer_kind(axles, spacings) == kind
