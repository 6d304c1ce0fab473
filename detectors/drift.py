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

Static reweighs (精检), where a site has a static scale, are a second statistic: each reweigh is
matched to the WIM weighing of the same vehicle (same site and plate, the latest weighing within
``reweigh_window_s`` before it), and the relative difference WIM/static − 1 feeds a two-sided
CUSUM of its own. Its reference is zero (the static scale is the truth a WIM scale is verified
against), its spread σ combines the two scales' in-service MPEs each taken as two standard
deviations (WIM: class N → N %, OIML R134-1 §2.1 / JJG 907; static: class III, OIML R76-1 §3.5,
about 0.2 % of a loaded truck, so the WIM class dominates), the shift to catch is again the WIM
class's MPE (k = MPE / 2σ ≈ 1) and h gives an in-control run length of ``reweigh_arl0`` reweighs.
A lane whose reweighs drift is not enforceable like a steering-axle drift. The case itself keeps
its WIM decision: DOMAIN.md and DOMAIN-REFERENCE.md do not say that a 精检 replaces the
non-site weighing a case rests on, so no law is invented here (see the README).

The state depends on the weighings alone, in event-time order (never the wall clock). Each lane
remembers the last weighing and the last reweigh it took, by (event time, record id): one at or
before it is not taken, so a batch read again after a crash or a rebalance (the states were
saved, the offsets not yet committed) is not counted twice, and a late one is dropped as before."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from events.models import Reweigh, WimRecord
from events.registry import Registry

from .plates import normalise


@dataclass(frozen=True)
class DriftRules:
    reference_n: int = 200  # weighings in the reference after a calibration
    loaded_kg: int = 35_000  # "loaded": well above an empty tractor-semitrailer (~15 t)
    arl0: float = 500_000.0  # in-control weighings between false alarms, per device and lane
    reweigh_window_s: float = 1_800.0  # a reweigh's WIM weighing: at most this long before it
    reweigh_arl0: float = 10_000.0  # in-control reweighs between false alarms, per device lane


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


def cusum(
    sums: tuple[float, float, int, int], z: float, k: float, h: float
) -> tuple[tuple[float, float, int, int], float | None]:
    """One step of a two-sided CUSUM (Page 1954) on the standardised value ``z``: the sums
    (high, low, and the steps since each left zero) after it, and at an alarm the change-point
    estimate of the shift in standard units, k + S/N since the sum left zero, signed."""
    high, low = max(sums[0] + z - k, 0.0), max(sums[1] - z - k, 0.0)
    high_n, low_n = (sums[2] + 1) * (high > 0), (sums[3] + 1) * (low > 0)
    shift = k + high / high_n if high > h else -(k + low / low_n) if low > h else None
    return (high, low, high_n, low_n), shift


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
    last_ts: dt.datetime | None = None  # the last weighing taken (event time, record id)
    last_id: str | None = None
    alarm_at: dt.datetime | None = None
    drift_pct: float | None = None  # the estimated shift at the alarm, % of the reference
    # the static reweighs: WIM/static − 1 in standard units, its CUSUM, its alarm
    reweighs: int = 0
    rw_k: float = 0.0
    rw_h: float = 0.0
    rw_high: float = 0.0
    rw_low: float = 0.0
    rw_high_n: int = 0
    rw_low_n: int = 0
    rw_mean_pct: float = 0.0  # the mean difference of the reweighs so far, %
    rw_alarm_at: dt.datetime | None = None
    rw_pct: float | None = None  # the estimated WIM − static difference at the alarm, %
    rw_last_ts: dt.datetime | None = None  # the last reweigh taken (event time, record id)
    rw_last_id: str | None = None

    def add(self, r: WimRecord, steer_kg: float, accuracy_class: float, rules: DriftRules) -> bool:
        """Take one weighing; True when it raises the alarm."""
        ts, self.last_ts, self.last_id = r.ts, r.ts, r.record_id
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
        sums, shift = cusum((self.high, self.low, self.high_n, self.low_n), z, self.k, self.h)
        self.high, self.low, self.high_n, self.low_n = sums
        if shift is not None:
            self.alarm_at, self.drift_pct = ts, 100 * shift * self.sd_kg / self.mean_kg
        return shift is not None

    def reweighed(self, rw: Reweigh, wim_kg: int, accuracy_class: float, rules: DriftRules) -> bool:
        """Take one static reweigh of a weighing of this lane; True when it raises the alarm."""
        self.rw_last_ts, self.rw_last_id = rw.ts, rw.record_id
        if self.rw_alarm_at is not None:
            return False
        sd = math.hypot(accuracy_class / 200, rw.scale_mpe_kg() / rw.gross_weight_kg / 2)
        if self.reweighs == 0:
            self.rw_k = accuracy_class / 100 / sd / 2
            self.rw_h = decision_interval(self.rw_k, rules.reweigh_arl0)
        diff = wim_kg / rw.gross_weight_kg - 1
        self.reweighs += 1
        self.rw_mean_pct += (100 * diff - self.rw_mean_pct) / self.reweighs
        sums = (self.rw_high, self.rw_low, self.rw_high_n, self.rw_low_n)
        sums, shift = cusum(sums, diff / sd, self.rw_k, self.rw_h)
        self.rw_high, self.rw_low, self.rw_high_n, self.rw_low_n = sums
        if shift is not None:
            self.rw_alarm_at, self.rw_pct = rw.ts, 100 * shift * sd
        return shift is not None

    def reason(self) -> str:
        """Why the lane's weighings are not enforceable: its first alarm, with the figure."""
        until = "not enforceable until the device is calibrated again"
        if self.alarm_at is not None and (
            self.rw_alarm_at is None or self.alarm_at <= self.rw_alarm_at
        ):
            assert self.drift_pct is not None
            return (f"drift: the steering-axle load of loaded 5/6-axle tractors shifted "
                    f"{self.drift_pct:+.1f} % from its reference after the calibration of "
                    f"{self.calibrated} (alarm at {self.alarm_at.isoformat(timespec='seconds')}); "
                    f"{until}")  # fmt: skip
        assert self.rw_alarm_at is not None and self.rw_pct is not None
        return (f"drift: the weighings read {self.rw_pct:+.1f} % against the static reweighs "
                f"(精检) since the calibration of {self.calibrated} (alarm at "
                f"{self.rw_alarm_at.isoformat(timespec='seconds')}); {until}")  # fmt: skip

    def since(self) -> dt.datetime | None:
        """The first alarm of either statistic."""
        return min((a for a in (self.alarm_at, self.rw_alarm_at) if a is not None), default=None)

    def dump(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in d.items()}

    @classmethod
    def load(cls, d: dict[str, Any]) -> DriftState:
        out = cls(**d)
        out.calibrated = dt.date.fromisoformat(str(d["calibrated"]))
        for name in ("last_ts", "alarm_at", "rw_alarm_at", "rw_last_ts"):
            if (v := d.get(name)) is not None:
                setattr(out, name, dt.datetime.fromisoformat(str(v)))
        return out


