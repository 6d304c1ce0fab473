"""The detection stage against a peer: a quixstreams Application that reads the same WIM records
from the same broker and does only the gross-weight check (JSON in, limit by axle count, the
overloads out to a topic). Rounds alternate (offsite, then quixstreams, ROUNDS times), each
with a new consumer group reading from the first offset; the ratio is the median of per-round
ratios of WIM records/s. Needs the bench extra: pip install -e '.[bench]'.

    python -m bench.peer [VEHICLES] [ROUNDS]

Each side's clock runs from the first record it reads to the end of the run (offsite: every
output acknowledged and the run done, as ``offsite run --until-idle``; quixstreams: its last WIM
record processed, its producer flushed and its offsets committed). Consumer-group joins are not
counted. The detection stage reads the captures too (it matches each WIM record to its plate);
its ratio is over WIM records, as the peer's.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

from events import ROAD_WIM
from events.stage import Incoming, StageResult
from offsite import services
from offsite.config import Settings
from offsite.pipeline import RunReport, build_stages, prepare, run_stages, tune_gc
from offsite.retry import ride_out
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sinks import CaseStore

from .common import bench_settings

# gross-mass limit by axle count, the rigid-truck reading (Order 2016 No. 62 Art. 3, GB 1589-2016;
# detectors/limits.py has the whole table): the peer does this one comparison per record
LIMITS = {2: 18_000, 3: 25_000, 4: 31_000, 5: 43_000}
SIX_AND_MORE = 49_000


def peer(bootstrap: str, topic: str, group: str, wim: int) -> None:
    """One quixstreams round (in its own process: Application.run owns the signals); prints
    the seconds from its first record to its end."""
    from quixstreams import Application

    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", loglevel="WARNING")  # fmt: skip
    source = app.topic(topic, value_deserializer="json")
    out = app.topic(topic + ".peer-overloads", value_serializer="json")
    seen, first = 0, 0.0

    def count(record: dict) -> None:
        nonlocal seen, first
        if seen == 0:
            first = time.perf_counter()
        seen += 1
        if seen == wim:
            app.stop()

    def overloaded(r: dict) -> bool:
        return r["gross_weight_kg"] > LIMITS.get(r["axle_count"], SIX_AND_MORE)

    sdf = app.dataframe(source).update(count).filter(overloaded)
    sdf.to_topic(out)
    app.run()
    print(time.perf_counter() - first)


async def offsite_round(
    settings: Settings, ep: services.Endpoints, store: CaseStore
) -> tuple[float, float]:
    """The detection stage (as `offsite run --stage detect --until-idle`, riding out a group
    coordinator not ready yet as it does): seconds from its first batch to the end of the run, and
    of those the seconds inside the stage's own batch processing (decode, match, detect,
    encode), the rest being the runner: fetching, producing with acks=all, committing, and
    finding that the work is done."""
    first, busy = list[float](), [0.0]

    async def attempt(stop: asyncio.Event) -> RunReport:
        (stage,) = build_stages(settings, store, ["detect"])
        process = stage.process

        async def timed(batch: list[Incoming]) -> StageResult:
            began = time.perf_counter()
            if not first:
                first.append(began)
            try:
                return await process(batch)
            finally:
                busy[0] += time.perf_counter() - began

        stage.process = timed  # type: ignore[method-assign]
        return await run_stages(settings, ep, [stage], stop=stop, until_done=True)

    report = await ride_out(attempt, asyncio.Event(), RunReport())
    assert report.done
    return time.perf_counter() - first[0], busy[0]


async def main(vehicles: int, rounds: int) -> None:
    tune_gc()
    base = await bench_settings()
    settings = base.model_copy(update={
        "pipeline": base.pipeline.model_copy(update={"verify_plates": False}),
    })  # fmt: skip
    ep = services.endpoints(settings)
    passes = make_traffic(settings, SimulationConfig(vehicles=vehicles, seed=21, images=False))
    prefix = settings.pipeline.topic_prefix
    await publish(settings, ep, traffic_messages(passes, prefix))
    wim = len(passes)
    store = await prepare(settings, ep)
    ours, theirs, inside = [], [], []
    try:
        for r in range(rounds):
            p = settings.pipeline.model_copy(update={"group_prefix": f"peer{r}"})
            total, busy = await offsite_round(
                settings.model_copy(update={"pipeline": p}), ep, store
            )
            ours.append(total)
            inside.append(busy / total)
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "bench.peer", "--peer", ep.bootstrap, prefix + ROAD_WIM,
                 f"{prefix}quix{r}", str(wim)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            theirs.append(float(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}: offsite {wim / ours[-1]:9,.0f} WIM records/s, quixstreams "
                  f"{wim / theirs[-1]:9,.0f}/s, ratio {theirs[-1] / ours[-1]:.2f}; offsite's time "
                  f"inside the stage {inside[-1]:.0%}")  # fmt: skip
    finally:
        await store.close()
    ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
    print(json.dumps({"wim_records": wim, "rounds": rounds,
                      "offsite_per_s": round(wim / statistics.median(ours)),
                      "quixstreams_per_s": round(wim / statistics.median(theirs)),
                      "ratio_median": round(statistics.median(ratios), 3),
                      "offsite_share_inside_stage": round(statistics.median(inside), 2)}))  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peer"]:
        peer(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        args = [int(a) for a in sys.argv[1:3]]
        asyncio.run(main(*(args + [50_000, 5][len(args) :])))
