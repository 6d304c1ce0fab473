"""Device health: every device's last message and what is wrong with it now — silent for longer
than expected, a metrology certificate expiring or expired, a clock ahead of or behind the
broker's receive time. Each condition raises one alert on ``alerts`` while it lasts and one
when it clears. A weighing on an expired certificate is never enforceable anyway
(``detectors/stage.py``); this tells the IT team before that happens.

The state is shared through a store (PostgreSQL in the pipeline): every worker records the
devices it saw, and a condition changes by compare-and-set, so of several workers exactly one
raises or clears it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from events import ALERTS, ROAD_ANPR, ROAD_WIM, DeviceAlert, Registry, derive_id
from events.clock import Clock
from events.models import DeviceCondition
from events.registry import Device, Site
from events.stage import BaseStage, Incoming, Outgoing, StageResult

Active = dict[str, str]  # condition → why


@dataclass(frozen=True)
class HealthRules:
    silent_after_s: float = 900.0  # a device without expected_interval_s in the registry
    expiring_days: int = 30
    max_skew_s: float = 300.0


@dataclass
class DeviceState:
    received: dt.datetime | None = None  # the broker's time of its last message
    skew_s: float | None = None  # that message's own time − the broker's
    active: Active = field(default_factory=dict)


def problems(
    device: Device,
    site: Site | None,
    state: DeviceState,
    now: dt.datetime,
    watching_since: dt.datetime,
    rules: HealthRules,
) -> Active:
    """The conditions that hold for ``device`` at ``now``, each with its reason."""
    out: Active = {}
    limit = device.expected_interval_s or rules.silent_after_s
    last = state.received or watching_since
    if (now - last).total_seconds() > limit:
        seen = f"since {state.received.isoformat(timespec='seconds')}" if state.received \
            else f"since offsite started watching ({watching_since.isoformat(timespec='seconds')})"  # fmt: skip
        out["silent"] = f"no message {seen}; expected at least every {limit:g} s"
    today = (site.local(now) if site else now).date()
    cert = device.certificate
    if cert is None and device.type == "wim":
        out["certificate_expired"] = "no metrology certificate in the registry"
    elif cert is not None and today > cert.valid_until:
        out["certificate_expired"] = f"certificate {cert.number} expired on {cert.valid_until}"
    elif cert is not None and (cert.valid_until - today).days < rules.expiring_days:
        out["certificate_expiring"] = (f"certificate {cert.number} expires on {cert.valid_until}"
                                       f" ({(cert.valid_until - today).days} days left)")  # fmt: skip
    if state.skew_s is not None and abs(state.skew_s) > rules.max_skew_s:
        way = "ahead of" if state.skew_s > 0 else "behind"
        out["clock_skew"] = (f"its clock is {abs(state.skew_s):,.0f} s {way} the broker's receive "
                             f"time (more than {rules.max_skew_s:g} s)")  # fmt: skip
    return out


class HealthStore(Protocol):
    async def record_seen(self, seen: Sequence[tuple[str, dt.datetime, float]]) -> None:
        """(device_id, received, skew_s) of each device's latest message; older ones lose."""
        ...

    async def device_states(
        self,
    ) -> Mapping[str, tuple[dt.datetime | None, float | None, Active]]:
        """device_id → (received, skew_s, active conditions)."""
        ...

    async def change_active(self, device_id: str, before: Active, after: Active) -> bool:
        """Set the device's active conditions to ``after`` if they are still ``before``."""
        ...


class MemoryHealth:
    """A health store in this process's memory, for tests."""

    def __init__(self) -> None:
        self.states: dict[str, DeviceState] = {}

    async def record_seen(self, seen: Sequence[tuple[str, dt.datetime, float]]) -> None:
        for device_id, received, skew in seen:
            s = self.states.setdefault(device_id, DeviceState())
            if s.received is None or received >= s.received:
                s.received, s.skew_s = received, skew

    async def device_states(self) -> dict[str, tuple[dt.datetime | None, float | None, Active]]:
        return {k: (v.received, v.skew_s, dict(v.active)) for k, v in self.states.items()}

    async def change_active(self, device_id: str, before: Active, after: Active) -> bool:
        s = self.states.setdefault(device_id, DeviceState())
        if s.active != before:
            return False
        s.active = dict(after)
        return True


