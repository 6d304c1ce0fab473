"""Decisions per second of the rules stage (decode, history, baseline, encode) as a ratio to
the bare decode (``json.loads``) of the same detections, in the same run.

    python -m bench.rules [DETECTIONS]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path

from detectors import DetectionStage
from events.clock import fixed_clock
from events.stage import Incoming
from offsite.config import load_baselines, load_registry
from rules import RulesStage
from sim import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[1]
BATCH = 2_000


async def main(n: int) -> None:
    registry = load_registry(ROOT / "configs" / "sites.yaml")
    passes = simulate(registry, SimulationConfig(vehicles=int(n * 1.25), seed=4, overload_share=1.0,
                                                 images=False))  # fmt: skip
    detect = DetectionStage(registry)
    raw = [Incoming("road.wim", 0, i, None, p.wim.to_json()) for i, p in enumerate(passes)]
    out = (await detect.process(raw)).out + (await detect.idle()).out
    out = [o for o in out if o.topic == "detections"]
    dets = [Incoming("detections", 0, i, None, o.value) for i, o in enumerate(out[:n])]
    stage = RulesStage(
        load_baselines({"national": ROOT / "configs" / "baselines" / "national.yaml"}),
        registry,
        clock=fixed_clock(SimulationConfig.start + dt.timedelta(days=1)),
    )
    t0 = time.perf_counter()
    for m in dets:
        json.loads(m.value)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    decided = 0
    for i in range(0, len(dets), BATCH):
        decided += len((await stage.process(dets[i : i + BATCH])).out)
    rules = time.perf_counter() - t0
    assert decided == len(dets)
    print(f"{len(dets)} detections")
    print(f"bare json.loads     : {len(dets) / bare:9,.0f} /s  ({bare:.2f} s)")
    print(f"rules stage         : {len(dets) / rules:9,.0f} decisions/s  ({rules:.2f} s)")
    print(f"ratio rules / decode: {bare / rules:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
