"""Wiring: the stages of the road pipeline, each in its consumer group, in one process."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence

from detectors import DetectionStage
from detectors.leads import LeadStage
from detectors.plates import OcrPlateReader
from events import ConfigError
from events.stage import Stage
from evidence import EvidenceStage, Signer
from rules import RulesStage
from sinks import BlobStore, CaseStage, CaseStore, LeadSinkStage

from .config import Settings, load_baselines, load_registry
from .kafka import StageRunner, ensure_topics, producer, topic_names
from .services import Endpoints

log = logging.getLogger("offsite.pipeline")

STAGES = ("detect", "rules", "cases", "evidence", "leads", "lead-store")


def build_stages(settings: Settings, store: CaseStore, names: Sequence[str]) -> list[Stage]:
    p = settings.pipeline
    made: dict[str, Stage] = {}
    registry = load_registry(settings.registry, settings.vehicles)
    if "detect" in names:
        blobs = BlobStore(settings.var_dir / "blobs")
        made["detect"] = DetectionStage(
            registry,
            window_s=p.match_window_s,
            min_plate_confidence=p.min_plate_confidence,
            min_gap_s=p.min_gap_s,
            topic_prefix=p.topic_prefix,
            plate_reader=OcrPlateReader() if p.verify_plates else None,
            load_image=lambda uri: blobs.path(uri).read_bytes(),
        )
    if "rules" in names:
        made["rules"] = RulesStage(
            load_baselines(settings.baselines), registry, store, topic_prefix=p.topic_prefix
        )
    if "cases" in names:
        made["cases"] = CaseStage(store, topic_prefix=p.topic_prefix)
    if "evidence" in names:
        made["evidence"] = EvidenceStage(
            registry,
            BlobStore(settings.var_dir / "blobs"),
            load_signer(settings),
            settings.evidence.dir,
            settings.evidence.agency,
            list(settings.baselines.values()),
            topic_prefix=p.topic_prefix,
        )
    if "leads" in names:
        made["leads"] = LeadStage(registry, store, topic_prefix=p.topic_prefix)
    if "lead-store" in names:
        made["lead-store"] = LeadSinkStage(store, topic_prefix=p.topic_prefix)
    return [made[n] for n in STAGES if n in made]


def tune_gc() -> None:
    """A pipeline process allocates many short-lived objects per message and keeps long-lived
    state (buffers, registry): collect the young generation less often and never rescan what
    existed at start-up. Halves the detection stage's cost (bench.detectors)."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def load_signer(settings: Settings) -> Signer:
    if not settings.evidence.key.exists():
        raise ConfigError("settings", None, "evidence.key",
                          f"no signing key at {settings.evidence.key}: run `offsite keys create`")  # fmt: skip
    return Signer.load(settings.evidence.key)


async def prepare(settings: Settings, ep: Endpoints) -> CaseStore:
    """Topics exist and the schema is current before any stage starts."""
    await ensure_topics(
        ep.bootstrap,
        topic_names(settings.pipeline.topic_prefix),
        settings.kafka.partitions,
        settings.kafka.replication_factor,
    )
    store = await CaseStore.connect(ep.database_url)
    await store.migrate()
    return store


async def run(
    settings: Settings,
    ep: Endpoints,
    stages: Sequence[str] = STAGES,
    *,
    stop: asyncio.Event | None = None,
    until_quiet_s: float | None = None,
) -> None:
    """Run ``stages`` until ``stop`` is set, or (``until_quiet_s``) until every stage has had
    no data for that long after the first data arrived."""
    stop = stop or asyncio.Event()
    tune_gc()
    store = await prepare(settings, ep)
    p = settings.pipeline
    try:
        async with producer(ep.bootstrap) as prod:
            runners = [
                StageRunner(
                    s,
                    ep.bootstrap,
                    f"{p.group_prefix}.{p.topic_prefix}{s.name}",
                    prod,
                    batch_max=p.batch_max,
                    idle_flush_s=p.idle_flush_s,
                )
                for s in build_stages(settings, store, stages)
            ]
            tasks = [asyncio.create_task(r.run(stop), name=r.stage.name) for r in runners]
            if until_quiet_s is not None:
                tasks.append(asyncio.create_task(_stop_when_quiet(runners, stop, until_quiet_s)))
            _done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
    finally:
        await store.close()


async def _stop_when_quiet(runners: list[StageRunner], stop: asyncio.Event, quiet_s: float) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.2)
        now = time.monotonic()
        started = any(r.batches > 0 for r in runners) and all(r.joined for r in runners)
        if started and all(now - r.last_activity >= quiet_s for r in runners):
            stop.set()
