"""Review A6: 从旧兼从轻 (行政处罚法 Art. 37) at decision time."""

from __future__ import annotations

import datetime as dt

from cases.art37 import Outcome, compare

DAY = dt.date(2027, 7, 5)


def test_the_lighter_rule_in_force_at_decision_applies() -> None:
    # the review's repro: v1 (500 CNY per tonne, to 2027-06-30) fines a pass of 2027-06-20 with
    # 1,800 kg over 500 yuan; v2 (from 2027-07-01) gives a warning up to 2,000 kg. Decided on
    # 2027-07-05 the lighter v2 applies (Art. 37: 新的规定处罚较轻…适用新的规定).
    v1 = Outcome("fine", 500, "cn-national-overload v1")
    c = compare(v1, Outcome("warning", None, "cn-national-overload v2"), DAY)
    assert c.applies == "new" and "v1" in c.trace and "v2" in c.trace and "较轻" in c.trace
    assert compare(v1, Outcome("fine", 300, "x v2"), DAY).applies == "new"
    assert compare(v1, None, DAY).applies == "new"  # no longer a violation
    # heavier or the same: the rule at the time of the act
    assert compare(v1, Outcome("fine", 800, "x v2"), DAY).applies == "old"
    assert compare(v1, Outcome("fine", 500, "x v2"), DAY).applies == "old"
    assert compare(v1, v1, DAY).applies == "old"
    # the new rule finds the facts uncertain: a person looks, never the old fine silently
    assert compare(v1, Outcome("review", None, "x v2"), DAY).applies == "review"
