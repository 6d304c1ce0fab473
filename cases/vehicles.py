"""The vehicle as a notice names it: its type and the single item of Art. 3 para 1 of
《超限运输车辆行驶公路管理规定》 (交通运输部令2016年第62号) whose limit applies (review B8/B9).

Source, Art. 3 para 1: "（四）二轴货车，其车货总质量超过18000千克；（五）三轴货车，其车货总质量超过
25000千克；三轴汽车列车，其车货总质量超过27000千克；（六）四轴货车，其车货总质量超过31000千克；四轴汽车
列车，其车货总质量超过36000千克；（七）五轴汽车列车，其车货总质量超过43000千克；（八）六轴及六轴以上汽车
列车，其车货总质量超过49000千克，其中牵引车驱动轴为单轴的，其车货总质量超过46000千克。" The keys are the
detectors' configuration codes (detectors/limits.py).
"""

from __future__ import annotations

ART3 = "《超限运输车辆行驶公路管理规定》"
ART3_RANGE = ("第三条第一款第(四)项至第(八)项", "第三条第一款第（四）项至第（八）项")
# configuration → (vehicle type as printed, the item of Art. 3 para 1)
VEHICLE_TYPES: dict[str, tuple[str, str]] = {
    "truck_2": ("二轴货车", "四"),
    "truck_3": ("三轴货车", "五"),
    "combination_3": ("三轴汽车列车", "五"),
    "truck_4": ("四轴货车", "六"),
    "combination_4": ("四轴汽车列车", "六"),
    "combination_5": ("五轴汽车列车", "七"),
    "combination_6": ("六轴及六轴以上汽车列车", "八"),
    "combination_6_single_drive": ("六轴及六轴以上汽车列车（牵引车驱动轴为单轴）", "八"),
}


def full_width(text: str) -> str:
    """Official documents use full-width parentheses throughout: "（四）", not "(四)"."""
    return text.replace("(", "（").replace(")", "）")


def single_item(basis: str, configuration: str | None) -> str:
    """``basis`` with the range of Art. 3 replaced by the one item for this vehicle; the range
    stays when the configuration is not known (a wrong item is worse than the range)."""
    found = VEHICLE_TYPES.get(configuration or "")
    if found is not None:
        for text in ART3_RANGE:
            basis = basis.replace(text, f"第三条第一款第（{found[1]}）项")
    return full_width(basis)


def vehicle_type(configuration: str | None) -> str | None:
    found = VEHICLE_TYPES.get(configuration or "")
    return found[0] if found else None
