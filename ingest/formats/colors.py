"""Plate colours as Chinese stations and cameras send them: a Chinese name, or the digit code of
the police checkpoint interfaces (0 白, 1 黄, 2 蓝, 3 黑, 4 绿 — the convention of the TMRI 卡口
upload as vendors implement it; not checked against the standard's text, so only these five
digits are read). Anything else is no colour (None): a heavy weighing with no colour is not
fined on its plate (events.models.HEAVY_PLATE_COLORS), it is reviewed."""

from __future__ import annotations

from events.registry import PlateColor

_NAMES: dict[str, PlateColor] = {
    "白": "white", "黄": "yellow", "蓝": "blue", "黑": "black", "绿": "green", "黄绿": "yellow_green",
    "0": "white", "1": "yellow", "2": "blue", "3": "black", "4": "green",
}  # fmt: skip


def plate_color(value: str) -> PlateColor | None:
    v = value.strip().removesuffix("色").removesuffix("牌")
    return _NAMES.get(v)


# what a camera writes when it read no plate
NO_PLATE = frozenset({"", "无牌", "无车牌", "未识别", "未知", "车牌", "-", "--", "00000000"})


def plate(value: str) -> str | None:
    v = value.strip()
    return None if v in NO_PLATE else v
