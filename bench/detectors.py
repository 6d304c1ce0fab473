"""Each vectorized detector's records/s as a ratio to its per-record reference twin, and the
detection stage's cost as a ratio to the decode-and-validate cost of the same batch.

    python -m bench.detectors [RECORDS]
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

from detectors import DetectionStage, axles, clones, hours, operation, overload
from events import AnprCapture, Registry, WimRecord
from events.stage import Incoming
from offsite.config import load_registry
from offsite.pipeline import tune_gc
from sim import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best of ``repeat`` runs: the first pays for page faults and lazy imports."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def report(name: str, n: int, fast: float, twin: float) -> None:
    print(
        f"{name:10} vectorized {n / fast:12,.0f}/s   twin {n / twin:10,.0f}/s   ratio {twin / fast:7.1f}×"
    )


def main(n: int) -> None:
    rng = np.random.default_rng(1)
    # overload
    codes = list(overload.CONFIG_INDEX)
    cols = overload.WimColumns(
        gross_kg=rng.integers(5_000, 80_000, n), config=rng.integers(0, len(codes), n),
        class_permille=rng.choice([20, 50, 100], n), steady=rng.random(n) > 0.05,
        certified=rng.random(n) > 0.01, plate_ok=rng.random(n) > 0.05,
    )  # fmt: skip
    rows = list(zip(cols.gross_kg.tolist(), [codes[c] for c in cols.config.tolist()],
                    cols.class_permille.tolist(), cols.steady.tolist(), cols.certified.tolist(),
                    cols.plate_ok.tolist(), strict=True))  # fmt: skip
    report("overload", n, timed(lambda: overload.detect(cols)),
           timed(lambda: [overload.detect_one(*r) for r in rows]))  # fmt: skip
    # axles: 2–6 axles
    count = rng.integers(2, 7, n)
    w = np.full((n, axles.MAX_AXLES), -1, np.int64)
    sp = np.full((n, axles.MAX_AXLES), -1, np.int64)
    for k in range(6):
        w[:, k] = np.where(k < count, rng.integers(3_000, 14_000, n), -1)
        sp[:, k] = np.where(k < count - 1, rng.choice([1_310, 1_350, 3_200, 4_700, 7_000], n), -1)
    dual = axles.presumed_dual(count)
    drive = np.zeros_like(dual)
    drive[:, 1] = True
    acols = axles.AxleColumns(count, w, sp, dual, drive)
    per = [(w[v, : count[v]].tolist(), sp[v, : count[v] - 1].tolist(),
            dual[v, : count[v]].tolist(), drive[v, : count[v]].tolist()) for v in range(n)]  # fmt: skip
    report("axles", n, timed(lambda: axles.detect(acols)),
           timed(lambda: [axles.detect_one(*p) for p in per]))  # fmt: skip
    # clones: ~5 sightings per plate over 6 sites
    plate, site = rng.integers(0, n // 5, n), rng.integers(0, 6, n)
    ts = rng.integers(0, 86_400_000, n)
    dist = np.abs(np.subtract.outer(np.arange(6), np.arange(6))) * 30.0

    def clones_twin() -> None:
        by: dict[int, list[int]] = {}
        for i in np.argsort(ts, kind="stable").tolist():
            by.setdefault(int(plate[i]), []).append(i)
        for idx in by.values():
            for a, b in itertools.pairwise(idx):
                clones.implausible(int(ts[a]), int(site[a]), int(ts[b]), int(site[b]), dist, 120.0)

    report("clones", n, timed(lambda: clones.detect(plate, site, ts, dist, 120.0)),
           timed(clones_twin))  # fmt: skip
    # hours
    minute, cls = rng.integers(0, 1440, n), rng.integers(0, 3, n)
    rules = hours.HoursRules(dangerous_goods_permitted=((360, 1200),))
    mins, clss = minute.tolist(), cls.tolist()
    report("hours", n, timed(lambda: hours.detect(minute, cls, rules)),
           timed(lambda: [hours.detect_one(m, c, rules) for m, c in zip(mins, clss, strict=True)]))  # fmt: skip
    # operation
    hub = rng.integers(-1, 3, n)
    licensed = rng.random(n) > 0.1
    orules = operation.OperationRules()

    def operation_twin() -> None:  # both sides start from the same arrays: grouping is timed
        groups: dict[int, list[tuple[int, int, int]]] = {}
        for i, (p, t, h, lic) in enumerate(zip(plate.tolist(), ts.tolist(), hub.tolist(),
                                                licensed.tolist(), strict=True)):  # fmt: skip
            if not lic:
                groups.setdefault(p, []).append((i, t, h))
        for g in groups.values():
            operation.detect_one(g, orules)

    report("operation", n, timed(lambda: operation.detect(plate, ts, hub, licensed, orules)),
           timed(operation_twin))  # fmt: skip


def timing(module: object, name: str, spent: list[float]) -> None:
    """Wrap ``module.name`` so that its calls add their time to ``spent``."""
    fn = getattr(module, name)

    def timed_call(*args: object) -> object:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            spent[0] += time.perf_counter() - t0

    setattr(module, name, timed_call)


def stage_messages(vehicles: int) -> tuple[Registry, list[Incoming]]:
    registry = load_registry(ROOT / "configs" / "sites.yaml")
    passes = simulate(registry, SimulationConfig(vehicles=vehicles, seed=2, images=False))
    msgs = [Incoming("road.wim", 0, i, None, p.wim.to_json()) for i, p in enumerate(passes)]
    msgs += [Incoming("road.anpr", 0, i, None, p.capture.to_json())
             for i, p in enumerate(passes) if p.capture is not None]  # fmt: skip
    return registry, msgs


def stage_cpu(vehicles: int = 400, repeat: int = 50) -> None:
    """CPU time of the whole stage over a short slice, the least of many runs: on a shared
    machine the one figure that compares two versions of the code (run each on the same slice)."""
    registry, msgs = stage_messages(vehicles)
    loop = asyncio.new_event_loop()

    async def fresh() -> None:
        stage = DetectionStage(registry)
        await stage.process(msgs)
        await stage.idle()

    cpu = min(timeit.repeat(lambda: loop.run_until_complete(fresh()), number=1, repeat=repeat,
                            timer=time.process_time))  # fmt: skip
    print(f"  whole stage, CPU per WIM record (with its capture), least of {repeat} runs of "
          f"{vehicles}: {cpu / vehicles * 1e6:.1f} µs")  # fmt: skip


async def stage_cost(vehicles: int) -> None:
    registry, msgs = stage_messages(vehicles)
    t0 = time.perf_counter()
    for m in msgs:
        (WimRecord if m.topic == "road.wim" else AnprCapture).model_validate_json(m.value)
    decode = time.perf_counter() - t0
    stage = DetectionStage(registry)
    cores = [0.0]  # the vectorized detectors the stage calls
    timing(overload, "detect", cores)
    timing(axles, "detect", cores)
    documents = [0.0]  # building the detection documents (each with its WIM record and capture)
    timing(stage, "_detection", documents)
    tune_gc()  # as `offsite run` does
    t0 = time.perf_counter()
    for i in range(0, len(msgs), 2_000):
        await stage.process(msgs[i : i + 2_000])
    await stage.idle()
    whole = time.perf_counter() - t0
    print(f"detection stage, {len(msgs)} messages: decode+validate {decode:.3f} s")
    print(f"  detectors (vectorized cores)  {cores[0]:.3f} s = {cores[0] / decode:5.2f}× decode")
    print(f"  detection documents           {documents[0]:.3f} s = "
          f"{documents[0] / decode:5.2f}× decode")  # fmt: skip
    print(f"  whole stage                   {whole:.3f} s = {whole / decode:5.2f}× decode "
          f"(beyond decoding: {(whole - decode) / decode:.2f}×: registry checks, WIM–ANPR "
          f"matching, columns, detection documents)")  # fmt: skip


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    main(n)
    asyncio.run(stage_cost(n // 4))
    stage_cpu()
