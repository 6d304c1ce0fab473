"""Gross-mass limits by axle configuration.

Source: 《超限运输车辆行驶公路管理规定》 (Ministry of Transport Order 2016 No. 62), Art. 3 para. 1
items (4)–(8), with GB 1589-2016. National law, the same in every province.
"""

from __future__ import annotations

# configuration code → (limit kg, name on a notice)
CONFIGURATIONS: dict[str, tuple[int, str]] = {
    "truck_2": (18_000, "二轴货车"),
    "truck_3": (25_000, "三轴货车"),
    "combination_3": (27_000, "三轴汽车列车"),
    "truck_4": (31_000, "四轴货车"),
    "combination_4": (36_000, "四轴汽车列车"),
    "combination_5": (43_000, "五轴汽车列车"),
    "combination_6": (49_000, "六轴及以上汽车列车"),
    "combination_6_single_drive": (46_000, "六轴及以上汽车列车(驱动轴为单轴)"),
}


def configuration(axle_count: int, combination: bool, drive_axles: int | None) -> str:
    """The Art. 3 configuration of a vehicle. An unknown drive-axle count on 6+ axles takes the
    higher limit (49 t): in doubt, the reading most favourable to the party."""
    if axle_count <= 2:
        return "truck_2"
    if axle_count == 3:
        return "combination_3" if combination else "truck_3"
    if axle_count == 4:
        return "combination_4" if combination else "truck_4"
    if axle_count == 5:
        return "combination_5"
    return "combination_6_single_drive" if drive_axles == 1 else "combination_6"


def readings(axle_count: int, kind: str | None, drive_axles: int | None) -> tuple[str, str | None]:
    """(the configuration most favourable to the party, the other one when a fact the limit
    rests on is not known, else None). A 3- or 4-axle vehicle of unknown body is a road train
    (27/36 t) or a rigid truck (25/31 t); a 6+-axle one of unknown drive axles has 49 t or 46 t.
    The decision takes the higher limit and goes to review when the other would decide
    otherwise."""
    if axle_count in (3, 4) and kind is None:
        return f"combination_{axle_count}", f"truck_{axle_count}"
    if axle_count >= 6 and drive_axles is None:
        return "combination_6", "combination_6_single_drive"
    return configuration(axle_count, kind == "combination", drive_axles), None
