"""Injected lead scenarios with ground truth: cloned plates, coaches and dangerous goods in
restricted hours, unlicensed vehicles shuttling between passenger hubs — each with look-alike
negatives that must not become leads."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from events import AnprCapture, Registry

from .road import _plate


@dataclass(frozen=True)
class LeadConfig:
    seed: int = 20261122
    # the day after the simulated truck traffic, so no injected sighting meets a weighing
    day: dt.datetime = dt.datetime(2026, 11, 23, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    clones: int = 4  # plates seen at two sites faster than the road allows (+ as many plausible)
    night_coaches: int = 3  # coaches between 02:00 and 05:00 (+ as many by day)
    shuttles: int = 2  # unlicensed vehicles shuttling between hubs (+ licensed buses doing it)
    max_speed_kmh: float = 120.0


@dataclass
class LeadTruth:
    """What was injected: ``kind`` and ``plate`` of each lead that must be found."""

    kind: str
    plate: str
    capture_ids: list[str] = field(default_factory=list)


def simulate_leads(
    registry: Registry, cfg: LeadConfig
) -> tuple[list[AnprCapture], list[LeadTruth]]:
    rng = random.Random(cfg.seed)
    cameras = {
        s.id: next(d for d in s.devices if (dev := registry.device(d)) and dev.type == "anpr")
        for s in registry.sites
        if any((dev := registry.device(d)) and dev.type == "anpr" for d in s.devices)
    }
    captures: list[AnprCapture] = []
    truth: list[LeadTruth] = []
    seq = [0]

    def see(site: str, ts: dt.datetime, plate: str, kind: str = "truck") -> str:
        seq[0] += 1
        cid = f"{cameras[site]}-L{seq[0]:06d}"
        captures.append(AnprCapture(
            capture_id=cid, site_id=site, camera_id=cameras[site], lane=1, ts=ts, plate=plate,
            plate_color="yellow" if kind != "car" else "blue", confidence=0.97, vehicle_type=kind,
        ))  # fmt: skip
        return cid

    pairs = [(d.between, d.km) for d in registry.distances]
    for n in range(cfg.clones * 2):
        (a, b), km = rng.choice(pairs)
        plate = _plate(rng, False)
        fastest_s = km / cfg.max_speed_kmh * 3600
        clone = n % 2 == 0
        gap = fastest_s * (rng.uniform(0.2, 0.7) if clone else rng.uniform(1.3, 3.0))
        t0 = cfg.day + dt.timedelta(hours=rng.uniform(7, 18))
        ids = [see(a, t0, plate), see(b, t0 + dt.timedelta(seconds=gap), plate)]
        if clone:
            truth.append(LeadTruth("cloned_plate", plate, ids))

    coaches = [v.plate for v in registry.vehicles if v.kind == "coach"]
    for n in range(cfg.night_coaches * 2):
        plate = coaches[n % len(coaches)]
        night = n % 2 == 0
        hour = rng.uniform(2, 4.99) if night else rng.uniform(6, 21)
        site = rng.choice(sorted(cameras))
        cid = see(site, cfg.day + dt.timedelta(days=n, hours=hour), plate, "coach")
        if night:
            truth.append(LeadTruth("restricted_hours", plate, [cid]))

    for v in registry.vehicles:
        if v.kind != "dangerous_goods" or not v.permitted_minutes:
            continue
        start, end = v.permitted_minutes[0]
        for minute, outside in (((start + 30) % 1440, False), ((end + 60) % 1440, True)):
            ts = cfg.day + dt.timedelta(days=5, minutes=minute)
            cid = see(rng.choice(sorted(cameras)), ts, v.plate, "tanker")
            if outside:
                truth.append(LeadTruth("restricted_hours", v.plate, [cid]))

    hubs = sorted(s.id for s in registry.sites if s.hub)
    licensed_bus = next(
        (v.plate for v in registry.vehicles if v.kind == "bus" and v.licensed), None
    )
    for n in range(cfg.shuttles * 2):
        unlicensed = n % 2 == 0
        plate = _plate(rng, False) if unlicensed or licensed_bus is None else licensed_bus
        t = cfg.day + dt.timedelta(days=10 + n * 3, hours=7)
        ids = []
        for trip in range(6):  # three round trips in two days
            ids.append(see(hubs[trip % 2], t, plate, "bus"))
            t += dt.timedelta(hours=rng.uniform(1.0, 1.8) if trip % 2 == 0 else rng.uniform(2, 4))
        if unlicensed:
            truth.append(LeadTruth("illegal_operation", plate, ids))
    captures.sort(key=lambda c: (c.ts, c.capture_id))
    return captures, truth
