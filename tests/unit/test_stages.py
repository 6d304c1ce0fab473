"""The stages as pure batch functions, fed in memory: no broker, no database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from detectors import DetectionStage
from events import AnprCapture, Detection, Lead, Violation, WimRecord
from events.clock import fixed_clock
from events.stage import Incoming
from offsite.config import load_baselines, load_registry
from rules import RulesStage

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
BASELINES = {"national": ROOT / "configs" / "baselines" / "national.yaml"}
TZ = dt.timezone(dt.timedelta(hours=8))
DECIDED = fixed_clock(dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ))  # the day after the passes


def record(rid: str, gross: int, s: float = 0, **kw: object) -> WimRecord:
    """A 6-axle combination at G312 (class 2 device, certificate valid 2026-01-15…2027-01-14)."""
    steer = 6_500  # a steer axle on single tyres carries at most 7,000 kg (GB 1589)
    base = (gross - steer) // 5
    fields = dict(
        record_id=rid, site_id="G312-K1035-E", device_id="WIM-G312-1035", lane=1,
        ts=dt.datetime(2026, 11, 22, 8, 0, tzinfo=TZ) + dt.timedelta(seconds=s), speed_kmh=50.0,
        axle_count=6, axle_weights_kg=[steer] + [base] * 4 + [gross - steer - 4 * base],
        axle_spacings_mm=[3200, 1350, 7000, 1310, 1310], gross_weight_kg=gross,
        vehicle_kind="combination", drive_axles=2,
    )  # fmt: skip
    fields.update(kw)
    return WimRecord(**fields)  # type: ignore[arg-type]


def capture(cid: str, s: float, plate: str | None = "湘A12345", conf: float = 0.97) -> AnprCapture:
    return AnprCapture(
        capture_id=cid, site_id="G312-K1035-E", camera_id="CAM-G312-1035", lane=1,
        ts=dt.datetime(2026, 11, 22, 8, 0, tzinfo=TZ) + dt.timedelta(seconds=s),
        plate=plate, plate_color="yellow", confidence=conf,
    )  # fmt: skip


def incoming(items: list) -> list[Incoming]:
    out = []
    for off, item in enumerate(items):
        topic = "road.wim" if isinstance(item, WimRecord) else "road.anpr"
        value = item if isinstance(item, bytes) else item.to_json()
        out.append(
            Incoming(topic if not isinstance(item, bytes) else "road.wim", 0, off, None, value)
        )
    return out


async def detect(items: list) -> tuple[list[Detection], list[dict]]:
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    res = await stage.process(incoming(items))
    flushed = await stage.idle()
    outs = res.out + flushed.out
    dets = [Detection.model_validate_json(o.value) for o in outs if o.topic == "detections"]
    return dets, [json.loads(d.value) for d in res.dead]


async def test_overloaded_pass_with_plate_is_enforceable_and_legal_pass_is_silent() -> None:
    # 52,000 kg at class 2: tolerance ⌈1,040⌉ → 50,960 − 49,000 = 1,960 kg over
    dets, dead = await detect([record("a", 52_000), capture("c1", 0.1), record("b", 48_000, 10, axle_weights_kg=[6_800, 8_700, 8_700, 7_900, 7_900, 8_000]),
                               capture("c2", 10.1, plate="湘B00001")])  # fmt: skip
    assert dead == []
    assert [(d.record_id, d.plate, d.tolerance_kg, d.overload_kg, d.enforceable) for d in dets] == [
        ("a", "湘A12345", 1_040, 1_960, True)
    ]
    assert dets[0].certificate_number == "湘计检(2026)WIM-0312" and dets[0].wim["record_id"] == "a"


async def test_unfit_passes_are_kept_but_not_enforceable() -> None:
    dets, _ = await detect([
        record("flag", 60_000, 0, flags=["straddle"]), capture("c1", 0.1),
        record("nocap", 60_000, 10),
        record("unread", 60_000, 20), capture("c3", 20.1, plate=None, conf=0.3),
        record("lowconf", 60_000, 30), capture("c4", 30.1, conf=0.6),
        record("later", 60_000, 400, ts=dt.datetime(2027, 1, 15, 8, 0, tzinfo=TZ)),
    ])  # fmt: skip
    reasons = {d.record_id: (d.enforceable, d.plate_status, d.reasons) for d in dets}
    assert reasons == {
        "flag": (False, "read", ["flag:straddle"]),
        "nocap": (False, "no_capture", ["plate:no_capture"]),
        "unread": (False, "unreadable", ["plate:unreadable"]),
        "lowconf": (False, "low_confidence", ["plate:low_confidence"]),
        # the device's certificate ran out on 2027-01-14
        "later": (False, "no_capture", ["certificate_invalid_on_pass_date", "plate:no_capture"]),
    }


async def test_bad_messages_become_dead_letters_with_reasons() -> None:
    good = record("g", 60_000)
    dets, dead = await detect([
        b'{"record_id": "x", "site_id": ',
        record("u", 60_000, site_id="NOPE"),
        record("d", 60_000, device_id="CAM-G312-1035"),
        record("l", 60_000, lane=9),
        good, capture("c", 0.05),
    ])  # fmt: skip
    assert [d.record_id for d in dets] == ["g"]
    assert [d["offset"] for d in dead] == [0, 1, 2, 3]
    assert dead[0]["reason"].startswith("invalid JSON")
    assert "unknown site 'NOPE'" in dead[1]["reason"]
    assert "is not a wim device of site G312-K1035-E" in dead[2]["reason"]
    assert "has 2 lanes, got lane 9" in dead[3]["reason"]
    assert dead[0]["value"] == '{"record_id": "x", "site_id": '


async def test_rules_stage_fines_enforceable_and_reviews_the_rest() -> None:
    dets, _ = await detect([record("a", 56_000), capture("c1", 0.1), record("b", 56_000, 10)])
    stage = RulesStage(load_baselines(BASELINES), REGISTRY, clock=DECIDED)
    res = await stage.process([Incoming("detections", 0, i, None, d.to_json()) for i, d in enumerate(dets)]
                              + [Incoming("detections", 0, 9, None, b"{}")])  # fmt: skip
    vs = [Violation.model_validate_json(o.value) for o in res.out]
    # 56,000 − ⌈1,120⌉ − 49,000 = 5,880 kg over → 5 full tonnes × 500
    assert [(v.record_id, v.outcome, v.fine_cny, v.tier) for v in vs] == [
        ("a", "fine", 2_500, "art43-2-per-tonne"),
        ("b", "review", None, "review"),
    ]
    assert "第四十三条第一款第(二)项" in vs[0].penalty_basis and vs[0].rounding == "down"
    assert len(res.dead) == 1 and json.loads(res.dead[0].value)["topic"] == "detections"


async def test_a_site_not_in_enforcement_is_not_admissible() -> None:
    dets, _ = await detect([record("a", 56_000), capture("c1", 0.1)])
    data = REGISTRY.model_dump()
    for s in data["sites"]:
        if s["id"] == "G312-K1035-E":
            s["publicity"] = {**s["publicity"], "enforced_from": None}
    unannounced = type(REGISTRY).model_validate(data)
    stage = RulesStage(load_baselines(BASELINES), unannounced, clock=DECIDED)
    res = await stage.process([Incoming("detections", 0, 0, None, dets[0].to_json())])
    v = Violation.model_validate_json(res.out[0].value)
    assert (v.outcome, v.fine_cny) == ("review", None)
    assert [r.split(":")[0] for r in v.reasons if r.startswith("site_")] == ["site_not_enforced"]


async def test_tailgating_by_gap_and_speed_outside_the_device_range() -> None:
    # A: 16,000 mm at 36 km/h leaves the sensors 16,000 × 3.6 / 36 = 1,600 ms after its front.
    # B 2.5 s behind A: gap 900 ms < 1 s → tailgating. C 2.6 s behind B's front... see below.
    lead = dict(length_mm=16_000, speed_kmh=36.0)
    dets, _ = await detect([
        record("A", 60_000, 0, **lead), capture("cA", 0.05),
        record("B", 60_000, 2.5, length_mm=16_000, speed_kmh=36.0), capture("cB", 2.55),
        # C: 2.6 s after B's front, B's rear left at 1.6 s → gap exactly 1,000 ms: not flagged
        record("C", 60_000, 5.1, length_mm=12_000, speed_kmh=100.0), capture("cC", 5.15),
        record("D", 60_000, 60, speed_kmh=101.0), capture("cD", 60.05),
    ])  # fmt: skip
    got = {d.record_id: (d.enforceable, d.reasons) for d in dets}
    assert got["A"] == (True, [])
    assert got["B"] == (False, ["tailgating: 0.90 s behind the vehicle before it"])
    assert got["C"] == (True, [])  # 100 km/h is still inside the device's 5–100 km/h
    assert got["D"] == (False, ["speed 101 km/h outside the device's 5–100 km/h"])


async def test_certificate_valid_through_its_last_day_in_local_time() -> None:
    # WIM-G312-1035's certificate is valid until 2027-01-14 (inclusive)
    last = dt.datetime(2027, 1, 14, 23, 59, 59, tzinfo=TZ)
    after = dt.datetime(2027, 1, 15, 0, 0, 0, tzinfo=TZ)
    dets, _ = await detect([
        record("last", 60_000, ts=last), record("after", 60_000, ts=after),
    ])  # fmt: skip
    got = {d.record_id: "certificate_invalid_on_pass_date" in d.reasons for d in dets}
    assert got == {"last": False, "after": True}


async def test_heavy_vehicle_without_a_readable_plate_is_a_police_lead() -> None:
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    items = [
        record("hidden", 30_000, 0), capture("c1", 0.1, plate=None, conf=0.3),
        record("nocam", 30_000, 10),
        record("light", 11_999, 20, axle_count=2, axle_weights_kg=[5_000, 6_999],
               axle_spacings_mm=[4_700], vehicle_kind="rigid", drive_axles=None),
        record("read", 30_000, 30), capture("c4", 30.1),
    ]  # fmt: skip
    res = await stage.process(incoming(items))
    leads = [Lead.model_validate_json(o.value) for o in res.out + (await stage.idle()).out
             if o.topic == "leads"]  # fmt: skip
    got = {x.record_id: (x.kind, x.score, [s.capture_id for s in x.sightings]) for x in leads}
    assert got == {"hidden": ("plate_missing", 0.9, ["c1"]), "nocam": ("plate_missing", 0.5, [])}


async def test_axle_group_over_its_limit_within_the_gross_is_its_own_detection() -> None:
    # 6 axles, gross 40,000 (limit 49,000): steer 6,500; tandem (axles 2–3, 1,350 mm apart:
    # 18,000 kg limit) carries 10,000 + 10,200 = 20,200 kg → over by 2,200; class 2 margin on
    # the group load: ⌈20,200 × 2 %⌉ = 404 → 1,796 kg over after the margin.
    rec = record("tandem", 40_000, axle_weights_kg=[6_500, 10_000, 10_200, 4_400, 4_400, 4_500])
    dets, _ = await detect([rec, capture("c1", 0.1)])
    assert [
        (d.detector, d.measured_kg, d.limit_kg, d.tolerance_kg, d.overload_kg) for d in dets
    ] == [("overload.axle", 20_200, 18_000, 404, 1_796)]
    assert dets[0].axle_group == {"first_axle": 2, "kind": 2, "spacing_mm": 1_350,
                                  "limit_kg": 18_000, "load_kg": 20_200, "over_kg": 2_200}  # fmt: skip
    stage = RulesStage(load_baselines(BASELINES), REGISTRY, clock=DECIDED)
    res = await stage.process([Incoming("detections", 0, 0, None, dets[0].to_json())])
    v = Violation.model_validate_json(res.out[0].value)
    assert (v.violation_code, v.outcome, v.fine_cny) == ("road.overload.axle", "review", None)
