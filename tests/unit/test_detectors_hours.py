"""Restricted hours: the 02:00–05:00 coach ban and dangerous-goods windows, and the twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import hours
from detectors.hours import COACH, COACH_NIGHT, DANGEROUS_GOODS, DANGEROUS_GOODS_HOURS, NONE, OTHER


def hm(h: int, m: int) -> int:
    return 60 * h + m


def reasons(minutes: list[int], cls: int, rules: hours.HoursRules) -> list[int]:
    res = hours.detect(np.array(minutes), np.full(len(minutes), cls), rules)
    assert res.restricted.tolist() == [r != NONE for r in res.reason.tolist()]
    assert res.reason.tolist() == [hours.detect_one(m, cls, rules) for m in minutes]
    return res.reason.tolist()


def test_coach_ban_boundaries() -> None:
    got = reasons([hm(1, 59), hm(2, 0), hm(4, 59), hm(5, 0)], COACH, hours.HoursRules())
    assert got == [NONE, COACH_NIGHT, COACH_NIGHT, NONE]


def test_the_ban_is_for_coaches_only() -> None:
    night = [hm(2, 0), hm(4, 59)]
    assert reasons(night, OTHER, hours.HoursRules()) == [NONE, NONE]
    assert reasons(night, DANGEROUS_GOODS, hours.HoursRules()) == [NONE, NONE]


def test_no_dangerous_goods_windows_means_no_restriction() -> None:
    assert reasons([0, hm(3, 0), hm(23, 59)], DANGEROUS_GOODS, hours.HoursRules()) == [NONE] * 3


def test_dangerous_goods_window_wrapping_midnight() -> None:
    rules = hours.HoursRules(dangerous_goods_permitted=[(hm(22, 0), hm(6, 0))])  # a list is fine
    got = reasons(
        [hm(21, 59), hm(22, 0), hm(23, 59), 0, hm(5, 59), hm(6, 0), hm(12, 0)],
        DANGEROUS_GOODS,
        rules,
    )
    bad = DANGEROUS_GOODS_HOURS
    assert got == [bad, NONE, NONE, NONE, NONE, bad, bad]


def test_dangerous_goods_several_windows_and_one_ending_at_midnight() -> None:
    rules = hours.HoursRules(dangerous_goods_permitted=((hm(9, 0), hm(11, 0)), (hm(20, 0), 1_440)))
    got = reasons(
        [hm(8, 59), hm(9, 0), hm(11, 0), hm(19, 59), hm(23, 59), 0], DANGEROUS_GOODS, rules
    )
    bad = DANGEROUS_GOODS_HOURS
    assert got == [bad, NONE, bad, bad, NONE, bad]


def test_unknown_minute_is_never_flagged() -> None:
    assert reasons([-1, 1_440], COACH, hours.HoursRules(coach_banned=(0, 1_440))) == [NONE, NONE]


@pytest.mark.parametrize("window", [(100, 100), (-1, 10), (0, 1_441), (1_440, 10)])
def test_bad_windows_are_refused(window: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        hours.HoursRules(coach_banned=window)
    with pytest.raises(ValueError):
        hours.HoursRules(dangerous_goods_permitted=[window])


def test_minute_of_day_in_china() -> None:
    # 1970-01-01T00:00Z is 08:00 in Beijing; 16:30Z is 00:30 the next day
    ts = np.array([0, (16 * 60 + 30) * 60_000 + 59_999])
    assert hours.minute_of_day(ts).tolist() == [480, 30]


def test_empty_batch() -> None:
    res = hours.detect(np.array([], np.int64), np.array([], np.int64), hours.HoursRules())
    assert len(res.restricted) == 0 and len(res.reason) == 0


window = st.tuples(st.integers(0, 1_439), st.integers(0, 1_440)).filter(lambda w: w[0] != w[1])


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.integers(-1, 1_440), st.integers(0, 3)), max_size=60),
    window,
    st.lists(window, max_size=3),
)
def test_vectorized_equals_reference(
    rows: list[tuple[int, int]], coach: tuple[int, int], dangerous: list[tuple[int, int]]
) -> None:
    rules = hours.HoursRules(coach_banned=coach, dangerous_goods_permitted=dangerous)
    res = hours.detect(
        np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), rules
    )
    want = [hours.detect_one(m, c, rules) for m, c in rows]
    assert res.reason.tolist() == want
    assert res.restricted.tolist() == [w != NONE for w in want]