def _device_of(value: bytes) -> tuple[str, dt.datetime] | None:
    """(device id, its time) of a raw WIM record or capture; None for what the detection stage
    dead-letters (this stage only watches)."""
    try:
        m = json.loads(value)
        ts = dt.datetime.fromisoformat(m["ts"])
        device = m.get("device_id") or m["camera_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return (device, ts) if isinstance(device, str) and ts.tzinfo is not None else None


class DeviceHealthStage(BaseStage):
    name = "health"
    isolable = True  # what it stores is the latest per device: a message again changes nothing

    def __init__(
        self,
        registry: Registry,
        store: HealthStore,
        rules: HealthRules | None = None,
        *,
        clock: Clock,
        topic_prefix: str = "",
    ) -> None:
        self.registry, self.store, self.rules = registry, store, rules or HealthRules()
        self.clock = clock
        self.inputs: tuple[str, ...] = (topic_prefix + ROAD_WIM, topic_prefix + ROAD_ANPR)
        self.out_topic = topic_prefix + ALERTS
        self.since = self.clock()
        self.sites = {d: s.id for s in registry.sites for d in s.devices}

    async def start(self) -> None:
        self.since = self.clock()

    async def process(self, batch: list[Incoming]) -> StageResult:
        latest: dict[str, tuple[dt.datetime, float]] = {}
        for msg in batch:
            found = _device_of(msg.value)
            if found is None or msg.timestamp_ms is None:
                continue
            device, ts = found
            if device not in self.sites:  # not a registered device: nothing to watch
                continue
            received = dt.datetime.fromtimestamp(msg.timestamp_ms / 1000, dt.UTC)
            if device not in latest or received >= latest[device][0]:
                latest[device] = (received, (ts - received).total_seconds())
        await self.store.record_seen([(d, r, s) for d, (r, s) in sorted(latest.items())])
        return await self.idle()

    async def idle(self) -> StageResult:
        """Compare what holds now with what is raised; alert each change this worker makes."""
        now = self.clock()
        states = {k: DeviceState(*v) for k, v in (await self.store.device_states()).items()}
        out = []
        observed: list[tuple[str, tuple[str, ...], float]] = []
        for device in self.registry.devices:
            if device.type not in ("wim", "anpr"):
                continue
            state = states.get(device.id, DeviceState())
            site = self.registry.site(self.sites.get(device.id, ""))
            want = problems(device, site, state, now, self.since, self.rules)
            observed += [("device_condition", (device.id, c), float(c in want)) for c in CONDITIONS]
            if want == state.active or not await self.store.change_active(
                device.id, state.active, want
            ):
                continue
            out += [self._alert("device.raised", device.id, site, c, why, now)
                    for c, why in want.items() if c not in state.active]  # fmt: skip
            out += [self._alert("device.cleared", device.id, site, c, why, now)
                    for c, why in state.active.items() if c not in want]  # fmt: skip
        return StageResult(out=out, observed=observed)

    def _alert(
        self, kind: str, device_id: str, site: Site | None, condition: str, why: str,
        now: dt.datetime,
    ) -> Outgoing:  # fmt: skip
        alert = DeviceAlert(
            alert_id=derive_id("dal", device_id, condition, kind, now.isoformat()),
            kind=kind,  # type: ignore[arg-type]
            device_id=device_id, site_id=site.id if site else None,
            condition=condition,  # type: ignore[arg-type]
            ts=now, reason=why,
        )  # fmt: skip
        return Outgoing(self.out_topic, device_id.encode(), alert.to_json())


def table(registry: Registry, states: Mapping[str, DeviceState]) -> list[str]:
    """`offsite devices`: one line per device — last message, certificate, state."""
    rows = [f"{'device':16}{'site':15}{'last message (UTC)':22}{'certificate until':19}state"]
    sites = {d: s.id for s in registry.sites for d in s.devices}
    for d in registry.devices:
        s = states.get(d.id, DeviceState())
        seen = (
            s.received.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if s.received else "never"
        )
        until = str(d.certificate.valid_until) if d.certificate else "-"
        state = "; ".join(f"{c}: {why}" for c, why in sorted(s.active.items())) or "ok"
        rows.append(f"{d.id:16}{sites.get(d.id, '-'):15}{seen:22}{until:19}{state}")
    return rows


CONDITIONS: tuple[DeviceCondition, ...] = (
    "silent", "certificate_expiring", "certificate_expired", "clock_skew",
)  # fmt: skip
