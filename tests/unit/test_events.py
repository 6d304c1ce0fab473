"""Message contracts: what is accepted, what is rejected and why, and the exported schemas."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from events import WimRecord, schemas
from events.models import EARLIEST, LATEST, in_range
from events.stage import validation_reason

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "record_id": "r1", "site_id": "G107-K1520-S", "device_id": "WIM-G107-1520", "lane": 1,
    "ts": "2026-11-22T08:15:02.123+08:00", "speed_kmh": 52.5, "axle_count": 2,
    "axle_weights_kg": [6000, 13000], "axle_spacings_mm": [4700], "gross_weight_kg": 19000,
}  # fmt: skip


def reason(**changes: object) -> str:
    with pytest.raises(ValidationError) as exc:
        WimRecord.model_validate_json(json.dumps({**GOOD, **changes}))
    return validation_reason(exc.value)


def test_good_record_keeps_unknown_fields() -> None:
    rec = WimRecord.model_validate_json(json.dumps({**GOOD, "vendor_x": 7}))
    assert rec.gross_weight_kg == 19000 and rec.model_dump()["vendor_x"] == 7


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"gross_weight_kg": "19000"}, "gross_weight_kg: Input should be a valid integer"),
        ({"gross_weight_kg": -5}, "gross_weight_kg: Input should be greater than 0"),
        ({"axle_weights_kg": [-1000, 20000]}, "axle_weights_kg.0: Input should be greater than"),
        # issue #28 rows 1 and 7: what no device can send, refused with the reason
        (
            {"axle_weights_kg": [10**30, 10**30], "gross_weight_kg": 2 * 10**30},
            "axle_weights_kg.0: Input should be less than or equal to 100000",
        ),
        (
            {"axle_weights_kg": [10**12, 12 * 10**11], "gross_weight_kg": 22 * 10**11},
            "gross_weight_kg: Input should be less than or equal to 2000000",
        ),
        (
            {"ts": "0001-01-01T00:00:00+08:00"},
            "ts: Value error, 0001-01-01T00:00:00+08:00 is outside 2000–2099",
        ),
        ({"ts": "9999-12-31T23:59:59-08:00"}, "outside 2000–2099"),
        ({"ts": "9999-12-31T23:59:59+08:00"}, "outside 2000–2099"),
        ({"speed_kmh": float("nan")}, "speed_kmh: Input should be a finite number"),
        ({"vendor_x": {"a": [1, float("nan")]}}, "vendor_x.a.1: nan is not a number JSON"),
        ({"lane": 99}, "lane: Input should be less than or equal to 16"),
        ({"record_id": "r\x001"}, "record_id: String should match pattern"),
        ({"record_id": "r" * 30_000}, "record_id: String should have at most 128 characters"),
        ({"plate": "湘A\u00001234"}, "plate: String should match pattern"),
        ({"plate": "湘" * 2_700}, "plate: String should have at most 16 characters"),
        ({"site_id": "G107\n"}, "site_id: String should match pattern"),
        ({"vendor_note": "a\x00b"}, "vendor_note: a NUL character (U+0000) cannot be stored"),
        ({"axle_count": 3}, "axle_count is 3 but axle_weights_kg has 2 values"),
        ({"axle_spacings_mm": [4700, 1300]}, "axle_spacings_mm needs axle_count - 1 = 1 values"),
        ({"gross_weight_kg": 25000}, "disagrees with the sum of axle_weights_kg 19000"),
        ({"ts": "2026-11-22T08:15:02"}, "ts: Input should have timezone info"),
        ({"axle_count": 1, "axle_weights_kg": [5], "axle_spacings_mm": []}, "axle_count"),
    ],
)
def test_rejections_say_why(changes: dict, phrase: str) -> None:
    assert phrase in reason(**changes)


@given(
    st.datetimes(dt.datetime(1999, 1, 1), dt.datetime(2101, 12, 31)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
def test_the_fast_date_range_check_agrees_with_the_aware_comparison(
    local: dt.datetime, offset_min: int
) -> None:
    # its reference twin: the plain comparison of aware datetimes, at every UTC offset
    ts = local.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset_min)))
    assert in_range(ts) == (EARLIEST <= ts < LATEST)
    edge = EARLIEST.astimezone(ts.tzinfo)  # the first instant, seen from that offset
    assert in_range(edge) and not in_range(edge - dt.timedelta(microseconds=1))
    edge = LATEST.astimezone(ts.tzinfo)
    assert not in_range(edge) and in_range(edge - dt.timedelta(microseconds=1))


def test_missing_field_and_truncated_json() -> None:
    body = {k: v for k, v in GOOD.items() if k != "lane"}
    with pytest.raises(ValidationError) as exc:
        WimRecord.model_validate_json(json.dumps(body))
    assert validation_reason(exc.value) == "lane: Field required"
    with pytest.raises(ValidationError) as exc:
        WimRecord.model_validate_json(json.dumps(GOOD)[:40])
    assert validation_reason(exc.value).startswith("invalid JSON")


def test_exported_schemas_are_in_sync() -> None:
    for name, text in schemas().items():
        path = ROOT / "configs" / "schemas" / name
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: make schemas"


def test_the_waterway_inputs_are_made_whole_and_the_rest_with_the_setting() -> None:
    from offsite.kafka import partitions_of

    assert [partitions_of(n, 3) for n in ("water.ais", "t7.water.ais", "t7.water.camera",
                                          "t7.water.ais.raw")] == [1, 1, 1, 1]  # fmt: skip
    assert [partitions_of(n, 3) for n in ("t7.water.ais.dlq", "t7.road.wim", "t7.water.violations",
                                          "t7.xwater.ais")] == [3, 3, 3, 3]  # fmt: skip


def test_spacings_not_measured_are_an_empty_list() -> None:
    # station formats without spacings (ingest.formats: 治超 pass records) are mapped to no
    # spacings: the record is valid, its axle groups are not judged
    body = {k: v for k, v in GOOD.items() if k != "axle_spacings_mm"}
    assert WimRecord.model_validate_json(json.dumps(body)).axle_spacings_mm == []
