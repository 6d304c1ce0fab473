"""The agency's statistics (统计报表, issue #26 must-have 7): the figures its monthly and annual
reports give (paperwork review §4), by period and by site or waterway place, from the case store.

The period is whole local days, ``first`` 00:00 to the day after ``last`` 00:00 in the agency's
time zone (Beijing): a pass at 00:10 on the first day is in it, one at 23:59 the day before is
not. What counts, and which time decides the period:

- **weighed** (检测车辆数): WIM weighings the detection stage judged (a known site and device; a
  dead letter is not a weighing), each record once (migration 086), by the pass's time.
- **overloaded** (超限车辆数): of those, the ones over their gross or an axle-group limit after the
  device's tolerance, under the reading most favourable to the party (as the rules decide),
  whether or not enforceable. **超限率** = overloaded / weighed.
- **cases** (案件): cases the pipeline generated for a violation whose time (``cases.ts``) is in
  the period, by violation and by the state they are in now; **from_leads**: those a lead
  became (``leads.case_id``).
- **filed** (立案): cases whose 立案 (``case_files.filed_at``, the officer's confirmation) is in
  the period; **concluded** (办结): of those, the ones now in a final state after 立案 (结案,
  不予行政处罚, 撤销立案, 移送). **结案率** = concluded / filed.
- **decided**, **fines_decided_cny** (决定罚款): penalty decisions (not 不予处罚) by their
  ``decided_at``, and the sum of their fines.
- **collected_fen** (实缴罚没款): what the bank reported paid, by its ``paid_on`` day, late fees
  (加处罚款) included, for the decisions of the place's cases.
- **chaogao** (抄告): 抄告 records by ``sent_at``.
- **leads** (线索), **leads_to_cases**: leads by their time, and those that became a case.
- **police_cases** (移送公安机关): cases transferred to the police (``transfer``, or
  ``transfer_agency`` to 公安机关) by the transition's time; **police_leads**: leads a squad
  transferred (a task's result ``transferred``), by the task's ``done_at``.
- **scores** (案卷评查): the self-check scores (cases.review) of the 电子案卷 of the cases closed
  (结案) in the period; a case closed without its file on disk has no score. Each file is
  checked when the figures are asked for (it hashes the file): a year of files takes a while.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from events import DatabaseError
from sinks.lifecycle import FINAL_STATES

from .review import casefiles, review_file

PASS_MARK = 60  # a 评查 score below this is a failed file: this project's default, no national
# scoring table was found (paperwork review §3.4); an agency sets its own
MONTHLY_AFTER = 62  # a longer period is charted by month, a shorter one by day
CONCLUDED = sorted(FINAL_STATES - {"rejected"})  # a rejected case was never 立案
# the calendar years of weighings kept (console.weighings_keep_years): the current one and the
# two before it. A year's annual report is made early in the next year and set against the year
# before (同比), so in January 2027 the weighings of 2025 are still asked for; older ones are
# deleted (one row per weighing grows without bound). A period before that shows no weighings.
WEIGHINGS_YEARS = 3


@dataclass
class Figures:
    """The figures of one place, or of all of them (see the module's docstring)."""

    weighed: int = 0
    overloaded: int = 0
    cases: Counter[str] = field(default_factory=Counter)  # by violation code
    states: Counter[str] = field(default_factory=Counter)  # by state now
    from_leads: int = 0
    filed: int = 0
    concluded: int = 0
    decided: int = 0
    fines_decided_cny: int = 0
    collected_fen: int = 0
    chaogao: int = 0
    leads: int = 0
    leads_to_cases: int = 0
    police_cases: int = 0
    police_leads: int = 0
    scores: list[int] = field(default_factory=list)

    def __add__(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                          for f in dataclasses.fields(self)})  # fmt: skip

    @property
    def overload_rate(self) -> float | None:
        return _share(self.overloaded, self.weighed)

    @property
    def closing_rate(self) -> float | None:
        return _share(self.concluded, self.filed)

    @property
    def lead_rate(self) -> float | None:
        return _share(self.leads_to_cases, self.leads)

    @property
    def lead_share(self) -> float | None:
        """Of the period's cases, the share that came from leads (the command center's figure)."""
        return _share(self.from_leads, sum(self.cases.values()))

    @property
    def mean_score(self) -> float | None:
        return round(sum(self.scores) / len(self.scores), 1) if self.scores else None

    @property
    def below_pass(self) -> int:
        return sum(s < PASS_MARK for s in self.scores)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Statistics:
    first: dt.date
    last: dt.date
    places: dict[str, Figures]  # by site or waterway place id
    total: Figures
    # (bucket's first day, weighed, overloaded, cases by violation): by day or by month
    series: list[tuple[dt.date, int, int, Counter[str]]]
    monthly: bool
    # the first day whose weighings are kept (prune_weighings): a period that starts before it
    # has lost some, its weighing figures are not given; None: all are kept
    weighings_from: dt.date | None = None


