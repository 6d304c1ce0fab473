"""Synthetic waterway traffic with ground truth: real NMEA 0183 AIVDM sentences from the
registry's shore receivers, checkpoint captures with hull images, and injected cases for every
waterway detector, beside look-alikes that must stay silent.

Vessels sail the registry's fairway (航道) as positions along its centreline (chainage, metres
from the downstream end) and off it. Through traffic keeps to its side of the channel and waits
at an anchorage before a controlled section (交通管制河段) until its signal lets it in; small
craft (class B) make local trips; a few vessels lie moored.

Reporting rates are ITU-R M.1371-5 Table 1 (class A: at anchor or moored and not faster than
3 kn every 3 min, 0–14 kn every 10 s, 14–23 kn every 6 s, above 23 kn every 2 s; static and
voyage data, type 5, every 6 min) and Table 2 (class B "CS": up to 2 kn every 3 min, faster
every 30 s; static data, type 24 parts A and B, every 6 min). Inland vessels also send the
inland static and voyage data (type 8, DAC 200 FID 10: ENI, dimensions, draught in cm,
loaded/unloaded) every 6 min. A transponder changes rate as soon as the vessel's state changes.

Reception: a receiver hears a transmission within its ``range_km`` — a class B one within 0.4 of
it (2 W against 12.5 W; free-space range goes with the square root of the power) — each with
probability ``reception`` (slot collisions), or ``degraded_reception`` while it is degraded. Each
receiver stamps its lines with its own NMEA 4.0 tag block (``\\s:RX-…,c:<unix time>*hh\\``), the
first receiver in seconds, the others in milliseconds, and numbers its multi-sentence messages
itself.

The injected cases happen in fixed stretches of the window (``SLOTS``, minutes after the start),
away from its edges: a detector decides a span only with AIS on both sides of it, and the
receiver's degradation only after the cases that need healthy receivers. Each case's pass
through a checkpoint is kept a minute clear of every other vessel's, so its capture cannot be
taken for another's.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from pyais.encode import ais_to_nmea_0183
from pyais.messages import MSG_CLASS

from events import ImageRef
from events.water import (
    AisRaw,
    ControlledSection,
    LonLat,
    RegisteredVessel,
    VesselCapture,
    WaterDetection,
    WaterRegistry,
    minute_of_day,
)
from ingest.ais import nmea_checksum

from .hull import HEIGHT, WIDTH, render_hull

UTC = dt.UTC
KNOT = 1852.0 / 3600.0  # m/s
CLASS_B_RANGE = 0.4  # √(2 W / 12.5 W)
STATIC_EVERY_S = 360.0
HOLD_BEFORE_M = 400.0  # the anchorage before a controlled section's entry line
QUEUE_S = 90.0  # vessels leave the anchorage one after another
CLEAR_S = 60.0  # an injected pass keeps this far from any other at the same checkpoint
MIN_MINUTES = 110

# where in the window (minutes after the start) each kind of injected case happens
# (a negative number counts from the end of the window)
SLOTS: dict[str, tuple[float, float]] = {
    "dark": (12, 50), "gap": (16, 40), "hull_name": (14, 54), "two_places": (20, 56),
    "several_mmsi": (24, 56), "static_changed": (20, 56), "overdraught": (16, 56),
    "degraded": (62, 92), "signal": (14, -24), "dredging": (10, -20),
}  # fmt: skip

# AIS ship and cargo types (ITU-R M.1371 Table 53) and ERI types (ECE/TRANS/SC.3/176 annex E)
SHIP_TYPE = {"cargo": 70, "tanker": 80, "passenger": 60, "dredger": 33, "tug": 52, "other": 90}
ERI_TYPE = {"cargo": 8010, "tanker": 8020}  # motor freighter, motor tanker
SPEED_KN = {"cargo": (6.0, 10.0), "tanker": (6.0, 9.0), "passenger": (9.0, 13.0),
            "tug": (7.0, 10.0), "dredger": (5.0, 7.0), "other": (5.0, 9.0)}  # fmt: skip
PROVINCES = (("湘", "XIANG"),) * 6 + (("鄂", "E"), ("赣", "GAN"), ("皖", "WAN"))
PLACES = (("长沙", "CHANGSHA"), ("岳阳", "YUEYANG"), ("衡阳", "HENGYANG"), ("株洲", "ZHUZHOU"),
          ("湘潭", "XIANGTAN"), ("益阳", "YIYANG"), ("常德", "CHANGDE"), ("永州", "YONGZHOU"))  # fmt: skip
KIND_NAME = {"cargo": ("货", "HUO"), "tanker": ("油", "YOU"), "passenger": ("客", "KE"),
             "tug": ("拖", "TUO"), "dredger": ("采砂", "CAISHA"), "other": ("工", "GONG")}  # fmt: skip

# every waterway detector (detectors.water_detect), in the order the score lists them
DETECTORS = (
    "water.pass.no_ais", "water.track.gap", "water.pass.hull_name", "water.track.two_places",
    "water.static.several_mmsi", "water.static.changed", "water.static.registry",
    "water.static.reported_draught", "water.pass.measured_draught", "water.section.entry_up",
    "water.section.entry_down", "water.zone.night_loiter",
)  # fmt: skip
DEGRADED_CHECK = "no dark alert, rx degraded"


@dataclass(frozen=True)
class WaterSimConfig:
    vessels: int = 24  # generated vessels beside the registry's and the injected cases
    seed: int = 20261122
    start: dt.datetime = dt.datetime(
        2026, 11, 22, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    minutes: int = 120
    class_b_share: float = 0.25
    inland_share: float = 0.5  # class A vessels that send the inland extension (type 8)
    moored: int = 3
    reception: float = 0.97
    degraded_reception: float = 0.05
    unreadable_rate: float = 0.03  # hull names of ordinary traffic the camera cannot read
    hull_text: bool = True  # the cameras read hull names themselves; else images only (OCR)
    images: bool = True
    # injected cases, each this many times
    dark: int = 2  # photographed, no AIS at all
    gaps: int = 1  # AIS off for a while inside a monitored section
    hull_mismatch: int = 1  # the hull's name is not the name of the MMSI it broadcasts
    two_places: int = 1  # a second transponder with the same MMSI, far away
    several_mmsi: int = 1  # one vessel, its name and ENI sent under a second MMSI
    static_changes: int = 1  # an MMSI whose name and length change
    overdraught: int = 1  # reported (and measured) draught deeper than the load line
    signal: int = 2  # 冲关: entering a controlled section while the signal forbids
    dredging: int = 1  # loitering in a no-dredging zone at night without a permit
    degraded: bool = True  # a receiver degrades while a class B vessel passes its checkpoint


@dataclass
class WaterTruth:
    """One thing that happened: an injected case the named detector must find, or a look-alike
    (``detector`` None) for which nothing may be found."""

    kind: str
    detector: str | None
    site_id: str  # checkpoint, section, controlled section, zone, receiver, or "channel"
    mmsi: int | None
    vessel: str  # the name on the hull
    ts: str
    capture_ids: list[str] = field(default_factory=list)  # the passes it rests on
    until: str | None = None


@dataclass(frozen=True)
class Leg:
    """A stretch of a vessel's plan: from (s0, o0) at t0 to (s1, o1) at t1, in a nav status."""

    t0: float
    t1: float
    s0: float
    s1: float
    o0: float
    o1: float
    status: int  # AIS navigational status: 0 under way, 1 at anchor, 3 restricted, 5 moored


