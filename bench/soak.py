"""Soak (`make soak`): steady simulated road traffic through two `offsite run` workers for
``--minutes`` (10 by default); each worker's memory (RSS) and the lag of every stage's consumer
group are sampled. It fails when a worker's memory grows more than 10 % after the first minute,
or when the lag keeps growing (its lowest over the last fifth of the run above its highest over
the second fifth), and prints the samples.

The input is paced by the clock (that is what steady input is); the end of the run is not a
wait: the verdict is read from the samples.

    python -m bench.soak [--minutes 10] [--rate 20] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from events.stage import Outgoing
from offsite import services
from offsite.config import Settings
from offsite.faults import Workers, scratch
from offsite.kafka import OffsetProbe, producer, send_all
from offsite.pipeline import STAGES, build_stages, group_id, prepare
from offsite.testing import isolated_settings
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages

GROWTH = 1.10  # the most a worker's RSS may grow after the first minute


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_kb: tuple[int, ...]  # per worker
    lag: int  # over every group and partition


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def verdict(samples: Sequence[Sample]) -> list[str]:
    """What is wrong with a run's samples (empty: it passed)."""
    problems = []
    after_first = [s for s in samples if s.at_s >= 60]
    if not after_first:
        return ["the run was shorter than a minute"]
    base = after_first[0]
    for w, start in enumerate(base.rss_kb):
        end = samples[-1].rss_kb[w]
        if end > start * GROWTH:
            problems.append(f"worker {w + 1}: RSS {start / 1024:.0f} MiB after the first minute, "
                            f"{end / 1024:.0f} MiB at the end (+{(end / start - 1) * 100:.0f} %)")  # fmt: skip
    n = len(samples)
    second, last = samples[n // 5 : 2 * n // 5], samples[4 * n // 5 :]
    if second and last and min(s.lag for s in last) > max(s.lag for s in second):
        problems.append(f"lag keeps growing: at most {max(s.lag for s in second)} in the second "
                        f"fifth of the run, at least {min(s.lag for s in last)} in the last")  # fmt: skip
    return problems


async def soak(
    base: Settings, minutes: float, rate: float, every_s: float
) -> tuple[list[Sample], list[str]]:
    settings = await isolated_settings(base, "soak", verify_plates=False)
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    vehicles = int(minutes * 60 * rate) + 1
    passes = await asyncio.to_thread(
        make_traffic, settings, SimulationConfig(vehicles=vehicles, seed=8, images=False)
    )
    messages = traffic_messages(passes, prefix)
    await publish(settings, ep, [])  # the topics
    store = await prepare(settings, ep)
    try:
        stages = build_stages(settings, store, STAGES)
    finally:
        await store.close()
    groups = {group_id(settings, s.name): s.inputs for s in stages}
    workers = Workers(settings, batch_max=2000)
    procs = [await workers.start(), await workers.start()]
    samples: list[Sample] = []
    per_tick = max(1, round(len(messages) / (minutes * 60)))  # messages per second of input
    start = time.monotonic()
    try:
        async with producer(ep.bootstrap) as prod, OffsetProbe(ep.bootstrap) as probe:
            sent, next_sample = 0, 0.0
            while (now := time.monotonic() - start) < minutes * 60:
                due = min(len(messages), int(now * per_tick) + per_tick)
                if due > sent:
                    await send_all(prod, [Outgoing(m.topic, m.key, m.value)
                                          for m in messages[sent:due]])  # fmt: skip
                    sent = due
                if now >= next_sample:
                    lag = sum([sum((await probe.lag(g, ts)).values()) for g, ts in groups.items()])
                    samples.append(Sample(now, tuple(rss_kb(p.pid) for p in procs), lag))
                    print(f"{now:7.0f} s  RSS {' '.join(f'{r / 1024:6.0f}' for r in samples[-1].rss_kb)} MiB"
                          f"  lag {lag:>7}", file=sys.stderr)  # fmt: skip
                    next_sample += every_s
                await workers.check()
                await asyncio.sleep(min(1.0, max(0.0, next_sample - now)))
    finally:
        await workers.stop()
    return samples, workers.died


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=20.0, help="vehicles per second")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--bootstrap", help="a Kafka broker or cluster (default: the embedded one)")
    args = ap.parse_args(argv)
    base = scratch(args.bootstrap, "soak")
    try:
        samples, died = asyncio.run(soak(base, args.minutes, args.rate, args.every))
    finally:
        services.down(base)
    problems = verdict(samples) + [f"a worker died ({d})" for d in died]
    first = next((s for s in samples if s.at_s >= 60), samples[0])
    print(f"soak: {args.minutes:g} min at {args.rate:g} vehicles/s, two workers; "
          f"RSS after the first minute {' / '.join(f'{r / 1024:.0f}' for r in first.rss_kb)} MiB, "
          f"at the end {' / '.join(f'{r / 1024:.0f}' for r in samples[-1].rss_kb)} MiB; "
          f"lag at the end {samples[-1].lag}, highest {max(s.lag for s in samples)}")  # fmt: skip
    for p in problems:
        print("FAILED: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
