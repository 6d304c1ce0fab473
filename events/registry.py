"""The registry of enforcement sites and devices (configs/sites.yaml)."""

from __future__ import annotations

import datetime as dt
from functools import cache, cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PlateColor = Literal["blue", "yellow", "green", "yellow_green", "white", "black"]
# GA 36 号牌 colours as officers and notices name them; one for every PlateColor
PLATE_COLOR_ZH: dict[str, str] = {
    "blue": "蓝", "yellow": "黄", "green": "绿", "yellow_green": "黄绿", "white": "白",
    "black": "黑",
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Publicity(_Strict):
    """The dates that make a monitoring point's records evidence (行政处罚法 Art. 41: 法制审核 and
    技术审核 passed, the place published (向社会公布), the signs up), and the day enforcement
    starts (启用) after the 公示 period. Practice: the 启用公告 of 郏县 (jiaxian.gov.cn
    /contents/49447/394642.html) ran a 15-day 公示 before go-live; Guangdong's 非现场执法管理办法
    (2025) asks 30 days (paperwork review §1.1). A record taken before ``enforced_from``, or at
    a point that has none, is not evidence: the outcome is review. Local dates."""

    legal_review_on: dt.date | None = None  # 法制审核通过
    technical_review_on: dt.date | None = None  # 技术审核通过
    notice_on: dt.date | None = None  # 通告 published (公示 starts)
    publicity_until: dt.date | None = None  # last day of the 公示 period
    signed_on: dt.date | None = None  # 标志 on the road (明显标识)
    enforced_from: dt.date | None = None  # 启用: first day its records are evidence
    signs: str = ""  # the signs as the 通告 describes them

    def problems(self, min_days: int = 0) -> list[tuple[str, str]]:
        """(field, message) of each date missing or out of order; start-up stops on the first."""
        if self.enforced_from is None:
            return []
        steps = ("legal_review_on", "technical_review_on", "notice_on", "publicity_until",
                 "signed_on")  # fmt: skip
        out = [(f, "needed before enforced_from") for f in steps if getattr(self, f) is None]
        if out:
            return out
        assert self.notice_on and self.publicity_until  # checked above
        for f in ("legal_review_on", "technical_review_on"):
            if getattr(self, f) > self.notice_on:
                out.append((f, f"{getattr(self, f)} is after notice_on {self.notice_on}"))
        days = (self.publicity_until - self.notice_on).days + 1
        if days < max(min_days, 1):
            out.append(("publicity_until", f"a 公示 of {days} days from notice_on "
                        f"{self.notice_on}; at least {max(min_days, 1)}"))  # fmt: skip
        if self.enforced_from <= self.publicity_until:
            out.append(("enforced_from", f"{self.enforced_from} is not after the 公示 period "
                        f"(until {self.publicity_until})"))  # fmt: skip
        if self.signed_on and self.signed_on > self.enforced_from:
            out.append(("signed_on", f"{self.signed_on} is after enforced_from"))
        return out

    def not_enforced_on(self, day: dt.date, code: str, what: str) -> list[str]:
        """Why a record of local ``day`` is not evidence (empty: it is), as ``code: 中文``."""
        if self.enforced_from is None:
            return [f"{code}_not_enforced: {what}未经公示启用（无启用执法日期），"
                    "其记录不得作为行政处罚证据（行政处罚法第四十一条）"]  # fmt: skip
        if day < self.enforced_from:
            return [f"{code}_not_enforced_on_pass_date: {what}自{self.enforced_from}起启用执法"
                    f"（公示期{self.notice_on}至{self.publicity_until}），本记录摄于{day}，"
                    "在启用之前，不得作为行政处罚证据（行政处罚法第四十一条）"]  # fmt: skip
        return []


class CalibrationCertificate(_Strict):
    """A metrology certificate (计量检定证书): a device measures lawfully only inside it."""

    number: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    valid_from: dt.date
    valid_until: dt.date

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


# The accuracy classes for vehicle mass of OIML R134-1:2006 §2.1, which JJG 907 (动态公路车辆自动
# 衡器) uses too: class N has an in-service maximum permissible error of ±N % of the mass.
ACCURACY_CLASSES = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Device(_Strict):
    id: str = Field(min_length=1)
    type: Literal["wim", "anpr", "ais_receiver", "vessel_camera"]
    accuracy_class: float | None = None
    certificate: CalibrationCertificate | None = None
    # the speeds the device is verified for (its certificate's range); outside it a weighing
    # is not enforceable
    speed_range_kmh: tuple[float, float] | None = None
    # the day it passed the agency's legal and technical review (法制和技术审核, 行政处罚法 Art. 41);
    # None: not reviewed, its records are not evidence
    reviewed_on: dt.date | None = None
    # the longest it may be silent in normal traffic; None: the health stage's default
    expected_interval_s: float | None = Field(default=None, gt=0)
    maker: str = ""  # 生产厂家, for the 通告
    model: str = ""  # 型号
    # the id the device's records carry in a station format (ingest.formats): format name →
    # code, e.g. {zhichao: "43012106"} (previewStationCode), {kakou: …} (kkbh), {tmg: …}
    codes: dict[str, str] = Field(default_factory=dict)
    # the device's own 公示 dates (issue #26 must-have 3): a device added to a point later, or
    # announced on its own, has its own 启用; when set, they replace its point's dates
    publicity: Publicity | None = None

    @model_validator(mode="after")
    def _wim_has_class(self) -> Device:
        if self.type == "wim" and self.accuracy_class is None:
            raise ValueError("a wim device needs accuracy_class")
        if self.accuracy_class is not None and self.accuracy_class not in ACCURACY_CLASSES:
            raise ValueError(
                f"accuracy_class {self.accuracy_class:g} is not a class of OIML R134 / JJG 907 "
                f"({', '.join(f'{c:g}' for c in ACCURACY_CLASSES)})"
            )
        return self


@cache
def _zone(hours: int) -> dt.timezone:
    """A site's fixed UTC offset, made once (the detection stage asks for it every pass)."""
    return dt.timezone(dt.timedelta(hours=hours))


class Site(_Strict):
    id: str = Field(min_length=1)
    name: str
    road: str
    km: float | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    direction: str
    lanes: int = Field(ge=1, le=12)
    devices: list[str]
    # 行政处罚法 Art. 41: its reviews, 通告, 公示 period and start of enforcement
    publicity: Publicity = Publicity()
    jurisdiction: str = "national"
    timezone_offset_hours: int = Field(default=8, ge=-12, le=14)
    hub: bool = False  # at a passenger transport hub (bus station, railway station, airport)

    def local(self, ts: dt.datetime) -> dt.datetime:
        """``ts`` in the site's own time zone: every legal date and hour is the local one."""
        return ts.astimezone(_zone(self.timezone_offset_hours))

    def not_admissible_on(self, day: dt.date) -> list[str]:
        """Why a pass on local ``day`` is not admissible here under Art. 41 (empty: it is)."""
        return self.publicity.not_enforced_on(day, "site", f"监测点{self.name}")


class RoadDistance(_Strict):
    """Road distance between two sites, for telling a cloned plate from a fast truck."""

    between: tuple[str, str]
    km: float = Field(gt=0)


class Vehicle(_Strict):
    """A vehicle the transport agency knows: its class and its operating licence (道路运输证)."""

    plate: str = Field(min_length=7, max_length=8)
    plate_color: PlateColor | None = None
    kind: Literal["coach", "dangerous_goods", "truck", "bus", "car"]
    licensed: bool
    # dangerous goods: the local minutes of day it may run, as (start, end) pairs; may wrap
    permitted_minutes: list[tuple[int, int]] = Field(default_factory=list)
    # a goods vehicle's Art. 3 body: a single vehicle (单体货车) or a road train (汽车列车)
    body: Literal["rigid", "combination"] | None = None
    licence_no: str | None = None  # its 道路运输证号, where the agency records it (抄告, Art. 44)


class Permit(_Strict):
    """An over-limit transport permit (超限运输许可, 2016 No. 62 ch. 2): the vehicle, where and when
    it may run, and the mass and dimensions it may have."""

    number: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    plate: str = Field(min_length=7, max_length=8)
    plate_color: PlateColor
    vehicle: str = ""  # make, model, VIN as written on the permit
    sites: list[str] = Field(min_length=1)  # the enforcement points on its route
    valid_from: dt.date
    valid_until: dt.date
    max_gross_kg: int = Field(gt=0)
    max_length_mm: int | None = Field(default=None, gt=0)
    max_width_mm: int | None = Field(default=None, gt=0)
    max_height_mm: int | None = Field(default=None, gt=0)

    def does_not_cover(self, site_id: str, day: dt.date, gross_kg: int) -> list[str]:
        """Why this permit does not cover a pass (empty: it does)."""
        out = []
        if site_id not in self.sites:
            out.append(f"site {site_id} is not on its route ({', '.join(self.sites)})")
        if not self.valid_from <= day <= self.valid_until:
            out.append(f"the pass on {day} is outside {self.valid_from} – {self.valid_until}")
        if gross_kg > self.max_gross_kg:
            out.append(f"{gross_kg:,} kg is more than the permitted {self.max_gross_kg:,} kg")
        return out


class PublicNotice(_Strict):
    """What the 通告 of the monitoring points says besides the points (paperwork review §1.1)."""

    office: str = ""  # 处理地点: where parties come, its address
    phone: str = ""
    data_to: str = ""  # where the records are sent (e.g. 全省公路治超联网系统)
    min_publicity_days: int = Field(default=0, ge=0)  # the province's 公示 before 启用


class Registry(_Strict):
    sites: list[Site]
    notice: PublicNotice = PublicNotice()
    devices: list[Device]
    distances: list[RoadDistance] = Field(default_factory=list)
    vehicles: list[Vehicle] = Field(default_factory=list)
    permits: list[Permit] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Registry:
        sites = {s.id for s in self.sites}
        for permit in self.permits:
            for site_id in permit.sites:
                if site_id not in sites:
                    raise ValueError(f"permit {permit.number} names unknown site {site_id}")
        ids = {d.id for d in self.devices}
        for site in self.sites:
            for dev in site.devices:
                if dev not in ids:
                    raise ValueError(f"site {site.id} names unknown device {dev}")
        for d in self.distances:
            for end in d.between:
                if end not in sites:
                    raise ValueError(f"distance names unknown site {end}")
        return self

    @cached_property
    def vehicle_index(self) -> dict[str, Vehicle]:
        return {v.plate: v for v in self.vehicles}

    def vehicle(self, plate: str | None, color: str | None) -> Vehicle | None:
        """The vehicle of a plate, when the registry knows it with that colour (or without one:
        a record that names no colour matches a plate read of any colour)."""
        v = self.vehicle_index.get(plate or "")
        return v if v is not None and v.plate_color in (None, color) else None

    def permits_of(self, plate: str | None, color: str | None) -> list[Permit]:
        return [p for p in self.permits if p.plate == plate and p.plate_color == color]

    def distance_km(self, a: str, b: str) -> float | None:
        return self._distances.get((a, b))

    @cached_property
    def _distances(self) -> dict[tuple[str, str], float]:
        out = {}
        for d in self.distances:
            a, b = d.between
            out[(a, b)] = out[(b, a)] = d.km
        return out

    @cached_property
    def site_index(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def device_index(self) -> dict[str, Device]:
        return {d.id: d for d in self.devices}

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(location, message) of each site or device whose 公示 dates are missing or out of
        order."""
        days = self.notice.min_publicity_days
        points = [("sites", i, s.id, s.publicity) for i, s in enumerate(self.sites)]
        points += [("devices", i, d.id, d.publicity) for i, d in enumerate(self.devices)
                   if d.publicity is not None]  # fmt: skip
        return [((kind, i, "publicity", field), f"{kind[:-1]} {name}: {message}")
                for kind, i, name, pub in points for field, message in pub.problems(days)]  # fmt: skip

    def publicity_of(self, site: Site, device_id: str) -> Publicity:
        """The 公示 dates a record of ``device_id`` at ``site`` is judged by: the device's own
        when it has them, else its point's."""
        device = self.device(device_id)
        return device.publicity if device and device.publicity is not None else site.publicity

    def not_admissible(self, site: Site, device_id: str, day: dt.date) -> list[str]:
        """Why a record of ``device_id`` at ``site`` on local ``day`` is not evidence under
        Art. 41 (empty: it is): the device's own 启用 when it has one, else the point's."""
        device = self.device(device_id)
        if device is None or device.publicity is None:
            return site.not_admissible_on(day)
        return device.publicity.not_enforced_on(day, "device", f"监测设备{device.id}")

    def site(self, site_id: str) -> Site | None:
        return self.site_index.get(site_id)

    def device(self, device_id: str) -> Device | None:
        return self.device_index.get(device_id)
