"""The command center's geometry and rates (console/command.py): the map projection, the stacked
bars, the Wilson bound and the flag on a site that confirms too few of its cases."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from console.command import (
    Projection,
    Rate,
    axis_step,
    certificate_state,
    low_sites,
    markers,
    rate_bars,
    stacked_bars,
    wilson_upper,
)
from events import CalibrationCertificate


def test_the_projection_fits_the_box_keeps_shapes_and_puts_north_up() -> None:
    points = [(28.0, 113.0), (29.0, 113.0), (28.0, 114.0)]  # (lat, lon)
    p = Projection.fit(points, 600, 400, 50)
    xs, ys = zip(*(p(lat, lon) for lat, lon in points), strict=True)
    # the taller side fills the height less the padding; the box is centred
    assert min(ys) == 50 and max(ys) == 350
    assert math.isclose(max(xs) - min(xs), 300 * math.cos(math.radians(28.5)), abs_tol=0.2)
    assert math.isclose((min(xs) + max(xs)) / 2, 300, abs_tol=0.1)
    assert p(29.0, 113.0)[1] < p(28.0, 113.0)[1]  # north is up
    assert p(28.0, 114.0)[0] > p(28.0, 113.0)[0]  # east is right
    # a wide box fills the width instead
    wide = Projection.fit([(0.0, 0.0), (1.0, 10.0)], 600, 400, 50)
    assert wide(0.0, 0.0)[0] == 50 and wide(0.0, 10.0)[0] == 550


def test_one_place_or_none_lands_in_the_centre() -> None:
    assert Projection.fit([(28.1, 112.9)], 640, 420, 48)(28.1, 112.9) == (320, 210)
    assert Projection.fit([], 640, 420, 48)(0.0, 0.0) == (320, 210)


def test_markers_grow_with_todays_cases() -> None:
    places = [("A", "甲", "site", 28.0, 113.0), ("B", "乙", "site", 28.5, 113.5)]
    out, _ = markers(places, {"B": 16}, {"A"})
    a, b = out
    assert (a.level, a.trouble, a.r) == ("none", True, 7)
    assert (b.level, b.trouble, b.r, b.cases_today) == ("many", False, 15, 16)


@pytest.mark.parametrize(
    ("top", "step"), [(0, 1), (1, 1), (3, 1), (4, 1), (5, 2), (9, 5), (17, 5), (40, 10), (41, 20)]
)
def test_axis_steps_are_round(top: int, step: int) -> None:
    assert axis_step(top) == step


def test_stacked_bars_stack_each_days_codes_to_its_total() -> None:
    d1, d2 = dt.date(2027, 3, 9), dt.date(2027, 3, 10)
    counts = {(d1, "a"): 2, (d1, "b"): 1, (d2, "b"): 4}
    chart = stacked_bars([d1, d2], counts, ["a", "b"], width=436, height=240)
    per = (chart.base - chart.ticks[-1][1]) / chart.ticks[-1][0]
    assert [t[0] for t in chart.ticks] == [0, 1, 2, 3, 4]
    one, two = chart.bars
    assert (one.total, two.total) == (3, 4)
    assert [(s.code, s.n) for s in one.segments] == [("a", 2), ("b", 1)]
    # bottom up, each segment as tall as its count, touching the next
    assert math.isclose(one.segments[0].y + one.segments[0].h, chart.base, abs_tol=0.1)
    assert math.isclose(one.segments[1].y + one.segments[1].h, one.segments[0].y, abs_tol=0.1)
    assert math.isclose(two.segments[0].h, 4 * per, abs_tol=0.1)
    assert two.segments[0].y == chart.ticks[-1][1]  # the tallest bar reaches the top tick
    assert one.x < two.x and one.x + one.w < two.x
    assert [c for c, _, _ in chart.legend] == ["a", "b"]
    assert stacked_bars([d1], {}, []).bars[0].segments == []


def test_the_wilson_bound() -> None:
    assert math.isclose(wilson_upper(3, 4), 0.954, abs_tol=0.001)
    assert math.isclose(wilson_upper(0, 10), 0.278, abs_tol=0.001)
    assert wilson_upper(10, 10) == 1.0 and wilson_upper(0, 0) == 1.0
    assert wilson_upper(50, 100) < wilson_upper(5, 10)  # more cases, narrower


def test_a_site_is_flagged_only_when_clearly_below_the_others() -> None:
    rates = {"A": Rate(2, 12), "B": Rate(45, 50), "C": Rate(3, 4), "D": Rate(40, 50)}
    assert low_sites(rates) == {"A"}  # C is as low but has 4 reviews: too few to tell
    assert low_sites({"A": Rate(2, 12)}) == set()  # nobody to compare with
    assert low_sites({"A": Rate(9, 12), "B": Rate(45, 50)}) == set()  # 75 % of 12: could be 90 %
    assert low_sites({"A": Rate(8, 12), "B": Rate(45, 50)}) == {"A"}  # 67 %: not 90 %
    assert Rate(3, 4).value == 0.75 and Rate().value is None
    assert Rate(1, 2) + Rate(3, 4) == Rate(4, 6)


def test_rate_bars_are_as_tall_as_the_rate() -> None:
    w1, w2 = dt.date(2027, 3, 1), dt.date(2027, 3, 8)
    empty, full = rate_bars([w1, w2], {w2: Rate(4, 4)})
    assert empty.h == 0 and empty.rate == Rate()
    assert full.y == 8.0 and full.h == 64.0
    (half,) = rate_bars([w1], {w1: Rate(1, 2)})
    assert half.h == 32.0


def test_certificate_states() -> None:
    today = dt.date(2027, 3, 10)

    def cert(start: int, end: int) -> CalibrationCertificate:
        return CalibrationCertificate(number="x", issuer="y",
                                      valid_from=today + dt.timedelta(days=start),
                                      valid_until=today + dt.timedelta(days=end))  # fmt: skip

    assert certificate_state(None, today) == ("none", None)
    assert certificate_state(cert(-300, -1), today) == ("expired", -1)
    assert certificate_state(cert(-300, 0), today) == ("expiring", 0)
    assert certificate_state(cert(-300, 30), today) == ("expiring", 30)
    assert certificate_state(cert(-300, 31), today) == ("valid", 31)
    assert certificate_state(cert(2, 300), today) == ("not_yet", 300)
