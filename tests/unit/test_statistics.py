"""The statistics' parts that need no database: which weighings the detection stage counts as
overloaded (the reading most favourable to the party, axle groups too; a dead letter is no
weighing), the period's bounds in Beijing time, and a long period charted by month."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from cases.statistics import _series, period
from detectors import DetectionStage

from .test_stages import REGISTRY, TZ, incoming, record


class Weighings:
    """A weighings store in memory: the rows as the stage writes them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, dt.datetime, bool]] = []

    async def write_weighings(self, rows: list[tuple[str, str, str, dt.datetime, bool]]) -> None:
        self.rows += rows


async def test_every_pass_judged_is_a_weighing_and_overloaded_after_the_tolerance() -> None:
    store = Weighings()
    stage = DetectionStage(REGISTRY, weighings=store)
    # G312's device is class 2: over when the gross less 2 % (the in-service error, OIML R134 /
    # JJG 907) is over 49,000 kg, a 6-axle combination's limit (2016 No. 62 Art. 3, detectors/limits.py)
    items = [
        record("legal", 40_000, 0),
        record("over", 60_000, 10),  # 60,000 − 1,200 = 58,800 > 49,000
        record("within", 49_500, 20, axle_weights_kg=[7_000, 9_150, 9_150, 8_100, 8_000, 8_100]),
        # gross within; the tandem's 20,200 kg − 404 is over its 18,000 kg
        record("axle", 40_000, 30, axle_weights_kg=[6_500, 10_000, 10_200, 4_400, 4_400, 4_500]),
        record("lost", 60_000, 40, site_id="NOWHERE"),  # a dead letter: not weighed here
    ]
    res = await stage.process(incoming(items))
    await stage.idle()
    assert len(res.dead) == 1
    assert [(r[1], r[4]) for r in store.rows] == [
        ("legal", False), ("over", True), ("within", False), ("axle", True)]  # fmt: skip
    assert {(r[0], r[2]) for r in store.rows} == {("WIM-G312-1035", "G312-K1035-E")}


def test_the_period_is_whole_beijing_days() -> None:
    start, end = period(dt.date(2026, 12, 1), dt.date(2026, 12, 31), TZ)
    # 00:10 on the first day is in, 00:00 on the day after the last is not
    assert start <= dt.datetime(2026, 12, 1, 0, 10, tzinfo=TZ) < end
    assert start == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2027, 1, 1, tzinfo=TZ)
    with pytest.raises(ValueError):
        period(dt.date(2026, 12, 2), dt.date(2026, 12, 1), TZ)


def test_a_long_period_is_charted_by_month_with_every_month() -> None:
    days = {dt.date(2026, 11, 30): [3, 1, Counter(a=1)], dt.date(2027, 1, 2): [2, 0, Counter()],
            dt.date(2026, 11, 15): [1, 1, Counter(a=2)]}  # fmt: skip
    out = _series(days, dt.date(2026, 11, 15), dt.date(2027, 1, 31), monthly=True)
    # November: 3 + 1 weighed, 1 + 1 over, 1 + 2 cases; December nothing; January 2, 0
    assert out == [(dt.date(2026, 11, 1), 4, 2, Counter(a=3)), (dt.date(2026, 12, 1), 0, 0, Counter()),
                   (dt.date(2027, 1, 1), 2, 0, Counter())]  # fmt: skip
    daily = _series(days, dt.date(2026, 11, 29), dt.date(2026, 12, 1), monthly=False)
    assert [(d.day, w) for d, w, _, _ in daily] == [(29, 0), (30, 3), (1, 0)]


def test_the_table_names_every_figure_and_marks_what_does_not_apply() -> None:
    from cases.statistics import Figures, Statistics
    from console.stats import table, text

    road = Figures(weighed=4, overloaded=1, cases=Counter({"road.overload.gross": 2}),
                   states=Counter({"closed": 1, "some_new_state": 1}), filed=2, concluded=1)  # fmt: skip
    hub = Figures(leads=3)
    s = Statistics(dt.date(2026, 12, 1), dt.date(2026, 12, 31), {"G312-K1035-E": road,
                   "HUB-ZZZ": hub}, road + hub, [], False)  # fmt: skip
    ids, rows = table(s, road=frozenset({"G312-K1035-E"}))
    by = {r.key: r for r in rows}
    assert ids == ["", "G312-K1035-E", "HUB-ZZZ"]
    # a hub weighs nothing: "—", not 0 %; a state the names table does not know comes last
    assert by["weighed"].values == [4, 4, None] and by["overload_rate"].values == [0.25, 0.25, None]
    assert [k for k in by if k.startswith("state.")] == ["state.closed", "state.some_new_state"]
    assert by["closing_rate"].values == [0.5, 0.5, None] and by["chaogao"].values == [0, 0, 0]
    assert [text(v, r.kind) for r, v in ((by["overload_rate"], 0.25), (by["collected"], 4500.0),
                                         (by["weighed"], 12345), (by["chaogao"], None))] == [
        "25.00 %", "4,500.00", "12,345", "—"]  # fmt: skip


def test_a_period_before_the_weighings_kept_gives_no_weighing_figures() -> None:
    # before: once the console deleted the old weighings, such a period read 0 weighed
    import dataclasses

    from cases.statistics import Figures, Statistics, weighings_kept_from
    from console.stats import table

    # the current year and the two before it (cases.statistics.WEIGHINGS_YEARS)
    kept = weighings_kept_from(dt.date(2026, 12, 7), 3)
    assert kept == dt.date(2024, 1, 1)
    road = Figures(weighed=4, overloaded=1, filed=2)
    s = Statistics(dt.date(2023, 12, 1), dt.date(2024, 1, 31), {"G312-K1035-E": road}, road, [],
                   False, kept)  # fmt: skip
    by = {r.key: r for r in table(s)[1]}
    for key in ("weighed", "overloaded", "overload_rate"):
        assert by[key].values == [None, None] and "2024-01-01 之前" in by[key].note
    assert by["filed"].values == [2, 2]  # the other figures are kept
    inside = {r.key: r for r in table(dataclasses.replace(s, first=kept))[1]}
    assert inside["weighed"].values == [4, 4]
