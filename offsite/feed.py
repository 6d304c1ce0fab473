"""Feeding the raw topics: simulated traffic and recorded files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from events import ROAD_ANPR, ROAD_WIM
from events.stage import Outgoing
from ingest import Pass, SimulationConfig, paced, read_records, simulate
from sinks import BlobStore

from .config import Settings, load_registry
from .kafka import ensure_topics, producer, send_all, topic_names
from .services import Endpoints, endpoints


def _progress(total: int) -> Any:
    def report(n: int) -> None:
        print(f"\rsimulating {n}/{total} vehicles", end="", file=sys.stderr, flush=True)

    return report


def make_traffic(settings: Settings, cfg: SimulationConfig) -> list[Pass]:
    blobs = BlobStore(settings.var_dir / "blobs")
    passes = simulate(
        load_registry(settings.registry),
        cfg,
        put_blob=blobs.put if cfg.images else None,
        progress=_progress(cfg.vehicles),
    )
    print(f"\rsimulated {len(passes)} vehicles" + " " * 20, file=sys.stderr)
    return passes


def traffic_messages(passes: Sequence[Pass], prefix: str = "") -> list[Outgoing]:
    """WIM records and captures interleaved in time order, as a site would send them."""
    timed = []
    for p in passes:
        timed.append(
            (p.wim.ts, 0, Outgoing(prefix + ROAD_WIM, p.wim.site_id.encode(), p.wim.to_json()))
        )
        if p.capture is not None:
            c = p.capture
            timed.append((c.ts, 1, Outgoing(prefix + ROAD_ANPR, c.site_id.encode(), c.to_json())))
    timed.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in timed]


def write_truth(path: Path, passes: Sequence[Pass]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in passes:
            f.write(json.dumps(dataclasses.asdict(p.truth), ensure_ascii=False) + "\n")


async def publish(settings: Settings, ep: Endpoints, messages: Sequence[Outgoing]) -> None:
    await ensure_topics(
        ep.bootstrap, topic_names(settings.pipeline.topic_prefix), settings.kafka.partitions
    )
    async with producer(ep.bootstrap) as prod:
        for i in range(0, len(messages), 5000):
            await send_all(prod, list(messages[i : i + 5000]))


async def simulate_traffic(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    cfg = SimulationConfig(
        vehicles=args.vehicles,
        seed=args.seed,
        overload_share=args.overload_share,
        images=not args.no_images,
        **({"start": args.start} if args.start else {}),
    )
    passes = make_traffic(settings, cfg)
    truth = args.truth or settings.var_dir / "sim" / "truth.jsonl"
    write_truth(truth, passes)
    summary: dict[str, Any] = {"vehicles": len(passes), "truth": str(truth)}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for topic, rows in (
            (ROAD_WIM, [p.wim for p in passes]),
            (ROAD_ANPR, [p.capture for p in passes if p.capture is not None]),
        ):
            path = args.out / f"{topic}.jsonl"
            path.write_bytes(b"".join(r.to_json() + b"\n" for r in rows))
            summary[topic] = str(path)
    else:
        messages = traffic_messages(passes, settings.pipeline.topic_prefix)
        await publish(settings, endpoints(settings), messages)
        summary["produced"] = len(messages)
    return summary


async def replay_files(
    settings: Settings, files: Sequence[Path], topic: str | None, speed: float | None
) -> int:
    records = list(read_records(files, topic, settings.pipeline.topic_prefix))
    ep = endpoints(settings)
    await ensure_topics(
        ep.bootstrap, topic_names(settings.pipeline.topic_prefix), settings.kafka.partitions
    )
    n = 0
    async with producer(ep.bootstrap) as prod:
        batch: list[Outgoing] = []
        async for msg in paced(records, speed):
            batch.append(msg)
            if speed or len(batch) >= 5000:
                await send_all(prod, batch)
                n += len(batch)
                batch = []
        await send_all(prod, batch)
        n += len(batch)
    return n
