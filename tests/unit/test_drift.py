"""Drift watch (issue #29 must-have 5): a month of loaded tractors over a steady scale raises no
alarm; a scale that reads 4 % heavy from a given hour is caught, and from the alarm on none of
its weighings is enforced, until a calibration is recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from detectors import DetectionStage
from detectors.drift import DriftState, DriftWatch, decision_interval
from events import Detection, DeviceAlert, WimRecord
from sim import SimulationConfig, simulate
from sim.score import drift_line, drift_report
from tests.unit.test_stages import REGISTRY, TZ, capture, incoming, record

START = dt.datetime(2026, 9, 1, tzinfo=TZ)  # after the G312 device's calibration (2026-01-15)
PER_HOUR = 12  # loaded 5/6-axle tractors an hour in lane 1


def traffic(hours: int, drift_from: int | None = None, seed: int = 29) -> list[WimRecord]:
    """Loaded 6-axle tractors: steering axle N(6,500 kg, 300 kg) — the truck-to-truck spread of a
    steer axle on a tractor (the cargo sits on the drive and trailer axles) plus a class-2 scale's
    own scatter; from hour ``drift_from`` the scale reads every axle 4 % heavy."""
    rng = random.Random(seed)
    out = []
    for i in range(hours * PER_HOUR):
        s = i * 3600 / PER_HOUR
        gain = 1.04 if drift_from is not None and s >= drift_from * 3600 else 1.0
        steer = round(rng.gauss(6_500, 300) * gain)
        gross = round(rng.uniform(38_000, 48_000) * gain)
        r = record(f"r{i}", gross, s)
        base = (gross - steer) // 5
        out.append(r.model_copy(update={
            "ts": START + dt.timedelta(seconds=s), "gross_weight_kg": gross,
            "axle_weights_kg": [steer] + [base] * 4 + [gross - steer - 4 * base]}))  # fmt: skip
    return out


def test_the_decision_interval_meets_its_run_length() -> None:
    """Siegmund's approximation (Montgomery §9.1.4): with k = 0.5 and h = 5 the one-sided
    in-control ARL is ≈ 938 (Montgomery Table 9.3 gives 930 by the exact method), so the
    two-sided run length at h = 5 is about 469."""
    h = decision_interval(0.5, 469.0)
    assert 4.95 < h < 5.05


def test_a_steady_scale_raises_no_alarm_over_a_month() -> None:
    watch = DriftWatch(REGISTRY)
    month = traffic(24 * 30)
    assert watch.observe(month) == []
    assert not any(watch.blocked(r) for r in month)
    (state,) = watch.states.values()
    assert state.mean_kg is not None and abs(state.mean_kg - 6_500) < 60  # the reference


def test_a_drift_of_4_percent_is_caught_and_nothing_after_the_alarm_is_enforced() -> None:
    drift_hour = 24 * 10
    month = traffic(24 * 30, drift_from=drift_hour)
    watch = DriftWatch(REGISTRY)
    ((first, state),) = watch.observe(month)
    assert state.alarm_at is not None and state.drift_pct is not None
    began = START + dt.timedelta(hours=drift_hour)
    delay = state.alarm_at - began
    assert dt.timedelta(0) <= delay < dt.timedelta(hours=12), delay  # the delay is reported
    assert 2.0 < state.drift_pct < 6.0  # the estimated shift, near the 4 % applied
    blocked = [r for r in month if watch.blocked(r)]
    assert blocked and all(r.ts >= state.alarm_at for r in blocked)
    assert all(watch.blocked(r) for r in month if r.ts >= state.alarm_at)  # none enforced
    assert "drift: " in (watch.blocked(first) or "") and "%" in state.reason()
    # a calibration recorded after the alarm: enforcement resumes, a new reference starts
    device = REGISTRY.device("WIM-G312-1035")
    assert device is not None and device.certificate is not None
    recal = device.certificate.model_copy(
        update={"valid_from": state.alarm_at.date() + dt.timedelta(days=1)}
    )
    data = REGISTRY.model_dump()
    for d in data["devices"]:
        if d["id"] == device.id:
            d["certificate"] = recal.model_dump()
    watch.registry = type(REGISTRY).model_validate(data)
    later = [r for r in month if r.ts.date() >= recal.valid_from]
    assert later and not any(watch.blocked(r) for r in later)


def test_state_survives_a_dump_and_load() -> None:
    watch = DriftWatch(REGISTRY)
    watch.observe(traffic(24 * 12, drift_from=24 * 10))
    (state,) = watch.states.values()
    assert DriftState.load(state.dump()) == state


def test_a_batch_read_again_after_a_crash_is_not_counted_twice() -> None:
    """Issue #27 item 1: a worker that saved the states and died before committing its offsets
    (or lost its partitions then) has the batch read again from the last committed offset by
    whoever starts from the saved states. The states, the alarm and every weighing's verdict
    are those of a run without the crash: in the reference, in the watch, and just before the
    alarm, where the last weighing of the batch taken twice would raise the alarm on itself
    (before, the weighing at the lane's last time was taken again)."""
    history = traffic(24 * 12, drift_from=24 * 10)
    clean = DriftWatch(REGISTRY)
    ((alarmed, _),) = clean.observe(history)
    a = history.index(alarmed)

    def doubled_alarms(c: int) -> bool:  # record c taken twice would raise the alarm on itself
        watch = DriftWatch(REGISTRY)
        watch.observe(history[: c + 1])
        (state,), device = watch.states.values(), REGISTRY.device(history[c].device_id)
        assert device is not None and device.accuracy_class is not None
        return state.add(history[c], history[c].axle_weights_kg[0], device.accuracy_class,
                         watch.rules)  # fmt: skip

    near = next(c for c in range(a - 1, 0, -1) if doubled_alarms(c))
    assert a - near < 50  # the crash is just before the alarm of the clean run
    for crash in (100, 1_000, near):  # the reference is the first 200; then the CUSUM
        first = DriftWatch(REGISTRY)
        first.observe(history[: crash + 1])  # the batch history[crash - 40 : crash + 1]
        saved = {k: s.dump() for k, s in first.states.items()}
        again = DriftWatch(REGISTRY)  # a restart (or the next owner) from the saved states
        again.states = {k: DriftState.load(v) for k, v in saved.items()}
        again.observe(history[crash - 40 :])  # from the last committed offset
        assert again.states == clean.states, crash
        assert [again.blocked(r) for r in history] == [clean.blocked(r) for r in history]


async def test_the_detection_stage_sends_drifted_weighings_to_review_with_an_alert() -> None:
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    history = traffic(24 * 12, drift_from=24 * 10)
    res, flushed = await stage.process(incoming(history)), await stage.idle()
    alerts = [DeviceAlert.model_validate_json(o.value) for o in res.out + flushed.out
              if o.topic == "alerts"]  # fmt: skip
    assert [(a.condition, a.device_id) for a in alerts] == [("drift", "WIM-G312-1035")]
    # an overloaded pass after the alarm: 52,000 kg is an enforceable overload on a good scale
    # (test_stages), here not enforceable, with the drift figure as the reason
    t = (history[-1].ts - dt.datetime(2026, 11, 22, 8, 0, tzinfo=TZ)).total_seconds() + 60
    res = await stage.process(incoming([record("late", 52_000, t), capture("cl", t + 0.1)]))
    flushed = await stage.idle()
    (det,) = [Detection.model_validate_json(o.value) for o in res.out + flushed.out
              if o.topic == "detections"]  # fmt: skip
    assert not det.enforceable and any(r.startswith("drift: ") for r in det.reasons)


async def test_a_simulated_drift_is_scored_and_nothing_after_the_alarm_is_enforced() -> None:
    """`simulate --drift WIM-G312-1035,4`: the simulator's scale reads 4 % heavy from 4 h after
    the first pass; through the detection stage, no weighing after its lane's alarm is an
    enforceable detection, the delay to each alarm is reported, and the other devices, which
    do not drift, raise no alarm."""
    cfg = SimulationConfig(vehicles=20_000, images=False, drift_device="WIM-G312-1035")
    cfg = dataclasses.replace(cfg, drift_from=cfg.start + dt.timedelta(hours=4))
    passes = simulate(REGISTRY, cfg)
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    items = [x for p in passes for x in (p.wim, p.capture) if x is not None]
    res, flushed = await stage.process(incoming(items)), await stage.idle()
    dets = [Detection.model_validate_json(o.value) for o in res.out + flushed.out
            if o.topic == "detections"]  # fmt: skip
    alarms = {k: s.alarm_at for k, s in stage.drift.states.items()}
    assert {k for k, a in alarms.items() if a} == {("WIM-G312-1035", 1), ("WIM-G312-1035", 2)}
    report = drift_report(passes, alarms, {d.record_id for d in dets if d.enforceable})
    assert report["enforced_after_alarm"] == 0
    assert 0 < report["before_alarm"] < report["weighings_after_drift"]
    assert report["enforced"] > 0  # before the alarm, a drifted scale's overloads were enforced
    delays = report["alarm_delay_s"].values()
    assert all(0 < d < 4 * 3600 for d in delays), report
    assert "delay to the alarm: lane 1:" in drift_line(report)
