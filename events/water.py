"""Waterway contracts: raw and decoded AIS, vessel captures, waterway detections, the registry.

Topic names are in events/topics.py (re-exported here). Registry models mirror
configs/waterways.yaml; coordinates are (lon, lat) pairs in WGS 84, times of day are local
"HH:MM" strings in the registry's UTC offset.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cached_property
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from .models import Code, Id, ImageRef, Label, Message, Timestamp
from .registry import Publicity
from .topics import WATER_AIS as WATER_AIS
from .topics import WATER_AIS_RAW as WATER_AIS_RAW
from .topics import WATER_CAMERA as WATER_CAMERA
from .topics import WATER_DETECTIONS as WATER_DETECTIONS
from .topics import WATER_TOPICS as WATER_TOPICS
from .topics import WATER_VIOLATIONS as WATER_VIOLATIONS

Loaded = Literal["loaded", "unloaded"]
Direction = Literal["up", "down"]
TimeSource = Literal["tag_block", "receiver"]
WaterCode = Literal[
    "water.ais_off", "water.identity", "water.overdraught", "water.signal", "water.dredging"
]

# What each waterway violation rests on. Marks as in DOMAIN-REFERENCE.md: ✓ read in an official
# copy, ◐ from secondary copies, to be checked against the official text before any fine.
LEGAL_BASIS: dict[str, str] = {
    # No penalty basis on inland waters in the texts found (reviews/legal-2026-12-07.md §W):
    # the 2019 《内河交通安全管理条例》 has no AIS provision; 《海上交通安全法》 Art. 36 / 103 apply
    # only in 管辖海域 (Art. 2). So these are leads for the maritime authority, not cases,
    # unless a province's registry names a basis (WaterRegistry.penalty_bases).
    "water.ais_off": (
        "未开启或未保持船舶自动识别系统(AIS)正常工作: 内河水域未查到处罚依据"
        "(《内河交通安全管理条例》无AIS条款; 《海上交通安全法》第三十六条仅适用于管辖海域), 移交海事管理机构"
    ),
    "water.identity": (
        "AIS身份数据与登记不符或静态数据被更改: 内河水域未查到处罚依据"
        "(《内河交通安全管理条例》无AIS条款; 《海上交通安全法》第三十六条仅适用于管辖海域), 移交海事管理机构"
    ),
    "water.overdraught": (
        "《内河交通安全管理条例》第二十一条、第八十二条; 《中华人民共和国内河海事行政处罚规定》"
        "(交通运输部令2021年第20号)第十八条: 超核定载重线载运货物 (◐ 据重庆市交通运输委员会公开的条文转引)"
    ),
    # ✓ LawRefBook 行政法规/内河交通安全管理条例(2019-03-02), reviews/legal-2026-12-07.md §W
    "water.signal": (
        "强行通过交通管制区(冲关): 《内河交通安全管理条例》第二十条(通过交通管制区应当遵守海事管理机构"
        "发布的有关通航规定)、第六十八条第一款第(四)项(强行通过交通管制区), 以控制站信号记录为证"
    ),
    "water.dredging": (
        "《中华人民共和国长江保护法》第二十八条: 禁止在长江流域禁止采砂区和禁止采砂期从事采砂活动"
        "(采砂许可不予豁免); 湘江属长江流域"
    ),
}
# The authority competent for each waterway outcome: 《内河交通安全管理条例》 Art. 68 / 81 / 82
# give the penalties to 海事管理机构; 《长江保护法》 Art. 28 gives 禁采区/禁采期 and licences to
# 水行政主管部门 (reviews/legal-2026-12-07.md B11, §W). A transport agency transfers (移送).
AGENCY: dict[str, str] = {
    "water.ais_off": "海事管理机构",
    "water.identity": "海事管理机构",
    "water.overdraught": "海事管理机构",
    "water.signal": "海事管理机构",
    "water.dredging": "水行政主管部门",
}


# The fines of the waterway offences a transport agency may impose where it exercises the
# 海事管理机构's penalties (sinks.lifecycle.Policy.water_fine_codes): (least, most, the penalty
# article). ✓ LawRefBook 行政法规/内河交通安全管理条例(2019-03-02) as reviews/legal-2026-12-07.md §W
# read it: Art. 82 "…处2万元以上10万元以下的罚款" (超载), Art. 68 para 1 item (4) 5,000–50,000
# (强行通过交通管制区). No range for AIS (no inland basis) or dredging (水行政主管部门): transfer.
FINE_RANGE: dict[str, tuple[int, int, str]] = {
    "water.overdraught": (20_000, 100_000, "《内河交通安全管理条例》第八十二条"),
    "water.signal": (5_000, 50_000, "《内河交通安全管理条例》第六十八条第一款第（四）项"),
}


class ControlSignal(Message):
    """A control station's (信号台) signal change, from its own log: from ``ts`` on, vessels bound
    ``direction`` into controlled section ``section_id`` may enter ("go") or not ("stop"). The
    evidence 冲关 is judged against (《内河交通安全管理条例》 Art. 20, 68)."""

    section_id: str = Field(min_length=1)
    direction: Direction
    ts: AwareDatetime
    shown: Literal["go", "stop"]
    station: str | None = None


class AisRaw(Message):
    """``water.ais.raw``: one line from a shore receiver, as received (key: receiver_id)."""

    receiver_id: Code
    ts: Timestamp  # the receiver's clock when the line arrived
    sentence: str = Field(min_length=1, max_length=2000)  # tag block, sentence, trailing metadata


class AisReport(Message):
    """``water.ais``: one decoded AIS message (key: mmsi). Values AIS marks "not available"
    (lat 91, lon 181, speed 102.3, course 360, heading 511, draught 0, …) are null."""

    report_id: str
    mmsi: int = Field(ge=0, le=999_999_999)
    msg_type: int = Field(ge=1, le=27)
    ts: Timestamp  # receive time: the tag block's, else the receiver's clock
    time_source: TimeSource
    receiver_id: Code
    station: str | None = None  # the tag block's source (s:), e.g. a receiver inside a network
    channel: str | None = None
    lat: float | None = None
    lon: float | None = None
    sog_kn: float | None = None
    cog_deg: float | None = None
    heading_deg: int | None = None
    nav_status: int | None = None
    name: str | None = None
    callsign: str | None = None
    imo: int | None = None
    ship_type: int | None = None
    destination: str | None = None
    draught_m: float | None = None  # type 5: decimetres; inland DAC 200 FID 10: centimetres
    draught_resolution_m: float | None = None
    length_m: float | None = None
    beam_m: float | None = None
    eni: str | None = None  # European vessel identification number (inland extension)
    eri_type: int | None = None  # ERI ship or convoy type (inland extension)
    hazard_cones: int | None = None  # 0–3 blue cones, 4 = B-flag (inland extension)
    loaded: Loaded | None = None  # inland extension, ECE/TRANS/SC.3/176 (see ingest.ais)
    dac: int | None = None
    fid: int | None = None
    part: Literal["A", "B"] | None = None  # type 24
    sentences: list[str]  # the NMEA sentences it was decoded from, tag blocks removed


class VesselCapture(Message):
    """``water.camera``: one vessel passing a waterway checkpoint (key: checkpoint_id)."""

    capture_id: Id
    checkpoint_id: Code
    camera_id: Code
    ts: Timestamp
    direction: Direction
    images: list[ImageRef] = Field(default_factory=list, max_length=16)
    hull_text: Label | None = None  # the name painted on the hull, if the camera reads it
    hull_confidence: float | None = Field(default=None, ge=0, le=1)
    draught_m: float | None = Field(default=None, gt=0, le=30)  # if the site measures it


class WaterDetection(Message):
    """``water.detections``: a waterway detector's finding, for review (never finable here: the
    waterway penalties are ◐ in DOMAIN-REFERENCE.md). ``domain`` tells it from a road one."""

    detection_id: str
    domain: Literal["water"] = "water"
    detector: str
    detector_version: str
    violation_code: WaterCode
    legal_basis: str
    site_id: Code  # checkpoint, section or zone id
    # what saw it: the checkpoint's camera for a pass, else the AIS receivers ("+"-joined)
    device_id: str = "ais"
    ts: Timestamp
    mmsi: int | None
    vessel_name: str | None  # the registry's name of the vessel, when known
    ais_name: str | None
    hull_name: str | None
    eni: str | None
    capture_id: str | None
    report_ids: list[str]  # the AIS reports it rests on
    receiver_ids: list[str]
    confidence: float = Field(ge=0, le=1)
    enforceable: Literal[False] = False
    reasons: list[str]
    images: list[ImageRef]
    quantities: dict[str, float]
    evidence: dict[str, Any] = Field(default_factory=dict)


# The decision on a waterway detection. The fines are not verified (◐), so it is never a fine:
# an officer reviews it with its legal basis (DOMAIN.md).
WATER_RULE = "water.review"
WATER_RULE_VERSION = "1"
WATER_PENALTY_BASIS = "罚款数额未经官方文本核对(◐), 系统不拟定罚款: 由执法人员审核事实后依法裁量"


class WaterViolation(Message):
    """``water.violations``: the rules stage's decision on a waterway detection — always
    ``review``, never a fine. The fields the case store keeps per case are those of a road
    :class:`~events.models.Violation` (masses are 0: nothing was weighed), so both go into the
    one case queue; ``detection`` is the waterway finding itself."""

    violation_id: str
    domain: Literal["water"] = "water"
    detection_id: str
    record_id: str  # the capture for a pass, else the detection: one case per pass and code
    site_id: Code
    ts: Timestamp
    plate: None = None  # vessels have no plate; the detection names the vessel
    plate_color: None = None
    violation_code: WaterCode
    outcome: Literal["review"] = "review"
    fine_cny: None = None
    measured_kg: int = 0
    tolerance_kg: int = 0
    limit_kg: int = 0
    overload_kg: int = 0
    tier: str = "review"
    tier_name: str = "待人工审核"
    legal_basis: str
    penalty_basis: str = WATER_PENALTY_BASIS
    rounding: None = None
    reasons: list[str]
    rule: str = WATER_RULE
    rule_version: str = WATER_RULE_VERSION
    baseline_hash: str = ""  # no discretion baseline decides waterway cases yet
    quantities: dict[str, float] = Field(default_factory=dict)
    reasoning: str
    legal_review: bool = False
    detection: WaterDetection
    attached_to: None = None
    notices: list[str] = Field(default_factory=list)
    decided_at: AwareDatetime | None = None
    agency: str = ""  # the competent authority (AGENCY); "" in documents made before it

    @model_validator(mode="after")
    def _agency(self) -> WaterViolation:
        if not self.agency:  # a document made before it named the authority
            self.__dict__["agency"] = AGENCY[self.violation_code]
        return self


# ---------------------------------------------------------------------------------------------
# The waterway registry (configs/waterways.yaml)

LonLat = tuple[float, float]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def minute_of_day(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Window(_Strict):
    """A local time-of-day window; ``end`` before ``start`` wraps past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"{v!r} is not HH:MM")
        return v

    def minutes(self) -> tuple[int, int]:
        return minute_of_day(self.start), minute_of_day(self.end)


