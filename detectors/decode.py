"""Fast decode of the detection stage's WIM records: a road.wim JSON value that plainly meets
the contract is parsed by msgspec into the same pydantic object the model would validate
(~4.7 µs against ~6 µs a record); any other value goes to the model itself, so a value it
refuses is refused with the model's own reason, word for word (a dead letter's reason is a
contract). A capture (road.anpr) is left to its model: its fast path measured no faster (the
model has no Python validator to skip).

The model (events.models) is the reference twin: tests/unit/test_decode.py holds that whatever
the fast path accepts, the model accepts as an equal object. The fast path is narrower than the
model on purpose: a value with an escape (``\\``), a DEL or a C1 byte, an unknown field, a date
not written as plain RFC 3339, or any figure msgspec does not take as is, takes the model's path.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType
from pydantic import BaseModel

from events import WimRecord
from events.models import (
    CODE_MAX,
    ID_MAX,
    MAX_AXLE_KG,
    MAX_GROSS_KG,
    MAX_LANES,
    MAX_LENGTH_MM,
    MAX_SPACING_MM,
    MAX_SPEED_KMH,
    PLATE_MAX,
    TEXT_MAX,
    in_range,
)

Id = Annotated[str, Meta(min_length=1, max_length=ID_MAX)]
Code = Annotated[str, Meta(min_length=1, max_length=CODE_MAX)]
Plate = Annotated[str, Meta(max_length=PLATE_MAX)]
Label = Annotated[str, Meta(max_length=TEXT_MAX)]
Lane = Annotated[int, Meta(ge=1, le=MAX_LANES)]


class _Wim(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """WimRecord's fields in its order; the optional ones UNSET when absent (fields set)."""

    record_id: Id
    site_id: Code
    device_id: Code
    lane: Lane
    ts: str
    speed_kmh: Annotated[float, Meta(ge=0, le=MAX_SPEED_KMH)]
    axle_count: Annotated[int, Meta(ge=2, le=64)]
    axle_weights_kg: Annotated[
        list[Annotated[int, Meta(ge=0, le=MAX_AXLE_KG)]], Meta(max_length=64)
    ]
    axle_spacings_mm: (
        Annotated[list[Annotated[int, Meta(gt=0, le=MAX_SPACING_MM)]], Meta(max_length=63)]
        | UnsetType
    ) = UNSET
    gross_weight_kg: Annotated[int, Meta(gt=0, le=MAX_GROSS_KG)]
    length_mm: Annotated[int, Meta(gt=0, le=MAX_LENGTH_MM)] | UnsetType | None = UNSET
    vehicle_kind: Literal["rigid", "combination"] | UnsetType | None = UNSET
    drive_axles: Literal[1, 2] | UnsetType | None = UNSET
    flags: Annotated[list[Label], Meta(max_length=32)] | UnsetType = UNSET
    plate: Plate | UnsetType | None = UNSET


_WIM = msgspec.json.Decoder(_Wim)
# the defaults of the optional fields (a list default is a new list each time, as the model's)
_WIM_DEFAULTS: dict[str, Any] = {"axle_spacings_mm": list, "length_mm": None, "vehicle_kind": None,
                                 "drive_axles": None, "flags": list, "plate": None}  # fmt: skip
# RFC 3339 as every device writes it; pydantic and datetime.fromisoformat read it alike
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)")
# a raw value without these bytes has no control character in any string (JSON carries C0
# only escaped, DEL and C1 (U+0080-U+009F, led by 0xC2 in UTF-8) raw), so the model's
# NO_CONTROL pattern holds without being run
_UNPLAIN = b"\\\x7f\xc2"

M = TypeVar("M", bound=BaseModel)


def wim_record(value: bytes) -> WimRecord:
    """``WimRecord.model_validate_json(value)``, faster when the value is plain."""
    return fast_wim(value) or WimRecord.model_validate_json(value)


def fast_wim(value: bytes) -> WimRecord | None:
    """The record if the value is plainly valid, else None (the model decides)."""
    if len(value.translate(None, _UNPLAIN)) != len(value):
        return None
    try:
        s = _WIM.decode(value)
    except msgspec.DecodeError:  # ValidationError is one
        return None
    ts = _timestamp(s.ts)
    if ts is None:
        return None
    weights, spacings, count, gross = (
        s.axle_weights_kg,
        s.axle_spacings_mm,
        s.axle_count,
        s.gross_weight_kg,
    )
    # WimRecord._consistent: the model says why
    if len(weights) != count or (spacings and len(spacings) != count - 1):
        return None
    if abs(sum(weights) - gross) > max(50, gross // 100):
        return None
    fields = msgspec.structs.asdict(s)
    fields["ts"] = ts
    return _model(WimRecord, fields, _WIM_DEFAULTS)


def _timestamp(text: str) -> dt.datetime | None:
    if _TS.fullmatch(text) is None:
        return None
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:  # e.g. 30 February: the model says so
        return None
    return ts if in_range(ts) else None


_new, _set = object.__new__, object.__setattr__


def _model(cls: type[M], fields: dict[str, Any], defaults: dict[str, Any]) -> M:
    """``cls`` with ``fields`` already validated, as the model's validation builds it: the
    fields given are the fields set, the absent ones take their defaults, no extra field."""
    given = set(fields)
    for name, default in defaults.items():
        if fields[name] is UNSET:
            given.discard(name)
            fields[name] = default() if default is list else default
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", given)
    _set(obj, "__pydantic_extra__", {})
    _set(obj, "__pydantic_private__", None)
    return obj
