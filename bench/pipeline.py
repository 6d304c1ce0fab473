"""End-to-end events/s of the pipeline (raw topics → cases in PostgreSQL) as a ratio to a bare
aiokafka ``getmany`` + ``json.loads`` loop over the same messages, in the same run.

Both sides are measured in steady state while the same messages are being published: consumers
are started and have joined their groups first (a warm-up slice of the traffic goes through the
pipeline before the clock starts), so the one-time group join is reported separately.

    python -m bench.pipeline [VEHICLES] [--processes]   (OFFSITE_TEST_KAFKA=host:port for Kafka)

--processes runs the stages as two OS processes (`offsite run --stage detect` and
`offsite run --stage rules --stage cases`) instead of tasks of this one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from events.stage import Outgoing
from offsite import services
from offsite.config import Settings, load_registry
from offsite.kafka import wait_drained
from offsite.pipeline import build_stages, group_id, prepare, run
from offsite.testing import DECIDED_AT, settings_env
from sim import SimulationConfig, simulate
from sim.feed import publish, traffic_messages
from sim.truth import expected_cases

from .common import bench_settings

WARM = 2_000  # messages that go through before the clock starts


async def bare_loop(settings: Settings, messages: list[Outgoing]) -> float:
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    consumer = AIOKafkaConsumer(bootstrap_servers=ep.bootstrap, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        parts = [
            TopicPartition(prefix + t, p)
            for t in ("road.wim", "road.anpr")
            for p in range(settings.kafka.partitions)
        ]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # resolve positions now, not on the clock
            await consumer.position(tp)
        t0 = time.perf_counter()
        sender = asyncio.create_task(publish(settings, ep, messages))
        seen = 0
        while seen < len(messages):
            polled = await consumer.getmany(timeout_ms=200, max_records=2000)
            for msgs in polled.values():
                for m in msgs:
                    json.loads(m.value)
                seen += len(msgs)
        elapsed = time.perf_counter() - t0
        await sender
        return elapsed
    finally:
        await consumer.stop()


async def _processes(settings: Settings, stop: asyncio.Event) -> None:
    """The stages as two OS processes (detect | rules + cases), as `offsite run --stage` would."""
    env = settings_env(settings)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "offsite.cli", "run", *a, env=env
        )
        for a in (("--stage", "detect"), ("--stage", "rules", "--stage", "cases"))
    ]
    await stop.wait()
    for p in procs:
        p.terminate()
        await p.wait()


async def pipeline_loop(
    settings: Settings, messages: list[Outgoing], want: int, processes: bool
) -> tuple[float, float]:
    ep = services.endpoints(settings)
    store = await prepare(settings, ep)
    stop = asyncio.Event()
    t_start = time.perf_counter()
    road = ("detect", "rules", "cases")  # evidence packages are measured by bench.evidence
    stages = _processes(settings, stop) if processes else run(settings, ep, road, stop=stop)
    task = asyncio.create_task(stages)

    async def count() -> int:
        if task.done():
            task.result()
        return int(await store.pool.fetchval("SELECT count(*) FROM cases"))

    groups = {group_id(settings, s.name): s.inputs for s in build_stages(settings, store, road)}
    try:
        await publish(settings, ep, messages[:WARM])
        # every stage has joined its group and committed the warm-up slice to its end
        drained = asyncio.create_task(wait_drained(ep.bootstrap, groups))
        await asyncio.wait([drained, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            drained.cancel()
            task.result()
            raise RuntimeError("the pipeline stopped during the warm-up")
        warm_up = time.perf_counter() - t_start
        t0 = time.perf_counter()
        sender = asyncio.create_task(publish(settings, ep, messages[WARM:]))
        while await count() < want:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        await sender
        return elapsed, warm_up
    finally:
        stop.set()
        await task
        await store.close()


async def main(vehicles: int, processes: bool) -> None:
    bootstrap = os.environ.get("OFFSITE_TEST_KAFKA")
    registry = load_registry((await bench_settings(bootstrap)).registry)
    passes = simulate(registry, SimulationConfig(vehicles=vehicles, seed=1, images=False))
    want = len(expected_cases(passes, registry, DECIDED_AT))

    bare_settings = await bench_settings(bootstrap)
    bare_msgs = traffic_messages(passes, bare_settings.pipeline.topic_prefix)
    await publish(bare_settings, services.endpoints(bare_settings), [])  # topics exist
    bare = await bare_loop(bare_settings, bare_msgs[WARM:])

    pipe_settings = await bench_settings(bootstrap)
    pipe_msgs = traffic_messages(passes, pipe_settings.pipeline.topic_prefix)
    piped, warm_up = await pipeline_loop(pipe_settings, pipe_msgs, want, processes)

    n = len(bare_msgs) - WARM
    print(f"broker {services.endpoints(pipe_settings).bootstrap}; {vehicles} vehicles, "
          f"{n} measured messages, {want} cases")  # fmt: skip
    print(f"bare getmany + json.loads : {n / bare:9,.0f} msg/s  ({bare:.2f} s)")
    how = "2 processes" if processes else "1 process"
    print(f"pipeline → cases in PG    : {n / piped:9,.0f} msg/s  ({piped:.2f} s, {how})")
    print(f"ratio pipeline / bare     : {bare / piped:.2f}")
    print(f"(start-up incl. consumer-group joins and warm-up slice: {warm_up:.1f} s, not counted)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(int(args[0]) if args else 50_000, "--processes" in sys.argv))
