"""The detection stage's fast decode (detectors.decode) against its reference twin, the pydantic
model: what the fast path accepts the model accepts as an equal object, and what it leaves to the
model is decided by the model (so a dead letter's reason is the model's, word for word)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from detectors import decode
from events import ROAD_ANPR, ROAD_WIM, AnprCapture, WimRecord
from events.stage import Incoming, validation_reason
from tests.unit.test_detectors_axles import stage_sends
from tests.unit.test_poison_property import CAPTURE, EXAMPLES, WIM, variant, weighed

SHA = "ab" * 32
IMAGE = {"role": "plate", "uri": "blob://x", "sha256": SHA, "width": 120, "height": 90}
# how a date may be written: the fast path reads RFC 3339 with up to 6 digits of a second;
# the rest (7 digits, which msgspec would round and pydantic cuts, a space, no seconds, a
# basic offset, lower case) is the model's
STAMPS = [
    "2026-11-22T08:00:05+08:00", "2026-11-22T08:00:05.345+08:00", "2026-11-22T08:00:05Z",
    "2026-11-22T08:00:05.9999995Z", "2026-11-22T08:00:05.1234567+08:00", "2026-11-22 08:00:05Z",
    "2026-11-22T08:00Z", "2026-11-22T08:00:05+0800", "2026-11-22t08:00:05z", "2026-02-30T08:00:05Z",
    "2026-11-22T08:00:05-00:00", "2026-11-22T08:00:05+23:59", "2026-11-22T08:00:05+24:00",
    "1999-12-31T23:59:59-01:00", "2099-12-31T23:59:59-01:00", "2026-11-22T08:00:60Z",
    "2026-11-22T08:00:05", "20261122T080005Z", "2026-W47-1T08:00:05Z", "2026-11-22T08:00:05,5Z",
    "2026-11-22T08Z", "2026-11-22T08:00:05+08:00:30", "2026-11-22", "2026-11-22T08:00:05.Z",
]  # fmt: skip
# what else a device may send: figures as floats or booleans, unknown fields, escapes
ODD = [
    {"drive_axles": True}, {"drive_axles": 1.0}, {"lane": 1.0}, {"speed_kmh": 50},
    {"extra": 1}, {"plate": "湘A\\u00001234"}, {"plate": "湘A\u00851234"}, {"plate": "湘A\u007f"},
    {"plate": "湘A\\n"}, {"flags": ["lane_change"]}, {"vehicle_type": "truck"},
    {"images": [IMAGE]}, {"images": [IMAGE | {"extra": 1}]}, {"images": [IMAGE | {"width": 0}]},
    {"images": [IMAGE | {"sha256": SHA.upper()}]}, {"plate_color": "purple"}, {"confidence": 1},
    {"gross_weight_kg": 60_700}, {"gross_weight_kg": 59_300}, {"gross_weight_kg": 60_600},
    {"axle_count": 5}, {"axle_spacings_mm": [1_300]}, {"axle_spacings_mm": []},
]  # fmt: skip


@st.composite
def edited(draw: st.DrawFn, good: bytes) -> bytes:
    """A good message with a date written another way and some odd fields, or a field left out."""
    doc = json.loads(good) | {"ts": draw(st.sampled_from(STAMPS))}
    for odd in draw(st.lists(st.sampled_from(ODD), max_size=2)):
        doc |= odd
    if draw(st.booleans()):
        doc.pop(draw(st.sampled_from(sorted(doc))))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return text.replace("\\\\u0000", "\\u0000").replace("\\\\n", "\\n").encode()


def same(fast: BaseModel, model: BaseModel) -> None:
    assert fast == model
    assert fast.model_fields_set == model.model_fields_set
    assert fast.model_dump(mode="json") == model.model_dump(mode="json")
    assert fast.model_dump_json() == model.model_dump_json()
    assert fast.ts.utcoffset() == model.ts.utcoffset()  # type: ignore[attr-defined]


def twin(value: bytes, fast_path: object, full: object, model: type[BaseModel]) -> None:
    fast = fast_path(value)  # type: ignore[operator]
    try:
        expected = model.model_validate_json(value)
    except ValidationError as exc:
        assert fast is None, f"the fast path took what the model refuses: {exc}"
        with pytest.raises(ValidationError) as got:
            full(value)  # type: ignore[operator]
        assert validation_reason(got.value) == validation_reason(exc)
        return
    if fast is not None:
        same(fast, expected)
    same(full(value), expected)  # type: ignore[operator]


@EXAMPLES
@given(variant(ROAD_WIM, WIM) | weighed() | edited(WIM))
def test_the_fast_wim_decode_agrees_with_the_model(value: bytes) -> None:
    twin(value, decode.fast_wim, decode.wim_record, WimRecord)


@EXAMPLES
@given(variant(ROAD_ANPR, CAPTURE) | edited(CAPTURE))
def test_the_fast_capture_decode_agrees_with_the_model(value: bytes) -> None:
    twin(value, decode.fast_capture, decode.anpr_capture, AnprCapture)


@pytest.mark.parametrize("good", [WIM, CAPTURE], ids=["wim", "capture"])
@pytest.mark.parametrize("edit", [{"ts": ts} for ts in STAMPS] + ODD, ids=str)
def test_each_odd_value_is_decided_as_the_model_decides(good: bytes, edit: dict) -> None:
    value = json.dumps(json.loads(good) | edit, ensure_ascii=False)
    value = value.replace("\\\\u0000", "\\u0000").replace("\\\\n", "\\n")
    if good is WIM:
        twin(value.encode(), decode.fast_wim, decode.wim_record, WimRecord)
    else:
        twin(value.encode(), decode.fast_capture, decode.anpr_capture, AnprCapture)


def test_the_fast_path_takes_what_devices_send() -> None:
    # the speed comes from the plain records: they must not all fall back to the model
    capture = json.loads(CAPTURE) | {"images": [IMAGE]}
    assert decode.fast_wim(WIM) is not None
    assert decode.fast_capture(json.dumps(capture, ensure_ascii=False).encode()) is not None


async def test_the_stage_says_the_same_with_the_model_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # simulated traffic and malformed messages through the whole stage: every message it sends
    # (detections, leads, dead letters with their reasons), fast decode and the model's
    from offsite.config import load_registry
    from sim import SimulationConfig, simulate

    registry = load_registry(Path(__file__).resolve().parents[2] / "configs" / "sites.yaml")
    passes = simulate(registry, SimulationConfig(vehicles=400, seed=4, images=False))
    values = [(ROAD_WIM, p.wim.to_json()) for p in passes]
    values += [(ROAD_ANPR, p.capture.to_json()) for p in passes if p.capture is not None]
    bad = [b'{"record_id": 1}', b"not json", WIM.replace(b'"lane":1', b'"lane":17'),
           WIM.replace(b'"ts":"2026', b'"ts":"1999'), CAPTURE.replace(b"0.97", b"1.5")]  # fmt: skip
    values[100:100] = [(ROAD_WIM, v) for v in bad] + [(ROAD_ANPR, v) for v in bad]
    msgs = [Incoming(t, 0, i, None, v) for i, (t, v) in enumerate(values)]

    fast = await stage_sends(registry, msgs)
    monkeypatch.setattr(decode, "wim_record", WimRecord.model_validate_json)
    monkeypatch.setattr(decode, "anpr_capture", AnprCapture.model_validate_json)
    assert await stage_sends(registry, msgs) == fast
    assert sum(t == "road.wim.dlq" for t, _, _ in fast) == len(bad)
    assert sum(t == "road.anpr.dlq" for t, _, _ in fast) == len(bad)
    assert any(t == "detections" for t, _, _ in fast)
