"""The working-day calendar (工作日) and the one function that computes every deadline.

《行政处罚法》(2021) Art. 85: "本法中“二日”“三日”“五日”“七日”的规定是指工作日，不含法定节假日。"
A longer period counts calendar days and, when its last day is a rest day, ends on the next
working day (民法典 Art. 203: "期间的最后一日是法定休假日的，以法定休假日结束的次日为期间的最后
一日"). A period starts the day after the event it runs from (民法典 Art. 201), and its last day
is included.

Which days are working days: the State Council's yearly notice (国务院办公厅关于部分节假日安排的
通知), from the ``chinese-calendar`` package for the years it ships and from the agency's file
``configs/holidays.yaml`` for the years it adds. A year neither knows is *provisional*: every
weekend is a rest day (no 调休 working Saturday) and each statutory holiday takes its longest
customary span, the lunar ones placed by the lunar calendar — so a provisional deadline can only
fall on or after the true one. When the year is published the deadline is computed again, but
never to a day earlier than the party was told (:func:`deadline`'s ``told``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import chinese_calendar
from lunardate import LunarDate
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Art. 85: these periods count working days; every other period counts calendar days
WORKING_DAY_PERIODS = frozenset({2, 3, 5, 7})

_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.\.(\d{4}-\d{2}-\d{2}))?$")


def _days(items: Iterable[str | dt.date]) -> frozenset[dt.date]:
    out: set[dt.date] = set()
    for item in items:
        if isinstance(item, dt.date):  # YAML reads a plain day as a date already
            out.add(item)
            continue
        m = _RANGE.match(item.strip())
        if m is None:
            raise ValueError(f"{item!r}: expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
        first = dt.date.fromisoformat(m.group(1))
        last = dt.date.fromisoformat(m.group(2) or m.group(1))
        if last < first:
            raise ValueError(f"{item!r}: the range ends before it starts")
        out.update(first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    return frozenset(out)


class PublishedYear(BaseModel):
    """One year of the State Council's notice, as the agency enters it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)  # the notice, e.g. 国办发明电〔2025〕7号
    holidays: frozenset[dt.date]  # 放假: every day off, weekend days of a holiday block included
    workdays: frozenset[dt.date] = frozenset()  # 调休上班: the weekend days that are worked

    @field_validator("holidays", "workdays", mode="before")
    @classmethod
    def _ranges(cls, v: object) -> object:
        if isinstance(v, list) and all(isinstance(x, str | dt.date) for x in v):
            return _days(v)
        return v


