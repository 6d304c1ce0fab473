"""Issue #25 must-have 8: 延期 / 分期缴纳 (行政处罚法 Art. 66 (2)). The late fee of Art. 72 (1)
(每日按罚款数额的百分之三加处罚款，加处罚款的数额不得超出罚款的数额) runs from each missed due day
of an approved plan instead of the 15th day after service; an application is checked before the
head sees it. Fixed dates throughout."""

from __future__ import annotations

import datetime as dt

from cases.payments import instalments, owed_fen
from cases.plans import parse_instalments, plan_problem

D = dt.date
DUE = D(2027, 1, 15)  # the decision's own 15th day
PLAN = [(D(2027, 3, 1), 1_000_00), (D(2027, 4, 1), 1_000_00), (D(2027, 5, 6), 1_000_00)]


def test_the_late_fee_runs_from_each_missed_instalment_not_from_the_15th_day() -> None:
    on_time, four_late = (D(2027, 3, 1), 1_000_00), (D(2027, 4, 5), 1_000_00)
    day = D(2027, 5, 8)  # the third instalment 2 days late, unpaid
    parts = instalments(PLAN, [on_time, four_late], day)
    assert [(i.settled_on, i.fee_fen) for i in parts] == [
        (D(2027, 3, 1), 0),  # paid on its day
        (D(2027, 4, 5), 120_00),  # 1,000 × 3 % × 4 days
        (None, 60_00),  # 1,000 × 3 % × 2 days so far
    ]
    # what is owed: the unpaid instalment and the fees
    assert owed_fen(3_000, DUE, [on_time, four_late], day, PLAN) == 1_000_00 + 180_00
    # without the plan the same payments would be late from 15 January (capped at the fine)
    assert owed_fen(3_000, DUE, [on_time, four_late], day) == 1_000_00 + 3_000_00
    # every instalment paid on its day: nothing more is owed, whatever the day
    paid = [(d, a) for d, a in PLAN]
    assert owed_fen(3_000, DUE, paid, D(2027, 12, 31), PLAN) == 0


def test_a_deferral_moves_the_one_due_day_and_the_fee_stays_capped_at_the_fine() -> None:
    plan = [(D(2027, 6, 30), 2_500_00)]
    assert owed_fen(2_500, DUE, [], D(2027, 6, 30), plan) == 2_500_00  # not late yet
    assert owed_fen(2_500, DUE, [], D(2027, 7, 2), plan) == 2_500_00 + 150_00  # 2 days
    # day 34 after the deferred day would be 102 %: the fee is never more than the fine
    assert owed_fen(2_500, DUE, [], D(2027, 8, 3), plan) == 2 * 2_500_00


def test_an_application_is_checked_before_the_head_sees_it() -> None:
    today = D(2027, 2, 1)
    parts = parse_instalments("2027-03-01 1000\n2027-04-01，1000\n\n2027-05-06 1000.00\n")
    assert parts == PLAN
    assert plan_problem("instalments", PLAN, 3_000_00, today) is None
    assert plan_problem("defer", [(D(2027, 6, 30), 3_000_00)], 3_000_00, today) is None
    assert "合计" in str(plan_problem("instalments", PLAN, 2_500_00, today))
    assert "逐期推后" in str(plan_problem("instalments", PLAN[::-1], 3_000_00, today))
    assert "今日之后" in str(plan_problem("instalments", PLAN, 3_000_00, D(2027, 3, 1)))
    assert "一个" in str(plan_problem("defer", PLAN, 3_000_00, today))
    assert "2 至" in str(plan_problem("instalments", PLAN[:1], 1_000_00, today))
    assert "第2行" in str(parse_instalments("2027-03-01 1000\n2027-04-31 1000"))
    assert "第1行" in str(parse_instalments("2027-03-01 -5"))
