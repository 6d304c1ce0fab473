"""Drift watch (issue #29 must-have 5): a weigh-in-motion scale that drifts after its
calibration keeps a valid certificate, so nothing else notices it. The steering axle of a loaded
5- or 6-axle tractor-semitrailer weighs nearly the same from truck to truck (the fifth wheel
sits behind the drive axles; the steering axle carries the cab and engine, about 6–7 t, whatever
the cargo), so a shift in its mean over many such trucks is the scale, not the trucks.

Per device and lane: the reference is the mean and spread of the first ``reference_n`` such
weighings on or after the device's last calibration (its certificate's ``valid_from``); then a
two-sided CUSUM (Page 1954) on the standardised loads. Its thresholds come from the accuracy
class: the shift to catch is the class's in-service maximum permissible error (OIML R134-1:2006
§2.1, used by JJG 907: class N → ±N % of the mass), the reference value k is half that shift in
standard units, and the decision interval h gives an in-control average run length of ``arl0``
weighings by Siegmund's approximation (Montgomery, Introduction to Statistical Quality Control,
§9.1.4). From the alarm on, the device's weighings in that lane are not enforceable; a newer
calibration (a certificate with a later ``valid_from`` in the registry) starts a new reference.

The state depends on the weighings alone, in event-time order (never the wall clock)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from events.models import WimRecord
from events.registry import Registry


@dataclass(frozen=True)
class DriftRules:
    reference_n: int = 200  # weighings in the reference after a calibration
    loaded_kg: int = 35_000  # "loaded": well above an empty tractor-semitrailer (~15 t)
    arl0: float = 500_000.0  # in-control weighings between false alarms, per device and lane


def decision_interval(k: float, arl0: float) -> float:
    """h (standard units) of a two-sided CUSUM with reference value ``k`` whose in-control
    average run length is ``arl0``: Siegmund, ARL(one side) ≈ (e^{2kb} − 2kb − 1) / (2k²) with
    b = h + 1.166, and the two sides together alarm twice as often."""

    def arl(h: float) -> float:
        b = 2 * k * (h + 1.166)
        return (math.exp(b) - b - 1) / (2 * k * k) / 2

    low, high = 0.0, 1.0
    while arl(high) < arl0:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if arl(mid) < arl0 else (low, mid)
    return high


@dataclass
class DriftState:
    """One device lane's watch since its last calibration."""

    calibrated: dt.date
    n: int = 0  # reference weighings so far
    total: float = 0.0
    squares: float = 0.0
    mean_kg: float | None = None  # the reference, once complete
    sd_kg: float | None = None
    k: float = 0.0
    h: float = 0.0
    high: float = 0.0  # the CUSUM sums (standard units) and weighings since each left zero
    low: float = 0.0
    high_n: int = 0
    low_n: int = 0
    watched: int = 0  # weighings after the reference
    last_ts: dt.datetime | None = None
    alarm_at: dt.datetime | None = None
    drift_pct: float | None = None  # the estimated shift at the alarm, % of the reference

    def add(
        self, ts: dt.datetime, steer_kg: float, accuracy_class: float, rules: DriftRules
    ) -> bool:
        """Take one weighing; True when it raises the alarm."""
        self.last_ts = ts
        if self.alarm_at is not None:
            return False
        if self.mean_kg is None or self.sd_kg is None:
            self.n, self.total, self.squares = (
                self.n + 1,
                self.total + steer_kg,
                self.squares + steer_kg**2,
            )
            if self.n >= rules.reference_n:
                self.mean_kg = self.total / self.n
                self.sd_kg = max(math.sqrt(max(self.squares / self.n - self.mean_kg**2, 0.0)), 1.0)
                self.k = accuracy_class / 100 * self.mean_kg / self.sd_kg / 2
                self.h = decision_interval(self.k, rules.arl0)
            return False
        z = (steer_kg - self.mean_kg) / self.sd_kg
        self.watched += 1
        up, down = self.high + z - self.k, self.low - z - self.k
        self.high, self.high_n = (up, self.high_n + 1) if up > 0 else (0.0, 0)
        self.low, self.low_n = (down, self.low_n + 1) if down > 0 else (0.0, 0)
        if self.high > self.h or self.low > self.h:
            # the change-point estimate of the shift: k + S/N since the sum left zero
            up = self.high > self.h
            s, m = (self.high, self.high_n) if up else (self.low, self.low_n)
            shift = (self.k + s / m) * self.sd_kg * (1 if up else -1)
            self.alarm_at, self.drift_pct = ts, 100 * shift / self.mean_kg
            return True
        return False

    def reason(self) -> str:
        assert self.alarm_at is not None and self.drift_pct is not None
        return (f"drift: the steering-axle load of loaded 5/6-axle tractors shifted "
                f"{self.drift_pct:+.1f} % from its reference after the calibration of "
                f"{self.calibrated} (alarm at {self.alarm_at.isoformat(timespec='seconds')}); "
                "not enforceable until the device is calibrated again")  # fmt: skip

    def dump(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in d.items()}

    @classmethod
    def load(cls, d: dict[str, Any]) -> DriftState:
        out = cls(**d)
        out.calibrated = dt.date.fromisoformat(str(d["calibrated"]))
        for name in ("last_ts", "alarm_at"):
            if (v := d[name]) is not None:
                setattr(out, name, dt.datetime.fromisoformat(str(v)))
        return out