class HolidayFile(BaseModel):
    """``configs/holidays.yaml``: the years the agency adds (or corrects) after the package."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    years: dict[int, PublishedYear] = {}


def problems(f: HolidayFile) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot see: a day outside its year (a New Year block may begin in the
    last days of December), a day both off and worked, a worked day that is not a weekend."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for year, y in f.years.items():
        for name, days in (("holidays", y.holidays), ("workdays", y.workdays)):
            for d in sorted(days):
                if d.year != year and not (d.year == year - 1 and d.month == 12):
                    out.append((("years", year, name), f"{d} is not in {year}"))
        if both := sorted(y.holidays & y.workdays):
            out.append((("years", year, "workdays"), f"{both[0]} is also a holiday"))
        if weekday := sorted(d for d in y.workdays if d.weekday() < 5):
            out.append((("years", year, "workdays"), f"{weekday[0]} is not a weekend day"))
    return out


def _lunar(year: int, month: int, day: int) -> dt.date:
    return LunarDate(year, month, day).to_solar_date()


def _span(first: dt.date, last: dt.date) -> set[dt.date]:
    return {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}


@functools.lru_cache(maxsize=64)
def provisional_holidays(year: int) -> frozenset[dt.date]:
    """The days off of a year not yet published, each holiday at its longest customary span
    (2004–2026 notices): 元旦 Jan 1–3 and Dec 30–31 (a New Year block may start there);
    春节 lunar 12/28 to 1/8 (2026: 腊月二十八 to 正月初七, 国办发明电〔2025〕7号); 清明 Apr 2–7
    (the term falls on Apr 4 or 5, its 3-day block around it; 2016: Apr 2–4); 劳动节 Apr 29 to
    May 7 (2004–2007: May 1–7; 2013: Apr 29 – May 1); 端午 lunar 5/3–5/7 and 中秋 lunar
    8/13–8/17 (3-day blocks around the day); 国庆 Sep 29 to Oct 8 (2008: Sep 29 – Oct 5).
    A one-off day off (2015-09-03/04, the 70th anniversary) no rule can foresee."""
    d = dt.date
    days = _span(d(year, 1, 1), d(year, 1, 3)) | _span(d(year, 12, 30), d(year, 12, 31))
    days |= _span(_lunar(year - 1, 12, 28), _lunar(year, 1, 8))
    days |= _span(d(year, 4, 2), d(year, 4, 7)) | _span(d(year, 4, 29), d(year, 5, 7))
    days |= _span(_lunar(year, 5, 3), _lunar(year, 5, 7))
    days |= _span(_lunar(year, 8, 13), _lunar(year, 8, 17)) | _span(d(year, 9, 29), d(year, 10, 8))
    return frozenset(x for x in days if x.year == year)


@functools.lru_cache(maxsize=64)
def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


class WorkCalendar:
    """Which days are working days. ``published``: the agency's years (configs/holidays.yaml),
    which take precedence over the package's for the same year."""

    def __init__(self, published: Mapping[int, PublishedYear] | None = None) -> None:
        self.published = dict(published or {})

    def knows(self, year: int) -> bool:
        return year in self.published or _package_knows(year)

    def settled(self, day: dt.date) -> bool:
        """Whether ``day``'s status is final: its year is published, and for the last days of
        December so is the next year (its New Year block may take them)."""
        if day.month == 12 and day.day >= 30 and not self.knows(day.year + 1):
            return False
        return self.knows(day.year)

    def is_workday(self, day: dt.date) -> bool:
        nxt = self.published.get(day.year + 1)
        if nxt is not None and (day in nxt.holidays or day in nxt.workdays):
            return day in nxt.workdays
        if day.month == 12 and day.day >= 30 and not self.knows(day.year + 1):
            return False  # the next year's New Year block may begin here
        year = self.published.get(day.year)
        if year is not None:
            if day in year.holidays or day in year.workdays:
                return day in year.workdays
            return day.weekday() < 5
        if _package_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5 and day not in provisional_holidays(day.year)


def year_later(day: dt.date, years: int = 1) -> dt.date:
    """The day ``years`` years on: the same month and day, or the month's last day when it has
    none (29 February; 民法典 Art. 200: "没有对应日的，月末日为期间的最后一日")."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Deadline:
    """The last day of a period (included). ``start``: the day it runs from (not counted);
    ``working``: counted in working days (Art. 85); ``provisional``: a day it depends on is in a
    year not yet published — the day is then on or after the true one."""

    start: dt.date
    days: int
    working: bool
    due: dt.date
    provisional: bool

    def passed(self, today: dt.date) -> bool:
        return today > self.due


_DIGITS = "零一二三四五六七八九"


def period_zh(days: int) -> str:
    """A period as a document states it: 五个工作日 (Art. 85), 十五日, 九十日."""
    tens, ones = divmod(days, 10)
    number = (("" if tens == 1 else _DIGITS[tens]) + "十" if tens else "") + (
        _DIGITS[ones] if ones or not tens else ""
    )
    if days in WORKING_DAY_PERIODS:
        return f"{'两' if days == 2 else number}个工作日"
    return f"{number}日"


def deadline(
    calendar: WorkCalendar,
    start: dt.date,
    days: int,
    told: dt.date | None = None,
    working: bool | None = None,
) -> Deadline:
    """The one computation of every deadline that is printed, enforced and shown to the party.

    ``start``: the day of the event the period runs from (service of a document, the decision);
    ``days``: the period; 2, 3, 5 and 7 are working days (Art. 85), any other is calendar days
    moved off a rest day onto the next working day (民法典 Art. 203). ``told``: the day the party
    was told before (a provisional deadline): the result is never earlier. ``working``: a rule
    that counts another period in working days says so (the 严重失信 objection's 10 working
    days); None is Art. 85's choice."""
    if days < 1:
        raise ValueError(f"a period of {days} days")
    if working is None:
        working = days in WORKING_DAY_PERIODS
    day, counted, looked = start, 0, []
    if working:
        while counted < days:
            day += dt.timedelta(days=1)
            looked.append(day)
            counted += calendar.is_workday(day)
    else:
        day = start + dt.timedelta(days=days)
        looked.append(day)
        while not calendar.is_workday(day):
            day += dt.timedelta(days=1)
            looked.append(day)
    provisional = not all(calendar.settled(d) for d in looked)
    if told is not None and told > day:
        day = told
    return Deadline(start, days, working, day, provisional)
