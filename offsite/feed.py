"""Feeding the raw topics: simulated traffic and recorded files."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from events import ROAD_ANPR, ROAD_WIM, AnprCapture
from events.stage import Outgoing
from ingest import Pass, SimulationConfig, paced, read_records, simulate
from ingest.leads import LeadConfig, LeadTruth, simulate_leads
from sinks import BlobStore

from .config import Settings, registry_of
from .kafka import ensure_topics, producer, send_all, topic_names
from .services import Endpoints, endpoints


def _progress(total: int) -> Any:
    def report(n: int) -> None:
        print(f"\rsimulating {n}/{total} vehicles", end="", file=sys.stderr, flush=True)

    return report


def make_traffic(settings: Settings, cfg: SimulationConfig) -> list[Pass]:
    blobs = BlobStore(settings.var_dir / "blobs")
    passes = simulate(
        registry_of(settings),
        cfg,
        put_blob=blobs.put if cfg.images else None,
        progress=_progress(cfg.vehicles),
    )
    print(f"\rsimulated {len(passes)} vehicles" + " " * 20, file=sys.stderr)
    return passes


def traffic_messages(
    passes: Sequence[Pass], prefix: str = "", extra: Sequence[AnprCapture] = ()
) -> list[Outgoing]:
    """WIM records and captures interleaved in time order, as a site would send them."""
    timed = [
        (p.wim.ts, 0, Outgoing(prefix + ROAD_WIM, p.wim.site_id.encode(), p.wim.to_json()))
        for p in passes
    ]
    captures = [p.capture for p in passes if p.capture is not None] + list(extra)
    timed += [
        (c.ts, 1, Outgoing(prefix + ROAD_ANPR, c.site_id.encode(), c.to_json())) for c in captures
    ]
    timed.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in timed]


def write_truth(path: Path, passes: Sequence[Pass], injected: Sequence[LeadTruth] = ()) -> None:
    """One JSON line per pass, then one per injected lead (``{"lead": …}``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in passes:
            f.write(json.dumps(dataclasses.asdict(p.truth), ensure_ascii=False) + "\n")
        for t in injected:
            f.write(json.dumps({"lead": dataclasses.asdict(t)}, ensure_ascii=False) + "\n")


async def publish(settings: Settings, ep: Endpoints, messages: Sequence[Outgoing]) -> None:
    await ensure_topics(
        ep.bootstrap, topic_names(settings.pipeline.topic_prefix), settings.kafka.partitions
    )
    async with producer(ep.bootstrap) as prod:
        for i in range(0, len(messages), 5000):
            await send_all(prod, list(messages[i : i + 5000]))


async def simulate_traffic(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    if args.score:  # a scratch database and topics of its own, so the counts are this run's
        from .testing import isolated_settings

        settings = await isolated_settings(settings, "score", settings.pipeline.verify_plates)
    cfg = SimulationConfig(
        vehicles=args.vehicles,
        seed=args.seed,
        overload_share=args.overload_share,
        images=not args.no_images,
        **({"start": args.start} if args.start else {}),
    )
    passes = await asyncio.to_thread(make_traffic, settings, cfg)  # JPEG work off the loop
    registry = registry_of(settings)
    day = dt.datetime.combine(cfg.start.date() + dt.timedelta(days=1), dt.time(), cfg.start.tzinfo)
    extra, injected = (
        ([], []) if args.no_leads else simulate_leads(registry, LeadConfig(seed=args.seed, day=day))
    )
    truth = args.truth or settings.var_dir / "sim" / "truth.jsonl"
    write_truth(truth, passes, injected)
    summary: dict[str, Any] = {"vehicles": len(passes), "injected_leads": len(injected),
                               "truth": str(truth)}  # fmt: skip
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        captures = [p.capture for p in passes if p.capture is not None] + extra
        for topic, rows in (
            (ROAD_WIM, [p.wim for p in passes]),
            (ROAD_ANPR, sorted(captures, key=lambda c: (c.ts, c.capture_id))),
        ):
            path = args.out / f"{topic}.jsonl"
            path.write_bytes(b"".join(r.to_json() + b"\n" for r in rows))
            summary[topic] = str(path)
    else:
        messages = traffic_messages(passes, settings.pipeline.topic_prefix, extra)
        await publish(settings, endpoints(settings), messages)
        summary["produced"] = len(messages)
    if args.score:
        from .pipeline import run
        from .score import score

        print("running the pipeline until every stage has processed its input …", file=sys.stderr)
        await run(settings, endpoints(settings), until_done=True)
        scores = await score(settings, passes, injected)
        for s in scores:
            print(s.line(), file=sys.stderr)
        summary["scores"] = {s.detector: {"expected": s.expected, "found": s.found,
                                          "precision": round(s.precision, 4),
                                          "recall": round(s.recall, 4)} for s in scores}  # fmt: skip
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
