"""Prometheus metrics, updated once per batch, and the HTTP endpoint of every process
(``/metrics``, ``/healthz``, ``/readyz``). Labels are low-cardinality only: stage, topic,
partition, site, violation code, outcome — never an id or a plate."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter as Tally
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from events.stage import Incoming, StageResult

MESSAGES_IN = Counter("offsite_messages_in_total", "Messages consumed", ["stage", "topic"])
MESSAGES_OUT = Counter("offsite_messages_out_total", "Messages produced", ["stage", "topic"])
DEAD_LETTERS = Counter("offsite_dead_letters_total", "Messages sent to a DLQ", ["stage", "topic"])
BATCH_SECONDS = Histogram(
    "offsite_batch_seconds",
    "Time to process one batch",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCH_SIZE = Histogram(
    "offsite_batch_messages", "Messages in one batch", ["stage"],
    buckets=(1, 10, 100, 500, 1000, 2000, 5000),
)  # fmt: skip
LAG = Gauge("offsite_consumer_lag", "Messages not yet consumed (high watermark − position)",
            ["stage", "topic", "partition"])  # fmt: skip
# from the sensor's own time to the detection leaving the detect stage / the case committed
LATENCY = Histogram(
    "offsite_latency_seconds", "Sensor time to detection and to case", ["step"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
)  # fmt: skip
DETECTIONS = Counter("offsite_detections_total", "Detections", ["detector", "site"])
NEW_CASES = Counter("offsite_cases_total", "New cases", ["violation", "site", "outcome"])
WIM_PASSES = Counter("offsite_wim_passes_total", "WIM records matched or not to a plate read",
                     ["site", "matched"])  # fmt: skip
SECOND_READS = Counter("offsite_second_reads_total", "OCR second reads of plates",
                       ["site", "agreed"])  # fmt: skip
DEVICE_CONDITION = Gauge("offsite_device_condition",
                         "1 while a device health condition is raised (detectors/health.py)",
                         ["device", "condition"])  # fmt: skip
POISON = Counter("offsite_poison_records_total",
                 "Messages a stage raised on, dead-lettered with the exception (issue #28)",
                 ["stage"])  # fmt: skip
# what a stage may report in StageResult.observed (stages never import this module): a
# counter's increment, a histogram's observation, a gauge's value
OBSERVED: dict[str, Counter | Histogram | Gauge] = {
    "detections": DETECTIONS, "wim_passes": WIM_PASSES, "second_reads": SECOND_READS,
    "latency": LATENCY, "device_condition": DEVICE_CONDITION, "poison_records": POISON,
}  # fmt: skip
LOOP_LAG = Gauge("offsite_event_loop_lag_seconds", "How late the event loop ran a 1 s tick")
READY = Gauge("offsite_stage_ready", "1 when the stage has loaded and joined its group", ["stage"])
RETRIES = Counter("offsite_retries_total",
                  "Times the stages were started again after the broker or database was away",
                  ["cause"])  # fmt: skip
WAITING = Gauge("offsite_waiting", "1 while the process waits for the broker or database",
                ["cause"])  # fmt: skip
_waiting_for: list[str] = []  # why the process is waiting (offsite.retry), for /readyz


def observe_batch(stage: str, batch: list[Incoming], result: StageResult, seconds: float) -> None:
    for topic, n in Tally(m.topic for m in batch).items():
        MESSAGES_IN.labels(stage, topic).inc(n)
    for topic, n in Tally(o.topic for o in result.out).items():
        MESSAGES_OUT.labels(stage, topic).inc(n)
    for topic, n in Tally(o.topic for o in result.dead).items():
        DEAD_LETTERS.labels(stage, topic).inc(n)
    BATCH_SECONDS.labels(stage).observe(seconds)
    series: dict[tuple[str, tuple[str, ...]], list[float]] = {}
    for name, labels, value in result.observed:
        series.setdefault((name, labels), []).append(value)
    for (name, labels), values in series.items():  # one labels() lookup per series
        metric = OBSERVED[name].labels(*labels)
        if isinstance(metric, Counter):
            metric.inc(sum(values))
        elif isinstance(metric, Gauge):
            metric.set(values[-1])
        else:
            for v in values:
                metric.observe(v)
    if batch:
        BATCH_SIZE.labels(stage).observe(len(batch))


def observe_latency(step: str, sensor_times: Iterable[dt.datetime]) -> None:
    now = dt.datetime.now(dt.UTC)
    for ts in sensor_times:
        LATENCY.labels(step).observe(max((now - ts).total_seconds(), 0.0))


async def watch_loop_lag(tick_s: float = 1.0) -> None:
    """Forever: how late the loop wakes from a ``tick_s`` sleep (a loop blocked by work)."""
    while True:
        due = time.monotonic() + tick_s
        await asyncio.sleep(tick_s)
        LOOP_LAG.set(max(time.monotonic() - due, 0.0))


def waiting(why: str | None, cause: str = "") -> None:
    """The process waits for ``cause`` (broker or database) because ``why``; None: no more."""
    _waiting_for[:] = [why] if why else []
    for label in ("broker", "database"):
        WAITING.labels(label).set(int(bool(why) and label == cause))


def stages_ready() -> bool:
    """Every stage of this process has loaded and joined its group (and there is one)."""
    stages = [sample.value for metric in READY.collect() for sample in metric.samples]
    return bool(stages) and all(v == 1 for v in stages)


def not_ready() -> list[str]:
    """Why the process is not ready: nothing when it is."""
    why = list(_waiting_for)
    for metric in READY.collect():
        why += [f"stage {s.labels['stage']} has not loaded or joined its group yet"
                for s in metric.samples if s.value != 1]  # fmt: skip
    if not why and not stages_ready():
        why.append("no stage runs yet")
    return why


def observe_lag(stage: str, lags: dict[tuple[str, int], int]) -> None:
    for (topic, partition), n in lags.items():
        LAG.labels(stage, topic, str(partition)).set(n)


async def serve(host: str, port: int) -> asyncio.Server:
    """The process's HTTP endpoint: ``/metrics`` (Prometheus text), ``/healthz`` (the process
    answers), ``/readyz`` (200 once every stage has loaded its models and joined its group and the
    process waits for nothing, else 503 with the reasons) — for Prometheus, systemd and Kubernetes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode("latin-1").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = line[1].split("?")[0] if len(line) > 1 else ""
            if path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            elif path == "/healthz":
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            elif path == "/readyz":  # when not ready, why (one reason a line)
                why = not_ready()
                status = "503 Service Unavailable" if why else "200 OK"
                text = "".join(f"not ready: {w}\n" for w in why) if why else "ready\n"
                ctype, body = "text/plain; charset=utf-8", text.encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)  # fmt: skip
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