def folded(
    ts: dt.datetime, record_id: str, last_ts: dt.datetime | None, last_id: str | None
) -> bool:
    """At or before the last one a lane took, in event time (ties: the record id): the same
    record read again, or a late one. The sums run in event time, so neither is taken; a state
    saved before the record id was kept (``last_id`` None) skips only an earlier time."""
    return last_ts is not None and (ts, record_id) <= (last_ts, last_id or "")


def watched(r: WimRecord, loaded_kg: int) -> bool:
    """A loaded 5- or 6-axle combination weighed steadily (no flag) and whole."""
    return (
        r.axle_count in (5, 6) and r.vehicle_kind != "rigid" and r.gross_weight_kg >= loaded_kg
        and not r.flags and all(w > 0 for w in r.axle_weights_kg)
    )  # fmt: skip


def match_reweighs(
    reweighs: Iterable[Reweigh], weighings: Iterable[tuple[str, WimRecord]], window_s: float
) -> list[tuple[Reweigh, WimRecord]]:
    """Each reweigh with the WIM weighing of the same vehicle: same site and plate (each
    weighing comes with the plate read for it, as :func:`detectors.plates.normalise` writes it),
    at most ``window_s`` before the reweigh, the latest such (ties: the greater record id). A
    weighing reweighed again (the vehicle weighed twice on the static scale) pairs with its
    first reweigh only, so no weighing counts twice. The result does not depend on the order
    of either input."""
    by_vehicle: dict[tuple[str, str], list[WimRecord]] = {}
    for plate, r in weighings:
        by_vehicle.setdefault((r.site_id, plate), []).append(r)
    out, taken = [], set()
    for rw in sorted(reweighs, key=lambda rw: (rw.ts, rw.record_id)):
        earliest = rw.ts - dt.timedelta(seconds=window_s)
        plate = normalise(rw.plate) or rw.plate
        near = [r for r in by_vehicle.get((rw.site_id, plate), ()) if earliest <= r.ts <= rw.ts]
        if near and (r := max(near, key=lambda r: (r.ts, r.record_id))).record_id not in taken:
            taken.add(r.record_id)
            out.append((rw, r))
    return out