def _polygon(points: list[LonLat]) -> list[LonLat]:
    if len(points) < 3:
        raise ValueError("a polygon needs at least 3 points")
    return points


class Licence(_Strict):
    kind: Literal["sand_dredging"]  # 河道采砂许可证
    number: str = Field(min_length=1)
    valid_from: dt.date
    valid_until: dt.date

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


class RegisteredVessel(_Strict):
    """A vessel the maritime authority knows. ``name`` is as painted on the hull (Chinese);
    ``ais_name`` is what it must broadcast (AIS carries 6-bit ASCII, so pinyin)."""

    name: str = Field(min_length=2)
    ais_name: str | None = Field(default=None, pattern=r"^[\x20-\x5f]{1,20}$")  # AIS 6-bit text
    mmsi: int | None = Field(default=None, ge=100_000_000, le=999_999_999)
    eni: str | None = None
    kind: Literal["cargo", "tanker", "dredger", "passenger", "tug", "other"]
    length_m: float = Field(gt=0, le=400)
    beam_m: float | None = Field(default=None, gt=0, le=80)
    load_line_draught_m: float = Field(gt=0, le=25)  # 载重线吃水
    ais_required: bool = True
    licences: list[Licence] = Field(default_factory=list)

    def may_dredge_on(self, day: dt.date) -> bool:
        return any(lic.kind == "sand_dredging" and lic.valid_on(day) for lic in self.licences)


