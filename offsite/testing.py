"""Helpers for tests and benchmarks: an isolated corner of the real services."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pydantic import SecretStr

from detectors import DetectionStage
from events import DETECTIONS, ROAD_ANPR, ROAD_WIM, Registry, Violation
from events.clock import fixed_clock
from events.stage import Incoming
from rules import RulesStage
from sim import SimulationConfig, simulate
from sim.road import BlobWriter

from . import services
from .config import DatabaseSettings, KafkaSettings, PipelineSettings, Settings, load_baselines

# the decision time of the tests' pipelines: the day after the simulator's default traffic, so
# that no outcome depends on the day the tests run (Art. 36, certificates, permits)
DECIDED_AT = SimulationConfig.start + dt.timedelta(days=1, hours=2)


async def isolated_settings(base: Settings, tag: str = "t", verify_plates: bool = True) -> Settings:
    """``base`` with a new database, topic prefix and consumer groups of their own, on the
    services ``base`` points at (started by ``services.up``), deciding at :data:`DECIDED_AT`."""
    ep = services.endpoints(base)
    name = f"{tag}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ep.database_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    parts = urlsplit(ep.database_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    evidence = base.evidence.model_copy(update={"dir": base.var_dir / "evidence" / name})
    return Settings(
        var_dir=base.var_dir,
        evidence=evidence,
        registry=base.registry,
        vehicles=base.vehicles,
        permits=base.permits,
        waterways=base.waterways,
        baselines=base.baselines,
        kafka=KafkaSettings(bootstrap=ep.bootstrap, partitions=base.kafka.partitions),
        database=DatabaseSettings(url=SecretStr(url)),
        pipeline=PipelineSettings(
            topic_prefix=f"{name}.",
            group_prefix=name,
            idle_flush_s=0.5,
            metrics_port=0,
            verify_plates=verify_plates,
            as_of=DECIDED_AT,
        ),
        gateway=base.gateway.model_copy(update={"metrics_port": 0}),
    )


def _paths(v: Path | list[Path]) -> str | list[str]:
    return [str(x) for x in v] if isinstance(v, list) else str(v)


def settings_env(settings: Settings, **pipeline: str) -> dict[str, str]:
    """The environment that makes an `offsite` subprocess use ``settings`` (plus pipeline
    overrides such as ``BATCH_MAX="40"``)."""
    ep = services.endpoints(settings)
    p = settings.pipeline
    env = {
        **os.environ,
        "OFFSITE_KAFKA__BOOTSTRAP": ep.bootstrap,
        "OFFSITE_KAFKA__REPLICATION_FACTOR": str(settings.kafka.replication_factor),
        "OFFSITE_KAFKA__MIN_INSYNC_REPLICAS": str(settings.kafka.min_insync_replicas),
        "OFFSITE_DATABASE__URL": ep.database_url,
        "OFFSITE_PIPELINE__TOPIC_PREFIX": p.topic_prefix,
        "OFFSITE_PIPELINE__GROUP_PREFIX": p.group_prefix,
        "OFFSITE_PIPELINE__METRICS_PORT": str(p.metrics_port),
        "OFFSITE_GATEWAY__METRICS_PORT": str(settings.gateway.metrics_port),
        "OFFSITE_PIPELINE__IDLE_FLUSH_S": str(p.idle_flush_s),
        "OFFSITE_PIPELINE__VERIFY_PLATES": str(p.verify_plates).lower(),
        **({"OFFSITE_PIPELINE__AS_OF": p.as_of.isoformat()} if p.as_of else {}),
        "OFFSITE_REGISTRY": str(settings.registry),
        "OFFSITE_VEHICLES": str(settings.vehicles),
        "OFFSITE_BASELINES": json.dumps({k: _paths(v) for k, v in settings.baselines.items()}),
        "OFFSITE_VAR_DIR": str(settings.var_dir),
        "OFFSITE_EVIDENCE__KEY": str(settings.evidence.key),
        "OFFSITE_EVIDENCE__DIR": str(settings.evidence.dir),
    }
    if settings.permits is not None:
        env["OFFSITE_PERMITS"] = str(settings.permits)
    env.update({f"OFFSITE_PIPELINE__{k}": v for k, v in pipeline.items()})
    return env


async def violations_in_memory(
    registry: Registry,
    baselines: dict[str, Path],
    cfg: SimulationConfig,
    put_blob: BlobWriter | None = None,
    decided_at: dt.datetime | None = None,
) -> list[Violation]:
    """Simulated traffic through the detection and rules stages in memory (no broker, no
    database): real violations for tests and benchmarks of what comes after them, decided at
    ``decided_at`` (default: a day after the traffic starts, whatever today's date)."""
    raw: list[Incoming] = []
    for p in simulate(registry, cfg, put_blob=put_blob):
        raw.append(Incoming(ROAD_WIM, 0, len(raw), None, p.wim.to_json()))
        if p.capture is not None:
            raw.append(Incoming(ROAD_ANPR, 0, len(raw), None, p.capture.to_json()))
    detect = DetectionStage(registry)
    outs = (await detect.process(raw)).out + (await detect.idle()).out
    dets = [Incoming(DETECTIONS, 0, i, None, o.value) for i, o in enumerate(outs)
            if o.topic == DETECTIONS]  # fmt: skip
    at = decided_at or cfg.start + dt.timedelta(days=1)
    res = await RulesStage(load_baselines(baselines), registry, clock=fixed_clock(at)).process(dets)
    return [Violation.model_validate_json(o.value) for o in res.out]


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free local port in a thread (a camera's image server, a
    provincial vehicle database); yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