class Plan:
    """Where a vessel is when: consecutive legs (times in seconds since 1970)."""

    def __init__(self, legs: Sequence[Leg]) -> None:
        if not legs:
            raise ValueError("a plan needs at least one leg")
        self.legs = list(legs)
        self._t0 = [leg.t0 for leg in self.legs]

    @property
    def start(self) -> float:
        return self.legs[0].t0

    @property
    def end(self) -> float:
        return self.legs[-1].t1

    def leg(self, t: float) -> Leg:
        k = max(0, min(len(self.legs) - 1, bisect.bisect_right(self._t0, t) - 1))
        return self.legs[k]

    def at(self, t: float) -> tuple[float, float]:
        leg = self.leg(t)
        span = leg.t1 - leg.t0
        f = 0.0 if span <= 0 else min(1.0, max(0.0, (t - leg.t0) / span))
        return leg.s0 + f * (leg.s1 - leg.s0), leg.o0 + f * (leg.o1 - leg.o0)

    def time_at(self, s: float) -> float:
        """The first time the vessel is at chainage ``s`` (it must pass it)."""
        for leg in self.legs:
            lo, hi = sorted((leg.s0, leg.s1))
            if leg.s0 != leg.s1 and lo <= s <= hi:
                return leg.t0 + (s - leg.s0) / (leg.s1 - leg.s0) * (leg.t1 - leg.t0)
        raise ValueError(f"the plan never passes chainage {s:.0f} m")


@dataclass
class SimVessel:
    name: str  # painted on the hull
    kind: str
    ais: Literal["A", "B"] | None  # None: no transponder at all
    mmsi: int | None
    ais_name: str | None
    callsign: str | None
    length_m: int
    beam_m: int
    draught_m: float  # the real draught
    load_line_m: float  # 载重线吃水
    reported_draught_m: float  # what the transponder is set to; 0 = not set (unknown)
    eni: str | None  # inland vessels: sends type 8 DAC 200 FID 10
    plan: Plan
    role: str = "clean"
    registered: bool = False
    on: list[tuple[float, float]] | None = None  # when the transponder is on (None: always)
    edits: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # static data edits

    def static_at(self, t: float) -> dict[str, Any]:
        out = {"mmsi": self.mmsi, "ais_name": self.ais_name, "length_m": self.length_m}
        for when, change in self.edits:
            if t >= when:
                out.update(change)
        return out


@dataclass
class WaterTraffic:
    raws: list[AisRaw]  # in receive order
    captures: list[VesselCapture]  # in time order
    truth: list[WaterTruth]
    vessels: list[SimVessel]
    start: dt.datetime
    end: dt.datetime


BlobWriter = Callable[[bytes], tuple[str, str]]


# ---------------------------------------------------------------------------------------------
# The reach: chainage and offset along the fairway ↔ lon/lat


class Reach:
    """The registry's fairway in a local metric plane (equirectangular about its first point,
    as detectors.water_geo): ``point(s, o)`` is ``o`` metres left of the centreline, ``s``
    metres along it from its downstream end."""

    def __init__(self, reg: WaterRegistry) -> None:
        self.lon0, self.lat0 = reg.channel[0]
        self.kx = 111_320.0 * math.cos(math.radians(self.lat0))
        self.ky = 110_574.0
        self.pts = [self.xy(p) for p in reg.channel]
        self.cum = [0.0]
        for (ax, ay), (bx, by) in zip(self.pts, self.pts[1:], strict=False):
            self.cum.append(self.cum[-1] + math.hypot(bx - ax, by - ay))
        self.length = self.cum[-1]
        self.line = shapely.LineString(self.pts)

    def xy(self, p: LonLat) -> tuple[float, float]:
        return (p[0] - self.lon0) * self.kx, (p[1] - self.lat0) * self.ky

    def lonlat(self, x: float, y: float) -> LonLat:
        return self.lon0 + x / self.kx, self.lat0 + y / self.ky

    def _segment(self, s: float) -> tuple[int, float]:
        s = min(max(s, 0.0), self.length)
        k = min(len(self.pts) - 2, max(0, bisect.bisect_right(self.cum, s) - 1))
        return k, s - self.cum[k]

    def direction(self, s: float) -> tuple[float, float]:
        k, _ = self._segment(s)
        (ax, ay), (bx, by) = self.pts[k], self.pts[k + 1]
        n = math.hypot(bx - ax, by - ay) or 1.0
        return (bx - ax) / n, (by - ay) / n

    def point(self, s: float, o: float = 0.0) -> tuple[float, float]:
        k, along = self._segment(s)
        ux, uy = self.direction(s)
        ax, ay = self.pts[k]
        return ax + ux * along - uy * o, ay + uy * along + ux * o

    def bearing(self, s: float, up: bool) -> float:
        """Course over ground (degrees from north) of a vessel moving along the channel."""
        ux, uy = self.direction(s)
        deg = math.degrees(math.atan2(ux, uy)) % 360.0
        return deg if up else (deg + 180.0) % 360.0

    def chainage(self, p: LonLat) -> tuple[float, float]:
        """(chainage, metres left of the centreline) of a lon/lat point."""
        x, y = self.xy(p)
        s = float(self.line.project(shapely.Point(x, y)))
        cx, cy = self.point(s)
        ux, uy = self.direction(s)
        return s, (x - cx) * -uy + (y - cy) * ux

    def line_chainage(self, line: tuple[LonLat, LonLat]) -> float:
        """Where a bank-to-bank line crosses the centreline."""
        seg = shapely.LineString([self.xy(line[0]), self.xy(line[1])])
        hit = self.line.intersection(seg)
        if hit.is_empty:
            raise ValueError(f"the line {line} does not cross the channel")
        return float(self.line.project(hit.representative_point()))


