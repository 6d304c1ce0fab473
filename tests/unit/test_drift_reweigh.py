"""Static reweighs (精检) in the drift watch (issue #29 must-have 5): a reweigh on a site's
certified static scale is matched to the WIM weighing of the same vehicle just before it, and
WIM/static − 1 feeds a CUSUM of its own; a scale that drifts is caught by its reweighs alone,
and a steady one raises no alarm over a simulated month."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from detectors import DetectionStage
from detectors.drift import DriftRules, DriftWatch, drift_table, match_reweighs
from detectors.plates import normalise
from events import CalibrationCertificate, DeadLetter, Detection, DeviceAlert, Reweigh, WimRecord
from events.stage import Incoming
from sim import SimulationConfig, simulate
from tests.unit.test_stages import REGISTRY, TZ, capture, incoming, record

SITE, DEVICE = "G312-K1035-E", "WIM-G312-1035"
T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=TZ)  # record() and capture() count from here
SCALE = CalibrationCertificate(number="JJG539-2026-0311", issuer="湖南省计量测试检定研究院",
                               valid_from=dt.date(2026, 3, 1), valid_until=dt.date(2027, 2, 28))  # fmt: skip


def reweigh(rid: str, plate: str, ts: dt.datetime, gross: int, **kw: object) -> Reweigh:
    fields = dict(record_id=rid, site_id=SITE, scale_id="SCALE-G312-1", plate=plate, ts=ts,
                  gross_weight_kg=gross, axle_weights_kg=[gross], scale_interval_kg=20,
                  scale_certificate=SCALE)  # fmt: skip
    fields.update(kw)
    return Reweigh(**fields)  # type: ignore[arg-type]


def test_the_static_scales_error_is_its_class_iii_mpe_in_service() -> None:
    """OIML R76-1:2006 §3.5.1 Table 6, class III: ±0.5 e up to 500 e, ±1 e up to 2,000 e,
    ±1.5 e up to 10,000 e on verification; §3.5.2: twice that in service. e = 20 kg."""
    assert reweigh("a", "湘A12345", T0, 9_000).scale_mpe_kg() == 20  # 450 e
    assert reweigh("a", "湘A12345", T0, 30_000).scale_mpe_kg() == 40  # 1,500 e
    assert reweigh("a", "湘A12345", T0, 49_000).scale_mpe_kg() == 60  # 2,450 e


def test_a_reweigh_is_matched_to_the_latest_weighing_of_its_vehicle_before_it() -> None:
    t = T0 + dt.timedelta(hours=1)

    def w(rid: str, s: float, site: str = SITE) -> WimRecord:
        return record(rid, 45_000, 3600 + s, site_id=site)

    weighings = [
        ("湘A12345", w("early", -600)), ("湘A12345", w("chosen", -60)),
        ("湘A12345", w("after", 10)), ("湘B00001", w("other-plate", -30)),
        ("湘A12345", w("other-site", -20, "X-SITE")), ("湘A12345", w("too-old", -1_801)),
    ]  # fmt: skip
    first = reweigh("rw1", "湘A·12345", t, 43_300)  # the static station writes a separator
    again = reweigh("rw2", "湘A12345", t + dt.timedelta(seconds=5), 43_280)  # weighed twice
    later = reweigh("rw3", "湘A12345", t + dt.timedelta(seconds=120), 43_290)
    pairs = match_reweighs([later, again, first], weighings, 1_800)
    assert [(rw.record_id, r.record_id) for rw, r in pairs] == [("rw1", "chosen"), ("rw3", "after")]
    # the same whatever order either input comes in
    shuffled = weighings[:]
    random.Random(3).shuffle(shuffled)
    assert match_reweighs([first, later, again], shuffled, 1_800) == pairs
    # a tie in time: the greater record id, in any order
    tie = [("湘A12345", w("b", -60)), ("湘A12345", w("a", -60))]
    assert [r.record_id for _, r in match_reweighs([first], tie, 1_800)] == ["b"]
    assert [r.record_id for _, r in match_reweighs([first], tie[::-1], 1_800)] == ["b"]


def reweighed_traffic(drift_hours: float | None) -> tuple[list, list[Reweigh], dt.datetime]:
    """A simulated month at G312 (a truck every ~6.5 min per site); one in ten of its heavy
    goods vehicles with a plate read is reweighed ten minutes later on the static scale, at
    its true gross; from ``drift_hours`` the WIM device reads 4 % heavy."""
    cfg = SimulationConfig(vehicles=20_000, images=False, mean_headway_s=390.0)
    if drift_hours is not None:
        cfg = dataclasses.replace(cfg, drift_device=DEVICE,
                                  drift_from=cfg.start + dt.timedelta(hours=drift_hours))  # fmt: skip
    passes = simulate(REGISTRY, cfg)
    heavy = [p for p in passes if p.wim.device_id == DEVICE and p.truth.true_gross_kg > 12_000
             and p.capture is not None and p.capture.plate]  # fmt: skip
    reweighs = [
        reweigh(f"rw{i}", p.truth.plate, p.wim.ts + dt.timedelta(minutes=10), p.truth.true_gross_kg)
        for i, p in enumerate(heavy) if i % 10 == 0
    ]  # fmt: skip
    assert passes[-1].wim.ts - passes[0].wim.ts > dt.timedelta(days=28)  # a month
    return passes, reweighs, cfg.start


def pairs_of(passes: list, reweighs: list[Reweigh]) -> list[tuple[Reweigh, WimRecord]]:
    weighings = [(normalise(p.capture.plate) or "", p.wim) for p in passes if p.capture]
    return match_reweighs(reweighs, weighings, DriftRules().reweigh_window_s)


def test_a_steady_scale_raises_no_alarm_from_a_month_of_reweighs() -> None:
    passes, reweighs, _ = reweighed_traffic(None)
    watch = DriftWatch(REGISTRY)
    pairs = pairs_of(passes, reweighs)
    assert len(pairs) > 300  # ten and more a day
    assert watch.reweighed(pairs) == []
    assert not any(watch.blocked(p.wim) for p in passes)
    assert all(abs(s.rw_mean_pct) < 0.5 for s in watch.states.values())


def test_a_drift_seen_by_reweighs_alone_raises_the_alarm() -> None:
    """No steering-axle statistic here: only the reweighs are fed, and they catch +4 %."""
    passes, reweighs, start = reweighed_traffic(24 * 10)
    watch = DriftWatch(REGISTRY)
    raised = watch.reweighed(pairs_of(passes, reweighs))
    assert {(r.device_id, r.lane) for r, _ in raised} == {(DEVICE, 1), (DEVICE, 2)}
    began = start + dt.timedelta(hours=24 * 10)
    for _, state in raised:
        assert state.rw_alarm_at is not None and state.rw_pct is not None
        assert dt.timedelta(0) < state.rw_alarm_at - began < dt.timedelta(days=2)
        assert 2.0 < state.rw_pct < 6.0 and state.alarm_at is None  # the steering axle not fed
    after = [p.wim for p in passes if p.wim.device_id == DEVICE
             and p.wim.ts >= max(s.rw_alarm_at for _, s in raised if s.rw_alarm_at)]  # fmt: skip
    assert after and all("精检" in (watch.blocked(r) or "") for r in after)  # none enforced
    table = "\n".join(drift_table(watch.states))
    assert "reweighs" in table and "ALARM +" in table and "(reweighs)" in table


async def test_the_detection_stage_takes_reweighs_from_their_topic() -> None:
    """road.reweigh through the detection stage: six trucks reweighed 4 % lighter than the WIM
    device weighed them raise a 'drift' alert, and a later 52,000 kg pass (an enforceable
    overload on a good scale, test_stages) is not enforceable, with the reweighs' figure; a
    reweigh at an unknown site or on a scale whose certificate has expired is a dead letter."""
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    items: list = []
    for i in range(6):
        items += [record(f"w{i}", 45_000, i * 600), capture(f"c{i}", i * 600 + 0.1, f"湘A1234{i}")]
    items += [record("late", 52_000, 6 * 600 + 60), capture("cl", 6 * 600 + 60.1)]
    msgs = incoming(items)
    bad = [reweigh("rw-x", "湘A12340", T0, 43_000, site_id="NOWHERE"),
           reweigh("rw-old", "湘A12340", T0, 43_000, scale_certificate=SCALE.model_copy(
               update={"valid_until": dt.date(2026, 6, 30)}))]  # fmt: skip
    good = [reweigh(f"rw{i}", f"湘A1234{i}", T0 + dt.timedelta(seconds=i * 600 + 300), 43_269)
            for i in range(6)]  # 45,000 / 43,269 = 1.04  # fmt: skip
    msgs += [Incoming("road.reweigh", 0, k, None, rw.to_json()) for k, rw in enumerate(bad + good)]
    res = await stage.process(msgs)
    flushed = await stage.idle()
    out = res.out + flushed.out
    dead = [DeadLetter.model_validate_json(o.value) for o in res.dead]
    assert sorted(d.reason.split(":")[0] for d in dead) == ["scale_certificate", "site_id"]
    alerts = [DeviceAlert.model_validate_json(o.value) for o in out if o.topic == "alerts"]
    assert [(a.condition, a.device_id) for a in alerts] == [("drift", DEVICE)]
    assert "精检" in alerts[0].reason
    (det,) = [Detection.model_validate_json(o.value) for o in out if o.topic == "detections"]
    assert det.record_id == "late" and not det.enforceable
    assert any(r.startswith("drift: ") and "精检" in r for r in det.reasons)


async def test_the_stage_keeps_only_the_weighings_a_reweigh_may_still_need() -> None:
    """Most sites have no static scale: their weighings are kept 30 min (the matching window)
    behind the site's latest, not for ever."""
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    items: list = []
    for i in range(12):  # a truck every 10 min for two hours
        items += [
            record(f"w{i}", 45_000, i * 600),
            capture(f"c{i}", i * 600 + 0.1, f"湘A1234{i % 10}"),
        ]
    await stage.process(incoming(items))
    await stage.idle()
    kept = sorted(r.record_id for _, r in stage.weighed[SITE])
    assert kept == ["w10", "w11", "w8", "w9"]  # 80, 90, 100 and 110 min: within 30 min of 110
    # the last batch read again (a crash before its offsets were committed): each kept once
    await stage.process(incoming(items)[-4:])
    await stage.idle()
    assert sorted(r.record_id for _, r in stage.weighed[SITE]) == kept


async def test_a_reweigh_waiting_for_its_sites_weighings_holds_its_offset() -> None:
    """A reweigh read before any later weighing of its site waits in the stage; its offset is
    held (not committed past), so a crash reads it again instead of losing it (issue #27)."""
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    rw = reweigh("rw-wait", "湘A12340", T0 + dt.timedelta(hours=1), 43_000)
    await stage.process([Incoming("road.reweigh", 0, 7, None, rw.to_json())])
    assert stage.held().get(("road.reweigh", 0)) == 7