class Receiver(_Strict):
    """A shore AIS receiver and the rate of decoded reports it gives when healthy."""

    id: str = Field(min_length=1)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    expected_per_min: float = Field(gt=0)
    range_km: float = Field(gt=0, default=15.0)
    publicity: Publicity = Publicity()  # 行政处罚法 Art. 41, as a road site's (events.registry)


class Checkpoint(_Strict):
    """A waterway checkpoint: a camera looking at a line across the channel."""

    id: str = Field(min_length=1)
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    camera_id: str = Field(min_length=1)
    view: str  # what the camera sees, for the officer
    line: tuple[LonLat, LonLat]  # bank to bank
    receiver_ids: list[str] = Field(min_length=1)
    draught_uncertainty_m: float | None = Field(default=None, gt=0)  # sites that measure it
    publicity: Publicity = Publicity()  # 行政处罚法 Art. 41, as a road site's (events.registry)


class MonitoredSection(_Strict):
    """A reach where AIS coverage is expected: a gap longer than ``max_gap_s`` is reported."""

    id: str = Field(min_length=1)
    name: str
    polygon: list[LonLat]
    receiver_ids: list[str] = Field(min_length=1)
    max_gap_s: float = Field(gt=0)

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[LonLat]) -> list[LonLat]:
        return _polygon(v)