def watched(r: WimRecord, loaded_kg: int) -> bool:
    """A loaded 5- or 6-axle combination weighed steadily (no flag) and whole."""
    return (
        r.axle_count in (5, 6) and r.vehicle_kind != "rigid" and r.gross_weight_kg >= loaded_kg
        and not r.flags and all(w > 0 for w in r.axle_weights_kg)
    )  # fmt: skip


class DriftStore(Protocol):
    async def drift_states(self) -> dict[tuple[str, int], dict[str, Any]]: ...

    async def write_drift_states(self, states: dict[tuple[str, int], dict[str, Any]]) -> None: ...


class DriftWatch:
    """Every WIM device lane's :class:`DriftState`, fed in event time."""

    def __init__(self, registry: Registry, rules: DriftRules | None = None) -> None:
        self.registry, self.rules = registry, rules or DriftRules()
        self.states: dict[tuple[str, int], DriftState] = {}

    def observe(self, records: Iterable[WimRecord]) -> list[tuple[WimRecord, DriftState]]:
        """Feed the watched weighings (in event-time order); the ones that raised an alarm."""
        raised = []
        mine = [r for r in records if watched(r, self.rules.loaded_kg)]
        for r in sorted(mine, key=lambda r: (r.ts, r.record_id)):
            device = self.registry.device(r.device_id)
            if device is None or device.certificate is None or device.accuracy_class is None:
                continue
            calibrated = device.certificate.valid_from
            state = self.states.get((r.device_id, r.lane))
            if state is None or state.calibrated < calibrated:  # a new calibration: a new reference
                state = self.states[(r.device_id, r.lane)] = DriftState(calibrated)
            if r.ts.date() < calibrated or (state.last_ts is not None and r.ts < state.last_ts):
                continue  # before the calibration, or late: the sums run in event time
            if state.add(r.ts, r.axle_weights_kg[0], device.accuracy_class, self.rules):
                raised.append((r, state))
        return raised

    def blocked(self, r: WimRecord) -> str | None:
        """Why this weighing is not enforceable for drift, or None."""
        state = self.states.get((r.device_id, r.lane))
        device = self.registry.device(r.device_id)
        if state is None or state.alarm_at is None or r.ts < state.alarm_at:
            return None
        if (
            device is not None
            and device.certificate is not None
            and device.certificate.valid_from > state.calibrated
        ):
            return None  # calibrated since the alarm
        return state.reason()


def drift_table(states: dict[tuple[str, int], DriftState]) -> list[str]:
    """`offsite devices drift`: each device lane's watch, one line each."""
    out = [f"{'device':16} {'lane':>4} {'calibrated':10} {'reference':>17} {'watched':>7} "
           f"{'cusum +/-':>11} {'h':>5}  state"]  # fmt: skip
    for (device, lane), s in sorted(states.items()):
        ref = (f"{s.mean_kg:,.0f}±{s.sd_kg:,.0f} kg" if s.mean_kg is not None and s.sd_kg
               else f"{s.n} weighings")  # fmt: skip
        if s.alarm_at is not None:
            state = f"ALARM {s.drift_pct:+.1f} % since {s.alarm_at.isoformat(timespec='seconds')}: not enforced"
        else:
            state = "watching" if s.mean_kg is not None else "building its reference"
        out.append(f"{device:16} {lane:>4} {s.calibrated.isoformat():10} {ref:>17} {s.watched:>7} "
                   f"{s.high:>5.1f}/{s.low:<5.1f} {s.h:>5.1f}  {state}")  # fmt: skip
    return out
