"""Pydantic models of every message on every topic (SPEC.md)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from .registry import CalibrationCertificate, PlateColor

ImageRole = Literal["plate", "front", "side", "rear", "overview", "composite"]
VehicleKind = Literal["rigid", "combination"]
PlateStatus = Literal[
    "read", "no_capture", "unreadable", "low_confidence", "ambiguous", "uncertain", "invalid",
    "not_this_vehicle",
]  # fmt: skip
Outcome = Literal["none", "no_penalty", "warning", "fine", "review"]

# Device validity flags known to mean the vehicle was not weighed in a steady, single, centred
# pass. Every flag a device sets makes its weighing not enforceable; these are the ones offsite
# can name (SPEC.md).
UNENFORCEABLE_FLAGS = frozenset(
    {"lane_change", "acceleration", "straddle", "tailgating", "off_scale"}
)
# Flags known to leave a weighing valid: the only ones ignored. None is known yet; a vendor's
# flag goes here only when its documentation says the weighing stays valid. Any other flag
# (e.g. ``sensor_fault``) sends the pass to review.
HARMLESS_FLAGS: frozenset[str] = frozenset()

# GA 36: large vehicles, goods vehicles and trailers carry yellow plates (new-energy large
# vehicles yellow-and-green); blue and green plates are for small vehicles (≤ 4.5 t). A heavy
# weighing with another colour, or none reported, cannot be fined on that plate.
HEAVY_PLATE_COLORS = frozenset({"yellow", "yellow_green"})
# Camera classifications a goods vehicle can have; any other (car, bus, …) means the plate may
# belong to another vehicle than the one weighed. None (not classified) is not a doubt.
GOODS_VEHICLE_TYPES = frozenset({"truck", "heavy_truck", "tractor", "trailer", "semi_trailer"})
# A weighing device gives at most this many axles; a longer vehicle is weighed in parts or is a
# large-cargo (大件) transport, which needs a permit: always reviewed.
MAX_AXLES = 12

# -- What no device can send (issue #28): refused with the reason at the gateway and, on a
# topic, dead-lettered by the stage that reads it. Bounds are far past any real record and
# well inside what the stages compute with (int64 columns, datetime arithmetic).
# text without control characters (C0, DEL, C1): a NUL cannot be stored in PostgreSQL text
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
ID_MAX = 128  # a message's own id (record_id, capture_id, …): a vendor's id or a UUID fits
CODE_MAX = 64  # a registry id: site_id, device_id, camera_id, checkpoint_id, receiver_id
PLATE_MAX = 16  # a plate is 7 or 8 characters (GA 36); room for how a camera spells it
TEXT_MAX = 64  # a short label a device sends: vehicle_type, a flag, a hull's painted name
MAX_LANES = 16  # lanes of one direction; the registry says how many a site has
MAX_AXLE_KG = 100_000  # past the range of any axle scale
MAX_GROSS_KG = 2_000_000  # a large-cargo transport (大件运输) of many axles stays far below
MAX_SPACING_MM = 50_000
MAX_LENGTH_MM = 100_000
MAX_SPEED_KMH = 250
# dates any message may carry, whatever the clock says: wide enough for every recorded file
# and simulation, narrow enough that date arithmetic (local time, ± a window) cannot overflow
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# the validation context key a caller with a clock sets: (now, how far back, how far ahead)
TS_WINDOW = "ts_window"

Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=NO_CONTROL)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=CODE_MAX, pattern=NO_CONTROL)]
PlateText = Annotated[str, StringConstraints(max_length=PLATE_MAX, pattern=NO_CONTROL)]
Label = Annotated[str, StringConstraints(max_length=TEXT_MAX, pattern=NO_CONTROL)]


def in_range(ts: dt.datetime) -> bool:
    """``EARLIEST <= ts < LATEST``, fast: a local year strictly inside the range puts the
    instant inside it whatever the UTC offset (under a day), so the aware comparison (~1.5 µs,
    twice for every message read) is made only for a date in the range's first or last year."""
    return _INSIDE_FROM <= ts.year <= _INSIDE_TO or EARLIEST <= ts < LATEST


