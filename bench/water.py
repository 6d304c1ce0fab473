"""The waterway detection stage's cost: AIS reports/s and captures/s through
``WaterDetectionStage`` (in memory, batches of 2,000 as the runner reads them), as a ratio to
decoding and validating the same messages, with the pass association's share (line crossings,
score matrix, assignment) and a check that it tied each capture to the right vessel.

Traffic is generated here (seeded): the shipped reach with a third checkpoint and VESSELS
registered cargo vessels sailing the fairway up or down at 5–9 kn over HOURS, a position
report every 10 s and static data every 6 min, heard by the receiver of their half of the
reach; 2 % of them never transmit. Each checkpoint photographs every vessel that passes (a
few seconds off the crossing), the hull name read right (85 %), not read (10 %) or another
vessel's (5 %). Crossings of one checkpoint come ~1–2 min apart, so a capture has 1–3 candidate
tracks within the ±120 s association window.

    python -m bench.water [VESSELS] [HOURS]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
import timeit
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from detectors import water_assoc as assoc
from detectors.water_detect import WaterDetector
from detectors.water_geo import KNOT_MPS
from detectors.water_stage import WaterDetectionStage
from events.stage import Incoming
from events.water import (
    WATER_AIS,
    WATER_CAMERA,
    AisReport,
    VesselCapture,
    WaterRegistry,
    registry_problems,
)
from offsite.config import load_waterways
from offsite.pipeline import tune_gc

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
STEP_S, STATIC_S, BATCH = 10, 360, 2_000


def registry(vessels: int) -> WaterRegistry:
    """The shipped reach, a third checkpoint between the two it has, ``vessels`` more vessels."""
    base = load_waterways(ROOT / "configs" / "waterways.yaml")
    det = WaterDetector(base)
    ch = [det.fairway.chainage(*det.plane.xy(np.array([c.lon]), np.array([c.lat])))[0][0]
          for c in base.checkpoints]  # fmt: skip
    lon, lat = det.plane.lonlat(*det.fairway.at(float(sum(ch) / len(ch))))
    doc = base.model_dump(mode="json")
    doc["checkpoints"].append({
        "id": "CP-XJ-03", "name": "月亮岛过境检查点", "lon": lon, "lat": lat,
        "camera_id": "CAM-XJ-03", "view": "东岸立杆, 朝西拍摄", "announced": True,
        "signed": True, "line": [[lon - 0.0065, lat], [lon + 0.0065, lat]],
        "receiver_ids": ["RX-XJ-01", "RX-XJ-02"],
    })  # fmt: skip
    doc["vessels"] += [
        {"name": f"湘长沙货{k:04d}", "ais_name": f"XIANGCHANGSHAHUO{k:04d}",
         "mmsi": 413_900_000 + k, "kind": "cargo", "length_m": 40.0 + k % 40,
         "load_line_draught_m": 3.0}
        for k in range(vessels)
    ]  # fmt: skip
    reg = WaterRegistry.model_validate(doc)
    assert registry_problems(reg) == [], registry_problems(reg)
    return reg


def traffic(
    reg: WaterRegistry, vessels: int, hours: float, seed: int = 7
) -> tuple[list[AisReport], list[VesselCapture], dict[str, int | None], list[int]]:
    """(reports, captures, the true MMSI of each capture (None: dark), candidates per capture)."""
    rng = np.random.default_rng(seed)
    det = WaterDetector(reg)
    length = float(det.fairway.line.length)
    split = (reg.receivers[0].lat + reg.receivers[1].lat) / 2
    cps = [(c, float(det.fairway.chainage(*det.plane.xy(np.array([c.lon]), np.array([c.lat])))[0][0]))
           for c in reg.checkpoints]  # fmt: skip
    span_s = hours * 3600
    reports: list[AisReport] = []
    crossings: list[tuple[int, float, int, bool]] = []  # checkpoint, time s, vessel, up
    for k in range(vessels):
        mmsi, up = 413_900_000 + k, bool(rng.random() < 0.5)
        mps = float(rng.uniform(5, 9)) * KNOT_MPS * (1 if up else -1)
        start_ch, start_s = (0.0 if up else length), float(rng.uniform(0, span_s))
        offset, dark = float(rng.uniform(-40, 40)), bool(rng.random() < 0.02)
        end_s = min(span_s, start_s + length / abs(mps))
        for n, (_, c) in enumerate(cps):
            crossings.append((n, start_s + (c - start_ch) / mps, k, up))
        if dark:
            continue
        phase = float(rng.uniform(0, STEP_S))
        for t in np.arange(start_s + phase, end_s, STEP_S).tolist():
            lon, lat = det.plane.lonlat(*det.fairway.at(start_ch + mps * (t - start_s), offset))
            reports.append(_report(mmsi, t, "RX-XJ-02" if lat >= split else "RX-XJ-01",
                                   msg_type=1, lat=lat, lon=lon, sog_kn=abs(mps) / KNOT_MPS,
                                   cog_deg=0.0 if up else 180.0))  # fmt: skip
        for t in np.arange(start_s + phase / 2, end_s, STATIC_S).tolist():
            lat = det.plane.lonlat(*det.fairway.at(start_ch + mps * (t - start_s)))[1]
            reports.append(_report(mmsi, t, "RX-XJ-02" if lat >= split else "RX-XJ-01",
                                   msg_type=5, name=f"XIANGCHANGSHAHUO{k:04d}",
                                   length_m=40.0 + k % 40, draught_m=2.5,
                                   draught_resolution_m=0.1))  # fmt: skip
    reports.sort(key=lambda r: r.ts)
    heard = {r.mmsi for r in reports}
    captures, truth, candidates = [], {}, []
    for n, t, k, up in crossings:
        if not 0 <= t <= span_s:
            continue
        cp = cps[n][0]
        roll = rng.random()
        hull = (f"湘长沙货{k:04d}" if roll < 0.85 else None if roll < 0.95
                else f"湘长沙货{int(rng.integers(vessels)):04d}")  # fmt: skip
        cap = VesselCapture(
            capture_id=f"cap-{n}-{k}", checkpoint_id=cp.id, camera_id=cp.camera_id,
            ts=T0 + dt.timedelta(seconds=round(t + float(rng.normal(0, 3)), 3)),
            direction="up" if up else "down", hull_text=hull,
        )  # fmt: skip
        captures.append(cap)
        truth[cap.capture_id] = 413_900_000 + k if 413_900_000 + k in heard else None
        candidates.append(sum(1 for m, u, _, _ in crossings if m == n and abs(u - t) <= 120))
    captures.sort(key=lambda c: c.ts)
    return reports, captures, truth, candidates


_ids = iter(range(1 << 62))


def _report(mmsi: int, t: float, rx: str, **fields: Any) -> AisReport:
    return AisReport(
        report_id=f"r{next(_ids)}", mmsi=mmsi, ts=T0 + dt.timedelta(seconds=round(t, 3)),
        time_source="receiver", receiver_id=rx, channel="A", sentences=["-"], **fields,
    )  # fmt: skip


def messages(reports: list[AisReport], captures: list[VesselCapture]) -> list[Incoming]:
    """Both topics merged in time order, as the stage reads them; broker time = event time."""
    items = sorted([*reports, *captures], key=lambda x: x.ts)
    offsets: Counter[str] = Counter()
    out = []
    for x in items:
        topic = WATER_AIS if isinstance(x, AisReport) else WATER_CAMERA
        ms = round(x.ts.timestamp() * 1000)
        out.append(Incoming(topic, 0, offsets[topic], None, x.to_json(), ms))
        offsets[topic] += 1
    return out


def timing(owner: object, name: str, spent: list[float], keep: list[Any] | None = None) -> None:
    """Wrap ``owner.name`` so that its calls add their time to ``spent`` (results to ``keep``)."""
    fn = getattr(owner, name)

    def timed_call(*args: object) -> object:
        t0 = time.perf_counter()
        try:
            result = fn(*args)
        finally:
            spent[0] += time.perf_counter() - t0
        if keep is not None:
            keep.append(result)
        return result

    setattr(owner, name, timed_call)


def main(vessels: int, hours: float) -> None:
    reg = registry(vessels)
    reports, captures, truth, candidates = traffic(reg, vessels, hours)
    msgs = messages(reports, captures)
    spread = Counter(min(c, 4) for c in candidates)
    share = ", ".join(f"{'4+' if c == 4 else c}: {spread[c] / len(candidates):.0%}"
                      for c in sorted(spread))  # fmt: skip
    print(f"{vessels} vessels over {hours:g} h: {len(reports):,} AIS reports, {len(captures):,} "
          f"captures at {len(reg.checkpoints)} checkpoints; candidate tracks within ±120 s of a "
          f"capture: {share}")  # fmt: skip
    tune_gc()  # as `offsite run` does

    def decode() -> None:
        for m in msgs:
            (AisReport if m.topic == WATER_AIS else VesselCapture).model_validate_json(m.value)

    t_decode = min(timeit.repeat(decode, number=1, repeat=3))
    stage = WaterDetectionStage(reg)
    detect, columns, checkpoint, scores, assign = [0.0], [0.0], [0.0], [0.0], [0.0]
    found: list[Any] = []
    timing(stage.detector, "detect", detect, found)
    timing(stage.detector, "columns", columns)
    timing(stage.detector, "_checkpoint", checkpoint)
    timing(assoc, "score_matrix", scores)
    timing(assoc, "assign", assign)
    t0 = time.perf_counter()
    out = asyncio.run(run(stage, msgs))
    t_stage = time.perf_counter() - t0
    decided = len(captures) - len(stage.captures)
    print(f"decode + validate (pydantic)   {t_decode:7.3f} s   {len(reports) / t_decode:10,.0f} "
          f"reports/s")  # fmt: skip
    print(f"water detection stage          {t_stage:7.3f} s = {t_stage / t_decode:5.2f}× decode   "
          f"{len(reports) / t_stage:10,.0f} reports/s   {decided / t_stage:8,.0f} captures/s "
          f"({len(msgs) // BATCH + 1} batches, {out:,} detections)")  # fmt: skip
    print(f"  detect() over the kept window {detect[0]:6.3f} s  (columns {columns[0]:.3f} s)")
    print(f"  pass association             {checkpoint[0]:6.3f} s = "
          f"{checkpoint[0] / max(decided, 1) * 1e6:6.0f} µs a capture  (score matrix "
          f"{scores[0]:.3f} s, assignment {assign[0]:.3f} s)")  # fmt: skip
    passes = {cid: m for f in found for cid, m, _ in f.passes}
    dark = {d.capture_id for f in found for d in f.detections if d.detector == "water.pass.no_ais"}
    done = [cid for cid in truth if cid not in stage.captures]
    right = sum(1 for cid in done if truth[cid] is not None and passes.get(cid) == truth[cid])
    heard = sum(1 for cid in done if truth[cid] is not None)
    dark_ok = sum(1 for cid in done if truth[cid] is None and cid in dark)
    darks = sum(1 for cid in done if truth[cid] is None)
    codes = Counter(d.violation_code for f in found for d in f.detections)
    print(f"  tied to the right MMSI {right}/{heard}; dark vessels called dark {dark_ok}/{darks}; "
          f"findings (before once-only) {dict(sorted(codes.items()))}")  # fmt: skip


async def run(stage: WaterDetectionStage, msgs: list[Incoming]) -> int:
    """Every batch through the stage; the number of detections sent. (An int: Python 3.11's
    ``asyncio.run`` reprs the coroutine's result when it restores the SIGINT handler.)"""
    out = 0
    for i in range(0, len(msgs), BATCH):
        out += len((await stage.process(msgs[i : i + BATCH])).out)
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200,
         float(sys.argv[2]) if len(sys.argv) > 2 else 12.0)  # fmt: skip