def _side(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


# ---------------------------------------------------------------------------------------------
# The simulator


class _Sim:
    def __init__(self, reg: WaterRegistry, cfg: WaterSimConfig) -> None:
        if cfg.minutes < MIN_MINUTES:
            raise ValueError(f"minutes={cfg.minutes}: the injected cases need {MIN_MINUTES}")
        self.reg, self.cfg = reg, cfg
        self.rng = random.Random(f"water-traffic:{cfg.seed}")
        self.reach = Reach(reg)
        self.t0 = cfg.start.timestamp()
        self.t_end = self.t0 + cfg.minutes * 60
        self.tz = reg.timezone_offset_hours
        self.rx_at = {
            rx.id: (*self.reach.xy((rx.lon, rx.lat)), rx.range_km * 1000) for rx in reg.receivers
        }
        self.lines: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        self.line_s: dict[str, float] = {}
        for cp in reg.checkpoints:
            self._line(cp.id, cp.line)
        for cs in reg.controlled_sections:
            self._line(f"{cs.id}:up", cs.entry_up)
            self._line(f"{cs.id}:down", cs.entry_down)
        self.cp_times: dict[str, list[float]] = {cp.id: [] for cp in reg.checkpoints}
        self.queue: dict[tuple[str, bool, float], int] = {}
        self.vessels: list[SimVessel] = []
        self.expect: list[tuple[WaterTruth, SimVessel | None, tuple[str, ...]]] = []
        self.names: set[str] = {n for v in reg.vessels for n in (v.name, v.ais_name) if n}
        self.mmsis: set[int] = {v.mmsi for v in reg.vessels if v.mmsi is not None}
        self.enis: set[str] = {v.eni for v in reg.vessels if v.eni}
        # class B coverage: the stretch from the downstream end that some receiver hears
        step = 50.0
        s = 0.0
        while s <= self.reach.length and any(
            self._heard(rx.id, self.reach.point(s), "B") for rx in reg.receivers
        ):
            s += step
        self.b_cover = max(0.0, s - step)
        self.degraded: list[tuple[str, float, float]] = []

    def _line(self, key: str, line: tuple[LonLat, LonLat]) -> None:
        self.lines[key] = (self.reach.xy(line[0]), self.reach.xy(line[1]))
        self.line_s[key] = self.reach.line_chainage(line)

    def _heard(self, rx_id: str, p: tuple[float, float], ais: str) -> bool:
        x, y, range_m = self.rx_at[rx_id]
        return math.hypot(p[0] - x, p[1] - y) <= range_m * (CLASS_B_RANGE if ais == "B" else 1.0)

    def _span(self, s: float, half: float) -> tuple[float, float]:
        """[s − half, s + half] within the channel and 300 m clear of every line but one at s."""
        lo, hi = max(0.0, s - half), min(self.reach.length, s + half)
        for other in self.line_s.values():
            if abs(other - s) < 1.0:
                continue
            if other < s:
                lo = max(lo, other + 300)
            else:
                hi = min(hi, other - 300)
        return lo, hi

    def _longest_stretch(self) -> tuple[float, float]:
        """The longest stretch between two lines (or a line and an end of the channel)."""
        cuts = sorted({0.0, self.reach.length, *self.line_s.values()})
        return max(itertools.pairwise(cuts), key=lambda ab: ab[1] - ab[0])

    # --- identities --------------------------------------------------------------------------

    def _identity(self, kind: str) -> tuple[str, str, int, str, str]:
        """(hull name, AIS name, MMSI, ENI, call sign), all new."""
        rng = self.rng
        zh, py = KIND_NAME[kind]
        while True:
            (p_zh, p_py), (c_zh, c_py) = rng.choice(PROVINCES), rng.choice(PLACES)
            number = f"{rng.randrange(1, 10_000):0{rng.choice((3, 4))}d}"
            name, ais_name = f"{p_zh}{c_zh}{zh}{number}", f"{p_py}{c_py}{py}{number}"
            if len(ais_name) <= 20 and name not in self.names and ais_name not in self.names:
                break
        self.names |= {name, ais_name}
        mmsi = self._mmsi()
        while (eni := f"{rng.randrange(10**7, 10**8):08d}") in self.enis:
            pass
        self.enis.add(eni)
        callsign = "B" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(5))
        return name, ais_name, mmsi, eni, callsign

    def _mmsi(self) -> int:
        while (m := self.rng.choice((412, 413, 414)) * 10**6 + self.rng.randrange(10**6)) in (
            self.mmsis
        ):
            pass
        self.mmsis.add(m)
        return m

    def _vessel(self, kind: str, ais: Literal["A", "B"] | None, plan: Plan, role: str,
                inland: bool = False, **kw: Any) -> SimVessel:  # fmt: skip
        name, ais_name, mmsi, eni, callsign = self._identity(kind)
        length = {"cargo": (45, 90), "tanker": (40, 75), "passenger": (25, 45), "tug": (18, 30),
                  "dredger": (35, 55), "other": (10, 20)}[kind]  # fmt: skip
        n = self.rng.randint(*length)
        load_line = round(0.8 + n * 0.03, 2)  # shallow inland hulls
        draught = round(load_line * self.rng.uniform(0.55, 0.9), 2)
        v = SimVessel(
            name=name, kind=kind, ais=ais, mmsi=mmsi if ais else None,
            ais_name=ais_name if ais else None, callsign=callsign if ais else None,
            length_m=n, beam_m=max(3, round(n / 6.5)), draught_m=draught, load_line_m=load_line,
            reported_draught_m=draught if ais == "A" else 0.0,
            eni=eni if ais == "A" and inland else None, plan=plan, role=role,
        )  # fmt: skip
        for k, value in kw.items():
            setattr(v, k, value)
        self.vessels.append(v)
        return v

    def _registered(self, r: RegisteredVessel, plan: Plan, role: str, draught: float) -> SimVessel:
        assert r.mmsi is not None
        n = round(r.length_m)
        v = SimVessel(
            name=r.name, kind=r.kind, ais="A", mmsi=r.mmsi,
            ais_name=r.ais_name or None, callsign=f"B{r.mmsi % 100_000:05d}", length_m=n,
            beam_m=round(r.beam_m) if r.beam_m else max(3, round(n / 6.5)),
            draught_m=draught, load_line_m=r.load_line_draught_m, reported_draught_m=draught,
            eni=self._eni(), plan=plan,
            role=role, registered=True,
        )  # fmt: skip
        self.vessels.append(v)
        return v

    def _eni(self) -> str:
        while (eni := f"{self.rng.randrange(10**7, 10**8):08d}") in self.enis:
            pass
        self.enis.add(eni)
        return eni

    # --- plans -------------------------------------------------------------------------------

    def _minute(self, t: float) -> int:
        return int((t + self.tz * 3600) // 60) % 1440

    def _open(self, windows: Sequence[Any], t: float) -> bool:
        m = self._minute(t)
        for w in windows:
            a, b = minute_of_day(w.start), minute_of_day(w.end)
            if (a <= m < b) if a < b else (m >= a or m < b):
                return True
        return False

    def _may_enter(self, windows: Sequence[Any], t: float) -> bool:
        return self._open(windows, t - 30) and self._open(windows, t + CLEAR_S)

    def _release(self, cs: ControlledSection, up: bool, t: float, to_line_s: float) -> float:
        """When a vessel at the anchorage since ``t`` may go: at the next opening of the signal
        in its direction, after those queued for it; far beyond the window if none comes."""
        windows = cs.open_up if up else cs.open_down
        m = math.ceil(t / 60) * 60.0
        while m < self.t_end + 86_400:
            if self._open(windows, m) and not self._open(windows, m - 60):
                k = self.queue.get((cs.id, up, m), 0)
                go = max(t, m + 60 + QUEUE_S * k)
                if self._may_enter(windows, go + to_line_s):
                    self.queue[(cs.id, up, m)] = k + 1
                    return go
            m += 60
        return self.t_end + 86_400

    def _route(
        self, t: float, s_from: float, s_to: float, knots: float, offset: float,
        obey: bool = True,
    ) -> list[Leg]:  # fmt: skip
        """Legs from ``s_from`` to ``s_to`` at ``knots``, leaving at ``t``; with ``obey``, waiting
        at each controlled section's anchorage until its signal lets the vessel in."""
        v = knots * KNOT
        up = s_to > s_from
        legs: list[Leg] = []
        s = s_from
        for cs in self.reg.controlled_sections:
            s_e = self.line_s[f"{cs.id}:{'up' if up else 'down'}"]
            if not obey or not (s < s_e < s_to if up else s_to < s_e < s):
                continue
            hold = s_e - HOLD_BEFORE_M if up else s_e + HOLD_BEFORE_M
            if (hold - s) * (1 if up else -1) > 0:
                t = self._sail(legs, t, s, hold, v, offset)
                s = hold
            to_line = abs(s_e - s) / v
            windows = cs.open_up if up else cs.open_down
            if not self._may_enter(windows, t + to_line):
                go = self._release(cs, up, t, to_line)
                legs.append(Leg(t, go, s, s, offset, offset, 1))
                t = go
        self._sail(legs, t, s, s_to, v, offset)
        return legs

    @staticmethod
    def _sail(legs: list[Leg], t: float, s0: float, s1: float, v: float, o: float) -> float:
        if s0 == s1:
            return t
        t1 = t + abs(s1 - s0) / v
        legs.append(Leg(t, t1, s0, s1, o, o, 0))
        return t1

    def _crossings(self, plan: Plan, key: str) -> list[tuple[float, bool]]:
        """(time, moving up) of each crossing of the line ``key`` by the vessel's path."""
        a, b = self.lines[key]
        s_line = self.line_s[key]
        out = []
        for leg in plan.legs:
            lo, hi = sorted((leg.s0, leg.s1))
            if leg.s0 == leg.s1 or hi < s_line - 500 or lo > s_line + 500:
                continue

            def side(t: float) -> float:
                return _side(a, b, self.reach.point(*plan.at(t)))

            n = max(2, int((hi - lo) / 100) + 1)
            ts = [leg.t0 + (leg.t1 - leg.t0) * k / n for k in range(n + 1)]
            for ta, tb in itertools.pairwise(ts):
                fa, fb = side(ta), side(tb)
                if (fa > 0) == (fb > 0):
                    continue
                for _ in range(40):
                    mid = (ta + tb) / 2
                    if (side(mid) > 0) == (fa > 0):
                        ta = mid
                    else:
                        tb = mid
                out.append(((ta + tb) / 2, leg.s1 > leg.s0))
        return out

    def _cp_crossings(self, plan: Plan) -> list[tuple[str, float, bool]]:
        return [(cp.id, t, up) for cp in self.reg.checkpoints
                for t, up in self._crossings(plan, cp.id)]  # fmt: skip

    def _course(self, up: bool) -> tuple[float, float]:
        """(knots, metres off the centreline) of a cargo vessel keeping to its side."""
        return self.rng.uniform(6, 9), (1 if up else -1) * self.rng.uniform(40, 100)

    def _place(
        self, target: float, s_at: float, lo: float, hi: float, up: bool,
        knots: float | None = None, obey: bool = True,
    ) -> Plan:  # fmt: skip
        """A trip over [lo, hi], up or down, at ``s_at`` near ``target``: the time nearest it at
        which every checkpoint pass keeps ``CLEAR_S`` from every other vessel's."""
        speed, offset = self._course(up)
        for k in range(61):
            shift = (k + 1) // 2 * 20.0 * (1 if k % 2 else -1)
            plan = self._trip(target + shift, s_at, lo if up else hi, hi if up else lo,
                              knots or speed, offset, obey)  # fmt: skip
            passes = self._cp_crossings(plan)
            if all(abs(t - u) >= CLEAR_S for cp, t, _ in passes for u in self.cp_times[cp]):
                self._passed(plan, passes)
                return plan
        raise ValueError("no clear time for an injected pass: the traffic is too dense")

    def _passed(self, plan: Plan, passes: list[tuple[str, float, bool]] | None = None) -> None:
        for cp, t, _ in passes if passes is not None else self._cp_crossings(plan):
            self.cp_times[cp].append(t)

    def _slot(self, kind: str, k: int, n: int) -> float:
        a, b = SLOTS[kind]
        a = a if a >= 0 else self.cfg.minutes + a
        b = b if b >= 0 else self.cfg.minutes + b
        return self.t0 + 60 * (a + (k + 0.5) * (b - a) / max(n, 1))

    def _trip(self, t_at: float, s_at: float, s_from: float, s_to: float, knots: float,
              offset: float, obey: bool = True) -> Plan:  # fmt: skip
        """A trip from ``s_from`` to ``s_to`` that is at ``s_at`` at ``t_at`` (before any wait)."""
        start = t_at - abs(s_at - s_from) / (knots * KNOT)
        return Plan(self._route(start, s_from, s_to, knots, offset, obey))

    def _expect(self, truth: WaterTruth, vessel: SimVessel | None = None,
                checkpoints: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.expect.append((truth, vessel, checkpoints))

    def _iso(self, t: float) -> str:
        return dt.datetime.fromtimestamp(t, self.cfg.start.tzinfo).isoformat()

    # --- traffic -----------------------------------------------------------------------------

    def clean(self, registered: list[RegisteredVessel]) -> None:
        cfg, rng, L = self.cfg, self.rng, self.reach.length
        n_b = round(cfg.vessels * cfg.class_b_share)
        s_up = min((self.line_s[f"{cs.id}:up"] for cs in self.reg.controlled_sections), default=L)
        b_max = min(self.b_cover, s_up) - 600
        span = cfg.minutes * 60
        for _ in range(cfg.vessels - n_b):
            kind = rng.choices(("cargo", "tanker", "tug", "passenger"), (0.7, 0.1, 0.1, 0.1))[0]
            knots = rng.uniform(*SPEED_KN[kind])
            up = rng.random() < 0.5
            transit = L / (knots * KNOT)
            start = self.t0 - transit + rng.random() * (span + transit - 600)
            offset = (1 if up else -1) * rng.uniform(40, 120)
            plan = Plan(self._route(start, 0.0 if up else L, L if up else 0.0, knots, offset))
            self._passed(plan)
            self._vessel(kind, "A", plan, "clean", inland=rng.random() < cfg.inland_share)
        for _ in range(n_b):
            kind = rng.choice(("other", "tug"))
            while True:  # from berth to berth, not on a line: AIS is heard before a pass
                a, b = sorted(rng.uniform(300, b_max) for _ in range(2))
                if b - a >= 2000 and all(abs(x - y) >= 300 for x in (a, b)
                                         for y in self.line_s.values()):  # fmt: skip
                    break
            up = rng.random() < 0.5
            knots = rng.uniform(*SPEED_KN["other"])
            start = self.t0 - 1200 + rng.random() * span
            offset = (1 if up else -1) * rng.uniform(60, 150)
            plan = Plan(self._route(start, a if up else b, b if up else a, knots, offset))
            self._passed(plan)
            self._vessel(kind, "B", plan, "clean")
        a, b = self._longest_stretch()
        for n in range(cfg.moored):
            s = a + (b - a) * (n + 1) / (cfg.moored + 1)
            leg = Leg(self.t0 - 3600, self.t_end + 3600, s, s, 260.0, 260.0, 5)
            self._vessel("cargo", "A", Plan([leg]), "moored", inland=True)
        for k, r in enumerate(registered):
            knots = rng.uniform(*SPEED_KN[r.kind])
            up = k % 2 == 0
            target = self.t0 + span * (k + 1) / (len(registered) + 2)
            s_mid = L / 2
            offset = (1 if up else -1) * rng.uniform(40, 120)
            plan = self._trip(target, s_mid, 0.0 if up else L, L if up else 0.0, knots, offset)
            self._passed(plan)
            unknown = k == 0  # draught 0 on the air: "not set", never a violation
            draught = round(r.load_line_draught_m * rng.uniform(0.6, 0.9), 2)
            v = self._registered(r, plan, "draught_unknown" if unknown else "clean", draught)
            if unknown:
                v.reported_draught_m = 0.0
                v.eni = None
                self._expect(WaterTruth("draught_unknown", None, "channel", r.mmsi, r.name,
                                        self._iso(target)))  # fmt: skip

    # --- injected cases ----------------------------------------------------------------------

    def dark(self) -> None:
        cps = self.reg.checkpoints
        for k in range(self.cfg.dark if cps else 0):
            cp = cps[k % len(cps)]
            s_c = self.line_s[cp.id]
            lo, hi = self._span(s_c, 1800)
            at = self._slot("dark", k, self.cfg.dark)
            plan = self._place(at, s_c, lo, hi, k % 2 == 0, obey=False)
            v = self._vessel("cargo", None, plan, "dark")
            self._expect(WaterTruth("dark", "water.pass.no_ais", cp.id, None, v.name,
                                    self._iso(plan.time_at(s_c))), v, (cp.id,))  # fmt: skip

    def gaps(self) -> None:
        a, b = self._longest_stretch()
        quiet_a, quiet_b = a + 600, b - 600
        mid = self.reach.lonlat(*self.reach.point((quiet_a + quiet_b) / 2))
        sec = next((s for s in self.reg.sections
                    if shapely.Polygon(s.polygon).intersects(shapely.Point(*mid))), None)  # fmt: skip
        if sec is None or self.cfg.gaps == 0:
            return
        knots = min(7.5, (quiet_b - quiet_a) / (1.3 * sec.max_gap_s) / KNOT)
        if knots < 3:
            raise ValueError("no stretch between two lines is long enough for an AIS gap")
        lo, hi = max(0.0, a - 1500), min(self.reach.length, b + 1500)
        for k in range(self.cfg.gaps):
            up = k % 2 == 0
            at = self._slot("gap", k, self.cfg.gaps)
            plan = self._place(at, quiet_a if up else quiet_b, lo, hi, up, knots=knots)
            t_a, t_b = sorted((plan.time_at(quiet_a), plan.time_at(quiet_b)))
            v = self._vessel("cargo", "A", plan, "gap", inland=True,
                             on=[(plan.start, t_a), (t_b, plan.end)])  # fmt: skip
            self._expect(WaterTruth("gap", "water.track.gap", sec.id, v.mmsi, v.name,
                                    self._iso(t_a), until=self._iso(t_b)))  # fmt: skip

    def _through_checkpoints(self) -> tuple[float, float, list[float]]:
        s = sorted(self.line_s[cp.id] for cp in self.reg.checkpoints)
        return max(0.0, s[0] - 1500), min(self.reach.length, s[-1] + 1500), s

    def hull_mismatch(self, borrowed: list[RegisteredVessel]) -> None:
        if not borrowed or not self.reg.checkpoints:
            return
        lo, hi, s = self._through_checkpoints()
        for k, r in enumerate(borrowed):
            up = k % 2 == 0
            at = self._slot("hull_name", k, len(borrowed))
            plan = self._place(at, s[0] if up else s[-1], lo, hi, up)
            hull, *_ = self._identity("cargo")
            v = self._registered(r, plan, "hull_name", round(r.load_line_draught_m * 0.8, 2))
            v.name, v.registered = hull, False  # another vessel, sending r's identity
            for cp in self.reg.checkpoints:
                when = self._iso(plan.time_at(self.line_s[cp.id]))
                self._expect(WaterTruth("hull_name", "water.pass.hull_name", cp.id, r.mmsi, hull,
                                        when), v, (cp.id,))  # fmt: skip

    def two_places(self) -> None:
        a, b = self._longest_stretch()
        lo, hi = max(0.0, a - 1500), min(self.reach.length, b + 1500)
        for k in range(self.cfg.two_places):
            up = k % 2 == 0
            near, far = (a + 600, b - 600) if up else (b - 600, a + 600)
            plan = self._place(self._slot("two_places", k, self.cfg.two_places), near, lo, hi, up)
            v = self._vessel("cargo", "A", plan, "two_places", inland=True)
            t_c = plan.time_at(near)
            # a second transponder set to v's MMSI, on a vessel lying far off, heard for 20 s
            clone = Plan([Leg(t_c - 60, t_c + 60, far, far + 1.0, 200.0, 200.0, 0)])
            c = self._vessel("cargo", "A", clone, "clone", on=[(t_c, t_c + 20)])
            c.mmsi, c.ais_name, c.length_m, c.beam_m = v.mmsi, v.ais_name, v.length_m, v.beam_m
            self._expect(WaterTruth("two_places", "water.track.two_places", "channel", v.mmsi,
                                    v.name, self._iso(t_c)))  # fmt: skip

    def several_mmsi(self) -> None:
        a, b = self._longest_stretch()
        lo, hi, mid = max(0.0, a - 1500), min(self.reach.length, b + 1500), (a + b) / 2
        for k in range(self.cfg.several_mmsi):
            at = self._slot("several_mmsi", k, self.cfg.several_mmsi)
            plan = self._place(at, mid, lo, hi, k % 2 == 0)
            t_s = plan.time_at(mid)
            second = self._mmsi()  # a second transponder, or the same one set to a new MMSI
            v = self._vessel("cargo", "A", plan, "several_mmsi", inland=True,
                             on=[(plan.start, t_s), (t_s + 30, plan.end)],
                             edits=[(t_s + 30, {"mmsi": second})])  # fmt: skip
            self._expect(WaterTruth("several_mmsi", "water.static.several_mmsi", "channel",
                                    second, v.name, self._iso(t_s + 30)))  # fmt: skip

    def static_changes(self) -> None:
        a, b = self._longest_stretch()
        lo, hi, mid = max(0.0, a - 1500), min(self.reach.length, b + 1500), (a + b) / 2
        for k in range(self.cfg.static_changes):
            at = self._slot("static_changed", k, self.cfg.static_changes)
            plan = self._place(at, mid, lo, hi, k % 2 == 1)
            t_e = plan.time_at(mid)
            v = self._vessel("cargo", "A", plan, "static_changed")
            _, new_name, *_ = self._identity("cargo")
            v.edits = [(t_e, {"ais_name": new_name, "length_m": max(10, v.length_m - 12)})]
            self._expect(WaterTruth("static_changed", "water.static.changed", "channel", v.mmsi,
                                    v.name, self._iso(t_e)))  # fmt: skip

    def overdraught(self, loaded: list[RegisteredVessel]) -> None:
        if not loaded or not self.reg.checkpoints:
            return
        lo, hi, s = self._through_checkpoints()
        measuring = [cp for cp in self.reg.checkpoints if cp.draught_uncertainty_m]
        first = self.line_s[measuring[0].id] if measuring else s[0]
        for k, r in enumerate(loaded):
            at = self._slot("overdraught", k, len(loaded))
            plan = self._place(at, first, lo, hi, k % 2 == 1)
            deep = round(r.load_line_draught_m + 0.3, 2)
            v = self._registered(r, plan, "overdraught", deep)
            when = self._iso(plan.time_at(first))
            self._expect(WaterTruth("overdraught", "water.static.reported_draught", "channel",
                                    r.mmsi, r.name, when))  # fmt: skip
            for cp in measuring:
                self._expect(WaterTruth("overdraught", "water.pass.measured_draught", cp.id,
                                        r.mmsi, r.name, when), v, (cp.id,))  # fmt: skip

    def signal(self) -> None:
        sections, L = self.reg.controlled_sections, self.reach.length
        a, b = SLOTS["signal"]
        earliest, latest = self.t0 + 60 * a, self.t_end + 60 * b
        picked: list[float] = []
        for k in range(self.cfg.signal if sections else 0):
            cs = sections[k % len(sections)]
            choice = None
            for up in (k % 2 == 0, k % 2 == 1):
                windows = cs.open_up if up else cs.open_down
                t = earliest
                while choice is None and t <= latest:
                    closed = not any(self._open(windows, t + d) for d in (-150, 0, 150))
                    if closed and all(abs(t - p) >= 360 for p in picked):
                        choice = (up, t)
                    t += 60
                if choice:
                    break
            if choice is None:
                raise ValueError("no time in the window when a controlled section is closed")
            up, t_c = choice
            picked.append(t_c)
            way = "up" if up else "down"
            s_e = self.line_s[f"{cs.id}:{way}"]
            lo, hi = max(0.0, s_e - 2000), min(L, s_e + 2000)
            knots, offset = self._course(up)
            plan = self._trip(t_c, s_e, lo if up else hi, hi if up else lo, knots, offset, False)
            self._passed(plan)
            v = self._vessel("cargo", "A", plan, "signal", inland=True)
            self._expect(WaterTruth("signal", f"water.section.entry_{way}", cs.id, v.mmsi,
                                    v.name, self._iso(t_c)))  # fmt: skip

    def dredging(self, unlicensed: list[RegisteredVessel],
                 licensed: RegisteredVessel | None) -> None:  # fmt: skip
        zones = self.reg.no_dredging_zones
        if not zones or (self.cfg.dredging == 0 and licensed is None):
            return
        z = zones[0]
        dwell = max(z.min_dwell_s * 1.75, z.min_dwell_s + 600)
        a, b = SLOTS["dredging"]
        t = self.t0 + 60 * a
        while not all(self._open([z.night], t + d) for d in range(0, int(dwell) + 301, 60)):
            t += 60
            if t + dwell > self.t_end + 60 * b:
                raise ValueError("no night in the window long enough for night dredging")
        s_z, o_z = self.reach.chainage(shapely.Polygon(z.polygon).centroid.coords[0])
        poly = shapely.Polygon([self.reach.xy(p) for p in z.polygon])
        roles: list[tuple[RegisteredVessel | None, bool]] = [(r, True) for r in unlicensed]
        roles += [(None, True)] * (self.cfg.dredging - len(roles))
        roles += [(licensed, False)] if licensed else []
        for j, (r, flagged) in enumerate(roles):
            centre = s_z + (j - (len(roles) - 1) / 2) * 260.0
            box = [self.reach.point(centre + ds, o_z + do)
                   for ds in (-100, 100) for do in (-60, 60)]  # fmt: skip
            if not all(poly.contains(shapely.Point(p)) for p in box):
                raise ValueError(f"no room in {z.id} for {len(roles)} loitering dredgers")
            legs, now, s, o = [], t - 120.0, centre, o_z
            while now < t + dwell:  # working: slow moves about its spot
                s2, o2 = centre + self.rng.uniform(-100, 100), o_z + self.rng.uniform(-60, 60)
                span = max(60.0, math.hypot(s2 - s, o2 - o) / (self.rng.uniform(0.25, 0.6) * KNOT))
                legs.append(Leg(now, now + span, s, s2, o, o2, 3))
                now, s, o = now + span, s2, o2
            clear_downstream = not any(0 < x < s for x in self.line_s.values())
            legs += self._route(now, s, 0.0 if clear_downstream else self.reach.length, 6.0, o)
            plan = Plan(legs)
            role = "dredging" if flagged else "licensed_dredging"
            if r is not None:
                v = self._registered(r, plan, role, round(r.load_line_draught_m * 0.7, 2))
            else:
                v = self._vessel("dredger", "A", plan, role)
            # a licence does not excuse dredging in a 禁采区 (《长江保护法》 Art. 28): found too
            self._expect(WaterTruth(role, "water.zone.night_loiter", z.id,
                                    v.mmsi, v.name, self._iso(t), until=self._iso(t + dwell)))  # fmt: skip

    def degrade(self) -> None:
        """A receiver degrades while a class B vessel that only it hears passes its checkpoint."""
        cps = self.reg.checkpoints
        if not self.cfg.degraded or not cps:
            return
        cp = cps[0]
        rx = cp.receiver_ids[0]
        a, b = SLOTS["degraded"]
        start, end = self.t0 + 60 * a, self.t0 + 60 * b
        self.degraded.append((rx, start, end))
        s_c = self.line_s[cp.id]
        lo, hi = self._span(s_c, 1800)
        plan = self._place((start + end) / 2, s_c, lo, min(hi, self.b_cover - 300), True,
                           knots=6.0, obey=False)  # fmt: skip
        v = self._vessel("other", "B", plan, "degraded")
        self._expect(WaterTruth("degraded", None, rx, v.mmsi, v.name, self._iso(start),
                                until=self._iso(end)), v, (cp.id,))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Transmissions and reception


def _interval(ais: str, sog_kn: float, status: int) -> float:
    """ITU-R M.1371-5 Tables 1 and 2 (no course changes: a river is near straight here)."""
    if ais == "B":
        return 180.0 if sog_kn <= 2 else 30.0
    if status in (1, 5) and sog_kn <= 3:
        return 180.0
    return 10.0 if sog_kn <= 14 else 6.0 if sog_kn <= 23 else 2.0


def _transmissions(
    sim: _Sim, v: SimVessel, rng: random.Random
) -> list[tuple[float, dict[str, Any]]]:
    """(time, pyais fields) of everything ``v``'s transponder sends inside the window."""
    if v.ais is None:
        return []
    plan, reach = v.plan, sim.reach
    lo, hi = max(plan.start, sim.t0), min(plan.end, sim.t_end)
    out: list[tuple[float, dict[str, Any]]] = []
    for a, b in v.on or [(plan.start, plan.end)]:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        t = a + rng.uniform(0, 3)
        while t < b:
            leg = plan.leg(t)
            s, o = plan.at(t)
            span = leg.t1 - leg.t0
            moving = leg.s1 - leg.s0
            speed = math.hypot(moving, leg.o1 - leg.o0) / span if span > 0 else 0.0
            sog = max(0.0, speed / KNOT + (rng.uniform(-0.15, 0.15) if speed > 0 else 0.0))
            x, y = reach.point(s, o)
            lon, lat = reach.lonlat(x + rng.gauss(0, 2.0), y + rng.gauss(0, 2.0))
            cog = reach.bearing(s, moving >= 0) if speed > 0 else 360.0
            mmsi = v.static_at(t)["mmsi"]
            fields: dict[str, Any] = {"mmsi": mmsi, "lon": round(lon, 6), "lat": round(lat, 6),
                                      "speed": _q(sog, 1), "course": _q(cog, 1),
                                      "second": int(t) % 60, "accuracy": True}  # fmt: skip
            if v.ais == "A":
                fields.update(msg_type=3 if leg.status in (1, 5) else 1, status=leg.status,
                              heading=round(cog) % 360 if speed > 0 else 511)  # fmt: skip
            else:
                fields.update(msg_type=18, heading=511, cs=True, dsc=True, band=True, msg22=True)
            out.append((t, fields))
            step = _interval(v.ais, sog, leg.status)
            t = min(t + step, leg.t1 + rng.uniform(0.5, 2.0)) if leg.t1 > t else t + step
        statics, t = [], a + rng.uniform(0, STATIC_EVERY_S)
        while t < b:
            statics.append(t)
            t += STATIC_EVERY_S
        statics += [when + 1.0 for when, _ in v.edits if a <= when + 1.0 < b]
        for t in sorted(statics):
            out += [(t + d, f) for d, f in _static(v, t)]
    return out


def _q(v: float, digits: int) -> float:
    """``v`` to ``digits`` decimals, nudged up by a hair: pyais's encoder truncates the scaled
    value (2.53 m × 100 is 252.99… and would go out as 252 cm)."""
    return round(v, digits) + 10.0 ** -(digits + 3) if v else 0.0


def _static(v: SimVessel, t: float) -> list[tuple[float, dict[str, Any]]]:
    now = v.static_at(t)
    mmsi, name, length = now["mmsi"], now["ais_name"] or "", int(now["length_m"])
    bow, port = round(length * 0.8), v.beam_m // 2
    dims = {"to_bow": bow, "to_stern": length - bow, "to_port": port,
            "to_starboard": v.beam_m - port}  # fmt: skip
    if v.ais == "B":
        return [(0.0, {"msg_type": 24, "mmsi": mmsi, "partno": 0, "shipname": name}),
                (5.0, {"msg_type": 24, "mmsi": mmsi, "partno": 1, "callsign": v.callsign or "",
                       "ship_type": SHIP_TYPE[v.kind], "vendorid": "SIM", **dims})]  # fmt: skip
    out = [(0.0, {"msg_type": 5, "mmsi": mmsi, "ais_version": 2, "callsign": v.callsign or "",
                  "shipname": name, "ship_type": SHIP_TYPE[v.kind], "epfd": 1, **dims,
                  "draught": _q(v.reported_draught_m, 1), "destination": "CHANGSHA",
                  "month": 11, "day": 23, "hour": 6, "minute": 0})]  # fmt: skip
    if v.eni is not None:
        out.append((2.0, {"msg_type": 8, "mmsi": mmsi, "dac": 200, "fid": 10, "vin": v.eni,
                          "length": float(length), "beam": float(v.beam_m),
                          "shiptype": ERI_TYPE.get(v.kind, 0), "hazard": 0,
                          "draught": _q(v.reported_draught_m, 2),
                          "loaded": 1 if v.reported_draught_m >= 0.7 * v.load_line_m else 2,
                          "speed_q": True, "course_q": True, "heading_q": True}))  # fmt: skip
    return out


def tag_block(receiver_id: str, t: float, millis: bool) -> str:
    """An NMEA 4.0 tag block: source and receive time (seconds, or milliseconds)."""
    body = f"s:{receiver_id},c:{round(t * 1000) if millis else int(t)}"
    return f"\\{body}*{nmea_checksum(body):02X}\\"


def _receive(
    sim: _Sim, sent: list[tuple[float, SimVessel, dict[str, Any]]], rng: random.Random
) -> list[AisRaw]:
    receivers = sim.reg.receivers
    seq = {rx.id: 0 for rx in receivers}
    raws: list[AisRaw] = []
    for t, v, fields in sent:
        armored, fill = MSG_CLASS[fields["msg_type"]].create(**fields).encode()
        p = sim.reach.point(*v.plan.at(t))
        channel = "A" if rng.random() < 0.5 else "B"
        when = dt.datetime.fromtimestamp(round(t * 1000) / 1000, UTC)
        for k, rx in enumerate(receivers):
            if not sim._heard(rx.id, p, v.ais or "A"):
                continue
            degraded = any(r == rx.id and a <= t < b for r, a, b in sim.degraded)
            if rng.random() >= (sim.cfg.degraded_reception if degraded else sim.cfg.reception):
                continue
            multi = len(armored) > 60
            if multi:
                seq[rx.id] = (seq[rx.id] + 1) % 10
            tag = tag_block(rx.id, t, millis=k > 0)
            for sentence in ais_to_nmea_0183(armored, "AI", "VDM", channel, fill,
                                             seq[rx.id] if multi else None):  # fmt: skip
                raws.append(AisRaw(receiver_id=rx.id, ts=when, sentence=tag + sentence))
    return raws


# ---------------------------------------------------------------------------------------------
# The whole simulation


def simulate_water(
    reg: WaterRegistry, cfg: WaterSimConfig, put_blob: BlobWriter | None = None
) -> WaterTraffic:
    """Waterway traffic over ``cfg.minutes`` from ``cfg.start``, deterministic in the seed:
    the AIS lines every receiver gives, the checkpoint captures (with hull JPEGs stored by
    ``put_blob``, when given and ``cfg.images``), and the ground truth."""
    sim = _Sim(reg, cfg)
    day = cfg.start.astimezone(reg.tz).date()
    vessels = [v for v in reg.vessels if v.mmsi is not None and v.ais_required]
    dredgers = [v for v in vessels if v.kind == "dredger"]
    others = [v for v in vessels if v.kind != "dredger"]
    unlicensed = [v for v in dredgers if not v.may_dredge_on(day)][: cfg.dredging]
    licensed = next((v for v in dredgers if v.may_dredge_on(day)), None)
    if cfg.overdraught + cfg.hull_mismatch > len(others):
        raise ValueError(
            f"overdraught={cfg.overdraught} and hull_mismatch={cfg.hull_mismatch} need as many "
            f"registered vessels (not dredgers); the registry has {len(others)}"
        )
    loaded = others[: cfg.overdraught]
    borrowed = others[cfg.overdraught : cfg.overdraught + cfg.hull_mismatch]
    rest = others[cfg.overdraught + cfg.hull_mismatch :] + [
        v for v in dredgers if v not in unlicensed and v is not licensed
    ]
    # the passenger vessel first: it most plausibly leaves its draught unset
    rest.sort(key=lambda v: v.kind != "passenger")
    sim.clean(rest)
    sim.signal()
    sim.dredging(unlicensed, licensed)
    sim.dark()
    sim.gaps()
    sim.hull_mismatch(borrowed)
    sim.two_places()
    sim.several_mmsi()
    sim.static_changes()
    sim.overdraught(loaded)
    sim.degrade()

    captures, owner = _captures(sim, put_blob)
    for item, vessel, checkpoints in sim.expect:
        if vessel is None or not checkpoints:
            continue
        item.capture_ids = [  # a hull name the camera did not read disagrees with nothing
            c.capture_id for c in captures
            if owner[c.capture_id] is vessel and c.checkpoint_id in checkpoints
            and (item.kind != "hull_name" or c.hull_text is not None or not cfg.hull_text)
        ]  # fmt: skip
    truth = [t for t, _, cps in sim.expect if not cps or t.capture_ids]

    tx_rng = random.Random(f"water-transmit:{cfg.seed}")
    sent = [(t, v, f) for v in sim.vessels for t, f in _transmissions(sim, v, tx_rng)]
    sent.sort(key=lambda x: x[0])
    raws = _receive(sim, sent, random.Random(f"water-receive:{cfg.seed}"))
    for rx, a, b in sim.degraded:
        truth.append(WaterTruth("receiver_degraded", None, rx, None, "", sim._iso(a),
                                until=sim._iso(b)))  # fmt: skip
    tz = cfg.start.tzinfo
    return WaterTraffic(
        raws, captures, truth, sim.vessels, cfg.start,
        dt.datetime.fromtimestamp(sim.t_end, tz),
    )  # fmt: skip


def _captures(
    sim: _Sim, put_blob: BlobWriter | None
) -> tuple[list[VesselCapture], dict[str, SimVessel]]:
    """A capture of every vessel crossing a checkpoint's line inside the window."""
    cfg = sim.cfg
    rng = random.Random(f"water-camera:{cfg.seed}")
    seen = []
    for n, v in enumerate(sim.vessels):
        for cp in sim.reg.checkpoints:
            for t, up in sim._crossings(v.plan, cp.id):
                if sim.t0 <= t <= sim.t_end:
                    seen.append((t, cp.id, n, up))
    seen.sort()
    seq: dict[str, int] = {}
    captures, owner = [], {}
    for t, cp_id, n, up in seen:
        v, cp = sim.vessels[n], sim.reg.checkpoint_index[cp_id]
        seq[cp.camera_id] = seq.get(cp.camera_id, 0) + 1
        capture_id = f"{cp.camera_id}-{seq[cp.camera_id]:06d}"
        readable = v.role != "clean" or rng.random() >= cfg.unreadable_rate
        images = []
        if put_blob is not None and cfg.images:
            seed = (zlib.crc32(capture_id.encode()) ^ cfg.seed) & 0xFFFF_FFFF
            uri, sha = put_blob(render_hull(v.name, seed=seed))
            images.append(ImageRef(role="side", uri=uri, sha256=sha, width=WIDTH, height=HEIGHT))
        u = cp.draught_uncertainty_m
        jitter = max(-4.0, min(4.0, rng.gauss(0, 1.5)))
        captures.append(VesselCapture(
            capture_id=capture_id, checkpoint_id=cp.id, camera_id=cp.camera_id,
            ts=dt.datetime.fromtimestamp(round((t + jitter) * 1000) / 1000, cfg.start.tzinfo),
            direction="up" if up else "down", images=images,
            hull_text=v.name if cfg.hull_text and readable else None,
            hull_confidence=round(rng.uniform(0.9, 0.99), 3) if cfg.hull_text and readable
            else None,
            draught_m=round(v.draught_m + rng.uniform(-u / 2, u / 2), 2) if u else None,
        ))  # fmt: skip
        owner[capture_id] = v
    return captures, owner


# ---------------------------------------------------------------------------------------------
# Scoring: the truth against what the detectors found


def _same(t: WaterTruth, d: WaterDetection) -> bool:
    if d.detector != t.detector or d.site_id != t.site_id:
        return False
    return d.capture_id in t.capture_ids if t.capture_ids else d.mmsi == t.mmsi


def score_water(
    truth: Sequence[WaterTruth], found: Sequence[WaterDetection]
) -> list[tuple[str, int, int, int, int]]:
    """Per detector (name, expected, found, found that match something expected, expected that
    something found matches), and last the check that no vessel was called dark, by a pass or a
    gap, where a degraded receiver explains the silence (expected 0)."""
    out = []
    names = list(DETECTORS) + sorted({d.detector for d in found} - set(DETECTORS))
    for name in names:
        e = [t for t in truth if t.detector == name]
        f = [d for d in found if d.detector == name]
        out.append((name, len(e), len(f), sum(any(_same(t, d) for t in e) for d in f),
                    sum(any(_same(t, d) for d in f) for t in e)))  # fmt: skip
    silent = [t for t in truth if t.kind == "degraded"]
    wrong = [
        d for d in found if d.violation_code == "water.ais_off"
        and any(d.capture_id in t.capture_ids or (d.mmsi is not None and d.mmsi == t.mmsi)
                for t in silent)
    ]  # fmt: skip
    out.append((DEGRADED_CHECK, 0, len(wrong), 0, 0))
    return out


__all__ = [
    "DETECTORS",
    "Reach",
    "SimVessel",
    "WaterSimConfig",
    "WaterTraffic",
    "WaterTruth",
    "score_water",
    "simulate_water",
    "tag_block",
]
