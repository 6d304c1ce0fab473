"""Synthetic road traffic with ground truth: WIM records, ANPR captures with real JPEGs.

Vehicles follow GB 1589 axle configurations in realistic shares, loaded or empty, some of them
overloaded; the WIM device adds noise of its accuracy class; cameras miss, misread or fail to
read some plates; some passes carry validity flags; some vehicles come back.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from events import AnprCapture, ImageRef, Registry, WimRecord

from .images import jpeg, render_plate, render_scene

# (code, axle_count, kind, drive_axles, share, tare kg, legal gross kg, spacings template mm)
# The legal gross is the simulator's own copy of 2016 No. 62 Art. 3, used as ground truth.
CONFIGS: tuple[tuple[str, int, str, int | None, float, int, int, tuple[int, ...]], ...] = (
    ("truck_2", 2, "rigid", None, 0.34, 6_500, 18_000, (4_700,)),
    ("truck_3", 3, "rigid", None, 0.09, 11_000, 25_000, (4_500, 1_350)),
    ("combination_3", 3, "combination", None, 0.03, 12_000, 27_000, (3_600, 7_200)),
    ("truck_4", 4, "rigid", None, 0.10, 13_500, 31_000, (1_900, 4_600, 1_350)),
    ("combination_4", 4, "combination", None, 0.05, 14_500, 36_000, (3_600, 7_400, 1_310)),
    ("combination_5", 5, "combination", None, 0.07, 15_500, 43_000, (3_600, 1_350, 7_000, 1_310)),
    ("combination_6", 6, "combination", 2, 0.26, 16_500, 49_000,
     (3_200, 1_350, 7_000, 1_310, 1_310)),
    ("combination_6_single_drive", 6, "combination", 1, 0.06, 15_500, 46_000,
     (3_600, 7_200, 1_310, 1_310, 1_310)),
)  # fmt: skip

PROVINCES = "湘" * 12 + "鄂赣粤桂贵川渝豫"
LETTERS = "ABCDEFGHJKLMN"
CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
FLAGS = ("lane_change", "acceleration", "straddle", "tailgating", "off_scale")


@dataclass(frozen=True)
class SimulationConfig:
    vehicles: int = 500
    seed: int = 20261122
    start: dt.datetime = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    overload_share: float = 0.25
    empty_share: float = 0.25
    repeat_share: float = 0.15
    missed_capture_rate: float = 0.02
    unreadable_rate: float = 0.02
    misread_rate: float = 0.03
    confident_misread_rate: float = (
        0.01  # wrong plate, high confidence: only a second read catches it
    )
    flag_rate: float = 0.04
    trailer_plate_share: float = 0.3  # of combinations, captures that read the trailer's 挂 plate
    kind_reported_share: float = 0.9
    mean_headway_s: float = 4.0  # plus 2.5 s: a site sees one truck at a time
    images: bool = True
    # a WIM device whose scale reads ``drift_pct`` % heavy from ``drift_from`` on (the drift
    # watch, detectors/drift.py, must catch it)
    drift_device: str | None = None
    drift_from: dt.datetime | None = None
    drift_pct: float = 4.0


@dataclass(frozen=True)
class Vehicle:
    plate: str  # the plate a camera should read (tractor or trailer)
    config: int  # index into CONFIGS


@dataclass
class Truth:
    """What really happened on one pass, for scoring the pipeline."""

    record_id: str
    site_id: str
    device_id: str
    ts: str
    plate: str
    configuration: str
    limit_kg: int
    true_gross_kg: int
    measured_kg: int
    accuracy_class: float
    flags: list[str]
    capture: str  # ok | missed | unreadable | misread | confident_misread
    read_plate: str | None
    capture_confidence: float | None
    drifted: bool = False  # weighed by a drifting device after its drift began


@dataclass
class Pass:
    wim: WimRecord
    capture: AnprCapture | None
    truth: Truth


BlobWriter = Callable[[bytes], tuple[str, str]]


def _plate(rng: random.Random, trailer: bool) -> str:
    head = rng.choice(PROVINCES) + rng.choice(LETTERS)
    if trailer:
        return head + "".join(rng.choice("0123456789") for _ in range(4)) + "挂"
    return head + "".join(rng.choice(CHARS) for _ in range(5))


def _misread(rng: random.Random, plate: str) -> str:
    i = rng.randrange(2, len(plate) - (1 if plate.endswith("挂") else 0))
    options = [c for c in CHARS if c != plate[i]]
    return plate[:i] + rng.choice(options) + plate[i + 1 :]


def _axle_weights(rng: random.Random, gross: int, n: int) -> list[int]:
    # steer axle carries less; the rest share the load with some unevenness
    shares = [0.6] + [1.0 + rng.uniform(-0.08, 0.08) for _ in range(n - 1)]
    total = sum(shares)
    weights = [int(gross * s / total) for s in shares]
    weights[-1] += gross - sum(weights)
    return weights


def simulate(
    registry: Registry,
    cfg: SimulationConfig,
    put_blob: BlobWriter | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Pass]:
    """Generate ``cfg.vehicles`` passes over the registry's WIM sites, deterministic in the seed.
    ``put_blob`` stores each JPEG and returns (uri, sha256); without it no images are made."""
    rng = random.Random(cfg.seed)
    sites = [
        (site, wim, cam)
        for site in registry.sites
        for wim in site.devices
        for cam in site.devices
        if (d := registry.device(wim)) and d.type == "wim"
        and (c := registry.device(cam)) and c.type == "anpr"
    ]  # fmt: skip
    if not sites:
        raise ValueError("the registry has no site with both a wim and an anpr device")
    weights = [c[4] for c in CONFIGS]
    # vehicles come back to the site they were last seen at: the per-site clocks run side by
    # side, so a return elsewhere could be faster than the road allows (a false 套牌)
    fleet: dict[str, list[Vehicle]] = {}
    clock = {site.id: cfg.start for site, _, _ in sites}
    seq: dict[str, int] = {}
    passes = []
    for n in range(cfg.vehicles):
        if progress is not None and n % 100 == 0:
            progress(n)
        site, wim_id, cam_id = rng.choice(sites)
        regulars = fleet.setdefault(site.id, [])
        if regulars and rng.random() < cfg.repeat_share:
            vehicle = rng.choice(regulars)
        else:
            k = rng.choices(range(len(CONFIGS)), weights)[0]
            trailer = CONFIGS[k][2] == "combination" and rng.random() < cfg.trailer_plate_share
            vehicle = Vehicle(_plate(rng, trailer), k)
            regulars.append(vehicle)
        code, axles, kind, drive, _, tare, limit, spacing = CONFIGS[vehicle.config]
        device = registry.device(wim_id)
        assert device is not None and device.accuracy_class is not None
        u = rng.random()
        if u < cfg.overload_share:
            true_gross = int(limit * rng.choice((1.0, 1.08, 1.2, 1.5)) * rng.uniform(1.0, 1.12))
        elif u < cfg.overload_share + cfg.empty_share:
            true_gross = int(tare * rng.uniform(0.95, 1.1))
        else:
            true_gross = int(rng.uniform(tare * 1.2, limit * 0.97))
        # in-service error of class N is ±N %; real devices stay well inside it (σ = N/6 %)
        noise = rng.gauss(0, device.accuracy_class / 600)
        measured = max(1, int(true_gross * (1 + noise)))
        headway = -cfg.mean_headway_s * math.log(1 - rng.random())
        ts = clock[site.id] = clock[site.id] + dt.timedelta(milliseconds=int(headway * 1000) + 2500)
        lane = rng.randint(1, site.lanes)
        seq[wim_id] = seq.get(wim_id, 0) + 1
        drifted = wim_id == cfg.drift_device and ts >= (cfg.drift_from or cfg.start)
        if drifted:
            measured = round(measured * (1 + cfg.drift_pct / 100))
        flags = [rng.choice(FLAGS)] if rng.random() < cfg.flag_rate else []
        speed = round(rng.uniform(35, 80), 1)  # the draws in the order they always had
        axle_kg = _axle_weights(rng, measured, axles)
        if kind == "combination" and axles in (5, 6) and true_gross >= 30_000:
            # a loaded tractor's steering axle carries the cab and engine, ~6.2 t, whatever the
            # cargo (which sits on the drive and trailer axles): what the drift watch follows.
            # Its own generator, so the rest of the traffic stays as the seed made it.
            own = random.Random(f"{cfg.seed}:{wim_id}:{seq[wim_id]}")
            steer = round(min(6_900.0, own.gauss(6_200, 250)) * measured / true_gross)
            rest = sum(axle_kg[1:])
            axle_kg = [steer] + [w * (measured - steer) // rest for w in axle_kg[1:]]
            axle_kg[-1] += measured - sum(axle_kg)
        record = WimRecord(
            record_id=f"{wim_id}-{seq[wim_id]:08d}",
            site_id=site.id,
            device_id=wim_id,
            lane=lane,
            ts=ts,
            speed_kmh=speed,
            axle_count=axles,
            axle_weights_kg=axle_kg,
            axle_spacings_mm=[s + rng.randint(-40, 40) for s in spacing],
            gross_weight_kg=measured,
            length_mm=sum(spacing) + 2_800,
            vehicle_kind=kind if rng.random() < cfg.kind_reported_share else None,  # type: ignore[arg-type]
            drive_axles=drive,  # type: ignore[arg-type]
            flags=flags,
        )
        u, edges = rng.random(), 0.0
        state = "ok"
        for name, rate in (("missed", cfg.missed_capture_rate), ("unreadable", cfg.unreadable_rate),
                           ("misread", cfg.misread_rate),
                           ("confident_misread", cfg.confident_misread_rate)):  # fmt: skip
            edges += rate
            if u < edges:
                state = name
                break
        capture, read, conf = None, None, None
        if state != "missed":
            read = None if state == "unreadable" else (
                _misread(rng, vehicle.plate) if "misread" in state else vehicle.plate
            )  # fmt: skip
            conf = round(
                rng.uniform(0.2, 0.45) if state == "unreadable"
                else rng.uniform(0.55, 0.85) if state == "misread"
                else rng.uniform(0.92, 0.995), 3
            )  # fmt: skip
            refs = []
            if put_blob is not None and cfg.images:
                plate_img = render_plate(vehicle.plate, "yellow", degraded=state == "unreadable")
                scene = render_scene(plate_img, axles, lane, f"{site.id} {ts:%Y-%m-%d %H:%M:%S}")
                for role, img in (("plate", plate_img), ("overview", scene)):
                    data = jpeg(img)
                    uri, sha = put_blob(data)
                    h, w = img.shape[:2]
                    refs.append(ImageRef(role=role, uri=uri, sha256=sha, width=w, height=h))  # type: ignore[arg-type]
            seq[cam_id] = seq.get(cam_id, 0) + 1
            capture = AnprCapture(
                capture_id=f"{cam_id}-{seq[cam_id]:08d}",
                site_id=site.id,
                camera_id=cam_id,
                lane=lane,
                ts=ts + dt.timedelta(milliseconds=int(max(-350, min(350, rng.gauss(0, 100))))),
                plate=read,
                plate_color="yellow",
                confidence=conf,
                vehicle_type="truck",
                images=refs,
            )
        truth = Truth(
            record_id=record.record_id, site_id=site.id, device_id=wim_id, ts=ts.isoformat(),
            plate=vehicle.plate, configuration=code, limit_kg=limit, true_gross_kg=true_gross,
            measured_kg=measured, accuracy_class=device.accuracy_class, flags=flags,
            capture=state, read_plate=read, capture_confidence=conf, drifted=drifted,
        )  # fmt: skip
        passes.append(Pass(record, capture, truth))
    passes.sort(key=lambda p: (p.wim.ts, p.wim.record_id))
    return passes
