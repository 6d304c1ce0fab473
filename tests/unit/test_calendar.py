"""Issue #25 (must-have 4, review B2): deadlines in working days around the 2026 holidays, from
the day of service, and provisional deadlines for a year the calendar does not know.

The 2026 days are those of 《国务院办公厅关于2026年部分节假日安排的通知》(国办发明电〔2025〕7号):
春节 2月15日至23日放假调休，2月14日（周六）、2月28日（周六）上班; 中秋节 9月25日至27日放假;
国庆节 10月1日至7日放假调休，9月20日（周日）、10月10日（周六）上班.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import chinese_calendar
import pytest

from cases.calendar import (
    HolidayFile,
    PublishedYear,
    WorkCalendar,
    deadline,
    provisional_holidays,
)
from events import ConfigError
from offsite.config import load_calendar

D = dt.date
CAL = WorkCalendar()


def due(start: dt.date, days: int, cal: WorkCalendar = CAL) -> dt.date:
    return deadline(cal, start, days).due


def test_five_working_days_across_national_day_and_mid_autumn_2026() -> None:
    # served Thu 09-24: 09-25..27 中秋, 09-28/29/30 worked, 10-01..07 国庆, 10-08 and 10-09 worked
    d = deadline(CAL, D(2026, 9, 24), 5)
    assert (d.due, d.working, d.provisional) == (D(2026, 10, 9), True, False)
    # the code before counted calendar days: 09-29


def test_the_tiaoxiu_saturday_is_a_working_day_2026_10_10() -> None:
    # 7 working days from Thu 09-24: ..., 10-08 (4), 10-09 (5), Sat 10-10 调休 (6), Mon 10-12 (7)
    assert due(D(2026, 9, 24), 7) == D(2026, 10, 12)
    # 3 working days from Wed 02-11: 02-12, 02-13, and Saturday 02-14 (调休) is the last day
    assert due(D(2026, 2, 11), 3) == D(2026, 2, 14)


def test_five_working_days_across_spring_festival_2026() -> None:
    # served Wed 02-11: 02-12, 02-13, Sat 02-14 (调休), then 02-15..23 off, 02-24, 02-25
    assert due(D(2026, 2, 11), 5) == D(2026, 2, 25)
    # a 15-day period from Sat 02-07 ends on 02-22, inside the holiday: the next working day
    assert due(D(2026, 2, 7), 15) == D(2026, 2, 24)


def test_a_notice_served_on_a_friday() -> None:
    # Fri 2026-03-06: the period starts the next day (民法典 Art. 201); the weekend is not counted
    assert due(D(2026, 3, 6), 5) == D(2026, 3, 13)
    assert due(D(2026, 3, 6), 2) == D(2026, 3, 10)
    assert due(D(2026, 3, 6), 3) == D(2026, 3, 11)


def test_a_long_period_ending_on_national_day_moves_to_the_next_working_day() -> None:
    # review B2: served Wed 2026-09-16, 15 days → Thu 10-01 (国庆) → Thu 10-08
    d = deadline(CAL, D(2026, 9, 16), 15)
    assert (d.due, d.working) == (D(2026, 10, 8), False)
    # a long period ending on a plain weekday is not moved
    assert due(D(2026, 3, 2), 15) == D(2026, 3, 17)
    # ending on a Sunday → Monday
    assert due(D(2026, 3, 7), 15) == D(2026, 3, 23)


def test_the_provisional_rest_days_cover_every_real_one_2004_to_2026() -> None:
    # each year the package knows, as if it were not yet published: every real rest day is a
    # provisional rest day, so a provisional deadline is never earlier than the true one.
    # The one exception no rule foresees: 2015-09-03/04 (抗战胜利70周年纪念日, 国发明电〔2015〕3号)
    for year in range(2004, 2027):
        rest = provisional_holidays(year)
        day = D(year, 1, 1)
        while day.year == year:
            if day.weekday() < 5 and not chinese_calendar.is_workday(day):
                assert day in rest or day in (D(2015, 9, 3), D(2015, 9, 4)), day
            day += dt.timedelta(days=1)


def test_a_year_the_calendar_does_not_know_is_provisional_and_never_earlier() -> None:
    # 2027 is not in chinese-calendar 1.11 nor in configs/holidays.yaml: 春节 2027-02-06 (初一);
    # provisionally 腊月二十八 (02-04) to 正月初八 (02-13) off, and 02-14 is a Sunday
    told = deadline(CAL, D(2027, 2, 1), 5)
    assert told.provisional and told.due == D(2027, 2, 17)  # 02-02, 02-03, 02-15, 02-16, 02-17
    # the agency adds the year (an illustrative notice, not the real one: 02-05..02-11 off and a
    # 调休 Saturday 02-13 worked); the true deadline is earlier, the party keeps the day it was told
    added = WorkCalendar({2027: PublishedYear(source="示例", holidays=frozenset(
        D(2027, 2, 5) + dt.timedelta(days=i) for i in range(7)),
        workdays=frozenset({D(2027, 2, 13)}))})  # fmt: skip
    true = deadline(added, D(2027, 2, 1), 5)
    assert not true.provisional and true.due == D(2027, 2, 13) < told.due
    again = deadline(added, D(2027, 2, 1), 5, told=told.due)
    assert (again.due, again.provisional) == (told.due, False)
    # a recomputation that finds a later day takes it
    assert deadline(added, D(2027, 2, 1), 5, told=D(2027, 2, 10)).due == D(2027, 2, 13)


def test_nothing_stops_on_new_year_a_period_across_into_an_unknown_year() -> None:
    # served Mon 2026-12-28; 2027 is unknown: 12-29 worked, 12-30/31 (a New Year block may start
    # there) and 2027-01-01..03 off, then 01-04, 01-05 → provisional, computed
    d = deadline(CAL, D(2026, 12, 28), 3)
    assert (d.due, d.provisional) == (D(2027, 1, 5), True)
    # a period wholly inside 2026 is final
    assert not deadline(CAL, D(2026, 12, 1), 5).provisional


def test_the_agency_file_loads_and_a_bad_one_names_file_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "holidays.yaml"
    good.write_text(
        "years:\n  2027:\n    source: 示例\n    holidays: [2026-12-31..2027-01-01, 2027-10-01]\n"
        "    workdays: [2027-01-02]\n",
        encoding="utf-8",
    )
    cal = load_calendar(good)
    assert cal.knows(2027) and not cal.is_workday(D(2026, 12, 31))
    assert cal.is_workday(D(2027, 1, 2)) and not cal.is_workday(D(2027, 10, 1))
    assert load_calendar(Path("configs/holidays.yaml")).published == {}  # the shipped file loads
    bad = tmp_path / "bad.yaml"
    bad.write_text("years:\n  2027:\n    source: x\n    holidays: [2027-02-30..2027-03-01]\n",
                   encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError) as e:
        load_calendar(bad)
    assert (e.value.line, e.value.field) == (4, "years.2027.holidays")
    bad.write_text("years:\n  2027:\n    source: x\n    holidays: [2027-13-01]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_calendar(bad)
    bad.write_text(
        "years:\n  2027:\n    source: x\n    holidays: [2027-10-01]\n    workdays: [2027-10-04]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        load_calendar(bad)
    assert e.value.line == 5 and "weekend" in e.value.message
    assert HolidayFile().years == {}


def test_b2_the_reviews_repro_in_2027_friday_and_national_day() -> None:
    # review B2 (legal-2026-12-07), 行政处罚法 Art. 85: "五日" are working days. Notice served Fri
    # 2027-03-05: the code before printed hearing_due = today + 5 = Wed 03-10; five working days
    # are 03-08..03-12 (no holiday in March; 2027 is not published yet, so provisional)
    d = deadline(CAL, D(2027, 3, 5), 5)
    assert (d.due, d.working, d.provisional) == (D(2027, 3, 12), True, True)
    # served Thu 2027-09-16, 15 days end Fri 10-01 (国庆); 民法典 Art. 203: a period whose last
    # day is a statutory holiday ends on the day after the holiday. The code before: 10-01
    d = deadline(CAL, D(2027, 9, 16), 15)
    assert d.provisional and d.due > D(2027, 10, 7) and d.due.weekday() < 5
