"""The detection stage's fast decode of WIM records (detectors.decode) against its reference
twin, the pydantic model: what the fast path accepts the model accepts as an equal object, and
what it leaves to the model is decided by the model (so a dead letter's reason is the model's,
word for word)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from detectors import decode
from events import ROAD_ANPR, ROAD_WIM, WimRecord
from events.stage import Incoming, validation_reason
from tests.unit.test_detectors_axles import stage_sends
from tests.unit.test_poison_property import CAPTURE, EXAMPLES, WIM, variant, weighed

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
    {"plate": "湘A\\n"}, {"flags": ["lane_change"]}, {"flags": ["x" * 65]}, {"plate": "湘" * 17},
    {"gross_weight_kg": 60_700}, {"gross_weight_kg": 59_300}, {"gross_weight_kg": 60_600},
    {"axle_count": 5}, {"axle_spacings_mm": [1_300]}, {"axle_spacings_mm": []},
]  # fmt: skip


@st.composite
def edited(draw: st.DrawFn) -> bytes:
    """A good record with a date written another way and some odd fields, or a field left out."""
    doc = json.loads(WIM) | {"ts": draw(st.sampled_from(STAMPS))}
    for odd in draw(st.lists(st.sampled_from(ODD), max_size=2)):
        doc |= odd
    if draw(st.booleans()):
        doc.pop(draw(st.sampled_from(sorted(doc))))
    return encoded(doc, ascii=draw(st.booleans()))


def encoded(doc: dict, ascii: bool) -> bytes:
    """``doc`` as JSON, the escapes ODD spells out (a NUL, a newline) written as escapes."""
    text = json.dumps(doc, ensure_ascii=ascii)
    return text.replace("\\\\u0000", "\\u0000").replace("\\\\n", "\\n").encode()


def agree(value: bytes) -> None:
    """The fast path takes only what the model takes, as an equal object (fields set too); what
    it leaves, the model decides, with its own reason."""
    fast = decode.fast_wim(value)
    try:
        expected = WimRecord.model_validate_json(value)
    except ValidationError as exc:
        assert fast is None, f"the fast path took what the model refuses: {exc}"
        with pytest.raises(ValidationError) as got:
            decode.wim_record(value)
        assert validation_reason(got.value) == validation_reason(exc)
        return
    for got in (fast, decode.wim_record(value)):
        if got is None:
            continue
        assert got == expected
        assert got.model_fields_set == expected.model_fields_set
        assert got.model_dump_json() == expected.model_dump_json()
        assert got.model_dump(mode="json") == expected.model_dump(mode="json")
        assert got.ts.utcoffset() == expected.ts.utcoffset()


@EXAMPLES
@given(variant(ROAD_WIM, WIM) | weighed() | edited())
def test_the_fast_wim_decode_agrees_with_the_model(value: bytes) -> None:
    agree(value)


@pytest.mark.parametrize("edit", [{"ts": ts} for ts in STAMPS] + ODD, ids=str)
def test_each_odd_value_is_decided_as_the_model_decides(edit: dict) -> None:
    agree(encoded(json.loads(WIM) | edit, ascii=False))


def test_the_fast_path_takes_what_devices_send() -> None:
    # the speed comes from the plain records: they must not all fall back to the model
    assert decode.fast_wim(WIM) is not None
    assert decode.fast_wim(WIM.replace(b'"plate":null', '"plate":"湘A12345"'.encode())) is not None


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
    assert await stage_sends(registry, msgs) == fast
    assert sum(t == "road.wim.dlq" for t, _, _ in fast) == len(bad)
    assert sum(t == "road.anpr.dlq" for t, _, _ in fast) == len(bad)
    assert any(t == "detections" for t, _, _ in fast)
