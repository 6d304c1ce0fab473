"""The statistics page (统计报表, issue #26 must-have 7): the figures of cases/statistics.py by
period and by site or waterway place as one table, charts of them as inline SVG (nothing loaded
from elsewhere), and the same table as an XLSX workbook. The page, the workbook and `offsite
stats` all show :func:`table`, so they cannot disagree."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cases.statistics import (
    PASS_MARK,
    Statistics,
    prune_weighings,
    statistics,
    weighings_kept_from,
)
from sinks.accounts import ADMIN, COMMAND_CENTER, HEAD, LEGAL_REVIEWER, Session

from .command import PALETTE, Page, _order, _place_names, stacked_bars
from .names import STATES, VIOLATIONS
from .pages import Console, render, repeating

ROLES = frozenset({COMMAND_CENTER, ADMIN, HEAD, LEGAL_REVIEWER})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ALL = "合计"


@dataclass(frozen=True)
class Row:
    key: str  # stable, for the page's and the tests' eyes
    label: str  # Chinese
    kind: str  # count | rate | money | score
    values: list[float | None]  # the total, then each place; None: not applicable ("—")
    note: str = ""  # what counts (Chinese)


def table(s: Statistics, road: Collection[str] | None = None) -> tuple[list[str], list[Row]]:
    """(the columns' place ids, "" for the total first; the rows). ``road``: the sites that
    weigh: another place (a camera-only site, a waterway's) weighs nothing, its weighings are
    "—"."""
    ids = ["", *s.places]
    cols = [s.total, *s.places.values()]
    # a period from before the first day whose weighings are kept: they are not given
    lost = s.weighings_from is not None and s.first < s.weighings_from

    def row(
        key: str, label: str, kind: str, value: Any, note: str = "", weighs: bool = False
    ) -> Row:
        if weighs and lost:
            return Row(key, label, kind, [None] * len(ids),
                       f"{s.weighings_from} 之前的称重记录已按保存期限删除，不予统计")  # fmt: skip
        values = [None if weighs and road is not None and p and p not in road else value(f)
                  for p, f in zip(ids, cols, strict=True)]  # fmt: skip
        return Row(key, label, kind, values, note)

    codes = _order(c for f in cols for c in f.cases)
    known = list(STATES)
    states = sorted({st for f in cols for st in f.states},
                    key=lambda st: (known.index(st) if st in known else len(known), st))  # fmt: skip
    return ids, [
        row("weighed", "检测车辆数（辆次）", "count", lambda f: f.weighed,
            "检测站称重并经检测环节判定的车辆，每条称重记录计一次，按通行时间", True),
        row("overloaded", "超限车辆数", "count", lambda f: f.overloaded,
            "扣除设备允许误差后总重或轴组超过限值（按对当事人最有利的认定）", True),
        row("overload_rate", "超限率", "rate", lambda f: f.overload_rate, "超限车辆数 ÷ 检测车辆数",
            True),
        row("cases", "案件数", "count", lambda f: sum(f.cases.values()), "违法时间在统计期内的案件"),
        *[row(f"cases.{c}", f"案件数：{VIOLATIONS[c]}", "count", lambda f, c=c: f.cases[c])
          for c in codes],
        *[row(f"state.{st}", f"案件状态：{STATES[st]}", "count", lambda f, st=st: f.states[st],
              "上述案件当前所处状态") for st in states],
        row("filed", "立案数", "count", lambda f: f.filed, "立案时间在统计期内"),
        row("concluded", "办结数", "count", lambda f: f.concluded,
            "上述立案案件中已结案、不予处罚、撤销立案或移送的"),
        row("closing_rate", "结案率", "rate", lambda f: f.closing_rate, "办结数 ÷ 立案数"),
        row("decided", "处罚决定数", "count", lambda f: f.decided, "决定时间在统计期内"),
        row("fines_decided", "决定罚款金额（元）", "money", lambda f: f.fines_decided_cny),
        row("collected", "实缴罚没款（元）", "money", lambda f: f.collected_fen / 100,
            "银行报告的缴款日在统计期内，含加处罚款"),
        row("chaogao", "抄告数", "count", lambda f: f.chaogao,
            "发送时间在统计期内"),
        row("leads", "线索数", "count", lambda f: f.leads, "线索时间在统计期内"),
        row("leads_to_cases", "线索转为案件数", "count", lambda f: f.leads_to_cases),
        row("lead_rate", "线索成案率", "rate", lambda f: f.lead_rate, "线索转为案件数 ÷ 线索数"),
        row("lead_share", "来源于线索的案件占比", "rate", lambda f: f.lead_share,
            "案件中由线索转化的比例"),
        row("police_cases", "移送公安机关案件数", "count", lambda f: f.police_cases,
            "移送时间在统计期内"),
        row("police_leads", "移送的线索数", "count", lambda f: f.police_leads,
            "中队处置结果为“已移送”的线索，按处置时间"),
        row("files", "评查案卷数", "count", lambda f: len(f.scores),
            "统计期内结案且已归档的电子案卷"),
        row("mean_score", "案卷评查平均分", "score", lambda f: f.mean_score, "满分100分"),
        row("below_pass", f"评查低于{PASS_MARK}分的案卷数", "count", lambda f: f.below_pass),
    ]  # fmt: skip


def text(value: float | None, kind: str) -> str:
    """A figure as the page and `offsite stats` print it."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{100 * value:.2f} %"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "score":
        return f"{value:.1f}"
    return f"{int(value):,}"


FORMATS = {"rate": "0.00%", "money": "#,##0.00", "score": "0.0", "count": "#,##0"}


def workbook(s: Statistics, names: Mapping[str, str], road: Collection[str] | None = None) -> bytes:
    """The figures as an XLSX workbook: 统计 (the table), 按日 or 按月 (the chart's series)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    ids, rows = table(s, road)
    wb = Workbook()
    ws = wb.active
    ws.title = "统计"
    ws.append([f"统计报表 {s.first.isoformat()} 至 {s.last.isoformat()}（北京时间）"])
    ws.append(["指标", *[names.get(p, p) if p else ALL for p in ids], "说明"])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([r.label, *["—" if v is None else v for v in r.values], r.note])
        for cell, v in zip(ws[ws.max_row][1:-1], r.values, strict=True):
            if v is not None:
                cell.number_format = FORMATS[r.kind]
    ws.column_dimensions["A"].width = 28
    series = wb.create_sheet("按月" if s.monthly else "按日")
    codes = _order(c for *_, cases in s.series for c in cases)
    series.append(["月份" if s.monthly else "日期", "检测车辆数", "超限车辆数", "超限率",
                   *[f"案件数：{VIOLATIONS[c]}" for c in codes]])  # fmt: skip
    for day, weighed, over, cases in s.series:
        series.append([_bucket(day, s.monthly), weighed, over,
                       over / weighed if weighed else "—", *[cases[c] for c in codes]])  # fmt: skip
        if weighed:
            series.cell(series.max_row, 4).number_format = FORMATS["rate"]
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _bucket(day: dt.date, monthly: bool) -> str:
    return day.strftime("%Y-%m") if monthly else day.isoformat()


@dataclass(frozen=True)
class HBar:
    label: str
    value: float
    text: str
    y: float
    w: float  # the bar's length
    color: str


def hbars(
    items: Sequence[tuple[str, float, str]], colors: int = 1, width: float = 360, row: float = 22
) -> list[HBar]:
    """One horizontal bar per (label, value, text), as long as its share of the largest; the
    colours repeat every ``colors`` bars (2: pairs of bars)."""
    top = max((v for _, v, _ in items), default=0) or 1
    return [HBar(label, v, t, round(i * row, 1), round(width * v / top, 1), PALETTE[i % colors])
            for i, (label, v, t) in enumerate(items)]  # fmt: skip


def _dates(c: Console, q: Mapping[str, str]) -> tuple[dt.date, dt.date]:
    """The period asked for; by default this month to today (local)."""
    today = c.now().astimezone(c.lifecycle.policy.tz).date()
    first = dt.date.fromisoformat(q["from"]) if q.get("from") else today.replace(day=1)
    last = dt.date.fromisoformat(q["to"]) if q.get("to") else today
    if last < first:
        raise ValueError(last)
    return first, last


async def _figures(c: Console, request: Request) -> Statistics:
    first, last = _dates(c, request.query_params)
    return await statistics(c.pool, first, last, c.lifecycle.policy.tz,
                            site=request.query_params.get("site") or None,
                            casefile_dir=c.casefile_dir, weighings_from=kept_from(c))  # fmt: skip


def kept_from(c: Console) -> dt.date | None:
    """The first day whose weighings the console keeps (None: all are kept)."""
    today = c.now().astimezone(c.lifecycle.policy.tz).date()
    return weighings_kept_from(today, c.weighings_years) if c.weighings_years else None


def places(c: Console) -> tuple[dict[str, str], frozenset[str] | None]:
    """Every place's Chinese name, and the sites that weigh (None: no registry)."""
    reg = c.registry
    weigh = None if reg is None else frozenset(
        s.id for s in reg.sites if any((d := reg.device(i)) and d.type == "wim" for i in s.devices)
    )  # fmt: skip
    return _place_names(c), weigh


def pruning(c: Console) -> contextlib.AbstractAsyncContextManager[None]:
    """While the console serves: every ``c.sweep_s`` seconds, the weighings older than the
    ``c.weighings_years`` calendar years kept are deleted (None: none are)."""
    years, tz = c.weighings_years, c.lifecycle.policy.tz

    async def prune() -> str | None:
        assert years is not None
        n = await prune_weighings(c.pool, c.now().astimezone(tz).date(), years, tz)
        return f"{n} weighings older than {years} years deleted" if n else None

    return repeating("weighings", c.sweep_s if years else None, prune)


def stats_routes(c: Console, page: Page) -> list[Route]:
    """``/stats?from=&to=&site=``: the page; ``/stats.xlsx`` with the same query: the workbook."""

    def refused(session: Session) -> Response:
        return render("error.html", 400, session=session, title="统计期间有误",
                      message="起止日期须为 YYYY-MM-DD，且截止日期不早于起始日期。")  # fmt: skip

    async def stats_page(request: Request, session: Session) -> Response:
        try:
            s = await _figures(c, request)
        except ValueError:
            return refused(session)
        names, road = places(c)
        ids, rows = table(s, road)
        by = {r.key: r for r in rows}
        shown = [names.get(p, p) for p in ids[1:]]
        rates = hbars([(n, v, text(v, "rate")) for n, v in
                       zip(shown, by["overload_rate"].values[1:], strict=True) if v is not None])  # fmt: skip
        fines = hbars([(f"{n} {what}", v or 0.0, text(v, "money")) for n, d, p in
                       zip(shown, by["fines_decided"].values[1:], by["collected"].values[1:],
                           strict=True) for what, v in (("决定", d), ("实缴", p))], 2)  # fmt: skip
        counts: dict[tuple[dt.date, str], int] = {}
        for day, _, _, cases in s.series:
            counts.update({(day, code): n for code, n in cases.items()})
        chart = stacked_bars([d for d, *_ in s.series], counts,
                             _order(code for _, code in counts))  # fmt: skip
        query = str(request.query_params)
        return render("stats.html", session=session, title="统计报表", s=s, ids=ids, rows=rows,
                      names=names, text=text, chart=chart, rates=rates, fines=fines,
                      bucket=_bucket, query=query, site=request.query_params.get("site") or "",
                      all_places=sorted(names.items()), ALL=ALL)  # fmt: skip

    async def stats_xlsx(request: Request, session: Session) -> Response:
        try:
            s = await _figures(c, request)
        except ValueError:
            return refused(session)
        name = f"stats-{s.first.isoformat()}-{s.last.isoformat()}.xlsx"
        return Response(workbook(s, *places(c)), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip

    return [Route("/stats", page(ROLES, stats_page)), Route("/stats.xlsx", page(ROLES, stats_xlsx))]


def lines(
    s: Statistics, names: Mapping[str, str], road: Collection[str] | None = None
) -> list[str]:
    """`offsite stats`: one line per figure, the total then each place."""
    ids, rows = table(s, road)
    out = [f"统计报表 {s.first.isoformat()} 至 {s.last.isoformat()}（北京时间）"]
    for r in rows:
        parts = [f"{names.get(p, p) if p else ALL} {text(v, r.kind)}"
                 for p, v in zip(ids, r.values, strict=True)]  # fmt: skip
        out.append(f"{r.label}: " + " | ".join(parts))
    return out