class ControlledSection(_Strict):
    """A controlled section (交通管制河段): vessels may enter only while its signal allows.
    ``entry_up`` is the line an up-bound vessel crosses to enter, ``entry_down`` the line a
    down-bound one crosses; ``open_up`` / ``open_down`` are the local windows of passage."""

    id: str = Field(min_length=1)
    name: str
    entry_up: tuple[LonLat, LonLat]
    entry_down: tuple[LonLat, LonLat]
    open_up: list[_Window]
    open_down: list[_Window]
    receiver_ids: list[str] = Field(min_length=1)


class NoDredgingZone(_Strict):
    """A no-dredging zone (禁采区) and its watch window ``night`` (a 禁采期, or the hours the
    zone is watched). Working in it — slow moves about a spot (``min_working_kn`` to
    ``max_speed_kn``), or any stay of a registered dredger — is reported whatever licence the
    vessel holds (《长江保护法》 Art. 28 admits none); a vessel lying at anchor is not dredging."""

    id: str = Field(min_length=1)
    name: str
    polygon: list[LonLat]
    night: _Window
    min_dwell_s: float = Field(gt=0, default=1200)
    max_speed_kn: float = Field(gt=0, default=1.0)
    # below it a vessel lies at anchor (it swings, it does not work); AIS speed resolution 0.1 kn
    min_working_kn: float = Field(ge=0, default=0.2)

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[LonLat]) -> list[LonLat]:
        return _polygon(v)


# the place of a finding along the whole channel rather than at one checkpoint or section
# (AIS identity and reported draught); the registry's ``channel_name`` names it
CHANNEL = "channel"


