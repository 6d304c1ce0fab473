"""The drift watch on the real case store (issue #29 must-have 5): its state survives a restart
of the detection stage, and `offsite devices drift` prints each device lane's state."""

from __future__ import annotations

import datetime as dt

import pytest

from detectors import DetectionStage
from events import Detection, DeviceAlert
from events.stage import Incoming
from offsite import services
from offsite.cli import _devices
from offsite.config import Settings
from sinks import CaseStore
from tests.unit.test_drift import REGISTRY, traffic
from tests.unit.test_drift_reweigh import DEVICE, T0, reweigh
from tests.unit.test_stages import capture, incoming, record


async def test_the_drift_watch_survives_a_restart_and_is_printed(
    plain_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await CaseStore.connect(services.endpoints(plain_settings).database_url)
    try:
        await store.migrate()
        history = traffic(24 * 12, drift_from=24 * 10)
        first = DetectionStage(REGISTRY, drift_store=store)
        await first.start()
        await first.process(incoming(history[: len(history) // 2]))  # before the drift
        await first.idle()
        again = DetectionStage(REGISTRY, drift_store=store)  # a restart
        await again.start()
        assert again.drift.states == first.drift.states and again.drift.states
        await again.process(incoming(history[len(history) // 2 :]))
        await again.idle()
        ((key, state),) = again.drift.states.items()
        assert key == ("WIM-G312-1035", 1) and state.alarm_at is not None
    finally:
        await store.close()
    assert await _devices(plain_settings, drift=True) == 0
    out = capsys.readouterr().out
    assert "WIM-G312-1035" in out and "ALARM +" in out and "not enforced" in out
    # both statistics: the steering axle's, which raised this alarm, and the static reweighs'
    assert "(steering axle)" in out and "reweighs" in out and "WIM/static" in out


async def test_a_reweigh_just_after_a_restart_finds_the_weighings_read_before_it(
    plain_settings: Settings,
) -> None:
    """Issue #27: the weighings kept for static reweighs survive a restart of the detection
    stage, and reach a worker that takes the partition over in a rebalance (in the case store,
    beside the drift states). Six trucks weighed before, reweighed 4 % lighter just after,
    raise the drift alert, and a later overload is not enforced; before, the new stage had no
    weighing to match them to and raised nothing."""
    items: list = []
    for i in range(6):
        items += [record(f"w{i}", 45_000, i * 600), capture(f"c{i}", i * 600 + 0.1, f"湘A1234{i}")]
    reweighs = [reweigh(f"rw{i}", f"湘A1234{i}", T0 + dt.timedelta(seconds=i * 600 + 300),
                        43_269) for i in range(6)]  # 45,000 / 43,269 = 1.04  # fmt: skip
    later = [Incoming("road.reweigh", 0, k, None, rw.to_json()) for k, rw in enumerate(reweighs)]
    later += incoming([record("late", 52_000, 6 * 600 + 60), capture("cl", 6 * 600 + 60.1)])
    store = await CaseStore.connect(services.endpoints(plain_settings).database_url)
    outs = []
    try:
        await store.migrate()
        for how in ("restart", "rebalance"):
            await store.pool.execute("DELETE FROM reweigh_weighings")
            await store.pool.execute("DELETE FROM drift_states")
            first, again = (
                DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9, drift_store=store)
                for _ in range(2)
            )
            await first.start()
            if how == "rebalance":
                await again.start()  # a second worker, up before the first read the weighings
            await first.process(incoming(items))
            await first.idle()
            if how == "restart":
                await again.start()
            else:  # the first leaves; the second is given its partitions
                again.assigned(frozenset({("road.wim", 0), ("road.anpr", 0), ("road.reweigh", 0)}))
            outs.append((await again.process(later)).out + (await again.idle()).out)
    finally:
        await store.close()
    for out in outs:
        alerts = [DeviceAlert.model_validate_json(o.value) for o in out if o.topic == "alerts"]
        assert [(a.condition, a.device_id) for a in alerts] == [("drift", DEVICE)]
        (det,) = [Detection.model_validate_json(o.value) for o in out if o.topic == "detections"]
        assert det.record_id == "late" and not det.enforceable


async def test_a_batch_read_again_after_a_crash_changes_no_state_and_no_verdict(
    plain_settings: Settings,
) -> None:
    """Issue #27 item 1: the detection stage saved the drift states of a batch and died before
    its offsets were committed; a stage started from the case store reads the batch again from
    the committed positions (the reweigh that waited for this batch's weighing included). Each
    52 t truck is reweighed 4 % lighter 5 min later; the states, the alert and every
    detection's verdict are those of the run without the crash, wherever it happens. Before,
    the reweigh read again was taken twice: after the first truck's, the alarm came one reweigh
    early and the second truck's overload, enforceable in the clean run, went to review."""
    n = 5
    steps = []
    for i in range(n):
        rw = reweigh(f"rw{i}", f"湘A1234{i}", T0 + dt.timedelta(seconds=i * 600 + 300), 50_000)
        steps.append([Incoming("road.wim", 0, i, None, record(f"w{i}", 52_000, i * 600).to_json()),
                      Incoming("road.anpr", 0, i, None,
                               capture(f"c{i}", i * 600 + 0.1, f"湘A1234{i}").to_json()),
                      Incoming("road.reweigh", 0, i, None, rw.to_json())])  # fmt: skip
    # 52,000 / 50,000 = 1.04: the scale reads 4 % heavy

    async def run(store: CaseStore, crash: int | None) -> tuple[dict, dict[str, set], set[str]]:
        await store.pool.execute("DELETE FROM reweigh_weighings")
        await store.pool.execute("DELETE FROM drift_states")
        stage = DetectionStage(REGISTRY, drift_store=store)
        await stage.start()
        out = []
        for i, batch in enumerate(steps):
            out += (await stage.process(batch)).out + (await stage.idle()).out
            if i == crash:  # killed after the states were written, before the commit
                stage = DetectionStage(REGISTRY, drift_store=store)
                await stage.start()
                again = [m for m in steps[i - 1] if m.topic == "road.reweigh"] if i else []
                out += (await stage.process(again + batch)).out + (await stage.idle()).out
        verdicts: dict[str, set] = {}
        for o in out:
            if o.topic == "detections":
                d = Detection.model_validate_json(o.value)
                verdicts.setdefault(d.record_id, set()).add((d.enforceable, tuple(d.reasons)))
        alerts = {DeviceAlert.model_validate_json(o.value).alert_id
                  for o in out if o.topic == "alerts"}  # fmt: skip
        return await store.drift_states(), verdicts, alerts

    store = await CaseStore.connect(services.endpoints(plain_settings).database_url)
    try:
        await store.migrate()
        clean = await run(store, None)
        states, verdicts, alerts = clean
        ((_, state),) = states.items()
        # the second reweigh raises the alarm: the trucks weighed before it are enforced
        assert state["reweighs"] == 2 and state["rw_alarm_at"] is not None and len(alerts) == 1
        assert {k for k, ((enforceable, _),) in verdicts.items() if enforceable} == {"w0", "w1"}
        for crash in range(n):
            assert await run(store, crash) == clean, crash
    finally:
        await store.close()
