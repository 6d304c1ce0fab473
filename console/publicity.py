"""The public 通告 of the monitoring points (行政处罚法 Art. 41: 设置地点应当向社会公布), rendered
from the registries: every road site, waterway checkpoint and AIS receiver whose 通告 has a
date, with its place, stake, direction, lanes, devices (maker, model, 检定 body and
certificate), signs, its reviews, 公示 period and start of enforcement, where to come and where
the data goes. The fields are those of real 启用公告 (郏县 2021, 内乡县 2024; paperwork review
§1.1). Blocking (PDF layout): call it in a thread from async code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cases.publication import COLUMNS, published, tracker, withdrawn_notes
from events.registry import Device, Publicity, Registry, Site
from events.water import WaterRegistry
from sinks.accounts import LEGAL_REVIEWER, Session

from .notice import Page, render_pdf
from .pages import Console, _env, render

DIRECTIONS = {"N": "北向", "S": "南向", "E": "东向", "W": "西向", "both": "双向"}
DEVICE_KINDS = {"wim": "动态公路车辆自动衡器（称重检测）", "anpr": "车辆号牌自动识别（抓拍）",
                "ais_receiver": "船舶自动识别系统（AIS）基站", "vessel_camera": "船舶图像抓拍"}  # fmt: skip


def stake(site: Site) -> str:
    """The site's place as a 公告 writes it: route and stake, e.g. G107线K1520+000."""
    if site.km is None:
        return site.road
    metres = round(site.km * 1000)
    return f"{site.road}线K{metres // 1000}+{metres % 1000:03d}"


def _device(d: Device) -> dict[str, Any]:
    cert, p = d.certificate, d.publicity
    return {
        "id": d.id, "kind": DEVICE_KINDS[d.type], "maker": d.maker or "—", "model": d.model or "—",
        "verified": f"{cert.issuer}检定合格，证书编号{cert.number}，有效期{cert.valid_from}至"
                    f"{cert.valid_until}" if cert else "",
        # a device with its own 公示 dates (events.registry.Device.publicity) says so
        "own": f"本设备单独公示，公示期{p.notice_on}至{p.publicity_until}，"
               f"自{p.enforced_from}0时起启用执法" if p and p.enforced_from else
               ("本设备尚未启用执法，启用日期另行通告" if p else ""),
    }  # fmt: skip


def _point(name: str, where: str, p: Publicity, **more: Any) -> dict[str, Any]:
    return {"name": name, "where": where, "p": p, **more}


def notice_view(registry: Registry, waterways: WaterRegistry | None, agency: str) -> dict[str, Any]:
    """What the 通告 says: the points published so far (a 通告 date), in registry order."""
    roads = [
        _point(s.name, stake(s), s.publicity, id=s.id,
               direction=DIRECTIONS.get(s.direction, s.direction), lanes=s.lanes,
               devices=[_device(registry.device_index[d]) for d in s.devices])
        for s in registry.sites if s.publicity.notice_on is not None
    ]  # fmt: skip
    water: list[dict[str, Any]] = []
    if waterways is not None:
        water += [_point(c.name, f"东经{c.lon:.4f}° 北纬{c.lat:.4f}°", c.publicity, id=c.id,
                         view=c.view, camera=c.camera_id)
                  for c in waterways.checkpoints if c.publicity.notice_on is not None]  # fmt: skip
        water += [_point(r.name, f"东经{r.lon:.4f}° 北纬{r.lat:.4f}°", r.publicity, id=r.id,
                         view=f"{DEVICE_KINDS['ais_receiver']}，覆盖半径约{r.range_km:g}公里", camera="")
                  for r in waterways.receivers if r.publicity.notice_on is not None]  # fmt: skip
    dates = [x["p"].notice_on for x in (*roads, *water)]
    return {"agency": agency, "roads": roads, "water": water, "notice": registry.notice,
            "dated": max(dates) if dates else None}  # fmt: skip


def notice_html(view: dict[str, Any], pdf: bool = False) -> str:
    return _env.get_template("devices_notice.html").render(v=view, pdf=pdf)


def notice_pdf(view: dict[str, Any]) -> bytes:
    return render_pdf(notice_html(view, pdf=True))


# the columns the public page shows (the empty registration numbers of a person are left out)
SHOWN = ("行政相对人名称", "行政相对人类别", "统一社会信用代码", "证件类型", "证件号码",
         "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚内容",
         "罚款金额（万元）", "处罚决定日期", "公示截止期", "处罚机关")  # fmt: skip
assert set(SHOWN) <= set(COLUMNS)
SEARCH_DAYS = 30  # the public page's default range: the last 30 days


def publication_routes(c: Console, page: Page) -> list[Route]:
    """双公示 (issue #26 must-have 4): ``/public/decisions`` (no login; searchable by the
    decision's date, ``?from=&to=``) lists the published decisions as published (personal data
    masked, cases.publication) and the withdrawals with their reason; ``/legal/publicity`` is
    the legal department's deadline tracker, overdue items highlighted."""
    tz = c.lifecycle.policy.tz

    def today() -> dt.date:
        return c.now().astimezone(tz).date()

    async def public(request: Request) -> Response:
        end, error = today(), ""
        start = end - dt.timedelta(days=SEARCH_DAYS)
        try:
            start = dt.date.fromisoformat(request.query_params.get("from") or start.isoformat())
            end = dt.date.fromisoformat(request.query_params.get("to") or end.isoformat())
        except ValueError:
            error = "日期格式有误，请按 年-月-日 填写。"
        if not error and start > end:
            error = "起始日期不能晚于截止日期。"
        rows = [] if error else await published(c.pool, start, end, today())
        withdrawn = [] if error else await withdrawn_notes(c.pool, start, end)
        return render("public_decisions.html", 400 if error else 200, session=None,
                      title="行政处罚决定公示", start=start, end=end,
                      rows=rows, withdrawn=withdrawn, shown=SHOWN, error=error)  # fmt: skip

    async def deadlines(request: Request, session: Session) -> Response:
        items = await tracker(c.pool, tz, lambda d, n: c.lifecycle.policy.due(d, n).due, today())
        return render("publication_tracker.html", session=session, title="双公示期限",
                      items=items, today=today(), overdue=sum(i["overdue"] for i in items))  # fmt: skip

    return [Route("/public/decisions", public),
            Route("/legal/publicity", page({LEGAL_REVIEWER}, deadlines))]  # fmt: skip