class DriftStore(Protocol):
    async def drift_states(self) -> dict[tuple[str, int], dict[str, Any]]: ...

    async def write_drift_states(self, states: dict[tuple[str, int], dict[str, Any]]) -> None: ...

    async def reweigh_weighings(self) -> list[tuple[str, WimRecord]]:
        """The weighings kept for static reweighs, each with its plate: records with only the
        fields :func:`match_reweighs` and :meth:`DriftWatch.reweighed` read (record_id,
        site_id, ts, device_id, lane, gross_weight_kg)."""
        ...

    async def keep_reweigh_weighings(
        self, weighings: list[tuple[str, WimRecord]], since: dict[str, dt.datetime]
    ) -> None:
        """Keep ``weighings`` (one already kept is left), and forget those of each site in
        ``since`` dated before it."""
        ...


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
            state = self._state(r, calibrated)
            if r.ts.date() < calibrated or folded(r.ts, r.record_id, state.last_ts, state.last_id):
                continue  # before the calibration, late, or taken already (read again)
            if state.add(r, r.axle_weights_kg[0], device.accuracy_class, self.rules):
                raised.append((r, state))
        return raised

    def _state(self, r: WimRecord, calibrated: dt.date) -> DriftState:
        state = self.states.get((r.device_id, r.lane))
        if state is None or state.calibrated < calibrated:  # a new calibration: a new reference
            state = self.states[(r.device_id, r.lane)] = DriftState(calibrated)
        return state

    def reweighed(
        self, pairs: Iterable[tuple[Reweigh, WimRecord]]
    ) -> list[tuple[WimRecord, DriftState]]:
        """Feed reweighs matched to their weighings (:func:`match_reweighs`), in the reweighs'
        order; the weighings whose reweigh raised an alarm. A weighing before the device's last
        calibration, or a static scale without a valid certificate that day, proves nothing; a
        reweigh at or before the lane's last one (:func:`folded`) is not taken."""
        raised = []
        for rw, r in sorted(pairs, key=lambda p: (p[0].ts, p[0].record_id)):
            device = self.registry.device(r.device_id)
            if device is None or device.certificate is None or device.accuracy_class is None:
                continue
            calibrated = device.certificate.valid_from
            if r.ts.date() < calibrated or not rw.scale_certificate.valid_on(rw.ts.date()):
                continue
            state = self._state(r, calibrated)
            if folded(rw.ts, rw.record_id, state.rw_last_ts, state.rw_last_id):
                continue  # late, or taken already (read again after a crash or a rebalance)
            if state.reweighed(rw, r.gross_weight_kg, device.accuracy_class, self.rules):
                raised.append((r, state))
        return raised

    def blocked(self, r: WimRecord) -> str | None:
        """Why this weighing is not enforceable for drift, or None."""
        state = self.states.get((r.device_id, r.lane))
        if state is None or (state.alarm_at is None and state.rw_alarm_at is None):
            return None  # the common case, without since()'s generator
        if (since := state.since()) is None or r.ts < since:
            return None
        device = self.registry.device(r.device_id)
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
           f"{'cusum +/-':>11} {'h':>5} {'reweighs':>8} {'WIM/static':>10} "
           f"{'cusum +/-':>11} {'h':>5}  state"]  # fmt: skip
    for (device, lane), s in sorted(states.items()):
        ref = (f"{s.mean_kg:,.0f}±{s.sd_kg:,.0f} kg" if s.mean_kg is not None and s.sd_kg
               else f"{s.n} weighings")  # fmt: skip
        if (since := s.since()) is not None:
            pct = s.drift_pct if since == s.alarm_at else s.rw_pct
            which = "steering axle" if since == s.alarm_at else "reweighs"
            state = (f"ALARM {pct:+.1f} % ({which}) since {since.isoformat(timespec='seconds')}:"
                     " not enforced")  # fmt: skip
        else:
            state = "watching" if s.mean_kg is not None else "building its reference"
        mean = f"{s.rw_mean_pct:+.1f} %" if s.reweighs else "-"
        out.append(f"{device:16} {lane:>4} {s.calibrated.isoformat():10} {ref:>17} {s.watched:>7} "
                   f"{s.high:>5.1f}/{s.low:<5.1f} {s.h:>5.1f} {s.reweighs:>8} {mean:>10} "
                   f"{s.rw_high:>5.1f}/{s.rw_low:<5.1f} {s.rw_h:>5.1f}  {state}")  # fmt: skip
    return out