def period(first: dt.date, last: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[first 00:00, the day after last 00:00) in ``tz``."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    start = dt.datetime.combine(first, dt.time(), tz)
    return start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)


def weighings_kept_from(today: dt.date, years: int) -> dt.date:
    """The first day whose weighings are kept: 1 January of the oldest of the ``years``
    calendar years, ``today``'s the last of them."""
    return dt.date(today.year - years + 1, 1, 1)


async def prune_weighings(pool: Any, today: dt.date, years: int, tz: dt.tzinfo) -> int:
    """Deletes the weighings before 1 January (local time) of the oldest of the ``years``
    calendar years kept, ``today``'s the last of them; how many were deleted."""
    start = dt.datetime.combine(weighings_kept_from(today, years), dt.time(), tz)
    try:
        done = await pool.execute("DELETE FROM weighings WHERE ts < $1", start)
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"pruning the weighings before {start} failed: {exc}") from exc
    return int(done.split()[-1])


async def statistics(
    pool: Any,
    first: dt.date,
    last: dt.date,
    tz: dt.timezone,
    *,
    site: str | None = None,
    casefile_dir: Path | None = None,
    weighings_from: dt.date | None = None,
) -> Statistics:
    """The figures of the days ``first`` to ``last`` (both included) per place, of ``site``
    alone when given. ``casefile_dir``: the 电子案卷, for the 评查 scores; ``weighings_from``:
    the first day whose weighings are kept (``Statistics.weighings_from``)."""
    start, end = period(first, last, tz)
    offset = tz.utcoffset(None)
    places: dict[str, Figures] = {}

    def at(place: str) -> Figures:
        return places.setdefault(place, Figures())

    async def rows(sql: str, *args: Any) -> list[Any]:
        return [r for r in await pool.fetch(sql, start, end, *args)
                if site is None or r["site_id"] == site]  # fmt: skip

    # the period's days in the agency's time zone, for the charts
    by_day: dict[dt.date, list[Any]] = {}
    for r in await rows(
        "SELECT site_id, (ts AT TIME ZONE $3::interval)::date AS day, count(*) AS n,"
        " count(*) FILTER (WHERE overloaded) AS over FROM weighings WHERE ts >= $1 AND ts < $2"
        " GROUP BY 1, 2", offset,
    ):  # fmt: skip
        f = at(r["site_id"])
        f.weighed += r["n"]
        f.overloaded += r["over"]
        day = by_day.setdefault(r["day"], [0, 0, Counter()])
        day[0] += r["n"]
        day[1] += r["over"]
    for r in await rows(
        "SELECT site_id, (ts AT TIME ZONE $3::interval)::date AS day, violation_code, status,"
        " count(*) AS n, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM leads l"
        "  WHERE l.case_id = c.case_id)) AS from_leads"
        " FROM cases c WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2, 3, 4", offset,
    ):  # fmt: skip
        f = at(r["site_id"])
        f.cases[r["violation_code"]] += r["n"]
        f.states[r["status"]] += r["n"]
        f.from_leads += r["from_leads"]
        by_day.setdefault(r["day"], [0, 0, Counter()])[2][r["violation_code"]] += r["n"]

    async def add(sql: str, *args: Any) -> None:
        """Each row's columns (but the place) to the place's figures of the same name."""
        for r in await rows(sql, *args):
            f = at(r["site_id"])
            for name, value in r.items():
                if name != "site_id":
                    setattr(f, name, getattr(f, name) + value)

    await add(
        "SELECT c.site_id, count(*) AS filed, count(*) FILTER (WHERE c.status = ANY($3))"
        " AS concluded FROM case_files f JOIN cases c USING (case_id) WHERE f.filed_at >= $1"
        " AND f.filed_at < $2 GROUP BY 1", CONCLUDED,
    )  # fmt: skip
    await add(
        "SELECT c.site_id, count(*) AS decided, coalesce(sum(d.fine_cny), 0) AS fines_decided_cny"
        " FROM penalty_decisions d JOIN cases c USING (case_id) WHERE d.kind = 'penalty'"
        " AND d.decided_at >= $1 AND d.decided_at < $2 GROUP BY 1"
    )  # fmt: skip
    await add(
        "SELECT c.site_id, sum(p.amount_fen) AS collected_fen FROM payments p"
        " JOIN penalty_decisions d USING (decision_no) JOIN cases c USING (case_id)"
        " WHERE p.paid_on >= ($1 AT TIME ZONE $3::interval)::date"
        " AND p.paid_on < ($2 AT TIME ZONE $3::interval)::date GROUP BY 1", offset,
    )  # fmt: skip
    await add(
        "SELECT c.site_id, count(*) AS chaogao FROM chaogao g JOIN cases c USING (case_id)"
        " WHERE g.sent_at >= $1 AND g.sent_at < $2 GROUP BY 1"
    )
    await add(
        "SELECT site_id, count(*) AS leads, count(case_id) AS leads_to_cases FROM leads"
        " WHERE ts >= $1 AND ts < $2 GROUP BY 1"
    )
    await add(
        "SELECT c.site_id, count(DISTINCT t.case_id) AS police_cases FROM case_transitions t"
        " JOIN cases c USING (case_id) WHERE (t.action = 'transfer' OR (t.action ="
        " 'transfer_agency' AND t.reason_code = 'police')) AND t.at >= $1 AND t.at < $2"
        " GROUP BY 1"
    )  # fmt: skip
    await add(
        "SELECT coalesce(site_id, '—') AS site_id, count(*) AS police_leads FROM tasks"
        " WHERE source_kind = 'lead' AND result = 'transferred' AND done_at >= $1"
        " AND done_at < $2 GROUP BY 1"
    )  # fmt: skip
    closed = await rows(
        "SELECT DISTINCT t.case_id, c.site_id FROM case_transitions t JOIN cases c"
        " USING (case_id) WHERE t.action = 'close' AND t.at >= $1 AND t.at < $2"
    )  # fmt: skip
    if closed and casefile_dir is not None:
        for place, score in await asyncio.to_thread(_scores, casefile_dir, closed):
            at(place).scores.append(score)
    monthly = (last - first).days + 1 > MONTHLY_AFTER
    series = _series(by_day, first, last, monthly)
    total = sum(places.values(), Figures())
    return Statistics(first, last, dict(sorted(places.items())), total, series, monthly,
                      weighings_from)  # fmt: skip


def _scores(out: Path, closed: list[Any]) -> list[tuple[str, int]]:
    """(place, 评查 score) of the closed cases whose file is under ``out``. Blocking."""
    folders = {p.name.split("-", 1)[1]: p for p in casefiles(out)}  # <archive_no>-<case_id>
    return [(r["site_id"], review_file(folders[r["case_id"]]).score)
            for r in closed if r["case_id"] in folders]  # fmt: skip


def _series(
    by_day: Mapping[dt.date, list[Any]], first: dt.date, last: dt.date, monthly: bool
) -> list[tuple[dt.date, int, int, Counter[str]]]:
    """Every day (or month) of the period, with what it has."""
    buckets: dict[dt.date, list[Any]] = {}
    for n in range((last - first).days + 1):
        day = first + dt.timedelta(days=n)
        b = buckets.setdefault(day.replace(day=1) if monthly else day, [0, 0, Counter()])
        weighed, over, cases = by_day.get(day, (0, 0, Counter()))
        b[0] += weighed
        b[1] += over
        b[2] += cases
    return [(d, w, o, c) for d, (w, o, c) in buckets.items()]