_INSIDE_FROM, _INSIDE_TO = EARLIEST.year + 1, LATEST.year - 2


def _plausible(ts: dt.datetime, info: ValidationInfo) -> dt.datetime:
    """``ts`` if no device can be wrong by that much: within [EARLIEST, LATEST), and within
    the window around now that a caller with a clock passes as context (the gateway)."""
    if not in_range(ts):
        raise ValueError(f"{ts.isoformat()} is outside {EARLIEST.year}–{LATEST.year - 1}: "
                         "no device records such a date")  # fmt: skip
    window = (info.context or {}).get(TS_WINDOW)
    if window is not None:
        now, behind, ahead = window
        if ts < now - behind:
            raise ValueError(f"{ts.isoformat()} is more than {behind.days} days before now "
                             f"({now.isoformat(timespec='seconds')})")  # fmt: skip
        if ts > now + ahead:
            raise ValueError(f"{ts.isoformat()} is more than {ahead.total_seconds():g} s after "
                             f"now ({now.isoformat(timespec='seconds')}): a device clock fault")  # fmt: skip
    return ts


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]


def _storable(value: Any, where: str) -> None:
    """Raise if ``value`` holds NaN or an infinity (JSON has neither; they would become null)
    or U+0000 (PostgreSQL stores no NUL, in text or jsonb)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} is not a number JSON can carry")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: a NUL character (U+0000) cannot be stored")
    if isinstance(value, dict):
        for k, v in value.items():
            _storable(k, f"{where} (a key)")
            _storable(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _storable(v, f"{where}.{i}")


class Message(BaseModel):
    """Base of every topic message: strict types, unknown extra fields kept (SPEC.md), no NaN
    or infinity anywhere (a float field says so, an extra field would silently become null),
    no NUL in an extra field."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _finite_extras(self) -> Message:
        for k, v in (self.model_extra or {}).items():
            _storable(k, "an extra field's name")
            _storable(v, k)
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class ImageRef(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)

    role: ImageRole
    uri: str = Field(min_length=1, max_length=1024, pattern=NO_CONTROL)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class WimRecord(Message):
    """``road.wim``: one vehicle pass over a weigh-in-motion station (key: site_id)."""

    record_id: Id
    site_id: Code
    device_id: Code
    lane: int = Field(ge=1, le=MAX_LANES)
    ts: Timestamp
    speed_kmh: float = Field(ge=0, le=MAX_SPEED_KMH)
    axle_count: int = Field(ge=2, le=64)  # more than MAX_AXLES: reviewed, not rejected
    axle_weights_kg: list[Annotated[int, Field(ge=0, le=MAX_AXLE_KG)]] = Field(max_length=64)
    # empty: not measured (a station format without spacings): axle groups are not judged
    axle_spacings_mm: list[Annotated[int, Field(gt=0, le=MAX_SPACING_MM)]] = Field(
        default_factory=list, max_length=63
    )
    gross_weight_kg: int = Field(gt=0, le=MAX_GROSS_KG)
    length_mm: int | None = Field(default=None, gt=0, le=MAX_LENGTH_MM)
    vehicle_kind: VehicleKind | None = None
    drive_axles: Literal[1, 2] | None = None
    flags: list[Label] = Field(default_factory=list, max_length=32)
    plate: PlateText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WimRecord:
        if len(self.axle_weights_kg) != self.axle_count:
            raise ValueError(
                f"axle_count is {self.axle_count} but axle_weights_kg has "
                f"{len(self.axle_weights_kg)} values"
            )
        if self.axle_spacings_mm and len(self.axle_spacings_mm) != self.axle_count - 1:
            raise ValueError(
                f"axle_spacings_mm needs axle_count - 1 = {self.axle_count - 1} values, "
                f"got {len(self.axle_spacings_mm)}"
            )
        total = sum(self.axle_weights_kg)
        # A device reports the gross as the sum of its axle weighings; a larger gap means a
        # corrupt record, not a heavy truck (FHWA TMG QC applies the same check).
        if abs(total - self.gross_weight_kg) > max(50, self.gross_weight_kg // 100):
            raise ValueError(
                f"gross_weight_kg {self.gross_weight_kg} disagrees with the sum of "
                f"axle_weights_kg {total}"
            )
        return self


class Reweigh(Message):
    """A static reweigh (精检) of a vehicle on a site's certified static scale (汽车衡), for the
    drift watch: compared with the WIM weighing of the same vehicle just before it."""

    record_id: Id
    site_id: Code
    scale_id: Code
    plate: PlateText = Field(min_length=1)
    ts: Timestamp
    gross_weight_kg: int = Field(gt=0, le=MAX_GROSS_KG)
    axle_weights_kg: list[Annotated[int, Field(ge=0, le=MAX_AXLE_KG)]] = Field(max_length=64)
    # the static scale's verification interval e (检定分度值) and certificate: OIML R76-1 class
    # III (中准确度级), the class of vehicle scales (JJG 539)
    scale_interval_kg: int = Field(gt=0, le=1_000)
    scale_certificate: CalibrationCertificate

    def scale_mpe_kg(self) -> float:
        """The static scale's in-service maximum permissible error at this load: class III
        (OIML R76-1:2006 §3.5.1 Table 6) ±0.5 e up to 500 e, ±1 e up to 2,000 e, ±1.5 e above;
        in service twice that (§3.5.2)."""
        e, m = self.scale_interval_kg, self.gross_weight_kg
        return 2 * e * (0.5 if m <= 500 * e else 1.0 if m <= 2_000 * e else 1.5)


class AnprCapture(Message):
    """``road.anpr``: one camera capture (key: site_id)."""

    capture_id: Id
    site_id: Code
    camera_id: Code
    lane: int = Field(ge=1, le=MAX_LANES)
    ts: Timestamp
    plate: PlateText | None
    plate_color: PlateColor | None = None
    confidence: float = Field(ge=0, le=1)
    vehicle_type: Label | None = None
    images: list[ImageRef] = Field(default_factory=list, max_length=16)


class Detection(Message):
    """``detections``: a detector's finding on one WIM record, with the inputs it came from."""

    detection_id: str
    detector: str
    detector_version: str
    record_id: Id
    capture_id: Id | None
    site_id: Code
    device_id: Code
    lane: int
    ts: Timestamp
    plate: PlateText | None
    plate_color: PlateColor | None
    plate_status: PlateStatus
    match_confidence: float
    axle_count: int
    vehicle_kind: VehicleKind
    drive_axles: int | None
    configuration: str
    accuracy_class: float
    certificate_number: str | None
    measured_kg: int  # the lower of the reported gross and the sum of the axles
    tolerance_kg: int
    limit_kg: int  # under the reading most favourable to the party
    overload_kg: int
    overloaded: bool
    enforceable: bool
    reasons: list[str]
    wim: dict[str, Any]
    capture: dict[str, Any] | None
    images: list[ImageRef]
    # the axle group furthest over its limit after the device's margin: first_axle (1 = front),
    # kind (1 single, 2 tandem, 3 tridem), spacing_mm, limit_kg, load_kg, over_kg (before it)
    axle_group: dict[str, int] | None = None
    # when a fact the limit rests on was not reported (body, drive axles): the limit under the
    # other reading, and what that reading is; a decision that differs under it goes to review
    other_limit_kg: int | None = None
    other_reading: str | None = None
    # False: the device did not weigh the vehicle whole (an axle of 0 kg, too many axles):
    # whatever the figures say, an officer looks
    whole: bool = True
    received_at: AwareDatetime | None = None  # when the broker received the WIM record


class Violation(Message):
    """``violations``: the decision of a rule on one detection (outcome, penalty, basis)."""

    violation_id: str
    detection_id: str
    record_id: Id
    site_id: Code
    ts: Timestamp
    plate: PlateText | None
    plate_color: PlateColor | None
    violation_code: str
    outcome: Outcome
    fine_cny: int | None
    measured_kg: int
    tolerance_kg: int
    limit_kg: int
    overload_kg: int
    tier: str
    tier_name: str
    legal_basis: str
    penalty_basis: str
    rounding: str | None
    reasons: list[str]
    rule: str  # the discretion baseline's id
    rule_version: str
    baseline_hash: str  # SHA-256 of the baseline file that decided
    quantities: dict[str, int]
    reasoning: str  # 说理, in Chinese, for the notice
    legal_review: bool  # a major decision (重大执法决定): 法制审核 before it is made
    detection: Detection
    # 行政处罚法 Art. 29: a later detection of the same trip attaches to that case as evidence
    attached_to: str | None = None
    # what the decision reports to others, never a fine by itself (e.g. Art. 46's threshold)
    notices: list[str] = Field(default_factory=list)
    decided_at: AwareDatetime | None = None


class Sighting(BaseModel):
    """One camera sighting a lead rests on."""

    model_config = ConfigDict(strict=True, frozen=True)

    capture_id: Id
    site_id: Code
    ts: Timestamp
    plate: PlateText | None
    images: list[ImageRef] = Field(default_factory=list)


LeadKind = Literal[
    "cloned_plate", "restricted_hours", "plate_missing", "illegal_operation",
    "maritime_referral",  # a waterway finding with no penalty basis here: for 海事 (issue #29)
]  # fmt: skip


class Lead(Message):
    """``leads``: a finding for officers to follow up, never a penalty by itself — a cloned
    plate (套牌) or a missing plate for transfer to the police (移送公安), a coach on the road in
    restricted hours, an illegal-operation pattern (非法营运线索)."""

    lead_id: str
    kind: LeadKind
    detector: str
    detector_version: str
    plate: PlateText | None
    site_id: Code  # where the (last) sighting was
    ts: Timestamp
    score: float = Field(ge=0, le=1)
    reasons: list[str]
    sightings: list[Sighting]
    record_id: Id | None = None  # the WIM pass, when the lead comes from one
    agency: Label | None = None  # the authority it goes to, when not this agency (海事管理机构)
    evidence: dict[str, Any] = Field(default_factory=dict)  # e.g. the waterway detection


CaseStatus = Literal["pending_review", "confirmed", "rejected", "approved"]


class Case(Message):
    """``cases``: a violation stored for officer review; every case starts ``pending_review``."""

    case_id: str
    violation_id: str
    status: CaseStatus = "pending_review"
    site_id: Code
    ts: Timestamp
    plate: PlateText | None
    outcome: Outcome
    fine_cny: int | None


class Alert(Message):
    """``alerts``: what the command center sees when a case is created."""

    alert_id: str
    kind: Literal["case.created"]
    case_id: str
    site_id: Code
    ts: Timestamp
    plate: PlateText | None
    violation_code: str
    outcome: Outcome
    fine_cny: int | None
    overload_kg: int


DeviceCondition = Literal[
    "silent", "certificate_expiring", "certificate_expired", "clock_skew",
    "drift",  # detectors/drift.py: the scale drifted since its calibration (issue #29)
]  # fmt: skip


class DeviceAlert(Message):
    """``alerts``: a device's health changed — a condition raised, or cleared once its cause
    went away (issue #15). One alert per device and condition while it lasts."""

    alert_id: str
    kind: Literal["device.raised", "device.cleared"]
    device_id: Code
    site_id: Code | None
    condition: DeviceCondition
    ts: Timestamp  # when the health stage saw the change
    reason: str


class DeadLetter(Message):
    """``<topic>.dlq``: a message a stage could not accept, with the reason."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    reason: str
    stage: str