class WaterRegistry(_Strict):
    """configs/waterways.yaml: what the waterway detectors need to know. What the schema of one
    entry cannot see (references between entries, duplicates) is :func:`registry_problems`; the
    loader (ingest.waterways) runs both and names the file, line and field."""

    timezone_offset_hours: int = 8
    channel: list[LonLat] = Field(min_length=2)  # fairway centreline, downstream to upstream
    channel_name: str = Field(default="航道（全段）", min_length=1, max_length=60)
    max_speed_kn: float = Field(gt=0, default=30.0)
    receivers: list[Receiver]
    vessels: list[RegisteredVessel] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    sections: list[MonitoredSection] = Field(default_factory=list)
    controlled_sections: list[ControlledSection] = Field(default_factory=list)
    no_dredging_zones: list[NoDredgingZone] = Field(default_factory=list)
    # a basis this province's own rules give for a code the national texts leave without one
    # (water.ais_off, water.identity): with it such findings are cases, else leads for 海事
    penalty_bases: dict[WaterCode, str] = Field(default_factory=dict)

    @property
    def tz(self) -> dt.timezone:
        return dt.timezone(dt.timedelta(hours=self.timezone_offset_hours))

    @cached_property
    def by_mmsi(self) -> dict[int, RegisteredVessel]:
        return {v.mmsi: v for v in self.vessels if v.mmsi is not None}

    @cached_property
    def receiver_index(self) -> dict[str, Receiver]:
        return {r.id: r for r in self.receivers}

    @cached_property
    def checkpoint_index(self) -> dict[str, Checkpoint]:
        return {c.id: c for c in self.checkpoints}

    def checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return self.checkpoint_index.get(checkpoint_id)

    def not_enforced_on(self, site_id: str, day: dt.date) -> list[str]:
        """Why a finding at ``site_id`` (a checkpoint, section or controlled section) on local
        ``day`` is not evidence under Art. 41: its checkpoint's or receivers' 公示 dates."""
        out: list[str] = []
        cp = self.checkpoint(site_id)
        if cp is not None:
            out += cp.publicity.not_enforced_on(day, "checkpoint", f"检查点{cp.name}")
        owners: list[Checkpoint | MonitoredSection | ControlledSection] = [
            *self.checkpoints, *self.sections, *self.controlled_sections]  # fmt: skip
        owner = next((x for x in owners if x.id == site_id), None)
        for rid in owner.receiver_ids if owner is not None else []:
            rx = self.receiver_index.get(rid)
            if rx is not None:
                out += rx.publicity.not_enforced_on(day, "receiver", f"AIS基站{rx.name}")
        return out


Where = tuple[str | int, ...]


def registry_problems(reg: WaterRegistry) -> list[tuple[Where, str]]:
    """(location, message) of every cross-entry problem: unknown receivers, duplicate ids,
    MMSIs, ENIs or names, licences that end before they begin, empty signal windows."""
    found: list[tuple[Where, str]] = []
    receivers = {r.id for r in reg.receivers}
    owners: list[tuple[str, list[Any]]] = [
        ("checkpoints", list(reg.checkpoints)),
        ("sections", list(reg.sections)),
        ("controlled_sections", list(reg.controlled_sections)),
    ]
    for kind, items in owners:
        for i, item in enumerate(items):
            for k, rid in enumerate(item.receiver_ids):
                if rid not in receivers:
                    found.append(((kind, i, "receiver_ids", k), f"unknown receiver {rid!r}"))
    ids: dict[str, Where] = {}
    for kind, items in [*owners, ("receivers", list(reg.receivers)),
                        ("no_dredging_zones", list(reg.no_dredging_zones))]:  # fmt: skip
        for i, item in enumerate(items):
            if item.id in ids:
                found.append(((kind, i, "id"), f"{item.id!r} is used twice"))
            ids.setdefault(item.id, (kind, i, "id"))
    published: list[tuple[str, list[Checkpoint | Receiver]]] = [
        ("checkpoints", list(reg.checkpoints)), ("receivers", list(reg.receivers))]  # fmt: skip
    for kind, points in published:  # 行政处罚法 Art. 41: the dates in their order
        for i, point in enumerate(points):
            for field, message in point.publicity.problems():
                found.append(((kind, i, "publicity", field), f"{point.id}: {message}"))
    for field in ("mmsi", "eni", "name"):
        seen: set[object] = set()
        for i, v in enumerate(reg.vessels):
            value = getattr(v, field)
            if value is not None and value in seen:
                found.append((("vessels", i, field), f"{value!r} belongs to another vessel"))
            seen.add(value)
    for i, v in enumerate(reg.vessels):
        for k, lic in enumerate(v.licences):
            if lic.valid_until < lic.valid_from:
                found.append((("vessels", i, "licences", k, "valid_until"), "before valid_from"))
    for i, c in enumerate(reg.controlled_sections):
        for field in ("open_up", "open_down"):
            for k, w in enumerate(getattr(c, field)):
                if w.start == w.end:
                    found.append((("controlled_sections", i, field, k), "an empty window"))
    for i, z in enumerate(reg.no_dredging_zones):
        if z.night.start == z.night.end:
            found.append((("no_dredging_zones", i, "night"), "an empty window"))
    return found
