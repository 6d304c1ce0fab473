"""Device health with a fake clock (issue #15 item 2): silence, an expiring and an expired
certificate and clock skew each raise exactly one alert per device and clear on recovery or
renewal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from detectors.health import DeviceHealthStage, DeviceState, HealthRules, MemoryHealth, table
from events import DeviceAlert, Registry
from events.stage import Incoming

from .test_stages import REGISTRY, record

T0 = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 at the sites (UTC+8)
RULES = HealthRules(silent_after_s=900, expiring_days=30, max_skew_s=300)
DEVICE = "WIM-G312-1035"  # certificate valid until 2027-01-14


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def registry_with(**cert: Any) -> Registry:
    """Only G312's WIM device, with its certificate changed."""
    data = REGISTRY.model_dump()
    data["devices"] = [d for d in data["devices"] if d["type"] == "wim"]
    for d in data["devices"]:
        d["certificate"] |= cert if d["id"] == DEVICE else {"valid_until": dt.date(2030, 1, 1)}
    data["sites"] = [{**s, "devices": [x for x in s["devices"] if x.startswith("WIM")]}
                     for s in data["sites"] if any(x.startswith("WIM") for x in s["devices"])]  # fmt: skip
    data["permits"], data["distances"] = [], []
    return Registry.model_validate(data)


def message(received: dt.datetime, skew_s: float = 0.0, offset: int = 0) -> Incoming:
    ts = (received + dt.timedelta(seconds=skew_s)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    rec = record(f"r{offset}", 30_000, ts=ts)
    return Incoming("road.wim", 0, offset, None, rec.to_json(), round(received.timestamp() * 1000))


async def alerts(stage: DeviceHealthStage, batch: list[Incoming] | None = None) -> list[tuple]:
    res = await (stage.process(batch) if batch is not None else stage.idle())
    out = [DeviceAlert.model_validate_json(o.value) for o in res.out]
    return [(a.kind, a.device_id, a.condition) for a in out]


async def test_silence_raises_once_and_clears_with_the_next_message() -> None:
    clock, store = Clock(), MemoryHealth()
    stage = DeviceHealthStage(registry_with(), store, RULES, clock=clock)
    await stage.start()
    assert await alerts(stage, [message(T0)]) == []
    clock.now = T0 + dt.timedelta(seconds=900)
    assert await alerts(stage) == []  # exactly the expected interval: not yet
    clock.now = T0 + dt.timedelta(seconds=901)
    silent = await alerts(stage)
    # every device is silent: G312's since its message, the others since watching began
    assert sorted(silent) == sorted(("device.raised", d.id, "silent")
                                    for d in stage.registry.devices)  # fmt: skip
    clock.now += dt.timedelta(seconds=600)
    assert await alerts(stage) == []  # still silent: no second alert
    assert await alerts(stage, [message(clock.now, offset=1)]) == [
        ("device.cleared", DEVICE, "silent")
    ]


async def test_expiring_then_expired_certificate_and_renewal_clear() -> None:
    clock, store = Clock(), MemoryHealth()
    stage = DeviceHealthStage(registry_with(valid_until=dt.date(2026, 12, 20)), store, RULES,
                              clock=clock)  # fmt: skip
    assert await alerts(stage, [message(T0)]) == [("device.raised", DEVICE, "certificate_expiring")]
    assert await alerts(stage, [message(T0, offset=1)]) == []
    # 2026-12-21 at the site (UTC+8): 16:30 UTC on the 20th is already the 21st there
    clock.now = dt.datetime(2026, 12, 20, 16, 30, tzinfo=dt.UTC)
    mine = [a for a in await alerts(stage, [message(clock.now, offset=2)]) if a[1] == DEVICE]
    assert sorted(mine) == [
        ("device.cleared", DEVICE, "certificate_expiring"),
        ("device.raised", DEVICE, "certificate_expired"),
    ]
    # renewed: the registry is reloaded (a restart) with the new certificate
    renewed = DeviceHealthStage(registry_with(valid_until=dt.date(2027, 12, 20)), store, RULES,
                                clock=clock)  # fmt: skip
    mine = [a for a in await alerts(renewed, [message(clock.now, offset=3)]) if a[1] == DEVICE]
    assert mine == [("device.cleared", DEVICE, "certificate_expired")]


async def test_a_clock_ahead_or_behind_raises_once_and_clears_when_in_step() -> None:
    clock, store = Clock(), MemoryHealth()
    stage = DeviceHealthStage(registry_with(), store, RULES, clock=clock)
    assert await alerts(stage, [message(T0, skew_s=299)]) == []
    assert await alerts(stage, [message(T0, skew_s=-301, offset=1)]) == [
        ("device.raised", DEVICE, "clock_skew")
    ]
    assert await alerts(stage, [message(T0, skew_s=600, offset=2)]) == []  # still skewed
    assert "ahead of" in store.states[DEVICE].active["clock_skew"]
    assert await alerts(stage, [message(T0, skew_s=1, offset=3)]) == [
        ("device.cleared", DEVICE, "clock_skew")
    ]


async def test_two_workers_sharing_the_store_alert_once() -> None:
    clock, store = Clock(), MemoryHealth()
    reg = registry_with(valid_until=dt.date(2026, 12, 20))
    a = DeviceHealthStage(reg, store, RULES, clock=clock)
    b = DeviceHealthStage(reg, store, RULES, clock=clock)
    first = await alerts(a, [message(T0)])
    second = await alerts(b, [message(T0, offset=1)])
    assert first + second == [("device.raised", DEVICE, "certificate_expiring")]


async def test_a_message_the_detection_stage_dead_letters_is_only_ignored_here() -> None:
    stage = DeviceHealthStage(registry_with(), MemoryHealth(), RULES, clock=Clock())
    bad = Incoming("road.wim", 0, 0, None, b'{"record_id": ', 0)
    assert (await stage.process([bad])).dead == []


async def test_the_devices_table_shows_last_message_certificate_and_state() -> None:
    clock, store = Clock(), MemoryHealth()
    stage = DeviceHealthStage(registry_with(valid_until=dt.date(2026, 11, 30)), store, RULES,
                              clock=clock)  # fmt: skip
    await stage.process([message(T0)])
    states = {k: DeviceState(*v) for k, v in (await store.device_states()).items()}
    rows = {line.split()[0]: line for line in table(stage.registry, states)}
    assert "2026-12-02 02:00:00" in rows[DEVICE] and "2026-11-30" in rows[DEVICE]
    assert (
        "certificate_expired: certificate 湘计检(2026)WIM-0312 expired on 2026-11-30"
        in rows[DEVICE]
    )
    assert rows["WIM-G107-1520"].split()[2] == "never"
