"""The cost of metrics and logs: the detection stage over simulated traffic (1 % malformed
messages, each a dead-letter log line) with its metrics and JSON logs on, as a ratio to both
off, in the same run. The detection stage is where most is measured (match rate, detections,
latency); the runner's per-batch counters are the same for every stage.

    python -m bench.metrics [VEHICLES]
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import time

from detectors import DetectionStage
from events.stage import Incoming
from offsite.config import load_registry
from offsite.logs import JsonFormatter
from offsite.pipeline import tune_gc
from sim import SimulationConfig, simulate
from sinks.metrics import observe_batch

from .detectors import ROOT

BATCH = 2000
log = logging.getLogger("offsite.kafka")


async def one_run(registry: object, raw: list[Incoming], on: bool) -> float:
    stage = DetectionStage(registry)  # type: ignore[arg-type]
    stage.observe = on
    log.disabled = not on
    t0 = time.perf_counter()
    for i in range(0, len(raw), BATCH):
        batch = raw[i : i + BATCH]
        started = time.perf_counter()
        result = await stage.process(batch)
        if on:  # what the runner does after each batch
            observe_batch(stage.name, batch, result, time.perf_counter() - started)
            for d in result.dead:
                letter = json.loads(d.value)
                log.warning("dead letter", extra={"stage": stage.name, "topic": letter["topic"],
                            "offset": letter["offset"], "reason": letter["reason"][:300]})  # fmt: skip
    await stage.idle()
    return time.perf_counter() - t0


async def main(vehicles: int) -> None:
    tune_gc()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.propagate = False
    registry = load_registry(ROOT / "configs" / "sites.yaml")
    raw: list[Incoming] = []
    now_ms = int(time.time() * 1000)
    for p in simulate(registry, SimulationConfig(vehicles=vehicles, seed=8, images=False)):
        raw.append(Incoming("road.wim", 0, len(raw), None, p.wim.to_json(), now_ms))
        if p.capture is not None:
            raw.append(Incoming("road.anpr", 0, len(raw), None, p.capture.to_json(), now_ms))
        if len(raw) % 100 == 0:
            raw.append(Incoming("road.wim", 0, len(raw), None, b'{"record_id": ', now_ms))
    off = min([await one_run(registry, raw, False) for _ in range(3)])
    on = min([await one_run(registry, raw, True) for _ in range(3)])
    print(f"{len(raw):,} messages through the detection stage, best of 3")
    print(f"metrics and logs off : {len(raw) / off:10,.0f} messages/s  ({off:.2f} s)")
    print(f"metrics and logs on  : {len(raw) / on:10,.0f} messages/s  ({on:.2f} s)")
    print(f"ratio on / off       : {off / on:.3f}   (aim ≥ 0.95)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
