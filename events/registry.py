"""The registry of enforcement sites and devices (configs/sites.yaml)."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationCertificate(_Strict):
    """A metrology certificate (计量检定证书): a device measures lawfully only inside it."""

    number: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    valid_from: dt.date
    valid_until: dt.date

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


class Device(_Strict):
    id: str = Field(min_length=1)
    type: Literal["wim", "anpr", "ais_receiver", "vessel_camera"]
    accuracy_class: float | None = Field(default=None, gt=0, le=20)
    certificate: CalibrationCertificate | None = None
    # the speeds the device is verified for (its certificate's range); outside it a weighing
    # is not enforceable
    speed_range_kmh: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _wim_has_class(self) -> Device:
        if self.type == "wim" and self.accuracy_class is None:
            raise ValueError("a wim device needs accuracy_class")
        return self


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
    announced: bool
    signed: bool
    jurisdiction: str = "national"
    timezone_offset_hours: int = 8
    hub: bool = False  # at a passenger transport hub (bus station, railway station, airport)


class RoadDistance(_Strict):
    """Road distance between two sites, for telling a cloned plate from a fast truck."""

    between: tuple[str, str]
    km: float = Field(gt=0)


class Vehicle(_Strict):
    """A vehicle the transport agency knows: its class and its operating licence (道路运输证)."""

    plate: str = Field(min_length=7, max_length=8)
    kind: Literal["coach", "dangerous_goods", "truck", "bus", "car"]
    licensed: bool
    # dangerous goods: the local minutes of day it may run, as (start, end) pairs; may wrap
    permitted_minutes: list[tuple[int, int]] = Field(default_factory=list)


class Registry(_Strict):
    sites: list[Site]
    devices: list[Device]
    distances: list[RoadDistance] = Field(default_factory=list)
    vehicles: list[Vehicle] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Registry:
        ids = {d.id for d in self.devices}
        for site in self.sites:
            for dev in site.devices:
                if dev not in ids:
                    raise ValueError(f"site {site.id} names unknown device {dev}")
        sites = {s.id for s in self.sites}
        for d in self.distances:
            for end in d.between:
                if end not in sites:
                    raise ValueError(f"distance names unknown site {end}")
        return self

    @cached_property
    def vehicle_index(self) -> dict[str, Vehicle]:
        return {v.plate: v for v in self.vehicles}

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

    def site(self, site_id: str) -> Site | None:
        return self.site_index.get(site_id)

    def device(self, device_id: str) -> Device | None:
        return self.device_index.get(device_id)
