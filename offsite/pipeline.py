"""Wiring: the stages of the road and waterway pipeline, each in its consumer group, in one
process."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors import DetectionStage
from detectors.health import DeviceHealthStage, HealthRules
from detectors.hull import OcrHullReader
from detectors.leads import LeadStage
from detectors.plates import OcrPlateReader
from detectors.water_stage import WaterDetectionStage
from events import ConfigError, UnfinishedError
from events.stage import Stage
from evidence import EvidenceStage, Signer
from ingest.ais import AisDecodeStage
from rules import RulesStage
from sinks import BlobStore, CaseStage, CaseStore, LeadSinkStage, database_away

from .config import (
    PipelineSettings,
    Settings,
    baseline_files,
    check_jurisdictions,
    load_baselines,
    load_waterways,
    registry_of,
)
from .kafka import OffsetProbe, StageRunner, ensure_offsite_topics, producer
from .retry import ride_out
from .services import Endpoints

log = logging.getLogger("offsite.pipeline")

STAGES = (
    "detect", "rules", "cases", "evidence", "leads", "lead-store", "health",
    "ais.decode", "water.detect",
)  # fmt: skip


def build_stages(settings: Settings, store: CaseStore, names: Sequence[str]) -> list[Stage]:
    p = settings.pipeline
    made: dict[str, Stage] = {}
    registry = registry_of(settings)
    clock = p.clock()
    waterways = (
        load_waterways(settings.waterways)
        if {"rules", "evidence", "water.detect"} & set(names)
        else None
    )
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
            max_clock_ahead_s=p.max_clock_ahead_s,
            drift_store=store,
            weighings=store,
        )
    if "rules" in names:
        baselines = load_baselines(settings.baselines)
        check_jurisdictions(settings.registry, registry, baselines)
        made["rules"] = RulesStage(
            baselines, registry, store, trips=store, topic_prefix=p.topic_prefix,
            waterways=waterways, clock=clock, signals=store,
        )  # fmt: skip
    if "cases" in names:
        made["cases"] = CaseStage(store, topic_prefix=p.topic_prefix)
    if "evidence" in names:
        made["evidence"] = EvidenceStage(
            registry,
            BlobStore(settings.var_dir / "blobs"),
            load_signer(settings),
            settings.evidence.dir,
            settings.evidence.agency,
            baseline_files(settings.baselines),
            waterways=waterways,
            topic_prefix=p.topic_prefix,
            clock=clock,
        )
    if "leads" in names:
        made["leads"] = LeadStage(registry, store, topic_prefix=p.topic_prefix)
    if "lead-store" in names:
        made["lead-store"] = LeadSinkStage(store, topic_prefix=p.topic_prefix)
    if "health" in names:
        rules = HealthRules(p.device_silent_after_s, p.certificate_warning_days, p.max_clock_skew_s)
        made["health"] = DeviceHealthStage(
            registry, store, rules, topic_prefix=p.topic_prefix, clock=clock
        )
    if "ais.decode" in names:
        made["ais.decode"] = AisDecodeStage(topic_prefix=p.topic_prefix)
    if "water.detect" in names:
        assert waterways is not None
        hull_blobs = BlobStore(settings.var_dir / "blobs")
        made["water.detect"] = WaterDetectionStage(
            waterways, topic_prefix=p.topic_prefix, max_clock_ahead_s=p.max_clock_ahead_s,
            hull_reader=OcrHullReader() if p.read_hulls else None,
            load_image=lambda uri: hull_blobs.path(uri).read_bytes(),
            min_hull_confidence=p.min_hull_confidence,
        )  # fmt: skip
    return [made[n] for n in STAGES if n in made]


def group_id(settings: Settings, stage: str) -> str:
    """The consumer group of ``stage``: every process running it shares the group."""
    p = settings.pipeline
    return f"{p.group_prefix}.{p.topic_prefix}{stage}"


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
    await ensure_offsite_topics(ep.bootstrap, settings.pipeline.topic_prefix, settings.kafka)
    store = await CaseStore.connect(ep.database_url)
    await store.migrate()
    return store


@dataclass(frozen=True)
class StageReport:
    loaded_s: float | None  # time the stage took to load its models before reading
    batches: int
    messages: int


@dataclass(frozen=True)
class RunReport:
    stages: dict[str, StageReport] = field(default_factory=dict)
    nothing_to_do: bool = False  # every input was consumed to its end before the run
    done: bool = False  # every stage processed its inputs to their end (until_done runs)


async def run(
    settings: Settings,
    ep: Endpoints,
    stages: Sequence[str] = STAGES,
    *,
    stop: asyncio.Event | None = None,
    until_done: bool = False,
    on_loaded: Callable[[str, float], None] | None = None,
) -> RunReport:
    """Run ``stages`` until ``stop`` is set, or (``until_done``) until every stage has processed
    everything on its inputs (see :func:`run_stages`). While the broker or the database is away
    the stages are built and started again after a back-off (offsite.retry), as a restarted
    process would be: only a bug ends the run with an error."""
    tune_gc()

    async def attempt(this_stop: asyncio.Event) -> RunReport:
        store = await prepare(settings, ep)
        try:
            built = build_stages(settings, store, stages)
            return await run_stages(
                settings, ep, built, stop=this_stop, until_done=until_done, on_loaded=on_loaded
            )
        finally:
            try:  # (a database that is away may not answer a polite goodbye)
                await asyncio.wait_for(store.close(), 10)
            except Exception as exc:
                if not (isinstance(exc, TimeoutError) or database_away(exc)):
                    raise
                store.pool.terminate()

    stop = stop or asyncio.Event()
    try:
        return await ride_out(attempt, stop, RunReport())
    finally:
        stop.set()  # as run_stages does: whatever waits on the run's end sees it


async def run_stages(
    settings: Settings,
    ep: Endpoints,
    stages: Sequence[Stage],
    *,
    stop: asyncio.Event | None = None,
    until_done: bool = False,
    on_loaded: Callable[[str, float], None] | None = None,
) -> RunReport:
    """Drive ``stages``, each in its consumer group. With ``until_done`` the run ends when it is
    a fact that the work is done: every stage has read all its input partitions up to their end
    offsets, has no batch in hand, has flushed what waits on time, and the end offsets did not
    move while that was checked (so what one stage sent, the next has processed). No pause is
    ever taken as the end. After ``pipeline.drain_timeout_s`` it raises UnfinishedError naming
    each unfinished stage and its lag. ``on_loaded(stage, seconds)`` reports each stage's
    model loading, which happens before it reads."""
    stop = stop or asyncio.Event()
    p = settings.pipeline
    groups = {s.name: group_id(settings, s.name) for s in stages}
    if until_done and await _nothing_to_do(ep.bootstrap, stages, groups):
        return RunReport(nothing_to_do=True, done=True)
    async with producer(ep.bootstrap) as prod:
        runners = [
            StageRunner(s, ep.bootstrap, groups[s.name], prod,
                        batch_max=p.batch_max, idle_flush_s=p.idle_flush_s)
            for s in stages
        ]  # fmt: skip
        tasks = [asyncio.create_task(r.run(stop), name=r.stage.name) for r in runners]
        watchers: list[asyncio.Task[Any]] = [
            asyncio.create_task(_report_loads(runners, stop, on_loaded))
        ]
        if until_done:
            watchers.append(asyncio.create_task(_until_done(runners, ep.bootstrap, stop, p)))
        try:
            await asyncio.wait([*tasks, *watchers], return_when=asyncio.FIRST_EXCEPTION)
        finally:
            stop.set()
            if any(t.done() and not t.cancelled() and t.exception() for t in tasks + watchers):
                for t in tasks:  # a stage stuck inside a batch would never see ``stop``
                    t.cancel()
            results = await asyncio.gather(*tasks, *watchers, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for r in sorted(failures, key=lambda r: isinstance(r, asyncio.CancelledError)):
            raise r
    done = until_done and results[-1] is True
    return RunReport({r.stage.name: StageReport(r.loaded_s, r.batches, r.messages)
                      for r in runners}, done=done)  # fmt: skip


async def _nothing_to_do(bootstrap: str, stages: Sequence[Stage], groups: dict[str, str]) -> bool:
    """Whether every stage's group has committed every input partition to its end: a fresh
    process holds nothing in memory, so there is no work at all."""
    async with OffsetProbe(bootstrap) as probe:
        for s in stages:
            if await probe.lag(groups[s.name], s.inputs):
                return False
    return True


async def _report_loads(
    runners: list[StageRunner], stop: asyncio.Event, on_loaded: Callable[[str, float], None] | None
) -> None:
    waiting = list(runners)
    while waiting and not stop.is_set():
        for r in [r for r in waiting if r.loaded_s is not None]:
            waiting.remove(r)
            assert r.loaded_s is not None
            log.info("stage %s loaded in %.2f s", r.stage.name, r.loaded_s)
            if on_loaded is not None:
                on_loaded(r.stage.name, r.loaded_s)
        await asyncio.sleep(0.05)


async def _until_done(
    runners: list[StageRunner], bootstrap: str, stop: asyncio.Event, p: PipelineSettings
) -> bool:
    """True once the work is done (and ``stop`` set); False if stopped before."""
    deadline = time.monotonic() + p.drain_timeout_s
    topics = {t for r in runners for t in r.stage.inputs}
    previous: dict[tuple[str, int], int] | None = None
    async with OffsetProbe(bootstrap) as probe:
        for round_ in itertools.count(1):
            ends = await probe.ends(topics)
            if ends == previous:
                break
            for r in runners:
                r.drain_to(round_, ends)
            while any(r.settled_round < round_ for r in runners):
                if stop.is_set():
                    return False
                if time.monotonic() > deadline:
                    raise _unfinished(runners, round_, p.drain_timeout_s)
                await asyncio.sleep(0.05)
            previous = ends
    stop.set()
    return True


def _unfinished(runners: list[StageRunner], round_: int, timeout_s: float) -> UnfinishedError:
    now, states = time.monotonic(), {}
    late = [r for r in runners if r.settled_round < round_]
    for r in late:
        if r.in_batch_since is not None:
            states[r.stage.name] = f"inside a batch for {now - r.in_batch_since:.0f} s"
        elif r.loaded_s is None:
            states[r.stage.name] = "still loading its models"
        elif not r.joined:
            states[r.stage.name] = "not yet given its partitions by the broker"
        else:
            states[r.stage.name] = "flushing what waits on time"
    return UnfinishedError(timeout_s, {r.stage.name: r.lag() for r in late}, states)
