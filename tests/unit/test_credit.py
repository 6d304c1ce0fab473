"""Credit counts (issue #26 must-have 6): the rolling year's edges, the 4th decided violation,
an operator's fleet share, the objection period across a holiday and the list period.

The lines: 《超限运输车辆行驶公路管理规定》(2016年第62号) Art. 46 and the 2017 notice on 严重违法失信
超限超载运输: "1年内违法超限运输超过3次", "超过本单位货运车辆总数10%"; 公示 10 working days;
public for 2 years (石台县交通运输局 2024). The year: 民法典 Art. 200-201."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cases.calendar import WorkCalendar
from cases.credit import (
    SUSPENSION,
    Decided,
    counts,
    findings,
    in_year,
    listed_until,
    objection_due,
)
from events import ConfigError
from offsite.config import OwnersSettings

D = dt.date
CAL = WorkCalendar()


def _vehicle(*days: D, plate: str = "苏A12345/黄") -> list[Decided]:
    return [Decided(f"C{i}", d, plate) for i, d in enumerate(days)]


def test_a_decision_counts_up_to_the_same_day_a_year_later() -> None:
    # 2025-03-10 → 2026-03-10: 365 days; 2023-03-10 → 2024-03-10: 366 days (29 Feb 2024 inside)
    assert counts(D(2025, 3, 10), D(2026, 3, 10)) and not counts(D(2025, 3, 10), D(2026, 3, 11))
    assert (D(2026, 3, 10) - D(2025, 3, 10)).days == 365
    assert counts(D(2023, 3, 10), D(2024, 3, 10)) and not counts(D(2023, 3, 10), D(2024, 3, 11))
    assert (D(2024, 3, 10) - D(2023, 3, 10)).days == 366
    # a decision on 29 February counts to 28 February (no corresponding day: the month's end)
    assert counts(D(2024, 2, 29), D(2025, 2, 28)) and not counts(D(2024, 2, 29), D(2025, 3, 1))
    # a decision after the day asked about does not count yet
    assert not counts(D(2026, 3, 11), D(2026, 3, 10))


def test_the_fourth_decided_violation_in_a_year_makes_a_draft_the_third_does_not() -> None:
    days = [D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1)]
    assert findings(_vehicle(*days), D(2026, 9, 1), {}) == []
    found = findings(_vehicle(*days, D(2026, 9, 1)), D(2026, 9, 1), {})
    assert [(f.kind, f.subject, len(f.cases)) for f in found] == [("vehicle", "苏A12345/黄", 4)]
    assert "4次" in found[0].reason and found[0].held is None


def test_a_decision_a_year_and_a_day_earlier_does_not_count() -> None:
    # the first decision a year and a day before the fourth: three in the year, no draft
    rows = _vehicle(D(2025, 8, 31), D(2026, 1, 5), D(2026, 4, 1), D(2026, 9, 1))
    assert findings(rows, D(2026, 9, 1), {}) == []
    # a year to the day before it: still in the year, a draft
    rows = _vehicle(D(2025, 9, 1), D(2026, 1, 5), D(2026, 4, 1), D(2026, 9, 1))
    assert len(findings(rows, D(2026, 9, 1), {})) == 1


def test_the_draft_id_is_the_subject_and_the_decision_that_put_it_over() -> None:
    rows = _vehicle(D(2026, 1, 5), D(2026, 4, 1), D(2026, 7, 1), D(2026, 9, 1))
    a, b = findings(rows, D(2026, 9, 1), {}), findings(list(reversed(rows)), D(2026, 9, 2), {})
    assert a[0].entry_id == b[0].entry_id


def test_drivers_and_operators_are_counted_apart_from_vehicles() -> None:
    rows = [Decided(f"C{i}", D(2026, 5, i + 1), f"苏A1000{i}/黄", driver="320102198001010011",
                    operator="91320100MA1XXXXX0X") for i in range(4)]  # fmt: skip
    by = in_year(rows, D(2026, 5, 10))
    assert len(by[("driver", "320102198001010011")]) == 4
    assert all(len(by[("vehicle", f"苏A1000{i}/黄")]) == 1 for i in range(4))
    kinds = {f.kind: f for f in findings(rows, D(2026, 5, 10), {"91320100MA1XXXXX0X": 40})}
    assert set(kinds) == {"driver"}  # 4 vehicles of 40 is 10 %, not over it
    kinds = {f.kind: f for f in findings(rows, D(2026, 5, 10), {"91320100MA1XXXXX0X": 39})}
    # over 10 %: held, because the 2017 notice (3) also needs a 停业整顿 order offsite does not know
    assert set(kinds) == {"driver", "operator"} and kinds["operator"].held == SUSPENSION


def test_an_operator_of_unknown_fleet_is_held_with_the_reason() -> None:
    rows = [Decided("C1", D(2026, 5, 1), "苏A10001/黄", operator="91320100MA1XXXXX0X")]
    (f,) = findings(rows, D(2026, 5, 10), {})
    assert f.kind == "operator" and f.held == "车辆总数不明"


def test_the_objection_period_is_ten_working_days_across_the_national_day() -> None:
    # 2026 国庆: 10-01..10-07 off, Saturday 10-10 worked (国办发明电〔2025〕7号, chinese-calendar):
    # 09-29, 09-30, 10-08, 10-09, 10-10, 10-12, 10-13, 10-14, 10-15, 10-16
    assert objection_due(CAL, D(2026, 9, 28)) == D(2026, 10, 16)


def test_the_list_period_is_two_years() -> None:
    assert listed_until(D(2027, 3, 15)) == D(2029, 3, 15)
    assert listed_until(D(2028, 2, 29)) == D(2030, 2, 28)


def test_a_fleet_size_that_is_not_a_positive_number_stops_start_up_naming_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "owners.yaml"
    path.write_text("owners: []\nfleets:\n  91320100MA1XXXXX0X: 40\n  91430100MA4L00000F: 0\n",
                    encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        OwnersSettings(file=path).fleets()
    assert f"{path}:4" in str(exc.value) and "fleets.91430100MA4L00000F" in str(exc.value)
    path.write_text("owners: []\nfleets:\n  91320100MA1XXXXX0X: 40\n", encoding="utf-8")
    assert OwnersSettings(file=path).fleets() == {"91320100MA1XXXXX0X": 40}
