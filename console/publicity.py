"""The public 通告 of the monitoring points (行政处罚法 Art. 41: 设置地点应当向社会公布), rendered
from the registries: every road site, waterway checkpoint and AIS receiver whose 通告 has a
date, with its place, stake, direction, lanes, devices (maker, model, 检定 body and
certificate), signs, its reviews, 公示 period and start of enforcement, where to come and where
the data goes. The fields are those of real 启用公告 (郏县 2021, 内乡县 2024; paperwork review
§1.1). Blocking (PDF layout): call it in a thread from async code."""

from __future__ import annotations

from typing import Any

from events.registry import Device, Publicity, Registry, Site
from events.water import WaterRegistry

from .notice import render_pdf
from .pages import _env

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
    cert = d.certificate
    return {
        "id": d.id, "kind": DEVICE_KINDS[d.type], "maker": d.maker or "—", "model": d.model or "—",
        "verified": f"{cert.issuer}检定合格，证书编号{cert.number}，有效期{cert.valid_from}至"
                    f"{cert.valid_until}" if cert else "",
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
